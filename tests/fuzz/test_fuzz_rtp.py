"""RTP packets (RFC 3550) and the leg buffer behind them, under random and hand-built hostile packets.

``rtp.parse`` may raise only ``RtpError``; a packet it returns never holds more payload than it was given,
and its payload is the bytes between the header (CSRCs, extension) and the padding. ``build`` → ``parse``
gives back what was built. ``LegBuffer`` takes whatever ``parse`` returns without raising, and the PCM it
releases covers exactly the timeline it placed.
"""

from __future__ import annotations

import struct

from hypothesis import example, given
from hypothesis import strategies as st

from telephony import g711, rtp
from tests.fuzz.strategies import fuzz

u16, u32 = st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)


def check(data: bytes) -> rtp.RtpPacket | None:
    try:
        pkt = rtp.parse(data)
    except rtp.RtpError:
        return None
    assert len(pkt.payload) <= len(data) - 12
    assert pkt.payload in data and 0 <= pkt.payload_type <= 127
    return pkt


@fuzz(500)
@given(st.binary(max_size=300))
@example(b"\xb0" + bytes(11))  # extension flag, no room for its header
@example(b"\xa0" + bytes(10) + b"\xff")  # padding longer than the packet
@example(b"\x8f" + bytes(11))  # 15 CSRCs announced, none there
def test_random_bytes_raise_only_rtp_error(data: bytes) -> None:
    check(data)


@st.composite
def packets(draw: st.DrawFn) -> tuple[bytes, dict[str, object] | None]:
    """A packet with every flag combination, where the counts and lengths it announces may lie. Returns the
    bytes and, when nothing lies, what parse must find."""
    version = draw(st.sampled_from([2, 2, 2, 0, 1, 3]))
    padding, extension, marker = draw(st.booleans()), draw(st.booleans()), draw(st.booleans())
    cc = draw(st.integers(0, 15))
    csrcs = cc if draw(st.integers(0, 4)) else draw(st.integers(0, 15))  # sometimes not what cc says
    pt, seq, ts, ssrc = draw(st.integers(0, 127)), draw(u16), draw(u32), draw(u32)
    payload = draw(st.binary(max_size=200))
    ext_words = draw(st.integers(0, 8))
    ext_len = ext_words if draw(st.integers(0, 4)) else draw(u16)  # the length field may lie
    pad = draw(st.integers(1, 40))
    pad_count = pad if draw(st.integers(0, 4)) else draw(st.integers(0, 255))  # the last byte may lie
    raw = bytearray(struct.pack("!BBHII", version << 6 | padding << 5 | extension << 4 | cc,
                                marker << 7 | pt, seq, ts, ssrc))
    raw += b"".join(struct.pack("!I", draw(u32)) for _ in range(csrcs))
    if extension:
        raw += struct.pack("!HH", draw(u16), ext_len) + draw(st.binary(min_size=4 * ext_words,
                                                                       max_size=4 * ext_words))
    raw += payload
    if padding:
        raw += bytes(pad - 1) + bytes([pad_count])
    honest = version == 2 and csrcs == cc and (not extension or ext_len == ext_words) and (
        not padding or pad_count == pad)
    expect = dict(payload_type=pt, marker=marker, seq=seq, timestamp=ts, ssrc=ssrc, payload=payload)
    return bytes(raw), expect if honest else None


@fuzz(600)
@given(packets())
def test_every_header_flag_extension_padding_and_csrc_count(case: tuple[bytes, dict[str, object] | None]) -> None:
    data, expect = case
    pkt = check(data)
    if expect is not None:
        assert pkt == rtp.RtpPacket(**expect)  # type: ignore[arg-type]


@fuzz(300)
@given(st.integers(0, 127), u16, u32, u32, st.binary(max_size=400), st.booleans())
def test_build_then_parse_round_trip(pt: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: bool) -> None:
    data = rtp.build(payload_type=pt, seq=seq, timestamp=ts, ssrc=ssrc, payload=payload, marker=marker)
    assert rtp.parse(data) == rtp.RtpPacket(pt, marker, seq, ts, ssrc, payload)


KINDS = st.sampled_from(["next", "next", "next", "jump", "ssrc", "dup", "late", "dtmf"])
PAYLOAD_TYPES = st.sampled_from([g711.PCMU, g711.PCMA, 101, rtp.COMFORT_NOISE, 96])
SIZES = st.sampled_from([0, 1, 3, 159, 160, 161, 320, 1400])
ARRIVAL_STEPS = st.sampled_from([0.0, 0.02, 0.02, 0.5, 3.0])
DTMF_PAYLOADS = st.one_of(st.binary(max_size=6), st.tuples(st.integers(0, 255), u16).map(
    lambda e: struct.pack("!BBH", e[0], 0x80 | 10, e[1])))


@st.composite
def streams(draw: st.DrawFn) -> list[tuple[bytes, float]]:
    """Packets of a hostile leg: SSRC switches, timestamp and sequence jumps and wraps, duplicates, late
    packets, odd payload types (comfort noise, DTMF with short or end-flagged payloads), payloads of any size."""
    out, ssrc, seq, ts, arrival = [], draw(u32), draw(u16), draw(u32), 0.0
    for _ in range(draw(st.integers(1, 30))):
        kind = draw(KINDS)
        if kind == "jump":
            ts, seq = draw(u32), draw(u16)
        elif kind == "ssrc":
            ssrc = draw(u32)
        elif kind == "late":
            ts, seq = ts - draw(st.integers(1, 4000)), seq - draw(st.integers(1, 50))
        elif kind != "dup":
            ts, seq = ts + 160, seq + 1
        pt = draw(PAYLOAD_TYPES)
        payload = draw(DTMF_PAYLOADS) if pt == 101 else bytes([draw(st.integers(0, 255))]) * draw(SIZES)
        arrival += draw(ARRIVAL_STEPS)
        data = rtp.build(payload_type=pt, seq=seq & 0xFFFF, timestamp=ts & 0xFFFFFFFF, ssrc=ssrc, payload=payload,
                         marker=draw(st.booleans()))
        out.append((data, arrival))
    return out


@fuzz(150)
@given(streams(), st.integers(1, 5))
def test_leg_buffer_takes_any_packets_and_releases_exactly_its_timeline(
        packets_: list[tuple[bytes, float]], drain_every: int) -> None:
    buf = rtp.LegBuffer(dtmf_type=101)
    pcm = b""
    for i, (data, arrival) in enumerate(packets_):
        buf.push(rtp.parse(data), arrival)
        if i % drain_every == 0:
            pcm += buf.drain()
    pcm += buf.drain(final=True)
    assert len(pcm) == 2 * buf.written == 2 * buf.max_end
    assert buf.max_end <= (packets_[-1][1] + 61) * rtp.RATE  # rebased to wall clock, never far ahead
    assert buf.stats.received == len(packets_) and buf.stats.lost >= 0
    assert all(d.digit in rtp.DTMF_EVENTS for d in buf.dtmf)


@fuzz(200)
@given(st.binary(max_size=500), st.sampled_from([g711.PCMU, g711.PCMA]))
def test_g711_decodes_any_bytes_and_encodes_back(payload: bytes, law: int) -> None:
    pcm = g711.decode(payload, law)
    assert len(pcm) == 2 * len(payload)
    assert g711.decode(g711.encode(pcm, law), law) == pcm  # μ-law 0x7F and 0xFF are both 0
