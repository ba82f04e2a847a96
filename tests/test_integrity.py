"""Enterprise integrity (企业诚信 红橙黄蓝绿): the pure scoring item by item, bands and vetoes, the rolling window,
rescoring with audited colour changes, monthly snapshots kept as computed, overrides, objections, the rule set,
the API and its permissions — on SQLite and PostgreSQL, with cases and warnings built in the database."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.audit.models import AuditEvent
from app.cases.models import Case
from app.cli import app as cli
from app.config import Settings
from app.db import Database, utcnow
from app.enterprises import integrity
from app.enterprises.integrity import CaseFact, Facts, Ruleset, WarningFact
from app.enterprises.models import (
    Enterprise,
    EnterpriseColourHistory,
    EnterpriseScore,
    Rules,
)
from app.enterprises.service import EnterpriseError
from app.recordings.models import Recording
from app.users.models import Role
from app.warnings.models import EarlyWarning, WarningRule
from tests.conftest import add_user, login
from tests.processes import env_for

NOW = datetime(2026, 6, 15, 4, 0, tzinfo=UTC)
DEFAULT = Ruleset(version=1, rules=Rules.model_validate(integrity.DEFAULT_RULES))


def _rules(**changes: Any) -> Rules:
    """The default rules with some parts replaced (``deductions__arrears={...}`` style keys)."""
    data: dict[str, Any] = Rules.model_validate(integrity.DEFAULT_RULES).model_dump(mode="json")
    for key, value in changes.items():
        target = data
        *path, last = key.split("__")
        for part in path:
            target = target[part]
        target[last] = value
    return Rules.model_validate(data)


# --- the pure scoring ----------------------------------------------------------------------------------


def case(cid: int, category: str = "劳动合同", days_ago: float = 10, *, group: bool = False,
         closed_after: float | None = None) -> CaseFact:
    at = NOW - timedelta(days=days_ago)
    return CaseFact(id=cid, category=category, group_case=group, at=at,
                    closed_at=at + timedelta(days=closed_after) if closed_after is not None else None)


def warning(wid: int, grade: str = "黄", days_ago: float = 10, *, verdict: str | None = None,
            verified_days_ago: float | None = None, closed_days_ago: float | None = None) -> WarningFact:
    return WarningFact(id=wid, grade=grade, raised_at=NOW - timedelta(days=days_ago), verdict=verdict,
                       verified_at=NOW - timedelta(days=verified_days_ago) if verified_days_ago is not None else None,
                       closed_at=NOW - timedelta(days=closed_days_ago) if closed_days_ago is not None else None)


def rate(*cases: CaseFact, warnings: tuple[WarningFact, ...] = (), ruleset: Ruleset = DEFAULT,
         now: datetime = NOW) -> integrity.Rating:
    return integrity.score(Facts(cases=cases, warnings=warnings), ruleset, now)


def by_item(r: integrity.Rating) -> dict[str, integrity.Item]:
    return {i.item: i for i in r.items}


def test_no_cases_is_green_at_100() -> None:
    r = rate()
    assert (r.score, r.colour, r.items, r.ruleset_version) == (100, "绿", [], 1)


def test_each_deduction_carries_its_points_and_case_ids() -> None:
    # Cases 100 days apart: no 重复投诉 stretch.
    r = rate(case(1, "欠薪", 10), case(2, "欠薪", 110), case(3, "工伤", 210), case(4, "劳务派遣", 310))
    items = by_item(r)
    assert (items["arrears"].points, items["arrears"].case_ids) == (-10, [2, 1])  # oldest first
    assert (items["injury"].points, items["injury"].case_ids) == (-5, [3])
    assert (items["dispatch"].points, items["dispatch"].case_ids) == (-3, [4])
    assert items["arrears"].label == "欠薪投诉 2 件" and items["injury"].label == "工伤投诉 1 件"
    assert "repeat" not in items and "group" not in items
    assert (r.score, r.colour) == (82, "蓝")

    r = rate(case(5, "劳动合同", 5, group=True))
    assert (by_item(r)["group"].points, by_item(r)["group"].case_ids) == (-10, [5])
    assert (r.score, r.colour) == (90, "绿")  # a group case that is not about arrears: no veto


def test_deductions_are_capped() -> None:
    r = rate(*(case(i, "欠薪", 1 + 40 * i) for i in range(8)))  # 8 × 5 = 40, capped at 30
    assert by_item(r)["arrears"].points == -30 and len(by_item(r)["arrears"].case_ids) == 8


def test_repeated_complaints_within_90_days() -> None:
    r = rate(case(1, days_ago=200), case(2, days_ago=120), case(3, days_ago=60), case(4, days_ago=40))
    repeat = by_item(r)["repeat"]
    assert repeat.points == -10 and repeat.case_ids == [2, 3, 4]  # 120 → 40 days ago: 80 days apart
    assert repeat.label == "重复投诉：90 天内 3 件"
    # 100 days from first to last: no stretch of 90 days holds three.
    assert "repeat" not in by_item(rate(case(1, days_ago=150), case(2, days_ago=100), case(3, days_ago=50)))
    # Questions (法律咨询) are not complaints.
    assert "repeat" not in by_item(rate(case(1, days_ago=30), case(2, days_ago=20), case(3, "法律咨询", 10)))
    strict = Ruleset(2, _rules(deductions__repeat={"min_cases": 2, "days": 30, "points": 7,
                                                   "exclude_categories": []}))
    assert by_item(rate(case(1, days_ago=30), case(2, days_ago=5), ruleset=strict))["repeat"].points == -7


def test_warnings_verified_true_and_open_red() -> None:
    r = rate(warnings=(warning(1, "黄", 30, verdict="属实", verified_days_ago=20),
                       warning(2, "橙", 30, verdict="误报", verified_days_ago=20),
                       warning(3, "黄", 400, verdict="属实", verified_days_ago=390),  # raised before the window
                       warning(4, "黄", 30, verdict="属实", verified_days_ago=-5)))  # verified after ``now``
    assert (by_item(r)["verified_warning"].points, by_item(r)["verified_warning"].warning_ids) == (-10, [1])
    assert by_item(r)["verified_warning"].label == "预警核实属实 1 条"
    assert (r.score, r.colour) == (90, "绿")

    # An open red warning: −20 and the veto makes it 红 although 80 would be 蓝; raised long ago still counts.
    r = rate(warnings=(warning(5, "红", 500),))
    assert (by_item(r)["open_red_warning"].points, by_item(r)["open_red_warning"].warning_ids) == (-20, [5])
    assert by_item(r)["veto_open_red_warning"].warning_ids == [5] and by_item(r)["veto_open_red_warning"].points == 0
    assert (r.score, r.colour) == (80, "红")
    # Closed by now, or found a false alarm: neither counts; closed only after ``now``: it was open then.
    assert rate(warnings=(warning(6, "红", 50, closed_days_ago=1),)).colour == "绿"
    assert rate(warnings=(warning(7, "红", 50, verdict="误报", verified_days_ago=2),)).colour == "绿"
    assert rate(warnings=(warning(8, "红", 50, closed_days_ago=-3),)).colour == "红"
    assert rate(warnings=(warning(9, "红", -1),)).colour == "绿"  # raised after ``now``


def test_group_arrears_case_vetoes_to_red() -> None:
    r = rate(case(1, "欠薪", 20, group=True))
    items = by_item(r)
    assert items["arrears"].case_ids == [1] and items["group"].case_ids == [1]
    assert items["veto_group_arrears"].case_ids == [1] and items["veto_group_arrears"].label.startswith("一票否决")
    assert (r.score, r.colour) == (85, "红")
    no_veto = Ruleset(3, _rules(veto={"open_red_warning": True, "group_arrears": False, "colour": "红"}))
    assert rate(case(1, "欠薪", 20, group=True), ruleset=no_veto).colour == "蓝"


def test_quick_close_bonus_never_over_the_start() -> None:
    r = rate(case(1, "欠薪", 40, closed_after=3), case(2, "劳动合同", 200, closed_after=30))
    bonus = by_item(r)["quick_close"]
    assert (bonus.points, bonus.case_ids, bonus.label) == (1, [1], "15 天内办结 1 件")
    assert r.score == 96
    assert rate(case(1, closed_after=2)).score == 100  # a bonus alone stays at 100
    assert by_item(rate(*(case(i, days_ago=100 * i + 1, closed_after=1) for i in range(3))))[
        "quick_close"].points == 3
    # Closed after ``now``: not yet.
    assert "quick_close" not in by_item(rate(case(1, days_ago=2, closed_after=5)))


@pytest.mark.parametrize(("points", "colour"), [(100, "绿"), (90, "绿"), (89.9, "蓝"), (80, "蓝"), (79.5, "黄"),
                                                 (70, "黄"), (69, "橙"), (60, "橙"), (59.9, "红"), (0, "红")])
def test_colour_bands(points: float, colour: str) -> None:
    assert integrity.band(points, DEFAULT.rules) == colour


def test_score_floor_is_zero() -> None:
    heavy = (*(case(i, "欠薪", 1 + 20 * i, group=True) for i in range(6)),
             *(case(10 + i, "工伤", 3 + 20 * i) for i in range(6)))
    r = rate(*heavy, warnings=(warning(1, "红", 5), warning(2, "红", 6), warning(3, "黄", 5, verdict="属实")))
    assert r.score >= 0 and r.colour == "红"


def test_rolling_twelve_month_window() -> None:
    r = rate(case(1, "欠薪", 360), case(2, "欠薪", 370))  # 2026-06-15: 12 months back is 2025-06-15
    assert by_item(r)["arrears"].case_ids == [1]
    assert integrity.months_back(datetime(2026, 3, 31, 8, tzinfo=UTC), 1) == datetime(2026, 2, 28, 8, tzinfo=UTC)
    assert integrity.months_back(datetime(2024, 2, 29, tzinfo=UTC), 12) == datetime(2023, 2, 28, tzinfo=UTC)
    assert integrity.months_back(datetime(2026, 1, 15, tzinfo=UTC), 1) == datetime(2025, 12, 15, tzinfo=UTC)
    # A 6-month rule set sees less.
    six = Ruleset(4, _rules(window_months=6))
    assert rate(case(1, "欠薪", 200), ruleset=six).score == 100


def test_rules_are_validated() -> None:
    with pytest.raises(ValidationError):
        _rules(bands=[{"colour": "蓝", "min_score": 80}, {"colour": "绿", "min_score": 90}])  # not best first
    with pytest.raises(ValidationError):
        _rules(bands=[{"colour": "绿", "min_score": 90}, {"colour": "红", "min_score": 60}])  # 红 is the floor
    with pytest.raises(ValidationError):
        _rules(deductions__arrears={"categories": [], "points": 5, "cap": 30})
    with pytest.raises(ValidationError):
        Rules.model_validate({**integrity.DEFAULT_RULES, "unknown": 1})


def test_changes_between_months() -> None:
    before = [{"item": "arrears", "label": "欠薪投诉 1 件", "points": -5, "case_ids": [1], "warning_ids": []},
              {"item": "quick_close", "label": "15 天内办结 1 件", "points": 1, "case_ids": [1], "warning_ids": []}]
    after = [{"item": "arrears", "label": "欠薪投诉 2 件", "points": -10, "case_ids": [1, 2], "warning_ids": []},
             {"item": "veto_group_arrears", "label": "一票否决：发生群体性欠薪", "points": 0, "case_ids": [2],
              "warning_ids": []}]
    diff = {c.item: c for c in integrity.changes(before, after)}
    assert (diff["arrears"].before, diff["arrears"].after, diff["arrears"].added_case_ids) == (-5, -10, [2])
    assert diff["veto_group_arrears"].added_case_ids == [2] and diff["veto_group_arrears"].before == 0
    assert (diff["quick_close"].after, diff["quick_close"].removed_case_ids) == (0, [1])
    assert integrity.changes(after, after) == []


# --- database helpers ----------------------------------------------------------------------------------

_serial = iter(range(1, 10**9))


def _enterprise(db: Session, name: str, district: str = "崂山区") -> int:
    e = Enterprise(name=name, district=district)
    db.add(e)
    db.flush()
    return e.id


def _case(db: Session, enterprise_id: int, *, category: str = "劳动合同", at: datetime, group: bool = False,
          closed_at: datetime | None = None) -> int:
    n = next(_serial)
    rec = Recording(sha256=f"{n:064x}", path=f"r{n}.wav", original_name=f"r{n}.wav", size_bytes=1, format="wav",
                    codec="pcm_mulaw", sample_rate=8000, channels=2, duration=1.0, layout="caller-left",
                    channel="来电", status="done", uploaded_by="test", created_at=at)
    db.add(rec)
    db.flush()
    c = Case(case_no=f"T{n}", status="办结" if closed_at else "受理", channel="来电", recording_id=rec.id,
             category=category, category_confidence=1.0, category_evidence=[], enterprise_id=enterprise_id,
             created_by="test", created_at=at, accepted_at=at, closed_at=closed_at, group_case=group)
    db.add(c)
    db.flush()
    return c.id


def _rule(db: Session) -> int:
    rule = db.execute(sa.select(WarningRule).limit(1)).scalar()
    if rule is None:
        rule = WarningRule(name="企业", group_by="enterprise", window_days=30, burst_alpha=None)
        db.add(rule)
        db.flush()
    return rule.id


def _warning(db: Session, enterprise_id: int, *, grade: str, raised_at: datetime, status: str = "待签收",
             verdict: str | None = None, closed_at: datetime | None = None) -> int:
    key = f"enterprise:{enterprise_id}:{next(_serial)}"
    w = EarlyWarning(rule_id=_rule(db), rule_version=1, group_by="enterprise", group_key=key,
                     open_key=None if closed_at else key, subject="企业", enterprise_id=enterprise_id, grade=grade,
                     status=status, reason="测试", figures={}, first_case_at=raised_at, raised_at=raised_at,
                     sign_due_at=raised_at + timedelta(hours=2), verdict=verdict,
                     verified_at=raised_at + timedelta(days=1) if verdict else None, closed_at=closed_at)
    db.add(w)
    db.flush()
    return w.id


def _events(database: Database, action: str) -> list[AuditEvent]:
    with database.session() as db:
        return list(db.execute(sa.select(AuditEvent).where(AuditEvent.action == action)
                               .order_by(AuditEvent.seq)).scalars())


def _score(database: Database, enterprise_id: int) -> EnterpriseScore | None:
    with database.session() as db:
        row = db.get(EnterpriseScore, enterprise_id)
        if row is not None:
            db.expunge(row)
        return row


# --- rescoring -----------------------------------------------------------------------------------------


def test_rescore_stores_items_and_audits_only_colour_changes(database: Database) -> None:
    with database.session() as db:
        eid = _enterprise(db, "青岛海丰水产有限公司")
        c1 = _case(db, eid, category="欠薪", at=NOW - timedelta(days=20))
        result = integrity.rescore(db=db, enterprise_ids=[eid, 999999], now=NOW)
    assert result.rated == 1 and result.colour_changes == []  # 95 is still 绿: nothing to audit
    row = _score(database, eid)
    assert row is not None and (row.score, row.colour, row.ruleset_version) == (95, "绿", 1)
    assert row.items == [{"item": "arrears", "label": "欠薪投诉 1 件", "points": -5, "case_ids": [c1],
                          "warning_ids": []}]
    assert _events(database, "enterprise.colour_changed") == []

    with database.session() as db:
        c2 = _case(db, eid, category="欠薪", at=NOW - timedelta(days=2), group=True)
        w = _warning(db, eid, grade="红", raised_at=NOW - timedelta(days=1))
        result = integrity.rescore(db=db, enterprise_ids=[eid], now=NOW)
    assert [(c.before, c.after) for c in result.colour_changes] == [("绿", "红")]
    row = _score(database, eid)
    assert row is not None and row.colour == "红"
    items = {i["item"]: i for i in row.items}
    assert items["arrears"]["case_ids"] == [c1, c2] and items["group"]["case_ids"] == [c2]
    assert items["open_red_warning"]["warning_ids"] == [w] and items["veto_group_arrears"]["case_ids"] == [c2]
    assert items["repeat"]["case_ids"] == [c1, c2] if "repeat" in items else True
    (event,) = _events(database, "enterprise.colour_changed")
    assert (event.subject_type, event.subject_id) == ("enterprise", str(eid))
    assert (event.details["before"], event.details["after"], event.details["score_before"]) == ("绿", "红", 95)

    with database.session() as db:  # nothing changed: no second event
        integrity.rescore(db=db, enterprise_ids=[eid], now=NOW + timedelta(hours=1))
    assert len(_events(database, "enterprise.colour_changed")) == 1


def test_rescore_all_covers_active_and_stored_enterprises(database: Database) -> None:
    with database.session() as db:
        busy = _enterprise(db, "青岛恒达机械有限公司")
        quiet = _enterprise(db, "青岛宏远建材有限公司")
        warned = _enterprise(db, "青岛新来物流有限公司")
        for days in (10, 40, 70):
            _case(db, busy, category="欠薪", at=NOW - timedelta(days=days))
        _warning(db, warned, grade="黄", raised_at=NOW - timedelta(days=30), verdict="属实", status="已核实")
        result = integrity.rescore_all(db=db, now=NOW)
    assert result.rated == 2
    assert (_score(database, busy) or pytest.fail()).colour == "黄"  # 100 − 15 − 10 = 75
    assert (_score(database, warned) or pytest.fail()).score == 90
    assert _score(database, quiet) is None  # never rated: shown as 绿 at 100
    # A year and more later the cases have left the window: the stored rows go back to 绿 at 100.
    later = NOW + timedelta(days=400)
    with database.session() as db:
        result = integrity.rescore_all(db=db, now=later)
    assert result.rated == 2
    back = _score(database, busy) or pytest.fail()
    assert (back.score, back.colour, back.items) == (100, "绿", [])
    assert [e.details["after"] for e in _events(database, "enterprise.colour_changed")] == ["黄", "绿"]


def test_rescore_all_is_a_few_bulk_queries(database: Database) -> None:
    """300 enterprises, 1,500 cases, 60 warnings: rated in well under a few seconds, and the second run (no
    colour changes) takes a handful of statements, not one per enterprise."""
    base = NOW - timedelta(days=300)
    categories = ("欠薪", "工伤", "劳务派遣", "劳动合同", "社会保险")
    with database.session() as db:
        db.execute(sa.insert(Enterprise), [{"id": 100_000 + i, "name": f"青岛测试{i}有限公司"} for i in range(300)])
        recordings, cases = [], []
        for n in range(1500):
            at = base + timedelta(days=(n * 7) % 290, hours=n % 24)
            recordings.append({"id": 200_000 + n, "sha256": f"{n:064x}", "path": f"b{n}.wav",
                               "original_name": "b.wav", "size_bytes": 1, "format": "wav", "codec": "pcm",
                               "sample_rate": 8000, "channels": 1, "duration": 1.0, "layout": "mono",
                               "channel": "来电", "status": "done", "uploaded_by": "test", "created_at": at})
            cases.append({"id": 300_000 + n, "case_no": f"B{n}", "status": "受理", "channel": "来电",
                          "recording_id": 200_000 + n, "category": categories[n % 5], "category_confidence": 1.0,
                          "category_evidence": [], "enterprise_id": 100_000 + n % 300, "created_by": "test",
                          "created_at": at, "accepted_at": at, "group_case": n % 97 == 0,
                          "closed_at": at + timedelta(days=5) if n % 3 == 0 else None})
        db.execute(sa.insert(Recording), recordings)
        db.execute(sa.insert(Case), cases)
        for i in range(60):
            _warning(db, 100_000 + i * 5, grade="红" if i % 4 == 0 else "橙", raised_at=NOW - timedelta(days=i + 1))
    with database.session() as db:
        started = time.perf_counter()
        result = integrity.rescore_all(db=db, now=NOW)
        first = time.perf_counter() - started
    assert result.rated == 300 and first < 10, first
    assert {c.after for c in result.colour_changes} >= {"红"}

    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    sa.event.listen(database.engine, "before_cursor_execute", count)
    try:
        with database.session() as db:
            again = integrity.rescore_all(db=db, now=NOW)
    finally:
        sa.event.remove(database.engine, "before_cursor_execute", count)
    assert again.rated == 300 and again.colour_changes == []
    assert len(statements) <= 12, statements
    assert again.seconds < 5


# --- monthly snapshots and why the colour changed ------------------------------------------------------


def test_snapshots_are_idempotent_kept_after_new_rules_and_explain_changes(database: Database) -> None:
    with database.session() as db:
        eid = _enterprise(db, "青岛海丰水产有限公司")
        first = _case(db, eid, at=datetime(2026, 2, 20, tzinfo=UTC))
        arrears = _case(db, eid, category="欠薪", at=datetime(2026, 5, 10, tzinfo=UTC), group=True)
        # 2026-05-31 20:00 UTC is 1 June 04:00 in Qingdao: June's, not May's.
        june = _case(db, eid, category="工伤", at=datetime(2026, 5, 31, 20, tzinfo=UTC))
        integrity.rescore(db=db, enterprise_ids=[eid], now=datetime(2026, 4, 1, tzinfo=UTC))
    with database.session() as db:
        assert integrity.snapshot_month(db=db, month="2026-04", now=NOW) == 1
        assert integrity.snapshot_month(db=db, month="2026-05", now=NOW) == 1
    with database.session() as db:  # again: nothing new, nothing rewritten
        assert integrity.snapshot_month(db=db, month="2026-05", now=NOW + timedelta(days=3)) == 0
        with pytest.raises(EnterpriseError) as caught:
            integrity.snapshot_month(db=db, month="2026-06", now=NOW)
        assert caught.value.status == 409
        with pytest.raises(EnterpriseError) as caught:
            integrity.snapshot_month(db=db, month="2026-13", now=NOW)
        assert caught.value.status == 422
    with database.session() as db:
        may = db.execute(sa.select(EnterpriseColourHistory).where(EnterpriseColourHistory.month == "2026-05")
                         ).scalar_one()
        assert (may.colour, may.score, may.ruleset_version) == ("红", 85, 1)
        assert {i["item"] for i in may.items} == {"arrears", "group", "veto_group_arrears"}
        assert june not in {c for i in may.items for c in i["case_ids"]}
        assert may.computed_at == NOW

    # A new rule set: May's snapshot stays as computed; June's is computed with version 2.
    with database.session() as db:
        integrity.publish(db=db, rules=_rules(deductions__injury={"categories": ["工伤"], "points": 12, "cap": 20}),
                          actor="user:root", note="工伤加重")
    with database.session() as db:
        assert integrity.snapshot_month(db=db, month="2026-05", now=NOW) == 0
        assert integrity.snapshot_month(db=db, month="2026-06", now=datetime(2026, 7, 1, tzinfo=UTC)) == 1
        history = integrity.history(db=db, enterprise_id=eid)
    assert [h.month for h in history] == ["2026-04", "2026-05", "2026-06"]
    april, may_entry, june_entry = history
    assert (april.colour, april.score, april.items, april.previous_colour) == ("绿", 100, [], None)
    assert april.explanation.startswith("首次评定")
    assert may_entry.colour_changed and may_entry.previous_colour == "绿" and may_entry.colour == "红"
    changed = {c.item: c for c in may_entry.changes}
    assert changed["arrears"].added_case_ids == [arrears] and changed["arrears"].after == -5
    assert changed["veto_group_arrears"].added_case_ids == [arrears]
    assert "由绿变为红" in may_entry.explanation and "新增「欠薪投诉 1 件」 -5 分" in may_entry.explanation
    assert (may_entry.score, may_entry.ruleset_version) == (85, 1)
    assert june_entry.ruleset_changed and june_entry.ruleset_version == 2 and not june_entry.colour_changed
    assert {c.item: c.after for c in june_entry.changes} == {"injury": -12}
    assert "评分规则由第 1 版改为第 2 版" in june_entry.explanation
    assert first not in {c for h in history for i in h.items for c in i.case_ids}  # a 劳动合同 case: no item
    events = _events(database, "enterprise.colours_snapshotted")
    assert [e.details["written"] for e in events] == [1, 1, 0, 0, 1]


def test_publish_versions_and_audit(database: Database) -> None:
    with database.session() as db:
        assert integrity.active(db=db).version == 1
        assert integrity.ensure_default(db=db).rules == Rules.model_validate(integrity.DEFAULT_RULES).model_dump(
            mode="json")
        row = integrity.publish(db=db, rules=integrity.DEFAULT_RULES, actor="user:root", note="同默认")
        assert row.version == 2
        with pytest.raises(EnterpriseError) as caught:
            integrity.publish(db=db, rules={"start": 100}, actor="user:root")
        assert caught.value.status == 422 and "评分规则有误" in caught.value.message
    (event,) = _events(database, "integrity.ruleset_published")
    assert event.details["version"] == 2 and event.details["note"] == "同默认"


# --- override and objections (service) -----------------------------------------------------------------


def test_override_needs_a_reason_and_is_audited(database: Database) -> None:
    with database.session() as db:
        eid = _enterprise(db, "青岛海丰水产有限公司")
        with pytest.raises(EnterpriseError) as caught:
            integrity.override(db=db, enterprise_id=eid, colour="橙", reason="  ", actor="user:wang")
        assert caught.value.status == 422
        with pytest.raises(EnterpriseError) as caught:
            integrity.override(db=db, enterprise_id=999999, colour="橙", reason="x", actor="user:wang")
        assert caught.value.status == 404
        row = integrity.override(db=db, enterprise_id=eid, colour="橙", reason="约谈后仍未整改", actor="user:wang")
        assert (row.colour, row.override_colour, row.override_by) == ("绿", "橙", "wang")
        assert integrity.rating(db=db, enterprise_id=eid).colour == "橙"
    with database.session() as db:  # a rescore keeps the override
        integrity.rescore(db=db, enterprise_ids=[eid], now=NOW)
        assert integrity.rating(db=db, enterprise_id=eid).colour == "橙"
        integrity.override(db=db, enterprise_id=eid, colour=None, reason="已整改", actor="user:wang")
        shown = integrity.rating(db=db, enterprise_id=eid)
        assert (shown.colour, shown.override) == ("绿", None)
    events = _events(database, "enterprise.colour_overridden")
    assert [(e.details["before"], e.details["after"], e.details["reason"]) for e in events] == [
        (None, "橙", "约谈后仍未整改"), ("橙", None, "已整改")]


# --- the API -------------------------------------------------------------------------------------------


@pytest.fixture
def manager(client: TestClient, database: Database) -> dict[str, str]:
    add_user(database, "wang", Role.manager)
    return login(client, "wang")


@pytest.fixture
def admin(client: TestClient, database: Database) -> dict[str, str]:
    add_user(database, "root", Role.admin)
    return login(client, "root")


@pytest.fixture
def rated(database: Database) -> dict[str, int]:
    """Three enterprises rated now: a red one (group arrears), a yellow one, and one never rated (绿)."""
    now = utcnow()
    with database.session() as db:
        red = _enterprise(db, "青岛海丰水产有限公司")
        yellow = _enterprise(db, "青岛恒达机械有限公司", district="城阳区")
        green = _enterprise(db, "青岛宏远建材有限公司")
        group = _case(db, red, category="欠薪", at=now - timedelta(days=3), group=True)
        for days in (5, 30, 60):
            _case(db, yellow, category="欠薪", at=now - timedelta(days=days))
        integrity.rescore_all(db=db)
    return {"red": red, "yellow": yellow, "green": green, "group_case": group}


def test_api_list_and_detail_shapes(client: TestClient, agent: dict[str, str], rated: dict[str, int]) -> None:
    r = client.get("/api/v1/enterprises", headers=agent)
    assert r.status_code == 200, r.text
    items = {i["id"]: i for i in r.json()["items"]}
    assert set(items[rated["red"]]) == {"id", "name", "credit_code", "district", "address", "industry",
                                        "enterprise_type", "cases", "colour", "score"}
    assert (items[rated["red"]]["colour"], items[rated["red"]]["score"]) == ("红", 85)
    assert (items[rated["yellow"]]["colour"], items[rated["yellow"]]["score"]) == ("黄", 75)
    assert (items[rated["green"]]["colour"], items[rated["green"]]["score"]) == ("绿", 100)
    for colour, expected in (("红", [rated["red"]]), ("黄", [rated["yellow"]]), ("绿", [rated["green"]]),
                             ("橙", [])):
        body = client.get("/api/v1/enterprises", params={"colour": colour}, headers=agent).json()
        assert [i["id"] for i in body["items"]] == expected and body["total"] == len(expected)
    body = client.get("/api/v1/enterprises", params={"colour": "黄", "district": "城阳区", "q": "恒达"},
                      headers=agent).json()
    assert body["total"] == 1
    assert client.get("/api/v1/enterprises", params={"colour": "紫"}, headers=agent).status_code == 422

    r = client.get(f"/api/v1/enterprises/{rated['red']}", headers=agent)
    assert r.status_code == 200, r.text
    body = r.json()
    assert {"colour", "score", "computed_colour", "ruleset_version", "computed_at", "deductions", "override",
            "history", "objections", "stats", "recent_cases", "aliases"} <= set(body)
    assert (body["colour"], body["score"], body["computed_colour"], body["ruleset_version"]) == ("红", 85, "红", 1)
    deductions = {d["item"]: d for d in body["deductions"]}
    assert set(deductions["arrears"]) == {"item", "label", "points", "case_ids", "warning_ids"}
    assert deductions["veto_group_arrears"]["case_ids"] == [rated["group_case"]]
    assert (body["override"], body["history"], body["objections"]) == (None, [], [])
    never = client.get(f"/api/v1/enterprises/{rated['green']}", headers=agent).json()
    assert (never["colour"], never["score"], never["ruleset_version"], never["deductions"]) == ("绿", 100, None, [])
    assert client.get("/api/v1/enterprises/999999", headers=agent).status_code == 404


def test_api_history_entries(client: TestClient, database: Database, agent: dict[str, str],
                             rated: dict[str, int]) -> None:
    with database.session() as db:
        db.add(EnterpriseColourHistory(enterprise_id=rated["red"], month="2026-01", score=100, colour="绿",
                                       ruleset_version=1, items=[], computed_at=NOW))
        db.add(EnterpriseColourHistory(
            enterprise_id=rated["red"], month="2026-02", score=85, colour="红", ruleset_version=1, computed_at=NOW,
            items=[{"item": "veto_group_arrears", "label": "一票否决：发生群体性欠薪", "points": 0, "case_ids": [7],
                    "warning_ids": []}]))
    history = client.get(f"/api/v1/enterprises/{rated['red']}", headers=agent).json()["history"]
    assert [h["month"] for h in history] == ["2026-01", "2026-02"]
    assert set(history[1]) == {"month", "score", "colour", "ruleset_version", "computed_at", "items",
                               "previous_colour", "colour_changed", "ruleset_changed", "changes", "explanation"}
    assert history[1]["colour_changed"] and history[1]["changes"][0]["added_case_ids"] == [7]
    assert set(history[1]["changes"][0]) == {"item", "label", "before", "after", "added_case_ids",
                                             "removed_case_ids", "added_warning_ids", "removed_warning_ids"}


def test_api_override(client: TestClient, database: Database, agent: dict[str, str], manager: dict[str, str],
                      rated: dict[str, int]) -> None:
    url = f"/api/v1/enterprises/{rated['green']}/colour-override"
    assert client.put(url, json={"colour": "橙", "reason": "约谈"}, headers=agent).status_code == 403
    assert client.put(url, json={"colour": "橙"}, headers=manager).status_code == 422  # no reason
    assert client.put(url, json={"colour": "橙", "reason": ""}, headers=manager).status_code == 422
    r = client.put(url, json={"colour": "橙", "reason": "   "}, headers=manager)
    assert r.status_code == 422 and r.json()["code"] == "reason_required"
    assert client.put(url, json={"colour": "紫", "reason": "x"}, headers=manager).status_code == 422
    r = client.put("/api/v1/enterprises/999999/colour-override", json={"colour": "橙", "reason": "x"},
                   headers=manager)
    assert r.status_code == 404
    r = client.put(url, json={"colour": "橙", "reason": "媒体报道拖欠工资，待核实"}, headers=manager)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["colour"], body["computed_colour"], body["score"]) == ("橙", "绿", 100)
    assert body["override"]["colour"] == "橙" and body["override"]["by"] == "wang"
    assert body["override"]["reason"] == "媒体报道拖欠工资，待核实" and body["override"]["at"]
    listed = client.get("/api/v1/enterprises", params={"colour": "橙"}, headers=agent).json()
    assert [i["id"] for i in listed["items"]] == [rated["green"]]
    detail = client.get(f"/api/v1/enterprises/{rated['green']}", headers=agent).json()
    assert detail["colour"] == "橙" and detail["override"]["reason"] == "媒体报道拖欠工资，待核实"
    r = client.put(url, json={"colour": None, "reason": "核实不属实"}, headers=manager)
    assert r.status_code == 200 and r.json()["colour"] == "绿" and r.json()["override"] is None
    events = _events(database, "enterprise.colour_overridden")
    assert [(e.actor, e.details["after"]) for e in events] == [("user:wang", "橙"), ("user:wang", None)]


def test_api_objections(client: TestClient, database: Database, agent: dict[str, str], manager: dict[str, str],
                        rated: dict[str, int]) -> None:
    url = f"/api/v1/enterprises/{rated['red']}/objections"
    assert client.post(url, json={"reason": "已足额支付"}, headers=agent).status_code == 403
    assert client.post(url, json={"reason": ""}, headers=manager).status_code == 422
    assert client.post("/api/v1/enterprises/999999/objections", json={"reason": "x"},
                       headers=manager).status_code == 404
    r = client.post(url, json={"reason": "企业称工资已于上周足额支付"}, headers=manager)
    assert r.status_code == 201, r.text
    objection = r.json()
    assert set(objection) == {"id", "enterprise_id", "raised_by", "reason", "status", "outcome", "decided_by",
                              "decided_at", "created_at"}
    assert (objection["status"], objection["raised_by"], objection["outcome"]) == ("待处理", "wang", None)
    decision = f"{url}/{objection['id']}/decision"
    assert client.post(decision, json={"status": "成立", "outcome": "x"}, headers=agent).status_code == 403
    assert client.post(decision, json={"status": "待处理", "outcome": "x"}, headers=manager).status_code == 422
    other = f"/api/v1/enterprises/{rated['yellow']}/objections/{objection['id']}/decision"
    assert client.post(other, json={"status": "成立", "outcome": "x"}, headers=manager).status_code == 404
    r = client.post(decision, json={"status": "不成立", "outcome": "经核实仍有 3 人工资未付"}, headers=manager)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["decided_by"]) == ("不成立", "wang") and r.json()["decided_at"]
    r = client.post(decision, json={"status": "成立", "outcome": "改判"}, headers=manager)
    assert r.status_code == 409 and r.json()["code"] == "already_decided"
    listed = client.get(f"/api/v1/enterprises/{rated['red']}", headers=agent).json()["objections"]
    assert [(o["id"], o["status"]) for o in listed] == [(objection["id"], "不成立")]
    assert [e.details["objection_id"] for e in _events(database, "enterprise.objection_raised")] == [objection["id"]]
    (decided,) = _events(database, "enterprise.objection_decided")
    assert decided.details["status"] == "不成立"


def test_api_ruleset_and_distribution(client: TestClient, database: Database, agent: dict[str, str],
                                      manager: dict[str, str], admin: dict[str, str], rated: dict[str, int]) -> None:
    r = client.get("/api/v1/integrity/ruleset", headers=agent)
    assert r.status_code == 200
    current = r.json()
    assert set(current) == {"version", "rules", "note", "published_by", "published_at"}
    assert current["version"] == 1 and current["rules"]["deductions"]["arrears"]["categories"] == ["欠薪"]
    rules = current["rules"]
    rules["deductions"]["arrears"]["points"] = 10  # 欠薪 now −10 each
    body = {"rules": rules, "note": "欠薪加重"}
    assert client.post("/api/v1/integrity/ruleset", json=body, headers=agent).status_code == 403
    assert client.post("/api/v1/integrity/ruleset", json=body, headers=manager).status_code == 403
    bad = {"rules": {**rules, "bands": [{"colour": "蓝", "min_score": 80}, {"colour": "绿", "min_score": 90}]}}
    assert client.post("/api/v1/integrity/ruleset", json=bad, headers=admin).status_code == 422
    r = client.post("/api/v1/integrity/ruleset", json=body, headers=admin)
    assert r.status_code == 201, r.text
    assert (r.json()["version"], r.json()["note"], r.json()["published_by"]) == (2, "欠薪加重", "root")
    assert client.get("/api/v1/integrity/ruleset", headers=agent).json()["version"] == 2
    # Published rules apply at once: 100 − 30 − 10 = 60 (橙).
    yellow = client.get(f"/api/v1/enterprises/{rated['yellow']}", headers=agent).json()
    assert (yellow["score"], yellow["colour"], yellow["ruleset_version"]) == (60, "橙", 2)

    assert client.get("/api/v1/integrity/distribution", headers=agent).status_code == 403
    r = client.get("/api/v1/integrity/distribution", headers=manager)
    assert r.status_code == 200
    assert r.json() == {"total": 3, "by_colour": {"红": 1, "橙": 1, "黄": 0, "蓝": 0, "绿": 1}, "overridden": 0}
    r = client.get("/api/v1/integrity/distribution", params={"district": "城阳区"}, headers=manager)
    assert r.json()["total"] == 1 and r.json()["by_colour"]["橙"] == 1


# --- the CLI -------------------------------------------------------------------------------------------


def test_cli_rescore_and_snapshot(settings: Settings, database: Database) -> None:
    runner = CliRunner()
    env = env_for(settings)
    with database.session() as db:
        eid = _enterprise(db, "青岛海丰水产有限公司")
        _case(db, eid, category="欠薪", at=utcnow() - timedelta(days=40), group=True)
    r = runner.invoke(cli, ["enterprises", "rescore"], env=env)
    assert r.exit_code == 0, r.output
    assert "1 家企业，1 家变色" in r.output
    assert (_score(database, eid) or pytest.fail()).colour == "红"
    r = runner.invoke(cli, ["enterprises", "snapshot", "--month", "2026-13"], env=env)
    assert r.exit_code == 1 and "YYYY-MM" in r.output
    r = runner.invoke(cli, ["enterprises", "snapshot"], env=env)  # the month just ended
    assert r.exit_code == 0, r.output
    assert "新增 1 家" in r.output
    r = runner.invoke(cli, ["enterprises", "snapshot"], env=env)
    assert r.exit_code == 0 and "新增 0 家" in r.output
