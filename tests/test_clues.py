"""Clues (线索) and the ledgers (台账), on SQLite and PostgreSQL: the verification workflow and its refusals,
deadlines counted back from the promised date, XLSX import (all rows or none), the ledgers' rows and totals
read back from the XLSX with openpyxl and checked against the database, masking, permissions and audit."""

from __future__ import annotations

import hashlib
import io
import tracemalloc
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from openpyxl import Workbook, load_workbook
from typer.testing import CliRunner

from app.audit import service as audit
from app.audit.models import AuditEvent
from app.cases.models import Case, Counter
from app.cli import app as cli
from app.clues import ledgers, service
from app.clues.ledgers import COLUMNS, LedgerFilter
from app.clues.models import Clue, ClueCase, ClueCreate, ClueUpdate
from app.config import Settings
from app.db import Database
from app.enterprises.models import Enterprise
from app.recordings.models import Recording
from app.users.models import Role
from tests.conftest import add_user, login
from tests.processes import env_for

PHONE = "13812345678"
ID_NUMBER = "370202199001011234"
CODE = "91370212MA3C4X2R0L"  # a well-formed 统一社会信用代码 (check character computed below)
NOW = datetime(2026, 4, 1, 4, 0, tzinfo=UTC)  # 2026-04-01 12:00 Beijing


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _code() -> str:
    from app.enterprises.service import credit_check_char

    return CODE[:17] + credit_check_char(CODE[:17])


def add_case(database: Database, n: int, created_at: str, **fields: Any) -> int:
    with database.session() as db:
        rec = Recording(sha256=f"{n:064x}", path=f"r{n}.wav", original_name=f"r{n}.wav", size_bytes=1, format="wav",
                        codec="pcm_s16le", sample_rate=8000, channels=2, duration=1.0, layout="caller-left",
                        channel="来电", status="done", uploaded_by="test")
        db.add(rec)
        db.flush()
        values: dict[str, Any] = {"category": "欠薪", "status": "受理", "summary": f"工单{n}诉求", **fields}
        case = Case(case_no=f"12351-2026-{n:06d}", channel="来电", recording_id=rec.id, category_confidence=0.9,
                    category_evidence=[], created_by="test", created_at=utc(created_at), **values)
        db.add(case)
        db.flush()
        return case.id


def add_enterprise(database: Database, name: str, district: str = "崂山区") -> int:
    with database.session() as db:
        e = Enterprise(name=name, credit_code=_code(), district=district)
        db.add(e)
        db.flush()
        return e.id


def add_clue(database: Database, now: datetime = NOW, **fields: Any) -> int:
    values: dict[str, Any] = {"source": "舆情监测", "title": "某公司拖欠工资", **fields}
    with database.session() as db:
        return service.create(db=db, data=ClueCreate(**values), actor="test", now=now).id


def events(database: Database, action: str) -> list[AuditEvent]:
    with database.session() as db:
        return list(db.execute(sa.select(AuditEvent).where(AuditEvent.action == action)
                               .order_by(AuditEvent.seq)).scalars())


@pytest.fixture
def manager(client: TestClient, database: Database) -> dict[str, str]:
    add_user(database, "zhao", Role.manager)
    return login(client, "zhao")


@pytest.fixture
def admin(client: TestClient, database: Database) -> dict[str, str]:
    add_user(database, "root", Role.admin)
    return login(client, "root")


# --- workflow --------------------------------------------------------------------------------------------------


