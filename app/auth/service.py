"""Bearer tokens (JWT, HS256) for logged-in users."""

from __future__ import annotations

from datetime import timedelta

import jwt

from app.db import utcnow
from app.users.models import User

ALGORITHM = "HS256"


class InvalidToken(Exception):
    pass


def issue(*, user: User, secret: str, ttl_minutes: int) -> str:
    now = utcnow()
    claims = {"sub": user.username, "role": user.role, "iat": now, "exp": now + timedelta(minutes=ttl_minutes)}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def username_from(*, token: str, secret: str) -> str:
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]})
    except jwt.ExpiredSignatureError as e:
        raise InvalidToken("登录已过期，请重新登录") from e
    except jwt.PyJWTError as e:
        raise InvalidToken("无效的登录凭证") from e
    return str(claims["sub"])


def unverified_subject(token: str) -> str:
    """Who a refused token claims to be (its ``sub``, not trusted; for the audit record), or ""."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False, "verify_exp": False})
    except jwt.PyJWTError:
        return ""
    return str(claims.get("sub", ""))[:64]
