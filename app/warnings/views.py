"""预警中心 API: warnings (list, summary, detail with the cases' evidence and the timeline), their workflow and
snooze, the rules, and a full re-evaluation."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.auth.permissions import Permission
from app.cases.models import Case
from app.db import as_utc, utcnow
from app.deps import AppSettings, DbSession, require
from app.errors import ApiError
from app.users.models import User
from app.warnings import service, workflow
from app.warnings.models import (
    RANK,
    EarlyWarning,
    EvaluationRead,
    Grade,
    GroupBy,
    RuleIn,
    RuleRead,
    SnoozeIn,
    TimelineEvent,
    WarningCase,
    WarningCaseRead,
    WarningListItem,
    WarningPagination,
    WarningRead,
    WarningRule,
    WarningStatus,
    WarningSummary,
    WarningTransitionIn,
)

router = APIRouter(prefix="/api/v1", tags=["warnings"])
Reader = Annotated[User, Depends(require(Permission.warning_read))]
Handler = Annotated[User, Depends(require(Permission.warning_handle))]
Admin = Annotated[User, Depends(require(Permission.warning_admin))]

LABELS = {
    "warning.raised": "预警生成", "warning.attached": "新增关联案件", "warning.upgraded": "预警升级",
    "warning.signed": "签收", "warning.verified": "核实", "warning.action": "联动处置", "warning.closed": "办结",
    "warning.snoozed": "暂缓", "warning.woken": "解除暂缓", "warning.escalated": "超时未签收，已上报",
    "warning.read": "查看",
}


def _actor(user: User) -> str:
    return f"user:{user.username}"


def _grade_order() -> sa.ColumnElement[int]:
    return sa.case(*((EarlyWarning.grade == g, -rank) for g, rank in RANK.items()), else_=0)


def _case_ids(db: Session, ids: list[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = defaultdict(list)
    if ids:
        rows = db.execute(sa.select(WarningCase.warning_id, WarningCase.case_id)
                          .where(WarningCase.warning_id.in_(ids)).order_by(WarningCase.case_id))
        for warning_id, case_id in rows:
            out[warning_id].append(case_id)
    return out


def _item(w: EarlyWarning, rule_name: str, case_ids: list[int]) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": w.id, "grade": w.grade, "status": w.status, "subject": w.subject, "group_by": w.group_by,
        "rule_id": w.rule_id, "rule_name": rule_name, "enterprise_id": w.enterprise_id, "district": w.district,
        "category": w.category, "reason": w.reason, "figures": w.figures, "case_ids": case_ids,
        "raised_at": w.raised_at, "first_case_at": w.first_case_at, "sign_due_at": w.sign_due_at,
        "overdue": w.signed_at is None and as_utc(w.sign_due_at) < now and w.status == WarningStatus.new,
        "escalation_level": w.escalation_level, "snoozed": workflow.snoozed(w), "inhibited_by_id": w.inhibited_by_id,
        "verdict": w.verdict, "closed_at": w.closed_at,
    }


def _rule_names(db: Session) -> dict[int, str]:
    return {rule_id: name for rule_id, name in db.execute(sa.select(WarningRule.id, WarningRule.name))}


@router.get("/warnings")
def list_warnings(
    db: DbSession,
    user: Reader,
    status: WarningStatus | None = None,
    grade: Grade | None = None,
    district: Annotated[str | None, Query(max_length=16)] = None,
    group_by: GroupBy | None = None,
    enterprise_id: int | None = None,
    include_closed: bool = False,
    include_inhibited: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> WarningPagination:
    """Warnings, highest grade and newest first; open ones not hidden under a red one unless asked."""
    where: list[sa.ColumnElement[bool]] = []
    if status is not None:
        where.append(EarlyWarning.status == status.value)
    elif not include_closed:
        where.append(EarlyWarning.status != WarningStatus.closed.value)
    if not include_inhibited:
        where.append(EarlyWarning.inhibited_by_id.is_(None))
    for column, value in ((EarlyWarning.grade, grade), (EarlyWarning.district, district),
                          (EarlyWarning.group_by, group_by), (EarlyWarning.enterprise_id, enterprise_id)):
        if value is not None:
            where.append(column == value)
    total = db.execute(sa.select(sa.func.count()).select_from(EarlyWarning).where(*where)).scalar_one()
    rows = list(db.execute(sa.select(EarlyWarning).where(*where)
                           .order_by(_grade_order(), EarlyWarning.raised_at.desc(), EarlyWarning.id.desc())
                           .limit(limit).offset(offset)).scalars())
    names, cases = _rule_names(db), _case_ids(db, [w.id for w in rows])
    audit.record(db=db, actor=_actor(user), action="warning.listed", subject_type="warning", subject_id="-",
                 details={"returned": [w.id for w in rows]})
    return WarningPagination(total=total, items=[
        WarningListItem.model_validate(_item(w, names.get(w.rule_id, ""), cases[w.id])) for w in rows])


@router.get("/warnings/summary")
def summary(db: DbSession, _user: Reader) -> WarningSummary:
    """Open warnings (not hidden under a red one) by grade and by district, for the dashboard."""
    open_ = [EarlyWarning.status != WarningStatus.closed.value, EarlyWarning.inhibited_by_id.is_(None)]
    rows = db.execute(sa.select(EarlyWarning.district, EarlyWarning.grade, sa.func.count())
                      .where(*open_).group_by(EarlyWarning.district, EarlyWarning.grade)).all()
    by_grade = {g.value: 0 for g in reversed(Grade)}
    districts: dict[str, dict[str, Any]] = {}
    for district, grade, n in rows:
        by_grade[grade] = by_grade.get(grade, 0) + n
        row = districts.setdefault(district or "未知", {"district": district or "未知", "total": 0,
                                                          **{g.value: 0 for g in Grade}})
        row[grade] += n
        row["total"] += n
    new = [*open_, EarlyWarning.status == WarningStatus.new.value, EarlyWarning.snoozed_until.is_(None),
           EarlyWarning.snooze_cases.is_(None)]
    count_new = db.execute(sa.select(sa.func.count()).select_from(EarlyWarning).where(*new)).scalar_one()
    overdue = db.execute(sa.select(sa.func.count()).select_from(EarlyWarning)
                         .where(*new, EarlyWarning.sign_due_at < utcnow())).scalar_one()
    return WarningSummary(by_grade=by_grade, new=count_new, overdue=overdue,
                          by_district=sorted(districts.values(), key=lambda r: -r["total"]))


def _warning(db: Session, warning_id: int, *, lock: bool = False) -> EarlyWarning:
    w = db.get(EarlyWarning, warning_id, with_for_update=lock or None)
    if w is None:
        raise ApiError(404, "not_found", "预警不存在")
    return w


def _read(db: Session, w: EarlyWarning) -> WarningRead:
    ids = _case_ids(db, [w.id])[w.id]
    cases = list(db.execute(sa.select(Case).where(Case.id.in_(ids)).order_by(service.case_at, Case.id)).scalars())
    events = audit.for_subject(db=db, subject_type="warning", subject_id=w.id)
    rule_name = _rule_names(db).get(w.rule_id, "")
    return WarningRead.model_validate({
        **_item(w, rule_name, ids), "rule_version": w.rule_version,
        **{k: getattr(w, k) for k in ("signed_by", "signed_at", "verified_by", "verified_at", "actions",
                                      "amount_recovered", "workers_covered", "outcome", "closed_by",
                                      "snoozed_until", "snooze_cases", "snooze_reason")},
        "cases": [WarningCaseRead(
            id=c.id, case_no=c.case_no, status=c.status, category=c.category, enterprise=c.enterprise,
            district=c.district, workers=c.workers, amount=c.amount, group_case=c.group_case,
            created_at=c.accepted_at or c.created_at, recording_id=c.recording_id, evidence=c.extracted or {},
            summary=c.summary) for c in cases],
        "timeline": [TimelineEvent(at=e.at, actor=e.actor, action=e.action, label=LABELS.get(e.action, e.action),
                                   details=e.details or {}) for e in events if e.action != "warning.read"],
        "next_statuses": workflow.next_statuses(w),
    })


@router.get("/warnings/{warning_id}")
def read_warning(warning_id: int, db: DbSession, user: Reader) -> WarningRead:
    """One warning with the cases behind it (their evidence: what was said, when, by whom) and its timeline.
    Audited (``warning.read``) as a read of those cases."""
    w = _warning(db, warning_id)
    read = _read(db, w)
    audit.record(db=db, actor=_actor(user), action="warning.read", subject_type="warning", subject_id=w.id,
                 details={"cases": read.case_ids})
    return read


@contextmanager
def _workflow_errors() -> Iterator[None]:
    try:
        yield
    except workflow.InvalidTransition as e:
        raise ApiError(409, "invalid_transition", str(e), allowed=[s.value for s in e.allowed]) from e
    except workflow.InvalidInput as e:
        raise ApiError(422, "invalid", str(e)) from e


@router.post("/warnings/{warning_id}/transitions")
def move_warning(warning_id: int, body: WarningTransitionIn, db: DbSession, user: Handler) -> WarningRead:
    """签收, 核实 (with a verdict), 联动处置 (with an action), 办结 (with the outcome); 409 lists the allowed moves."""
    w = _warning(db, warning_id, lock=True)
    with _workflow_errors():
        workflow.transition(db=db, warning=w, move=body, actor=_actor(user))
    if w.enterprise_id is not None:
        service.rescore_enterprises(db=db, enterprise_ids={w.enterprise_id})
    return _read(db, w)


@router.post("/warnings/{warning_id}/snooze")
def snooze_warning(warning_id: int, body: SnoozeIn, db: DbSession, user: Handler) -> WarningRead:
    """暂缓 until a date or until N more cases (whichever first), with a reason."""
    w = _warning(db, warning_id, lock=True)
    with _workflow_errors():
        workflow.snooze(db=db, warning=w, data=body, actor=_actor(user))
    return _read(db, w)


@router.delete("/warnings/{warning_id}/snooze")
def unsnooze_warning(warning_id: int, db: DbSession, user: Handler) -> WarningRead:
    w = _warning(db, warning_id, lock=True)
    workflow.unsnooze(db=db, warning=w, actor=_actor(user))
    return _read(db, w)


@router.post("/warnings/evaluate")
def evaluate(db: DbSession, user: Admin, settings: AppSettings) -> EvaluationRead:
    """Replay every case through the active rules (after the rules changed); idempotent."""
    result = service.evaluate_all(db=db, settings=settings, actor=_actor(user))
    audit.record(db=db, actor=_actor(user), action="warning.evaluated", subject_type="warning", subject_id="-",
                 details=result.as_dict())
    return EvaluationRead.model_validate(result.as_dict())


# --- rules ---------------------------------------------------------------------------------------------------

@contextmanager
def _rule_errors() -> Iterator[None]:
    try:
        yield
    except service.RuleError as e:
        raise ApiError(e.status, e.code, e.message) from e


@router.get("/warning-rules")
def list_rules(db: DbSession, _user: Reader) -> list[RuleRead]:
    return [RuleRead.model_validate(r) for r in service.list_rules(db=db)]


@router.post("/warning-rules", status_code=201)
def create_rule(body: RuleIn, db: DbSession, user: Admin) -> RuleRead:
    with _rule_errors():
        return RuleRead.model_validate(service.create_rule(db=db, data=body, actor=_actor(user)))


@router.put("/warning-rules/{rule_id}")
def update_rule(rule_id: int, body: RuleIn, db: DbSession, user: Admin) -> RuleRead:
    """Replace a rule (its version goes up); run 重新评估 to apply it to the cases on file."""
    with _rule_errors():
        return RuleRead.model_validate(service.update_rule(db=db, rule_id=rule_id, data=body, actor=_actor(user)))
