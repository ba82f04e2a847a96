"""Child processes kept running: `hotline serve` starts the transcription worker and the SIP adapter (or the
live-transcription process) as children, and `hotline sip` its live-transcription process; a child that dies
(a crash, the OOM killer, a kill -9) is started again.

Restarts back off: the first after ``initial`` seconds, each further one after twice as long as the last, up to
``maximum``; a child that ran ``reset_after`` seconds before dying counts as healthy again and is restarted after
``initial`` seconds. Each death is logged with its exit code or signal. ``stop`` ends restarts and the children:
SIGTERM, then SIGKILL for one that has not exited within ``timeout`` seconds. The children stop by themselves if
the supervising process is gone (``_exit_with_parent`` in app/cli.py).

The state of each child (``Supervisor.state``) feeds ``GET /api/v1/health``.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger("hotline.supervisor")


@dataclass(frozen=True)
class Backoff:
    initial: float = 1.0
    maximum: float = 60.0
    reset_after: float = 60.0  # ran this long before dying: the next restart is quick again

    def delay(self, previous: float | None, ran_for: float) -> float:
        """Seconds to wait before the next start, after a child that ran ``ran_for`` s died; ``previous`` is
        the delay before its own start (None: its first start)."""
        if previous is None or ran_for >= self.reset_after:
            return self.initial
        return min(max(previous, self.initial) * 2, self.maximum)


@dataclass(frozen=True)
class ChildSpec:
    name: str  # "worker", "sip", "live": what logs and the health report call it
    argv: Sequence[str]


@dataclass(frozen=True)
class ChildState:
    """A child as the health report sees it (times from ``time.monotonic``)."""

    name: str
    alive: bool
    pid: int | None
    restarts: int
    last_exit: str | None  # "exit code 1", "signal SIGKILL"
    started_at: float | None  # when the running process (or the last one) was started
    unavailable_since: float  # when it last died, or the supervisor started it the first time


def describe_exit(code: int) -> str:
    """A Popen returncode in words: ``exit code 1``, ``signal SIGKILL``."""
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


class _Child:
    def __init__(self, spec: ChildSpec, now: float) -> None:
        self.spec = spec
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at: float | None = None
        self.next_start = now  # when a stopped child is due to be started
        self.delay: float | None = None  # the backoff before the current (or next) start
        self.restarts = 0
        self.last_exit: str | None = None
        self.unavailable_since = now


class Supervisor:
    """Start ``specs`` and keep them running on a background thread until ``stop``."""

    def __init__(self, specs: Sequence[ChildSpec], *, backoff: Backoff | None = None, poll_s: float = 0.2,
                 spawn: Callable[[Sequence[str]], subprocess.Popen[bytes]] | None = None) -> None:
        self.backoff = backoff or Backoff()
        self.poll_s = poll_s
        self._spawn = spawn or (lambda argv: subprocess.Popen(list(argv)))
        now = time.monotonic()
        self._children = {s.name: _Child(s, now) for s in specs}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.stopping = False  # a plain flag: set from signal handlers too (no locks there)

    @property
    def names(self) -> list[str]:
        return list(self._children)

    def start(self) -> None:
        with self._lock:
            for child in self._children.values():
                self._start(child)
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)
        self._thread.start()

    def state(self, name: str) -> ChildState | None:
        with self._lock:
            child = self._children.get(name)
            if child is None:
                return None
            proc = child.proc
            return ChildState(name, proc is not None and proc.poll() is None, proc.pid if proc else None,
                              child.restarts, child.last_exit, child.started_at, child.unavailable_since)

    def halt(self) -> None:
        """No more restarts (the process is shutting down); safe to call from a signal handler."""
        self.stopping = True

    def stop(self, timeout: float = 15) -> None:
        """End restarts, SIGTERM every child, SIGKILL any still running after ``timeout`` s; wait for all."""
        self.stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            procs = [c.proc for c in self._children.values() if c.proc is not None]
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    # --- the supervising thread -----------------------------------------------------------------------

    def _start(self, child: _Child) -> None:
        child.proc = self._spawn(child.spec.argv)
        child.started_at = time.monotonic()

    def _run(self) -> None:
        while not self.stopping:
            with self._lock:
                for child in self._children.values():
                    if self.stopping:
                        break
                    self._check(child, time.monotonic())
            self._wake.wait(self.poll_s)

    def _check(self, child: _Child, now: float) -> None:
        proc = child.proc
        if proc is not None:
            code = proc.poll()
            if code is None:
                return
            ran_for = now - (child.started_at or now)
            child.proc = None
            child.unavailable_since = now
            child.last_exit = describe_exit(code)
            child.delay = self.backoff.delay(child.delay, ran_for)
            child.next_start = now + child.delay
            log.error("%s (pid %d) stopped: %s after %.1f s; restarting it in %g s", child.spec.name, proc.pid,
                      child.last_exit, ran_for, child.delay)
            return
        if now < child.next_start:
            return
        try:
            self._start(child)
        except OSError as e:  # fork failed (out of memory, process limit): try again after a longer wait
            child.delay = self.backoff.delay(child.delay, 0.0)
            child.next_start = now + child.delay
            log.error("%s could not be started: %s; trying again in %g s", child.spec.name, e, child.delay)
            return
        child.restarts += 1
        assert child.proc is not None
        log.warning("%s restarted (pid %d; restart %d)", child.spec.name, child.proc.pid, child.restarts)


def exit_with_parent(parent_pid: int, *, every: float = 1.0) -> threading.Thread:
    """A daemon thread that ends this process (SIGTERM to itself) once ``parent_pid`` is no longer its parent:
    for helper processes (a process pool's worker) that would otherwise outlive a parent killed with SIGKILL."""

    def watch() -> None:
        while True:
            time.sleep(every)
            if os.getppid() != parent_pid:
                os.kill(os.getpid(), signal.SIGTERM)
                return

    thread = threading.Thread(target=watch, name="exit-with-parent", daemon=True)
    thread.start()
    return thread
