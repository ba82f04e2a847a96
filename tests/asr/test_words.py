"""Word timings from the real model, both engines: inside their segments, in order, spelling the final text,
and a word said after a pause starting after it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from asr.audio import SAMPLE_RATE, decode
from asr.engines import Engine
from asr.mandarin import clean
from asr.models import bundled_model_dir
from asr.types import AsrOptions, Segment, Transcript
from asr.words import timed_words
from asr.worker import load_engine, transcribe_channels
from tests.conftest import CALL

pytestmark = pytest.mark.slow

TOLERANCE = 0.05  # seconds: segment times are rounded to 10 ms, word times to 10 ms
PAUSE = (2.9, 4.9)  # where the silence lies in the clip below


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models")
    bundled_model_dir(path)
    return path


@pytest.fixture(scope="module", params=["faster-whisper", "openai-whisper"])
def engine(request: pytest.FixtureRequest, cache: Path) -> Engine:
    return load_engine(AsrOptions(engine=request.param), cache)


@pytest.fixture(scope="module")
def call(cache: Path) -> Transcript:
    return transcribe_channels(decode(CALL), AsrOptions(), load_engine(AsrOptions(), cache))


def paused_clip() -> np.ndarray:
    """The agent's greeting, 2 s of silence, then the caller's 三十个人，派遣公司说… (two pieces of D03)."""
    caller, agent = decode(CALL)
    first = agent[int(0.4 * SAMPLE_RATE) : int(3.3 * SAMPLE_RATE)]
    second = caller[int(14.5 * SAMPLE_RATE) : int(19.8 * SAMPLE_RATE)]
    return np.concatenate([first, np.zeros(2 * SAMPLE_RATE, np.float32), second])


def check_words(segment: Segment) -> None:
    words = segment.words
    assert words, segment
    assert "".join(w.text for w in words) == segment.text
    assert all(w.text for w in words)
    assert all(w.start <= w.end for w in words)
    assert all(a.end <= b.start for a, b in zip(words, words[1:], strict=False))  # in order, no overlap
    assert segment.start - TOLERANCE <= words[0].start and words[-1].end <= segment.end + TOLERANCE


def test_every_segment_of_a_real_call_has_its_words(call: Transcript) -> None:
    assert len(call.segments) >= 4
    for segment in call.segments:
        check_words(segment)
        # the words cover the speech: they start near the segment's start and end near its end
        assert segment.words[0].start - segment.start < 1.0 and segment.end - segment.words[-1].end < 1.5
    caller = next(s for s in call.segments if s.speaker == "caller")
    assert len(caller.words) >= 10  # words, not the whole sentence: 我们 / 是 / 被 / 青岛 / …
    assert max(len(w.text) for w in caller.words) <= 8


def test_words_through_the_whole_pipeline_on_both_engines(engine: Engine) -> None:
    result = transcribe_channels([paused_clip()], AsrOptions(layout="mono", engine=engine.name), engine)  # type: ignore[arg-type]
    assert len(result.segments) >= 2  # the pause splits them
    for segment in result.segments:
        check_words(segment)
    assert result.segments[-1].words[0].start >= PAUSE[1] - TOLERANCE


def test_a_word_said_after_a_pause_starts_after_it(engine: Engine) -> None:
    # one stretch holding the pause (as a speaker turn from diarization may): the alignment must not let
    # the first word after the silence start inside it
    clip = paused_clip()
    raw = engine.transcribe_channels([clip], [[(0.0, len(clip) / SAMPLE_RATE)]])[0][0]
    text = clean(raw.text)
    words = timed_words(raw.words, text, raw.start, raw.end)
    assert "".join(w.text for w in words) == text and len(words) >= 6
    before = [w for w in words if w.start < PAUSE[0]]
    after = [w for w in words if w.start >= PAUSE[0]]
    assert before and after, words
    assert all(w.end <= PAUSE[0] + 0.2 for w in before), before  # nothing said before it runs into the pause
    assert after[0].start >= PAUSE[1] - TOLERANCE, after[0]  # the first word after it starts after it
