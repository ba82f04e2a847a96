"""The SIP side's handle on the media engine process (``telephony.media``): start it, send it commands
(handing over RTP sockets), and turn its replies into callbacks and awaited results."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from telephony.recorder import CallManifest

log = logging.getLogger("hotline.sip")


class MediaClient:
    def __init__(self, greeting: Path | None = None, live_socket: Path | None = None) -> None:
        self.greeting = greeting
        self.live_socket = live_socket
        self.on_event: Callable[[dict[str, Any]], None] = lambda ev: None
        self.on_exit: Callable[[], None] = lambda: None
        self._closing: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._sock: socket.socket | None = None
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        args = [sys.executable, "-m", "telephony.media", str(theirs.fileno())]
        if self.greeting:
            args += ["--greeting", str(self.greeting)]
        if self.live_socket:
            args += ["--live", str(self.live_socket)]
        self.process = subprocess.Popen(args, pass_fds=[theirs.fileno()])
        theirs.close()
        self._sock = ours
        asyncio.get_running_loop().add_reader(ours.fileno(), self._readable)

    def _send(self, msg: dict[str, Any], fd: int | None = None) -> None:
        assert self._sock is not None, "media engine not started"
        data = json.dumps(msg).encode()
        if fd is None:
            self._sock.send(data)
        else:
            socket.send_fds(self._sock, [data], [fd])

    def _readable(self) -> None:
        assert self._sock is not None
        try:
            data = self._sock.recv(65536)
        except BlockingIOError:
            return
        if not data:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            log.error("the media engine exited")
            for pending in self._closing.values():
                if not pending.done():
                    pending.set_result({})
            self.on_exit()
            return
        ev = json.loads(data)
        if ev["ev"] == "closed":
            fut = self._closing.pop(ev["stream_id"]) if ev["stream_id"] in self._closing else None
            if fut and not fut.done():
                fut.set_result(ev["stats"])
        else:
            self.on_event(ev)

    def open(self, sock: socket.socket, **stream: Any) -> None:
        self._send({"op": "open", **stream}, sock.fileno())
        sock.close()  # the engine holds its own descriptor now

    def remote(self, stream_id: str, remote: tuple[str, int] | None, hold: bool) -> None:
        self._send({"op": "remote", "stream_id": stream_id, "remote": remote, "hold": hold})

    def greet(self, stream_id: str, *, law: int, payload_type: int) -> None:
        self._send({"op": "greet", "stream_id": stream_id, "law": law, "payload_type": payload_type})

    def call_start(self, m: CallManifest) -> None:
        self._send({"op": "call_start", "call_id": m.call_id, "source": m.source, "caller": m.caller,
                    "called": m.called})

    def call_end(self, call_id: str, reason: str) -> None:
        self._send({"op": "call_end", "call_id": call_id, "reason": reason})

    async def close(self, stream_id: str) -> dict[str, Any]:
        """Close a stream; returns once its audio is on disk, with its packet statistics."""
        fut = asyncio.get_running_loop().create_future()
        self._closing[stream_id] = fut
        if self.process is None or self.process.poll() is not None:
            return {}
        self._send({"op": "close", "stream_id": stream_id})
        return await fut

    def stop(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._send({"op": "stop"})
            self._sock.close()
            self._sock = None
        if self.process:
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
