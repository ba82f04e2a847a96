"""Notifications: SLA reminders and case events for the people who have to act, in the app and by webhook.

``sla_sweep`` (every minute in the worker, and `hotline sla sweep`) creates the reminders that are due, once per
case and kind: first feedback due soon / overdue, completion due soon / overdue, 督办, assignment. Each goes to
the person responsible (the assignee, or else the staff member who created or uploaded the case) and to the
managers — the assignment only to the assignee. ``deliver`` then POSTs each new notification as JSON to
HOTLINE_SLA_WEBHOOK_URL (an SMS gateway, say); a failed POST is logged and tried again at the next sweep.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.cases import workflow
from app.cases.models import Case
from app.config import Settings
from app.db import Database, as_utc, utcnow
from app.notifications.models import Notification, NotificationKind, NotificationRead
from app.recordings.models import Recording
from app.users.models import Role, User

log = logging.getLogger(__name__)
K = NotificationKind
LOCAL_TZ = ZoneInfo("Asia/Shanghai")
CLAIM_S = 120  # a sweep that claimed a delivery and died: another sweep takes it over after this long
MAX_AGE = timedelta(days=3)  # older undelivered notifications are not sent any more (e.g. webhook set up late)
BATCH = 500


def local_time(at: datetime | None) -> str:
    return as_utc(at).astimezone(LOCAL_TZ).strftime("%m月%d日 %H:%M") if at else "—"


def message(case: Case, kind: NotificationKind) -> str:
    """What the notification says, in words for the people who get it."""
    about = f"工单 {case.case_no}（{case.category}{'，' + case.enterprise if case.enterprise else ''}）"
    texts: dict[NotificationKind, Callable[[], str]] = {
        K.feedback_due_soon: lambda: f"{about}须于 {local_time(case.feedback_due_at)} 前首次反馈来电人",
        K.feedback_overdue: lambda: f"{about}首次反馈已超时（应于 {local_time(case.feedback_due_at)} 前）",
        K.due_soon: lambda: f"{about}将于 {local_time(case.due_at)} 到期，请尽快办结",
        K.overdue: lambda: f"{about}已超期（办结时限 {local_time(case.due_at)}）",
        K.escalated: lambda: f"{about}已被督办，请优先办理",
        K.assigned: lambda: f"{about}已转交您办理（{case.unit or '未指定单位'}），办结时限 {local_time(case.due_at)}",
    }
    return texts[kind]()


def _username(actor: str | None) -> str | None:
    """The staff username behind an actor as stored (``user:NAME``); workers and the system are nobody."""
    if actor and actor.startswith("user:"):
        return actor.removeprefix("user:")
    return None


@dataclass(frozen=True)
class Staff:
    """Who can be told: active usernames and the managers among them (read once per sweep)."""

    active: frozenset[str]
    managers: tuple[str, ...]

    @classmethod
    def load(cls, db: Session) -> Staff:
        rows = db.execute(sa.select(User.username, User.role).where(User.active).order_by(User.id)).all()
        return cls(frozenset(r.username for r in rows),
                   tuple(r.username for r in rows if r.role == Role.manager.value))


def recipients(*, db: Session, case: Case, kind: NotificationKind, staff: Staff | None = None) -> list[str]:
    """Active users to tell: the responsible person, and managers (except for an assignment)."""
    staff = staff or Staff.load(db)
    if kind is K.assigned:
        names = [case.assignee] if case.assignee else []
    else:
        responsible = case.assignee or _username(case.created_by)
        if responsible is None:
            uploaded = db.execute(sa.select(Recording.uploaded_by).where(Recording.id == case.recording_id))
            responsible = _username(uploaded.scalar_one_or_none())
        names = [n for n in (responsible, *staff.managers) if n]
    return [n for n in dict.fromkeys(names) if n in staff.active]


def notify(*, db: Session, case: Case, kind: NotificationKind, now: datetime | None = None,
           staff: Staff | None = None) -> list[Notification]:
    """Tell the recipients about ``case``; a user already told of this kind for this case is skipped."""
    now = now or utcnow()
    told = set(db.execute(sa.select(Notification.username).where(
        Notification.case_id == case.id, Notification.kind == kind.value)).scalars())
    made = []
    for name in recipients(db=db, case=case, kind=kind, staff=staff):
        if name in told:
            continue
        note = Notification(username=name, case_id=case.id, kind=kind.value, message=message(case, kind),
                            created_at=now)
        try:
            with db.begin_nested():  # a sweep running beside us made the same one: theirs stands
                db.add(note)
        except IntegrityError:
            continue
        made.append(note)
    return made


def _open() -> sa.ColumnElement[bool]:
    return Case.status.in_([s.value for s in workflow.OPEN])


def _not_told(kind: NotificationKind, username: Any = None) -> sa.ColumnElement[bool]:
    cond = sa.and_(Notification.case_id == Case.id, Notification.kind == kind.value)
    if username is not None:
        cond = sa.and_(cond, Notification.username == username)
    return ~sa.exists().where(cond)


def _due(now: datetime, policy: workflow.SlaPolicy) -> dict[NotificationKind, sa.ColumnElement[bool]]:
    """For each kind, the open cases that call for it now (SQL on the stored clocks)."""
    no_feedback = Case.first_feedback_at.is_(None)
    soon = now + timedelta(hours=policy.due_soon_hours)
    feedback_soon = now + timedelta(hours=policy.feedback_due_soon_hours)
    once = {  # once per case and kind
        K.feedback_due_soon: sa.and_(no_feedback, Case.feedback_due_at > now, Case.feedback_due_at <= feedback_soon),
        K.feedback_overdue: sa.and_(no_feedback, Case.feedback_due_at < now),
        K.due_soon: sa.and_(Case.due_at > now, Case.due_at <= soon),
        K.overdue: Case.due_at < now,
        K.escalated: Case.escalated.is_(True),
    }
    due = {kind: sa.and_(cond, _not_told(kind)) for kind, cond in once.items()}
    # once per assignee: handed to someone else, the new person is told too
    due[K.assigned] = sa.and_(Case.assignee.is_not(None), _not_told(K.assigned, Case.assignee))
    return due


@dataclass
class SweepResult:
    clocks_started: int = 0
    created: dict[str, int] = field(default_factory=dict)  # notifications made, per kind

    @property
    def total(self) -> int:
        return sum(self.created.values())


def start_missing_clocks(*, db: Session, policy: workflow.SlaPolicy) -> int:
    """Open cases filed without stored deadlines get them (from 受理) so the clocks can be queried."""
    n = 0
    while True:
        batch = db.execute(sa.select(Case).where(_open(), sa.or_(
            Case.accepted_at.is_(None), Case.feedback_due_at.is_(None), Case.due_at.is_(None))).limit(BATCH))
        cases = list(batch.scalars())
        for case in cases:
            workflow.start_clocks(case, policy)
        db.flush()
        n += len(cases)
        if len(cases) < BATCH:
            return n


def sla_sweep(*, db: Session, now: datetime, policy: workflow.SlaPolicy | None = None) -> SweepResult:
    """Create every reminder that is due at ``now`` and not yet made (idempotent: run it as often as you like)."""
    policy = policy or workflow.SlaPolicy()
    now = as_utc(now)
    result = SweepResult(clocks_started=start_missing_clocks(db=db, policy=policy))
    staff = Staff.load(db)
    for kind, due in _due(now, policy).items():
        cases = db.execute(sa.select(Case).where(_open(), due).order_by(Case.id)).scalars().all()
        for start in range(0, len(cases), BATCH):
            made = _made_together(db, cases[start:start + BATCH], kind, now, staff)
            if made:
                result.created[kind.value] = result.created.get(kind.value, 0) + made
    return result


def _made_together(db: Session, cases: Sequence[Case], kind: NotificationKind, now: datetime, staff: Staff) -> int:
    """Notifications for a batch of cases in one insert; if a sweep beside us got to some first, case by case."""
    notes = [Notification(username=name, case_id=case.id, kind=kind.value, message=message(case, kind),
                          created_at=now)
             for case in cases for name in recipients(db=db, case=case, kind=kind, staff=staff)]
    try:
        with db.begin_nested():
            db.add_all(notes)
        return len(notes)
    except IntegrityError:
        return sum(len(notify(db=db, case=case, kind=kind, now=now, staff=staff)) for case in cases)


# --- webhook delivery ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outgoing:
    id: int
    payload: dict[str, Any]


@dataclass
class DeliveryResult:
    delivered: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def claim_pending(*, db: Session, now: datetime, limit: int = BATCH) -> list[Outgoing]:
    """Take undelivered notifications for this sweep (others skip them for CLAIM_S) with what to send."""
    from app.warnings.models import EarlyWarning  # warnings build on notifications, not the other way round

    rows = db.execute(
        sa.select(Notification, Case, EarlyWarning).outerjoin(Case, Case.id == Notification.case_id)
        .outerjoin(EarlyWarning, EarlyWarning.id == Notification.warning_id)
        .where(Notification.delivered_at.is_(None), Notification.created_at >= now - MAX_AGE,
               sa.or_(Notification.next_attempt_at.is_(None), Notification.next_attempt_at <= now))
        .order_by(Notification.id).limit(limit).with_for_update(skip_locked=True, of=Notification)
    ).all()
    out = []
    for note, case, warning in rows:
        note.next_attempt_at = now + timedelta(seconds=CLAIM_S)
        payload: dict[str, Any] = {
            "id": note.id, "kind": note.kind, "username": note.username, "message": note.message,
            "created_at": as_utc(note.created_at).isoformat()}
        if case is not None:
            payload.update({
                "case_id": case.id, "case_no": case.case_no, "category": case.category, "status": case.status,
                "unit": case.unit, "assignee": case.assignee,
                "due_at": as_utc(case.due_at).isoformat() if case.due_at else None})
        if warning is not None:
            payload.update({
                "warning_id": warning.id, "grade": warning.grade, "subject": warning.subject,
                "status": warning.status, "reason": warning.reason,
                "sign_due_at": as_utc(warning.sign_due_at).isoformat()})
        out.append(Outgoing(note.id, payload))
    db.flush()
    return out


def post(*, url: str, payload: dict[str, Any], timeout: float) -> None:
    """POST one notification as JSON; any non-2xx answer is a failure."""
    r = httpx.post(url, json=payload, timeout=timeout)
    r.raise_for_status()


def record_outcome(*, db: Session, notification_id: int, error: str | None, now: datetime) -> None:
    note = db.get(Notification, notification_id)
    if note is None:
        return
    note.attempts += 1
    if error is None:
        note.delivered_at, note.last_error, note.next_attempt_at = now, None, None
    else:
        note.last_error, note.next_attempt_at = error[:1000], None  # next sweep tries again


def deliver(*, database: Database, url: str, timeout: float, now: datetime | None = None) -> DeliveryResult:
    """Send pending notifications to the webhook; no HTTP request is made inside a database transaction."""
    now = now or utcnow()
    with database.session() as db:
        outgoing = claim_pending(db=db, now=now)
    result = DeliveryResult()
    outcomes: list[tuple[int, str | None]] = []
    for item in outgoing:
        try:
            post(url=url, payload=item.payload, timeout=timeout)
        except (httpx.HTTPError, OSError) as e:
            error = f"{type(e).__name__}: {e}"
            result.failed += 1
            result.errors.append(error)
            outcomes.append((item.id, error))
            continue
        result.delivered += 1
        outcomes.append((item.id, None))
    if outcomes:
        with database.session() as db:
            for notification_id, failure in outcomes:
                record_outcome(db=db, notification_id=notification_id, error=failure, now=utcnow())
    if result.failed:
        log.warning("SLA webhook: %d of %d notification(s) not delivered, retried at the next sweep; first: %s",
                    result.failed, len(outgoing), result.errors[0])
    return result


@dataclass(frozen=True)
class SweepReport:
    sweep: SweepResult
    delivery: DeliveryResult | None


def run_sweep(*, database: Database, settings: Settings, now: datetime | None = None) -> SweepReport:
    """The periodic job: make the due reminders (one transaction), then deliver them to the webhook if set.
    Never raises for a webhook problem; a database problem is logged and raised for the job runner."""
    now = now or utcnow()
    with database.session() as db:
        swept = sla_sweep(db=db, now=now, policy=workflow.SlaPolicy.from_settings(settings))
    if swept.total:
        log.info("SLA sweep: %d notification(s) %s", swept.total, swept.created)
    delivery = None
    if settings.sla_webhook_url:
        delivery = deliver(database=database, url=settings.sla_webhook_url,
                           timeout=settings.sla_webhook_timeout_s, now=now)
    return SweepReport(swept, delivery)


# --- reading -------------------------------------------------------------------------------------------------

def for_user(*, db: Session, username: str, unread_only: bool = False, limit: int = 50,
             offset: int = 0) -> tuple[int, int, list[NotificationRead]]:
    """(unread count, total, page) of a user's notifications, newest first."""
    mine = Notification.username == username
    unread = db.execute(sa.select(sa.func.count()).where(mine, Notification.read_at.is_(None))).scalar_one()
    stmt = sa.select(Notification, Case.case_no).outerjoin(Case, Case.id == Notification.case_id).where(mine)
    if unread_only:
        stmt = stmt.where(Notification.read_at.is_(None))
    total = db.execute(sa.select(sa.func.count()).select_from(stmt.subquery())).scalar_one()
    rows = db.execute(stmt.order_by(Notification.created_at.desc(), Notification.id.desc())
                      .limit(limit).offset(offset)).all()
    return unread, total, [read_model(note, case_no) for note, case_no in rows]


def read_model(note: Notification, case_no: str | None) -> NotificationRead:
    return NotificationRead.model_validate({
        "id": note.id, "case_id": note.case_id, "case_no": case_no, "warning_id": note.warning_id, "kind": note.kind,
        "message": note.message, "created_at": note.created_at, "read_at": note.read_at})


def mark_read(*, db: Session, username: str, notification_id: int, now: datetime | None = None) -> \
        NotificationRead | None:
    """Mark one of the user's notifications read (again: no change); None if it is not theirs."""
    row = db.execute(sa.select(Notification, Case.case_no).outerjoin(Case, Case.id == Notification.case_id).where(
        Notification.id == notification_id, Notification.username == username)).first()
    if row is None:
        return None
    note, case_no = row
    if note.read_at is None:
        note.read_at = now or utcnow()
        db.flush()
    return read_model(note, case_no)
