from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.audit.models import AuditEventRead
from app.auth.permissions import Permission, allowed
from app.cases import access, service, workflow
from app.cases.models import (
    Case,
    CaseBase,
    CaseListItem,
    CasePagination,
    CaseRead,
    CaseStatus,
    CaseUpdate,
    LegalHoldIn,
    NoteIn,
    TransitionIn,
)
from app.deps import AppSettings, CurrentDatabase, DbSession, require
from app.enterprises import service as enterprises
from app.errors import ApiError
from app.notifications import service as notifications
from app.notifications.models import NotificationKind
from app.transcripts import service as transcripts
from app.transcripts.models import TranscriptRead
from app.users.models import User
from app.warnings import service as warnings

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])
Reader = Annotated[User, Depends(require(Permission.case_read))]
Editor = Annotated[User, Depends(require(Permission.case_update))]
Escalator = Annotated[User, Depends(require(Permission.case_escalate))]
Holder = Annotated[User, Depends(require(Permission.case_hold))]


def _case(db: DbSession, case_id: int, *, for_update: bool = False) -> Case:
    case = db.get(Case, case_id, with_for_update=for_update) if for_update else service.get(db=db, case_id=case_id)
    if case is None:
        raise ApiError(404, "not_found", "工单不存在")
    return case


def _held(db: DbSession, request: Request, user: User, case_id: int) -> Case:
    """The case, locked for the change, if ``user`` may change it (app/cases/access.py); else 403, audited."""
    case = _case(db, case_id, for_update=True)
    access.check(db=db, request=request, user=user, case=case)
    return case


def _policy(settings: AppSettings) -> workflow.SlaPolicy:
    return workflow.SlaPolicy.from_settings(settings)


def _item(case: Case, policy: workflow.SlaPolicy) -> CaseListItem:
    return CaseListItem.model_validate({**CaseBase.model_validate(case).model_dump(),
                                        "sla": workflow.sla_state(case, policy)})


def _read(db: DbSession, case: Case, policy: workflow.SlaPolicy, user: User) -> CaseRead:
    """The whole case with its transcript, clocks, where the workflow lets it go next and whether ``user``
    may change it."""
    transcript = transcripts.for_recording(db=db, recording_id=case.recording_id)
    fields = {name: getattr(case, name) for name in CaseRead.model_fields
              if name not in CaseListItem.model_fields and hasattr(Case, name)}
    return CaseRead.model_validate({
        **_item(case, policy).model_dump(), **fields,
        "transcript": TranscriptRead.model_validate(transcript) if transcript else None,
        "next_statuses": [s.value for s in CaseStatus if s in workflow.TRANSITIONS[CaseStatus(case.status)]],
        "may_change": allowed(user.role, Permission.case_update) and access.may_change(user, case),
    })


def _actor(user: User) -> str:
    return f"user:{user.username}"


