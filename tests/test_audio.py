"""Probing: what counts as usable audio, and the clear error for what does not."""

from pathlib import Path

import pytest

from asr.audio import AudioError, decode, probe
from tests.conftest import CALL


def test_probe_stereo_call() -> None:
    info = probe(CALL)
    assert (info.format, info.codec, info.sample_rate, info.channels) == ("wav", "pcm_mulaw", 8000, 2)
    assert info.duration == pytest.approx(28.981, abs=0.01)


def test_decode_gives_each_channel_at_16k() -> None:
    left, right = decode(CALL)
    assert len(left) == len(right) == pytest.approx(28.981 * 16000, abs=160)
    assert left.dtype.name == "float32" and 0.05 < abs(left).max() <= 1.0


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "empty"),
        (b"this is a text file, not a recording\n" * 20, "not_audio"),
        (bytes(range(256)) * 40, "not_audio"),
    ],
)
def test_probe_rejects_non_audio(tmp_path: Path, content: bytes, code: str) -> None:
    path = tmp_path / "upload.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError) as e:
        probe(path)
    assert e.value.code == code
    assert str(e.value)  # a message for people


def test_probe_rejects_truncated_wav(tmp_path: Path) -> None:
    path = tmp_path / "cut.wav"
    path.write_bytes(CALL.read_bytes()[:50_000])
    with pytest.raises(AudioError) as e:
        probe(path)
    assert e.value.code == "truncated"
    assert "不完整" in str(e.value)
