"""G.711 tables and the RTP leg buffer, with hand-built packets asserted byte-exact."""

from __future__ import annotations

import struct
import warnings

import numpy as np
import pytest

from telephony import g711, rtp


def test_g711_reference_values() -> None:
    # ITU-T G.711: μ-law 0x00/0x80 are the extremes, 0x7F/0xFF zero; A-law 0xD5/0x55 the smallest ±8.
    assert [int(g711.ULAW_DECODE[c]) for c in (0x00, 0x80, 0x7F, 0xFF, 0x70)] == [-32124, 32124, 0, 0, -120]
    assert [int(g711.ALAW_DECODE[c]) for c in (0xD5, 0x55, 0xAA, 0x2A)] == [8, -8, 32256, -32256]


def test_g711_round_trip_every_code() -> None:
    for law in (g711.PCMU, g711.PCMA):
        codes = bytes(range(256))
        decoded = g711.decode(codes, law)
        again = g711.decode(g711.encode(decoded, law), law)
        assert again == decoded


def test_g711_matches_audioop_where_available() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")
    codes = bytes(range(256))
    assert g711.decode(codes, g711.PCMU) == audioop.ulaw2lin(codes, 2)
    assert g711.decode(codes, g711.PCMA) == audioop.alaw2lin(codes, 2)


def packet(seq: int, ts: int, payload: bytes, *, pt: int = 0, ssrc: int = 0x1234) -> rtp.RtpPacket:
    return rtp.parse(rtp.build(payload_type=pt, seq=seq, timestamp=ts, ssrc=ssrc, payload=payload))


def frame(code: int) -> bytes:
    return bytes([code]) * 160


def pcm(code: int, n: int = 160) -> bytes:
    return g711.decode(bytes([code]) * n, g711.PCMU)


SILENCE = bytes(320)


def test_parse_header_fields_csrc_extension_and_padding() -> None:
    payload = b"\x11\x22\x33"
    raw = bytearray(struct.pack("!BBHII", 0x80 | 0x20 | 0x10 | 1, 0x80 | 8, 7, 99, 5))
    raw += b"\x00\x00\x00\x09"  # one CSRC
    raw += struct.pack("!HH", 0xBEDE, 1) + b"\x01\x02\x03\x04"  # one-word header extension
    raw += payload + b"\x00\x00\x03"  # 3 bytes of padding, the last says how many
    p = rtp.parse(bytes(raw))
    assert (p.payload_type, p.marker, p.seq, p.timestamp, p.ssrc, p.payload) == (8, True, 7, 99, 5, payload)


@pytest.mark.parametrize("junk", [b"", b"\x80" * 5, b"\x40" + b"\x00" * 20, b"\x81" + b"\x00" * 11])
def test_parse_rejects_junk(junk: bytes) -> None:
    with pytest.raises(rtp.RtpError):
        rtp.parse(junk)


def test_in_order_packets_come_out_byte_exact() -> None:
    buf = rtp.LegBuffer()
    for i, code in enumerate((0x10, 0x20, 0x30)):
        buf.push(packet(100 + i, 8000 + 160 * i, frame(code)), arrival=i * 0.02)
    assert buf.drain(final=True) == pcm(0x10) + pcm(0x20) + pcm(0x30)
    assert (buf.stats.received, buf.stats.expected, buf.stats.lost) == (3, 3, 0)


def test_reordered_packets_are_put_back_in_order() -> None:
    buf = rtp.LegBuffer()
    for seq, code in ((0, 0x10), (2, 0x30), (1, 0x20), (3, 0x40)):
        buf.push(packet(seq, seq * 160, frame(code)), arrival=0)
    assert buf.drain(final=True) == pcm(0x10) + pcm(0x20) + pcm(0x30) + pcm(0x40)
    assert buf.stats.late == 0


def test_lost_packet_becomes_silence_of_its_length() -> None:
    buf = rtp.LegBuffer()
    buf.push(packet(0, 0, frame(0x10)), arrival=0)
    buf.push(packet(2, 320, frame(0x30)), arrival=0.04)
    assert buf.drain(final=True) == pcm(0x10) + SILENCE + pcm(0x30)
    assert buf.stats.lost == 1


def test_audio_is_held_back_for_reordering_then_released() -> None:
    buf = rtp.LegBuffer()
    for i in range(10):  # 200 ms
        buf.push(packet(i, i * 160, frame(0x10)), arrival=i * 0.02)
    first = buf.drain()
    assert len(first) == (10 * 160 - rtp.REORDER_SAMPLES) * 2
    buf.push(packet(10, 1600, frame(0x20)), arrival=0.2)
    assert first + buf.drain(final=True) == pcm(0x10, 1600) + pcm(0x20)


