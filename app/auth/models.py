"""Sign-in state kept in the database, so that every API process sees the same: login sessions (one per login
token and its renewals: revoked by logout, idle after HOTLINE_IDLE_TIMEOUT_MINUTES without use) and the login
throttle's counters (app/auth/throttle.py)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class AuthSession(Base):
    """One login: the tokens issued by it and by its renewals carry its id (``sid``)."""

    __tablename__ = "auth_sessions"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    client: Mapped[str] = mapped_column(sa.String(64))  # the address it logged in from
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)  # moved at most once a minute
    revoked_at: Mapped[datetime | None]  # logout


class LoginThrottle(Base):
    """Failed logins counted per key: ``account:NAME`` (as typed, whether or not it exists), ``address:IP``
    and ``site`` (everything; for the attack alert only)."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    last_failure_at: Mapped[datetime | None] = mapped_column(index=True)
    blocked_until: Mapped[datetime | None]  # no login checked for this key before then (429)
    alerted_at: Mapped[datetime | None]  # admins told of an attack on this key (once per window)
