"""Checking a password over the API (login, and a user's own password change): throttled (app/auth/throttle.py),
audited with the client's address, and the same work whether the account is unknown, deactivated or the password
wrong (the hash is checked in every case, against a dummy hash when there is no account). The password is
checked between two short transactions, never inside one: on SQLite a transaction holds the write lock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.audit import service as audit
from app.auth import passwords, throttle
from app.auth import service as sessions
from app.config import Settings
from app.db import Database, utcnow
from app.users import service as users
from app.users.models import User

log = logging.getLogger("hotline.auth")


class Throttled(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


def wait_words(seconds: int) -> str:
    """A wait for people: 「45 秒」, 「3 分钟」, 「15 分钟」."""
    return f"{seconds} 秒" if seconds < 60 else f"{-(-seconds // 60)} 分钟"


@dataclass(frozen=True)
class Checked:
    """A password checked for ``username``: ``user`` when it is right and the account active, else None."""

    user: User | None
    admitted: throttle.Admitted
    new_hash: str | None  # the right password, stored the old way: its argon2id hash to store instead


def check(*, database: Database, settings: Settings, username: str, password: str, client: str,
          action: str) -> Checked:
    """Throttle, then check the password; ``action`` names the audit event of a refusal's or failure's caller
    (``auth.login`` → ``auth.login_throttled`` / ``auth.login_failed``). Raises Throttled (audited)."""
    policy = throttle.Policy.from_settings(settings)
    now = utcnow()
    user: User | None = None
    stored: str | None = None
    with database.session() as db:
        gate = throttle.begin(db=db, policy=policy, username=username, address=client, now=now)
        if isinstance(gate, throttle.Refused):
            audit.record(db=db, actor=f"user:{username[:64]}", action=f"{action}_throttled", subject_type="user",
                         subject_id="-", details={"username": username[:64], "client": client,
                                                  "scope": gate.scope, "retry_after": gate.retry_after})
        else:
            user = users.get_by_name(db=db, username=username)
            stored = user.password_hash if user is not None else None
    if isinstance(gate, throttle.Refused):
        log.warning("%s of %r from %s refused for %d s (%s throttled)", action, username[:64], client,
                    gate.retry_after, gate.scope)
        raise Throttled(gate.retry_after)
    verdict = passwords.verify(password, stored)  # always a full hash check: unknown, inactive or wrong alike
    ok = user is not None and user.active and verdict.ok
    new_hash = passwords.hash_password(password) if ok and verdict.rehash else None
    return Checked(user if ok else None, gate, new_hash)


def settle(*, db: Session, settings: Settings, checked: Checked, username: str, client: str,
           action: str) -> User | None:
    """In the caller's transaction: the outcome counted (the throttle, an alert), audited (a failure as
    ``{action}_failed``), and an old-style hash replaced. The user (as in this session), or None."""
    policy = throttle.Policy.from_settings(settings)
    now = utcnow()
    if checked.user is None:
        alerts = throttle.failed(db=db, policy=policy, admitted=checked.admitted, username=username,
                                 address=client, now=now)
        account = users.get_by_name(db=db, username=username)
        audit.record(db=db, actor=f"user:{username[:64]}", action=f"{action}_failed", subject_type="user",
                     subject_id=account.id if account else "-", details={"username": username[:64],
                                                                         "client": client})
        for alert in alerts:
            log.warning("login attack: %s failed %d times; %d admin(s) notified", alert.key, alert.failures,
                        alert.notified)
        return None
    throttle.succeeded(db=db, admitted=checked.admitted, now=now)
    user = db.get(User, checked.user.id)
    assert user is not None
    if checked.new_hash is not None and user.password_hash == checked.user.password_hash:
        user.password_hash = checked.new_hash  # scrypt (or older argon2 parameters) → argon2id, quietly
    return user


@dataclass(frozen=True)
class Login:
    user: User
    session_id: str
    rehashed: bool


def login(*, database: Database, settings: Settings, username: str, password: str, client: str) -> Login | None:
    """A new session for the right password of an active account; None otherwise (audited either way).
    Raises Throttled."""
    checked = check(database=database, settings=settings, username=username, password=password, client=client,
                    action="auth.login")
    with database.session() as db:
        user = settle(db=db, settings=settings, checked=checked, username=username, client=client,
                      action="auth.login")
        if user is None:
            return None
        sessions.prune(db=db, idle_minutes=settings.idle_timeout_minutes, ttl_minutes=settings.token_ttl_minutes)
        session = sessions.open_session(db=db, user=user, client=client)
        details: dict[str, object] = {"client": client}
        if checked.new_hash is not None:
            details["rehashed"] = "argon2id"
        audit.record(db=db, actor=f"user:{user.username}", action="auth.login", subject_type="user",
                     subject_id=user.id, details=details)
        db.expunge(user)
        return Login(user, session.id, checked.new_hash is not None)
