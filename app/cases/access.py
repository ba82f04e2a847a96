"""Whose case it is: who may change a case, beside what their role may do (app/auth/permissions.py).

As a hotline office works: a case filed from a call is in the hotline's pool while it is 受理 and nobody holds
it; whoever answers may work it there (confirm its fields, give the caller feedback, handle it themselves,
which makes them its holder, or 转办 it to a unit and/or a person). From then on the case is its assignee's:
only the assignee (agent or mediator) changes it (办理, 回访, feedback, reassigning or sending it back, which
returns it to the pool), and those whose role holds ``case:any`` (managers, admins) change any case; they also
name the person for a case handed to a unit without one. Everyone who may read cases still reads them all.

A refusal is 403 with what to do in Chinese, on record as ``auth.denied`` on the case (its timeline shows it).
"""

from __future__ import annotations

from fastapi import Request
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.auth.permissions import Permission, allowed
from app.cases import service
from app.cases.models import Case, CaseStatus
from app.db import Database
from app.errors import ApiError
from app.users.models import User


def in_pool(case: Case) -> bool:
    """受理 and held by nobody: any staff member who may update cases may work it."""
    return case.status == CaseStatus.accepted and not case.assignee and not case.unit


def refusal(user: User, case: Case) -> str | None:
    """Why ``user`` may not change ``case`` (in Chinese, for them), or None when they may."""
    if allowed(user.role, Permission.case_any) or in_pool(case):
        return None
    if case.assignee:
        if case.assignee == user.username:
            return None
        return f"该工单由「{case.assignee}」承办，只有承办人或管理人员可以办理"
    if case.unit:
        return f"该工单已转办至「{case.unit}」，尚未指定承办人：请管理人员指定承办人后再办理"
    return "该工单没有承办人，只有管理人员可以办理（请管理人员指定承办人）"


def may_change(user: User, case: Case) -> bool:
    return refusal(user, case) is None


def check(*, db: Session, request: Request, user: User, case: Case) -> None:
    """403 unless ``user`` may change ``case``; the refusal is committed to the audit trail first (the
    request's transaction, which changed nothing yet, ends there: the error would roll it back)."""
    why = refusal(user, case)
    if why is None:
        return
    audit.record(db=db, actor=f"user:{user.username}", action="auth.denied", subject_type="case",
                 subject_id=case.id, details={
                     "method": request.method, "path": request.url.path[:128],
                     "permission": Permission.case_any.value, "reason": why, "status": case.status,
                     "assignee": case.assignee, "unit": case.unit})
    db.commit()
    raise ApiError(403, "forbidden", why)


def check_transcript(*, database: Database, request: Request, user: User, transcript_id: int) -> None:
    """``check`` for a change made through a case's transcript (a correction), in a short transaction of its
    own (the correction runs in its own); nothing to check for a transcript no case was filed from."""
    with database.session() as db:
        case = service.for_transcript(db=db, transcript_id=transcript_id)
        if case is not None:
            check(db=db, request=request, user=user, case=case)
