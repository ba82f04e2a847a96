"""Users and their passwords (scrypt, from the standard library)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.users.models import Role, User

_N, _R, _P = 2**14, 8, 1


class UserError(Exception):
    code = "invalid_user"


class UserExists(UserError):
    code = "user_exists"


class LastAdmin(UserError):
    code = "last_admin"


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p))
    except ValueError:
        return False
    return hmac.compare_digest(candidate.hex(), digest)


def get_by_name(*, db: Session, username: str) -> User | None:
    return db.execute(sa.select(User).where(User.username == username)).scalar_one_or_none()


def create(*, db: Session, username: str, role: Role, password: str, actor: str) -> User:
    username = username.strip()
    if not username or len(username) > 64:
        raise UserError("用户名不能为空，且不超过 64 个字符")
    if len(password) < 8:
        raise UserError("密码至少 8 位")
    if get_by_name(db=db, username=username):
        raise UserExists(f"用户 {username} 已存在")
    user = User(username=username, role=role.value, password_hash=hash_password(password))
    db.add(user)
    db.flush()
    audit.record(db=db, actor=actor, action="user.created", subject_type="user", subject_id=user.id,
                 details={"username": username, "role": role.value})
    return user


def authenticate(*, db: Session, username: str, password: str) -> User | None:
    """The user, or None; both outcomes are audited (login / failed login)."""
    user = get_by_name(db=db, username=username)
    if user is None or not user.active or not check_password(password, user.password_hash):
        audit.record(db=db, actor=f"user:{username[:64]}", action="auth.login_failed", subject_type="user",
                     subject_id=user.id if user else "-", details={"username": username[:64]})
        return None
    audit.record(db=db, actor=f"user:{user.username}", action="auth.login", subject_type="user",
                 subject_id=user.id, details={})
    return user


def count(*, db: Session) -> int:
    return db.execute(sa.select(sa.func.count()).select_from(User)).scalar_one()


def get(*, db: Session, user_id: int) -> User | None:
    return db.get(User, user_id)


def list_users(*, db: Session, role: Role | None = None, active: bool | None = None) -> list[User]:
    stmt = sa.select(User).order_by(User.username)
    if role is not None:
        stmt = stmt.where(User.role == role.value)
    if active is not None:
        stmt = stmt.where(User.active == active)
    return list(db.execute(stmt).scalars())


@dataclass(frozen=True)
class UserChange:
    """What an admin changes on an account; None leaves that part as it is."""

    role: Role | None = None
    active: bool | None = None
    password: str | None = None


def _active_admins(db: Session) -> int:
    """Active admins, their rows locked (PostgreSQL) so two admins demoting each other cannot both succeed."""
    stmt = sa.select(User.id).where(User.role == Role.admin.value, User.active.is_(True)).with_for_update()
    return len(db.execute(stmt).all())


def update(*, db: Session, user: User, change: UserChange, actor: str) -> User:
    """Change role, activation and/or password, each change audited with before and after (never the
    password itself). The last active admin cannot be demoted or deactivated: nobody could manage users."""
    if change.password is not None and len(change.password) < 8:
        raise UserError("密码至少 8 位")
    losing_admin = user.role == Role.admin.value and user.active and (
        (change.role is not None and change.role != Role.admin) or change.active is False)
    if losing_admin and _active_admins(db) <= 1:
        raise LastAdmin("不能降级或停用最后一个管理员账号")

    def log(action: str, details: dict[str, object]) -> None:
        audit.record(db=db, actor=actor, action=action, subject_type="user", subject_id=user.id,
                     details={"username": user.username, **details})

    if change.role is not None and change.role.value != user.role:
        log("user.role_changed", {"field": "role", "before": user.role, "after": change.role.value})
        user.role = change.role.value
    if change.active is not None and change.active != user.active:
        log("user.activated" if change.active else "user.deactivated",
            {"field": "active", "before": user.active, "after": change.active})
        user.active = change.active
    if change.password is not None:
        user.password_hash = hash_password(change.password)
        log("user.password_reset", {})
    db.flush()
    return user
