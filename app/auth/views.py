"""Signing in and out: log in (throttled, app/auth/throttle.py), renew the token while working, log out, change
one's own password. Every refusal and failure is audited with the client's address."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from app.audit import service as audit
from app.auth import login as logins
from app.auth import service as tokens
from app.config import Settings
from app.deps import AppSettings, CurrentDatabase, CurrentSession, CurrentUser, client_address
from app.errors import ApiError
from app.users import service as users
from app.users.models import User, UserRead

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="seconds the token is valid; renew it with POST /auth/refresh")
    idle_timeout_s: int = Field(description="a session not used this long ends (0: never)")
    user: UserRead


class PasswordChange(BaseModel):
    current_password: str = Field(max_length=256)
    new_password: str = Field(max_length=256)


def _token(user: User, session_id: str, settings: Settings) -> Token:
    token = tokens.issue(user=user, session_id=session_id, secret=settings.jwt_secret,
                         ttl_minutes=settings.token_ttl_minutes)
    return Token(access_token=token, expires_in=settings.token_ttl_minutes * 60,
                 idle_timeout_s=settings.idle_timeout_minutes * 60, user=UserRead.model_validate(user))


def _throttled(e: logins.Throttled) -> ApiError:
    return ApiError(429, "too_many_attempts", f"登录失败次数过多，请 {logins.wait_words(e.retry_after)}后再试",
                    retry_after=e.retry_after)


@router.post("/token")
def login(request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()], database: CurrentDatabase,
          settings: AppSettings) -> Token:
    """Log in with username and password (OAuth2 password form); returns a bearer token. Repeated failures
    on an account or from an address are answered 429 with ``Retry-After`` for a while (doubling)."""
    try:
        done = logins.login(database=database, settings=settings, username=form.username, password=form.password,
                            client=client_address(request))
    except logins.Throttled as e:
        raise _throttled(e) from e
    if done is None:
        raise ApiError(401, "bad_credentials", "用户名或密码错误")
    return _token(done.user, done.session_id, settings)


@router.get("/me")
def me(user: CurrentUser) -> UserRead:
    return UserRead.model_validate(user)


@router.post("/refresh")
def refresh(current: CurrentSession, database: CurrentDatabase, settings: AppSettings) -> Token:
    """A new token for the same session (the web app renews while its user is active); the account must still
    be active, its session neither logged out nor idle. Not audited: the login that opened the session is."""
    with database.session() as db:
        tokens.touch(db=db, session_id=current.session_id)
    return _token(current.user, current.session_id, settings)


@router.post("/logout", status_code=204)
def logout(request: Request, current: CurrentSession, database: CurrentDatabase) -> Response:
    """End this session: the token presented (and every renewal of it) is refused from now on."""
    with database.session() as db:
        tokens.revoke(db=db, session_id=current.session_id)
        audit.record(db=db, actor=f"user:{current.user.username}", action="auth.logout", subject_type="user",
                     subject_id=current.user.id, details={"client": client_address(request)})
    return Response(status_code=204)


@router.post("/password")
def change_password(request: Request, body: PasswordChange, current: CurrentSession, database: CurrentDatabase,
                    settings: AppSettings) -> Token:
    """Change one's own password (the current one checked, throttled like a login; the new one must meet the
    policy). Every token of the user ends — other browsers are logged out — and a new one is returned for
    this browser."""
    name, client = current.user.username, client_address(request)
    try:
        users.check_policy(body.new_password, username=name)
    except users.UserError as e:
        raise ApiError(422, e.code, str(e)) from e
    try:
        checked = logins.check(database=database, settings=settings, username=name, password=body.current_password,
                               client=client, action="auth.password_change")
    except logins.Throttled as e:
        raise _throttled(e) from e
    with database.session() as db:
        user = logins.settle(db=db, settings=settings, checked=checked, username=name, client=client,
                             action="auth.password_change")
        if user is not None:
            users.change_password(db=db, user=user, new_password=body.new_password)
            tokens.revoke(db=db, session_id=current.session_id)
            session = tokens.open_session(db=db, user=user, client=client)
            db.expunge(user)
    if user is None:
        raise ApiError(400, "wrong_password", "当前密码不正确")
    return _token(user, session.id, settings)
