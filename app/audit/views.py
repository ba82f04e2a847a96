from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from app.audit import service
from app.auth.permissions import Permission
from app.deps import DbSession, require
from app.users.models import User

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


class VerifyRead(BaseModel):
    ok: bool
    events: int
    first_bad_seq: int | None
    reason: str


@router.get("/verify")
def verify(db: DbSession, _user: Annotated[User, Depends(require(Permission.audit_read))]) -> VerifyRead:
    r = service.verify(db=db)
    return VerifyRead(ok=r.ok, events=r.events, first_bad_seq=r.first_bad_seq, reason=r.reason)
