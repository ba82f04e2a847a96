"""Users and their passwords (scrypt, from the standard library)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.users.models import Role, User

_N, _R, _P = 2**14, 8, 1


class UserError(Exception):
    pass


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
        raise UserError(f"用户 {username} 已存在")
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
