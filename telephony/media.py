"""The RTP media engine: its own process, so RTP never waits behind SIP (or the reverse).

The SIP process binds each stream's UDP socket (so it can put the port in its SDP answer at once) and
hands the descriptor over a SOCK_SEQPACKET control socket (``socket.send_fds``); from then on the engine
owns it. One epoll loop receives every packet, places it with ``rtp.LegBuffer``, writes each leg every
100 ms and flushes it at least once a second (sealed under the call's data key, which ``open`` brings: the
audio is in clear only in memory, a second at most; a WAV in clear when encryption is off; see
``recorder``), plays the greeting to the caller paced at 20 ms, reports DTMF and silent legs (the
inactivity timeout) back, and publishes typed frames.

Control messages are JSON objects. In: ``open`` (+ fd), ``remote``, ``greet``, ``close``, ``call_start``,
``call_end``, ``stop``. Out: ``dtmf``, ``timeout``, ``closed`` (with the leg's packet statistics).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import random
import select
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from telephony import g711, rtp
from telephony.frames import AudioChunk, CallEnded, CallStarted, FrameBus
from telephony.recorder import LegWriter, open_leg

log = logging.getLogger("hotline.media")

DRAIN_EVERY = 0.1
FLUSH_EVERY = 1.0
IDLE_RELEASE = 0.25  # a leg quiet this long: release its audio without waiting for reordering
PTIME = 0.02
FRAME = 160
RECV_BUFFER = 1 << 20


@dataclass
class Greeting:
    """The greeting as 20 ms G.711 frames per law (the agent leg records them decoded)."""

    frames: dict[int, list[bytes]]

    @classmethod
    def from_pcm(cls, pcm: bytes) -> Greeting:
        frames = {}
        for law in (g711.PCMU, g711.PCMA):
            coded = g711.encode(pcm, law)
            frames[law] = [coded[i:i + FRAME].ljust(FRAME, coded[-1:] or b"\xff") for i in range(0, len(coded), FRAME)]
        return cls(frames)


@dataclass
class Player:
    """Sends the greeting to the caller and records it on the agent leg."""

    law: int
    payload_type: int
    frames: list[bytes]
    out: LegWriter
    next_at: float
    index: int = 0
    seq: int = field(default_factory=lambda: random.randrange(1 << 16))
    ts: int = field(default_factory=lambda: random.randrange(1 << 32))
    ssrc: int = field(default_factory=lambda: random.randrange(1 << 32))


@dataclass
class Stream:
    stream_id: str
    call_id: str
    role: str
    folder: Path
    sock: socket.socket
    buffer: rtp.LegBuffer
    t0: float  # unix time the call started: leg offsets are measured from it
    timeout: float
    remote: tuple[str, int] | None = None
    hold: bool = False
    last_packet: float = field(default_factory=time.monotonic)
    key: bytes | None = None  # the call's data key: legs sealed (None: WAVs in clear)
    writer: LegWriter | None = None
    player: Player | None = None
    dtmf_reported: int = 0
    chunk_start: int = 0
    offset: float = 0.0  # seconds after the call started of the leg's first sample


class MediaEngine:
    def __init__(self, control: socket.socket, greeting: Greeting | None, bus: FrameBus | None = None) -> None:
        self.control = control
        self.greeting = greeting
        self.bus = bus or FrameBus()
        self.epoll = select.epoll()
        self.streams: dict[str, Stream] = {}
        self.by_fd: dict[int, Stream] = {}
        self.running = True

    # --- control -------------------------------------------------------------------------------------

    def send(self, msg: dict[str, Any]) -> None:
        try:
            self.control.send(json.dumps(msg).encode())
        except OSError as e:  # the SIP process is gone (or hung): the recordings are on disk regardless
            log.warning("could not tell the SIP process %s: %s", msg.get("ev"), e)

    def on_control(self) -> None:
        try:
            data, fds, _flags, _addr = socket.recv_fds(self.control, 65536, 4)
        except (BlockingIOError, TimeoutError):
            return
        if not data:  # the SIP process ended: finish every leg cleanly and stop
            self.stop()
            return
        msg = json.loads(data)
        op = msg.pop("op")
        if op == "open":
            self.open(fds[0], **msg)
        elif op == "remote":
            self.set_remote(**msg)
        elif op == "greet":
            self.greet(**msg)
        elif op == "close":
            self.close(msg["stream_id"])
        elif op == "call_start":
            self.bus.publish(CallStarted(msg["call_id"], msg["source"], msg["caller"], msg["called"]))
        elif op == "call_end":
            self.bus.publish(CallEnded(msg["call_id"], msg["reason"]))
        elif op == "stop":
            self.stop()

    def open(self, fd: int, *, stream_id: str, call_id: str, role: str, folder: str, codecs: dict[str, int],
             dtmf: int | None, remote: list[Any] | None, t0: float, timeout: float, key: str | None = None) -> None:
        """A stream of a call: ``key`` is the call's data key (base64) its legs are sealed with; it came over
        the control socket (a socketpair with the SIP process) and stays in this process's memory."""
        sock = socket.socket(fileno=fd)
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
        buf = rtp.LegBuffer(codecs={int(k): v for k, v in codecs.items()}, dtmf_type=dtmf)
        s = Stream(stream_id, call_id, role, Path(folder), sock, buf, t0, timeout,
                   remote=(remote[0], int(remote[1])) if remote else None,
                   key=base64.b64decode(key) if key else None)
        self.streams[stream_id] = s
        self.by_fd[sock.fileno()] = s
        self.epoll.register(sock.fileno(), select.EPOLLIN)

    def set_remote(self, *, stream_id: str, remote: list[Any] | None, hold: bool) -> None:
        s = self.streams.get(stream_id)
        if s:
            s.remote = (remote[0], int(remote[1])) if remote else s.remote
            s.hold = hold
            s.last_packet = time.monotonic()

    def greet(self, *, stream_id: str, law: int, payload_type: int) -> None:
        s = self.streams.get(stream_id)
        if not s or not self.greeting or s.player:
            return
        out = open_leg(s.folder, "agent", call_id=s.call_id, data_key=s.key)
        (s.folder / "agent.offset").write_text(f"{time.time() - s.t0:.4f}")
        s.player = Player(law, payload_type, self.greeting.frames[law], out, time.monotonic())

    def close(self, stream_id: str) -> None:
        s = self.streams.pop(stream_id, None)
        if s is None:
            self.send({"ev": "closed", "stream_id": stream_id, "stats": {}})
            return
        self.epoll.unregister(s.sock.fileno())
        del self.by_fd[s.sock.fileno()]
        self._receive(s, time.monotonic())  # whatever is still queued in the socket
        self._release(s, final=True)
        s.sock.close()
        if s.writer:
            s.writer.close()
        if s.player:
            s.player.out.close()
        st = s.buffer.stats
        self.send({"ev": "closed", "stream_id": stream_id, "stats": {
            "received": st.received, "expected": st.expected, "lost": st.lost, "late": st.late,
            "duplicates": st.duplicates, "ssrc_changes": st.ssrc_changes,
            "seconds": s.buffer.written / rtp.RATE}})

    def stop(self) -> None:
        for stream_id in list(self.streams):
            self.close(stream_id)
        self.running = False

    # --- media ---------------------------------------------------------------------------------------

    def _receive(self, s: Stream, now: float) -> None:
        arrival = time.time()
        push, parse, recv = s.buffer.push, rtp.parse, s.sock.recvfrom
        got = False
        while True:
            try:
                data, addr = recv(2048)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # ICMP port unreachable reported on the socket, and the like
                continue
            try:
                push(parse(data), arrival)
            except rtp.RtpError:
                continue  # RTCP or junk on the RTP port
            got = True
            if s.remote is None or s.remote != addr:  # symmetric RTP: answer where the audio comes from
                s.remote = addr
        if got:
            s.last_packet = now
            if s.writer is None:
                s.writer = open_leg(s.folder, s.role, call_id=s.call_id, data_key=s.key)
                s.offset = max(0.0, arrival - s.t0)
                (s.folder / f"{s.role}.offset").write_text(f"{s.offset:.4f}")

    def _release(self, s: Stream, *, final: bool) -> None:
        if s.writer is None:
            return
        pcm = s.buffer.drain(final=final)
        if pcm:
            s.writer.write(pcm)
            if self.bus.active:
                start = s.offset + s.chunk_start / rtp.RATE
                self.bus.publish(AudioChunk(s.call_id, s.role, start, rtp.RATE, pcm))  # type: ignore[arg-type]
            s.chunk_start += len(pcm) // 2
        for d in s.buffer.dtmf[s.dtmf_reported:]:
            self.send({"ev": "dtmf", "stream_id": s.stream_id, "digit": d.digit, "at": round(d.at, 3),
                       "duration": round(d.duration, 3)})
        s.dtmf_reported = len(s.buffer.dtmf)

    def _play(self, now: float) -> None:
        """Send the greeting frames that are due. Called once per 20 ms tick, not per frame: with hundreds
        of calls at different phases, waking for each frame would scan every stream thousands of times a
        second; a frame sent up to one tick late is well within any receiver's jitter buffer."""
        for s in self.streams.values():
            p = s.player
            if p is None or p.index >= len(p.frames):
                continue
            while p.next_at <= now and p.index < len(p.frames):
                frame = p.frames[p.index]
                if s.remote and not s.hold:
                    with contextlib.suppress(OSError):
                        s.sock.sendto(rtp.build(payload_type=p.payload_type, seq=p.seq, timestamp=p.ts,
                                                ssrc=p.ssrc, payload=frame, marker=p.index == 0), s.remote)
                p.out.write(g711.decode(frame, p.law))  # what the caller heard, codec and all
                p.index += 1
                p.seq = (p.seq + 1) & 0xFFFF
                p.ts = (p.ts + FRAME) & 0xFFFFFFFF
                p.next_at += PTIME

    def _housekeeping(self, now: float, flush: bool) -> None:
        for s in list(self.streams.values()):
            self._release(s, final=now - s.last_packet > IDLE_RELEASE)
            if flush:
                if s.writer:
                    s.writer.flush()
                if s.player:
                    s.player.out.flush()
            if not s.hold and now - s.last_packet > s.timeout:
                s.last_packet = now  # report once per timeout period
                self.send({"ev": "timeout", "stream_id": s.stream_id})

    def run(self) -> None:
        self.control.settimeout(5.0)  # reads happen when epoll says so; a send waits (never drops an event)
        self.epoll.register(self.control.fileno(), select.EPOLLIN)
        ctrl = self.control.fileno()
        next_drain = time.monotonic() + DRAIN_EVERY
        next_flush = time.monotonic() + FLUSH_EVERY
        next_play = next_drain
        while self.running:
            timeout = max(0.0, min(next_drain, next_play) - time.monotonic())
            events = self.epoll.poll(timeout)
            now = time.monotonic()
            for fd, _ev in events:
                if fd == ctrl:
                    self.on_control()
                elif s := self.by_fd.get(fd):
                    self._receive(s, now)
            if now >= next_play:
                self._play(now)
                next_play = now + PTIME
            if now >= next_drain:
                flush = now >= next_flush
                self._housekeeping(now, flush)
                next_drain = now + DRAIN_EVERY
                if flush:
                    next_flush = now + FLUSH_EVERY


