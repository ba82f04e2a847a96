"""``GET /api/v1/health``: is every part this node needs up? 200 when it is, 503 naming what is down.

Public (load balancers and monitoring probe it without a login), so it says up/down and counts, nothing more: no
addresses, paths, versions or error messages (those go to the log, once per change of state).

Parts:

- ``database``: a ``SELECT 1``; with it, ``queued`` (recordings waiting for a worker) and ``oldest_queued_s``.
- ``queue``: the job queue answers (Redis ``PING`` with ``HOTLINE_REDIS_URL``; else the SQLite queue file).
- ``storage``: the recordings store answers (a look-up of a probe key: a file check, or an S3 HEAD).
- ``disk``: the data dir has ``HOTLINE_HEALTH_MIN_FREE_MB`` free (``disk_free_mb``).
- ``worker``: with the worker a child of this `hotline serve` (the embedded default), that child: ``up`` once
  running and beating (app/heartbeats.py), ``starting`` while it loads its model after a (re)start, ``down``
  while it is dead (app/supervisor.py restarts it); needed. Without one here (``--no-worker``, workers on other
  machines): ``up`` while any worker beats; needed only with ``HOTLINE_HEALTH_MIN_WORKERS`` (an API node behind
  a load balancer keeps taking uploads while the workers are away). ``workers`` counts the live workers of every
  node; fewer than ``HOTLINE_HEALTH_MIN_WORKERS`` (default 0) counts as ``worker`` down on any node.
- ``sip`` (when this `hotline serve` runs the SIP adapter), ``live`` (the live-transcription process, when it
  runs it without SIP): their child process.

A part counts against the answer once it has not been up for ``HOTLINE_HEALTH_GRACE_S`` (a restart and a model
load take a few seconds); the rest at once. Probes run at most every ``CACHE_S`` seconds (answers in between are
served from the last probe) and each is given ``TIMEOUT_S`` to answer.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.config import Settings
from app.db import Database, utcnow
from app.heartbeats import Heartbeats
from app.supervisor import Supervisor

log = logging.getLogger("hotline.health")
router = APIRouter(tags=["health"])

CACHE_S = 3.0
TIMEOUT_S = 3.0
PROBE_KEY = "health/probe"  # never written: only looked up
_pool = ThreadPoolExecutor(8, thread_name_prefix="health")


@dataclass
class Probed:
    """What the slow probes found (kept for ``CACHE_S``)."""

    at: float
    up: dict[str, bool]
    workers: set[str] = field(default_factory=set)
    queued: int | None = None
    oldest_queued_s: int | None = None
    disk_free_mb: int | None = None
    errors: dict[str, str] = field(default_factory=dict)  # for the log only, never in the answer


@dataclass(frozen=True)
class Report:
    ok: bool
    body: dict[str, Any]


class HealthProbe:
    def __init__(self, settings: Settings, database: Database, queue: Any) -> None:
        self.settings = settings
        self.database = database
        self.queue = queue
        self.heartbeats = Heartbeats(settings)
        self.host = socket.gethostname()
        self.created = time.monotonic()
        self.enough_workers_since = self.created  # HOTLINE_HEALTH_MIN_WORKERS live, last time
        self._probed: Probed | None = None
        self._running: dict[str, Future[Any]] = {}
        self._lock = threading.Lock()
        self._was_up: dict[str, bool] = {}

    # --- probes -------------------------------------------------------------------------------------

    def _database(self) -> tuple[int, int | None]:
        from app.recordings.models import JobStatus, Recording

        with self.database.session() as db:
            db.execute(sa.text("SELECT 1"))
            n, oldest = db.execute(sa.select(sa.func.count(), sa.func.min(Recording.created_at))
                                   .where(Recording.status == JobStatus.queued)).one()
        if oldest is None:
            return int(n), None
        if oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        return int(n), max(0, int((utcnow() - oldest).total_seconds()))

    def _queue(self) -> bool:
        if self.settings.redis_url:
            return bool(self.heartbeats.redis.ping())
        self.queue.huey.pending_count()  # a query on the SQLite queue file
        return True

    def _storage(self) -> bool:
        from app.recordings import files

        url = files.location(self.settings)
        if url == files.LOCAL:
            folder = self.settings.recordings_dir
            if not (folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)):
                raise OSError("the recordings folder is missing or not writable")
        files.store(self.settings, url).exists(PROBE_KEY)
        return True

    def _disk(self) -> int:
        return int(shutil.disk_usage(self.settings.data_dir).free // (1 << 20))

    def _probe(self) -> Probed:
        """Every probe at once, all given ``TIMEOUT_S`` together; a probe still hanging from an earlier round is
        not started again (it is the answer: down)."""
        probes = {"database": self._database, "queue": self._queue, "storage": self._storage, "disk": self._disk,
                  "workers": self.heartbeats.alive}
        now = time.monotonic()
        answers: dict[str, Any] = {}
        errors: dict[str, str] = {}
        started: dict[str, Future[Any]] = {}
        for name, fn in probes.items():
            running = self._running.get(name)
            if running is not None and not running.done():
                errors[name] = "an earlier probe has not answered yet"
            else:
                started[name] = self._running[name] = _pool.submit(fn)
        deadline = now + TIMEOUT_S
        for name, future in started.items():
            try:
                answers[name] = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                errors[name] = f"no answer within {TIMEOUT_S:.0f} s"
            except Exception as e:
                errors[name] = f"{type(e).__name__}: {e}"
        probed = Probed(at=now, up={name: name in answers for name in probes if name != "workers"}, errors=errors)
        if "database" in answers:
            probed.queued, probed.oldest_queued_s = answers["database"]
        if "disk" in answers:
            probed.disk_free_mb = answers["disk"]
            if probed.disk_free_mb < self.settings.health_min_free_mb:
                probed.up["disk"] = False
                errors["disk"] = f"{probed.disk_free_mb} MB free"
        probed.workers = answers.get("workers", set())
        return probed

    def probed(self) -> Probed:
        with self._lock:
            if self._probed is None or time.monotonic() - self._probed.at >= CACHE_S:
                self._probed = self._probe()
            return self._probed

    # --- the report ---------------------------------------------------------------------------------

    def report(self, supervisor: Supervisor | None) -> Report:
        p = self.probed()
        now = time.monotonic()
        grace = self.settings.health_grace_s
        parts = {name: "up" if up else "down" for name, up in p.up.items()}
        failing = [name for name, up in p.up.items() if not up]

        worker = supervisor.state("worker") if supervisor else None
        if worker is not None:  # the embedded worker: the supervised child
            beating = worker.alive and f"{self.host}:{worker.pid}" in p.workers
            parts["worker"] = "up" if beating else "starting" if worker.alive else "down"
            if not beating and now - worker.unavailable_since > grace:
                failing.append("worker")
        else:  # workers elsewhere: any of them beating
            parts["worker"] = "up" if p.workers else "down"
        needed = self.settings.health_min_workers  # live workers of the whole site (0: not this node's business)
        if len(p.workers) >= needed:
            self.enough_workers_since = now
        elif now - self.enough_workers_since > grace and "worker" not in failing:
            failing.append("worker")
        for name in ("sip", "live"):
            child = supervisor.state(name) if supervisor else None
            if child is not None:
                parts[name] = "up" if child.alive else "down"
                if not child.alive and now - child.unavailable_since > grace:
                    failing.append(name)

        for name, state in parts.items():
            why = p.errors.get("workers" if name == "worker" else name) or state
            self._note(name, state == "up", why)
        ok = not failing
        body: dict[str, Any] = {"status": "ok" if ok else "down", "down": sorted(failing), "parts": parts,
                                "workers": len(p.workers), "queued": p.queued, "oldest_queued_s": p.oldest_queued_s,
                                "disk_free_mb": p.disk_free_mb}
        if supervisor:
            body["restarts"] = {name: s.restarts for name in supervisor.names if (s := supervisor.state(name))}
        return Report(ok, body)

    def _note(self, name: str, up: bool, why: str) -> None:
        """Log a part going down or coming back (once per change, not once per probe)."""
        if self._was_up.get(name, True) != up:
            if up:
                log.info("health: %s up again", name)
            else:
                log.warning("health: %s %s", name, why if why != "down" else "down")
        self._was_up[name] = up


def probe_for(request: Request) -> HealthProbe:
    state = request.app.state
    probe = getattr(state, "health_probe", None)
    if probe is None:
        probe = state.health_probe = HealthProbe(state.settings, state.db, state.queue)
    return probe


class HealthOut(BaseModel):
    """The answer, 200 and 503 alike."""

    status: Literal["ok", "down"]
    down: list[str]  # the parts that make it 503
    parts: dict[str, Literal["up", "starting", "down"]]
    workers: int  # live workers, all machines
    queued: int | None  # None: the database did not answer
    oldest_queued_s: int | None
    disk_free_mb: int | None
    restarts: dict[str, int] | None = None  # by `hotline serve` only


@router.get("/api/v1/health", response_model=HealthOut,
            responses={503: {"model": HealthOut, "description": "a part this node needs is down"}})
def health(request: Request) -> JSONResponse:
    """200 when every part this node needs is up; 503 with the parts that are down. No login needed."""
    report = probe_for(request).report(getattr(request.app.state, "supervisor", None))
    return JSONResponse(report.body, status_code=200 if report.ok else 503,
                        headers={"Cache-Control": "no-store"})
