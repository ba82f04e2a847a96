"""What the live process uses to send transcript events to the API: synchronous, thread-safe, best effort.

``make_publisher(settings)`` gives a ``Publisher`` whose ``publish(event)`` validates the event, queues it and
returns at once; a background thread delivers it:

- with ``HOTLINE_REDIS_URL``: straight into Redis, in the format ``RedisHub`` reads (``hub.PUBLISH_LUA``);
- otherwise: as a JSON line over the Unix socket ``<data dir>/live.sock`` that the API process serves
  (``ingest.py``).

While the API (or Redis) cannot be reached, events are dropped and the thread keeps retrying, backing off up
to ``RETRY_MAX`` seconds; more than ``MAX_QUEUED`` undelivered events are dropped too. Nothing here raises
to the caller or blocks it (``close`` waits at most ``CLOSE_WAIT`` seconds for what is queued).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import redis

from app.config import Settings
from app.live.hub import PUBLISH_LUA, REDIS_PREFIX, RedisLayout, normalized
from app.live.models import dumps

log = logging.getLogger("hotline.live")

SOCKET_NAME = "live.sock"
MAX_QUEUED = 1_000
RETRY_MIN = 0.05
RETRY_MAX = 1.0
SEND_TIMEOUT = 5.0
CLOSE_WAIT = 2.0
Event = dict[str, Any]


class Publisher(Protocol):
    def publish(self, event: Event) -> None:
        """Send one event (best effort): never raises, never blocks."""
        ...

    def close(self) -> None:
        """Deliver what is queued (waiting at most ``CLOSE_WAIT`` seconds) and stop."""
        ...


def make_publisher(settings: Settings) -> Publisher:
    if settings.redis_url:
        return BackgroundPublisher(RedisSink(settings.redis_url))
    return BackgroundPublisher(SocketSink(socket_path(settings)))


# --- the Unix socket -------------------------------------------------------------------------------------


def socket_path(settings: Settings) -> Path:
    return settings.data_dir / SOCKET_NAME


@contextlib.contextmanager
def unix_address(path: Path) -> Iterator[str]:
    """An address for ``bind``/``connect`` to ``path``. Unix socket addresses hold about 107 bytes; a longer
    path (deep data dirs) is reached through the directory's descriptor (``/proc/self/fd/N/name``, Linux)."""
    if len(os.fsencode(path)) < 100 or not Path("/proc/self/fd").is_dir():
        yield str(path)
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def connect_unix(path: Path, timeout: float = SEND_TIMEOUT) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        with unix_address(path) as address:
            sock.connect(address)
    except OSError:
        sock.close()
        raise
    return sock


# --- delivery --------------------------------------------------------------------------------------------


class Sink(Protocol):
    """Where a ``BackgroundPublisher`` delivers; its methods run on the publisher's thread and may raise."""

    def open(self) -> None: ...

    def send(self, event: Event) -> None: ...

    def shut(self) -> None: ...


class SocketSink:
    """JSON lines to the API process's ingest socket."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sock: socket.socket | None = None

    def __str__(self) -> str:
        return str(self.path)

    def open(self) -> None:
        self._sock = connect_unix(self.path)

    def send(self, event: Event) -> None:
        assert self._sock is not None
        self._sock.sendall((dumps(event) + "\n").encode())

    def shut(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class RedisSink:
    """Straight into Redis, as ``RedisHub.publish`` does."""

    def __init__(self, url: str, *, prefix: str = REDIS_PREFIX) -> None:
        self.layout = RedisLayout(prefix)
        self._url = url
        self._redis: redis.Redis | None = None
        self._script: Any = None

    def __str__(self) -> str:
        return "redis"

    def open(self) -> None:
        self._redis = redis.Redis.from_url(self._url, socket_timeout=SEND_TIMEOUT, socket_connect_timeout=2)
        self._redis.ping()
        self._script = self._redis.register_script(PUBLISH_LUA)

    def send(self, event: Event) -> None:
        keys, args = self.layout.script_args(event)
        self._script(keys=keys, args=args)

    def shut(self) -> None:
        if self._redis is not None:
            self._redis.close()
            self._redis = None


_STOP = object()


class BackgroundPublisher:
    """``publish`` queues, a daemon thread delivers to the sink. While the sink cannot be reached, events are
    dropped (live transcripts are best effort) and it is retried in the background."""

    def __init__(self, sink: Sink, *, max_queued: int = MAX_QUEUED) -> None:
        self.sink = sink
        self.dropped = 0
        self._max_queued = max_queued
        self._pending: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._up = False
        self._retry_at = 0.0
        self._delay = RETRY_MIN
        self._thread = threading.Thread(target=self._run, name="live-publisher", daemon=True)
        self._thread.start()

    @property
    def connected(self) -> bool:
        return self._up

    def publish(self, event: Event) -> None:
        try:
            event = normalized(event)
        except ValueError as e:
            log.warning("live event not sent, it is invalid: %s", e)
            return
        if self._closed or self._pending.qsize() >= self._max_queued:
            self.dropped += 1
            return
        self._pending.put(event)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._pending.put(_STOP)
        self._thread.join(CLOSE_WAIT)

    def __enter__(self) -> BackgroundPublisher:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- the thread ---

    def _run(self) -> None:
        try:
            while (item := self._next()) is not _STOP:
                if not self._up and time.monotonic() >= self._retry_at:
                    self._open()
                if item is not None:
                    self._deliver(item)
        finally:
            self._shut()

    def _next(self) -> Any:
        """The next queued event; None when it is time to retry the sink first."""
        wait = None if self._up else max(0.0, self._retry_at - time.monotonic())
        try:
            return self._pending.get(timeout=wait)
        except queue.Empty:
            return None

    def _open(self) -> None:
        try:
            self.sink.open()
        except Exception as e:
            self._shut()
            if self._delay == RETRY_MIN:
                log.info("live events to %s: not reachable (%s); dropping them and retrying", self.sink, e)
            self._retry_at = time.monotonic() + self._delay
            self._delay = min(self._delay * 2, RETRY_MAX)
            return
        self._up, self._delay = True, RETRY_MIN
        log.info("live events to %s: connected (%d dropped so far)", self.sink, self.dropped)

    def _deliver(self, event: Event) -> None:
        if not self._up:
            self.dropped += 1
            return
        try:
            self.sink.send(event)
        except Exception as e:
            log.warning("live events to %s: sending failed (%s); reconnecting", self.sink, e)
            self.dropped += 1
            self._shut()
            self._retry_at = time.monotonic()

    def _shut(self) -> None:
        self._up = False
        with contextlib.suppress(Exception):
            self.sink.shut()
