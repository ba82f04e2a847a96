"""The case workflow (受理 → 转办 → 办理 → 回访 → 办结, 督办 beside it) and its SLA clocks.

Every move is checked against the one transition table below and audited. The clocks start at 受理
(``accepted_at``): first feedback to the caller is due ``feedback_hours`` later, completion ``days`` later by
difficulty (一般/疑难/特别复杂, calendar days, HOTLINE_SLA_DAYS). A case counts as overdue once its deadline
passed before it was closed (so a case closed late stays 超期), and as due soon while open within
``due_soon_hours`` of the deadline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.orm import Session

from app.audit import service as audit
from app.cases.models import Case, CaseStatus, SlaRead
from app.config import Settings
from app.db import as_utc, utcnow
from app.search import service as search
from app.users import service as users

S = CaseStatus


class Difficulty(StrEnum):
    ordinary = "一般"
    difficult = "疑难"
    complex = "特别复杂"


DEFAULT_SLA_DAYS: Mapping[str, int] = {Difficulty.ordinary: 5, Difficulty.difficult: 15, Difficulty.complex: 30}

# Where a case may go from each status. Besides the forward path: 转办 → 转办 hands it to another unit,
# 转办 → 受理 is the unit sending it back (退回), 办理 → 转办 reassigns it, 回访 → 办理 reopens it when the caller
# is not satisfied. 受理 → 办理: the hotline handles it itself (e.g. a labour-law question). 办结 is final.
TRANSITIONS: Mapping[CaseStatus, frozenset[CaseStatus]] = {
    S.accepted: frozenset({S.assigned, S.handling}),
    S.assigned: frozenset({S.assigned, S.handling, S.accepted}),
    S.handling: frozenset({S.assigned, S.follow_up}),
    S.follow_up: frozenset({S.handling, S.closed}),
    S.closed: frozenset(),
}
OPEN = tuple(s for s in CaseStatus if s is not S.closed)


class InvalidTransition(Exception):
    """The move is not allowed from where the case stands (HTTP 409 invalid_transition)."""


class InvalidCaseInput(ValueError):
    """A value staff entered is not acceptable (HTTP 422); the message is for people."""


@dataclass(frozen=True)
class SlaPolicy:
    feedback_hours: int = 24
    days: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_SLA_DAYS))
    due_soon_hours: int = 24
    feedback_due_soon_hours: int = 4

    @classmethod
    def from_settings(cls, settings: Settings) -> SlaPolicy:
        return cls(feedback_hours=settings.sla_feedback_hours, days=dict(settings.sla_days),
                   due_soon_hours=settings.sla_due_soon_hours,
                   feedback_due_soon_hours=settings.sla_feedback_due_soon_hours)

    def completion_time(self, difficulty: str) -> timedelta:
        return timedelta(days=self.days.get(difficulty, self.days[Difficulty.ordinary]))


@dataclass(frozen=True)
class Clocks:
    accepted_at: datetime
    feedback_due_at: datetime
    due_at: datetime


def clocks(case: Case, policy: SlaPolicy) -> Clocks:
    """The case's deadlines: as stored, or as they follow from 受理 where not stored yet."""
    accepted = as_utc(case.accepted_at or case.created_at or utcnow())
    feedback_due = case.feedback_due_at or accepted + timedelta(hours=policy.feedback_hours)
    due = case.due_at or accepted + policy.completion_time(case.difficulty or Difficulty.ordinary)
    return Clocks(accepted, as_utc(feedback_due), as_utc(due))


def start_clocks(case: Case, policy: SlaPolicy) -> bool:
    """Store whichever of accepted_at / feedback_due_at / due_at is missing; True if any was."""
    c = clocks(case, policy)
    missing = case.accepted_at is None or case.feedback_due_at is None or case.due_at is None
    case.accepted_at, case.feedback_due_at, case.due_at = c.accepted_at, c.feedback_due_at, c.due_at
    return missing


def _past(deadline: datetime, done_at: datetime | None, now: datetime) -> bool:
    return as_utc(done_at or now) > deadline


def sla_state(case: Case, policy: SlaPolicy, now: datetime | None = None) -> SlaRead:
    now = as_utc(now or utcnow())
    c = clocks(case, policy)
    overdue = _past(c.due_at, case.closed_at, now)
    return SlaRead(
        feedback_due_at=c.feedback_due_at,
        feedback_overdue=_past(c.feedback_due_at, case.first_feedback_at, now),
        due_at=c.due_at,
        overdue=overdue,
        due_soon=case.closed_at is None and not overdue
        and c.due_at - now <= timedelta(hours=policy.due_soon_hours),
    )


