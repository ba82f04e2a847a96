"""The audit trail is append-only in the database and every kind of tampering is detected."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from app.audit import service as audit
from app.audit.models import AuditEvent
from app.db import Database


def _fill(database: Database, n: int = 5) -> None:
    with database.session() as db:
        for i in range(n):
            audit.record(db=db, actor="user:test", action="case.read", subject_type="case", subject_id=i,
                         details={"i": i, "note": "读取工单"})


def _verify(database: Database) -> audit.VerifyResult:
    with database.session() as db:
        return audit.verify(db=db)


def _without_guards(database: Database, *statements: str) -> None:
    """What someone with raw database access could do: drop the guard triggers, then edit."""
    with database.engine.begin() as conn:
        if database.dialect == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER audit_events_no_update")
            conn.exec_driver_sql("DROP TRIGGER audit_events_no_delete")
        else:
            conn.exec_driver_sql("DROP TRIGGER audit_events_no_change ON audit_events")
        for s in statements:
            conn.exec_driver_sql(s)


def test_chain_links_each_event_to_the_one_before(database: Database) -> None:
    _fill(database)
    with database.session() as db:
        events = list(db.execute(sa.select(AuditEvent).order_by(AuditEvent.seq)).scalars())
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(events, events[1:], strict=False))
    assert _verify(database) == audit.VerifyResult(True, 5)


@pytest.mark.parametrize("statement", ["UPDATE audit_events SET actor = 'x'", "DELETE FROM audit_events"])
def test_database_refuses_update_and_delete(database: Database, statement: str) -> None:
    _fill(database, 2)
    with pytest.raises(DBAPIError, match="append-only"), database.engine.begin() as conn:
        conn.exec_driver_sql(statement)
    assert _verify(database).ok


def test_detects_an_edited_event(database: Database) -> None:
    _fill(database)
    _without_guards(database, "UPDATE audit_events SET actor = 'user:someone-else' WHERE seq = 3")
    r = _verify(database)
    assert (r.ok, r.first_bad_seq) == (False, 3) and "edited" in r.reason


def test_detects_edited_details(database: Database) -> None:
    _fill(database)
    _without_guards(database, """UPDATE audit_events SET details = '{"i": 99, "note": "读取工单"}' WHERE seq = 2""")
    assert _verify(database).first_bad_seq == 2


def test_detects_a_deleted_event(database: Database) -> None:
    _fill(database)
    _without_guards(database, "DELETE FROM audit_events WHERE seq = 2")
    r = _verify(database)
    assert (r.ok, r.first_bad_seq) == (False, 3) and "removed" in r.reason


def test_detects_an_inserted_event(database: Database) -> None:
    _fill(database)
    # A forged event squeezed in as seq 3, the rest renumbered: its prev_hash is copied, its hash made up.
    _without_guards(
        database,
        "UPDATE audit_events SET seq = seq + 100 WHERE seq >= 3",
        "UPDATE audit_events SET seq = seq - 99 WHERE seq >= 103",
        "INSERT INTO audit_events (seq, at, actor, action, subject_type, subject_id, details, prev_hash, hash)"
        " SELECT 3, at, 'user:forger', 'case.read', 'case', '7', details, hash, hash FROM audit_events"
        " WHERE seq = 2",
    )
    r = _verify(database)
    assert (r.ok, r.first_bad_seq) == (False, 3)


def test_detects_reordered_events(database: Database) -> None:
    _fill(database)
    _without_guards(
        database,
        "UPDATE audit_events SET seq = 100 WHERE seq = 2",
        "UPDATE audit_events SET seq = 2 WHERE seq = 4",
        "UPDATE audit_events SET seq = 4 WHERE seq = 100",
    )
    r = _verify(database)
    assert (r.ok, r.first_bad_seq) == (False, 2)


def test_concurrent_appends_keep_one_chain(database: Database) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def append(i: int) -> None:
        with database.session() as db:
            audit.record(db=db, actor="worker:t", action="x", subject_type="t", subject_id=i)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(append, range(40)))
    r = _verify(database)
    assert r.ok and r.events == 40
