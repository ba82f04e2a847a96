from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.audit import service as audit
from app.audit.models import AuditEventRead
from app.auth.permissions import Permission
from app.cases import service
from app.cases.models import Case, CaseBase, CasePagination, CaseRead
from app.deps import DbSession, require
from app.errors import ApiError
from app.transcripts import service as transcripts
from app.transcripts.models import TranscriptRead
from app.users.models import User

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])
Reader = Annotated[User, Depends(require(Permission.case_read))]


def _case(db: DbSession, case_id: int) -> Case:
    case = service.get(db=db, case_id=case_id)
    if case is None:
        raise ApiError(404, "not_found", "工单不存在")
    return case


@router.get("")
def list_cases(
    db: DbSession,
    _user: Reader,
    status: str | None = None,
    category: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> CasePagination:
    total, rows = service.list_cases(db=db, limit=limit, offset=offset, status=status, category=category)
    return CasePagination(total=total, items=[CaseBase.model_validate(c) for c in rows])


@router.get("/{case_id}")
def read_case(case_id: int, db: DbSession, user: Reader) -> CaseRead:
    """The case with its transcript segments (the read of case and transcript is audited)."""
    case = _case(db, case_id)
    transcript = transcripts.for_recording(db=db, recording_id=case.recording_id)
    audit.record(db=db, actor=f"user:{user.username}", action="case.read", subject_type="case", subject_id=case.id,
                 details={"transcript_id": transcript.id if transcript else None})
    return CaseRead.model_validate({
        **CaseBase.model_validate(case).model_dump(), "category_evidence": case.category_evidence,
        "transcript": TranscriptRead.model_validate(transcript) if transcript else None,
    })


@router.get("/{case_id}/timeline")
def timeline(case_id: int, db: DbSession, _user: Reader) -> list[AuditEventRead]:
    """What happened to the case and its recording, oldest first."""
    case = _case(db, case_id)
    events = audit.for_subject(db=db, subject_type="recording", subject_id=case.recording_id)
    events += audit.for_subject(db=db, subject_type="case", subject_id=case.id)
    return [AuditEventRead.model_validate(e) for e in sorted(events, key=lambda e: e.seq)]
