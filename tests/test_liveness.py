"""Liveness: `hotline serve` restarts a dead child (backoff, logged, all stopped on SIGTERM/Ctrl-C), workers say
they are alive (heartbeats in the data dir or Redis), and ``GET /api/v1/health`` reports each part, 503 when
one this node needs is down.

The end-to-end test kills the worker of a real `hotline serve` with SIGKILL: health turns 503, the worker is back
within seconds, health 200 again, and a recording uploaded afterwards is transcribed."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import psutil
import pytest
from fastapi.testclient import TestClient

from app import health
from app.config import Settings
from app.heartbeats import Beating, Heartbeats
from app.supervisor import Backoff, ChildSpec, ChildState, Supervisor, describe_exit
from tests.conftest import CALL, REDIS_URL
from tests.processes import env_for, start, stop, wait_for

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


# --- the supervisor --------------------------------------------------------------------------------------


def test_backoff_doubles_up_to_a_minute_and_resets_after_a_good_minute() -> None:
    b = Backoff()
    delays: list[float] = []
    previous = None
    for _ in range(9):  # a child that dies at once, again and again
        previous = b.delay(previous, ran_for=0.5)
        delays.append(previous)
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert b.delay(60, ran_for=59) == 60
    assert b.delay(60, ran_for=61) == 1  # it had been running fine for a minute: quick again
    assert describe_exit(-signal.SIGKILL) == "signal SIGKILL" and describe_exit(3) == "exit code 3"


@pytest.fixture
def supervisors() -> Iterator[list[Supervisor]]:
    made: list[Supervisor] = []
    yield made
    for s in made:
        s.stop(timeout=5)


def _pid_changes(sup: Supervisor, name: str, old: int | None, timeout: float = 10) -> ChildState:
    def new() -> ChildState | None:
        state = sup.state(name)
        return state if state and state.alive and state.pid != old else None
    return cast(ChildState, wait_for(new, timeout, f"{name} to be restarted"))


def test_a_killed_child_is_restarted_logged_and_all_stopped(supervisors: list[Supervisor],
                                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "hotline.supervisor")
    sup = Supervisor([ChildSpec("worker", SLEEPER), ChildSpec("sip", SLEEPER)], poll_s=0.05)
    supervisors.append(sup)
    sup.start()
    first = _pid_changes(sup, "worker", None)
    sip = sup.state("sip")
    assert first.pid and sip and sip.alive and first.restarts == 0
    killed = time.monotonic()
    os.kill(first.pid, signal.SIGKILL)
    down = wait_for(lambda: (s := sup.state("worker")) and not s.alive and s, 5, "the death to be seen")
    assert cast(ChildState, down).last_exit == "signal SIGKILL"
    again = _pid_changes(sup, "worker", first.pid)
    took = time.monotonic() - killed
    assert 0.9 <= took < 3, took  # the first restart comes after 1 s
    assert again.restarts == 1 and again.unavailable_since >= killed
    assert (s := sup.state("sip")) and s.pid == sip.pid and s.restarts == 0  # the others untouched
    assert f"worker (pid {first.pid}) stopped: signal SIGKILL" in caplog.text
    assert f"worker restarted (pid {again.pid}; restart 1)" in caplog.text
    sup.stop(timeout=5)
    for pid in (again.pid, sip.pid):
        assert pid and not psutil.pid_exists(pid)  # stopped and reaped


def test_a_crashing_child_backs_off(supervisors: list[Supervisor], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "hotline.supervisor")
    sup = Supervisor([ChildSpec("live", [sys.executable, "-c", "raise SystemExit(3)"])],
                     backoff=Backoff(initial=0.1, maximum=0.4, reset_after=60), poll_s=0.02)
    supervisors.append(sup)
    sup.start()
    wait_for(lambda: (s := sup.state("live")) and s.restarts >= 4, 20, "four restarts")
    delays = [r.getMessage().rsplit("restarting it in ", 1)[1] for r in caplog.records
              if "stopped: exit code 3" in r.getMessage()]
    assert delays[:5] == ["0.1 s", "0.2 s", "0.4 s", "0.4 s", "0.4 s"][:len(delays[:5])]
    stops = [r.created for r in caplog.records if "stopped: exit code 3" in r.getMessage()]
    starts = [r.created for r in caplog.records if "restarted (pid" in r.getMessage()]
    gaps = [b - a for a, b in zip(stops, starts, strict=False)][:4]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2 and gaps[2] >= 0.4 and gaps[3] >= 0.4, gaps


def test_no_restart_once_halted(supervisors: list[Supervisor]) -> None:
    sup = Supervisor([ChildSpec("worker", SLEEPER)], poll_s=0.05)
    supervisors.append(sup)
    sup.start()
    first = _pid_changes(sup, "worker", None)
    sup.halt()  # what SIGINT/SIGTERM to `hotline serve` does first: the children's exit is no crash
    assert first.pid
    os.kill(first.pid, signal.SIGTERM)
    time.sleep(1.5)
    state = sup.state("worker")
    assert state and not state.alive and state.restarts == 0


# --- heartbeats ------------------------------------------------------------------------------------------


@pytest.fixture(params=["files", "redis"])
def beat_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "redis" and not REDIS_URL:
        pytest.skip("HOTLINE_TEST_REDIS_URL is not set (.ci/run sets it)")
    return Settings(data_dir=tmp_path / "var", redis_url=REDIS_URL if request.param == "redis" else None,
                    worker_heartbeat_s=0.2)


def test_heartbeats_of_several_workers_seen_and_expired(beat_settings: Settings) -> None:
    """What a node sees of workers on other machines: each beats; a stopped one is gone at once, a killed one
    (no more beats) after three missed beats."""
    tag = f"{os.getpid()}-{time.monotonic_ns()}"  # the test Redis may be shared: only our names are looked at
    a, b = f"node-a-{tag}:101", f"node-b-{tag}:202"
    view = Heartbeats(beat_settings)
    beating = Beating(beat_settings, a)
    beating.start()
    try:
        Heartbeats(beat_settings).beat(b)  # beats once, then is "killed"
        assert {a, b} <= view.alive()
        time.sleep(0.8)  # more than three beats (0.6 s)
        assert a in view.alive() and b not in view.alive()
    finally:
        beating.stop()
    assert a not in view.alive()  # a clean stop removes the heartbeat at once
    view.close()


# --- GET /api/v1/health ----------------------------------------------------------------------------------


@dataclass
class FakeSupervisor:
    states: dict[str, ChildState]

    @property
    def names(self) -> list[str]:
        return list(self.states)

    def state(self, name: str) -> ChildState | None:
        return self.states.get(name)


def _child(name: str, *, alive: bool, pid: int = 4321, restarts: int = 0, down_for: float = 100) -> ChildState:
    now = time.monotonic()
    return ChildState(name, alive, pid if alive else None, restarts, None if alive else "signal SIGKILL", now - 200,
                      now - down_for)


@pytest.fixture
def probe_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "CACHE_S", 0.0)


def _health(client: TestClient, supervisor: FakeSupervisor | None) -> tuple[int, dict[str, Any]]:
    client.app.state.supervisor = supervisor  # type: ignore[attr-defined]
    r = client.get("/api/v1/health")
    return r.status_code, r.json()


def test_health_embedded_worker_up_starting_down(client: TestClient, settings: Settings, probe_now: None) -> None:
    settings.health_grace_s = 5
    me = f"{socket.gethostname()}:4321"
    Heartbeats(settings).beat(me)
    sup = FakeSupervisor({"worker": _child("worker", alive=True), "sip": _child("sip", alive=True, pid=99)})
    code, body = _health(client, sup)
    assert code == 200, body
    assert body["status"] == "ok" and body["down"] == []
    assert body["parts"] == {"database": "up", "queue": "up", "storage": "up", "disk": "up", "worker": "up",
                             "sip": "up"}
    assert body["workers"] == 1 and body["queued"] == 0 and body["oldest_queued_s"] is None
    assert body["disk_free_mb"] > 0 and body["restarts"] == {"worker": 0, "sip": 0}

    # killed: down at once (grace counted from its death: dead 100 s here)
    sup.states["worker"] = _child("worker", alive=False, restarts=1)
    code, body = _health(client, sup)
    assert code == 503 and body["down"] == ["worker"] and body["parts"]["worker"] == "down"
    assert body["restarts"]["worker"] == 1
    # restarted, loading its model (no heartbeat from the new pid yet), within the grace period: still 200
    sup.states["worker"] = _child("worker", alive=True, pid=5555, restarts=1, down_for=2)
    code, body = _health(client, sup)
    assert code == 200 and body["parts"]["worker"] == "starting"
    sup.states["worker"] = _child("worker", alive=True, pid=5555, restarts=1, down_for=6)  # past it
    assert _health(client, sup)[0] == 503
    Heartbeats(settings).beat(f"{socket.gethostname()}:5555")
    code, body = _health(client, sup)
    assert code == 200 and body["parts"]["worker"] == "up" and body["workers"] == 2  # the old pid's beat ages out

    sup.states["sip"] = _child("sip", alive=False)
    code, body = _health(client, sup)
    assert code == 503 and body["down"] == ["sip"]


def test_health_storage_disk_and_queue_age(client: TestClient, settings: Settings, probe_now: None,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from app.recordings.models import Recording

    Heartbeats(settings).beat("elsewhere:1")
    database = client.app.state.db  # type: ignore[attr-defined]
    from datetime import timedelta

    from app.db import utcnow

    with database.session() as db:
        db.add(Recording(sha256="0" * 64, path="x.wav", original_name="x.wav", size_bytes=1, format="wav",
                         codec="pcm", sample_rate=8000, channels=1, duration=1.0, layout="mono", channel="上传",
                         status="queued", uploaded_by="test", created_at=utcnow() - timedelta(seconds=90)))
    code, body = _health(client, None)
    assert code == 200 and body["queued"] == 1 and 89 <= body["oldest_queued_s"] <= 120
    assert body["parts"]["worker"] == "up"  # no worker here: any live one counts

    settings.health_min_free_mb = 1 << 40
    code, body = _health(client, None)
    assert code == 503 and body["down"] == ["disk"]
    settings.health_min_free_mb = 1

    moved = settings.recordings_dir.with_name("moved-away")
    settings.recordings_dir.rename(moved)
    try:
        code, body = _health(client, None)
        assert code == 503 and body["down"] == ["storage"]
        text = str(body)
        assert str(settings.data_dir) not in text and "Error" not in text  # up/down and counts, nothing more
    finally:
        moved.rename(settings.recordings_dir)
    assert _health(client, None)[0] == 200

    def broken() -> None:
        raise OSError("database is locked")

    monkeypatch.setattr(health.HealthProbe, "_database", lambda self: broken())
    code, body = _health(client, None)
    assert code == 503 and body["down"] == ["database"] and body["queued"] is None


def test_health_without_any_worker_is_503_after_the_grace_period(client: TestClient, settings: Settings,
                                                                 probe_now: None) -> None:
    """An API-only node: no worker anywhere is reported, and is a failure only where the site asks for workers
    (HOTLINE_HEALTH_MIN_WORKERS); a load balancer keeps the API in service while the workers are away."""
    settings.health_grace_s = 0.5
    time.sleep(0.6)
    code, body = _health(client, None)
    assert code == 200 and body["parts"]["worker"] == "down" and body["workers"] == 0

    settings.health_min_workers = 1
    client.app.state.health_probe = None  # type: ignore[attr-defined]  # a node started now
    code, body = _health(client, None)
    assert code == 200 and body["parts"]["worker"] == "down"  # within the grace period
    time.sleep(0.6)
    code, body = _health(client, None)
    assert code == 503 and body["down"] == ["worker"]
    Heartbeats(settings).beat("elsewhere:7")
    code, body = _health(client, None)
    assert code == 200 and body["workers"] == 1
    r = client.get("/api/v1/health")
    assert r.headers["cache-control"] == "no-store"


@pytest.mark.slow
@pytest.mark.parametrize("queue_kind", ["sqlite", "redis"])
def test_worker_process_beats_for_an_api_only_node(tmp_path: Path, probe_now: None, queue_kind: str) -> None:
    """Multi-node: a `hotline worker` process elsewhere (same queue) is counted by an API-only node's health,
    and no longer once it stops."""
    from app.db import Database
    from app.jobs import JobQueue
    from app.main import create_app

    if queue_kind == "redis" and not REDIS_URL:
        pytest.skip("HOTLINE_TEST_REDIS_URL is not set (.ci/run sets it)")
    redis_url = REDIS_URL if queue_kind == "redis" else None
    settings = Settings(data_dir=tmp_path / "var", redis_url=redis_url, health_grace_s=0, worker_heartbeat_s=0.5,
                        health_min_workers=1)
    settings.ensure_dirs()
    env = env_for(settings, HOTLINE_WORKER_HEARTBEAT_S="0.5")
    log = tmp_path / "worker.log"
    worker = start(["worker"], env, log)
    database = Database(settings.sqlalchemy_url)
    try:
        wait_for(lambda: "Huey consumer started" in log.read_text() or worker.poll() is not None, 120,
                 "the worker", log)
        me = f"{socket.gethostname()}:{worker.pid}"
        with TestClient(create_app(settings, database=database,
                                   queue=JobQueue(settings, database=database))) as client:
            def seen() -> dict[str, Any] | None:
                body = client.get("/api/v1/health").json()
                return body if body["parts"]["worker"] == "up" else None

            body = cast(dict[str, Any], wait_for(seen, 10, "the worker's heartbeat", log))
            assert me in Heartbeats(settings).alive() and body["workers"] >= 1
            assert stop(worker, signal.SIGTERM) == 0
            assert me not in Heartbeats(settings).alive()  # removed on the way out
            if not redis_url:  # our own data dir: nobody else's workers
                r = client.get("/api/v1/health")
                assert r.status_code == 503 and r.json()["down"] == ["worker"] and r.json()["workers"] == 0
    finally:
        stop(worker)
        database.dispose()


# --- a real `hotline serve` -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _child_pid(serve_pid: int, command: str) -> int | None:
    """The pid of `hotline serve`'s child running `hotline COMMAND` (not a zombie)."""
    for p in psutil.Process(serve_pid).children():
        try:
            if p.cmdline()[3:4] == [command] and p.status() != psutil.STATUS_ZOMBIE:
                return p.pid
        except (psutil.NoSuchProcess, IndexError):
            continue
    return None