def test_the_workflow_moves_refuses_with_the_allowed_moves_and_is_audited(
    client: TestClient, database: Database, manager: dict[str, str]
) -> None:
    case_id = add_case(database, 1, "2026-03-01T02:00:00")
    r = client.post("/api/v1/clues", headers=manager, json={
        "source": "上级交办", "title": "某建筑公司拖欠 30 名农民工工资", "content": "上级转来：拖欠三个月",
        "district": "崂山", "workers": 30, "amount": 450000, "responsible": "王科长",
        "responsible_unit": "崂山区总工会"})
    assert r.status_code == 201, r.text
    clue = r.json()
    year = service.local_day(datetime.now(UTC)).year
    assert clue["number"].startswith("XS-") and clue["number"].endswith("-000001")
    assert clue["status"] == "核实中" and clue["next_statuses"] == ["属实", "不属实"] and clue["district"] == "崂山区"
    cid = clue["id"]

    def move(body: dict[str, Any]) -> Any:
        return client.post(f"/api/v1/clues/{cid}/transitions", headers=manager, json=body)

    r = move({"to": "结案", "note": "x"})
    assert r.status_code == 409
    assert r.json()["code"] == "invalid_transition" and r.json()["allowed"] == ["属实", "不属实"]
    assert "核实中" in r.json()["detail"]
    r = move({"to": "办结"})  # not a clue status at all
    assert r.status_code == 409 and r.json()["allowed"] == ["属实", "不属实"]
    r = move({"to": "不属实"})  # a verdict of 不属实 needs the reason
    assert r.status_code == 422 and r.json()["code"] == "invalid"
    assert move({"to": "属实", "note": "已电话核实"}).json()["verdict"] == "属实"
    r = move({"to": "转为工单", "case_ids": [999]})
    assert r.status_code == 422 and r.json()["field"] == "case_ids"
    r = move({"to": "转为工单", "case_ids": [case_id], "note": "已转 12351 工单"})
    assert r.status_code == 200, r.text
    assert [c["id"] for c in r.json()["cases"]] == [case_id] and r.json()["next_statuses"] == ["结案"]
    r = move({"to": "结案", "amount_recovered": 400000})
    assert r.status_code == 422  # 结案 needs a note
    r = move({"to": "结案", "note": "已追回 40 万元", "amount_recovered": 400000})
    done = r.json()
    assert done["status"] == "结案" and done["verdict"] == "属实" and done["amount_recovered"] == 400000
    assert done["closed_at"] and done["next_statuses"] == []
    r = move({"to": "核实中"})
    assert r.status_code == 409 and r.json()["allowed"] == [] and "已结案" in r.json()["detail"]
    # closed: only 追回金额 may still be corrected
    r = client.patch(f"/api/v1/clues/{cid}", headers=manager, json={"title": "改标题"})
    assert r.status_code == 409 and r.json()["code"] == "closed"
    r = client.patch(f"/api/v1/clues/{cid}", headers=manager, json={"amount_recovered": 420000})
    assert r.status_code == 200 and r.json()["amount_recovered"] == 420000

    moves = [(e.details["from"], e.details["to"]) for e in events(database, "clue.transition")]
    assert moves == [("核实中", "属实"), ("属实", "转为工单"), ("转为工单", "结案")]
    assert events(database, "clue.transition")[1].details["case_ids"] == [case_id]
    created = events(database, "clue.created")
    assert len(created) == 1 and created[0].actor == "user:zhao" and created[0].details["workers"] == 30
    updated = events(database, "clue.updated")
    assert [(e.details["field"], e.details["before"], e.details["after"]) for e in updated] == [
        ("amount_recovered", 400000, 420000)]
    with database.session() as db:
        assert audit.verify(db=db).ok
    # a refused registration takes no number: numbers stay gap-free
    r = client.post("/api/v1/clues", headers=manager, json={"source": "其他", "title": "x", "district": "北京"})
    assert r.status_code == 422 and r.json()["field"] == "district"
    r = client.post("/api/v1/clues", headers=manager, json={"source": "其他", "title": "第二条"})
    assert r.json()["number"] == f"XS-{year}-000002"


def test_re_verification_clears_the_verdict(database: Database) -> None:
    cid = add_clue(database)
    with database.session() as db:
        clue = db.get(Clue, cid)
        assert clue is not None
        service.transition(db=db, clue=clue, actor="t", to="不属实", note="查无此企业", now=NOW)
        assert (clue.verdict, clue.last_note) == ("不属实", "查无此企业")
        service.transition(db=db, clue=clue, actor="t", to="核实中", note="群众再次反映", now=NOW)
        assert (clue.status, clue.verdict, clue.verified_at) == ("核实中", None, None)
        with pytest.raises(service.ClueError) as refused:
            service.transition(db=db, clue=clue, actor="t", to="转为工单", now=NOW)
        assert refused.value.status == 409 and refused.value.extra["allowed"] == ["属实", "不属实"]


# --- 倒排工期 ----------------------------------------------------------------------------------------------------


