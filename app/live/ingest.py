"""The API process's end of the live process's Unix socket (embedded default, no Redis): JSON lines in, validated,
published into the hub.

One server per data dir: it holds an exclusive ``flock`` on ``live.sock.lock`` for as long as it runs. Holding
the lock, any ``live.sock`` already there is stale (its server died) and is replaced. A second API process on
the same data dir finds the lock taken, logs it and serves no socket; its browsers then see no live events
(set ``HOTLINE_REDIS_URL`` to run several API processes). The socket is made mode 600: only this user's
processes may publish. A bad line is logged and skipped; the connection stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from app.config import Settings
from app.live.hub import EventHub
from app.live.publish import socket_path, unix_address

log = logging.getLogger("hotline.live")

MAX_LINE = 1024 * 1024


class IngestServer:
    """A running ingest socket; ``stop`` closes it and its connections and removes the socket file."""

    def __init__(self, path: Path, lock_fd: int, hub: EventHub) -> None:
        self.path = path
        self.hub = hub
        self._lock_fd = lock_fd
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()

    async def start(self, sock: socket.socket) -> None:
        self._server = await asyncio.start_unix_server(self._serve, sock=sock, limit=MAX_LINE)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._clients):
            task.cancel()
        await asyncio.gather(*self._clients, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self._lock_fd)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        try:
            await self._read(reader)
        finally:
            self._clients.discard(task)
            writer.close()

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                line = await reader.readline()
            except ValueError:
                log.warning("live ingest: a line over %d bytes skipped", MAX_LINE)
                continue
            except ConnectionError:
                return
            if not line:
                return
            if line.strip():
                await self._take(line)

    async def _take(self, line: bytes) -> None:
        try:
            await self.hub.publish(_event(line))
        except ValueError as e:
            log.warning("live ingest: bad event skipped (%s): %.200r", _first_error(e), line)
        except Exception:
            log.exception("live ingest: could not publish %.200r", line)


def _event(line: bytes) -> dict[str, object]:
    data = json.loads(line)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def _first_error(e: ValueError) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _take_lock(path: Path) -> int | None:
    """An exclusive lock on ``<socket>.lock`` (held until its descriptor is closed), or None if taken."""
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _bind(path: Path) -> socket.socket:
    """A listening socket at ``path``, replacing a stale socket file (the caller holds the lock)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with unix_address(path) as address:
            sock.bind(address)
        path.chmod(0o600)
        sock.listen(64)
    except OSError:
        sock.close()
        raise
    return sock


async def start(settings: Settings, hub: EventHub) -> IngestServer | None:
    """Serve ``<data dir>/live.sock`` into ``hub``; None (logged) if another process serves it or it fails."""
    path = socket_path(settings)
    try:
        lock = _take_lock(path)
    except OSError as e:
        log.error("live ingest: cannot lock %s (%s); live transcripts are off in this process", path, e)
        return None
    if lock is None:
        log.warning("live ingest: another API process serves %s; this one takes no live events "
                    "(set HOTLINE_REDIS_URL to run several API processes)", path)
        return None
    server = IngestServer(path, lock, hub)
    try:
        await server.start(_bind(path))
    except OSError as e:
        os.close(lock)
        log.error("live ingest: cannot serve %s (%s); live transcripts are off in this process", path, e)
        return None
    log.info("live ingest: serving %s", path)
    return server


@asynccontextmanager
async def running(settings: Settings, hub: EventHub) -> AsyncIterator[IngestServer | None]:
    """The live side of the API's lifespan: the ingest socket when there is no Redis; on the way out it is
    stopped and the hub closed (ending every subscription)."""
    server = None if settings.redis_url else await start(settings, hub)
    try:
        yield server
    finally:
        try:
            if server is not None:
                await server.stop()
        finally:
            await hub.aclose()
