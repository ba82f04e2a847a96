"""The audit trail over HTTP (``audit:read``): check the chain, and page through its events. Both reads are
themselves on record (``audit.verified``, ``audit.read``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from app.audit import service
from app.audit.models import AuditEvent, AuditEventRead
from app.auth.permissions import Permission
from app.deps import DbSession, require
from app.errors import ApiError
from app.users.models import User

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])
Auditor = Annotated[User, Depends(require(Permission.audit_read))]


class VerifyRead(BaseModel):
    ok: bool
    events: int
    first_bad_seq: int | None
    reason: str
    head_seq: int  # the last event of the intact chain: keep "head_seq:head_hash" outside the database
    head_hash: str


class AuditEventPagination(BaseModel):
    total: int
    items: list[AuditEventRead]


@router.get("/verify")
def verify(
    db: DbSession,
    user: Auditor,
    expect_head: Annotated[str | None, Query(description="上次记录的链头 SEQ:HASH，用于发现尾部被截断")] = None,
) -> VerifyRead:
    """Walk the whole hash chain; with ``expect_head`` also check that the chain still reaches that anchor."""
    try:
        anchor = service.Anchor.parse(expect_head) if expect_head else None
    except service.AnchorError as e:
        raise ApiError(422, "invalid_anchor", "链头格式应为 序号:哈希（64 位十六进制）") from e
    r = service.verify(db=db, expect=anchor)
    service.record(db=db, actor=f"user:{user.username}", action="audit.verified", subject_type="audit",
                   subject_id="-", details={"ok": r.ok, "events": r.events, "first_bad_seq": r.first_bad_seq,
                                            "head": r.head, "expect_head": expect_head})
    return VerifyRead(ok=r.ok, events=r.events, first_bad_seq=r.first_bad_seq, reason=r.reason,
                      head_seq=r.head_seq, head_hash=r.head_hash)


@router.get("/events")
def events(
    db: DbSession,
    user: Auditor,
    action: str | None = None,
    actor: str | None = None,
    subject_type: str | None = None,
    subject_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AuditEventPagination:
    """Audit events, newest first, filtered by action, actor, subject and time."""
    conditions = [c for c in (
        AuditEvent.action == action if action else None,
        AuditEvent.actor == actor if actor else None,
        AuditEvent.subject_type == subject_type if subject_type else None,
        AuditEvent.subject_id == subject_id if subject_id else None,
        AuditEvent.at >= since if since else None,
        AuditEvent.at < until if until else None,
    ) if c is not None]
    total = db.execute(sa.select(sa.func.count()).select_from(AuditEvent).where(*conditions)).scalar_one()
    rows = db.execute(sa.select(AuditEvent).where(*conditions).order_by(AuditEvent.seq.desc())
                      .limit(limit).offset(offset)).scalars()
    page = AuditEventPagination(total=total, items=[AuditEventRead.model_validate(e) for e in rows])
    service.record(db=db, actor=f"user:{user.username}", action="audit.read", subject_type="audit", subject_id="-",
                   details={"filters": {k: v for k, v in {"action": action, "actor": actor,
                                                          "subject_type": subject_type, "subject_id": subject_id,
                                                          "since": since, "until": until}.items() if v},
                            "offset": offset, "returned": len(page.items)})
    return page
