"""The audit trail is append-only in the database and every kind of tampering is detected."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from app.audit import service as audit
from app.audit.models import AuditEvent
from app.calls.models import Call
from app.cases.models import Case
from app.cli import app as cli
from app.config import Settings
from app.db import Database, utcnow
from app.enterprises import service as enterprises
from app.recordings.models import Recording
from app.users.models import Role
from app.warnings import service as warnings
from tests.conftest import CALL, PASSWORD, add_user, login
from tests.helpers import file_transcript
from tests.processes import env_for
from tests.test_roles import api_routes, concrete


def _fill(database: Database, n: int = 5) -> None:
    with database.session() as db:
        for i in range(n):
            audit.record(db=db, actor="user:test", action="case.read", subject_type="case", subject_id=i,
                         details={"i": i, "note": "读取工单"})


def _verify(database: Database) -> audit.VerifyResult:
    with database.session() as db:
        return audit.verify(db=db)


def _without_guards(database: Database, *statements: str, disable: bool = False) -> None:
    """What someone with raw database access could do: drop the guard triggers (or, on PostgreSQL, switch
    them off: ALTER TABLE … DISABLE TRIGGER), then edit."""
    with database.engine.begin() as conn:
        if database.dialect == "sqlite":  # SQLite has no way to switch a trigger off: dropped
            conn.exec_driver_sql("DROP TRIGGER audit_events_no_update")
            conn.exec_driver_sql("DROP TRIGGER audit_events_no_delete")
        elif disable:
            conn.exec_driver_sql("ALTER TABLE audit_events DISABLE TRIGGER USER")
        else:
            conn.exec_driver_sql("DROP TRIGGER audit_events_no_change ON audit_events")
            conn.exec_driver_sql("DROP TRIGGER audit_events_no_truncate ON audit_events")
        for s in statements:
            conn.exec_driver_sql(s)


def test_chain_links_each_event_to_the_one_before(database: Database) -> None:
    _fill(database)
    with database.session() as db:
        events = list(db.execute(sa.select(AuditEvent).order_by(AuditEvent.seq)).scalars())
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(events, events[1:], strict=False))
    r = _verify(database)
    assert (r.ok, r.events, r.first_bad_seq, r.head_seq, r.head_hash) == (True, 5, None, 5, events[-1].hash)


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


# --- every kind of tampering, with the triggers switched off the other way too; the tail; the anchor ----------


TAMPERING = {  # what was done → (statements, the first bad seq verify must name, the last intact one)
    "edit": (["UPDATE audit_events SET details = '{\"i\": 1, \"note\": \"改过\"}' WHERE seq = 4"], 4, 3),
    "delete": (["DELETE FROM audit_events WHERE seq = 3"], 4, 2),
    "insert": ([
        "UPDATE audit_events SET seq = seq + 100 WHERE seq >= 2",
        "UPDATE audit_events SET seq = seq - 99 WHERE seq >= 102",
        "INSERT INTO audit_events (seq, at, actor, action, subject_type, subject_id, details, prev_hash, hash)"
        " SELECT 2, at, 'user:forger', action, subject_type, subject_id, details, hash, hash FROM audit_events"
        " WHERE seq = 1",
    ], 2, 1),
    "reorder": ([
        "UPDATE audit_events SET seq = 100 WHERE seq = 3",
        "UPDATE audit_events SET seq = 3 WHERE seq = 5",
        "UPDATE audit_events SET seq = 5 WHERE seq = 100",
    ], 3, 2),
}


@pytest.mark.parametrize("disable", [False, True], ids=["triggers-dropped", "triggers-disabled"])
@pytest.mark.parametrize("kind", list(TAMPERING))
def test_every_tampering_is_named_by_its_first_bad_event(database: Database, kind: str, disable: bool) -> None:
    if disable and database.dialect == "sqlite":
        pytest.skip("SQLite triggers cannot be disabled, only dropped (the other variant)")
    _fill(database, 6)
    statements, first_bad, intact = TAMPERING[kind]
    _without_guards(database, *statements, disable=disable)
    r = _verify(database)
    assert (r.ok, r.first_bad_seq, r.head_seq) == (False, first_bad, intact), r


def _head(database: Database) -> audit.Anchor:
    r = _verify(database)
    assert r.ok
    return audit.Anchor(r.head_seq, r.head_hash)


def test_a_cut_back_tail_is_caught_by_the_anchor(database: Database) -> None:
    _fill(database, 6)
    anchor = _head(database)
    assert str(anchor) == _verify(database).head and anchor.seq == 6
    _without_guards(database, "DELETE FROM audit_events WHERE seq >= 5")
    alone = _verify(database)
    assert alone.ok and alone.head_seq == 4  # what is left links up: only the anchor can tell
    with database.session() as db:
        r = audit.verify(db=db, expect=anchor)
    assert (r.ok, r.first_bad_seq, r.head_seq) == (False, 5, 4)
    assert "ends at seq 4, before the anchor 6" in r.reason


def test_a_truncated_table_is_caught_by_the_anchor(database: Database) -> None:
    _fill(database, 3)
    anchor = _head(database)
    statement = "DELETE FROM audit_events" if database.dialect == "sqlite" else "TRUNCATE audit_events"
    _without_guards(database, statement)
    with database.session() as db:
        r = audit.verify(db=db, expect=anchor)
    assert (r.ok, r.events, r.first_bad_seq) == (False, 0, 1)


def test_the_database_refuses_truncate_on_postgres(database: Database) -> None:
    if database.dialect == "sqlite":
        pytest.skip("SQLite has no TRUNCATE; DELETE is refused (test_database_refuses_update_and_delete)")
    _fill(database, 2)
    with pytest.raises(DBAPIError, match="append-only"), database.engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE audit_events")


def test_a_chain_rewritten_with_fresh_hashes_is_caught_by_the_anchor(database: Database) -> None:
    """The hash has no secret: someone who edits an event and recomputes every hash after it gets a chain
    that links up. The head written down elsewhere no longer matches."""
    _fill(database, 5)
    anchor = _head(database)
    with database.session() as db:
        events = list(db.execute(sa.select(AuditEvent).order_by(AuditEvent.seq)).scalars())
    prev, statements = audit.GENESIS, []
    for e in events:
        actor = "user:someone-else" if e.seq == 2 else e.actor
        digest = audit.event_hash(seq=e.seq, at=e.at, actor=actor, action=e.action, subject_type=e.subject_type,
                                  subject_id=e.subject_id, details=e.details, prev_hash=prev)
        statements.append(f"UPDATE audit_events SET actor = '{actor}', prev_hash = '{prev}', hash = '{digest}'"
                          f" WHERE seq = {e.seq}")
        prev = digest
    _without_guards(database, *statements)
    assert _verify(database).ok  # consistent, so only the anchor shows it
    with database.session() as db:
        r = audit.verify(db=db, expect=anchor)
    assert (r.ok, r.first_bad_seq) == (False, 5) and "anchor" in r.reason


def test_an_anchor_of_a_longer_intact_chain_still_verifies(database: Database) -> None:
    _fill(database, 3)
    anchor = _head(database)
    _fill(database, 2)
    with database.session() as db:
        r = audit.verify(db=db, expect=anchor)
    assert (r.ok, r.head_seq) == (True, 5)


@pytest.mark.parametrize("text", ["", "5", "5:abc", "x:" + "0" * 64, "5:" + "g" * 64])
def test_bad_anchors_are_refused(text: str) -> None:
    with pytest.raises(audit.AnchorError):
        audit.Anchor.parse(text)
    assert audit.Anchor.parse("7:" + "A" * 64) == audit.Anchor(7, "a" * 64)


# --- the command line: --expect-head and --anchor-file -------------------------------------------------------


@pytest.fixture
def run(settings: Settings, database: Database):
    runner = CliRunner()
    env = env_for(settings)

    def invoke(*args: str):
        return runner.invoke(cli, list(args), env=env)

    return invoke


def test_cli_verify_prints_the_head_and_checks_an_anchor(run, database: Database) -> None:
    _fill(database, 4)
    r = run("audit", "verify")
    assert r.exit_code == 0, r.output
    head = re.search(r"head (\d+:[0-9a-f]{64})", r.output)
    assert head and head.group(1).startswith("4:")
    assert run("audit", "verify", "--expect-head", head.group(1)).exit_code == 0
    _without_guards(database, "DELETE FROM audit_events WHERE seq = 4")
    assert run("audit", "verify").exit_code == 0  # a cut-back tail looks intact on its own…
    r = run("audit", "verify", "--expect-head", head.group(1))
    assert r.exit_code == 1 and "seq=4" in r.output and "deleted from its end" in r.output  # …not with the anchor
    r = run("audit", "verify", "--expect-head", "4:nothex")
    assert r.exit_code == 2 and "SEQ:HASH" in r.output


def test_cli_anchor_file_is_checked_then_extended(run, database: Database, tmp_path: Path) -> None:
    anchors = tmp_path / "anchors.txt"
    _fill(database, 2)
    assert run("audit", "verify", "--anchor-file", str(anchors)).exit_code == 0
    _fill(database, 2)
    assert run("audit", "verify", "--anchor-file", str(anchors)).exit_code == 0
    lines = anchors.read_text().splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["2", "4"]
    _without_guards(database, "DELETE FROM audit_events WHERE seq >= 3")
    r = run("audit", "verify", "--anchor-file", str(anchors))
    assert r.exit_code == 1 and "seq=3" in r.output
    assert len(anchors.read_text().splitlines()) == 2  # a failed check adds no anchor


# --- over HTTP ---------------------------------------------------------------------------------------------------


def _actions(database: Database) -> list[str]:
    with database.session() as db:
        return list(db.execute(sa.select(AuditEvent.action).order_by(AuditEvent.seq)).scalars())


@pytest.fixture
def auditor(client: TestClient, database: Database) -> dict[str, str]:
    add_user(database, "auditor", Role.admin)
    return login(client, "auditor")


def test_api_verify_reports_the_head_and_checks_an_anchor(client: TestClient, database: Database,
                                                          auditor: dict[str, str]) -> None:
    r = client.get("/api/v1/audit/verify", headers=auditor).json()
    assert r["ok"] and r["head_seq"] == r["events"] and len(r["head_hash"]) == 64
    anchor = f"{r['head_seq']}:{r['head_hash']}"
    assert _actions(database)[-1] == "audit.verified"
    assert client.get("/api/v1/audit/verify", params={"expect_head": anchor}, headers=auditor).json()["ok"]
    ahead = f"{r['head_seq'] + 50}:{r['head_hash']}"
    bad = client.get("/api/v1/audit/verify", params={"expect_head": ahead}, headers=auditor).json()
    assert not bad["ok"] and "before the anchor" in bad["reason"]
    r = client.get("/api/v1/audit/verify", params={"expect_head": "nonsense"}, headers=auditor)
    assert (r.status_code, r.json()["code"]) == (422, "invalid_anchor")


def test_api_lists_events_newest_first_with_filters(client: TestClient, database: Database,
                                                    auditor: dict[str, str]) -> None:
    _fill(database, 3)
    page = client.get("/api/v1/audit/events", params={"action": "case.read", "limit": 2}, headers=auditor).json()
    assert page["total"] == 3 and [e["subject_id"] for e in page["items"]] == ["2", "1"]
    assert _actions(database)[-1] == "audit.read"
    assert client.get("/api/v1/audit/events", params={"actor": "nobody"}, headers=auditor).json()["total"] == 0


# --- the case timeline -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Filed:
    id: int
    recording_id: int
    transcript_id: int
    call_id: int


def _filed_call(database: Database, settings: Settings, said: list[tuple[str, str]], name: str) -> _Filed:
    """A case filed from a transcript of ``said``, its recording's audio on disk and the SIP call it came from."""
    case_id = file_transcript(database, said, name=name)
    with database.session() as db:
        case = db.get(Case, case_id)
        assert case is not None and case.transcript_id is not None
        rec = db.get(Recording, case.recording_id)
        assert rec is not None
        (settings.recordings_dir / rec.path).write_bytes(CALL.read_bytes())
        call = Call(call_uuid=uuid.uuid4().hex, source="sip", external_id=f"{name}@pbx", caller="13812345678",
                    called="12351", channel="来电", status="ended", started_at=utcnow(), recording_id=rec.id)
        db.add(call)
        db.flush()
        return _Filed(case_id, rec.id, case.transcript_id, call.id)


