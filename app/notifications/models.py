from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class NotificationKind(StrEnum):
    feedback_due_soon = "feedback_due_soon"  # first feedback to the caller due within hours
    feedback_overdue = "feedback_overdue"  # first feedback is late
    due_soon = "due_soon"  # completion deadline near
    overdue = "overdue"  # completion deadline passed
    escalated = "escalated"  # 督办
    assigned = "assigned"  # the case was handed to this person
    warning_red = "warning_red"  # an early warning was raised to 红
    warning_raised = "warning_raised"  # an early warning was raised (or raised to a higher grade)
    warning_unsigned = "warning_unsigned"  # nobody signed for a warning by its grade's deadline
    warning_unsigned_2 = "warning_unsigned_2"  # … and still nobody after another deadline: admins are told too
    login_attack = "login_attack"  # many failed logins on one account, from one address or site-wide (admins)


class Notification(Base):
    """One reminder for one user about one case or one warning; at most one per (case, kind, user) and per
    (warning, kind, user)."""

    __tablename__ = "notifications"
    __table_args__ = (sa.UniqueConstraint("case_id", "kind", "username", name="uq_notifications_case_kind_user"),
                      sa.UniqueConstraint("warning_id", "kind", "username",
                                          name="uq_notifications_warning_kind_user"))

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64))
    case_id: Mapped[int | None] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    warning_id: Mapped[int | None] = mapped_column(sa.ForeignKey("warnings.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(24))
    message: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]
    # Webhook delivery (HOTLINE_SLA_WEBHOOK_URL): pending while delivered_at is empty; a sweep claims a row
    # by moving next_attempt_at forward, and a failure leaves it for the next sweep.
    delivered_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(sa.Text)


sa.Index("ix_notifications_user_created", Notification.username, Notification.created_at)
sa.Index("ix_notifications_pending", Notification.delivered_at, Notification.next_attempt_at)


class NotificationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    case_id: int | None  # about a case, or …
    case_no: str | None
    warning_id: int | None = None  # … about an early warning
    kind: NotificationKind
    message: str
    created_at: datetime
    read_at: datetime | None


class NotificationList(BaseModel):
    unread: int
    total: int
    items: list[NotificationRead]
