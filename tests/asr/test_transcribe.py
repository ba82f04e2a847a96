"""The real Whisper model on a real call: speakers by channel, simplified Chinese, guards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from asr.audio import decode
from asr.engines.faster_whisper import FasterWhisperEngine
from asr.mandarin import to_simplified
from asr.types import AsrOptions, Transcript
from asr.worker import load_engine, transcribe_channels
from tests.conftest import CALL

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> FasterWhisperEngine:
    return load_engine(AsrOptions(), tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def call(engine: FasterWhisperEngine) -> Transcript:
    return transcribe_channels(decode(CALL), AsrOptions(layout="caller-left"), engine)


def test_stereo_call_has_caller_and_agent_in_order(call: Transcript) -> None:
    assert call.duration == pytest.approx(28.98, abs=0.01)
    assert {s.speaker for s in call.segments} == {"caller", "agent"}
    assert call.segments[0].speaker == "agent" and "12351" in call.segments[0].text  # the agent answers first
    starts = [s.start for s in call.segments]
    assert starts == sorted(starts) and all(0 <= s.start < s.end <= call.duration + 0.5 for s in call.segments)
    caller = "".join(s.text for s in call.segments if s.speaker == "caller")
    agent = "".join(s.text for s in call.segments if s.speaker == "agent")
    # What the caller said (truth: 我们是被青岛联创人力资源有限公司派到黄岛一家电子厂的…) is on the caller's side.
    assert "青岛联" in caller and "辞职" in caller and "经济补偿" in agent


def test_output_is_simplified_with_chinese_punctuation(call: Transcript) -> None:
    for s in call.segments:
        assert to_simplified(s.text) == s.text
        assert not any(p in s.text for p in ",?!")


def test_agent_left_layout_swaps_the_roles(call: Transcript, engine: FasterWhisperEngine) -> None:
    swapped = transcribe_channels(decode(CALL), AsrOptions(layout="agent-left"), engine)
    flip = {"caller": "agent", "agent": "caller"}
    assert [(s.start, flip[s.speaker], s.text) for s in swapped.segments] == \
        [(s.start, s.speaker, s.text) for s in call.segments]


def test_mono_is_diarized(engine: FasterWhisperEngine) -> None:
    left, right = decode(CALL)
    mono = ((left + right) / 2)[: 11 * 16000]
    result = transcribe_channels([mono], AsrOptions(layout="mono"), engine)
    assert result.segments and {s.speaker for s in result.segments} <= {"S1", "S2", "S3"}
    assert "青岛联创" in "".join(s.text for s in result.segments)


def test_silence_and_hum_give_no_text(engine: FasterWhisperEngine) -> None:
    rng = np.random.default_rng(1)
    t = np.arange(16000 * 12) / 16000
    hum = (0.01 * np.sin(2 * np.pi * 50 * t) + 0.002 * rng.standard_normal(t.size)).astype(np.float32)
    result = transcribe_channels([np.zeros(16000 * 12, np.float32), hum], AsrOptions(), engine)
    assert result.segments == []


def test_cli_transcribe_json(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "HOTLINE_DATA_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "app.cli", "transcribe", str(CALL), "--json"], env=env,
                         capture_output=True, text=True, timeout=300, check=True)
    doc = json.loads(out.stdout)
    assert doc["duration"] == pytest.approx(28.98, abs=0.01)
    assert {s["speaker"] for s in doc["segments"]} == {"caller", "agent"}
    assert set(doc["segments"][0]) == {"start", "end", "speaker", "text", "words"}
    for segment in doc["segments"]:
        assert "".join(word[2] for word in segment["words"]) == segment["text"]