@pytest.mark.slow
def test_serve_restarts_killed_children_and_health_follows(tmp_path: Path) -> None:
    """kill -9 the worker, then the SIP adapter, of a real `hotline serve`: each is restarted (logged with the
    signal), health is 503 while it is away and 200 again after; a recording uploaded after the worker's restart
    is transcribed, the restarted adapter answers; SIGTERM stops the whole tree, exit 0."""
    from tests.telephony.conftest import free_port
    from tests.telephony.test_sip_calls import request, sip_request

    settings = Settings(data_dir=tmp_path / "var", redis_url=None)
    port, sip_port = _free_port(), free_port()
    env = env_for(settings, HOTLINE_HTTP_PORT=str(port), HOTLINE_HEALTH_GRACE_S="0",
                  HOTLINE_WORKER_HEARTBEAT_S="0.5", HOTLINE_LIVE_ENABLED="false", HOTLINE_SIP_ENABLED="true",
                  HOTLINE_SIP_PORT=str(sip_port), HOTLINE_RTP_PORT_MIN="37000", HOTLINE_RTP_PORT_MAX="37998")
    log = tmp_path / "serve.log"
    serve = start(["serve"], env, log)
    base = f"http://127.0.0.1:{port}"
    tree: list[psutil.Process] = []

    def health() -> tuple[int, dict[str, Any]]:
        try:
            r = httpx.get(f"{base}/api/v1/health", timeout=5)
        except httpx.TransportError:
            return 0, {}
        return r.status_code, r.json()

    def kill_and_wait(name: str) -> tuple[float, float]:
        """SIGKILL child ``name``; (seconds until its new process runs, seconds until health is 200 again)."""
        old = _child_pid(serve.pid, name)
        assert old
        seen: list[tuple[int, str]] = []

        def polled(want: int) -> bool:
            code, body = health()
            seen.append((code, body.get("parts", {}).get(name, "")))
            return code == want

        killed = time.monotonic()
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: polled(503), 10, f"health to say {name} is down", log)
        new = cast(int, wait_for(lambda: (p := _child_pid(serve.pid, name)) != old and p, 30, f"a new {name}",
                                 log))
        respawned = time.monotonic() - killed
        wait_for(lambda: polled(200), 240, "health to be 200 again", log)
        ready = time.monotonic() - killed
        assert {part for code, part in seen if code == 503} <= {"down", "starting"}, seen
        text = log.read_text()
        assert f"{name} (pid {old}) stopped: signal SIGKILL" in text and f"{name} restarted (pid {new}" in text
        return respawned, ready

    try:
        wait_for(lambda: health()[0] == 200, 240, "the API, its worker and the SIP adapter", log)
        code, body = health()
        assert body["parts"]["worker"] == "up" and body["parts"]["sip"] == "up"
        assert body["restarts"] == {"worker": 0, "sip": 0}

        respawned, ready = kill_and_wait("worker")
        print(f"\nworker kill -9: new process after {respawned:.1f} s, beating (health 200) after {ready:.1f} s")
        password = (settings.data_dir / "initial-admin-password.txt").read_text().strip()
        with httpx.Client(base_url=base, timeout=30) as client:
            token = client.post("/api/v1/auth/token", data={"username": "admin", "password": password}).json()
            client.headers["Authorization"] = f"Bearer {token['access_token']}"
            up = client.post("/api/v1/recordings", data={"channel": "来电"},
                             files={"file": ("d03.wav", CALL.read_bytes(), "audio/wav")})
            assert up.status_code == 201, up.text
            rec_id = up.json()["id"]

            def done() -> dict[str, Any] | None:
                rec = client.get(f"/api/v1/recordings/{rec_id}").json()
                return rec if rec["status"] in ("done", "failed") else None
            rec = cast(dict[str, Any], wait_for(done, 300, "the upload to be transcribed by the new worker", log))
            assert rec["status"] == "done", rec

        respawned, ready = kill_and_wait("sip")
        print(f"sip kill -9: new process after {respawned:.1f} s, health 200 after {ready:.1f} s")
        wait_for(lambda: "SIP adapter on" in log.read_text().rsplit("sip restarted", 1)[-1], 30,
                 "the restarted adapter to listen", log)
        assert sip_request(sip_port, request("OPTIONS")) == ["SIP/2.0 200 OK"]
        code, body = health()
        assert code == 200 and body["restarts"] == {"worker": 1, "sip": 1} and body["down"] == []
        tree = [psutil.Process(serve.pid), *psutil.Process(serve.pid).children(recursive=True)]
    finally:
        code = stop(serve, signal.SIGTERM)
    assert code == 0  # SIGTERM (systemd, docker stop): the children stopped first, then a clean exit
    wait_for(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in tree), 20,
             "every process of the tree to exit", log)
    assert "restarted" not in log.read_text().split("Shutting down")[-1]  # nothing started again on the way out
    wait_for(lambda: not _ours(settings.data_dir), 20, "no process of this data dir left (a killed adapter's "
             "filing process included)", log)


def _ours(data_dir: Path) -> list[int]:
    """Processes still working in ``data_dir`` (by their HOTLINE_DATA_DIR)."""
    out = []
    for p in psutil.process_iter():
        try:
            if p.environ().get("HOTLINE_DATA_DIR") == str(data_dir) and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return out
