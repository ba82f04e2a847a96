"""Request-scoped dependencies shared by all routers: the DB session, the current user, permissions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.auth import service as tokens
from app.auth.permissions import Permission, allowed
from app.config import Settings
from app.db import Database
from app.errors import ApiError
from app.jobs import JobQueue
from app.users import service as users
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


def get_current_user(
    settings: AppSettings, database: CurrentDatabase, token: Annotated[str | None, Depends(oauth2)]
) -> User:
    if not token:
        raise ApiError(401, "not_authenticated", "请先登录")
    try:
        username = tokens.username_from(token=token, secret=settings.jwt_secret)
    except tokens.InvalidToken as e:
        raise ApiError(401, "invalid_token", str(e)) from e
    with database.session() as db:  # its own short transaction: see get_db
        user = users.get_by_name(db=db, username=username)
    if user is None or not user.active:
        raise ApiError(401, "invalid_token", "账号不存在或已停用")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def require(permission: Permission) -> Callable[..., User]:
    """Dependency: the current user, if their role has ``permission``; otherwise 403, audited."""

    def check(request: Request, user: CurrentUser, database: CurrentDatabase) -> User:
        if not allowed(user.role, permission):
            # Separate transaction: the request's own one rolls back with the error.
            with database.session() as db:
                audit.record(db=db, actor=f"user:{user.username}", action="auth.denied", subject_type="route",
                             subject_id=request.url.path[:64],
                             details={"method": request.method, "permission": permission.value})
            raise ApiError(403, "forbidden", "没有权限执行此操作")
        return user

    return check