def test_deadlines_are_counted_back_from_the_promised_date(
    client: TestClient, database: Database, manager: dict[str, str]
) -> None:
    # received 2026-03-01 23:30 Beijing (15:30 UTC): the Beijing day counts, not the UTC one
    received = "2026-03-01T23:30:00+08:00"
    r = client.post("/api/v1/clues", headers=manager, json={
        "source": "舆情监测", "title": "网帖：某厂欠薪", "received_at": received, "promised_date": "2026-03-20"})
    clue = r.json()
    assert (clue["promised_date"], clue["verify_lead_days"], clue["verify_due"]) == ("2026-03-20", 10, "2026-03-10")
    assert clue["due_at"].startswith("2026-03-20T16:00:00") and clue["verify_due_at"].startswith("2026-03-10T16:00")
    cid = clue["id"]
    # moving the promised date moves the 核实 deadline with it, on record with the reason
    r = client.patch(f"/api/v1/clues/{cid}", headers=manager, json={"promised_date": "2026-03-25"})
    assert r.json()["verify_due"] == "2026-03-15"
    derived = [e.details for e in events(database, "clue.updated") if e.details["field"] == "verify_due"]
    assert derived == [{"field": "verify_due", "before": "2026-03-10", "after": "2026-03-15",
                        "reason": "倒排工期：由承诺办结日期倒推"}]
    # a lead set by hand; the 核实 date itself sets the lead
    assert client.patch(f"/api/v1/clues/{cid}", headers=manager,
                        json={"verify_lead_days": 3}).json()["verify_due"] == "2026-03-22"
    r = client.patch(f"/api/v1/clues/{cid}", headers=manager, json={"verify_due": "2026-03-05"})
    assert (r.json()["verify_due"], r.json()["verify_lead_days"]) == ("2026-03-05", 20)
    # never before the day it was received
    r = client.patch(f"/api/v1/clues/{cid}", headers=manager, json={"verify_lead_days": 60})
    assert r.json()["verify_due"] == "2026-03-01"
    for body, field in (({"promised_date": "2026-02-28"}, "promised_date"),
                        ({"verify_due": "2026-03-26"}, "verify_due"),
                        ({"verify_due": "2026-02-27"}, "verify_due")):
        r = client.patch(f"/api/v1/clues/{cid}", headers=manager, json=body)
        assert (r.status_code, r.json()["field"]) == (422, field), body
    # without a promised date: 15 days after receipt
    r = client.post("/api/v1/clues", headers=manager, json={"source": "其他", "title": "x",
                                                             "received_at": "2026-03-01T09:00:00"})
    assert (r.json()["promised_date"], r.json()["verify_due"]) == ("2026-03-16", "2026-03-06")


def test_overdue_follows_the_stage_deadlines(database: Database) -> None:
    received = utc("2026-03-01T02:00:00")
    cid = add_clue(database, now=received, received_at=received, promised_date=date(2026, 3, 20))
    with database.session() as db:
        clue = db.get(Clue, cid)
        assert clue is not None and clue.verify_due == date(2026, 3, 10)
        assert not service.overdue(clue, utc("2026-03-10T15:59:00"))  # 23:59 Beijing on the 核实 day
        assert service.overdue(clue, utc("2026-03-10T16:01:00"))  # still 核实中 after it
        assert service.verify_overdue(clue, utc("2026-03-10T16:01:00"))
        service.transition(db=db, clue=clue, actor="t", to="属实", now=utc("2026-03-11T00:00:00"))
        assert not service.overdue(clue, utc("2026-03-15T00:00:00"))  # verified late, promised date not yet past
        assert service.verify_overdue(clue, utc("2026-03-15T00:00:00"))  # … which stays on record
        assert service.overdue(clue, utc("2026-03-21T00:00:00"))
        service.transition(db=db, clue=clue, actor="t", to="结案", note="办结", now=utc("2026-03-19T00:00:00"))
        assert not service.overdue(clue, utc("2027-01-01T00:00:00"))  # closed in time stays in time
        db.flush()
        sql = db.execute(sa.select(service.overdue_sql(utc("2027-01-01T00:00:00"))).select_from(Clue)).scalar()
        assert not sql


# --- import ------------------------------------------------------------------------------------------------------

HEADER = ["来源", "标题", "内容", "受理时间", "企业", "统一社会信用代码", "区市", "涉及人数", "金额", "承诺办结日期",
          "责任人", "责任单位"]


def xlsx(rows: list[list[Any]], title: bool = True) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    if title:
        sheet.append(["欠薪线索登记表"])
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def upload(client: TestClient, headers: dict[str, str], data: bytes) -> Any:
    return client.post("/api/v1/clues/import", headers=headers,
                       files={"file": ("线索.xlsx", data, "application/vnd.openxmlformats-officedocument.spreadsheetml"
                                                          ".sheet")})


