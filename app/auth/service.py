"""Bearer tokens (JWT, HS256) for logged-in users, and the sessions behind them.

A token names its user (``sub``), its session (``sid``: one per login, kept in ``auth_sessions``) and the user's
token version (``ver``). Every request and every WebSocket connect checks all three against the database: the
account must be active, its version unchanged (a password reset or change, a role change, a deactivation or a
reactivation raises it: every token the user holds stops at once), the session not logged out, and used within
HOTLINE_IDLE_TIMEOUT_MINUTES. Use moves the session's ``last_seen_at`` at most once a minute (one small UPDATE
per session and minute, not one per request). A renewal (``POST /auth/refresh``) is a new token for the same
session: logging out ends both.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.auth.models import AuthSession
from app.db import as_utc, utcnow
from app.users.models import User

ALGORITHM = "HS256"
TOUCH_EVERY = timedelta(minutes=1)

EXPIRED = "登录已过期，请重新登录"
INVALID = "无效的登录凭证"
STALE = "登录已失效，请重新登录"
GONE = "账号不存在或已停用"
CHANGED = "账号的密码、角色或状态已变更，请重新登录"
LOGGED_OUT = "已退出登录，请重新登录"
IDLE = "长时间未操作，登录已失效，请重新登录"


class InvalidToken(Exception):
    pass


@dataclass(frozen=True)
class Claims:
    username: str
    session_id: str
    version: int


def issue(*, user: User, session_id: str, secret: str, ttl_minutes: int) -> str:
    now = datetime.now(UTC)  # the system clock, which PyJWT checks ``iat`` and ``exp`` against
    claims = {"sub": user.username, "role": user.role, "sid": session_id, "ver": user.token_version, "iat": now,
              "exp": now + timedelta(minutes=ttl_minutes)}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode(*, token: str, secret: str) -> Claims:
    """The token's claims, if it is ours and not expired; a token of an earlier version (no session) is stale."""
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]})
    except jwt.ExpiredSignatureError as e:
        raise InvalidToken(EXPIRED) from e
    except jwt.PyJWTError as e:
        raise InvalidToken(INVALID) from e
    sid, ver = claims.get("sid"), claims.get("ver")
    if not isinstance(sid, str) or not isinstance(ver, int):
        raise InvalidToken(STALE)
    return Claims(str(claims["sub"]), sid, ver)


def username_from(*, token: str, secret: str) -> str:
    return decode(token=token, secret=secret).username


def unverified_subject(token: str) -> str:
    """Who a refused token claims to be (its ``sub``, not trusted; for the audit record), or ""."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False, "verify_exp": False})
    except jwt.PyJWTError:
        return ""
    return str(claims.get("sub", ""))[:64]


# --- sessions ------------------------------------------------------------------------------------------------


def open_session(*, db: Session, user: User, client: str, now: datetime | None = None) -> AuthSession:
    now = now or utcnow()
    row = AuthSession(id=secrets.token_urlsafe(24), user_id=user.id, client=client[:64], created_at=now,
                      last_seen_at=now)
    db.add(row)
    db.flush()
    return row


def authorize(*, db: Session, claims: Claims, idle_minutes: int, now: datetime | None = None,
              touch: bool = True) -> User:
    """The user a (signature-checked) token stands for, if the account, its version and the session still
    allow it; else InvalidToken with the reason. Use is noted (``touch``) at most once per TOUCH_EVERY."""
    now = now or utcnow()
    row = db.execute(sa.select(User, AuthSession).outerjoin(
        AuthSession, sa.and_(AuthSession.id == claims.session_id, AuthSession.user_id == User.id))
        .where(User.username == claims.username)).first()
    if row is None or not row[0].active:
        raise InvalidToken(GONE)
    user, session = row
    if user.token_version != claims.version:
        raise InvalidToken(CHANGED)
    if session is None:
        raise InvalidToken(STALE)
    if session.revoked_at is not None:
        raise InvalidToken(LOGGED_OUT)
    seen = as_utc(session.last_seen_at)
    if idle_minutes > 0 and seen < now - timedelta(minutes=idle_minutes):
        raise InvalidToken(IDLE)
    if touch and seen <= now - TOUCH_EVERY:
        # conditional: of several processes noting the same minute's use, one writes
        db.execute(sa.update(AuthSession).where(AuthSession.id == session.id,
                                                AuthSession.last_seen_at <= now - TOUCH_EVERY)
                   .values(last_seen_at=now))
    return user


def touch(*, db: Session, session_id: str, now: datetime | None = None) -> None:
    """Note use now, whatever the minute (a renewal)."""
    db.execute(sa.update(AuthSession).where(AuthSession.id == session_id).values(last_seen_at=now or utcnow()))


def revoke(*, db: Session, session_id: str, now: datetime | None = None) -> bool:
    """Log the session out: every token it issued is refused from now on. False if it already was."""
    done = db.execute(sa.update(AuthSession).where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
                      .values(revoked_at=now or utcnow()))
    return bool(done.rowcount)  # type: ignore[attr-defined]


def prune(*, db: Session, idle_minutes: int, ttl_minutes: int, now: datetime | None = None) -> int:
    """Delete sessions no token of which can be used any more (idle, or older than a token lives since their
    last use); returns how many."""
    now = now or utcnow()
    horizon = max(ttl_minutes, idle_minutes or ttl_minutes)
    done = db.execute(sa.delete(AuthSession).where(AuthSession.last_seen_at < now - timedelta(minutes=horizon)))
    return int(done.rowcount)  # type: ignore[attr-defined]
