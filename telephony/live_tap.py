"""Live audio out of the media engine: frames forwarded to the live-transcription process.

A ``FrameBus`` subscriber that sends each frame as one SOCK_SEQPACKET message to the socket the live
process listens on. It never waits: while the live process is absent (not started yet, restarting) or
behind, audio frames are dropped and counted; the recording is unaffected, and live text is best effort.
Call started/ended frames are never dropped while connected: one that does not fit is kept and sent
before anything else (a lost "ended" would leave the call open in the live process). It reconnects at most
once every ``RETRY_S``.

Wire format (``encode``/``decode``): one byte of kind (``S`` started, ``A`` audio, ``E`` ended), a JSON
header, a newline, then (audio only) the 16-bit PCM.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import time
from pathlib import Path

from telephony.frames import AudioChunk, CallEnded, CallStarted, Frame

log = logging.getLogger("hotline.media")
RETRY_S = 2.0


def encode(frame: Frame) -> bytes:
    if isinstance(frame, AudioChunk):
        head = {"c": frame.call_id, "r": frame.role, "s": frame.start, "h": frame.sample_rate}
        return b"A" + json.dumps(head).encode() + b"\n" + frame.pcm
    if isinstance(frame, CallStarted):
        head = {"c": frame.call_id, "source": frame.source, "caller": frame.caller, "called": frame.called}
        return b"S" + json.dumps(head).encode() + b"\n"
    return b"E" + json.dumps({"c": frame.call_id, "reason": frame.reason}).encode() + b"\n"


def decode(data: bytes) -> Frame:
    """ValueError for anything that is not a frame ``encode`` made."""
    kind, (head, _, pcm) = data[:1], data[1:].partition(b"\n")
    h = json.loads(head)
    if kind == b"A":
        return AudioChunk(h["c"], h["r"], float(h["s"]), int(h["h"]), pcm)
    if kind == b"S":
        return CallStarted(h["c"], h["source"], h["caller"], h["called"])
    if kind == b"E":
        return CallEnded(h["c"], h["reason"])
    raise ValueError(f"unknown frame kind {kind!r}")


class LiveTap:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock: socket.socket | None = None
        self.next_try = 0.0
        self.dropped = 0
        self.held: list[bytes] = []  # call started/ended frames waiting for room

    def __call__(self, frame: Frame) -> None:
        sock = self.sock or self._connect()
        if sock is None:
            self.dropped += 1
            return
        if not isinstance(frame, AudioChunk):
            self.held.append(encode(frame))
        try:
            while self.held:
                sock.send(self.held[0])
                del self.held[0]
            if isinstance(frame, AudioChunk):
                sock.send(encode(frame))
        except BlockingIOError:
            self.dropped += isinstance(frame, AudioChunk)  # the live process is behind: drop audio, never wait
        except OSError:
            self._disconnect()
            self.dropped += 1

    def _connect(self) -> socket.socket | None:
        now = time.monotonic()
        if now < self.next_try:
            return None
        self.next_try = now + RETRY_S
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sock.setblocking(False)
        try:
            sock.connect(str(self.path))
        except OSError:
            sock.close()
            return None
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        log.info("live transcription connected (%s)", self.path)
        self.sock = sock
        return sock

    def _disconnect(self) -> None:
        self.held.clear()  # the live process restarts with no calls: nothing to end
        if self.sock:
            self.sock.close()
            log.warning("live transcription went away; frames are dropped until it is back")
        self.sock = None
