"""The editable taxonomy and lexicon (API, audit) and how a new case uses them (file_case)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.audit.models import AuditEvent
from app.cases import service as cases
from app.cases.categorize import DEFAULT_TAXONOMY
from app.cases.models import Case
from app.db import Database
from app.taxonomy import service as taxonomy
from app.taxonomy.models import TaxonomyCategory
from app.users.models import Role
from tests.conftest import add_user, login
from tests.helpers import file_transcript


@pytest.fixture
def admin(client: TestClient, database: Database) -> dict[str, str]:
    add_user(database, "root", Role.admin)
    return login(client, "root")


def _events(database: Database, action: str) -> list[AuditEvent]:
    with database.session() as db:
        return list(db.execute(sa.select(AuditEvent).where(AuditEvent.action == action)).scalars())


def test_default_taxonomy_is_seeded_and_readable(client: TestClient, agent: dict) -> None:
    r = client.get("/api/v1/taxonomy", headers=agent)
    assert r.status_code == 200
    cats = r.json()["categories"]
    assert [c["name"] for c in cats] == [c.name for c in DEFAULT_TAXONOMY]
    assert [c["name"] for c in cats][:3] == ["欠薪", "劳动合同", "社会保险"]
    assert "拖欠" in cats[0]["terms"] and cats[0]["description"] and cats[0]["active"]
    assert {"新就业形态", "女职工权益", "法律咨询", "其他"} <= {c["name"] for c in cats}


def test_only_admins_change_the_taxonomy(client: TestClient, database: Database, agent: dict,
                                         admin: dict) -> None:
    body = client.get("/api/v1/taxonomy", headers=agent).json()
    cats = [{k: c[k] for k in ("name", "description", "terms", "active")} for c in body["categories"]]
    cats[0]["terms"] = [*cats[0]["terms"], "讨要工钱"]
    cats.insert(1, {"name": "食品安全", "description": "食堂", "terms": ["食品安全"], "active": True})
    cats = [c for c in cats if c["name"] != "工时休假"]
    assert client.put("/api/v1/taxonomy", json={"categories": cats}, headers=agent).status_code == 403
    r = client.put("/api/v1/taxonomy", json={"categories": cats}, headers=admin)
    assert r.status_code == 200, r.text
    names = [c["name"] for c in r.json()["categories"]]
    assert names[:2] == ["欠薪", "食品安全"] and "工时休假" not in names
    assert [c["position"] for c in r.json()["categories"]] == list(range(len(names)))
    (event,) = _events(database, "taxonomy.updated")
    assert event.actor == "user:root"
    assert event.details["added"] == ["食品安全"] and event.details["removed"] == ["工时休假"]
    assert event.details["changed"]["欠薪"]["terms"]["after"][-1] == "讨要工钱"
    # The same taxonomy again changes nothing and writes no event.
    assert client.put("/api/v1/taxonomy", json={"categories": cats}, headers=admin).status_code == 200
    assert len(_events(database, "taxonomy.updated")) == 1


def test_bad_taxonomy_is_refused_and_changes_nothing(client: TestClient, admin: dict) -> None:
    dup = [{"name": "欠薪"}, {"name": "欠薪"}]
    r = client.put("/api/v1/taxonomy", json={"categories": dup}, headers=admin)
    assert r.status_code == 422 and r.json()["code"] == "duplicate_category" and "欠薪" in r.json()["detail"]
    r = client.put("/api/v1/taxonomy", json={"categories": [{"name": "欠薪", "active": False}]}, headers=admin)
    assert r.json()["code"] == "no_active_category"
    assert client.put("/api/v1/taxonomy", json={"categories": []}, headers=admin).status_code == 422
    r = client.put("/api/v1/taxonomy", json={"categories": [{"name": "名" * 17}]}, headers=admin)
    assert r.status_code == 422
    assert len(client.get("/api/v1/taxonomy", headers=admin).json()["categories"]) == len(DEFAULT_TAXONOMY)


def test_lexicon_add_list_remove_audited(client: TestClient, database: Database, agent: dict, admin: dict) -> None:
    term = {"term": "青岛海丰水产有限公司", "kind": "enterprise"}
    assert client.post("/api/v1/lexicon", json=term, headers=agent).status_code == 403
    r = client.post("/api/v1/lexicon", json=term, headers=admin)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["added_by"] == "user:root" and created["kind"] == "enterprise"
    assert client.post("/api/v1/lexicon", json=term, headers=admin).json()["code"] == "term_exists"
    r = client.post("/api/v1/lexicon", json={"term": "劳动合同", "kind": "law"}, headers=admin)
    assert r.status_code == 409 and r.json()["code"] == "term_builtin"
    r = client.post("/api/v1/lexicon", json={"term": "12\n34", "kind": "other"}, headers=admin)
    assert r.status_code == 422
    assert client.post("/api/v1/lexicon", json={"term": "x", "kind": "bogus"}, headers=admin).status_code == 422
    listed = client.get("/api/v1/lexicon", params={"kind": "enterprise"}, headers=agent).json()
    assert listed["total"] == 1 and listed["items"][0]["term"] == term["term"]
    assert client.get("/api/v1/lexicon", params={"q": "海丰"}, headers=agent).json()["total"] == 1
    assert client.delete(f"/api/v1/lexicon/{created['id']}", headers=agent).status_code == 403
    assert client.delete(f"/api/v1/lexicon/{created['id']}", headers=admin).status_code == 204
    assert client.delete(f"/api/v1/lexicon/{created['id']}", headers=admin).status_code == 404
    assert client.get("/api/v1/lexicon", headers=agent).json()["total"] == 0
    assert [e.details["term"] for e in _events(database, "lexicon.added")] == [term["term"]]
    assert [e.details["term"] for e in _events(database, "lexicon.removed")] == [term["term"]]


def test_a_new_case_gets_every_suggestion_with_evidence(database: Database) -> None:
    case_id = file_transcript(database, [
        ("agent", "您好，职工服务热线。"),
        ("caller", "我是崂山区一家水产加工厂的冷库叉车工，公司拖欠我们工资两个多月了。"),
        ("agent", "请问公司全称？多少人？"),
        ("caller", "听到海风水彩有线工资，冷库一共十五个人，拖欠的工资总共四万二千元左右。我电话13912345678。"),
    ])
    with database.session() as db:
        case = db.get(Case, case_id)
        assert case is not None
        assert (case.category, case.district, case.enterprise) == ("欠薪", "崂山区", "青岛海风水彩有限公司")
        assert (case.workers, case.amount, case.occupation, case.caller_phone) == (15, 42000, "叉车工", "13912345678")
        assert (case.enterprise_type, case.arrears_type, case.group_case) == ("民营", "工资", True)
        assert case.extracted["amount"]["segment"] == 3 and case.extracted["amount"]["start"] == 15.0
        assert case.extracted["district"]["text"].startswith("我是崂山区")
        assert case.suggested["category"] == "欠薪" and case.suggested["workers"]["value"] == 15
        assert case.accepted_at is not None and case.feedback_due_at == case.accepted_at + timedelta(hours=24)
        assert all(e["term"] for e in case.category_evidence)


def test_new_cases_use_the_taxonomy_and_the_names_on_file(database: Database) -> None:
    with database.session() as db:
        rows = taxonomy.categories(db=db)
        rows[0].terms = [*rows[0].terms, "工钱没结"]
        db.add(TaxonomyCategory(name="食品安全", terms=["食堂"], position=99))
    first = file_transcript(database, [("caller", "我在青岛海丰水产有限公司上班，食堂吃坏了肚子")], "a")
    # A name the machine heard is not on file until a person confirms it: a misheard name must never capture
    # later calls about other companies.
    with database.session() as db:
        assert taxonomy.enterprises_on_file(db=db) == []
        a = db.get(Case, first)
        assert a is not None
        cases.confirm(db=db, case=a, actor="user:zhang", username="zhang")
    # A later call mishears the name: it is corrected to the name a person confirmed.
    second = file_transcript(database, [("caller", "听到海风水彩有限公司的工钱没结")], "b")
    with database.session() as db:
        a, b = db.get(Case, first), db.get(Case, second)
        assert a is not None and b is not None
        assert a.category == "食品安全"
        assert b.enterprise == "青岛海丰水产有限公司" and b.category == "欠薪"
        assert taxonomy.enterprises_on_file(db=db) == ["青岛海丰水产有限公司"]
        assert "青岛海丰水产有限公司" in taxonomy.asr_terms(db=db)
        assert "食品安全" in taxonomy.category_names(db=db)
