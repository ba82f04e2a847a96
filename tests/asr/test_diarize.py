"""Single-microphone sessions: speaker turns from the embedded diarizer, scored with pyannote.metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pyannote.core import Annotation, Segment, Timeline
from pyannote.metrics.diarization import DiarizationErrorRate

from asr.audio import decode
from asr.diarize import diarize
from asr.turns import to_annotation, to_rttm
from tests.conftest import DATA

SESSION = DATA / "session_md01.wav"  # dev-corpus mediation: mediator, worker, employer on one microphone


def _reference() -> Annotation:
    ref = Annotation()
    for turn in json.loads((DATA / "truth_MD01.json").read_text())["turns"]:
        ref[Segment(turn["start"], turn["end"])] = turn["speaker"]
    return ref


@pytest.mark.parametrize("num_speakers", [None, 3])
def test_mediation_session_der(num_speakers: int | None) -> None:
    audio = decode(SESSION)[0]
    turns = diarize(audio, num_speakers)
    assert {t.speaker for t in turns} == {"S1", "S2", "S3"}  # three parties found (estimated or given)
    assert turns[0].speaker == "S1" and all(a.end <= b.start for a, b in zip(turns, turns[1:], strict=False))
    uem = Timeline([Segment(0, len(audio) / 16000)])
    der = DiarizationErrorRate(collar=0.25)(_reference(), to_annotation(turns), uem=uem)
    assert der <= 0.10


def test_one_speaker_when_told_and_silence_gives_nothing() -> None:
    audio = decode(SESSION)[0]
    assert {t.speaker for t in diarize(audio, 1)} == {"S1"}
    assert diarize(np.zeros(16000 * 5, dtype=np.float32)) == []


def test_rttm() -> None:
    turns = diarize(decode(SESSION)[0], 3)
    lines = to_rttm(turns, "MD01").splitlines()
    assert len(lines) == len(turns) and lines[0].startswith("SPEAKER MD01 1 ")
