"""Signing in, hardened (SQLite and PostgreSQL): login throttling per account and per address with 429 and
Retry-After, audited with the client's address, admins alerted once per attack window; the same work for unknown,
deactivated and wrong-password logins; the password policy; scrypt hashes upgraded to argon2id; sessions that
end (logout, password/role/activation changes, idle timeout) over HTTP and WebSocket; renewal."""

from __future__ import annotations

import statistics
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import jwt
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from httpx import Response

from app.audit.models import AuditEvent
from app.auth import passwords, throttle
from app.auth import service as tokens
from app.auth.models import AuthSession, LoginThrottle
from app.config import Settings
from app.db import Database, utcnow
from app.live import views as live_views
from app.main import create_app
from app.notifications.models import Notification
from app.users import service as users
from app.users.models import Role, User
from tests.conftest import PASSWORD, add_user, login
from tests.test_live_views import closed, live_url

TOKEN = "/api/v1/auth/token"


class Clock:
    """The sign-in code's clock (throttle, sessions), moved on by hand instead of sleeping."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    from app.auth import login as login_flow

    c = Clock()
    monkeypatch.setattr(login_flow, "utcnow", c.now)
    monkeypatch.setattr(tokens, "utcnow", c.now)
    return c


class Addresses:
    """Clients of the same app from given source addresses (``request.client.host``)."""

    def __init__(self, client: TestClient) -> None:
        self.app = client.app
        self.clients: dict[str, TestClient] = {}

    def __call__(self, address: str) -> TestClient:
        if address not in self.clients:
            self.clients[address] = TestClient(self.app, client=(address, 50000))
        return self.clients[address]


@pytest.fixture
def at(client: TestClient) -> Addresses:
    return Addresses(client)


def attempt(c: TestClient, name: str, password: str) -> Response:
    return c.post(TOKEN, data={"username": name, "password": password})


def bearer(r: Response) -> dict[str, str]:
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def events(database: Database, *actions: str) -> list[AuditEvent]:
    with database.session() as db:
        return list(db.execute(sa.select(AuditEvent).where(AuditEvent.action.in_(actions))
                               .order_by(AuditEvent.seq)).scalars())


def throttle_row(database: Database, key: str) -> LoginThrottle | None:
    with database.session() as db:
        row = db.get(LoginThrottle, key)
        if row is not None:
            db.expunge(row)
        return row


# --- throttling --------------------------------------------------------------------------------------------


def test_repeated_wrong_passwords_get_429_with_retry_after_and_the_owner_still_gets_in(
    at: Addresses, database: Database, settings: Settings, clock: Clock
) -> None:
    add_user(database, "zhang", Role.agent)
    attacker = at("203.0.113.9")
    free = settings.login_free_failures
    for _ in range(free + 1):  # the free failures, then one that starts the backoff
        assert attempt(attacker, "zhang", "wrong-password-1").status_code == 401
    r = attempt(attacker, "zhang", "wrong-password-2")
    assert r.status_code == 429
    assert r.headers["retry-after"] == str(int(settings.login_backoff_base_s))
    body = r.json()
    assert body["code"] == "too_many_attempts" and body["retry_after"] == int(settings.login_backoff_base_s)
    assert body["detail"].startswith("登录失败次数过多，请 ") and body["detail"].endswith("后再试")
    # the right password is refused too from the failing address (it is not even checked) …
    assert attempt(attacker, "zhang", PASSWORD).status_code == 429
    # … but the owner, from an address that has not been failing, gets in at once
    assert attempt(at("10.1.2.3"), "zhang", PASSWORD).status_code == 200
    assert throttle_row(database, throttle.account_key("zhang")) is None  # the right password resets the count


def test_backoff_doubles_and_ends_by_itself(at: Addresses, database: Database, settings: Settings,
                                            clock: Clock) -> None:
    add_user(database, "zhang", Role.agent)
    attacker = at("203.0.113.9")
    for _ in range(settings.login_free_failures):
        assert attempt(attacker, "zhang", "wrong-password-1").status_code == 401
    waits = []
    for _ in range(4):
        assert attempt(attacker, "zhang", "wrong-password-1").status_code == 401  # checked, wrong, counted
        r = attempt(attacker, "zhang", "wrong-password-1")
        assert r.status_code == 429
        waits.append(int(r.headers["retry-after"]))
        clock.advance(seconds=waits[-1])  # wait exactly as told
    assert waits == [2, 4, 8, 16]
    # after the wait the account answers again, from the same address, to the right password
    assert attempt(attacker, "zhang", PASSWORD).status_code == 200
    # the backoff is capped: never a lockout longer than login_backoff_max_s
    policy = throttle.Policy.from_settings(settings)
    assert policy.delay(10_000, settings.login_free_failures) == settings.login_backoff_max_s == 900


def test_one_address_trying_many_accounts_is_throttled_whatever_the_account(
    at: Addresses, database: Database, settings: Settings, clock: Clock
) -> None:
    add_user(database, "zhang", Role.agent)
    settings.login_free_failures_per_address = 3
    sprayer = at("198.51.100.7")
    for n in range(4):  # 3 free, the 4th starts the backoff
        assert attempt(sprayer, f"nobody{n}", "Password-123!").status_code == 401
    r = attempt(sprayer, "zhang", PASSWORD)  # even a real account's right password
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert attempt(at("10.1.2.3"), "zhang", PASSWORD).status_code == 200  # others are not held up
    refused = events(database, "auth.login_throttled")[-1]
    assert refused.details["scope"] == "address" and refused.details["client"] == "198.51.100.7"


def test_unknown_accounts_are_throttled_like_real_ones(at: Addresses, database: Database, settings: Settings,
                                                       clock: Clock) -> None:
    """A refusal must not tell which accounts exist: the counter is per name as typed."""
    add_user(database, "zhang", Role.agent)
    answers: dict[str, list[int]] = {}
    for name in ("zhang", "ghost"):
        c = at(f"192.0.2.{len(answers) + 1}")
        answers[name] = [attempt(c, name, "wrong-password-1").status_code
                         for _ in range(settings.login_free_failures + 2)]
    assert answers["zhang"] == answers["ghost"] == [401] * (settings.login_free_failures + 1) + [429]


def test_the_throttle_is_shared_by_every_api_process(client: TestClient, settings: Settings, database: Database,
                                                     clock: Clock) -> None:
    add_user(database, "zhang", Role.agent)
    for _ in range(settings.login_free_failures + 1):
        assert attempt(client, "zhang", "wrong-password-1").status_code == 401
    other = TestClient(create_app(settings, database=database))  # a second API process on the same database
    assert attempt(other, "zhang", "wrong-password-1").status_code == 429


def test_parallel_attempts_cannot_overrun_the_budget(database: Database, settings: Settings) -> None:
    """Each attempt is counted before its password is checked: attempts in flight together share the budget."""
    policy = throttle.Policy.from_settings(settings)
    now = utcnow()
    outcomes = []
    for _ in range(settings.login_free_failures + 3):  # none of them has finished checking yet
        with database.session() as db:
            outcomes.append(throttle.begin(db=db, policy=policy, username="zhang", address="203.0.113.9", now=now))
    admitted = [o for o in outcomes if isinstance(o, throttle.Admitted)]
    assert len(admitted) == settings.login_free_failures + 1
    assert all(isinstance(o, throttle.Refused) for o in outcomes[len(admitted):])


def test_refusals_failures_and_logins_are_audited_with_the_client_address(
    at: Addresses, database: Database, settings: Settings, clock: Clock
) -> None:
    add_user(database, "zhang", Role.agent)
    attacker = at("203.0.113.9")
    for _ in range(settings.login_free_failures + 2):
        attempt(attacker, "zhang", "wrong-password-1")
    attempt(attacker, "ghost", "wrong-password-1")
    bearer(attempt(at("10.1.2.3"), "zhang", PASSWORD))
    failed = events(database, "auth.login_failed")
    assert len(failed) == settings.login_free_failures + 2
    assert all(e.details["client"] == "203.0.113.9" and e.actor.startswith("user:") for e in failed)
    assert failed[-1].details["username"] == "ghost" and failed[-1].subject_id == "-"
    refused = events(database, "auth.login_throttled")
    assert len(refused) == 1 and refused[0].details == {
        "username": "zhang", "client": "203.0.113.9", "scope": "account", "retry_after": 2}
    assert events(database, "auth.login")[-1].details["client"] == "10.1.2.3"


def test_admins_are_told_of_an_attack_once_per_window(at: Addresses, database: Database, settings: Settings,
                                                      clock: Clock) -> None:
    add_user(database, "zhang", Role.agent)
    add_user(database, "boss", Role.admin)
    add_user(database, "boss2", Role.admin)
    add_user(database, "mgr", Role.manager)
    settings.login_alert_failures = 3

    def notes() -> list[Notification]:
        with database.session() as db:
            return list(db.execute(sa.select(Notification).order_by(Notification.id)).scalars())

    for n in range(2 * settings.login_alert_failures):  # from a new address each time: only the account adds up
        assert attempt(at(f"203.0.113.{n + 1}"), "zhang", "wrong-password-1").status_code == 401
    told = notes()
    assert sorted(n.username for n in told) == ["boss", "boss2"]  # admins only, once, not per attempt
    assert {n.kind for n in told} == {"login_attack"} and "zhang" in told[0].message and "登录失败" in told[0].message
    # an admin reads it in the app like any notification
    inbox = at("10.9.9.9").get("/api/v1/notifications", headers=login(at("10.9.9.9"), "boss")).json()
    assert inbox["items"][0]["kind"] == "login_attack" and inbox["items"][0]["case_id"] is None
    # the attack goes on after the window: told again
    clock.advance(minutes=settings.login_throttle_window_minutes + 1)
    for n in range(settings.login_alert_failures):
        attempt(at(f"203.0.113.{100 + n}"), "zhang", "wrong-password-1")
    assert len(notes()) == 4


# --- the same work for unknown, deactivated and wrong-password logins ----------------------------------------


def test_every_failed_login_checks_one_full_hash(client: TestClient, database: Database,
                                                 monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    add_user(database, "zhang", Role.agent)
    add_user(database, "gone", Role.agent)
    with database.session() as db:
        db.execute(sa.update(User).where(User.username == "gone").values(active=False))
    settings.login_free_failures = settings.login_free_failures_per_address = 1000
    checked: list[str] = []
    real = passwords._verify_argon2
    monkeypatch.setattr(passwords, "_verify_argon2", lambda pw, stored: checked.append(stored) or real(pw, stored))
    for name, password in (("nobody", "wrong-password-1"), ("gone", PASSWORD), ("zhang", "wrong-password-1")):
        assert attempt(client, name, password).status_code == 401
    assert len(checked) == 3 and all(h.startswith("$argon2id$v=19$m=19456,t=2,p=1$") for h in checked)


def test_login_takes_as_long_for_an_unknown_or_deactivated_account_as_for_a_wrong_password(
    client: TestClient, database: Database, settings: Settings
) -> None:
    add_user(database, "zhang", Role.agent)
    add_user(database, "gone", Role.agent)
    with database.session() as db:
        db.execute(sa.update(User).where(User.username == "gone").values(active=False))
        stored = db.execute(sa.select(User.password_hash).where(User.username == "zhang")).scalar_one()
    settings.login_free_failures = settings.login_free_failures_per_address = 1000
    hash_s = min(_timed(lambda: passwords.verify("wrong-password-1", stored)) for _ in range(3))
    times: dict[str, list[float]] = {"unknown": [], "deactivated": [], "wrong": []}
    for _ in range(5):  # interleaved, so a burst of load elsewhere hits all three alike
        times["unknown"].append(_timed(lambda: attempt(client, "nobody", "wrong-password-1")))
        times["deactivated"].append(_timed(lambda: attempt(client, "gone", PASSWORD)))
        times["wrong"].append(_timed(lambda: attempt(client, "zhang", "wrong-password-1")))
    medians = {k: statistics.median(v) for k, v in times.items()}
    # each does the hashing (a shared 2-core box adds noise, never takes the hash away) …
    assert all(min(v) >= 0.7 * hash_s for v in times.values()), (hash_s, times)
    # … and none is far from the others (before: ~50 ms against 4–6 ms)
    assert max(medians.values()) <= 3 * min(medians.values()), medians


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# --- password policy -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("password", "why"), [
    ("short-1", "至少 10 位"),
    ("password", "至少 10 位"),
    ("password" + " " * 8, "常见"),
    (" " * 12, "全是空格"),
    ("aaaaaaaaaaaa", "不同的字符"),
    ("ababababab12", "不同的字符"),
    ("zhangwei2024", "用户名"),
    ("ZhangWei-Hotline", "用户名"),
    ("iewgnahz-9183", "用户名"),  # the name backwards
    ("zhang.wei.2024", "用户名"),
    ("1234567890", "常见"),
    ("qwertyuiop", "常见"),
    ("password123", "常见"),
    ("Password2024!", "常见"),  # a common one with digits and symbols added
    ("!!iloveyou!!", "常见"),
    ("1qaz2wsx3edc", "常见"),
    ("woaini1314520", "常见"),
    ("hotline12351", "常见"),
    ("x" * 257, "不能超过"),
])
def test_weak_passwords_are_refused_with_a_reason(password: str, why: str) -> None:
    with pytest.raises(passwords.WeakPassword, match=why):
        passwords.check_policy(password, username="zhangwei")


@pytest.mark.parametrize("password", [PASSWORD, "long-enough", "s3cret-pass", "风雨同舟-2026-青岛", "Xk9#mPq2$vL",
                                      "tea-kettle-orbit-7"])
def test_good_passwords_pass(password: str) -> None:
    passwords.check_policy(password, username="zhangwei")


def test_the_common_list_is_shipped_and_read_without_its_header() -> None:
    common = passwords.common_passwords()
    assert len(common) > 19_000 and {"password", "123456", "qwerty", "5201314", "12351"} <= common
    assert not any(p.startswith("# ") and "licence" in p.lower() for p in common)


@pytest.fixture
def admin(client: TestClient, database: Database) -> dict[str, str]:
    add_user(database, "root", Role.admin)
    return login(client, "root")


def test_the_policy_applies_on_create_reset_and_change(client: TestClient, database: Database,
                                                       admin: dict[str, str]) -> None:
    r = client.post("/api/v1/users", json={"username": "zhao", "role": "agent", "password": "zhao-12351!"},
                    headers=admin)
    assert (r.status_code, r.json()["code"], r.json()["detail"]) == (
        422, "weak_password", "密码不能与用户名相同，也不能包含用户名（含倒写）")
    r = client.post("/api/v1/users", json={"username": "zhao", "role": "agent", "password": PASSWORD},
                    headers=admin)
    assert r.status_code == 201
    user_id = r.json()["id"]
    r = client.patch(f"/api/v1/users/{user_id}", json={"password": "password" + " " * 8}, headers=admin)
    assert (r.status_code, r.json()["code"]) == (422, "weak_password") and "常见" in r.json()["detail"]
    zhao = login(client, "zhao")
    r = client.post("/api/v1/auth/password", json={"current_password": PASSWORD, "new_password": "qwertyuiop"},
                    headers=zhao)
    assert (r.status_code, r.json()["code"]) == (422, "weak_password")
    with database.session() as db:  # nothing changed
        assert users.check_password(PASSWORD, db.execute(sa.select(User.password_hash).where(
            User.username == "zhao")).scalar_one())


def test_a_user_changes_their_own_password(client: TestClient, at: Addresses, database: Database,
                                           clock: Clock) -> None:
    add_user(database, "zhang", Role.agent)
    here, elsewhere = login(client, "zhang"), login(at("10.7.7.7"), "zhang")
    r = client.post("/api/v1/auth/password", json={"current_password": "not-my-password",
                                                   "new_password": "a-new-password-12351"}, headers=here)
    assert (r.status_code, r.json()["code"], r.json()["detail"]) == (400, "wrong_password", "当前密码不正确")
    assert events(database, "auth.password_change_failed")[-1].details["client"] == "testclient"
    r = client.post("/api/v1/auth/password", json={"current_password": PASSWORD,
                                                   "new_password": "a-new-password-12351"}, headers=here)
    assert r.status_code == 200
    assert client.get("/api/v1/cases", headers=bearer(r)).status_code == 200  # this browser goes on
    for old in (here, elsewhere):  # every earlier token ends
        assert client.get("/api/v1/cases", headers=old).status_code == 401
    assert attempt(client, "zhang", "a-new-password-12351").status_code == 200
    assert events(database, "auth.password_changed")[-1].details == {"username": "zhang"}


# --- hashes -----------------------------------------------------------------------------------------------


def test_an_old_scrypt_hash_still_logs_in_and_is_upgraded_to_argon2id(client: TestClient,
                                                                     database: Database) -> None:
    add_user(database, "zhang", Role.agent)
    with database.session() as db:
        db.execute(sa.update(User).where(User.username == "zhang")
                   .values(password_hash=passwords.scrypt_hash(PASSWORD)))
    assert attempt(client, "zhang", "wrong-password-1").status_code == 401
    with database.session() as db:
        assert db.execute(sa.select(User.password_hash)).scalar_one().startswith("scrypt$")  # not on a failure
    bearer(attempt(client, "zhang", PASSWORD))
    with database.session() as db:
        stored = db.execute(sa.select(User.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$") and PASSWORD not in stored
    assert events(database, "auth.login")[-1].details == {"client": "testclient", "rehashed": "argon2id"}
    bearer(attempt(client, "zhang", PASSWORD))  # and it keeps working
    assert "rehashed" not in events(database, "auth.login")[-1].details
    assert attempt(client, "zhang", "wrong-password-1").status_code == 401


def test_new_passwords_are_argon2id() -> None:
    stored = passwords.hash_password(PASSWORD)
    assert stored.startswith("$argon2id$")
    assert passwords.verify(PASSWORD, stored) == passwords.Checked(True, rehash=False)
    assert passwords.verify("wrong-password-1", stored) == passwords.Checked(False)
    assert passwords.verify(PASSWORD, "-") == passwords.Checked(False)  # not a hash at all


# --- sessions that end -------------------------------------------------------------------------------------


def _ws_answer(client: TestClient, headers: dict[str, str]) -> tuple[int, str]:
    """How a live-transcript WebSocket opened with this token ends (an unknown call: 1000 once admitted)."""
    with client.websocket_connect(live_url(headers["Authorization"][7:], uuid.uuid4().hex)) as ws:
        return closed(ws)


@pytest.fixture
def short_live_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live_views, "WAIT_FOR_CALL", 0.1)


def test_logout_revokes_the_token_over_http_and_websocket(client: TestClient, database: Database,
                                                          short_live_wait: None) -> None:
    add_user(database, "zhang", Role.agent)
    mine, other = login(client, "zhang"), login(client, "zhang")  # two browsers
    assert _ws_answer(client, mine)[0] == 1000
    renewed = bearer(client.post("/api/v1/auth/refresh", headers=mine))
    r = client.post("/api/v1/auth/logout", headers=mine)
    assert r.status_code == 204
    for headers in (mine, renewed):  # the token and its renewal
        r = client.get("/api/v1/cases", headers=headers)
        assert (r.status_code, r.json()["code"], r.json()["detail"]) == (401, "invalid_token", tokens.LOGGED_OUT)
        assert _ws_answer(client, headers) == (1008, tokens.LOGGED_OUT)
        assert client.post("/api/v1/auth/refresh", headers=headers).status_code == 401
    assert client.get("/api/v1/cases", headers=other).status_code == 200  # the other browser stays logged in
    assert client.post("/api/v1/auth/logout", headers=mine).status_code == 401
    logout = events(database, "auth.logout")
    assert len(logout) == 1 and logout[0].actor == "user:zhang" and logout[0].details == {"client": "testclient"}
    assert events(database, "auth.token_rejected")[-1].details["reason"] == tokens.LOGGED_OUT


@pytest.mark.parametrize("change", [{"password": "second-password-12351"}, {"role": "manager"},
                                    {"active": False}])
def test_a_reset_role_change_or_deactivation_ends_every_token_at_once(
    client: TestClient, database: Database, admin: dict[str, str], change: dict[str, Any], short_live_wait: None
) -> None:
    add_user(database, "zhang", Role.agent)
    first, second = login(client, "zhang"), login(client, "zhang")
    with database.session() as db:
        user_id = db.execute(sa.select(User.id).where(User.username == "zhang")).scalar_one()
    assert client.patch(f"/api/v1/users/{user_id}", json=change, headers=admin).status_code == 200
    reason = tokens.GONE if change.get("active") is False else tokens.CHANGED
    for headers in (first, second):
        r = client.get("/api/v1/cases", headers=headers)
        assert (r.status_code, r.json()["detail"]) == (401, reason)
        assert _ws_answer(client, headers) == (1008, reason)
    if change.get("active") is False:  # reactivated, the old tokens do not come back
        assert client.patch(f"/api/v1/users/{user_id}", json={"active": True}, headers=admin).status_code == 200
        for headers in (first, second):
            r = client.get("/api/v1/cases", headers=headers)
            assert (r.status_code, r.json()["detail"]) == (401, tokens.CHANGED)
    password = change.get("password", PASSWORD)
    assert client.get("/api/v1/cases", headers=bearer(attempt(client, "zhang", password))).status_code in (200, 403)


def test_a_token_of_an_earlier_version_without_a_session_is_refused(client: TestClient, database: Database,
                                                                    settings: Settings) -> None:
    add_user(database, "zhang", Role.agent)
    now = utcnow()
    old = jwt.encode({"sub": "zhang", "role": "agent", "iat": now, "exp": now + timedelta(hours=1)},
                     settings.jwt_secret, algorithm="HS256")
    r = client.get("/api/v1/cases", headers={"Authorization": f"Bearer {old}"})
    assert (r.status_code, r.json()["detail"]) == (401, tokens.STALE)


def test_an_idle_session_ends_and_use_is_noted_at_most_once_a_minute(
    client: TestClient, database: Database, settings: Settings, clock: Clock, short_live_wait: None
) -> None:
    settings.idle_timeout_minutes = 30
    add_user(database, "zhang", Role.agent)
    headers = bearer(attempt(client, "zhang", PASSWORD))

    def last_seen() -> datetime:
        with database.session() as db:
            return db.execute(sa.select(AuthSession.last_seen_at)).scalar_one()

    opened = last_seen()
    clock.advance(seconds=30)
    assert client.get("/api/v1/cases", headers=headers).status_code == 200
    assert last_seen() == opened  # within the minute: no write
    clock.advance(seconds=40)
    assert client.get("/api/v1/cases", headers=headers).status_code == 200
    moved = last_seen()
    assert moved > opened
    for _ in range(3):
        assert client.get("/api/v1/cases", headers=headers).status_code == 200
    assert last_seen() == moved
    clock.advance(minutes=29)  # 29 minutes after the last use: still fine
    assert client.get("/api/v1/cases", headers=headers).status_code == 200
    clock.advance(minutes=31)  # then nothing for 31 minutes
    r = client.get("/api/v1/cases", headers=headers)
    assert (r.status_code, r.json()["detail"]) == (401, tokens.IDLE)
    assert _ws_answer(client, headers) == (1008, tokens.IDLE)
    assert client.post("/api/v1/auth/refresh", headers=headers).status_code == 401  # too late to renew
    settings.idle_timeout_minutes = 0  # no idle limit: the session is usable again (its token has not expired)
    assert client.get("/api/v1/cases", headers=headers).status_code == 200


def test_refresh_renews_the_token_of_an_active_session(client: TestClient, database: Database,
                                                       settings: Settings, clock: Clock) -> None:
    add_user(database, "zhang", Role.agent)
    r = attempt(client, "zhang", PASSWORD)
    assert (r.json()["expires_in"], r.json()["idle_timeout_s"]) == (8 * 3600, 30 * 60)
    first = r.json()["access_token"]
    claims = jwt.decode(first, settings.jwt_secret, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == settings.token_ttl_minutes * 60 == 8 * 3600
    clock.advance(minutes=20)
    time.sleep(1.1)  # a later ``exp`` (whole seconds)
    r = client.post("/api/v1/auth/refresh", headers={"Authorization": f"Bearer {first}"})
    assert r.status_code == 200 and r.json()["user"]["username"] == "zhang"
    renewed = jwt.decode(r.json()["access_token"], settings.jwt_secret, algorithms=["HS256"])
    assert renewed["sid"] == claims["sid"] and renewed["ver"] == claims["ver"] and renewed["exp"] > claims["exp"]
    clock.advance(minutes=25)  # 45 minutes after login, 25 after the renewal: the renewal counted as use
    assert client.get("/api/v1/cases", headers=bearer(r)).status_code == 200
    with database.session() as db:  # a deactivated user gets no renewal
        db.execute(sa.update(User).where(User.username == "zhang").values(active=False))
    assert client.post("/api/v1/auth/refresh", headers=bearer(r)).status_code == 401