def test_timeline_has_the_case_its_recording_transcript_and_call_in_order_paginated(
    client: TestClient, settings: Settings, database: Database, auditor: dict[str, str]
) -> None:
    case = _filed_call(database, settings, [("caller", "公司拖欠工资三个月"), ("agent", "好的")], name="tl")
    case_id = case.id
    with database.session() as db:
        audit.record(db=db, actor="system", action="call.ended", subject_type="call", subject_id=case.call_id)
        audit.record(db=db, actor="worker:x", action="transcript.corrected", subject_type="transcript",
                     subject_id=str(case.transcript_id))
        other = audit.record(db=db, actor="system", action="case.read", subject_type="case", subject_id=case_id + 1)
    add_user(database, "agent1", Role.agent)
    agent = login(client, "agent1")
    assert client.get(f"/api/v1/cases/{case_id}", headers=agent).status_code == 200
    played = client.get(f"/api/v1/recordings/{case.recording_id}/audio", headers={**agent, "Range": "bytes=0-"})
    assert played.status_code == 206  # agents play by ranges (test_object_authorization.py)
    assert client.get(f"/api/v1/recordings/{case.recording_id}/download", headers=agent).status_code == 403
    assert client.get(f"/api/v1/recordings/{case.recording_id}/download", headers=auditor).status_code == 200
    r = client.get(f"/api/v1/cases/{case_id}/timeline", headers=auditor)
    events = r.json()
    actions = [e["action"] for e in events]
    assert actions == ["case.created", "call.ended", "transcript.corrected", "case.read", "recording.played",
                       "recording.downloaded"], actions
    assert other.seq not in [e["seq"] for e in events]
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert {e["actor"] for e in events} >= {"user:agent1", "user:auditor"}
    assert all(e["at"] and isinstance(e["details"], dict) for e in events)
    assert int(r.headers["x-total-count"]) == 6
    # the read of the timeline is itself on record, after the page it returned
    page = client.get(f"/api/v1/cases/{case_id}/timeline", params={"offset": 4, "limit": 2}, headers=auditor)
    assert [e["action"] for e in page.json()] == ["recording.played", "recording.downloaded"]
    assert int(page.headers["x-total-count"]) == 7
    last = client.get(f"/api/v1/cases/{case_id}/timeline", params={"offset": 6}, headers=auditor).json()
    assert [e["action"] for e in last] == ["case.timeline_read", "case.timeline_read"]
    # a refused attempt on the case's routes is part of its story too
    add_user(database, "nosy", Role.agent)
    nosy = login(client, "nosy")
    assert client.post(f"/api/v1/cases/{case_id}/escalate", json={"note": "x"}, headers=nosy).status_code == 403
    tail = client.get(f"/api/v1/cases/{case_id}/timeline", params={"offset": 8}, headers=auditor).json()
    assert [(e["action"], e["actor"]) for e in tail] == [("case.timeline_read", "user:auditor"),
                                                         ("auth.denied", "user:nosy")]


