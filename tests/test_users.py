"""The users admin API: create with a role, change role, deactivate, reset password; each change audited, and
each ends the tokens the user holds."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.audit.models import AuditEvent
from app.db import Database
from app.users.models import Role
from tests.conftest import PASSWORD, add_user, login


@pytest.fixture
def admin(client: TestClient, database: Database) -> dict[str, str]:
    add_user(database, "root", Role.admin)
    return login(client, "root")


def _events(database: Database, *actions: str) -> list[AuditEvent]:
    with database.session() as db:
        stmt = sa.select(AuditEvent).where(AuditEvent.action.in_(actions)).order_by(AuditEvent.seq)
        return list(db.execute(stmt).scalars())


def _create(client: TestClient, admin: dict[str, str], name: str = "zhao", role: str = "agent",
            password: str = "first-password"):
    return client.post("/api/v1/users", json={"username": name, "role": role, "password": password},
                       headers=admin)


def test_admin_creates_a_user_who_can_log_in(client: TestClient, database: Database, admin: dict) -> None:
    r = _create(client, admin)
    assert r.status_code == 201, r.text
    created = r.json()
    assert (created["username"], created["role"], created["active"]) == ("zhao", "agent", True)
    token = client.post("/api/v1/auth/token", data={"username": "zhao", "password": "first-password"})
    assert token.status_code == 200 and token.json()["user"]["role"] == "agent"
    event = _events(database, "user.created")[-1]
    assert (event.actor, event.subject_id, event.details) == ("user:root", str(created["id"]),
                                                              {"username": "zhao", "role": "agent"})
    listed = client.get("/api/v1/users", headers=admin).json()
    assert [u["username"] for u in listed] == ["root", "zhao"]
    assert [u["username"] for u in client.get("/api/v1/users", params={"role": "agent"}, headers=admin).json()] \
        == ["zhao"]
    assert _events(database, "user.listed")[-1].details["returned"] == 1


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"username": "root", "role": "agent", "password": "long-enough"}, 409, "user_exists"),
    ({"username": "  ", "role": "agent", "password": "long-enough"}, 422, "invalid_user"),
    ({"username": "qian", "role": "agent", "password": "short"}, 422, "weak_password"),
    ({"username": "qian", "role": "agent", "password": "password12"}, 422, "weak_password"),
    ({"username": "qian", "role": "boss", "password": "long-enough"}, 422, "invalid"),
])
def test_bad_new_users_are_refused_with_a_reason(client: TestClient, database: Database, admin: dict,
                                                 body: dict, status: int, code: str) -> None:
    r = client.post("/api/v1/users", json=body, headers=admin)
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert r.json()["detail"]
    with database.session() as db:
        assert db.execute(sa.text("SELECT count(*) FROM users")).scalar_one() == 1


def test_only_admins_manage_users(client: TestClient, database: Database, admin: dict) -> None:
    add_user(database, "boss", Role.manager)
    manager = login(client, "boss")
    assert client.get("/api/v1/users", headers=manager).status_code == 403
    assert _create(client, manager).status_code == 403
    assert client.patch("/api/v1/users/1", json={"role": "admin"}, headers=manager).status_code == 403
    assert _events(database, "auth.denied")[-1].details == {"method": "PATCH", "permission": "user:admin"}


def test_a_role_change_takes_effect_at_once_and_is_audited(client: TestClient, database: Database,
                                                            admin: dict) -> None:
    user_id = _create(client, admin).json()["id"]
    zhao = login_as(client, "zhao", "first-password")
    assert client.get("/api/v1/stats/cases", headers=zhao).status_code == 403
    r = client.patch(f"/api/v1/users/{user_id}", json={"role": "manager"}, headers=admin)
    assert r.status_code == 200 and r.json()["role"] == "manager"
    # the token they hold ends with the old role; a new login has the new one
    r = client.get("/api/v1/stats/cases", headers=zhao)
    assert (r.status_code, r.json()["code"]) == (401, "invalid_token")
    zhao = login_as(client, "zhao", "first-password")
    assert client.get("/api/v1/stats/cases", headers=zhao).status_code == 200
    event = _events(database, "user.role_changed")[-1]
    assert event.details == {"username": "zhao", "field": "role", "before": "agent", "after": "manager"}
    # sending the same role again changes nothing and records nothing
    assert client.patch(f"/api/v1/users/{user_id}", json={"role": "manager"}, headers=admin).status_code == 200
    assert len(_events(database, "user.role_changed")) == 1


def login_as(client: TestClient, name: str, password: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", data={"username": name, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_deactivation_locks_out_at_once_and_reactivation_lets_back_in(client: TestClient, database: Database,
                                                                       admin: dict) -> None:
    user_id = _create(client, admin).json()["id"]
    zhao = login_as(client, "zhao", "first-password")
    r = client.patch(f"/api/v1/users/{user_id}", json={"active": False}, headers=admin)
    assert r.status_code == 200 and r.json()["active"] is False
    assert client.get("/api/v1/cases", headers=zhao).status_code == 401  # the token they hold stops working
    assert client.post("/api/v1/auth/token", data={"username": "zhao", "password": "first-password"}) \
        .status_code == 401
    assert [u["username"] for u in client.get("/api/v1/users", params={"active": False}, headers=admin).json()] \
        == ["zhao"]
    client.patch(f"/api/v1/users/{user_id}", json={"active": True}, headers=admin)
    assert client.get("/api/v1/cases", headers=zhao).status_code == 401  # the old token does not come back
    assert client.get("/api/v1/cases", headers=login_as(client, "zhao", "first-password")).status_code == 200
    events = _events(database, "user.deactivated", "user.activated")
    assert [(e.action, e.details["before"], e.details["after"], e.actor) for e in events] == [
        ("user.deactivated", True, False, "user:root"), ("user.activated", False, True, "user:root")]


def test_password_reset(client: TestClient, database: Database, admin: dict) -> None:
    user_id = _create(client, admin).json()["id"]
    r = client.patch(f"/api/v1/users/{user_id}", json={"password": "second-password"}, headers=admin)
    assert r.status_code == 200
    assert client.post("/api/v1/auth/token", data={"username": "zhao", "password": "first-password"}) \
        .status_code == 401
    login_as(client, "zhao", "second-password")
    event = _events(database, "user.password_reset")[-1]
    assert event.details == {"username": "zhao"}  # never the password
    r = client.patch(f"/api/v1/users/{user_id}", json={"password": "short"}, headers=admin)
    assert (r.status_code, r.json()["code"], r.json()["detail"]) == (422, "weak_password", "密码至少 10 位")


def test_the_last_admin_cannot_be_locked_out(client: TestClient, database: Database, admin: dict) -> None:
    with database.session() as db:
        root_id = db.execute(sa.text("SELECT id FROM users WHERE username = 'root'")).scalar_one()
    r = client.patch(f"/api/v1/users/{root_id}", json={"role": "manager"}, headers=admin)
    assert (r.status_code, r.json()["code"]) == (409, "last_admin")
    r = client.patch(f"/api/v1/users/{root_id}", json={"active": False}, headers=admin)
    assert (r.status_code, r.json()["code"]) == (409, "self_deactivation")
    second = _create(client, admin, "deputy", "admin").json()["id"]
    assert client.patch(f"/api/v1/users/{root_id}", json={"role": "manager"}, headers=admin).status_code == 200
    deputy = login_as(client, "deputy", "first-password")
    r = client.patch(f"/api/v1/users/{second}", json={"role": "agent"}, headers=deputy)
    assert (r.status_code, r.json()["code"]) == (409, "last_admin")
    assert client.get("/api/v1/users", headers=admin).status_code == 401  # demoted: root's token ended
    assert client.get("/api/v1/users", headers=login(client, "root")).status_code == 403  # a manager now
    with database.session() as db:
        roles = {r.username: r.role for r in db.execute(sa.text("SELECT username, role FROM users"))}
    assert roles == {"root": "manager", "deputy": "admin"}


def test_unknown_user_is_404(client: TestClient, admin: dict) -> None:
    r = client.patch("/api/v1/users/999", json={"role": "agent"}, headers=admin)
    assert (r.status_code, r.json()["detail"]) == (404, "用户不存在")


def test_password_is_never_returned(client: TestClient, admin: dict) -> None:
    body = _create(client, admin).text + client.get("/api/v1/users", headers=admin).text
    assert "password" not in body and "scrypt" not in body and "argon2" not in body and PASSWORD not in body
