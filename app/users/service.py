"""Users and their passwords (argon2id, app/auth/passwords.py; the policy is checked on create, reset and
change)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.auth import passwords
from app.users.models import Role, User


class UserError(Exception):
    code = "invalid_user"


class UserExists(UserError):
    code = "user_exists"


class LastAdmin(UserError):
    code = "last_admin"


class WeakPassword(UserError):
    code = "weak_password"


def hash_password(password: str) -> str:
    return passwords.hash_password(password)


def check_password(password: str, stored: str) -> bool:
    return passwords.verify(password, stored).ok


def check_policy(password: str, *, username: str) -> None:
    """Raise WeakPassword (a UserError; the message says why, in Chinese) unless the password is acceptable."""
    try:
        passwords.check_policy(password, username=username)
    except passwords.WeakPassword as e:
        raise WeakPassword(str(e)) from e


def get_by_name(*, db: Session, username: str) -> User | None:
    return db.execute(sa.select(User).where(User.username == username)).scalar_one_or_none()


def create(*, db: Session, username: str, role: Role, password: str, actor: str) -> User:
    username = username.strip()
    if not username or len(username) > 64:
        raise UserError("用户名不能为空，且不超过 64 个字符")
    check_policy(password, username=username)
    if get_by_name(db=db, username=username):
        raise UserExists(f"用户 {username} 已存在")
    user = User(username=username, role=role.value, password_hash=hash_password(password))
    db.add(user)
    db.flush()
    audit.record(db=db, actor=actor, action="user.created", subject_type="user", subject_id=user.id,
                 details={"username": username, "role": role.value})
    return user


def authenticate(*, db: Session, username: str, password: str, client: str = "local") -> User | None:
    """The user, or None; both outcomes are audited (login / failed login). For logins inside this process
    (the CLI); the API's login (app/auth/login.py) adds throttling and checks the password outside the
    transaction. An unknown account costs the same hashing as a wrong password."""
    user = get_by_name(db=db, username=username)
    checked = passwords.verify(password, user.password_hash if user else None)
    if user is None or not user.active or not checked.ok:
        audit.record(db=db, actor=f"user:{username[:64]}", action="auth.login_failed", subject_type="user",
                     subject_id=user.id if user else "-", details={"username": username[:64], "client": client})
        return None
    details: dict[str, object] = {"client": client}
    if checked.rehash:
        user.password_hash = passwords.hash_password(password)
        details["rehashed"] = "argon2id"
    audit.record(db=db, actor=f"user:{user.username}", action="auth.login", subject_type="user",
                 subject_id=user.id, details=details)
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
    password itself); any of them ends every token the user holds (their token version goes up). The last
    active admin cannot be demoted or deactivated: nobody could manage users."""
    if change.password is not None:
        check_policy(change.password, username=user.username)
    losing_admin = user.role == Role.admin.value and user.active and (
        (change.role is not None and change.role != Role.admin) or change.active is False)
    if losing_admin and _active_admins(db) <= 1:
        raise LastAdmin("不能降级或停用最后一个管理员账号")

    before = (user.role, user.active)

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
    if user.role != before[0] or user.active != before[1] or change.password is not None:
        user.token_version += 1  # every token the user holds ends now (app/auth/service.py)
    db.flush()
    return user


def change_password(*, db: Session, user: User, new_password: str) -> None:
    """The user's own change (after checking the current password): policy, new hash, and every token of theirs
    ends; audited as ``auth.password_changed``."""
    check_policy(new_password, username=user.username)
    user.password_hash = hash_password(new_password)
    user.token_version += 1
    audit.record(db=db, actor=f"user:{user.username}", action="auth.password_changed", subject_type="user",
                 subject_id=user.id, details={"username": user.username})
    db.flush()