# --- audit completeness: every route that succeeds leaves an event, unless listed here with why not ------------


NOT_AUDITED = {
    ("GET", "/api/v1/health"): "a probe: no data",
    ("GET", "/api/v1/openapi.json"): "the API's own description (admins): no data",
    ("GET", "/api/v1/auth/me"): "the caller's own account",
    ("POST", "/api/v1/auth/refresh"): "renews the caller's own session (the login that opened it is audited)",
    ("GET", "/api/v1/notifications"): "the caller's own inbox (the cases in it are read, and audited, on open)",
    ("GET", "/api/v1/taxonomy"): "reference data, no personal information",
    ("GET", "/api/v1/lexicon"): "reference data, no personal information",
    ("GET", "/api/v1/enterprises"): "the enterprise registry: reference data, no personal information",
    ("GET", "/api/v1/enterprises/resolve"): "the enterprise registry: reference data, no personal information",
    ("GET", "/api/v1/warnings/summary"): "counts of warnings by grade and district, no personal information",
    ("GET", "/api/v1/warning-rules"): "the warning rules: reference data, no personal information",
    ("GET", "/api/v1/integrity/ruleset"): "the colour rules: reference data, no personal information",
    ("GET", "/api/v1/integrity/distribution"): "counts of enterprises by colour, no personal information",
    ("GET", "/api/v1/reports"): "the archive's list: kinds, periods and digests (each download is audited)",
    ("GET", "/api/v1/reports/{report_id}"): "one archived report's kind, period and digests (downloads audited)",
}


