"""RTP (RFC 3550) receive side: packet parsing, reordering, loss filled with silence, SSRC changes, and
RFC 4733 telephone-events (DTMF).

A ``LegBuffer`` turns packets of one call leg into a continuous 8 kHz 16-bit PCM stream. Each packet is
placed by its RTP timestamp, so packets that arrive out of order land where they belong and a lost
packet leaves silence of exactly its length. Audio is released ``REORDER_SAMPLES`` behind the newest
packet (or all of it once the leg has gone quiet), so a late packet within that window is still used;
one later than that is counted and dropped. A new SSRC (the far end restarted its stream, or a PBX
switched the media source) starts a new timeline that continues where the audio had got to in wall-clock
time, never overlapping what was written.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from telephony import g711

RATE = 8000
REORDER_SAMPLES = 480  # 60 ms: packets may arrive this late and still be placed in order (and live
# transcription gets each bit of audio at most this much plus one release interval after it arrived)
MAX_JUMP_SAMPLES = 60 * RATE  # a timestamp this far from wall-clock time is a broken stream: rebase
COMFORT_NOISE = 13
_HEADER = struct.Struct("!BBHII")
DTMF_EVENTS = "0123456789*#ABCD"


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    marker: bool
    seq: int
    timestamp: int
    ssrc: int
    payload: bytes


class RtpError(ValueError):
    pass


def parse(data: bytes) -> RtpPacket:
    """One RTP packet; RtpError for anything that is not RTP version 2 with a consistent length."""
    if len(data) < 12:
        raise RtpError("shorter than an RTP header")
    b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data)
    if b0 >> 6 != 2:
        raise RtpError("not RTP version 2")
    start = 12 + 4 * (b0 & 0x0F)
    if b0 & 0x10:  # header extension
        if len(data) < start + 4:
            raise RtpError("truncated header extension")
        start += 4 + 4 * struct.unpack_from("!H", data, start + 2)[0]
    end = len(data)
    if b0 & 0x20:  # padding
        end -= data[-1]
    if start > end:
        raise RtpError("truncated packet")
    return RtpPacket(b1 & 0x7F, bool(b1 & 0x80), seq, ts, ssrc, bytes(data[start:end]))


def build(*, payload_type: int, seq: int, timestamp: int, ssrc: int, payload: bytes, marker: bool = False) -> bytes:
    return _HEADER.pack(0x80, payload_type | (0x80 if marker else 0), seq & 0xFFFF, timestamp & 0xFFFFFFFF,
                        ssrc) + payload


def _signed32(x: int) -> int:
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x & 0x80000000 else x


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str
    at: float  # seconds from the leg's first audio
    duration: float


@dataclass
class LegStats:
    received: int = 0
    expected: int = 0
    late: int = 0
    duplicates: int = 0
    ignored: int = 0  # other payload types, comfort noise
    ssrc_changes: int = 0

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.received)


@dataclass
class _Stream:
    """The packets of one SSRC: where its timestamps start on the leg's timeline, and its sequence range."""

    ssrc: int
    ts_base: int
    pos_base: int
    first_seq: int
    max_ext_seq: int
    received: int = 0


@dataclass
class LegBuffer:
    """Packets of one leg in, PCM out (see the module docstring)."""

    codecs: dict[int, int] = field(default_factory=lambda: {g711.PCMU: g711.PCMU, g711.PCMA: g711.PCMA})  # pt → law
    dtmf_type: int | None = None
    stats: LegStats = field(default_factory=LegStats)
    written: int = 0  # samples released so far
    max_end: int = 0  # end of the newest audio placed
    started_at: float | None = None  # arrival time (caller's clock) of the first packet: sample 0
    dtmf: list[Dtmf] = field(default_factory=list)
    _pending: dict[int, tuple[int, bytes]] = field(default_factory=dict)
    _stream: _Stream | None = None
    _done_streams_expected: int = 0
    _dtmf_seen: set[int] = field(default_factory=set)

    def push(self, pkt: RtpPacket, arrival: float) -> None:
        if self.started_at is None:
            self.started_at = arrival
        stream = self._stream_for(pkt, arrival)
        self._count(stream, pkt.seq)
        pos = stream.pos_base + _signed32(pkt.timestamp - stream.ts_base)
        if pkt.payload_type == self.dtmf_type:
            self._telephone_event(pkt, pos)
            return
        if pkt.payload_type not in self.codecs:
            self.stats.ignored += 1
            return
        if pos < self.written:
            self.stats.late += 1
            return
        if pos in self._pending:
            self.stats.duplicates += 1
            return
        self._pending[pos] = (self.codecs[pkt.payload_type], pkt.payload)
        self.max_end = max(self.max_end, pos + len(pkt.payload))

    def _stream_for(self, pkt: RtpPacket, arrival: float) -> _Stream:
        s = self._stream
        assert self.started_at is not None
        wall = round((arrival - self.started_at) * RATE)
        if s is not None and s.ssrc == pkt.ssrc:
            pos = s.pos_base + _signed32(pkt.timestamp - s.ts_base)
            if abs(pos - wall) <= MAX_JUMP_SAMPLES:
                return s
        if s is not None:  # a new SSRC, or a timestamp jump no real stream makes
            self.stats.ssrc_changes += 1
            self._done_streams_expected += s.max_ext_seq - s.first_seq + 1
        base = 0 if s is None else max(self.max_end, wall)
        self._stream = _Stream(pkt.ssrc, pkt.timestamp, base, pkt.seq, pkt.seq)
        return self._stream

    def _count(self, s: _Stream, seq: int) -> None:
        self.stats.received += 1
        last = s.max_ext_seq
        ext = last + ((seq - last + 0x8000) & 0xFFFF) - 0x8000  # nearest to the highest seen (handles wrap)
        s.max_ext_seq = max(last, ext)
        s.first_seq = min(s.first_seq, ext)
        self.stats.expected = self._done_streams_expected + s.max_ext_seq - s.first_seq + 1

    def _telephone_event(self, pkt: RtpPacket, pos: int) -> None:
        """RFC 4733: one digit per event timestamp; reported once, when its end bit arrives."""
        if len(pkt.payload) < 4 or not pkt.payload[1] & 0x80 or pkt.timestamp in self._dtmf_seen:
            return
        self._dtmf_seen.add(pkt.timestamp)
        event, duration = pkt.payload[0], struct.unpack_from("!H", pkt.payload, 2)[0]
        if event < len(DTMF_EVENTS):
            self.dtmf.append(Dtmf(DTMF_EVENTS[event], pos / RATE, duration / RATE))

    def drain(self, *, final: bool = False) -> bytes:
        """Release the audio that can no longer change: up to ``REORDER_SAMPLES`` behind the newest packet
        (everything when ``final``), with gaps as silence. Returns 16-bit little-endian PCM."""
        horizon = self.max_end if final else self.max_end - REORDER_SAMPLES
        if horizon <= self.written:
            return b""
        ready = sorted(p for p in self._pending if p < horizon)
        out = np.zeros(horizon - self.written, dtype="<i2")
        end = horizon
        for pos in ready:
            law, payload = self._pending[pos]
            if pos + len(payload) > horizon:  # straddles the horizon: release up to it, next time
                end = pos
                break
            del self._pending[pos]
            samples = np.frombuffer(g711.decode(payload, law), dtype="<i2")
            start = pos - self.written
            out[start:start + len(samples)] = samples
        pcm = out[: end - self.written].tobytes()
        self.written = end
        return pcm