def test_import_writes_nothing_when_any_row_is_bad(
    client: TestClient, database: Database, manager: dict[str, str]
) -> None:
    add_enterprise(database, "青岛某建筑公司")
    good = ["舆情监测", "网帖反映欠薪", "拖欠工资", datetime(2026, 3, 1, 9, 30), "青岛某建筑公司", "", "崂山区", 12,
            "1.2万", date(2026, 3, 20), "张三", "崂山区总工会"]
    bad = [
        ["微博", "来源不对", "", "2026-03-01", "", "", "", "", "", "", "", ""],  # row 4
        ["上级交办", "区市不对", "", "2026/3/2", "", "", "北京", "", "", "", "", ""],  # row 5
        ["上级督办", "日期不对", "", "三月一日", "", "", "", "-3", "abc", "2026-02-01", "", ""],  # row 6
        ["来信来访", "代码不对", "", "2026-03-03", "某厂", "91370212MA3C4X2R0X", "", "", "", "", "", ""],  # row 7
        ["其他", "承诺日期早于受理", "", "2026-03-05", "", "", "", "", "", "2026-03-01", "", ""],  # row 8
    ]
    r = upload(client, manager, xlsx([good, *bad]))
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "import_failed"
    found = {(e["row"], e["column"]) for e in body["errors"]}
    assert found == {(4, "来源"), (5, "区市"), (6, "受理时间"), (6, "涉及人数"), (6, "金额"), (7, "统一社会信用代码"),
                     (8, "承诺办结日期")}, body["errors"]
    assert all(e["message"] for e in body["errors"])
    assert any("未知的来源：微博" in e["message"] for e in body["errors"])
    with database.session() as db:  # nothing written: no clue, no number taken, nothing on record
        assert db.execute(sa.select(sa.func.count()).select_from(Clue)).scalar() == 0
        assert db.execute(sa.select(Counter).where(Counter.name.like("clue:%"))).first() is None
    assert events(database, "clue.created") == [] and events(database, "clues.imported") == []

    # an unregistered (but well-formed) credit code is refused too: the clue would show no enterprise
    from app.enterprises.service import credit_check_char

    unregistered = "91370203MA3C4X2R0" + credit_check_char("91370203MA3C4X2R0")
    r = upload(client, manager, xlsx([["舆情监测", "t", "", "2026-03-03", "", unregistered, "", "", "", "", "", ""]]))
    assert r.status_code == 422 and "企业库中没有" in r.json()["errors"][0]["message"]

    linked = ["上级交办", "", "某公司拖欠 8 人工资，联系电话 13812345678", "2026-03-02 14:00", "", _code(), "", "8",
              "96,000", "", "", ""]
    r = upload(client, manager, xlsx([good, linked], title=False))
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 2 and len(r.json()["numbers"]) == 2
    with database.session() as db:
        clues = db.execute(sa.select(Clue).order_by(Clue.id)).scalars().all()
        assert [c.amount for c in clues] == [12000, 96000]
        assert clues[0].enterprise_id is not None  # linked by its exact name
        assert clues[1].enterprise == "青岛某建筑公司" and clues[1].enterprise_id == clues[0].enterprise_id  # by code
        assert clues[1].title.startswith("某公司拖欠 8 人工资") and clues[1].district == "崂山区"
        assert clues[0].received_at == utc("2026-03-01T01:30:00")  # typed in Beijing time
        assert clues[0].promised_date == date(2026, 3, 20) and clues[0].responsible == "张三"
    imported = events(database, "clues.imported")
    assert len(imported) == 1 and imported[0].details["file"] == "线索.xlsx" and imported[0].details["created"] == 2
    assert [e.details["row"] for e in events(database, "clue.created")] == [2, 3]


def test_import_refuses_files_that_are_not_xlsx(client: TestClient, manager: dict[str, str]) -> None:
    r = upload(client, manager, b"a,b\n1,2\n")
    assert r.status_code == 422 and r.json()["errors"][0]["row"] == 0
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["名称", "地址"])
    out = io.BytesIO()
    book.save(out)
    r = upload(client, manager, out.getvalue())
    assert r.status_code == 422 and "找不到表头" in r.json()["errors"][0]["message"]


# --- ledgers -----------------------------------------------------------------------------------------------------


@pytest.fixture
def ledger_data(database: Database) -> dict[str, Any]:
    """Cases and clues around March 2026 (Beijing), some on the edges of the days that bound the period."""
    e = add_enterprise(database, "青岛某建筑公司")
    ids: dict[str, Any] = {}
    # arrears cases: in March, on the UTC/Beijing edge, in April, closed, linked to a clue, not arrears
    ids["c1"] = add_case(database, 1, "2026-03-01T01:00:00", district="崂山区", workers=10, amount=50000,
                         enterprise="青岛某建筑公司", enterprise_id=e, due_at=utc("2026-03-06T01:00:00"))
    ids["c2"] = add_case(database, 2, "2026-02-28T16:30:00", district="市南区", workers=3, amount=12000,
                         status="办结", due_at=utc("2026-03-10T00:00:00"), closed_at=utc("2026-03-12T00:00:00"),
                         summary=f"来电人电话{PHONE}，身份证{ID_NUMBER}")  # Beijing 03-01 00:30, closed late
    ids["c3"] = add_case(database, 3, "2026-03-31T16:00:00", district="崂山区", workers=1, amount=3000)  # 04-01
    ids["c4"] = add_case(database, 4, "2026-03-10T00:00:00", category="劳动合同", workers=5, amount=1)
    ids["c5"] = add_case(database, 5, "2026-03-11T00:00:00", district="崂山区", workers=7, amount=70000,
                         status="办结", closed_at=utc("2026-03-20T00:00:00"), due_at=utc("2026-03-25T00:00:00"))
    # clues
    ids["k1"] = add_clue(database, received_at=utc("2026-03-02T02:00:00"), district="崂山区", workers=20,
                         amount=200000, enterprise_id=e, promised_date=date(2026, 3, 20),
                         content=f"网帖称欠薪，联系人{PHONE}", responsible="王科长", responsible_unit="崂山区总工会")
    ids["k2"] = add_clue(database, source="来信来访", received_at=utc("2026-03-05T02:00:00"), district="市北区",
                         workers=4, amount=40000, promised_date=date(2026, 4, 30), case_ids=[ids["c5"]])
    ids["k3"] = add_clue(database, source="上级督办", category="社会保险", received_at=utc("2026-03-06T02:00:00"),
                         district="崂山区", workers=50, amount=0, promised_date=date(2026, 4, 30))
    ids["k4"] = add_clue(database, received_at=utc("2026-02-20T02:00:00"), district="崂山区", workers=2,
                         amount=8000, promised_date=date(2026, 3, 1))  # February
    with database.session() as db:
        k1, k2 = db.get(Clue, ids["k1"]), db.get(Clue, ids["k2"])
        assert k1 is not None and k2 is not None
        service.transition(db=db, clue=k1, actor="t", to="属实", note="属实", now=utc("2026-03-03T00:00:00"))
        service.transition(db=db, clue=k1, actor="t", to="结案", note="已追回", amount_recovered=150000,
                           now=utc("2026-03-25T00:00:00"))  # promised 03-20: closed late
        service.transition(db=db, clue=k2, actor="t", to="属实", note="核实属实", now=utc("2026-03-06T00:00:00"))
        service.transition(db=db, clue=k2, actor="t", to="转为工单", note="转工单办理", now=utc("2026-03-06T00:00:00"))
        service.transition(db=db, clue=k2, actor="t", to="结案", note="工单已办结", amount_recovered=30000,
                           now=utc("2026-03-21T00:00:00"))
    return ids