def _requests(settings: Settings) -> dict[tuple[str, str], Callable[[dict[str, Any]], dict[str, Any]]]:
    """How to make each route succeed, given what earlier responses returned (``seen``)."""
    return {
        ("POST", "/api/v1/auth/token"): lambda _: {"data": {"username": "auditor", "password": PASSWORD}},
        ("POST", "/api/v1/recordings"): lambda _: {"files": {"file": ("c.wav", CALL.read_bytes(), "audio/wav")}},
        ("GET", "/api/v1/search"): lambda _: {"params": {"q": "工资"}},
        ("PATCH", "/api/v1/cases/{case_id}"): lambda _: {"json": {"summary": "公司拖欠工资三个月，已核实"}},
        ("POST", "/api/v1/cases/{case_id}/transitions"): lambda _: {
            "json": {"to": "转办", "unit": "市南区劳动监察大队", "assignee": "auditor", "note": "请核查"}},
        ("POST", "/api/v1/cases/{case_id}/feedback"): lambda _: {"json": {"note": "已电话告知受理情况"}},
        ("POST", "/api/v1/cases/{case_id}/escalate"): lambda _: {"json": {"note": "逾期未办，督办"}},
        ("PUT", "/api/v1/cases/{case_id}/legal-hold"): lambda _: {"json": {"hold": True, "reason": "劳动争议仲裁中"}},
        ("POST", "/api/v1/users"): lambda _: {"json": {"username": "newbie", "role": "agent",
                                                       "password": "long-enough-1"}},
        ("PATCH", "/api/v1/users/{user_id}"): lambda _: {"json": {"role": "mediator"}},
        ("PUT", "/api/v1/taxonomy"): lambda seen: {"json": {"categories": [
            {k: v for k, v in c.items() if k != "id"} for c in seen["GET /api/v1/taxonomy"]["categories"]][::-1]}},
        ("POST", "/api/v1/lexicon"): lambda _: {"json": {"term": "市南区人社局", "kind": "other"}},
        ("PATCH", "/api/v1/transcripts/{transcript_id}/segments/{idx}"): lambda _: {
            "json": {"text": "公司拖欠工资三个月，一共八千六百元。", "version": 0}},
        ("GET", "/api/v1/enterprises/resolve"): lambda _: {"params": {"name": "青岛海丰水产有线公司"}},
        ("POST", "/api/v1/enterprises/import"): lambda _: {"files": {"file": (
            "企业名录.csv", "企业名称,区市\n青岛宏远汽车配件有限公司,城阳区\n".encode(), "text/csv")}},
        ("PUT", "/api/v1/cases/{case_id}/enterprise"): lambda seen: {
            "json": {"enterprise_id": seen["GET /api/v1/enterprises"]["items"][0]["id"]}},
        ("POST", "/api/v1/warnings/{warning_id}/transitions"): lambda _: {"json": {"to": "已签收"}},
        ("POST", "/api/v1/warnings/{warning_id}/snooze"): lambda _: {"json": {"more_cases": 2, "reason": "待核查"}},
        ("POST", "/api/v1/warning-rules"): lambda _: {"json": {"name": "企业欠薪", "group_by": "enterprise",
                                                               "categories": ["欠薪"], "window_days": 7}},
        ("POST", "/api/v1/enterprises/{enterprise_id}/objections"): lambda _: {"json": {"reason": "欠薪已补发"}},
        ("POST", "/api/v1/enterprises/{enterprise_id}/objections/{objection_id}/decision"): lambda _: {
            "json": {"status": "不成立", "outcome": "经核实仍有欠薪"}},
        ("PUT", "/api/v1/enterprises/{enterprise_id}/colour-override"): lambda _: {
            "json": {"colour": "黄", "reason": "监察部门已立案"}},
        ("POST", "/api/v1/integrity/ruleset"): lambda seen: {
            "json": {"rules": seen["GET /api/v1/integrity/ruleset"]["rules"], "note": "复核"}},
        ("POST", "/api/v1/clues"): lambda _: {"json": {"source": "舆情监测", "title": "网帖反映某公司拖欠工资",
                                                       "category": "欠薪", "district": "崂山区", "workers": 12}},
        ("POST", "/api/v1/clues/import"): lambda _: {"files": {"file": ("线索.xlsx", _xlsx(
            [["来源", "标题", "类别"], ["上级交办", "某工地拖欠农民工工资", "欠薪"]]),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")}},
        ("PATCH", "/api/v1/clues/{clue_id}"): lambda _: {"json": {"workers": 15}},
        ("POST", "/api/v1/clues/{clue_id}/transitions"): lambda _: {"json": {"to": "属实", "note": "已核实"}},
        ("GET", "/api/v1/ledgers/{kind}.xlsx"): lambda _: {},
        ("POST", "/api/v1/reports"): lambda _: {"json": {"kind": "daily", "period": _today()}},
        ("PUT", "/api/v1/warning-rules/{rule_id}"): lambda _: {"json": {"name": "企业欠薪", "group_by": "enterprise",
                                                                        "categories": ["欠薪"], "window_days": 14}},
    }


def _xlsx(rows: list[list[Any]]) -> bytes:
    from io import BytesIO

    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = BytesIO()
    book.save(out)
    return out.getvalue()


def _today() -> str:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d")


def _values(seen: dict[str, Any], case_id: int, recording_id: int, call_id: int,
            transcript_id: int = 0) -> dict[str, str]:
    """Path parameters: the fixtures' ids, or ids that earlier responses returned."""
    values = {"case_id": str(case_id), "recording_id": str(recording_id), "call_id": str(call_id),
              "transcript_id": str(transcript_id), "idx": "0"}
    if (listed := seen.get("GET /api/v1/enterprises")) and listed.get("items"):
        values["enterprise_id"] = str(listed["items"][0]["id"])
    if user := seen.get("POST /api/v1/users"):
        values["user_id"] = str(user["id"])
    if term := seen.get("POST /api/v1/lexicon"):
        values["term_id"] = str(term["id"])
    if (inbox := seen.get("GET /api/v1/notifications")) and inbox.get("items"):
        values["notification_id"] = str(inbox["items"][0]["id"])
    if (listed := seen.get("GET /api/v1/warnings")) and listed.get("items"):
        values["warning_id"] = str(listed["items"][0]["id"])
    if objection := seen.get("POST /api/v1/enterprises/{enterprise_id}/objections"):
        values["objection_id"] = str(objection["id"])
    if clue := seen.get("POST /api/v1/clues"):
        values["clue_id"] = str(clue["id"])
    values["kind"] = "arrears-new"
    if report := seen.get("POST /api/v1/reports"):
        values["report_id"], values["fmt"] = str(report["id"]), "pdf"
    if rule := seen.get("POST /api/v1/warning-rules"):
        values["rule_id"] = str(rule["id"])
    return values


def test_every_route_that_succeeds_writes_an_audit_event(
    client: TestClient, settings: Settings, database: Database, auditor: dict[str, str]
) -> None:
    case = _filed_call(database, settings, [("caller", "公司拖欠工资三个月，一共八千六百元"), ("agent", "好的")],
                       name="walk")
    case_id, call_id = case.id, case.call_id
    with database.session() as db:  # a registry to walk the enterprise routes over
        enterprises.import_file(db=db, path_or_bytes="企业名称,区市\n青岛海丰水产有限公司,崂山区\n".encode(),
                                actor="test", filename="registry.csv")
        transcript_id = db.get(Case, case_id).transcript_id  # type: ignore[union-attr]
        filed = db.get(Case, case_id)
        assert filed is not None
        # a group case about an enterprise: a red warning to walk the warning routes over
        filed.workers, filed.group_case, filed.enterprise, filed.district = 30, True, "青岛海丰水产有限公司", "崂山区"
        db.flush()
        warnings.evaluate_case(db=db, settings=settings, case_id=case_id)
    requests = _requests(settings)
    add_user(database, "changer", Role.agent)
    # logging out and changing one's password end the session: done in sessions of their own
    requests[("POST", "/api/v1/auth/logout")] = lambda _: {"headers": login(client, "auditor")}
    requests[("POST", "/api/v1/auth/password")] = lambda _: {"headers": login(client, "changer"), "json": {
        "current_password": PASSWORD, "new_password": "a-new-password-12351"}}
    seen: dict[str, Any] = {}
    silent, failed, audited = [], [], []
    for route in api_routes(client.app):  # type: ignore[arg-type]
        key = (route.method, route.path)
        with database.session() as db:
            before = db.execute(sa.select(sa.func.max(AuditEvent.seq))).scalar_one() or 0
        kwargs = requests.get(key, lambda _: {})(seen)
        headers = kwargs.pop("headers", auditor)
        r = client.request(route.method, concrete(route.path, _values(seen, case_id, case.recording_id, call_id,
                                                                            transcript_id or 0)),
                           headers=headers, **kwargs)
        if r.headers.get("content-type", "").startswith("application/json"):
            seen[f"{route.method} {route.path}"] = r.json()
        with database.session() as db:
            new = list(db.execute(sa.select(AuditEvent.action).where(AuditEvent.seq > before)).scalars())
        if key in NOT_AUDITED:
            continue
        if not 200 <= r.status_code < 300:
            failed.append(f"{route.method} {route.path}: {r.status_code} {r.text[:200]}")
        elif not new:
            silent.append(f"{route.method} {route.path}")
        else:
            audited.append(f"{route.method} {route.path}: {', '.join(new)}")
    assert failed == [], "routes the walk could not make succeed (teach _requests how)"
    assert silent == [], "routes that succeeded without writing an audit event"
    assert len(audited) >= 20
    assert set(NOT_AUDITED) <= {(r.method, r.path) for r in api_routes(client.app)}  # type: ignore[arg-type]
    assert _verify(database).ok


def test_record_many_chains_like_record_one_by_one(database: Database) -> None:
    from app.audit.service import Entry, record_many

    service = audit
    with database.session() as db:
        service.record(db=db, actor="test", action="one", subject_type="x", subject_id=1)
        assert record_many(db=db, entries=[]) == 0
        assert record_many(db=db, entries=[Entry("test", "many", "x", i, {"n": i}) for i in range(3)]) == 3
        service.record(db=db, actor="test", action="after", subject_type="x", subject_id=2)
    with database.session() as db:
        result = service.verify(db=db)
        assert result.ok and result.events == 5
