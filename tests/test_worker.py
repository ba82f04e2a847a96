"""Real `hotline worker` processes: a worker killed mid-job loses nothing and nothing is done twice.

SQLite + SqliteHuey, and PostgreSQL + RedisHuey (the multi-machine setup)."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psutil
import pytest
import sqlalchemy as sa

from app.audit import service as audit
from app.audit.models import AuditEvent
from app.cases.models import Case
from app.config import Settings
from app.db import Database, as_utc, utcnow
from app.jobs import JobQueue
from app.recordings import service as recordings
from app.recordings.models import CaseChannel, Recording
from app.transcripts.models import Transcript
from tests.conftest import CALL, REDIS_URL
from tests.processes import env_for, start, stop, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def jobs(settings: Settings, database: Database) -> Iterator[JobQueue]:
    if database.dialect == "postgresql":
        if not REDIS_URL:
            pytest.skip("HOTLINE_TEST_REDIS_URL is not set (.ci/run sets it)")
        settings.redis_url = REDIS_URL
    queue = JobQueue(settings, database=database)
    queue.huey.flush()
    yield queue
    queue.huey.flush()


def _ingest(settings: Settings, database: Database) -> int:
    with CALL.open("rb") as f, recordings.staged(settings, f) as staged:
        result = recordings.ingest(database=database, settings=settings, staged_file=staged, original_name=CALL.name,
                                   layout="caller-left", channel=CaseChannel.call, actor="test")
    return result.recording.id


def _status(database: Database, rec_id: int) -> str:
    with database.session() as db:
        rec = db.get(Recording, rec_id)
        assert rec is not None
        return rec.status


def _count(database: Database, model: type, rec_id: int) -> int:
    with database.session() as db:
        stmt = sa.select(sa.func.count()).select_from(model).where(model.recording_id == rec_id)
        return db.execute(stmt).scalar_one()


def test_killed_worker_loses_no_job_and_nothing_is_done_twice(
    settings: Settings, database: Database, jobs: JobQueue, tmp_path: Path
) -> None:
    rec_id = _ingest(settings, database)
    jobs.enqueue_transcription(rec_id)
    jobs.enqueue_transcription(rec_id)  # a duplicate message, as a re-sent job would be
    env, log = env_for(settings), tmp_path / "worker.log"

    first = start(["worker"], env, log)
    wait_for(lambda: _status(database, rec_id) == "transcribing", 90, "the first worker to start the job", log)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert _status(database, rec_id) == "transcribing" and _count(database, Transcript, rec_id) == 0

    second = start(["worker"], env, log)
    try:
        wait_for(lambda: _status(database, rec_id) == "done", 120, "the second worker to finish the job", log)
        assert _count(database, Transcript, rec_id) == 1 and _count(database, Case, rec_id) == 1
    finally:
        assert stop(second) == 0
    with database.session() as db:
        actions = list(db.execute(sa.select(AuditEvent.action).order_by(AuditEvent.seq)).scalars())
        assert audit.verify(db=db).ok
        rec = db.get(Recording, rec_id)
        assert rec is not None and rec.attempts == 2
    assert "transcription.requeued" in actions and actions.count("case.created") == 1
    assert "queued again 1 abandoned" in log.read_text()


def test_worker_exits_with_its_parent(settings: Settings, database: Database, tmp_path: Path) -> None:
    """`hotline serve` starts the worker with --parent-pid; if serve dies (even by kill -9) it follows."""
    import subprocess
    import sys

    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    worker = start(["worker", "--parent-pid", str(parent.pid)], env_for(settings), tmp_path / "w.log")
    # A worker started by someone else does not see `parent` as its parent, so it stops at once: that is
    # the same check that fires when serve dies. Wait for it.
    try:
        assert worker.wait(timeout=60) is not None
    finally:
        parent.kill()
        parent.wait()
    assert not psutil.pid_exists(worker.pid) or psutil.Process(worker.pid).status() == psutil.STATUS_ZOMBIE


def test_a_queue_that_cannot_be_reached_loses_no_job(settings: Settings, database: Database) -> None:
    """Redis down when a recording is on record: the upload still succeeds, the job's lease is cut short so
    the sweep sends it again soon, and a client that sends the same file again gets its job queued."""
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.users.models import Role
    from tests.conftest import add_user, login

    with socket.socket() as s:  # a port nobody listens on: Redis "down"
        s.bind(("127.0.0.1", 0))
        down = f"redis://127.0.0.1:{s.getsockname()[1]}/0"
    broken = JobQueue(settings.model_copy(update={"redis_url": down}), database=database)
    add_user(database, "li", Role.agent)
    with TestClient(create_app(settings, queue=broken, database=database)) as client:
        auth = login(client, "li")
        r = client.post("/api/v1/recordings", headers=auth, files={"file": ("c.wav", CALL.read_bytes(), "audio/wav")})
        assert r.status_code == 201, r.text
        rec_id = r.json()["id"]
        with database.session() as db:
            rec = db.get(Recording, rec_id)
            assert rec is not None and rec.status == "queued" and rec.lease_until is not None
            assert as_utc(rec.lease_until) <= utcnow() + timedelta(seconds=31)  # the sweep takes it within ~1 min
        working = JobQueue(settings, database=database)
        client.app.state.queue = working  # type: ignore[attr-defined]  # the queue is back
        again = client.post("/api/v1/recordings", headers=auth,
                            files={"file": ("c.wav", CALL.read_bytes(), "audio/wav")})
        assert again.status_code == 200 and again.json()["duplicate"] is True
        assert working.huey.pending_count() == 1  # the job the first try could not send
