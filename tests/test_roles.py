"""The roles matrix walked over every route of the app, and phone / ID numbers masked per role everywhere.

The routes are read from ``create_app()`` itself and each route's permission from its ``require(...)``
dependency, so a route added later is walked too: it must either depend on ``require`` or be listed as public
here, and every role gets 403 from it exactly when the matrix (app/auth/permissions.py) denies that permission.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIWebSocketRoute, iter_route_contexts
from fastapi.testclient import TestClient

from app.audit.models import AuditEvent
from app.auth.permissions import MATRIX, Masking, Permission, mask_id, mask_phone, mask_text
from app.calls.models import Call
from app.cases.models import Case
from app.db import Database, utcnow
from app.deps import Require
from app.live.service import ScreenPops, Viewer
from app.users.models import Role, User
from tests.conftest import add_user, login
from tests.helpers import file_transcript

# /api/v1 routes anyone may call (each says why); everything else under /api/v1 must depend on require(...).
PUBLIC = {
    ("POST", "/api/v1/auth/token"): "logging in",
    ("GET", "/api/v1/health"): "load balancer probe, says nothing",
    ("GET", "/api/v1/auth/me"): "any logged-in user, about themselves",
    ("POST", "/api/v1/auth/refresh"): "any logged-in user, renewing their own session",
    ("POST", "/api/v1/auth/logout"): "any logged-in user, ending their own session",
    ("POST", "/api/v1/auth/password"): "any logged-in user, changing their own password (the current one checked)",
}
# WebSockets authenticate in their handler (app/auth/ws.py), with the same matrix; tested in test_live_views.py
# and tests/telephony/test_ws.py. A new one must be added here with who may open it.
WEBSOCKETS = {
    "/api/v1/calls/live": "case:read (staff browsers)",
    "/api/v1/calls/{call_uuid}/live": "transcript:read (staff browsers)",
    "/api/v1/media/twilio": "peer credential (PBX / Twilio media stream)",
    "/api/v1/media/fork": "peer credential (SIPREC / media fork)",
    "/api/v1/media/capture": "recording:upload (browser microphone)",
}
PHONE = "13812345678"
ID_NUMBER = "370202199001011234"


@dataclass(frozen=True)
class ApiRoute:
    method: str
    path: str
    permissions: frozenset[Permission]  # every require(...) on the route: all must be granted


def _required(dependant: Dependant) -> Iterator[Permission]:
    for sub in dependant.dependencies:
        if isinstance(sub.call, Require):
            yield sub.call.permission
        yield from _required(sub)


def api_routes(app: FastAPI) -> list[ApiRoute]:
    out = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        path = context.path or ""
        if isinstance(route, APIRoute) and path.startswith("/api/"):
            for method in sorted(context.methods or ()):
                out.append(ApiRoute(method, path, frozenset(_required(route.dependant))))
    return out


def websocket_paths(app: FastAPI) -> set[str]:
    return {c.path or "" for c in iter_route_contexts(app.routes) if isinstance(c.original_route, APIWebSocketRoute)}


def concrete(path: str, values: dict[str, str] | None = None) -> str:
    """The path with its parameters filled in (``1`` unless ``values`` names them)."""
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: (values or {}).get(m.group(1), "1"), path)


def call(client: TestClient, route: ApiRoute, headers: dict[str, str], values: dict[str, str] | None = None,
         body: object = None):
    kwargs: dict[str, object] = {"headers": headers}
    if route.method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = {} if body is None else body
    return client.request(route.method, concrete(route.path, values), **kwargs)  # type: ignore[arg-type]


def test_every_api_route_needs_a_permission_or_is_listed_public(client: TestClient) -> None:
    routes = api_routes(client.app)  # type: ignore[arg-type]
    assert len(routes) > 20
    unguarded = [(r.method, r.path) for r in routes if not r.permissions and (r.method, r.path) not in PUBLIC]
    assert unguarded == [], "routes without require(...) and not on the public list"
    guarded_public = [(r.method, r.path) for r in routes if r.permissions and (r.method, r.path) in PUBLIC]
    assert guarded_public == []
    assert set(PUBLIC) <= {(r.method, r.path) for r in routes}, "the public list names a route that is gone"
    assert websocket_paths(client.app) == set(WEBSOCKETS)  # type: ignore[arg-type]


def test_the_matrix_gives_each_role_what_its_work_needs() -> None:
    assert MATRIX[Role.admin] == frozenset(Permission)
    assert Permission.user_admin not in MATRIX[Role.manager] | MATRIX[Role.mediator] | MATRIX[Role.agent]
    assert Permission.stats_read in MATRIX[Role.manager] and Permission.stats_read not in MATRIX[Role.agent]
    assert Permission.recording_download not in MATRIX[Role.agent]  # agents play, they do not take copies
    assert Permission.id_unmasked in MATRIX[Role.mediator] and Permission.id_unmasked not in MATRIX[Role.agent]
    assert Permission.phone_unmasked not in MATRIX[Role.manager]
    # legal hold (保全) keeps recordings past their retention period: managers and admins only
    assert Permission.case_hold in MATRIX[Role.manager]
    assert Permission.case_hold not in MATRIX[Role.agent] | MATRIX[Role.mediator]
    # agents and mediators change the cases they hold (and the pool's); managers any case (app/cases/access.py)
    assert Permission.case_any in MATRIX[Role.manager]
    assert Permission.case_any not in MATRIX[Role.agent] | MATRIX[Role.mediator]


@pytest.mark.parametrize("role", list(Role))
def test_each_route_answers_403_exactly_when_the_role_lacks_its_permission(
    client: TestClient, database: Database, role: Role
) -> None:
    add_user(database, "walker", role)
    headers = login(client, "walker")
    granted = MATRIX[role]
    wrong: list[str] = []
    denied = 0
    for route in api_routes(client.app):  # type: ignore[arg-type]
        if (route.method, route.path) in {("POST", "/api/v1/auth/token"), ("POST", "/api/v1/auth/logout")}:
            continue  # logging in needs no token; logging out would end the walk's (both public)
        r = call(client, route, headers)
        should_deny = not route.permissions <= granted
        denied += should_deny
        if (r.status_code == 403) != should_deny:
            wrong.append(f"{route.method} {route.path} [{', '.join(sorted(route.permissions))}]: {r.status_code}")
        if should_deny:
            assert r.json()["code"] == "forbidden"
    assert wrong == [], f"{role}: the matrix and the routes disagree"
    with database.session() as db:  # every refusal is on record, with the permission it lacked
        refusals = db.execute(sa.select(AuditEvent).where(AuditEvent.action == "auth.denied")).scalars().all()
    assert len(refusals) == denied
    assert all(e.actor == "user:walker" and e.details["permission"] for e in refusals)
    if role is Role.admin:
        assert denied == 0


# --- 401: refused tokens are audited, a missing one is not ---------------------------------------------------


def _token(secret: str, sub: str, minutes: int) -> str:
    now = utcnow()
    return jwt.encode({"sub": sub, "role": "admin", "iat": now, "exp": now + timedelta(minutes=minutes)}, secret,
                      algorithm="HS256")


def _actions(database: Database) -> list[AuditEvent]:
    with database.session() as db:
        return list(db.execute(sa.select(AuditEvent).order_by(AuditEvent.seq)).scalars())


def test_refused_tokens_are_audited_and_missing_ones_are_not(client: TestClient, database: Database,
                                                              settings) -> None:
    add_user(database, "wang", Role.agent)
    before = len(_actions(database))
    assert client.get("/api/v1/cases").status_code == 401  # no token: just "please log in"
    assert len(_actions(database)) == before
    expired = _token(settings.jwt_secret, "wang", -5)
    forged = _token("not-the-secret-" + "y" * 32, "wang", 60)
    r1 = client.get("/api/v1/cases", headers={"Authorization": f"Bearer {expired}"})
    r2 = client.get("/api/v1/cases/7", headers={"Authorization": f"Bearer {forged}"})
    assert (r1.status_code, r1.json()["detail"]) == (401, "登录已过期，请重新登录")
    assert (r2.status_code, r2.json()["code"]) == (401, "invalid_token")
    events = _actions(database)[before:]
    assert [e.action for e in events] == ["auth.token_rejected", "auth.token_rejected"]
    assert [e.subject_id for e in events] == ["/api/v1/cases", "/api/v1/cases/7"]
    assert events[0].details["reason"] == "登录已过期，请重新登录" and events[1].details["claimed"] == "wang"
    assert all(e.actor.startswith("anonymous:") for e in events)


def test_a_deactivated_account_is_refused_at_once_and_audited(client: TestClient, database: Database) -> None:
    add_user(database, "wang", Role.agent)
    headers = login(client, "wang")
    assert client.get("/api/v1/cases", headers=headers).status_code == 200
    with database.session() as db:
        db.execute(sa.update(User).where(User.username == "wang").values(active=False))
    r = client.get("/api/v1/cases", headers=headers)
    assert (r.status_code, r.json()["detail"]) == (401, "账号不存在或已停用")
    assert _actions(database)[-1].action == "auth.token_rejected"


# --- masking ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "phones", "ids", "expected"), [
    (f"我电话{PHONE}，身份证{ID_NUMBER}", True, True, "我电话138****5678，身份证370***********1234"),
    (f"我电话{PHONE}，身份证{ID_NUMBER}", False, True, f"我电话{PHONE}，身份证370***********1234"),
    (f"我电话{PHONE}，身份证{ID_NUMBER}", True, False, f"我电话138****5678，身份证{ID_NUMBER}"),
    ("号码是幺三八 一二三四 五六七八", True, False, "号码是幺三八 **** 五六七八"),  # read out digit by digit
    ("身份证三七零二零二一九九零零一零一一二三叉", False, True, "身份证三七零***********一二三叉"),
    ("37020219900101123X", False, True, "370***********123X"),
    ("+86 138-1234-5678 或 0532-88886666", True, False, "+86 138-****-5678 或 053*-****6666"),
    (f"<mark>138</mark>{PHONE[3:]}", True, False, "<mark>138</mark>****5678"),  # split by highlighting
    (f"{PHONE} {PHONE}", True, False, "138****5678 138****5678"),
    # not personal numbers: case numbers, amounts, dates, the hotline, longer digit runs
    *[(t, True, True, t) for t in ["QD-2026-000123 欠薪 130000 元，2026-11-24 打 12351"]],
    ("订单 1381234567890123", True, False, "订单 1381234567890123"),
])
def test_mask_text(text: str, phones: bool, ids: bool, expected: str) -> None:
    masked = Masking(phones=phones, ids=ids).text(text)
    assert masked == expected
    assert len(masked) == len(text)  # offsets (highlights, evidence spans) stay valid
    assert Masking(phones=phones, ids=ids).text(masked) == masked  # masking twice changes nothing


def test_mask_helpers_follow_the_roles() -> None:
    text = f"{PHONE} / {ID_NUMBER}"
    assert mask_text(text, "admin") == mask_text(text, "mediator") == text
    assert mask_text(text, "agent") == f"{PHONE} / 370***********1234"
    assert mask_text(text, "manager") == "138****5678 / 370***********1234"
    assert mask_text(text, "no-such-role") == "138****5678 / 370***********1234"
    assert mask_id(ID_NUMBER) == "370***********1234" and mask_phone(PHONE) == "138****5678"


@pytest.fixture
def sensitive_case(database: Database) -> int:
    case_id = file_transcript(database, [
        ("caller", f"你好，我叫王强，手机号{PHONE}，身份证号{ID_NUMBER}，公司拖欠工资三个月了。"),
        ("agent", "好的，您的工资被拖欠了多少？"),
    ], name="sensitive")
    with database.session() as db:
        case = db.get(Case, case_id)
        assert case is not None
        case.caller_phone = PHONE
        db.add(Call(call_uuid="c" * 32, source="sip", external_id="x@pbx", caller=PHONE, called="12351",
                    channel="来电", status="ended", started_at=utcnow(), recording_id=case.recording_id))
    return case_id


ROLE_SEES = {  # role: (sees the phone number, sees the ID number)
    Role.agent: (True, False), Role.mediator: (True, True), Role.manager: (False, False), Role.admin: (True, True),
}


@pytest.mark.parametrize("role", list(Role))
def test_numbers_are_masked_in_every_response_for_roles_that_may_not_see_them(
    client: TestClient, database: Database, sensitive_case: int, role: Role
) -> None:
    add_user(database, "viewer", role)
    headers = login(client, "viewer")
    sees_phone, sees_id = ROLE_SEES[role]
    responses = {
        "case": client.get(f"/api/v1/cases/{sensitive_case}", headers=headers),
        "calls": client.get("/api/v1/calls", headers=headers),
        "search": client.get("/api/v1/search", params={"q": "工资"}, headers=headers),
        "timeline": client.get(f"/api/v1/cases/{sensitive_case}/timeline", headers=headers),
    }
    for what, r in responses.items():
        assert r.status_code == 200, (what, r.text)
        body = r.text
        if what in ("case", "calls"):
            assert (PHONE in body) == sees_phone, (role, what)
        if what in ("case", "search"):
            assert (ID_NUMBER in body) == sees_id, (role, what)
        assert sees_phone or PHONE not in body, (role, what)
        assert sees_id or ID_NUMBER not in body, (role, what)
        if not sees_phone and what in ("case", "calls"):
            assert "138****5678" in body, (role, what)
        if not sees_id and what in ("case", "search"):
            assert "370***********1234" in body, (role, what)
    segments = responses["case"].json()["transcript"]["segments"]
    assert ("370***********1234" in segments[0]["text"]) == (not sees_id)
    assert responses["search"].json()["total"] >= 1
    # audio is not JSON and is never touched; content-length matches the masked body
    assert int(responses["case"].headers["content-length"]) == len(responses["case"].content)


@pytest.mark.parametrize("role", list(Role))
def test_a_phone_number_said_across_words_is_masked_in_the_words_too(
    client: TestClient, database: Database, role: Role
) -> None:
    said = f"我的手机是{PHONE[:3]} {PHONE[3:7]} {PHONE[7:]}，打这个。"
    case_id = file_transcript(database, [("caller", said)], name="split", timed=True)
    add_user(database, "viewer", role)
    segment = client.get(f"/api/v1/cases/{case_id}", headers=login(client, "viewer")).json()["transcript"][
        "segments"][0]
    texts = [w[2] for w in segment["words"]]
    assert len([t for t in texts if any(c.isdigit() or c == "*" for c in t)]) == 3  # the number: three words
    assert "".join(texts) == segment["text"]  # masked the same way as the text, lengths and times kept
    if ROLE_SEES[role][0]:
        assert segment["text"] == said
    else:
        assert "138 **** 5678" in segment["text"] and not any("1234" in t for t in texts)


@pytest.mark.parametrize("role", list(Role))
def test_live_events_are_masked_per_role(database: Database, role: Role) -> None:
    user = User(username="v", role=role.value, password_hash="-", active=True)
    viewer = Viewer.of(user)
    sees_phone, sees_id = ROLE_SEES[role]
    final: dict[str, Any] = {"type": "final", "seq": 3, "role": "caller", "utterance": 1,
             "text": f"我的手机{PHONE}，身份证{ID_NUMBER}"}
    started = {"type": "call_started", "seq": 1, "caller": PHONE, "called": "12351"}
    pops = ScreenPops(database)
    shown = asyncio.run(viewer.present(final, pops))
    assert (PHONE in shown["text"], ID_NUMBER in shown["text"]) == (sees_phone, sees_id)
    assert shown["seq"] == 3 and final["text"].endswith(ID_NUMBER)  # the hub's event is not changed
    popped = asyncio.run(viewer.present(started, pops))
    assert popped["caller"] == (PHONE if sees_phone else "138****5678") and popped["called"] == "12351"


def test_a_refused_token_on_a_websocket_is_audited_too(client: TestClient, database: Database, settings) -> None:
    add_user(database, "wang", Role.agent)
    expired = _token(settings.jwt_secret, "wang", -1)
    before = len(_actions(database))
    with client.websocket_connect("/api/v1/calls/live") as ws:  # no token: refused, not recorded
        assert ws.receive()["code"] == 1008
    with client.websocket_connect(f"/api/v1/calls/live?token={expired}") as ws:
        message = ws.receive()
        assert (message["code"], message["reason"]) == (1008, "登录已过期，请重新登录")
    events = _actions(database)[before:]
    assert [(e.action, e.subject_id, e.details["method"]) for e in events] == [
        ("auth.token_rejected", "/api/v1/calls/live", "WEBSOCKET")]


def test_call_ids_are_never_masked() -> None:
    """A call's hex id can hold a run of digits shaped like a landline (0735644094…): masked, the browser
    could no longer follow the call (a live event's call_id once came back as 073***4094…)."""
    masking = Masking(phones=True, ids=True)
    event = {"call_id": "0735644094dd41a9959cbf09967917d7", "external_id": "CA0532888866661234",
             "text": "我的电话是0532-8888 6666"}
    masked = masking.payload(event)
    assert masked["call_id"] == event["call_id"] and masked["external_id"] == event["external_id"]
    assert "8888 6666" not in masked["text"]
