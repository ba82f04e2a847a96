"""Transcription workers say they are alive: a heartbeat every ``HOTLINE_WORKER_HEARTBEAT_S`` seconds, kept where
the job queue is, so every node that shares the queue sees every worker.

- With ``HOTLINE_REDIS_URL`` (workers on several machines): a Redis key ``hotline.worker:HOST:PID`` per worker
  that expires after three missed beats.
- Without (the SQLite job queue: every worker on this machine): a file ``<data dir>/workers/HOST:PID`` whose
  modification time is the last beat; files of workers gone for long are removed.

A worker that stops cleanly removes its heartbeat at once; one that is killed is counted until its heartbeat
expires. ``GET /api/v1/health`` counts the live ones (app/health.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from app.config import Settings

log = logging.getLogger("hotline.worker")

PREFIX = "hotline.worker:"
MISSED = 3  # beats missed before a worker counts as gone


class Heartbeats:
    def __init__(self, settings: Settings) -> None:
        self.interval = max(0.1, settings.worker_heartbeat_s)
        self.ttl = self.interval * MISSED
        self.redis_url = settings.redis_url
        self.folder = settings.data_dir / "workers"
        self._redis: Any = None

    @property
    def redis(self) -> Any:
        if self._redis is None:
            import redis

            self._redis = redis.Redis.from_url(self.redis_url or "", socket_timeout=2, socket_connect_timeout=2)
        return self._redis

    def beat(self, worker: str) -> None:
        """``worker`` (``HOST:PID``) is alive now. Raises OSError or a Redis error when the store is down."""
        if self.redis_url:
            self.redis.set(PREFIX + worker, str(time.time()), px=int(self.ttl * 1000))
            return
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.folder / worker
        path.touch()
        os.utime(path)

    def gone(self, worker: str) -> None:
        """``worker`` stopped: not counted any more."""
        if self.redis_url:
            self.redis.delete(PREFIX + worker)
        else:
            (self.folder / worker).unlink(missing_ok=True)

    def alive(self) -> set[str]:
        """The workers (``HOST:PID``) whose last beat is at most three beats old."""
        if self.redis_url:
            return {k.decode()[len(PREFIX):] for k in self.redis.scan_iter(match=PREFIX + "*", count=500)}
        out = set()
        now = time.time()
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.folder):
                with contextlib.suppress(FileNotFoundError):
                    age = now - entry.stat().st_mtime
                    if age <= self.ttl:
                        out.add(entry.name)
                    elif age > max(3600.0, 100 * self.ttl):  # long gone (killed): tidy up
                        Path(entry.path).unlink(missing_ok=True)
        return out

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()
            self._redis = None


class Beating:
    """A daemon thread beating for ``worker`` until ``stop`` (which removes the heartbeat)."""

    def __init__(self, settings: Settings, worker: str) -> None:
        self.heartbeats = Heartbeats(settings)
        self.worker = worker
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._failing = False

    def start(self) -> None:
        self._beat()  # before the first job is taken
        self._thread.start()

    def _beat(self) -> None:
        try:
            self.heartbeats.beat(self.worker)
        except Exception as e:  # the queue's store is down: said once, tried again at the next beat
            if not self._failing:
                log.warning("worker heartbeat not written: %s", type(e).__name__)
            self._failing = True
        else:
            if self._failing:
                log.info("worker heartbeat written again")
            self._failing = False

    def _run(self) -> None:
        while not self._stop.wait(self.heartbeats.interval):
            self._beat()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        with contextlib.suppress(Exception):
            self.heartbeats.gone(self.worker)
        self.heartbeats.close()