def read_xlsx(data: bytes) -> tuple[list[Any], list[list[Any]], list[Any]]:
    """(header, data rows, 合计 row) of an exported ledger."""
    sheet = load_workbook(io.BytesIO(data), read_only=True).worksheets[0]
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0][0] in ledgers.LEDGER_TITLES.values()
    return rows[2], rows[3:-1], rows[-1]


def db_expected(database: Database, kind: str, start: date, end: date) -> dict[str, Any]:
    """What the database says independently of the ledger query: numbers, workers, amounts, recovered."""
    lo, hi = service.day_start(start), service.day_end(end)
    with database.session() as db:
        tracked = set(db.execute(sa.select(ClueCase.case_id).join(Clue, Clue.id == ClueCase.clue_id)
                                 .where(Clue.category == "欠薪")).scalars())
        clues = db.execute(sa.select(Clue)).scalars().all()
        cases = db.execute(sa.select(Case)).scalars().all()
        if kind == "arrears-new":
            picked = [(c.number, c.workers, c.amount, c.amount_recovered) for c in clues
                      if c.category == "欠薪" and lo <= c.received_at < hi]
            picked += [(c.case_no, c.workers, c.amount, None) for c in cases if c.category == "欠薪"
                       and c.id not in tracked and lo <= (c.accepted_at or c.created_at) < hi]
        elif kind == "arrears-closed":
            picked = [(c.number, c.workers, c.amount, c.amount_recovered) for c in clues
                      if c.category == "欠薪" and c.status == "结案" and c.closed_at and lo <= c.closed_at < hi]
            picked += [(c.case_no, c.workers, c.amount, None) for c in cases if c.category == "欠薪"
                       and c.id not in tracked and c.status == "办结" and c.closed_at and lo <= c.closed_at < hi]
        else:
            picked = [(c.number, c.workers, c.amount, c.amount_recovered) for c in clues
                      if c.source in ("舆情监测", "上级交办", "上级督办") and lo <= c.received_at < hi]
    return {"numbers": sorted(p[0] for p in picked), "workers": sum(p[1] or 0 for p in picked),
            "amount": sum(p[2] or 0 for p in picked), "recovered": sum(p[3] or 0 for p in picked)}


