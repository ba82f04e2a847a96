from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.audit import service as audit
from app.auth.permissions import Permission
from app.deps import DbSession, require
from app.errors import ApiError
from app.notifications import service
from app.notifications.models import NotificationList, NotificationRead
from app.users.models import User

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])
# Every role works cases and may be told about them; each user sees only their own notifications.
Staff = Annotated[User, Depends(require(Permission.case_read))]


@router.get("")
def my_notifications(
    db: DbSession,
    user: Staff,
    unread_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> NotificationList:
    """My notifications, newest first, with how many are unread."""
    unread, total, items = service.for_user(db=db, username=user.username, unread_only=unread_only, limit=limit,
                                            offset=offset)
    return NotificationList(unread=unread, total=total, items=items)


@router.post("/{notification_id}/read")
def mark_read(notification_id: int, db: DbSession, user: Staff) -> NotificationRead:
    note = service.mark_read(db=db, username=user.username, notification_id=notification_id)
    if note is None:
        raise ApiError(404, "not_found", "通知不存在")
    audit.record(db=db, actor=f"user:{user.username}", action="notification.read", subject_type="notification",
                 subject_id=note.id, details={"case_id": note.case_id, "warning_id": note.warning_id,
                                                          "kind": note.kind.value})
    return note
