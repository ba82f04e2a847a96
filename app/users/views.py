"""Staff accounts (``user:admin``): list, create with a role, change role, deactivate or reactivate, reset the
password. Every change is audited (app/users/service.py); the last active admin cannot be locked out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from app.audit import service as audit
from app.auth.permissions import Permission
from app.deps import DbSession, require
from app.errors import ApiError
from app.users import service
from app.users.models import Role, User, UserRead

router = APIRouter(prefix="/api/v1/users", tags=["users"])
Admin = Annotated[User, Depends(require(Permission.user_admin))]


class UserCreate(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    role: Role
    password: str = Field(max_length=256, description="至少 10 位，不含用户名，不是常见密码")


class UserUpdate(BaseModel):
    role: Role | None = None
    active: bool | None = None
    password: str | None = Field(default=None, max_length=256, description="重置密码（同样的密码规则）")


def _user(db: DbSession, user_id: int) -> User:
    user = service.get(db=db, user_id=user_id)
    if user is None:
        raise ApiError(404, "not_found", "用户不存在")
    return user


@router.get("")
def list_users(
    db: DbSession, admin: Admin,
    role: Role | None = None,
    active: Annotated[bool | None, Query(description="只看启用（true）或停用（false）的账号")] = None,
) -> list[UserRead]:
    rows = [UserRead.model_validate(u) for u in service.list_users(db=db, role=role, active=active)]
    audit.record(db=db, actor=f"user:{admin.username}", action="user.listed", subject_type="user", subject_id="-",
                 details={"role": role, "active": active, "returned": len(rows)})
    return rows


@router.post("", status_code=201)
def create_user(body: UserCreate, db: DbSession, admin: Admin) -> UserRead:
    """Create an account with its role (audited as ``user.created``)."""
    try:
        user = service.create(db=db, username=body.username, role=body.role, password=body.password,
                              actor=f"user:{admin.username}")
    except service.UserError as e:
        raise ApiError(409 if isinstance(e, service.UserExists) else 422, e.code, str(e)) from e
    return UserRead.model_validate(user)


@router.patch("/{user_id}")
def update_user(user_id: int, body: UserUpdate, db: DbSession, admin: Admin) -> UserRead:
    """Change the role, deactivate (``active: false``: logins and existing tokens stop working at once) or
    reactivate, or reset the password; each change audited with before and after, and each ends every token
    the user holds (they log in again)."""
    user = _user(db, user_id)
    if user.id == admin.id and body.active is False:
        raise ApiError(409, "self_deactivation", "不能停用自己的账号")
    try:
        service.update(db=db, user=user, change=service.UserChange(role=body.role, active=body.active,
                                                                   password=body.password),
                       actor=f"user:{admin.username}")
    except service.UserError as e:
        raise ApiError(409 if isinstance(e, service.LastAdmin) else 422, e.code, str(e)) from e
    return UserRead.model_validate(user)
