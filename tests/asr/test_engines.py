"""The openai-whisper engine runs the same weights as the default one (converted from CTranslate2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from asr.audio import decode
from asr.export import ExportError, read_ct2, to_openai
from asr.mandarin import clean
from asr.models import bundled_model_dir
from asr.types import AsrOptions
from asr.worker import load_engine, transcribe_channels
from tests.conftest import CALL

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models")
    bundled_model_dir(path)
    return path


def test_conversion_gives_a_complete_openai_state_dict(cache: Path) -> None:
    import torch
    import whisper

    dims, state = to_openai(read_ct2(cache / "whisper-base" / "model.bin"))
    assert dims == {"n_mels": 80, "n_vocab": 51865, "n_audio_ctx": 1500, "n_audio_state": 512, "n_audio_head": 8,
                    "n_audio_layer": 6, "n_text_ctx": 448, "n_text_state": 512, "n_text_head": 8, "n_text_layer": 6}
    model = whisper.model.Whisper(whisper.model.ModelDimensions(**dims))
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})  # strict: all keys


def test_both_engines_agree_on_a_real_call(cache: Path) -> None:
    clip = [c[: 11 * 16000] for c in decode(CALL)]  # greeting and the caller's first sentence
    fast = transcribe_channels(clip, AsrOptions(), load_engine(AsrOptions(), cache))
    slow_options = AsrOptions(engine="openai-whisper")
    slow = transcribe_channels(clip, slow_options, load_engine(slow_options, cache))
    assert slow.engine == "openai-whisper" and (cache / "whisper-base-openai.pt").exists()
    # faster-whisper decodes a call's channels in Whisper's own 30 s windows (VAD-joined), openai-whisper
    # each utterance: the segments are cut differently, what they say is the same
    for result in (fast, slow):
        assert {s.speaker for s in result.segments} == {"agent", "caller"}
        caller = "".join(s.text for s in result.segments if s.speaker == "caller")
        assert "青岛联" in caller and "有限公司" in caller, caller


def test_a_loop_stops_at_what_the_clip_could_hold(cache: Path) -> None:
    # the caller's first sentence cut just as 现在 begins: Whisper base loops "现在,现在,…" after it; the
    # decode is bounded by the clip's duration (a few words, not 300 tokens) and clean-up keeps one copy
    engine = load_engine(AsrOptions(), cache)
    clip = decode(CALL)[0][int(3.3 * 16000) : 9 * 16000]
    raw = engine.decode_clips([clip])[0]  # type: ignore[attr-defined]
    assert len(raw) < 120  # unbounded, the loop runs on to about 470 characters
    cleaned = clean(raw).replace("，", "")
    assert "现在现在" not in cleaned and "有限公司" in cleaned, cleaned


def test_a_file_that_is_not_a_model_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "model.bin"
    bad.write_bytes(b"\x06\x00\x00\x00garbage")
    with pytest.raises(ExportError):
        read_ct2(bad)
