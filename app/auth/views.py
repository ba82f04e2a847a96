from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from app.auth import service as tokens
from app.deps import AppSettings, CurrentUser, DbSession
from app.errors import ApiError
from app.users import service as users
from app.users.models import UserRead

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    user: UserRead


@router.post("/token")
def login(form: Annotated[OAuth2PasswordRequestForm, Depends()], db: DbSession, settings: AppSettings) -> Token:
    """Log in with username and password (OAuth2 password form); returns a bearer token."""
    user = users.authenticate(db=db, username=form.username, password=form.password)
    if user is None:
        # Commit the failed-login audit event: raising would roll it back with the request.
        db.commit()
        raise ApiError(401, "bad_credentials", "用户名或密码错误")
    token = tokens.issue(user=user, secret=settings.jwt_secret, ttl_minutes=settings.token_ttl_minutes)
    return Token(access_token=token, user=UserRead.model_validate(user))


@router.get("/me")
def me(user: CurrentUser) -> UserRead:
    return UserRead.model_validate(user)
