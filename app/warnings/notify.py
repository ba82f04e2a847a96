"""Telling people about warnings: in the app (the notifications list) and through the existing webhook, which
delivers every new notification (app/notifications ``deliver``)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.notifications.models import Notification, NotificationKind
from app.notifications.service import local_time
from app.users.models import Role, User
from app.warnings.models import EarlyWarning

K = NotificationKind


def message(w: EarlyWarning, kind: NotificationKind) -> str:
    head = f"【{w.grade}色预警】{w.subject}"
    if kind is K.warning_raised:
        return f"{head}：{w.reason}。请于 {local_time(w.sign_due_at)} 前签收"
    if kind is K.warning_red:
        return f"{head} 已升级为红色：{w.reason}"
    return f"{head} 已超过签收时限（{local_time(w.sign_due_at)}）仍无人签收，请督促处理"


def managers(*, db: Session, warning: EarlyWarning, kind: NotificationKind, now: datetime,
             admins: bool = False) -> int:
    """Notify every active manager (and admin, with ``admins``) once per warning and kind; returns how many."""
    roles = [Role.manager.value, *([Role.admin.value] if admins else [])]
    names = db.execute(sa.select(User.username).where(User.active, User.role.in_(roles)).order_by(User.id)).scalars()
    made = 0
    for name in names:
        note = Notification(username=name, warning_id=warning.id, kind=kind.value, message=message(warning, kind),
                            created_at=now)
        try:
            with db.begin_nested():  # told already (a re-run, another worker): that one stands
                db.add(note)
        except IntegrityError:
            continue
        made += 1
    return made
