"""Early warnings: rules of each kind, the burst test, attach/upgrade/inhibit/snooze, the workflow and its
refusals, escalation, idempotent evaluation and who may see what — on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.cases.models import Case
from app.config import Settings
from app.db import Database
from app.enterprises.models import Enterprise
from app.notifications import service as notifications
from app.notifications.models import Notification
from app.recordings.models import Recording
from app.users.models import Role
from app.warnings import engine, service, workflow
from app.warnings.models import EarlyWarning, Grade, GroupBy, RuleIn, WarningCase, WarningRule, WarningTransitionIn
from tests.conftest import add_user, login

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
_n = iter(range(1, 1_000_000))


def add_case(database: Database, at: datetime, **fields: Any) -> int:
    n = next(_n)
    with database.session() as db:
        rec = Recording(sha256=f"{n:064x}", path=f"r{n}.wav", original_name=f"r{n}.wav", size_bytes=1, format="wav",
                        codec="pcm_s16le", sample_rate=8000, channels=2, duration=1.0, layout="caller-left",
                        channel="来电", status="done", uploaded_by="test")
        db.add(rec)
        db.flush()
        values: dict[str, Any] = {"category": "欠薪", "status": "受理", "caller_phone": f"1380000{n:04d}", **fields}
        case = Case(case_no=f"QD-2026-{n:06d}", channel="来电", recording_id=rec.id, category_confidence=0.9,
                    category_evidence=[], summary="", created_by="test", created_at=at, accepted_at=at, **values)
        db.add(case)
        db.flush()
        return case.id


def enterprise(database: Database, name: str, district: str = "崂山区") -> int:
    with database.session() as db:
        e = Enterprise(name=name, district=district)
        db.add(e)
        db.flush()
        return e.id


def only_rules(database: Database, *rules: RuleIn) -> None:
    """The default rules switched off and these on instead."""
    with database.session() as db:
        service.seed_rules(db=db)
        db.execute(sa.update(WarningRule).values(active=False))
        for rule in rules:
            service.create_rule(db=db, data=rule, actor="test")


def evaluate(database: Database, settings: Settings, case_id: int, now: datetime) -> service.Evaluation:
    with database.session() as db:
        return service.evaluate_case(db=db, settings=settings, case_id=case_id, now=now)


def warnings(database: Database) -> list[tuple[str, str, str, list[int]]]:
    """(group_key, grade, status, case ids) of every warning, oldest first."""
    with database.session() as db:
        out = []
        for w in db.execute(sa.select(EarlyWarning).order_by(EarlyWarning.id)).scalars():
            ids = sorted(db.execute(sa.select(WarningCase.case_id).where(WarningCase.warning_id == w.id)).scalars())
            out.append((w.group_key, w.grade, w.status, ids))
        return out


def background(database: Database) -> None:
    """Half a year of history before T0 (a call a month, each about another enterprise): a site with a
    baseline, so the burst test has something to go on."""
    for day in range(0, 180, 30):
        add_case(database, T0 - timedelta(days=200 - day), enterprise_id=enterprise(database, f"青岛别家{day}有限公司"))


ENTERPRISE_RULE = RuleIn(name="企业", group_by=GroupBy.enterprise, window_days=7, min_cases=3, burst_alpha=1e-3,
                         burst_grade=Grade.yellow, floor_per_day=0.01,
                         grades={Grade.orange: {"workers": 30}, Grade.red: {"amount": 1_000_000}})


# --- the engine on its own ---------------------------------------------------------------------------------

def test_poisson_tail_is_exact() -> None:
    assert engine.poisson_tail(0, 3.0) == 1.0
    assert engine.poisson_tail(10, 10.0) == pytest.approx(0.54207, abs=1e-5)
    assert engine.poisson_tail(3, 0.1) == pytest.approx(1.5465e-4, rel=1e-3)
    assert engine.poisson_tail(40, 1.0) == pytest.approx(1.0 / 8.159e47, rel=0.05)  # no cancellation to 0


def assess(rule: engine.Rule, window: list[engine.Fact], baseline: engine.Baseline,
           repeat: bool = False) -> engine.Assessment | None:
    return engine.assess(rule, engine.Figures.of(window), baseline, repeat=repeat)


def _facts(n: int, at: datetime, **kw: Any) -> list[engine.Fact]:
    return [engine.Fact(case_id=i, at=at + timedelta(hours=i), category="欠薪", **kw) for i in range(n)]


def test_burst_test_tells_a_busy_district_from_a_quiet_enterprise() -> None:
    rule = engine.Rule(id=1, version=1, name="r", group_by=GroupBy.district_category, window_days=7, min_cases=2,
                       burst_alpha=1e-3)
    busy = engine.Baseline(own_per_day=10 / 7, peer_per_day=0.5, floor_per_day=0.0, days_seen=180)
    assert assess(rule, _facts(10, T0, district="市南区"), busy) is None  # ten a week, as always
    assert assess(rule, _facts(30, T0, district="市南区"), busy) is not None  # three times that
    quiet = engine.Baseline(own_per_day=0.0, peer_per_day=0.01, floor_per_day=0.005, days_seen=180)
    assert assess(rule, _facts(2, T0), quiet) is None
    found = assess(rule, _facts(3, T0), quiet)
    assert found is not None and found.grade == Grade.yellow and "突增" in found.because
    assert found.p_value is not None and found.p_value < 1e-3


def test_grades_group_cases_and_repeats() -> None:
    rule = engine.Rule(id=1, version=1, name="r", group_by=GroupBy.enterprise, window_days=7, min_cases=2,
                       grades={"黄": {"callers": 3}, "橙": {"workers": 30}, "红": {"amount": 1_000_000}})
    none = engine.Baseline(0, 0, 0, 0)
    assert assess(rule, _facts(2, T0), none) is None
    found = assess(rule, _facts(3, T0), none)
    assert found is not None and found.grade == Grade.yellow
    many = [engine.Fact(case_id=i, at=T0, category="欠薪", workers=15, caller=f"1{i}") for i in range(2)]
    found = assess(rule, many, none)
    assert found is not None and found.grade == Grade.orange
    one_group = [engine.Fact(case_id=1, at=T0, category="欠薪", workers=40, group_case=True)]
    found = assess(rule, one_group, none)  # a single group case is red, below min_cases
    assert found is not None and found.grade == Grade.red and "群体性" in found.because
    found = assess(rule, _facts(3, T0), none, repeat=True)
    assert found is not None and found.grade == Grade.red and "重复发生" in found.because


def test_reason_says_what_a_manager_needs() -> None:
    rule = engine.Rule(id=1, version=1, name="r", group_by=GroupBy.enterprise, window_days=7, min_cases=2,
                       grades={"黄": {"cases": 2}})
    window = [engine.Fact(case_id=i, at=T0, category="欠薪", workers=w, amount=a, caller=f"13{i}", district="崂山区",
                          enterprise_id=1, enterprise="青岛某水产公司")
              for i, (w, a) in enumerate([(10, 80_000), (8, 60_000), (3, 26_000), (2, 20_000)])]
    key = engine.key_of(rule, window[0])
    found = assess(rule, window, engine.Baseline(0, 0, 0, 0))
    assert key is not None and found is not None
    expected = "崂山区青岛某水产公司 7 天内 4 起欠薪来电，涉及 23 人，金额 18.6 万元"
    assert engine.reason(rule, key, found).startswith(expected)


# --- rules on the database -------------------------------------------------------------------------------

def test_a_quiet_enterprise_warns_at_its_third_call_and_later_calls_attach(database: Database,
                                                                          settings: Settings) -> None:
    only_rules(database, ENTERPRISE_RULE)
    e = enterprise(database, "青岛海鲜水产有限公司")
    background(database)
    first = add_case(database, T0, enterprise_id=e, workers=2, amount=20_000)
    second = add_case(database, T0 + timedelta(hours=5), enterprise_id=e, workers=1, amount=8_000)
    assert evaluate(database, settings, first, T0).raised == 0
    assert evaluate(database, settings, second, T0).raised == 0
    third = add_case(database, T0 + timedelta(days=1), enterprise_id=e, workers=3, amount=30_000)
    result = evaluate(database, settings, third, T0 + timedelta(days=1))
    assert result.raised == 1
    assert warnings(database) == [(f"enterprise:{e}", "黄", "待签收", [first, second, third])]
    with database.session() as db:
        w = db.execute(sa.select(EarlyWarning)).scalar_one()
        assert w.subject == "青岛海鲜水产有限公司" and w.figures["callers"] == 3 and w.figures["p_value"] < 1e-3
        assert "7 天内 3 起欠薪来电" in w.reason
    # a fourth call in the window attaches; one with 30 workers raises it to 橙, never back down
    fourth = add_case(database, T0 + timedelta(days=2), enterprise_id=e, workers=30, amount=100_000)
    assert evaluate(database, settings, fourth, T0 + timedelta(days=2)).upgraded == 1
    fifth = add_case(database, T0 + timedelta(days=6), enterprise_id=e, workers=1)
    evaluate(database, settings, fifth, T0 + timedelta(days=6))
    assert warnings(database) == [(f"enterprise:{e}", "橙", "待签收", [first, second, third, fourth, fifth])]
    # a call long after, on its own, is not part of the episode
    later = add_case(database, T0 + timedelta(days=40), enterprise_id=e)
    evaluate(database, settings, later, T0 + timedelta(days=40))
    assert warnings(database)[0][3] == [first, second, third, fourth, fifth]


def test_unregistered_names_group_by_the_name_said(database: Database, settings: Settings) -> None:
    only_rules(database, RuleIn(name="企业", group_by=GroupBy.enterprise, window_days=7, grades={"蓝": {"cases": 2}}))
    a = add_case(database, T0, enterprise="青岛某某 建筑公司")
    b = add_case(database, T0 + timedelta(hours=1), enterprise="青岛某某建筑公司")
    evaluate(database, settings, a, T0)
    evaluate(database, settings, b, T0)
    assert warnings(database) == [("enterprise-name:青岛某某建筑公司", "蓝", "待签收", [a, b])]


def test_enterprise_by_category(database: Database, settings: Settings) -> None:
    """Workers of one enterprise on the same problem cluster; different problems of one enterprise do not."""
    only_rules(database, RuleIn(name="企业同类", group_by=GroupBy.enterprise_category, window_days=3,
                                grades={"黄": {"callers": 3}}))
    e = enterprise(database, "青岛某派遣服务有限公司")
    ids = [add_case(database, T0 + timedelta(hours=h), enterprise_id=e, category=c)
           for h, c in enumerate(["劳务派遣", "劳动合同", "劳务派遣", "社会保险", "劳务派遣"])]
    with database.session() as db:
        service.evaluate_cases(db=db, settings=settings, case_ids=ids, now=T0)
        subject = db.execute(sa.select(EarlyWarning.subject)).scalar_one()
    assert warnings(database) == [(f"enterprise:{e}|劳务派遣", "黄", "待签收", [ids[0], ids[2], ids[4]])]
    assert subject == "青岛某派遣服务有限公司 × 劳务派遣"


def test_district_category_burst_against_its_own_history(database: Database, settings: Settings) -> None:
    """Ten 欠薪 calls a week in 市南区 is its normal: no warning at 10; 劳务派遣 there is rare: 5 warn."""
    only_rules(database, RuleIn(name="区域类别", group_by=GroupBy.district_category, window_days=7, min_cases=3,
                                burst_alpha=1e-4, burst_grade=Grade.orange))
    rng = random.Random(7)
    start = T0 - timedelta(days=120)
    ids = []
    for day in range(120):  # ~10 a week of 欠薪 for four months, and a 劳务派遣 call a month
        for _ in range(rng.choice([1, 1, 2, 2, 2, 1, 3])):
            ids.append(add_case(database, start + timedelta(days=day, hours=rng.randint(1, 8)), district="市南区"))
        if day % 30 == 0:
            ids.append(add_case(database, start + timedelta(days=day, hours=9), district="市南区", category="劳务派遣"))
    with database.session() as db:
        assert service.evaluate_all(db=db, settings=settings, now=T0).raised == 0
    usual = [add_case(database, T0 + timedelta(hours=h * 12), district="市南区") for h in range(10)]
    with database.session() as db:
        assert service.evaluate_cases(db=db, settings=settings, case_ids=usual, now=T0 + timedelta(days=5)).raised == 0
    burst = [add_case(database, T0 + timedelta(hours=h * 6), district="市南区", category="劳务派遣") for h in range(5)]
    with database.session() as db:
        result = service.evaluate_cases(db=db, settings=settings, case_ids=burst, now=T0 + timedelta(days=2))
    assert result.raised == 1
    (key, grade, _status, cases), = warnings(database)
    assert key == "市南区|劳务派遣" and grade == "橙" and set(burst) <= set(cases)


def test_district_occupation_rule(database: Database, settings: Settings) -> None:
    only_rules(database, RuleIn(name="区域职业", group_by=GroupBy.district_occupation, window_days=7,
                                grades={"黄": {"callers": 3}}))
    ids = [add_case(database, T0 + timedelta(hours=h), district="黄岛区", occupation="建筑工人", category=c)
           for h, c in enumerate(["欠薪", "工伤", "欠薪"])]
    add_case(database, T0, district="黄岛区", occupation="外卖骑手")
    with database.session() as db:
        service.evaluate_cases(db=db, settings=settings, case_ids=ids, now=T0)
    (key, grade, _s, cases), = warnings(database)
    assert key == "黄岛区|职业:建筑工人" and grade == "黄" and cases == ids


def test_a_group_case_is_red_at_once_and_a_repeat_is_red(database: Database, settings: Settings) -> None:
    only_rules(database, ENTERPRISE_RULE)
    e = enterprise(database, "青岛某建筑劳务有限公司")
    background(database)
    group = add_case(database, T0, enterprise_id=e, workers=40, group_case=True)
    assert evaluate(database, settings, group, T0).raised == 1
    with database.session() as db:
        w = db.execute(sa.select(EarlyWarning)).scalar_one()
        assert w.grade == "红" and "群体性" in w.reason
        assert w.sign_due_at == T0 + timedelta(hours=settings.warning_sign_hours["红"])
        for to, extra in (("已签收", {}), ("已核实", {"verdict": "属实"}), ("处置中", {"action": "转人社监察"}),
                          ("办结", {"amount_recovered": 300_000, "workers_covered": 40})):
            workflow.transition(db=db, warning=w, move=WarningTransitionIn(to=to, **extra), actor="user:boss",
                                now=T0 + timedelta(days=3))
        assert w.open_key is None
    # weeks later it happens again: a small cluster that would be 黄 is 红 (重复发生)
    again = [add_case(database, T0 + timedelta(days=40, hours=h), enterprise_id=e) for h in range(3)]
    with database.session() as db:
        service.evaluate_cases(db=db, settings=settings, case_ids=again, now=T0 + timedelta(days=40))
    assert [(g, s) for _k, g, s, _c in warnings(database)] == [("红", "办结"), ("红", "待签收")]
    with database.session() as db:
        assert "此前预警办结后再次发生" in db.execute(sa.select(EarlyWarning.reason).order_by(EarlyWarning.id.desc())
                                               ).scalars().first()


def test_evaluation_is_idempotent_and_incremental_agrees_with_full(database: Database, settings: Settings) -> None:
    only_rules(database, ENTERPRISE_RULE, RuleIn(name="区域", group_by=GroupBy.district_category, window_days=3,
                                                 min_cases=4, burst_alpha=1e-4))
    rng = random.Random(12351)
    firms = [enterprise(database, f"青岛测试{i}有限公司") for i in range(40)]
    ids = []
    for i in range(300):  # 50 days; the burst test starts on day 35 (28 days of history before a 7-day window)
        at = T0 + timedelta(hours=i * 4 + rng.random())
        firm = firms[0] if 250 <= i < 256 else rng.choice(firms)  # an episode on firms[0], day 42
        ids.append(add_case(database, at, enterprise_id=firm, district=rng.choice(["市南区", "崂山区"]),
                            category=rng.choice(["欠薪", "欠薪", "社会保险", "劳动合同"]), workers=1))
    for case_id in ids:  # as filed, one at a time, each at its own time
        with database.session() as db:
            at = db.get(Case, case_id).accepted_at  # type: ignore[union-attr]
            service.evaluate_case(db=db, settings=settings, case_id=case_id, now=at, dating="case")
    incremental = warnings(database)
    assert any(key == f"enterprise:{firms[0]}" for key, *_ in incremental)
    with database.session() as db:
        again = service.evaluate_all(db=db, settings=settings, now=T0 + timedelta(days=80))
    assert (again.raised, again.attached, again.upgraded) == (0, 0, 0)
    assert warnings(database) == incremental
    # a fresh replay of the same cases raises the same warnings over the same cases
    with database.session() as db:
        db.execute(sa.delete(WarningCase))
        db.execute(sa.delete(EarlyWarning))
    with database.session() as db:
        service.evaluate_all(db=db, settings=settings, now=T0 + timedelta(days=80))
    assert warnings(database) == incremental


def test_a_red_warning_hides_lower_ones_over_the_same_cases(database: Database, settings: Settings) -> None:
    only_rules(database, RuleIn(name="区域", group_by=GroupBy.district_category, window_days=7,
                                grades={"黄": {"cases": 3}}, group_case_red=False),
               RuleIn(name="企业", group_by=GroupBy.enterprise, window_days=7, grades={"黄": {"cases": 3}}))
    e = enterprise(database, "青岛某派遣有限公司", "城阳区")
    ids = [add_case(database, T0 + timedelta(hours=h), enterprise_id=e, district="城阳区", category="劳务派遣")
           for h in range(3)]
    with database.session() as db:
        service.evaluate_cases(db=db, settings=settings, case_ids=ids, now=T0)
    assert {g for _k, g, _s, _c in warnings(database)} == {"黄"}
    group = add_case(database, T0 + timedelta(hours=5), enterprise_id=e, district="城阳区", category="劳务派遣",
                     workers=35, group_case=True)
    evaluate(database, settings, group, T0)
    with database.session() as db:
        by_key = {w.group_key: w for w in db.execute(sa.select(EarlyWarning)).scalars()}
        red, district = by_key[f"enterprise:{e}"], by_key["城阳区|劳务派遣"]
        assert red.grade == "红" and district.inhibited_by_id == red.id
        workflow.transition(db=db, warning=red, move=WarningTransitionIn(to="已签收"), actor="user:m")
        workflow.transition(db=db, warning=red, move=WarningTransitionIn(to="已核实", verdict="误报"), actor="user:m")
        workflow.transition(db=db, warning=red, move=WarningTransitionIn(to="办结"), actor="user:m")
        assert district.inhibited_by_id is None  # shown again once the red one is closed


def test_a_group_case_warns_on_its_district_too_but_shows_once(database: Database, settings: Settings) -> None:
    only_rules(database, RuleIn(name="区域", group_by=GroupBy.district_category, window_days=7, min_cases=5),
               RuleIn(name="企业", group_by=GroupBy.enterprise, window_days=7, min_cases=3))
    e = enterprise(database, "青岛某纺织有限公司", "即墨区")
    named = add_case(database, T0, enterprise_id=e, district="即墨区", workers=40, group_case=True)
    unnamed = add_case(database, T0 + timedelta(days=20), district="平度市", workers=16, group_case=True)
    with database.session() as db:
        service.evaluate_cases(db=db, settings=settings, case_ids=[named, unnamed], now=T0 + timedelta(days=20))
        shown = {w.group_key: w.inhibited_by_id for w in db.execute(sa.select(EarlyWarning)).scalars()}
        red_on_enterprise = db.execute(sa.select(EarlyWarning.id).where(
            EarlyWarning.group_key == f"enterprise:{e}")).scalar_one()
    # the enterprise's red warning is the one shown; the district's is under it; a group case nobody named the
    # enterprise of still warns, on its district
    assert shown == {f"enterprise:{e}": None, "即墨区|欠薪": red_on_enterprise, "平度市|欠薪": None}


def test_snooze_until_more_cases_or_a_date(database: Database, settings: Settings, client: TestClient) -> None:
    only_rules(database, RuleIn(name="企业", group_by=GroupBy.enterprise, window_days=30, grades={"蓝": {"cases": 2}}))
    add_user(database, "boss", Role.manager)
    h = login(client, "boss")
    e = enterprise(database, "青岛某物流有限公司")
    ids = [add_case(database, T0 + timedelta(hours=i), enterprise_id=e) for i in range(2)]
    with database.session() as db:
        service.evaluate_cases(db=db, settings=settings, case_ids=ids, now=T0)
        warning_id = db.execute(sa.select(EarlyWarning.id)).scalar_one()
    r = client.post(f"/api/v1/warnings/{warning_id}/snooze", json={"more_cases": 2, "reason": " "}, headers=h)
    assert r.status_code == 422 and "理由" in r.json()["detail"]
    r = client.post(f"/api/v1/warnings/{warning_id}/snooze", json={"reason": "等待核查"}, headers=h)
    assert r.status_code == 422
    r = client.post(f"/api/v1/warnings/{warning_id}/snooze", json={"more_cases": 2, "reason": "企业已承诺月底发放"},
                    headers=h)
    assert r.status_code == 200 and r.json()["snoozed"] and r.json()["snooze_cases"] == 4
    evaluate(database, settings, add_case(database, T0 + timedelta(days=1), enterprise_id=e), T0)
    assert client.get(f"/api/v1/warnings/{warning_id}", headers=h).json()["snoozed"]
    evaluate(database, settings, add_case(database, T0 + timedelta(days=2), enterprise_id=e), T0)
    body = client.get(f"/api/v1/warnings/{warning_id}", headers=h).json()
    assert not body["snoozed"] and [e["label"] for e in body["timeline"]].count("解除暂缓") == 1
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    r = client.post(f"/api/v1/warnings/{warning_id}/snooze", json={"until": until, "reason": "节后核查"}, headers=h)
    assert r.json()["snoozed"]
    with database.session() as db:
        assert workflow.sweep(db=db, settings=settings, now=datetime.now(UTC)).woken == 0
        assert workflow.sweep(db=db, settings=settings, now=datetime.now(UTC) + timedelta(hours=2)).woken == 1


# --- the workflow through the API ----------------------------------------------------------------------------

@pytest.fixture
def raised(database: Database, settings: Settings) -> int:
    only_rules(database, ENTERPRISE_RULE)
    e = enterprise(database, "青岛某电子有限公司")
    case_id = add_case(database, datetime.now(UTC), enterprise_id=e, workers=30, group_case=True,
                       extracted={"workers": {"value": 30, "start": 12.5, "end": 14.0, "speaker": "caller",
                                              "segment": 3, "text": "我们三十个人都没拿到工资"}})
    evaluate(database, settings, case_id, datetime.now(UTC))
    with database.session() as db:
        return db.execute(sa.select(EarlyWarning.id)).scalar_one()


def test_workflow_refusals_list_the_allowed_moves(client: TestClient, database: Database, raised: int) -> None:
    add_user(database, "boss", Role.manager)
    h = login(client, "boss")
    url = f"/api/v1/warnings/{raised}"
    r = client.post(f"{url}/transitions", json={"to": "办结"}, headers=h)
    assert r.status_code == 409 and r.json()["allowed"] == ["已签收"] and "不能直接" in r.json()["detail"]
    assert client.post(f"{url}/transitions", json={"to": "已签收"}, headers=h).json()["status"] == "已签收"
    r = client.post(f"{url}/transitions", json={"to": "已核实"}, headers=h)
    assert r.status_code == 422 and "属实" in r.json()["detail"]
    body = client.post(f"{url}/transitions", json={"to": "已核实", "verdict": "属实"}, headers=h).json()
    assert body["next_statuses"] == ["处置中"]
    r = client.post(f"{url}/transitions", json={"to": "办结", "note": "已处理"}, headers=h)
    assert r.status_code == 409 and r.json()["allowed"] == ["处置中"] and "须先联动处置" in r.json()["detail"]
    assert client.post(f"{url}/transitions", json={"to": "处置中"}, headers=h).status_code == 422
    client.post(f"{url}/transitions", json={"to": "处置中", "action": "转人社监察", "note": "已移交"}, headers=h)
    body = client.post(f"{url}/transitions", json={"to": "处置中", "action": "约谈企业"}, headers=h).json()
    assert [a["action"] for a in body["actions"]] == ["转人社监察", "约谈企业"]
    assert client.post(f"{url}/transitions", json={"to": "办结"}, headers=h).status_code == 422  # no outcome
    body = client.post(f"{url}/transitions", json={"to": "办结", "amount_recovered": 186_000, "workers_covered": 30,
                                                   "note": "企业补发工资"}, headers=h).json()
    assert body["status"] == "办结" and body["amount_recovered"] == 186_000 and body["next_statuses"] == []
    assert [e["label"] for e in body["timeline"]] == ["预警生成", "签收", "核实", "联动处置", "联动处置", "办结"]
    assert body["cases"][0]["evidence"]["workers"]["text"] == "我们三十个人都没拿到工资"
    r = client.post(f"{url}/transitions", json={"to": "已签收"}, headers=h)
    assert r.status_code == 409 and r.json()["allowed"] == [] and "已办结" in r.json()["detail"]
    assert client.get("/api/v1/warnings", headers=h).json()["total"] == 0
    listed = client.get("/api/v1/warnings", params={"include_closed": True}, headers=h).json()
    assert listed["items"][0]["verdict"] == "属实"
    with database.session() as db:
        actions = list(db.execute(sa.text(
            "SELECT action FROM audit_events WHERE subject_type = 'warning' ORDER BY seq")).scalars())
    assert actions[:1] == ["warning.raised"] and "warning.closed" in actions and "warning.read" not in actions[:1]


def test_a_false_alarm_closes_straight_after_verification(client: TestClient, database: Database,
                                                          raised: int) -> None:
    add_user(database, "boss", Role.manager)
    h = login(client, "boss")
    url = f"/api/v1/warnings/{raised}/transitions"
    client.post(url, json={"to": "已签收"}, headers=h)
    assert client.post(url, json={"to": "已核实", "verdict": "误报"}, headers=h).json()["next_statuses"] == ["办结"]
    assert client.post(url, json={"to": "办结", "note": "同一人重复来电"}, headers=h).json()["status"] == "办结"


def test_unsigned_warnings_escalate_to_managers_and_admins(database: Database, settings: Settings,
                                                           raised: int) -> None:
    add_user(database, "boss", Role.manager)
    add_user(database, "root", Role.admin)
    add_user(database, "zhang", Role.agent)
    with database.session() as db:
        w = db.get(EarlyWarning, raised)
        assert w is not None
        due = w.sign_due_at
        assert workflow.sweep(db=db, settings=settings, now=due - timedelta(minutes=1)).escalated == 0
        assert workflow.sweep(db=db, settings=settings, now=due + timedelta(minutes=1)).escalated == 1
        assert workflow.sweep(db=db, settings=settings, now=due + timedelta(minutes=2)).escalated == 0
        assert w.escalation_level == 1
        assert workflow.sweep(db=db, settings=settings, now=due + timedelta(hours=3)).escalated == 1
        assert w.escalation_level == 2
        told = db.execute(sa.select(Notification.username, Notification.kind)
                          .where(Notification.warning_id == raised).order_by(Notification.id)).all()
    assert ("boss", "warning_unsigned") in told and ("root", "warning_unsigned") in told
    assert ("root", "warning_unsigned_2") in told and not any(name == "zhang" for name, _ in told)


def test_raising_tells_managers_in_the_app_and_through_the_webhook(database: Database, settings: Settings,
                                                                  client: TestClient) -> None:
    add_user(database, "boss", Role.manager)
    only_rules(database, ENTERPRISE_RULE)
    e = enterprise(database, "青岛某食品有限公司")
    now = datetime.now(UTC)
    evaluate(database, settings, add_case(database, now, enterprise_id=e, workers=12, group_case=True), now)
    h = login(client, "boss")
    mine = client.get("/api/v1/notifications", headers=h).json()
    assert mine["unread"] == 1
    note = mine["items"][0]
    assert note["kind"] == "warning_raised" and note["case_id"] is None and note["warning_id"]
    assert note["message"].startswith("【红色预警】青岛某食品有限公司")
    assert client.post(f"/api/v1/notifications/{note['id']}/read", headers=h).status_code == 200
    with database.session() as db:
        (out,) = notifications.claim_pending(db=db, now=datetime.now(UTC))
    assert out.payload["warning_id"] == note["warning_id"] and out.payload["grade"] == "红"


def test_old_history_is_listed_but_not_notified(database: Database, settings: Settings) -> None:
    add_user(database, "boss", Role.manager)
    only_rules(database, ENTERPRISE_RULE)
    e = enterprise(database, "青岛某旧案有限公司")
    add_case(database, T0, enterprise_id=e, workers=12, group_case=True)
    with database.session() as db:
        assert service.evaluate_all(db=db, settings=settings, now=T0 + timedelta(days=30)).raised == 1
        w = db.execute(sa.select(EarlyWarning)).scalar_one()
        assert w.raised_at == T0 and w.sign_due_at > T0 + timedelta(days=30)  # dated then, due from now
        assert db.execute(sa.select(sa.func.count()).select_from(Notification)).scalar_one() == 0


# --- who sees what -------------------------------------------------------------------------------------------

def test_permissions(client: TestClient, database: Database, agent: dict[str, str], mediator: dict[str, str],
                     raised: int) -> None:
    add_user(database, "boss", Role.manager)
    boss = login(client, "boss")
    for h in (agent, mediator):
        assert client.get("/api/v1/warnings", headers=h).status_code == 403
        assert client.get(f"/api/v1/warnings/{raised}", headers=h).status_code == 403
        assert client.post(f"/api/v1/warnings/{raised}/transitions", json={"to": "已签收"},
                           headers=h).status_code == 403
    items = client.get("/api/v1/warnings", headers=boss).json()["items"]
    assert items[0]["id"] == raised and items[0]["grade"] == "红" and items[0]["case_ids"]
    assert client.get("/api/v1/warning-rules", headers=boss).status_code == 200
    rule = RuleIn(name="新规则", group_by=GroupBy.enterprise, window_days=7).model_dump(mode="json")
    assert client.post("/api/v1/warning-rules", json=rule, headers=boss).status_code == 403
    assert client.post("/api/v1/warnings/evaluate", headers=boss).status_code == 403
    assert client.get("/api/v1/warnings/summary", headers=boss).json()["by_grade"]["红"] == 1
    assert client.get("/api/v1/warnings/999999", headers=boss).status_code == 404


def test_admins_edit_rules(client: TestClient, database: Database) -> None:
    add_user(database, "root", Role.admin)
    h = login(client, "root")
    seeded = client.get("/api/v1/warning-rules", headers=h).json()
    assert [r["name"] for r in seeded] == [r.name for r in service.DEFAULT_RULES]
    rule = RuleIn(name="企业欠薪", group_by=GroupBy.enterprise, categories=["欠薪", " "], window_days=7,
                  grades={Grade.yellow: {"callers": 3}}).model_dump(mode="json")
    made = client.post("/api/v1/warning-rules", json=rule, headers=h)
    assert made.status_code == 201 and made.json()["categories"] == ["欠薪"] and made.json()["version"] == 1
    assert client.post("/api/v1/warning-rules", json=rule, headers=h).status_code == 409
    rule["window_days"] = 14
    changed = client.put(f"/api/v1/warning-rules/{made.json()['id']}", json=rule, headers=h).json()
    assert changed["version"] == 2 and changed["window_days"] == 14
    assert client.put("/api/v1/warning-rules/99999", json=rule, headers=h).status_code == 404
    assert client.post("/api/v1/warning-rules", json={**rule, "window_days": 0}, headers=h).status_code == 422
    assert client.post("/api/v1/warnings/evaluate", headers=h).json()["raised"] == 0


def test_a_case_staff_correct_is_evaluated_at_once(client: TestClient, database: Database,
                                                   agent: dict[str, str]) -> None:
    only_rules(database, RuleIn(name="区域", group_by=GroupBy.district_category, window_days=7,
                                grades={"黄": {"cases": 2}}, group_case_red=False))
    now = datetime.now(UTC)
    ids = [add_case(database, now - timedelta(hours=h)) for h in range(2)]  # no district heard
    assert client.patch(f"/api/v1/cases/{ids[0]}", json={"district": "李沧区"}, headers=agent).status_code == 200
    assert warnings(database) == []
    assert client.patch(f"/api/v1/cases/{ids[1]}", json={"district": "李沧区"}, headers=agent).status_code == 200
    assert warnings(database) == [("李沧区|欠薪", "黄", "待签收", sorted(ids))]


def test_the_hourly_run_picks_up_cases_missed(database: Database, settings: Settings) -> None:
    """A case filed while evaluation failed (or by a worker that died after filing) is evaluated within the
    hour; a second run adds nothing."""
    only_rules(database, RuleIn(name="企业", group_by=GroupBy.enterprise, window_days=7, grades={"蓝": {"cases": 2}}))
    e = enterprise(database, "青岛某漏评有限公司")
    now = datetime.now(UTC)
    for h in range(2):
        add_case(database, now - timedelta(minutes=30 + h), enterprise_id=e)
    with database.session() as db:
        assert service.hourly(db=db, settings=settings, now=now).raised == 1
    with database.session() as db:
        assert service.hourly(db=db, settings=settings, now=now).raised == 0
    assert len(warnings(database)) == 1