@pytest.mark.parametrize("kind", ["arrears-new", "arrears-closed", "opinion"])
def test_ledger_rows_and_totals_match_the_database(
    client: TestClient, database: Database, manager: dict[str, str], ledger_data: dict[str, Any], kind: str
) -> None:
    params = {"period_start": "2026-03-01", "period_end": "2026-03-31"}
    expected = db_expected(database, kind, date(2026, 3, 1), date(2026, 3, 31))
    assert expected["numbers"], "the fixture must give every ledger some rows"
    page = client.get(f"/api/v1/ledgers/{kind}", headers=manager, params=params).json()
    assert page["total"] == len(expected["numbers"]) == page["totals"]["rows"]
    assert sorted(r["number"] for r in page["items"]) == expected["numbers"]
    assert (page["totals"]["workers"], page["totals"]["amount"], page["totals"]["amount_recovered"]) == (
        expected["workers"], expected["amount"], expected["recovered"])
    r = client.get(f"/api/v1/ledgers/{kind}.xlsx", headers=manager, params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml")
    header, rows, total = read_xlsx(r.content)
    assert tuple(header) == COLUMNS
    col = {name: i for i, name in enumerate(COLUMNS)}
    assert sorted(row[col["编号"]] for row in rows) == expected["numbers"]
    assert sum(row[col["涉及人数"]] or 0 for row in rows) == expected["workers"] == total[col["涉及人数"]]
    assert sum(row[col["金额"]] or 0 for row in rows) == expected["amount"] == total[col["金额"]]
    assert sum(row[col["追回金额"]] or 0 for row in rows) == expected["recovered"] == total[col["追回金额"]]
    assert total[0] == "合计" and total[1] == f"共 {len(rows)} 条"
    overdue = sum(row[col["是否逾期"]] == "是" for row in rows)
    assert total[col["是否逾期"]] == f"逾期 {overdue} 条" and overdue == page["totals"]["overdue"]
    # the Chinese file name as RFC 5987 filename*, and the export on record with the file's digest
    title = ledgers.LEDGER_TITLES[ledgers.LedgerKind(kind)]
    disposition = r.headers["content-disposition"]
    assert f"filename*=utf-8''{quote(f'{title}_2026-03-01至2026-03-31.xlsx')}" in disposition
    exported = events(database, "ledger.exported")[-1]
    assert exported.actor == "user:zhao" and exported.subject_id == kind
    assert exported.details["rows"] == len(rows) and exported.details["filters"] == params
    assert exported.details["sha256"] == hashlib.sha256(r.content).hexdigest() == r.headers["x-content-sha256"]
    assert events(database, "ledger.read")[-1].details["total"] == page["total"]


def test_ledger_contents_filters_and_edges(
    client: TestClient, database: Database, manager: dict[str, str], ledger_data: dict[str, Any]
) -> None:
    march = {"period_start": "2026-03-01", "period_end": "2026-03-31"}

    def numbers(kind: str, **extra: str) -> list[str]:
        r = client.get(f"/api/v1/ledgers/{kind}", headers=manager, params={**march, **extra, "limit": "500"})
        assert r.status_code == 200, r.text
        return [i["number"] for i in r.json()["items"]]

    with database.session() as db:
        number = {k: (db.get(Clue, v).number if k.startswith("k") else db.get(Case, v).case_no)  # type: ignore
                  for k, v in ledger_data.items()}
    # every 欠薪 case is on the arrears ledger by itself; c5 is there through the clue k2 it is linked to;
    # c2 at 00:30 Beijing on 03-01 is in March, c3 at 00:00 Beijing on 04-01 is not; k4 is February's
    assert numbers("arrears-new") == [number[k] for k in ("c2", "c1", "k1", "k2")]
    assert numbers("arrears-closed") == [number[k] for k in ("c2", "k2", "k1")]  # by the time they were closed
    assert numbers("opinion") == [number[k] for k in ("k1", "k3")]
    assert numbers("arrears-new", district="崂山") == [number["c1"], number["k1"]]
    assert numbers("arrears-new", status="受理") == [number["c1"]]
    assert numbers("arrears-new", period_start="2026-03-02") == [number["k1"], number["k2"]]
    assert numbers("arrears-new", period_start="2026-02-01", period_end="2026-02-28") == [number["k4"]]
    page = client.get("/api/v1/ledgers/arrears-new", headers=manager, params={**march, "limit": 2, "offset": 2})
    assert [i["number"] for i in page.json()["items"]] == [number["k1"], number["k2"]] and page.json()["total"] == 4
    items = {i["number"]: i for i in client.get("/api/v1/ledgers/arrears-closed", headers=manager,
                                                params=march).json()["items"]}
    k1, k2, c2 = items[number["k1"]], items[number["k2"]], items[number["c2"]]
    assert k1["credit_code"] == _code() and k1["enterprise"] == "青岛某建筑公司"
    assert k1["responsible"] == "崂山区总工会 / 王科长" and k1["deadline"] == "2026-03-20"
    assert k1["overdue"] and not k2["overdue"] and c2["overdue"]  # closed 03-25 > 03-20; c2 closed late
    assert k1["progress"] == "结案（属实）：已追回"
    assert k2["progress"] == f"结案（属实），工单 {number['c5']}（办结）：工单已办结"
    assert c2["source"] == "热线工单" and c2["ref"] == "case" and c2["amount_recovered"] is None
    # the same row in the XLSX: Beijing wall times, real dates and numbers
    _, rows, _ = read_xlsx(client.get("/api/v1/ledgers/arrears-closed.xlsx", headers=manager, params=march).content)
    row = dict(zip(COLUMNS, next(r for r in rows if r[0] == number["k1"]), strict=True))
    assert row["受理时间"] == datetime(2026, 3, 2, 10, 0) and row["办结时间"] == datetime(2026, 3, 25, 8, 0)
    assert row["时限"] == datetime(2026, 3, 20) and row["是否逾期"] == "是" and row["追回金额"] == 150000
    assert (row["统一社会信用代码"], row["区市"], row["涉及人数"], row["金额"]) == (_code(), "崂山区", 20, 200000)
    assert row["责任人"] == "崂山区总工会 / 王科长" and row["办理进展"] == "结案（属实）：已追回"
    for params, code in (({"district": "北京"}, 422), ({"status": "没有"}, 422),
                         ({"period_start": "2026-04-01", "period_end": "2026-03-01"}, 422)):
        r = client.get("/api/v1/ledgers/arrears-new", headers=manager, params=params)
        assert r.status_code == code, params
    assert client.get("/api/v1/ledgers/nothing", headers=manager).status_code == 404
    assert client.get("/api/v1/ledgers/nothing.xlsx", headers=manager).status_code == 404


def test_exports_are_masked_for_roles_without_unmasked_rights(
    client: TestClient, database: Database, manager: dict[str, str], admin: dict[str, str],
    ledger_data: dict[str, Any]
) -> None:
    params = {"period_start": "2026-03-01", "period_end": "2026-03-31"}
    col = COLUMNS.index("诉求")
    _, rows, _ = read_xlsx(client.get("/api/v1/ledgers/arrears-new.xlsx", headers=manager, params=params).content)
    text = "\n".join(str(r[col]) for r in rows)
    assert PHONE not in text and ID_NUMBER not in text
    assert "138****5678" in text and "370***********1234" in text
    _, rows, _ = read_xlsx(client.get("/api/v1/ledgers/arrears-new.xlsx", headers=admin, params=params).content)
    text = "\n".join(str(r[col]) for r in rows)
    assert PHONE in text and ID_NUMBER in text
    assert events(database, "ledger.exported")[0].details["masked"] is True
    assert events(database, "ledger.exported")[1].details["masked"] is False
    # on the screen (JSON) the masking middleware does the same
    body = client.get("/api/v1/ledgers/arrears-new", headers=manager, params=params).text
    assert PHONE not in body and "138****5678" in body
    body = client.get(f"/api/v1/clues/{ledger_data['k1']}", headers=manager).text
    assert PHONE not in body and "138****5678" in body


@pytest.mark.parametrize("role", [Role.agent, Role.mediator])
def test_roles_without_ledger_rights_are_refused_and_it_is_on_record(
    client: TestClient, database: Database, role: Role
) -> None:
    add_user(database, "someone", role)
    headers = login(client, "someone")
    attempts = [
        client.get("/api/v1/ledgers/arrears-new", headers=headers),
        client.get("/api/v1/ledgers/arrears-new.xlsx", headers=headers),
        client.get("/api/v1/clues", headers=headers),
        client.get("/api/v1/clues/1", headers=headers),
        client.post("/api/v1/clues", headers=headers, json={"source": "其他", "title": "x"}),
        client.patch("/api/v1/clues/1", headers=headers, json={"title": "x"}),
        client.post("/api/v1/clues/1/transitions", headers=headers, json={"to": "属实"}),
        upload(client, headers, xlsx([])),
    ]
    assert [r.status_code for r in attempts] == [403] * len(attempts)
    denied = events(database, "auth.denied")
    assert len(denied) == len(attempts)
    assert {e.details["permission"] for e in denied} == {"ledger:read", "clue:edit"}
    with database.session() as db:
        assert db.execute(sa.select(sa.func.count()).select_from(Clue)).scalar() == 0


def test_managers_list_and_read_clues(client: TestClient, database: Database, manager: dict[str, str],
                                      ledger_data: dict[str, Any]) -> None:
    r = client.get("/api/v1/clues", headers=manager, params={"district": "崂山区"})
    assert r.status_code == 200 and r.json()["total"] == 3
    r = client.get("/api/v1/clues", headers=manager, params={"case_id": ledger_data["c5"]})
    assert [i["id"] for i in r.json()["items"]] == [ledger_data["k2"]]
    r = client.get("/api/v1/clues", headers=manager, params={"status": "结案", "source": "舆情监测"})
    assert [i["id"] for i in r.json()["items"]] == [ledger_data["k1"]]
    r = client.get(f"/api/v1/clues/{ledger_data['k2']}", headers=manager)
    assert r.json()["cases"][0]["id"] == ledger_data["c5"] and r.json()["amount_recovered"] == 30000
    assert client.get("/api/v1/clues/9999", headers=manager).status_code == 404
    assert events(database, "clue.read")[-1].subject_id == str(ledger_data["k2"])
    # re-linking cases is audited
    r = client.patch(f"/api/v1/clues/{ledger_data['k3']}", headers=manager,
                     json={"case_ids": [ledger_data["c3"], ledger_data["c4"]]})
    assert [c["id"] for c in r.json()["cases"]] == [ledger_data["c3"], ledger_data["c4"]]
    r = client.patch(f"/api/v1/clues/{ledger_data['k3']}", headers=manager, json={"case_ids": [ledger_data["c4"]]})
    linked = events(database, "clue.cases_linked")
    assert [(e.details["added"], e.details["removed"]) for e in linked][-1] == ([], [ledger_data["c3"]])


def test_enterprise_link_by_id_name_and_retyping(database: Database) -> None:
    e = add_enterprise(database, "青岛某建筑公司", district="黄岛区")
    cid = add_clue(database, enterprise_id=e)
    with database.session() as db:
        clue = db.get(Clue, cid)
        assert clue is not None and (clue.enterprise, clue.district) == ("青岛某建筑公司", "黄岛区")
        service.update(db=db, clue=clue, data=ClueUpdate(enterprise="另一家公司"), actor="t", now=NOW)
        assert (clue.enterprise, clue.enterprise_id) == ("另一家公司", None)  # no longer the registered one
        service.update(db=db, clue=clue, data=ClueUpdate(enterprise="青岛某建筑公司"), actor="t", now=NOW)
        assert clue.enterprise_id == e  # typed exactly as registered: linked again


# --- streaming, the CLI, the measure hook --------------------------------------------------------------------


def test_write_xlsx_streams_in_chunks_and_counts_rows(database: Database, tmp_path: Path) -> None:
    n = 1500
    start = utc("2026-03-01T00:00:00")
    with database.session() as db:
        db.execute(sa.insert(Clue), [{
            "number": f"XS-2026-{i:06d}", "source": "舆情监测", "category": "欠薪", "title": f"线索{i}",
            "content": f"内容 {PHONE}", "received_at": start + timedelta(minutes=i), "district": "崂山区",
            "workers": i % 7, "amount": i * 10, "promised_date": date(2026, 4, 1), "verify_lead_days": 10,
            "verify_due": date(2026, 3, 22), "due_at": utc("2026-04-01T16:00:00"),
            "verify_due_at": utc("2026-03-22T16:00:00"), "status": "核实中", "last_note": "", "created_by": "t",
            "created_at": start, "updated_at": start} for i in range(1, n + 1)])
    with database.session() as db:
        streamed = list(ledgers.iter_rows(db=db, kind="opinion", chunk=97, now=NOW))
        assert [r.number for r in streamed] == [f"XS-2026-{i:06d}" for i in range(1, n + 1)]
        path = tmp_path / "ledger.xlsx"
        tracemalloc.start()
        rows = ledgers.write_xlsx(db=db, kind="opinion", filters=LedgerFilter(), path=path, now=NOW)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert rows == n
    assert peak < 30 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    _, data, total = read_xlsx(path.read_bytes())
    assert len(data) == n and total[COLUMNS.index("金额")] == sum(i * 10 for i in range(1, n + 1))
    assert all(PHONE not in r[COLUMNS.index("诉求")] for r in data)  # masked unless told otherwise


def test_cli_writes_the_arrears_ledger(settings: Settings, database: Database, ledger_data: dict[str, Any],
                                       tmp_path: Path) -> None:
    out = tmp_path / "欠薪.xlsx"
    runner = CliRunner()
    r = runner.invoke(cli, ["ledger", "arrears", "--xlsx", str(out), "--from", "2026-03-01", "--to", "2026-03-31",
                            "--closed"], env=env_for(settings))
    assert r.exit_code == 0, r.output
    _, rows, _ = read_xlsx(out.read_bytes())
    assert len(rows) == 3 and "3 行" in r.output
    exported = events(database, "ledger.exported")[-1]
    assert exported.actor == "cli:cli" and exported.subject_id == "arrears-closed"
    assert exported.details["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()


def test_a_masked_viewer_cannot_read_a_number_back_by_probing_its_digits(
        client: TestClient, database: Database, manager: dict[str, str], admin: dict[str, str]) -> None:
    """Managers see phone numbers masked: a q with digits in it then matches clue numbers only, never the digits
    of a number in a title; words still match titles, and roles that see numbers in full search them."""
    add_clue(database, title="来电人13812345678反映某公司拖欠工资")
    def hits(headers: dict[str, str], q: str) -> int:
        r = client.get("/api/v1/clues", headers=headers, params={"q": q})
        assert r.status_code == 200
        return int(r.json()["total"])

    assert [hits(manager, q) for q in ("1381", "13812345678", "５６７８")] == [0, 0, 0]
    assert hits(manager, "拖欠工资") == 1 and hits(manager, "XS") == hits(admin, "XS")
    assert hits(admin, "13812345678") == 1
