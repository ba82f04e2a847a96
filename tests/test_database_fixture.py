"""The ``database`` fixture hands out copies of a database migrated once per session (tests/conftest.py): each
copy must be what ``Database.upgrade()`` makes of an empty database, schema and rows alike."""

from __future__ import annotations

import re
import sqlite3
import uuid
from contextlib import closing
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.db import Database
from tests.conftest import PG_URL, in_schema, pg_dump, schema_of

# The rows a migration seeds carry the time it ran (the taxonomy's updated_at): the template's is older.
TIMESTAMP = re.compile(r"'\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d(:?\d\d)?)?'")


def sqlite_dump(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as conn:
        pragmas = [f"{name}={conn.execute(f'PRAGMA {name}').fetchone()[0]}"
                   for name in ("journal_mode", "user_version", "application_id", "page_size", "auto_vacuum",
                                "encoding")]
        # Alembic's batch mode (SQLite) recreates a table with its constraints, and its indexes, in no fixed
        # order: two upgrades differ there. So the dump is compared as a set of statements, each as its lines.
        statements = (TIMESTAMP.sub("<ts>", line).split("\n") for line in conn.iterdump())
        return pragmas + sorted(" | ".join(sorted(part.strip().rstrip(",") for part in lines)) for lines in statements)


def test_each_copy_is_what_upgrade_makes(request: pytest.FixtureRequest, database: Database, db_url: str,
                                        tmp_path: Path) -> None:
    if database.dialect == "sqlite":
        sqlite_copy_is_what_upgrade_makes(Path(db_url.removeprefix("sqlite:///")), tmp_path / "fresh.db")
    else:
        postgres_copy_is_what_upgrade_makes(schema_of(db_url), request.getfixturevalue("pg_admin"))


def sqlite_copy_is_what_upgrade_makes(copied: Path, fresh: Path) -> None:
    db = Database(f"sqlite:///{fresh}")
    try:
        db.upgrade()
    finally:
        db.dispose()
    copy = sqlite_dump(copied)
    assert copy == sqlite_dump(fresh)
    assert any(line.startswith('INSERT INTO "alembic_version"') for line in copy)
    assert any(line.startswith('INSERT INTO "taxonomy_categories"') for line in copy)
    assert any("CREATE TRIGGER" in line for line in copy) and any("fts5" in line for line in copy)


def postgres_copy_is_what_upgrade_makes(copied: str, admin: sa.Engine) -> None:
    assert PG_URL
    copy = pg_dump(copied)
    if copy is None:
        pytest.skip("pg_dump cannot dump this server: each test migrated its own schema")
    fresh = f"t_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {fresh}"))
    try:
        db = Database(in_schema(PG_URL, fresh))
        try:
            db.upgrade()
        finally:
            db.dispose()
        made = pg_dump(fresh)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {fresh} CASCADE"))
    assert made is not None
    normal = [TIMESTAMP.sub("<ts>", line) for line in copy.replace(copied, "<schema>").splitlines()]
    assert normal == [TIMESTAMP.sub("<ts>", line) for line in made.replace(fresh, "<schema>").splitlines()]
    assert any(line.startswith("INSERT INTO <schema>.alembic_version") for line in normal)
    assert any(line.startswith("INSERT INTO <schema>.taxonomy_categories") for line in normal)
    assert any(line.startswith("SELECT pg_catalog.setval('<schema>.taxonomy_categories_id_seq'") for line in normal)
    assert any(line.startswith("CREATE TRIGGER") for line in normal)
    assert any(line.startswith("CREATE FUNCTION <schema>.audit_events_append_only") for line in normal)
