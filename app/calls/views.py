from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.audit import service as audit
from app.auth.permissions import Permission
from app.calls import service
from app.calls.models import CallRead
from app.deps import DbSession, require
from app.errors import ApiError
from app.users.models import User

router = APIRouter(prefix="/api/v1/calls", tags=["calls"])
Reader = Annotated[User, Depends(require(Permission.case_read))]


@router.get("")
def list_calls(db: DbSession, user: Reader, status: str | None = None,
               limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[CallRead]:
    """Recent calls and captured sessions, newest first (status: active, ended, cancelled, no_audio, failed)."""
    calls = [CallRead.model_validate(c) for c in service.recent(db=db, limit=limit, status=status)]
    audit.record(db=db, actor=f"user:{user.username}", action="call.listed", subject_type="call", subject_id="-",
                 details={"status": status, "ids": [c.id for c in calls]})
    return calls


@router.get("/{call_id}")
def read_call(call_id: int, db: DbSession, user: Reader) -> CallRead:
    call = service.get(db=db, call_id=call_id)
    if call is None:
        raise ApiError(404, "not_found", "通话不存在")
    audit.record(db=db, actor=f"user:{user.username}", action="call.read", subject_type="call", subject_id=call.id)
    return CallRead.model_validate(call)
