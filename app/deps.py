"""Request-scoped dependencies shared by all routers: the DB session, the current user, permissions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.auth import masking
from app.auth import service as tokens
from app.auth.permissions import Masking, Permission, allowed
from app.config import Settings
from app.db import Database
from app.errors import ApiError
from app.jobs import JobQueue
from app.users.models import User

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_database(request: Request) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


def get_queue(request: Request) -> JobQueue:
    return request.app.state.queue  # type: ignore[no-any-return]


CurrentDatabase = Annotated[Database, Depends(get_database)]


def get_db(database: CurrentDatabase) -> Iterator[Session]:
    """One transaction per request: committed before the response goes out, rolled back on any error.

    It begins at the request's first query. On SQLite that takes the database write lock (see app/db.py)
    until the request ends, so dependencies that run before the handler (authentication) use their own
    short sessions, and slow work (probing an upload, Whisper) never runs inside one."""
    with database.session() as db:
        yield db


AppSettings = Annotated[Settings, Depends(get_settings)]
DbSession = Annotated[Session, Depends(get_db)]
Queue = Annotated[JobQueue, Depends(get_queue)]


def client_address(request: Request) -> str:
    """Where a request comes from: the socket's peer address (behind a reverse proxy on this machine, the
    address uvicorn takes from ``X-Forwarded-For`` for the proxies FORWARDED_ALLOW_IPS trusts: by default the
    loopback addresses only). No other proxy setting exists, so no other header is believed."""
    return request.client.host[:64] if request.client else "unknown"


@dataclass(frozen=True)
class Authenticated:
    """A request's user and the login session its token belongs to."""

    user: User
    session_id: str


def authenticate_token(settings: Settings, database: Database, token: str | None) -> Authenticated:
    """The user and session a bearer token stands for; 401 without a token, with a bad or expired one, for an
    account that no longer exists or was deactivated, a token of an earlier password, role or activation (its
    version), a logged-out session, or one idle past HOTLINE_IDLE_TIMEOUT_MINUTES (app/auth/service.py)."""
    if not token:
        raise ApiError(401, "not_authenticated", "请先登录")
    try:
        claims = tokens.decode(token=token, secret=settings.jwt_secret)
        with database.session() as db:  # its own short transaction: see get_db
            user = tokens.authorize(db=db, claims=claims, idle_minutes=settings.idle_timeout_minutes)
    except tokens.InvalidToken as e:
        raise ApiError(401, "invalid_token", str(e)) from e
    return Authenticated(user, claims.session_id)


def get_current_user(
    settings: AppSettings, database: CurrentDatabase, token: Annotated[str | None, Depends(oauth2)]
) -> User:
    """The user the bearer token belongs to (see ``authenticate_token``)."""
    return authenticate_token(settings, database, token).user


def audit_rejected_token(database: Database, *, token: str, path: str, method: str, client: str,
                         reason: str) -> None:
    """A presented token that was refused (forged, expired, or of a deactivated account) is on record as
    ``auth.token_rejected``; a request with no token at all is only asked to log in (not audited: browsers
    and health probes make those all day, and they reveal nothing)."""
    with database.session() as db:  # its own transaction: the request's rolls back with the 401
        audit.record(db=db, actor=f"anonymous:{client}"[:128], action="auth.token_rejected", subject_type="route",
                     subject_id=path[:64], details={"method": method, "reason": reason,
                                                    "claimed": tokens.unverified_subject(token)})


def current_session(
    request: Request, settings: AppSettings, database: CurrentDatabase,
    token: Annotated[str | None, Depends(oauth2)],
) -> Authenticated:
    try:
        return authenticate_token(settings, database, token)
    except ApiError as e:
        if token:
            audit_rejected_token(database, token=token, path=request.url.path, method=request.method,
                                 client=client_address(request), reason=e.message)
        raise


def current_user(session: Annotated[Authenticated, Depends(current_session)]) -> User:
    return session.user


CurrentSession = Annotated[Authenticated, Depends(current_session)]
CurrentUser = Annotated[User, Depends(current_user)]


class Require:
    """Dependency: the current user, if their role has ``permission``; otherwise 403, audited as
    ``auth.denied``. It also tells the masking middleware what this user may not see (app/auth/masking.py).
    The permission stays readable on the dependency, so tests can walk every route's permission."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    def __call__(self, request: Request, user: CurrentUser, database: CurrentDatabase) -> User:
        if not allowed(user.role, self.permission):
            # Separate transaction: the request's own one rolls back with the error.
            with database.session() as db:
                audit.record(db=db, actor=f"user:{user.username}", action="auth.denied", subject_type="route",
                             subject_id=request.url.path[:64],
                             details={"method": request.method, "permission": self.permission.value})
            raise ApiError(403, "forbidden", "没有权限执行此操作")
        masking.set_for(request, Masking.for_role(user.role))
        return user

    def __repr__(self) -> str:
        return f"require({self.permission.value})"


def require(permission: Permission) -> Callable[..., User]:
    """Dependency: the current user, if their role has ``permission``; otherwise 403, audited."""
    return Require(permission)
