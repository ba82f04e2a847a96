"""Case statistics: grouped by dimension and by Shanghai day / week / month, with sums and the summary counts,
on SQLite and PostgreSQL, from cases inserted directly."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.audit.models import AuditEvent
from app.cases.models import Case
from app.db import Database
from app.recordings.models import Recording
from app.stats import service
from app.stats.models import Dimension, Period
from app.users.models import Role
from tests.conftest import add_user, login

NOW = datetime(2026, 5, 1, tzinfo=UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def add_case(database: Database, n: int, created_at: str, **fields: Any) -> None:
    with database.session() as db:
        rec = Recording(sha256=f"{n:064x}", path=f"r{n}.wav", original_name=f"r{n}.wav", size_bytes=1, format="wav",
                        codec="pcm_s16le", sample_rate=8000, channels=2, duration=1.0, layout="caller-left",
                        channel="来电", status="done", uploaded_by="test")
        db.add(rec)
        db.flush()
        values: dict[str, Any] = {"category": "欠薪", "status": "受理", **fields}
        db.add(Case(case_no=f"QD-2026-{n:06d}", channel="来电", recording_id=rec.id, category_confidence=0.9,
                    category_evidence=[], summary="", created_by="test", created_at=utc(created_at), **values))


@pytest.fixture
def cases(database: Database) -> None:
    # Shanghai is UTC+8: each of these falls on a different local day, week or month than its UTC date says.
    add_case(database, 1, "2026-02-28T16:30:00", district="市南区", workers=10, amount=50000, group_case=True,
             due_at=utc("2026-03-20T00:00:00"), gender="男", enterprise="青岛某建筑公司")  # SH Sun 03-01 00:30
    add_case(database, 2, "2026-03-01T17:00:00", district="市北区", workers=3, amount=12000, status="办结",
             due_at=utc("2026-03-10T00:00:00"), closed_at=utc("2026-03-12T00:00:00"), gender="女",
             enterprise="青岛某建筑公司")  # SH Mon 03-02 01:00, closed late
    add_case(database, 3, "2026-03-02T15:59:00", category="劳动合同", district="市南区", status="办理",
             feedback_due_at=utc("2026-03-03T00:00:00"), escalated=True, gender="男")  # SH Mon 03-02 23:59
    add_case(database, 4, "2026-03-31T16:00:00", district="市南区", workers=1, amount=3000, status="办结",
             due_at=utc("2026-04-20T00:00:00"), closed_at=utc("2026-04-10T00:00:00"),
             feedback_due_at=utc("2026-04-02T00:00:00"), first_feedback_at=utc("2026-04-01T08:00:00"))  # SH 04-01
    add_case(database, 5, "2026-04-02T02:00:00", workers=2, amount=800)  # no district


def stats(database: Database, **q: Any) -> Any:
    with database.session() as db:
        return service.case_stats(db=db, q=service.StatsQuery(**q), now=NOW)


def rows(result: Any) -> list[tuple[Any, ...]]:
    return [(r.key, r.period, r.cases, r.workers, r.amount) for r in result.rows]


def test_by_category_and_month(database: Database, cases: None) -> None:
    result = stats(database, group_by=Dimension.category, period=Period.month)
    assert rows(result) == [
        ("欠薪", "2026-03", 2, 13, 62000),
        ("劳动合同", "2026-03", 1, 0, 0),
        ("欠薪", "2026-04", 2, 3, 3800),
    ]


def test_by_shanghai_day_and_week(database: Database, cases: None) -> None:
    assert rows(stats(database, period=Period.day)) == [
        (None, "2026-03-01", 1, 10, 50000), (None, "2026-03-02", 2, 3, 12000),
        (None, "2026-04-01", 1, 1, 3000), (None, "2026-04-02", 1, 2, 800),
    ]
    # weeks are named by their Monday: Sunday 03-01 still belongs to the week of 02-23
    assert rows(stats(database, period=Period.week)) == [
        (None, "2026-02-23", 1, 10, 50000), (None, "2026-03-02", 2, 3, 12000), (None, "2026-03-30", 2, 3, 3800),
    ]


def test_by_dimension_alone_with_unfilled_values(database: Database, cases: None) -> None:
    assert rows(stats(database, group_by=Dimension.district)) == [
        ("市南区", None, 3, 11, 53000), ("市北区", None, 1, 3, 12000), (None, None, 1, 2, 800),
    ]
    assert rows(stats(database, group_by=Dimension.enterprise, category="欠薪"))[0] == \
        ("青岛某建筑公司", None, 2, 13, 62000)
    assert {r.key for r in stats(database, group_by=Dimension.gender).rows} == {"男", "女", None}


def test_filters_are_shanghai_days_both_ends_included(database: Database, cases: None) -> None:
    march = stats(database, group_by=Dimension.status, date_from=date(2026, 3, 2), date_to=date(2026, 3, 31))
    assert rows(march) == [("办理", None, 1, 0, 0), ("办结", None, 1, 3, 12000)]
    assert march.summary.cases == 2
    one_day = stats(database, date_from=date(2026, 3, 1), date_to=date(2026, 3, 1))
    assert rows(one_day) == [(None, None, 1, 10, 50000)]
    assert stats(database, district="市南区", category="欠薪").summary.cases == 2


def test_summary_counts_overdue_late_and_group_cases(database: Database, cases: None) -> None:
    s = stats(database).summary
    assert (s.cases, s.workers, s.amount) == (5, 16, 65800)
    assert s.overdue == 1  # case 1: open past its deadline
    assert s.closed_late == 1  # case 2
    assert s.feedback_overdue == 1  # case 3: no feedback past its deadline (case 4's came in time)
    assert (s.group_cases, s.escalated) == (1, 1)


def test_no_cases_gives_zeros(database: Database) -> None:
    result = stats(database, group_by=Dimension.category, period=Period.day)
    assert result.rows == [] and result.summary.cases == result.summary.amount == result.summary.overdue == 0


def test_api(client: TestClient, database: Database, cases: None) -> None:
    add_user(database, "boss", Role.manager)
    add_user(database, "zhang", Role.agent)
    boss, agent = login(client, "boss"), login(client, "zhang")
    r = client.get("/api/v1/stats/cases", params={"group_by": "category", "period": "month"}, headers=boss)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["group_by"], body["period"]) == ("category", "month")
    assert body["rows"][0] == {"key": "欠薪", "period": "2026-03", "cases": 2, "workers": 13, "amount": 62000}
    assert body["summary"]["cases"] == 5 and body["summary"]["group_cases"] == 1
    with database.session() as db:
        event = db.execute(sa.select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).scalar_one()
    assert (event.action, event.actor) == ("stats.read", "user:boss")
    assert event.details["query"] == {"group_by": "category", "period": "month"}
    assert client.get("/api/v1/stats/cases", headers=agent).status_code == 403
    r = client.get("/api/v1/stats/cases", params={"group_by": "salary"}, headers=boss)
    assert (r.status_code, r.json()["code"]) == (422, "invalid")
    r = client.get("/api/v1/stats/cases", params={"date_from": "2026-04-01", "date_to": "2026-03-01"}, headers=boss)
    assert (r.status_code, r.json()["code"]) == (422, "invalid_range") and "开始日期" in r.json()["detail"]
