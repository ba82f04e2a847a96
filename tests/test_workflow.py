"""Case workflow, SLA clocks, staff edits and list filters, through the API on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.audit.models import AuditEvent
from app.cases import service as cases
from app.cases import workflow
from app.cases.models import Case, CaseStatus
from app.db import Database
from app.users.models import Role
from tests.conftest import add_user, login
from tests.helpers import file_transcript, read_case

S = CaseStatus
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Qingdao
WAGES = [("caller", "青岛宏远汽车配件有限公司拖欠工资三个月了"), ("agent", "好的，我们帮您登记")]


@pytest.fixture
def manager(client: TestClient, database: Database) -> dict[str, str]:
    add_user(database, "wang", Role.manager)
    return login(client, "wang")


def _set(database: Database, case_id: int, **values: Any) -> None:
    with database.session() as db:
        case = db.get(Case, case_id)
        assert case is not None
        for name, value in values.items():
            setattr(case, name, value)




def _events(database: Database, case_id: int, action: str) -> list[dict[str, Any]]:
    with database.session() as db:
        rows = db.execute(sa.select(AuditEvent).where(
            AuditEvent.subject_type == "case", AuditEvent.subject_id == str(case_id), AuditEvent.action == action,
        ).order_by(AuditEvent.seq)).scalars()
        return [dict(e.details, actor=e.actor) for e in rows]


# --- the transition table ----------------------------------------------------------------------------------

VALID = {(a, b) for a, targets in workflow.TRANSITIONS.items() for b in targets}


def test_every_transition_is_allowed_or_refused_as_the_table_says(client: TestClient, database: Database,
                                                                  agent: dict[str, str]) -> None:
    case_id = file_transcript(database, WAGES)
    seen = 0
    for current in CaseStatus:
        for target in CaseStatus:
            _set(database, case_id, status=current.value, first_feedback_at=T0, closed_at=None,
                 assignee="zhang")  # the agent's own case (who may change it: test_object_authorization.py)
            r = client.post(f"/api/v1/cases/{case_id}/transitions", headers=agent,
                            json={"to": target.value, "unit": "市南区劳动监察大队", "note": "测试"})
            if (current, target) in VALID:
                assert r.status_code == 200, (current, target, r.text)
                assert r.json()["status"] == target.value
            else:
                assert r.status_code == 409, (current, target, r.text)
                assert r.json()["code"] == "invalid_transition"
                assert read_case(database, case_id).status == current.value  # nothing changed
            seen += 1
    assert seen == 25
    # The forward path and the ways back a hotline needs are all in the table.
    assert {(S.accepted, S.assigned), (S.assigned, S.handling), (S.handling, S.follow_up), (S.follow_up, S.closed),
            (S.handling, S.assigned), (S.assigned, S.accepted), (S.follow_up, S.handling)} <= VALID
    assert not workflow.TRANSITIONS[S.closed]


def test_invalid_transition_says_where_the_case_stands(client: TestClient, database: Database,
                                                       agent: dict[str, str]) -> None:
    case_id = file_transcript(database, WAGES)
    r = client.post(f"/api/v1/cases/{case_id}/transitions", headers=agent, json={"to": "办结"})
    assert r.status_code == 409
    assert r.json()["detail"].startswith("工单状态为「受理」，不能直接「办结」")
    r = client.post(f"/api/v1/cases/{case_id}/transitions", headers=agent, json={"to": "结案"})
    assert r.status_code == 409 and "没有「结案」这个状态" in r.json()["detail"]
    r = client.post(f"/api/v1/cases/{case_id}/transitions", headers=agent, json={"to": "转办"})
    assert r.status_code == 422 and r.json()["detail"] == "转办须指定承办单位或承办人"
    r = client.post(f"/api/v1/cases/{case_id}/transitions", headers=agent, json={"to": "转办", "assignee": "nobody"})
    assert r.status_code == 422 and "承办人「nobody」不存在" in r.json()["detail"]
    assert client.post("/api/v1/cases/999/transitions", headers=agent, json={"to": "办理"}).status_code == 404
    assert _events(database, case_id, "case.transition") == []


def test_full_path_needs_first_feedback_before_closing(client: TestClient, database: Database,
                                                       agent: dict[str, str], mediator: dict[str, str]) -> None:
    case_id = file_transcript(database, WAGES)
    url = f"/api/v1/cases/{case_id}"
    r = client.post(f"{url}/transitions", headers=agent,
                    json={"to": "转办", "unit": "李沧区劳动监察大队", "assignee": "li", "note": "涉及欠薪"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["unit"], body["assignee"]) == ("李沧区劳动监察大队", "li")
    assert body["next_statuses"] == ["受理", "转办", "办理"]
    for step in ("办理", "回访"):
        assert client.post(f"{url}/transitions", headers=mediator, json={"to": step}).status_code == 200
    r = client.post(f"{url}/transitions", headers=mediator, json={"to": "办结"})
    assert r.status_code == 409 and "尚未记录首次反馈" in r.json()["detail"]
    assert client.post(f"{url}/feedback", headers=mediator, json={"note": " "}).status_code == 422
    r = client.post(f"{url}/feedback", headers=mediator, json={"note": "已电话告知来电人处理进展"})
    assert r.status_code == 200 and r.json()["first_feedback_at"] is not None
    client.post(f"{url}/feedback", headers=mediator, json={"note": "再次回访"})
    r = client.post(f"{url}/transitions", headers=mediator, json={"to": "办结", "note": "已追回工资"})
    assert r.status_code == 200 and r.json()["closed_at"] is not None and r.json()["next_statuses"] == []
    assert client.post(f"{url}/feedback", headers=mediator, json={"note": "x"}).status_code == 409

    moves = _events(database, case_id, "case.transition")
    assert [(m["from"], m["to"]) for m in moves] == [
        ("受理", "转办"), ("转办", "办理"), ("办理", "回访"), ("回访", "办结")]
    assert moves[0] == {"from": "受理", "to": "转办", "unit": "李沧区劳动监察大队", "assignee": "li",
                        "note": "涉及欠薪", "actor": "user:zhang"}
    assert [f["first"] for f in _events(database, case_id, "case.feedback")] == [True, False]
    actions = [e["action"] for e in client.get(f"{url}/timeline", headers=agent).json()]
    assert actions.count("case.transition") == 4 and actions.count("case.feedback") == 2


def test_reassignment_and_sending_back(client: TestClient, database: Database, agent: dict[str, str],
                                       mediator: dict[str, str], manager: dict[str, str]) -> None:
    case_id = file_transcript(database, WAGES)
    url = f"/api/v1/cases/{case_id}/transitions"
    client.post(url, headers=agent, json={"to": "转办", "unit": "市南区劳动监察大队", "assignee": "li"})
    client.post(url, headers=mediator, json={"to": "办理"})
    r = client.post(url, headers=mediator, json={"to": "转办", "unit": "市北区劳动监察大队", "note": "不属本辖区"})
    assert r.status_code == 200
    assert (r.json()["unit"], r.json()["assignee"]) == ("市北区劳动监察大队", None)  # the new unit names its own
    # nobody holds it now: the agent who took the call no longer changes it; a manager sends it back
    assert client.post(url, headers=agent, json={"to": "受理", "note": "退回"}).status_code == 403
    r = client.post(url, headers=manager, json={"to": "受理", "note": "退回"})
    assert (r.json()["status"], r.json()["unit"], r.json()["assignee"]) == ("受理", None, None)
    # back in the hotline's pool: any agent may work it again
    assert client.post(url, headers=agent, json={"to": "办理"}).json()["assignee"] == "zhang"  # taken


# --- escalation and permissions ----------------------------------------------------------------------------

def test_agent_cannot_escalate_manager_can(client: TestClient, database: Database, agent: dict[str, str],
                                           manager: dict[str, str]) -> None:
    case_id = file_transcript(database, WAGES)
    url = f"/api/v1/cases/{case_id}/escalate"
    r = client.post(url, headers=agent, json={"note": "请加快办理"})
    assert r.status_code == 403 and not read_case(database, case_id).escalated
    assert client.post(url, headers=manager, json={"note": ""}).status_code == 422
    r = client.post(url, headers=manager, json={"note": "请加快办理"})
    assert r.status_code == 200 and r.json()["escalated"] and r.json()["escalated_at"]
    assert _events(database, case_id, "case.escalated")[0]["note"] == "请加快办理"
    for status in ("转办", "办理", "回访"):  # allowed from any open status
        _set(database, case_id, status=status)
        assert client.post(url, headers=manager, json={"note": "再次督办"}).status_code == 200
    _set(database, case_id, status="办结")
    assert client.post(url, headers=manager, json={"note": "x"}).status_code == 409
    # Difficulty moves the deadline: only with case:escalate.
    _set(database, case_id, status="办理")
    r = client.patch(f"/api/v1/cases/{case_id}", headers=agent, json={"difficulty": "疑难"})
    assert r.status_code == 403 and read_case(database, case_id).difficulty == "一般"


# --- SLA clocks --------------------------------------------------------------------------------------------

def _unsaved(**values: Any) -> Case:
    return Case(**{"status": "受理", "created_at": T0, "difficulty": "一般", "closed_at": None,
                   "first_feedback_at": None, **values})


def test_clocks_from_acceptance_with_fixed_times() -> None:
    policy = workflow.SlaPolicy(days={"一般": 5, "疑难": 15, "特别复杂": 30}, due_soon_hours=24)
    case = _unsaved(accepted_at=T0)
    workflow.start_clocks(case, policy)
    assert (case.feedback_due_at, case.due_at) == (T0 + timedelta(hours=24), T0 + timedelta(days=5))
    at = lambda **d: workflow.sla_state(case, policy, T0 + timedelta(**d))  # noqa: E731
    assert not at(hours=23).feedback_overdue and at(hours=24, seconds=1).feedback_overdue
    assert not at(days=3).due_soon and at(days=4, hours=1).due_soon and not at(days=4, hours=1).overdue
    assert at(days=5, seconds=1).overdue and not at(days=5, seconds=1).due_soon
    case.first_feedback_at = T0 + timedelta(hours=2)
    assert not at(days=3).feedback_overdue  # given in time: the clock stopped
    case.first_feedback_at = T0 + timedelta(hours=30)
    assert at(days=3).feedback_overdue  # given late stays late
    case.closed_at = T0 + timedelta(days=4)
    assert not at(days=9).overdue and not at(days=4, hours=2).due_soon  # closed in time
    case.closed_at = T0 + timedelta(days=6)
    assert at(days=9).overdue  # closed late: 超期办结
    hard = _unsaved(accepted_at=T0, difficulty="特别复杂")
    assert workflow.clocks(hard, policy).due_at == T0 + timedelta(days=30)
    unstarted = _unsaved(accepted_at=None)  # filed without clocks: they run from created_at
    assert workflow.clocks(unstarted, policy).feedback_due_at == T0 + timedelta(hours=24)


def test_sla_days_are_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from app.config import Settings

    monkeypatch.setenv("HOTLINE_SLA_DAYS", '{"一般": 3, "疑难": 10, "特别复杂": 20}')
    policy = workflow.SlaPolicy.from_settings(Settings())
    assert policy.completion_time("疑难") == timedelta(days=10)
    monkeypatch.setenv("HOTLINE_SLA_DAYS", '{"一般": 3}')
    with pytest.raises(ValidationError, match="特别复杂"):
        Settings()


def test_read_shows_clocks_and_difficulty_moves_the_deadline(client: TestClient, database: Database,
                                                              manager: dict[str, str]) -> None:
    case_id = file_transcript(database, WAGES)
    now = datetime.now(UTC)
    _set(database, case_id, accepted_at=now - timedelta(days=4, hours=2), feedback_due_at=None, due_at=None)
    sla = client.get(f"/api/v1/cases/{case_id}", headers=manager).json()["sla"]
    assert sla["feedback_overdue"] and sla["due_soon"] and not sla["overdue"]
    r = client.patch(f"/api/v1/cases/{case_id}", headers=manager, json={"difficulty": "疑难"})
    assert r.status_code == 200
    sla = r.json()["sla"]
    assert not sla["due_soon"] and not sla["overdue"]
    due = datetime.fromisoformat(sla["due_at"])
    assert abs(due - (now - timedelta(days=4, hours=2) + timedelta(days=15))) < timedelta(seconds=5)
    changes = {e["field"]: e for e in _events(database, case_id, "case.updated")}
    assert changes["difficulty"]["before"] == "一般" and changes["difficulty"]["after"] == "疑难"
    assert "due_at" in changes
    r = client.patch(f"/api/v1/cases/{case_id}", headers=manager, json={"difficulty": "很难"})
    assert r.status_code == 422 and "难度只能是" in r.json()["detail"]


# --- staff edits -------------------------------------------------------------------------------------------

def test_patch_audits_each_change_with_before_and_after(client: TestClient, database: Database,
                                                        agent: dict[str, str]) -> None:
    case_id = file_transcript(database, WAGES)
    url = f"/api/v1/cases/{case_id}"
    was = read_case(database, case_id)  # what the machine suggested
    assert was.category == "欠薪" and was.enterprise_type != "外资"
    r = client.patch(url, headers=agent, json={
        "enterprise": "青岛宏远汽车零部件有限公司", "district": "城阳区", "gender": "男", "workers": 12,
        "amount": 36000, "enterprise_type": "外资", "category": "欠薪", "occupation": "装配工"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["enterprise"], body["workers"], body["group_case"]) == ("青岛宏远汽车零部件有限公司", 12, True)
    changes = {e["field"]: (e["before"], e["after"]) for e in _events(database, case_id, "case.updated")}
    assert changes == {  # category was already 欠薪: unchanged, not audited
        "enterprise": ("青岛宏远汽车配件有限公司", "青岛宏远汽车零部件有限公司"), "district": (None, "城阳区"),
        "gender": (None, "男"), "workers": (None, 12), "amount": (None, 36000),
        "enterprise_type": (was.enterprise_type, "外资"), "occupation": (None, "装配工"), "group_case": (False, True)}
    assert all(e["actor"] == "user:zhang" for e in _events(database, case_id, "case.updated"))
    # Fewer workers: no longer a group case.
    r = client.patch(url, headers=agent, json={"workers": 3, "confirm": True})
    assert r.json()["group_case"] is False and r.json()["confirmed_by"] == "zhang" and r.json()["confirmed_at"]
    assert _events(database, case_id, "case.confirmed")[0]["workers"] == 3
    # Clearing a field with null is a change too; sending the same value again is not.
    client.patch(url, headers=agent, json={"district": None, "gender": "男"})
    assert read_case(database, case_id).district is None
    assert len(_events(database, case_id, "case.updated")) == 8 + 2 + 1
    # The search index follows the edit.
    hits = client.get("/api/v1/search", params={"q": "零部件"}, headers=agent).json()
    assert case_id in {h["case_id"] for h in hits["items"]}


@pytest.mark.parametrize(("body", "message"), [
    ({"gender": "未知"}, "性别只能是：男、女"),
    ({"enterprise_type": "私企"}, "企业类型只能是：国有、集体、民营、外资、个体、机关事业、其他"),
    ({"category": "打架"}, "类别只能是"),
    ({"category": None}, "类别不能为空"),
    ({"workers": -1}, "涉及人数不能为负数"),
    ({"amount": -5}, "涉及金额不能为负数"),
    ({"enterprise": "企" * 129}, "企业名称不能超过128个字"),
    ({}, "没有要修改的字段"),
])
def test_patch_refuses_bad_values_and_changes_nothing(client: TestClient, database: Database,
                                                      agent: dict[str, str], body: dict[str, Any],
                                                      message: str) -> None:
    case_id = file_transcript(database, WAGES)
    before = read_case(database, case_id)
    r = client.patch(f"/api/v1/cases/{case_id}", headers=agent, json={"district": "黄岛区", **body}
                     if body else {})
    assert r.status_code == 422
    assert message in r.json()["detail"]
    after = read_case(database, case_id)
    assert (after.district, after.enterprise, after.category) == (before.district, before.enterprise, before.category)
    assert _events(database, case_id, "case.updated") == []


def test_patch_rejects_unknown_fields_and_status(client: TestClient, database: Database,
                                                 agent: dict[str, str]) -> None:
    case_id = file_transcript(database, WAGES)
    r = client.patch(f"/api/v1/cases/{case_id}", headers=agent, json={"status": "办结"})
    assert r.status_code == 422 and "status" in r.json()["detail"]
    assert read_case(database, case_id).status == "受理"


def test_change_helper_is_the_one_place(database: Database) -> None:
    case_id = file_transcript(database, WAGES)
    with database.session() as db:
        case = db.get(Case, case_id)
        assert case is not None
        with pytest.raises(workflow.InvalidCaseInput, match="不能修改这些字段：status"):
            cases.change(db=db, case=case, actor="test", status="办结")
        assert cases.change(db=db, case=case, actor="test", amount=100, summary=" 拖欠工资 ") == ["amount", "summary"]
        assert case.summary == "拖欠工资"


# --- list filters ------------------------------------------------------------------------------------------

def test_list_filters(client: TestClient, database: Database, agent: dict[str, str]) -> None:
    a = file_transcript(database, WAGES, name="a")
    b = file_transcript(database, [("caller", "我在工地上受伤了，老板不给工伤认定")], name="b")
    c = file_transcript(database, [("caller", "公司不给交社保")], name="c")
    now = datetime.now(UTC)
    _set(database, a, district="城阳区", enterprise="青岛宏远汽车配件有限公司", created_by="user:zhang",
         assignee="li", group_case=True, created_at=datetime(2026, 3, 1, 16, 30, tzinfo=UTC),  # 3月2日 00:30 北京
         due_at=now - timedelta(days=1), status="办理")
    _set(database, b, district="黄岛区", enterprise="青岛海工建设集团", escalated=True,
         created_at=datetime(2026, 3, 1, 15, 30, tzinfo=UTC),  # 3月1日 23:30 北京
         due_at=now - timedelta(days=2), closed_at=now - timedelta(days=1), status="办结")  # closed late
    _set(database, c, created_at=datetime(2026, 3, 5, 2, 0, tzinfo=UTC), due_at=now + timedelta(days=3))

    def ids(**params: Any) -> list[int]:
        r = client.get("/api/v1/cases", params=params, headers=agent)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["total"] == (3 if "limit" in params else len(body["items"]))
        return [item["id"] for item in body["items"]]

    assert ids() == [c, a, b]
    assert ids(status="办理") == [a] and ids(status="办结") == [b]
    assert ids(category="工伤") == [b]
    assert ids(district="城阳区") == [a]
    assert ids(enterprise="宏远") == [a] and ids(enterprise="%") == []
    assert ids(created_by="zhang") == [a] and ids(created_by="user:zhang") == [a]
    assert ids(assignee="li") == [a]
    assert ids(date_from="2026-03-02") == [c, a]  # local days: 00:30 on the 2nd counts, 23:30 on the 1st not
    assert ids(date_to="2026-03-01") == [b]
    assert ids(date_from="2026-03-02", date_to="2026-03-02") == [a]
    assert ids(overdue="true") == [a, b] and ids(overdue="false") == [c]
    assert ids(group_case="true") == [a] and ids(escalated="true") == [b]
    assert ids(district="城阳区", overdue="true", status="办理") == [a]
    assert ids(limit=1, offset=1) == [a]
    assert ids(recording_id=read_case(database, b).recording_id) == [b]  # a filed call finds its case
    listing = client.get("/api/v1/cases", params={"overdue": "true"}, headers=agent).json()
    assert all(item["sla"]["overdue"] for item in listing["items"])
    r = client.get("/api/v1/cases", params={"status": "完成"}, headers=agent)
    assert r.status_code == 422 and "没有「完成」这个状态" in r.json()["detail"]
    r = client.get("/api/v1/cases", params={"date_from": "2026-03-05", "date_to": "2026-03-01"}, headers=agent)
    assert r.status_code == 422
    assert client.get("/api/v1/cases", params={"date_from": "昨天"}, headers=agent).status_code == 422