def load_greeting(path: str | None) -> Greeting | None:
    if not path:
        return None
    from asr.audio import decode

    channels = decode(Path(path), sample_rate=rtp.RATE)
    pcm = (channels[0] * 32767).clip(-32768, 32767).astype("<i2").tobytes()
    return Greeting.from_pcm(pcm)


def main() -> None:
    """``python -m telephony.media FD [--greeting FILE] [--live SOCKET]``: run the engine on an inherited
    control socket; with ``--live``, frames go to the live-transcription process listening there."""
    import argparse

    from app.logs import setup  # this process's log lines (callers' numbers in SIP/SDP) redacted like the rest

    setup()
    parser = argparse.ArgumentParser(prog="telephony.media")
    parser.add_argument("fd", type=int)
    parser.add_argument("--greeting")
    parser.add_argument("--live", type=Path)
    args = parser.parse_args()
    control = socket.socket(fileno=args.fd)
    bus = FrameBus()
    if args.live:
        from telephony.live_tap import LiveTap

        bus.subscribe(LiveTap(args.live))
    with contextlib.suppress(OSError):
        os.nice(-5)  # only works as root; RTP is the part that cannot wait
    MediaEngine(control, load_greeting(args.greeting), bus).run()


if __name__ == "__main__":
    main()