def test_too_late_and_duplicate_packets_are_counted_not_written() -> None:
    buf = rtp.LegBuffer()
    for i in range(3):
        buf.push(packet(i, i * 160, frame(0x10)), arrival=0)
    buf.push(packet(2, 320, frame(0x10)), arrival=0)  # duplicate
    out = buf.drain(final=True)
    buf.push(packet(1, 160, frame(0x55)), arrival=0)  # after its audio was released
    assert out + buf.drain(final=True) == pcm(0x10, 480)
    assert (buf.stats.duplicates, buf.stats.late) == (1, 1)


def test_sequence_and_timestamp_wrap_around() -> None:
    buf = rtp.LegBuffer()
    seqs = [65534, 65535, 0, 1]
    for i, seq in enumerate(seqs):
        buf.push(packet(seq, (2**32 - 320 + i * 160) % 2**32, frame(0x10 + i)), arrival=i * 0.02)
    assert buf.drain(final=True) == b"".join(pcm(0x10 + i) for i in range(4))
    assert (buf.stats.expected, buf.stats.lost) == (4, 0)


def test_ssrc_change_continues_without_overlap() -> None:
    buf = rtp.LegBuffer()
    buf.push(packet(0, 0, frame(0x10), ssrc=1), arrival=0.0)
    buf.push(packet(1, 160, frame(0x20), ssrc=1), arrival=0.02)
    # a new source with unrelated numbers, 0.1 s later in wall-clock time
    buf.push(packet(5000, 777777, frame(0x30), ssrc=2), arrival=0.1)
    buf.push(packet(5001, 777937, frame(0x40), ssrc=2), arrival=0.12)
    out = buf.drain(final=True)
    gap = 800 - 320  # the new stream starts at its wall-clock position (0.1 s), after the first stream's end
    assert out == pcm(0x10) + pcm(0x20) + bytes(2 * gap) + pcm(0x30) + pcm(0x40)
    assert buf.stats.ssrc_changes == 1
    assert buf.stats.lost == 0


def test_a_timestamp_jump_no_stream_makes_is_rebased_to_wall_clock() -> None:
    buf = rtp.LegBuffer()
    buf.push(packet(0, 0, frame(0x10)), arrival=0.0)
    buf.push(packet(1, 160 + 3600 * 8000, frame(0x20)), arrival=0.02)  # an hour ahead after 20 ms
    assert buf.drain(final=True) == pcm(0x10) + pcm(0x20)


def test_alaw_and_dynamic_payload_types() -> None:
    buf = rtp.LegBuffer(codecs={8: g711.PCMA, 96: g711.PCMU})
    buf.push(packet(0, 0, frame(0xD5), pt=8), arrival=0)
    buf.push(packet(1, 160, frame(0x10), pt=96), arrival=0)
    buf.push(packet(2, 320, frame(0x10), pt=13), arrival=0)  # comfort noise: silence
    buf.push(packet(3, 480, frame(0x10), pt=96), arrival=0)
    assert buf.drain(final=True) == g711.decode(frame(0xD5), g711.PCMA) + pcm(0x10) + SILENCE + pcm(0x10)
    assert buf.stats.ignored == 1


def dtmf(event: int, end: bool, duration: int) -> bytes:
    return struct.pack("!BBH", event, (0x80 if end else 0) | 10, duration)


def test_rfc4733_digits_reported_once_at_their_end() -> None:
    buf = rtp.LegBuffer(dtmf_type=101)
    buf.push(packet(0, 0, frame(0x10)), arrival=0)
    for i, (end, dur) in enumerate([(False, 160), (False, 320), (True, 800), (True, 800), (True, 800)]):
        buf.push(packet(1 + i, 160, dtmf(5, end, dur), pt=101), arrival=0.02 * i)  # same event timestamp
    buf.push(packet(6, 1600, dtmf(11, True, 400), pt=101), arrival=0.2)
    assert [(d.digit, d.at, d.duration) for d in buf.dtmf] == [("5", 0.02, 0.1), ("#", 0.2, 0.05)]


def test_wav_writer_is_valid_after_every_flush(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import wave

    from telephony.recorder import WavWriter

    w = WavWriter(tmp_path / "leg.wav")
    w.write(pcm(0x10))
    w.flush()
    with wave.open(str(tmp_path / "leg.wav")) as r:  # readable while still open for writing
        assert r.getnframes() == 160 and r.getframerate() == 8000
        assert r.readframes(160) == pcm(0x10)
    w.write(pcm(0x20))
    w.close()
    with wave.open(str(tmp_path / "leg.wav")) as r:
        assert r.readframes(400) == pcm(0x10) + pcm(0x20)
    assert np.frombuffer(pcm(0x10), "<i2")[0] == g711.ULAW_DECODE[0x10]
