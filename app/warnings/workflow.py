"""A warning's closed loop: 待签收 → 已签收 (签收) → 已核实 (核实: 属实/误报/信息不足) → 处置中 (联动处置, once
or more) → 办结 (with the outcome), every step audited; 暂缓 (snooze) until a date or N more cases, with a
reason; and escalation when nobody signs for a warning by its grade's deadline.

A false alarm (误报) or a warning without enough to go on (信息不足) may be closed straight after 核实; a true
one (属实) is closed only after something was done about it. 办结 frees the key: the next cluster on it raises
a new warning (and, within the rule's ``repeat_days``, a red one: it happened again).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.config import Settings
from app.db import as_utc, utcnow
from app.notifications.models import NotificationKind
from app.warnings import notify
from app.warnings.models import EarlyWarning, SnoozeIn, Verdict, WarningCase, WarningStatus, WarningTransitionIn

S = WarningStatus


class InvalidTransition(Exception):
    """The move is not allowed from where the warning stands (HTTP 409 with the allowed moves)."""

    def __init__(self, message: str, allowed: list[WarningStatus]) -> None:
        super().__init__(message)
        self.allowed = allowed


class InvalidInput(ValueError):
    """Something the move needs is missing or wrong (HTTP 422); the message is for people."""


def next_statuses(w: EarlyWarning) -> list[WarningStatus]:
    """Where the warning may go from here."""
    status = S(w.status)
    if status is S.new:
        return [S.signed]
    if status is S.signed:
        return [S.verified]
    if status is S.verified:
        return [S.acting] if w.verdict == Verdict.true else [S.closed]
    if status is S.acting:
        return [S.acting, S.closed]
    return []


def _refuse(w: EarlyWarning, to: WarningStatus) -> InvalidTransition:
    allowed = next_statuses(w)
    if not allowed:
        return InvalidTransition("预警已办结，不能再变更状态", allowed)
    names = "、".join(f"「{s.value}」" for s in allowed)
    extra = "（核实为属实的预警须先联动处置）" if w.status == S.verified and to is S.closed else ""
    return InvalidTransition(f"预警状态为「{w.status}」，不能直接「{to.value}」{extra}（可转为：{names}）", allowed)


def transition(*, db: Session, warning: EarlyWarning, move: WarningTransitionIn, actor: str,
               now: datetime | None = None) -> EarlyWarning:
    """Apply one move, checked against ``next_statuses``, and audit it."""
    now = now or utcnow()
    if move.to not in next_statuses(warning):
        raise _refuse(warning, move.to)
    note = (move.note or "").strip()
    who = actor.removeprefix("user:")  # people are kept by username, as on cases; the audit has the actor
    before = warning.status
    details: dict[str, object] = {"from": before, "to": move.to.value, "note": note}
    if move.to is S.signed:
        warning.signed_by, warning.signed_at = who, now
    elif move.to is S.verified:
        if move.verdict is None:
            raise InvalidInput("核实须选择结论：属实、误报或信息不足")
        warning.verdict, warning.verified_by, warning.verified_at = move.verdict.value, who, now
        details["verdict"] = move.verdict.value
    elif move.to is S.acting:
        if move.action is None:
            raise InvalidInput("联动处置须选择处置方式")
        entry = {"action": move.action.value, "note": note, "by": who, "at": now.isoformat()}
        warning.actions = [*warning.actions, entry]
        details["action"] = move.action.value
    else:
        if warning.verdict == Verdict.true and not note and move.amount_recovered is None \
                and move.workers_covered is None:
            raise InvalidInput("办结须填写处置结果（追回金额、惠及职工或办结说明）")
        warning.closed_by, warning.closed_at, warning.open_key = who, now, None
        warning.amount_recovered, warning.workers_covered = move.amount_recovered, move.workers_covered
        warning.outcome = note or None
        warning.snoozed_until = warning.snooze_cases = None
        details.update(amount_recovered=move.amount_recovered, workers_covered=move.workers_covered)
    warning.status = move.to.value
    warning.updated_at = now
    db.flush()
    audit.record(db=db, actor=actor, action=f"warning.{_ACTION[move.to]}", subject_type="warning",
                 subject_id=warning.id, details=details)
    if move.to is S.closed:
        from app.warnings import service

        service.inhibit(db=db, warnings=[warning])  # what it covered is shown again
    return warning


_ACTION = {S.signed: "signed", S.verified: "verified", S.acting: "action", S.closed: "closed", S.new: "raised"}


def case_count(db: Session, w: EarlyWarning) -> int:
    return db.execute(sa.select(sa.func.count()).where(WarningCase.warning_id == w.id)).scalar_one()


def snooze(*, db: Session, warning: EarlyWarning, data: SnoozeIn, actor: str, now: datetime | None = None) \
        -> EarlyWarning:
    """暂缓: not escalated and not listed as new until ``until`` or until ``more_cases`` more cases attach."""
    now = now or utcnow()
    if warning.status == S.closed:
        raise _refuse(warning, S.closed)
    if data.until is None and data.more_cases is None:
        raise InvalidInput("暂缓须指定截止时间或新增案件数")
    if data.until is not None and as_utc(data.until) <= now:
        raise InvalidInput("暂缓截止时间须晚于当前时间")
    reason = data.reason.strip()
    if not reason:
        raise InvalidInput("暂缓须填写理由")
    cases = case_count(db, warning)
    warning.snoozed_until = as_utc(data.until) if data.until else None
    warning.snooze_cases = cases + data.more_cases if data.more_cases else None
    warning.snooze_reason = reason
    audit.record(db=db, actor=actor, action="warning.snoozed", subject_type="warning", subject_id=warning.id,
                 details={"until": data.until.isoformat() if data.until else None, "more_cases": data.more_cases,
                          "cases_now": cases, "reason": reason})
    return warning


def unsnooze(*, db: Session, warning: EarlyWarning, actor: str) -> EarlyWarning:
    if warning.snoozed_until is not None or warning.snooze_cases is not None:
        warning.snoozed_until = warning.snooze_cases = None
        audit.record(db=db, actor=actor, action="warning.woken", subject_type="warning", subject_id=warning.id,
                     details={"why": "取消暂缓"})
    return warning


def snoozed(w: EarlyWarning) -> bool:
    return w.snoozed_until is not None or w.snooze_cases is not None


@dataclass
class SweepResult:
    escalated: int = 0
    woken: int = 0


def sweep(*, db: Session, settings: Settings, now: datetime | None = None) -> SweepResult:
    """Wake snoozes that ran out; escalate warnings nobody signed for: after the deadline managers and admins
    are told (level 1); after as long again, told again (level 2). Each level once."""
    now = as_utc(now or utcnow())
    result = SweepResult()
    ran_out = db.execute(sa.select(EarlyWarning).where(EarlyWarning.snoozed_until.is_not(None),
                                                       EarlyWarning.snoozed_until <= now)).scalars()
    for w in ran_out:
        w.snoozed_until = w.snooze_cases = None
        audit.record(db=db, actor="system:warnings", action="warning.woken", subject_type="warning",
                     subject_id=w.id, details={"why": "暂缓到期"})
        result.woken += 1
    due = db.execute(sa.select(EarlyWarning).where(
        EarlyWarning.status == S.new.value, EarlyWarning.sign_due_at <= now, EarlyWarning.escalation_level < 2,
        EarlyWarning.snoozed_until.is_(None), EarlyWarning.snooze_cases.is_(None))).scalars()
    for w in due:
        hours = timedelta(hours=settings.warning_sign_hours.get(w.grade, 24))
        level = 2 if now >= as_utc(w.sign_due_at) + hours else 1
        if level <= w.escalation_level:
            continue
        w.escalation_level, w.escalated_at = level, now
        kind = NotificationKind.warning_unsigned if level == 1 else NotificationKind.warning_unsigned_2
        told = notify.managers(db=db, warning=w, kind=kind, now=now, admins=True)
        audit.record(db=db, actor="system:warnings", action="warning.escalated", subject_type="warning",
                     subject_id=w.id, details={"level": level, "sign_due_at": as_utc(w.sign_due_at).isoformat(),
                                               "notified": told})
        result.escalated += 1
    db.flush()
    return result