def _label(status: str) -> str:
    return f"「{status}」"


def check_transition(case: Case, to: str) -> CaseStatus:
    """The target status if the case may move there now; InvalidTransition saying why otherwise."""
    try:
        target = CaseStatus(to)
    except ValueError:
        names = "、".join(s.value for s in CaseStatus)
        raise InvalidTransition(f"没有「{to}」这个状态（可选：{names}）") from None
    current = CaseStatus(case.status)
    if current is S.closed:
        raise InvalidTransition("工单已办结，不能再变更状态")
    if target not in TRANSITIONS[current]:
        allowed = "、".join(_label(s) for s in CaseStatus if s in TRANSITIONS[current])
        raise InvalidTransition(f"工单状态为{_label(current)}，不能直接{_label(target)}（可转为：{allowed}）")
    if target is S.closed and case.first_feedback_at is None:
        raise InvalidTransition("办结前须先向来电人首次反馈：本工单尚未记录首次反馈")
    return target


def _clean(value: str | None, what: str, limit: int) -> str | None:
    value = (value or "").strip() or None
    if value is not None and len(value) > limit:
        raise InvalidCaseInput(f"{what}不能超过{limit}个字")
    return value


def transition(*, db: Session, case: Case, actor: str, to: str, unit: str | None = None,
               assignee: str | None = None, note: str | None = None, policy: SlaPolicy,
               now: datetime | None = None, taken_by: str | None = None) -> Case:
    """Move the case to ``to`` (checked against TRANSITIONS), handing it to a unit and/or person on 转办.
    A case the hotline handles itself (受理 → 办理) with nobody named is taken by ``taken_by`` (the user
    moving it): it is theirs from then on (app/cases/access.py)."""
    now = now or utcnow()
    target = check_transition(case, to)
    unit, assignee = _clean(unit, "承办单位", 64), _clean(assignee, "承办人", 64)
    if assignee is not None:
        person = users.get_by_name(db=db, username=assignee)
        if person is None or not person.active:
            raise InvalidCaseInput(f"承办人「{assignee}」不存在或已停用")
    if target is S.assigned and unit is None and assignee is None:
        raise InvalidCaseInput("转办须指定承办单位或承办人")
    before, unit_before = case.status, case.unit
    start_clocks(case, policy)
    if target is S.accepted:  # sent back by the unit: it is the hotline's again
        case.unit, case.assignee = None, None
    if target is S.assigned and unit is not None:  # a new unit: its person is named with it, or later
        case.unit, case.assignee = unit, assignee
    elif assignee is not None:
        case.assignee = assignee
    elif target is S.handling and before == S.accepted and not case.unit and not case.assignee and taken_by:
        case.assignee = taken_by
    if target is S.closed:
        case.closed_at = now
    case.status = target.value
    if case.unit != unit_before:  # the unit is a searched field
        search.index_case(db=db, case=case)
    audit.record(db=db, actor=actor, action="case.transition", subject_type="case", subject_id=case.id, details={
        "from": before, "to": target.value, "unit": case.unit, "assignee": case.assignee, "note": note or ""})
    return case


def feedback(*, db: Session, case: Case, actor: str, note: str, now: datetime | None = None) -> Case:
    """Record feedback to the caller; the first one stops the first-feedback clock."""
    now = now or utcnow()
    note = note.strip()
    if not note:
        raise InvalidCaseInput("请填写反馈内容")
    if case.status == S.closed:
        raise InvalidTransition("工单已办结，不能再记录反馈")
    first = case.first_feedback_at is None
    if first:
        case.first_feedback_at = now
    audit.record(db=db, actor=actor, action="case.feedback", subject_type="case", subject_id=case.id,
                 details={"note": note, "first": first, "status": case.status})
    return case


def escalate(*, db: Session, case: Case, actor: str, note: str, now: datetime | None = None) -> Case:
    """督办: flag the case (allowed in any open status); escalating again is recorded again."""
    now = now or utcnow()
    note = note.strip()
    if not note:
        raise InvalidCaseInput("请填写督办意见")
    if case.status == S.closed:
        raise InvalidTransition("工单已办结，不能督办")
    again = case.escalated
    case.escalated = True
    case.escalated_at = now
    audit.record(db=db, actor=actor, action="case.escalated", subject_type="case", subject_id=case.id,
                 details={"note": note, "status": case.status, "again": again})
    return case