@router.get("")
def list_cases(
    db: DbSession,
    user: Reader,
    settings: AppSettings,
    status: str | None = None,
    category: str | None = None,
    district: str | None = None,
    enterprise: Annotated[str | None, Query(description="企业名称的一部分")] = None,
    created_by: Annotated[str | None, Query(description="建单人用户名")] = None,
    assignee: str | None = None,
    date_from: Annotated[date | None, Query(description="建单日期起（含，北京时间）YYYY-MM-DD")] = None,
    date_to: Annotated[date | None, Query(description="建单日期止（含，北京时间）YYYY-MM-DD")] = None,
    overdue: Annotated[bool | None, Query(description="超期：过了办结时限仍未办结，或逾期办结")] = None,
    group_case: bool | None = None,
    escalated: bool | None = None,
    recording_id: Annotated[int | None, Query(description="某一录音（通话归档后）的工单")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> CasePagination:
    """Cases, newest first, filtered by any of the parameters given."""
    if status and status not in {s.value for s in CaseStatus}:
        raise ApiError(422, "invalid", f"没有「{status}」这个状态（可选：{'、'.join(CaseStatus)}）")
    if date_from and date_to and date_from > date_to:
        raise ApiError(422, "invalid", "起始日期不能晚于截止日期")
    filters = service.CaseFilter(
        status=status, category=category, district=district, enterprise=enterprise, created_by=created_by,
        assignee=assignee, date_from=date_from, date_to=date_to, overdue=overdue, group_case=group_case,
        escalated=escalated, recording_id=recording_id)
    total, rows = service.list_cases(db=db, limit=limit, offset=offset, filters=filters)
    audit.record(db=db, actor=_actor(user), action="case.listed", subject_type="case", subject_id="-",
                 details={"filters": {k: v for k, v in vars(filters).items() if v is not None}, "total": total,
                          "ids": [c.id for c in rows]})
    policy = _policy(settings)
    return CasePagination(total=total, items=[_item(c, policy) for c in rows])


@router.get("/{case_id}")
def read_case(case_id: int, db: DbSession, user: Reader, settings: AppSettings) -> CaseRead:
    """The case with its transcript segments (the read of case and transcript is audited)."""
    case = _case(db, case_id)
    read = _read(db, case, _policy(settings), user)
    audit.record(db=db, actor=_actor(user), action="case.read", subject_type="case", subject_id=case.id,
                 details={"transcript_id": read.transcript.id if read.transcript else None})
    return read


@contextmanager
def _workflow_errors() -> Iterator[None]:
    """A refused move is 409 invalid_transition; a bad value staff entered is 422 invalid."""
    try:
        yield
    except workflow.InvalidTransition as e:
        raise ApiError(409, "invalid_transition", str(e)) from e
    except workflow.InvalidCaseInput as e:
        raise ApiError(422, "invalid", str(e)) from e


@router.patch("/{case_id}")
def update_case(case_id: int, body: CaseUpdate, request: Request, db: DbSession, database: CurrentDatabase,
                user: Editor, settings: AppSettings) -> CaseRead:
    """Confirm or change the suggested fields; each change is audited (case.updated {field, before, after}).
    Changing the difficulty moves the completion deadline and needs case:escalate. Only for those who may
    change this case (its assignee, anyone while it is in the pool, managers: app/cases/access.py)."""
    fields = {name: getattr(body, name) for name in body.model_fields_set - {"confirm"}}
    if not fields and not body.confirm:
        raise ApiError(422, "invalid", "没有要修改的字段")
    if "difficulty" in fields and not allowed(user.role, Permission.case_escalate):
        require(Permission.case_escalate)(request, user, database)  # 403, audited as auth.denied
    case = _held(db, request, user, case_id)
    with _workflow_errors():
        changed = service.change(db=db, case=case, actor=_actor(user), settings=settings, **fields)
    if "enterprise" in changed and case.enterprise_id is not None:  # retyped: no longer the linked enterprise
        enterprises.link_case(db=db, case=case, enterprise_id=None, actor=_actor(user))
    if body.confirm:
        service.confirm(db=db, case=case, actor=_actor(user), username=user.username)
        _link_suggested_enterprise(db, case, _actor(user))
    if WARNING_FIELDS & set(changed) or body.confirm:  # what the early-warning rules group and count by
        db.flush()
        warnings.evaluate_case(db=db, settings=settings, case_id=case.id)
    return _read(db, case, _policy(settings), user)


WARNING_FIELDS = frozenset({"category", "enterprise", "district", "occupation", "workers", "amount"})


def _link_suggested_enterprise(db: Session, case: Case, actor: str) -> None:
    """Staff confirmed the enterprise the machine resolved in the registry (the name as suggested): the case is
    linked to that entry, and the spelling heard becomes an alias (app/enterprises link_case)."""
    found = (case.extracted or {}).get("enterprise") or {}
    enterprise_id = found.get("enterprise_id")
    if case.enterprise_id is None and enterprise_id and case.enterprise == found.get("value"):
        enterprises.link_case(db=db, case=case, enterprise_id=int(enterprise_id), actor=actor,
                              heard_name=found.get("heard") or None)


@router.post("/{case_id}/transitions")
def move_case(case_id: int, body: TransitionIn, request: Request, db: DbSession, user: Editor,
              settings: AppSettings) -> CaseRead:
    """Move the case along the workflow (受理 → 转办 → 办理 → 回访 → 办结, and back where allowed). Who handles
    a case from the pool (受理 → 办理 without naming a person) takes it: they become its assignee."""
    case = _held(db, request, user, case_id)
    before = case.assignee
    with _workflow_errors():
        workflow.transition(db=db, case=case, actor=_actor(user), to=body.to, unit=body.unit,
                            assignee=body.assignee, note=body.note, policy=_policy(settings),
                            taken_by=user.username)
    if case.assignee and case.assignee not in (before, user.username):  # not those who took it themselves
        notifications.notify(db=db, case=case, kind=NotificationKind.assigned)
    return _read(db, case, _policy(settings), user)


@router.post("/{case_id}/feedback")
def give_feedback(case_id: int, body: NoteIn, request: Request, db: DbSession, user: Editor,
                  settings: AppSettings) -> CaseRead:
    """Record feedback given to the caller; the first one stops the 24-hour first-feedback clock."""
    case = _held(db, request, user, case_id)
    with _workflow_errors():
        workflow.feedback(db=db, case=case, actor=_actor(user), note=body.note)
    return _read(db, case, _policy(settings), user)


@router.post("/{case_id}/escalate")
def escalate_case(case_id: int, body: NoteIn, request: Request, db: DbSession, user: Escalator,
                  settings: AppSettings) -> CaseRead:
    """督办: flag the case for priority handling; the person responsible and the managers are notified."""
    case = _held(db, request, user, case_id)
    with _workflow_errors():
        workflow.escalate(db=db, case=case, actor=_actor(user), note=body.note)
    notifications.notify(db=db, case=case, kind=NotificationKind.escalated)
    return _read(db, case, _policy(settings), user)


@router.put("/{case_id}/legal-hold")
def legal_hold(case_id: int, body: LegalHoldIn, request: Request, db: DbSession, user: Holder,
               settings: AppSettings) -> CaseRead:
    """保全: put a case in dispute on legal hold (``hold: true`` with a reason), so that the retention sweep keeps
    its recording and transcript whatever their age, or lift it (``hold: false``); audited (case.updated)."""
    case = _held(db, request, user, case_id)
    with _workflow_errors():
        service.set_legal_hold(db=db, case=case, actor=_actor(user), username=user.username, hold=body.hold,
                               reason=body.reason)
    return _read(db, case, _policy(settings), user)


@router.get("/{case_id}/timeline")
def timeline(
    case_id: int, db: DbSession, user: Reader, response: Response,
    limit: Annotated[int, Query(ge=1, le=500)] = 200, offset: Annotated[int, Query(ge=0)] = 0,
) -> list[AuditEventRead]:
    """What happened to the case, its recording, transcript and call, oldest first; X-Total-Count: how many."""
    case = _case(db, case_id)
    total, events = audit.case_timeline(db=db, case_id=case.id, recording_id=case.recording_id,
                                        transcript_id=case.transcript_id, limit=limit, offset=offset,
                                        actor=f"user:{user.username}")
    response.headers["X-Total-Count"] = str(total)
    return [AuditEventRead.model_validate(e) for e in events]
