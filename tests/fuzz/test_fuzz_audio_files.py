"""Files the system reads back: uploads and imports (``asr.audio.probe``), leg WAVs (``recorder.read_wav``)
and sealed legs (``sealed.read``), under hostile headers and bytes.

``probe`` may raise only ``AudioError`` (with one of its stable codes), and what it accepts has a rate, a
channel count and a duration. ``read_wav`` never raises for a file that exists (a leg cut off by a crash is
read as far as it goes). ``sealed.read`` raises only ``SealedError`` and returns only authenticated audio:
whole records of what was written, in order.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from asr.audio import AudioError, probe
from telephony import recorder, sealed
from tests.fuzz.strategies import fuzz, mutated

CODES = {"empty", "not_audio", "corrupt", "truncated"}
_names = itertools.count()
u16, u32 = st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)


@pytest.fixture(scope="module")  # Hypothesis refuses function-scoped fixtures (tmp_path) in a @given test
def folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("fuzz-files")


def write(folder: Path, data: bytes, suffix: str = ".wav") -> Path:
    path = folder / f"{next(_names)}{suffix}"
    path.write_bytes(data)
    return path


def chunk(cid: bytes, body: bytes, declared: int | None = None) -> bytes:
    size = len(body) if declared is None else declared
    return cid + struct.pack("<I", size) + body + (b"\x00" if len(body) % 2 else b"")


def lie(draw: st.DrawFn, honest: int, lies: list[int]) -> int:
    """``honest`` most of the time, else one of ``lies``."""
    return honest if draw(st.integers(0, 3)) else draw(st.sampled_from(lies))


@st.composite
def wavs(draw: st.DrawFn) -> bytes:
    """A RIFF/WAVE file whose every field may lie: RIFF size, format code (PCM, float, A-law, μ-law,
    extensible, anything), channels (0, many), rate (0, huge), byte rate, block align, bits per sample, fmt
    and data chunk sizes (short, long, 0xFFFFFFFF), extra chunks of odd sizes, missing or repeated chunks."""
    fmt_code, bits = draw(st.sampled_from([(1, 16), (1, 8), (3, 32), (6, 8), (7, 8), (0xFFFE, 16)]))
    fmt_code = lie(draw, fmt_code, [0, 2, 0x55, 0x11, 0xFFFF])
    bits = lie(draw, bits, [0, 7, 24, 64, 0xFFFF])
    channels = lie(draw, draw(st.sampled_from([1, 2])), [0, 3, 8, 0xFFFF])
    rate = lie(draw, draw(st.sampled_from([8000, 16000, 44100])), [0, 1, 0xFFFFFFFF])
    block = lie(draw, max(1, channels * bits // 8) & 0xFFFF, [0, 1, 0xFFFF])
    byte_rate = lie(draw, (rate * block) & 0xFFFFFFFF, [0, 0xFFFFFFFF])
    fmt = struct.pack("<HHIIHH", fmt_code, channels, rate, byte_rate, block, bits)
    if fmt_code == 0xFFFE or not draw(st.integers(0, 5)):
        fmt += struct.pack("<HHHI", 22, bits, 3, draw(st.sampled_from([1, 3, 6, 7]))) + bytes(14)
    fmt = fmt[: lie(draw, len(fmt), [16, 14, 8, 0])]
    pcm = bytes([draw(st.integers(0, 255))]) * draw(st.sampled_from([0, 1, 2, 3, 160, 1601, 8000]))
    data_size = lie(draw, len(pcm), [0, 1, 0xFFFFFFFF, 0x7FFFFFFF, len(pcm) + 2])
    fmt_size = lie(draw, len(fmt), [0, 2, 0xFFFFFFFF])
    pieces = [chunk(b"fmt ", fmt, fmt_size), chunk(b"data", pcm, data_size)]
    for _ in range(draw(st.integers(0, 2))):
        extra = draw(st.binary(max_size=9))
        pieces.insert(draw(st.integers(0, len(pieces))), chunk(
            draw(st.sampled_from([b"LIST", b"fact", b"JUNK", b"data", b"fmt ", b"\x00\x00\x00\x00"])), extra,
            lie(draw, len(extra), [0xFFFFFFFF, 3])))
    if not draw(st.integers(0, 5)):
        pieces = draw(st.permutations(pieces))[: draw(st.integers(0, len(pieces)))]
    body = b"WAVE" + b"".join(pieces)
    return b"RIFF" + struct.pack("<I", lie(draw, len(body), [0, 4, 0xFFFFFFFF, len(body) + 100])) + body


def check_probe(path: Path) -> None:
    try:
        info = probe(path)
    except AudioError as e:
        assert e.code in CODES and str(e)
        return
    assert info.sample_rate > 0 and info.duration > 0


@fuzz(200)
@given(wavs())
@example(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x07\x00\x01\x00\x40\x1f\x00\x00\x40\x1f\x00\x00\x01\x00"
         b"\x08\x00data\xff\xff\xff\xff" + b"\xff" * 800)  # μ-law, data size "unknown" (streamed WAV)
def test_probe_lying_wav_headers_raise_only_audio_error(folder: Path, data: bytes) -> None:
    check_probe(write(folder, data))


@fuzz(100)
@given(st.one_of(st.binary(max_size=200), st.binary(max_size=60).map(lambda b: b"RIFF" + b[:4] + b"WAVE" + b[4:])))
def test_probe_random_bytes_raise_only_audio_error(folder: Path, data: bytes) -> None:
    check_probe(write(folder, data, suffix=".bin"))


@fuzz(300)
@given(st.one_of(wavs(), st.binary(max_size=120)))
def test_read_wav_reads_any_leg_file(folder: Path, data: bytes) -> None:
    samples, rate = recorder.read_wav(write(folder, data))
    assert samples.dtype.str == "<i2" and isinstance(rate, int)
    assert len(samples) == (max(0, len(data) - 44) // 2 if len(data) >= 44 else 0)


KEY = bytes(range(32))
CALL = "0123456789abcdef0123456789abcdef"


def seal(folder: Path, records: list[bytes], leg: str = "caller") -> bytes:
    path = folder / f"{next(_names)}.sealed"
    writer = sealed.SealedWriter(path, data_key=KEY, call_id=CALL, leg=leg)
    for pcm in records:
        writer.write(pcm)
        writer.flush()
    writer.close()
    return path.read_bytes()


RECORDS = st.lists(st.binary(min_size=1, max_size=40), max_size=4)


@fuzz(300)
@given(RECORDS, st.data())
@example([b"\x01\x02"], None)
def test_sealed_read_returns_only_whole_authenticated_records(folder: Path, records: list[bytes],
                                                             data: st.DataObject | None) -> None:
    original = seal(folder, records)
    damaged = original if data is None else data.draw(mutated([original], binary=True))
    if data is not None and records and data.draw(st.booleans()):  # the first record's length lies
        lying = struct.pack(">I", data.draw(st.sampled_from([0, 15, 16, 17, 0xFFFFFFFF, (1 << 20) + 16,
                                                              (1 << 20) + 17, len(records[0]) + 15])))
        damaged = damaged[:sealed.HEADER_SIZE] + lying + damaged[sealed.HEADER_SIZE + 4:]
    try:
        leg = sealed.read(write(folder, damaged, ".sealed"), data_key=KEY, call_id=CALL, leg="caller")
    except sealed.SealedError:
        return
    assert leg.records <= len(records)
    assert leg.pcm == b"".join(records[: leg.records])  # nothing but what was written, in order
    if damaged == original:
        assert leg.records == len(records) and leg.incomplete_tail == 0


@fuzz(200)
@given(st.binary(max_size=200), st.booleans())
def test_sealed_read_random_bytes_raise_only_sealed_error(folder: Path, data: bytes, with_header: bool) -> None:
    if with_header:
        data = seal(folder, [])[: sealed.HEADER_SIZE] + data
    try:
        leg = sealed.read(write(folder, data, ".sealed"), data_key=KEY, call_id=CALL, leg="caller")
    except sealed.SealedError:
        return
    assert leg.pcm == b""  # nothing forged authenticates
