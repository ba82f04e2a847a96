"""Clues (线索): register (form or XLSX import, all rows or none), change, link to an enterprise and to cases,
move along the verification workflow — every change audited like a case's.

Workflow (``TRANSITIONS``)::

    核实中 → 属实 | 不属实
    属实   → 转为工单 | 结案
    不属实 → 结案 | 核实中 (重新核实: new facts came to light)
    转为工单 → 结案 (the case it became was handled; 追回金额 recorded here)
    结案 is final (only 追回金额 may still be corrected: money often arrives after closing)

转为工单: there is no API to open a case by hand yet, so this move *links existing cases* whose ids the user
gives (``case_ids``, checked to exist), or, without ids, records the status only; cases can be linked later
with PATCH ``case_ids``.

倒排工期 (deadlines counted back): each clue has a promised completion date (承诺办结日期, a Beijing calendar
day; 15 days after receipt unless given) and a 核实 deadline ``verify_lead_days`` before it (10 by default,
settable per clue, or set as the date itself), never before the day the clue arrived. A clue is *overdue*
when it is open past its promised date, was closed after it, or is still 核实中 past its 核实 deadline.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.cases.models import Case, Counter
from app.clues.models import (
    ARREARS,
    Clue,
    ClueCase,
    ClueCaseRead,
    ClueCreate,
    ClueImportResult,
    ClueListItem,
    ClueRead,
    ClueSource,
    ClueStatus,
    ClueUpdate,
)
from app.db import as_utc, utcnow
from app.enterprises import service as enterprises
from app.enterprises.models import Enterprise, EnterpriseAlias, ImportRowError
from app.taxonomy import service as taxonomy

LOCAL_TZ = ZoneInfo("Asia/Shanghai")  # deadlines and dates people type are Beijing calendar days
NUMBER_PREFIX = "XS"
DEFAULT_PROMISE_DAYS = 15  # 承诺办结: this many days after the clue was received, unless given
DEFAULT_VERIFY_LEAD_DAYS = 10  # 核实 due this many days before the promised date, unless given

S = ClueStatus
TRANSITIONS: dict[ClueStatus, tuple[ClueStatus, ...]] = {
    S.verifying: (S.confirmed, S.unfounded),
    S.confirmed: (S.to_case, S.closed),
    S.unfounded: (S.closed, S.verifying),
    S.to_case: (S.closed,),
    S.closed: (),
}
OPEN = tuple(s for s in ClueStatus if s is not S.closed)


class ClueError(Exception):
    """A refused request: HTTP status, a stable code, a message for people, and extra fields (``allowed``)."""

    def __init__(self, status: int, code: str, message: str, **extra: object) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def invalid(message: str, name: str | None = None) -> ClueError:
    """422: a value staff entered is not acceptable; ``field`` names it (as in the API)."""
    return ClueError(422, "invalid", message, field=name)


@dataclass
class ImportFailed(Exception):
    """The file was refused as a whole: every bad row, nothing written."""

    errors: list[ImportRowError]
    rows: int = 0

    def __str__(self) -> str:
        return f"导入失败：{len(self.errors)} 处错误，未导入任何线索"


# --- time --------------------------------------------------------------------------------------------------


def local_day(at: datetime) -> date:
    """The Beijing calendar day of an instant."""
    return as_utc(at).astimezone(LOCAL_TZ).date()


def day_start(day: date) -> datetime:
    """The first instant (UTC) of a Beijing calendar day."""
    return datetime.combine(day, time(0), LOCAL_TZ).astimezone(UTC)


def day_end(day: date) -> datetime:
    """The instant (UTC) a Beijing calendar day ends: a deadline on ``day`` is met until then."""
    return day_start(day + timedelta(days=1))


def _local_instant(value: datetime) -> datetime:
    """A datetime people typed: naive ones are Beijing time."""
    return value.replace(tzinfo=LOCAL_TZ).astimezone(UTC) if value.tzinfo is None else as_utc(value)


# --- numbers -----------------------------------------------------------------------------------------------


def take_numbers(*, db: Session, name: str, count: int) -> int:
    """Take ``count`` consecutive values of a named counter at once (gap-free, like cases' next_number);
    returns the first. Row lock on PostgreSQL; SQLite holds the write lock for the whole transaction."""
    bump = sa.update(Counter).where(Counter.name == name).values(value=Counter.value + count).returning(Counter.value)
    value = db.execute(bump).scalar_one_or_none()
    if value is None:
        try:
            with db.begin_nested():
                db.add(Counter(name=name, value=count))
            value = count
        except IntegrityError:  # another transaction created it first
            value = db.execute(bump).scalar_one()
    return int(value) - count + 1


def _numbers(db: Session, count: int, now: datetime) -> list[str]:
    year = local_day(now).year
    first = take_numbers(db=db, name=f"clue:{year}", count=count)
    return [f"{NUMBER_PREFIX}-{year}-{n:06d}" for n in range(first, first + count)]


# --- deadlines and overdue -----------------------------------------------------------------------------------


def schedule(clue: Clue) -> None:
    """倒排工期: the 核实 deadline counted back from the promised date (never before the day of receipt), and
    both deadlines as instants for SQL."""
    received = local_day(clue.received_at)
    clue.verify_due = max(clue.promised_date - timedelta(days=clue.verify_lead_days), received)
    clue.due_at = day_end(clue.promised_date)
    clue.verify_due_at = day_end(clue.verify_due)


def overdue(clue: Clue, now: datetime | None = None) -> bool:
    """Open past the promised date, closed after it, or still 核实中 past the 核实 deadline."""
    now = as_utc(now or utcnow())
    late = as_utc(clue.closed_at or now) > as_utc(clue.due_at)
    return late or (clue.status == S.verifying and now > as_utc(clue.verify_due_at))


def verify_overdue(clue: Clue, now: datetime | None = None) -> bool:
    """核实 not done in time: verified after its deadline, or still 核实中 past it."""
    now = as_utc(now or utcnow())
    if clue.verified_at is not None:
        return as_utc(clue.verified_at) > as_utc(clue.verify_due_at)
    return clue.status == S.verifying and now > as_utc(clue.verify_due_at)


def overdue_sql(now: datetime) -> sa.ColumnElement[bool]:
    """SQL twin of ``overdue`` (on the stored instants)."""
    return sa.or_(
        sa.and_(Clue.closed_at.is_(None), Clue.due_at < now),
        sa.and_(Clue.closed_at.is_not(None), Clue.due_at < Clue.closed_at),
        sa.and_(Clue.status == S.verifying.value, Clue.verify_due_at < now),
    )


# --- values staff enter ------------------------------------------------------------------------------------

_TEXT = {"title": (200, "标题"), "content": (20000, "内容"), "enterprise": (128, "企业名称"),
         "responsible": (64, "责任人"), "responsible_unit": (64, "责任单位")}
_COUNTS = {"workers": "涉及人数", "amount": "金额", "amount_recovered": "追回金额"}
LABELS = {"source": "来源", "category": "类别", "received_at": "受理时间", "enterprise_id": "企业",
          "district": "区市", "promised_date": "承诺办结日期", "verify_lead_days": "核实提前天数",
          "verify_due": "核实时限", "case_ids": "关联工单", "credit_code": "统一社会信用代码",
          **{k: v[1] for k, v in _TEXT.items()}, **_COUNTS}


def _text(name: str, value: Any) -> str | None:
    limit, what = _TEXT[name]
    if value is not None and not isinstance(value, str):
        raise invalid(f"{what}须为文字", name)
    text = (value or "").strip()
    if len(text) > limit:
        raise invalid(f"{what}不能超过{limit}个字", name)
    if name == "title" and not text:
        raise invalid("标题不能为空", name)
    return text if name == "content" else (text or None)


def _count(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"{_COUNTS[name]}须为整数", name)
    if value < 0:
        raise invalid(f"{_COUNTS[name]}不能为负数", name)
    return value


def _source(value: Any) -> str:
    try:
        return ClueSource(str(value).strip()).value
    except ValueError:
        raise invalid(f"来源只能是：{'、'.join(ClueSource)}（收到「{value}」）", "source") from None


def _category(db: Session, value: Any) -> str:
    names = taxonomy.category_names(db=db)
    text = str(value or "").strip()
    if text not in names:
        raise invalid(f"类别只能是：{'、'.join(names)}（收到「{text}」）", "category")
    return text


def _district(value: Any) -> str | None:
    text = str(value or "").strip()
    if not text:
        return None
    found = enterprises.district_of(text)
    if found is None:
        raise invalid(f"未知的区市：{text}（应为青岛市十个区市之一）", "district")
    return found


def _registered(db: Session, enterprise_id: int) -> Enterprise:
    e = db.get(Enterprise, enterprise_id)
    if e is None:
        raise invalid(f"企业库中没有编号为 {enterprise_id} 的企业", "enterprise_id")
    return e


def _by_name(db: Session, name: str) -> Enterprise | None:
    """The registered enterprise called exactly ``name`` (its canonical name or an alias)."""
    e = db.execute(sa.select(Enterprise).where(Enterprise.name == name)).scalar_one_or_none()
    if e is None:
        e = db.execute(sa.select(Enterprise).join(EnterpriseAlias, EnterpriseAlias.enterprise_id == Enterprise.id)
                       .where(EnterpriseAlias.alias == name)).scalars().first()
    return e


def _check_cases(db: Session, case_ids: Iterable[int]) -> list[int]:
    ids = list(dict.fromkeys(case_ids))
    found = set(db.execute(sa.select(Case.id).where(Case.id.in_(ids))).scalars()) if ids else set()
    missing = [i for i in ids if i not in found]
    if missing:
        raise invalid(f"工单不存在：{'、'.join(str(i) for i in missing)}", "case_ids")
    return ids


@dataclass
class _Dates:
    promised: date
    lead: int


def _dates(received_at: datetime, promised: date | None, lead: int | None, verify_due: date | None) -> _Dates:
    """The promised date and the 核实 lead from what was given (a 核实 date sets the lead); checked."""
    received = local_day(received_at)
    promised = promised or received + timedelta(days=DEFAULT_PROMISE_DAYS)
    if promised < received:
        raise invalid(f"承诺办结日期（{promised}）不能早于受理日期（{received}）", "promised_date")
    if verify_due is not None:
        if verify_due > promised:
            raise invalid(f"核实时限（{verify_due}）不能晚于承诺办结日期（{promised}）", "verify_due")
        if verify_due < received:
            raise invalid(f"核实时限（{verify_due}）不能早于受理日期（{received}）", "verify_due")
        lead = (promised - verify_due).days
    return _Dates(promised, DEFAULT_VERIFY_LEAD_DAYS if lead is None else lead)


def _received(value: datetime | None, now: datetime) -> datetime:
    at = _local_instant(value) if value is not None else now
    if at > now + timedelta(minutes=5):
        raise invalid("受理时间不能晚于当前时间", "received_at")
    return at


# --- create, change, link -------------------------------------------------------------------------------------


def _snapshot(clue: Clue) -> dict[str, Any]:
    return {k: getattr(clue, k) for k in (
        "number", "source", "category", "title", "content", "received_at", "enterprise", "enterprise_id", "district",
        "workers", "amount", "promised_date", "verify_lead_days", "verify_due", "status", "responsible",
        "responsible_unit", "amount_recovered")}


def _new_clue(db: Session, data: ClueCreate, actor: str, now: datetime, number: str) -> Clue:
    received = _received(data.received_at, now)
    dates = _dates(received, data.promised_date, data.verify_lead_days, data.verify_due)
    enterprise = _text("enterprise", data.enterprise)
    district = _district(data.district)
    registered = _registered(db, data.enterprise_id) if data.enterprise_id is not None else (
        _by_name(db, enterprise) if enterprise else None)
    if registered is not None:
        enterprise = enterprise if data.enterprise_id is None else registered.name
        district = district or registered.district
    clue = Clue(
        number=number, source=_source(data.source), category=_category(db, data.category or ARREARS),
        title=_text("title", data.title), content=_text("content", data.content) or "", received_at=received,
        enterprise=enterprise, enterprise_id=registered.id if registered else None, district=district,
        workers=_count("workers", data.workers), amount=_count("amount", data.amount),
        promised_date=dates.promised, verify_lead_days=dates.lead, status=S.verifying.value,
        responsible=_text("responsible", data.responsible),
        responsible_unit=_text("responsible_unit", data.responsible_unit),
        amount_recovered=_count("amount_recovered", data.amount_recovered), last_note="", created_by=actor,
        created_at=now, updated_at=now)
    schedule(clue)
    return clue


def create(*, db: Session, data: ClueCreate, actor: str, now: datetime | None = None,
           origin: dict[str, Any] | None = None) -> Clue:
    """Register one clue (status 核实中), numbered XS-YYYY-NNNNNN; audited as ``clue.created``."""
    now = as_utc(now or utcnow())
    case_ids = _check_cases(db, data.case_ids or [])
    clue = _new_clue(db, data, actor, now, _numbers(db, 1, now)[0])
    db.add(clue)
    db.flush()
    _add_links(db, clue, case_ids, actor, now)
    audit.record(db=db, actor=actor, action="clue.created", subject_type="clue", subject_id=clue.id,
                 details={**_snapshot(clue), "case_ids": case_ids, **(origin or {})})
    return clue


def get(*, db: Session, clue_id: int, for_update: bool = False) -> Clue | None:
    return db.get(Clue, clue_id, with_for_update=for_update) if for_update else db.get(Clue, clue_id)


def _set(db: Session, clue: Clue, actor: str, name: str, after: Any, *, reason: str | None = None) -> bool:
    """The one change helper: set the field and audit it (``clue.updated`` {field, before, after})."""
    before = getattr(clue, name)
    if before == after:
        return False
    setattr(clue, name, after)
    details: dict[str, Any] = {"field": name, "before": before, "after": after}
    if reason:
        details["reason"] = reason
    audit.record(db=db, actor=actor, action="clue.updated", subject_type="clue", subject_id=clue.id,
                 details=details)
    return True


def case_ids_of(*, db: Session, clue_id: int) -> list[int]:
    return list(db.execute(sa.select(ClueCase.case_id).where(ClueCase.clue_id == clue_id)
                           .order_by(ClueCase.case_id)).scalars())


def _add_links(db: Session, clue: Clue, case_ids: Sequence[int], actor: str, now: datetime) -> list[int]:
    have = set(case_ids_of(db=db, clue_id=clue.id))
    new = [i for i in case_ids if i not in have]
    for case_id in new:
        db.add(ClueCase(clue_id=clue.id, case_id=case_id, linked_by=actor, linked_at=now))
    db.flush()
    return new


def set_cases(*, db: Session, clue: Clue, case_ids: Sequence[int], actor: str, now: datetime | None = None) -> bool:
    """Replace the clue's linked cases; audited as ``clue.cases_linked`` {added, removed}."""
    now = as_utc(now or utcnow())
    wanted = _check_cases(db, case_ids)
    have = case_ids_of(db=db, clue_id=clue.id)
    removed = [i for i in have if i not in wanted]
    if removed:
        db.execute(sa.delete(ClueCase).where(ClueCase.clue_id == clue.id, ClueCase.case_id.in_(removed)))
    added = _add_links(db, clue, wanted, actor, now)
    if added or removed:
        audit.record(db=db, actor=actor, action="clue.cases_linked", subject_type="clue", subject_id=clue.id,
                     details={"added": added, "removed": removed, "case_ids": sorted(wanted)})
    return bool(added or removed)


def update(*, db: Session, clue: Clue, data: ClueUpdate, actor: str, now: datetime | None = None) -> list[str]:
    """Change the fields sent (validated as on create); each change audited. A closed clue (结案) takes only a
    corrected 追回金额 (409 otherwise). Returns the names of the fields that changed."""
    now = as_utc(now or utcnow())
    sent = set(data.model_fields_set)
    if not sent:
        raise invalid("没有要修改的字段")
    if clue.status == S.closed and sent - {"amount_recovered"}:
        raise ClueError(409, "closed", "线索已结案，只能修改追回金额")
    values = data.model_dump(include=sent)
    changed: list[str] = []

    def put(name: str, value: Any, reason: str | None = None) -> None:
        if _set(db, clue, actor, name, value, reason=reason):
            changed.append(name)

    if "source" in sent:
        if values["source"] is None:
            raise invalid("来源不能为空")
        put("source", _source(values["source"]))
    if "category" in sent:
        put("category", _category(db, values["category"]))
    for name in ("title", "content", "responsible", "responsible_unit"):
        if name in sent:
            put(name, _text(name, values[name]))
    for name in ("workers", "amount", "amount_recovered"):
        if name in sent:
            put(name, _count(name, values[name]))
    if "district" in sent:
        put("district", _district(values["district"]))
    if "enterprise_id" in sent or "enterprise" in sent:
        _change_enterprise(db, clue, sent, values, put)
    if sent & {"received_at", "promised_date", "verify_lead_days", "verify_due"}:
        if "received_at" in sent and values["received_at"] is None:
            raise invalid("受理时间不能为空", "received_at")
        received = _received(values["received_at"], now) if "received_at" in sent else clue.received_at
        promised = values["promised_date"] if "promised_date" in sent else clue.promised_date
        lead = values["verify_lead_days"] if "verify_lead_days" in sent else clue.verify_lead_days
        dates = _dates(received, promised, lead, values.get("verify_due"))
        put("received_at", received)
        put("promised_date", dates.promised)
        put("verify_lead_days", dates.lead)
        kept = clue.verify_due
        schedule(clue)  # 倒排工期: the 核实 deadline follows the promised date
        derived, clue.verify_due = clue.verify_due, kept
        put("verify_due", derived, reason="倒排工期：由承诺办结日期倒推")
    if "case_ids" in sent and set_cases(db=db, clue=clue, case_ids=values["case_ids"] or [], actor=actor,
                                        now=now):
        changed.append("case_ids")
    if changed:
        clue.updated_at = now
    db.flush()
    return changed


def _change_enterprise(db: Session, clue: Clue, sent: set[str], values: dict[str, Any],
                       put: Callable[[str, Any], None]) -> None:
    """A registered enterprise given by id brings its name (and district when none is set); a retyped name no
    longer names the linked enterprise, unless it is exactly a registered name or alias."""
    if "enterprise_id" in sent and values["enterprise_id"] is not None:
        registered = _registered(db, values["enterprise_id"])
        put("enterprise_id", registered.id)
        put("enterprise", registered.name)
        if clue.district is None and registered.district and "district" not in sent:
            put("district", registered.district)
        return
    name = _text("enterprise", values["enterprise"]) if "enterprise" in sent else clue.enterprise
    found = _by_name(db, name) if name and "enterprise" in sent else None
    if "enterprise_id" in sent:  # null: unlinked
        found = None
    put("enterprise", name)
    put("enterprise_id", found.id if found else None)


def _move_error(clue: Clue, message: str) -> ClueError:
    allowed = [s.value for s in TRANSITIONS[ClueStatus(clue.status)]]
    return ClueError(409, "invalid_transition", message, allowed=allowed)


def check_transition(clue: Clue, to: str) -> ClueStatus:
    """The target status if the clue may move there now; 409 with the allowed moves otherwise."""
    try:
        target = ClueStatus(to)
    except ValueError:
        raise _move_error(clue, f"没有「{to}」这个状态（可选：{'、'.join(ClueStatus)}）") from None
    current = ClueStatus(clue.status)
    if current is S.closed:
        raise _move_error(clue, "线索已结案，不能再变更状态")
    if target not in TRANSITIONS[current]:
        allowed = "、".join(f"「{s}」" for s in TRANSITIONS[current])
        raise _move_error(clue, f"线索状态为「{current}」，不能直接「{target}」（可转为：{allowed}）")
    return target


def transition(*, db: Session, clue: Clue, actor: str, to: str, note: str | None = None,
               case_ids: Sequence[int] | None = None, amount_recovered: int | None = None,
               now: datetime | None = None) -> Clue:
    """Move the clue along the workflow; audited as ``clue.transition`` {from, to, note, …}. 属实/不属实 record
    the verdict and when; 不属实 and 结案 need a note; 转为工单 links the cases given (existing ones); 结案
    stops the clock and may record 追回金额."""
    now = as_utc(now or utcnow())
    target = check_transition(clue, to)
    note = (note or "").strip()
    if target is S.unfounded and not note:
        raise invalid("请填写核实情况（为何不属实）")
    if target is S.closed and not note:
        raise invalid("请填写结案说明")
    if case_ids and target is not S.to_case:
        raise invalid("只有「转为工单」时可以随状态关联工单（其他时候请修改线索的关联工单）")
    if amount_recovered is not None and target is not S.closed:
        raise invalid("追回金额在「结案」时填写（或修改线索）")
    linked = _add_links(db, clue, _check_cases(db, case_ids), actor, now) if case_ids else []
    before = clue.status
    if target in (S.confirmed, S.unfounded):
        clue.verdict, clue.verified_at = target.value, now
    elif target is S.verifying:  # 重新核实: the earlier verdict no longer stands
        clue.verdict, clue.verified_at = None, None
    elif target is S.closed:
        clue.closed_at = now
        if amount_recovered is not None:
            clue.amount_recovered = amount_recovered
    clue.status = target.value
    if note:
        clue.last_note = note
    clue.updated_at = now
    audit.record(db=db, actor=actor, action="clue.transition", subject_type="clue", subject_id=clue.id, details={
        "from": before, "to": target.value, "note": note, "case_ids": linked,
        "amount_recovered": clue.amount_recovered if target is S.closed else None})
    db.flush()
    return clue


# --- reading ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClueFilter:
    """GET /api/v1/clues filters; each one left None does not filter."""

    status: str | None = None
    source: str | None = None
    category: str | None = None
    district: str | None = None
    q: str | None = None  # number, title or enterprise contains
    # the viewer may not see every phone/ID number in full: then a q with digits in it matches clue numbers only,
    # so that a title's masked 138****5678 cannot be read back by probing its digits (q=1381…, q=13812…)
    masked: bool = False
    received_from: date | None = None  # Beijing days, inclusive
    received_to: date | None = None
    overdue: bool | None = None
    case_id: int | None = None  # clues linked to this case


_DIGIT_PAIR = re.compile(r"[0-9０-９]{2}")


def _where(f: ClueFilter, now: datetime) -> list[sa.ColumnElement[bool]]:
    conds: list[sa.ColumnElement[bool]] = []
    for column, value in ((Clue.status, f.status), (Clue.source, f.source), (Clue.category, f.category),
                          (Clue.district, f.district)):
        if value:
            conds.append(column == value)
    if f.q and f.masked and _DIGIT_PAIR.search(f.q):
        conds.append(Clue.number.contains(f.q, autoescape=True))
    elif f.q:
        conds.append(sa.or_(Clue.number.contains(f.q, autoescape=True), Clue.title.contains(f.q, autoescape=True),
                            Clue.enterprise.contains(f.q, autoescape=True)))
    if f.received_from:
        conds.append(Clue.received_at >= day_start(f.received_from))
    if f.received_to:
        conds.append(Clue.received_at < day_end(f.received_to))
    if f.overdue is not None:
        conds.append(overdue_sql(now) if f.overdue else sa.not_(overdue_sql(now)))
    if f.case_id is not None:
        conds.append(Clue.id.in_(sa.select(ClueCase.clue_id).where(ClueCase.case_id == f.case_id)))
    return conds


def list_clues(*, db: Session, filters: ClueFilter, limit: int, offset: int,
               now: datetime | None = None) -> tuple[int, list[Clue]]:
    """Clues matching the filters, newest received first, and how many match in all."""
    conds = _where(filters, as_utc(now or utcnow()))
    total = db.execute(sa.select(sa.func.count()).select_from(Clue).where(*conds)).scalar_one()
    rows = db.execute(sa.select(Clue).where(*conds).order_by(Clue.received_at.desc(), Clue.id.desc())
                      .limit(limit).offset(offset)).scalars().all()
    return int(total), list(rows)


def list_item(clue: Clue, now: datetime | None = None) -> ClueListItem:
    return ClueListItem.model_validate({
        **{name: getattr(clue, name) for name in ClueListItem.model_fields if hasattr(Clue, name)},
        "overdue": overdue(clue, now), "verify_overdue": verify_overdue(clue, now)})


def read(*, db: Session, clue: Clue, now: datetime | None = None) -> ClueRead:
    """The whole clue: its linked cases, the registered enterprise's credit code, where it may go next."""
    cases = db.execute(sa.select(Case).join(ClueCase, ClueCase.case_id == Case.id)
                       .where(ClueCase.clue_id == clue.id).order_by(Case.id)).scalars().all()
    credit = db.execute(sa.select(Enterprise.credit_code).where(Enterprise.id == clue.enterprise_id)
                        ).scalar_one_or_none() if clue.enterprise_id else None
    return ClueRead.model_validate({
        **list_item(clue, now).model_dump(),
        **{name: getattr(clue, name) for name in ClueRead.model_fields
           if name not in ClueListItem.model_fields and hasattr(Clue, name)},
        "credit_code": credit, "cases": [ClueCaseRead.model_validate(c) for c in cases],
        "next_statuses": [s.value for s in TRANSITIONS[ClueStatus(clue.status)]],
    })


# --- XLSX import (all rows or none) ------------------------------------------------------------------------------

MAX_IMPORT_ROWS = 20_000
_HEADERS: dict[str, tuple[str, ...]] = {
    "source": ("来源", "线索来源", "source"),
    "category": ("类别", "线索类别", "诉求类别", "category"),
    "title": ("标题", "线索标题", "事项", "title"),
    "content": ("内容", "线索内容", "诉求", "主要内容", "content"),
    "received_at": ("受理时间", "接收时间", "收到时间", "受理日期", "received_at"),
    "enterprise": ("企业", "企业名称", "单位名称", "enterprise"),
    "credit_code": ("统一社会信用代码", "信用代码", "credit_code"),
    "district": ("区市", "所属区市", "区（市）", "区县", "district"),
    "workers": ("涉及人数", "人数", "workers"),
    "amount": ("金额", "涉及金额", "欠薪金额", "amount"),
    "promised_date": ("承诺办结日期", "承诺办结时间", "办结时限", "时限", "promised_date"),
    "verify_lead_days": ("核实提前天数", "verify_lead_days"),
    "verify_due": ("核实时限", "核实截止日期", "verify_due"),
    "responsible": ("责任人", "responsible"),
    "responsible_unit": ("责任单位", "承办单位", "responsible_unit"),
}
_HEADER_OF = {re.sub(r"[\s_\-]", "", h).lower(): f for f, hs in _HEADERS.items() for h in hs}
_DATE_TEXT = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
                        r"(?:[\sT]+(\d{1,2})[:：](\d{2})(?:[:：](\d{2}))?)?$")
_AMOUNT_TEXT = re.compile(r"^(\d+(?:\.\d+)?)\s*(万)?\s*元?$")


@dataclass
class _Row:
    line: int
    data: ClueCreate
    credit_code: str | None = None
    problems: list[ImportRowError] = field(default_factory=list)


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _when(value: Any, *, day_only: bool) -> datetime | date | None:
    """A date or datetime cell, or text like 2026-03-01, 2026/3/1 9:30, 2026年3月1日."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date() if day_only else value
    if isinstance(value, date):
        return value if day_only else datetime.combine(value, time(0))
    m = _DATE_TEXT.match(str(value).strip())
    if not m:
        raise ValueError(value)
    y, mo, d, h, mi, s = (int(g) if g else 0 for g in m.groups())
    return date(y, mo, d) if day_only else datetime(y, mo, d, h, mi, s)


def _whole(value: Any, *, money: bool) -> int | None:
    """A count or an amount in whole yuan: 12000, 12,000, 1.2万, 12000元."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        number: float = value
    elif isinstance(value, float):
        number = value
    else:
        text = str(value).strip().replace(",", "").replace("，", "")
        m = _AMOUNT_TEXT.match(text if money else text.removesuffix("人"))
        if not m or (m.group(2) and not money):
            raise ValueError(value)
        number = float(m.group(1)) * (10_000 if m.group(2) else 1)
    if number < 0 or abs(number - round(number)) > 1e-6:
        raise ValueError(value)
    return int(round(number))


def _read_table(data: bytes) -> tuple[list[tuple[int, list[Any]]], list[ImportRowError]]:
    """The first sheet's rows (spreadsheet row number, raw cell values)."""
    if data[:4] != b"PK\x03\x04":
        if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
            return [], [ImportRowError(row=0, message="不支持旧版 .xls 文件，请另存为 .xlsx")]
        return [], [ImportRowError(row=0, message="不是 Excel（.xlsx）文件")]
    try:
        from openpyxl import load_workbook

        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as e:
        return [], [ImportRowError(row=0, message=f"无法读取 Excel 文件：{e}")]
    try:
        sheet = book.worksheets[0]
        rows = [(n, list(values)) for n, values in enumerate(sheet.iter_rows(values_only=True), 1)]
    finally:
        book.close()
    return rows, []


def _header(rows: list[tuple[int, list[Any]]]) -> tuple[int, dict[str, int]] | None:
    """The header row (among the first five: a title line above it is allowed) and its columns."""
    for index, (_n, values) in enumerate(rows[:5]):
        columns: dict[str, int] = {}
        for i, h in enumerate(values):
            key = _HEADER_OF.get(re.sub(r"[\s_\-]", "", _cell_text(h)).lower())
            if key and key not in columns:
                columns[key] = i
        if "source" in columns and ("title" in columns or "content" in columns):
            return index, columns
    return None


def _parse_row(line: int, raw: dict[str, Any]) -> _Row:
    problems: list[ImportRowError] = []

    def bad(name: str, message: str) -> None:
        problems.append(ImportRowError(row=line, column=LABELS.get(name, name), message=message))

    values: dict[str, Any] = {}
    for name in ("source", "category", "title", "content", "enterprise", "district", "responsible",
                 "responsible_unit"):
        text = _cell_text(raw.get(name))
        if text:
            values[name] = text
    if "source" not in values:
        bad("source", f"来源为空（应为 {'、'.join(ClueSource)} 之一）")
    elif values["source"] not in {s.value for s in ClueSource}:
        bad("source", f"未知的来源：{values['source']}（应为 {'、'.join(ClueSource)} 之一）")
    if "title" not in values:
        content = values.get("content", "")
        if not content:
            bad("title", "标题和内容都为空")
        else:
            values["title"] = content.splitlines()[0][:60]
    for name in ("title", "content", "enterprise", "responsible", "responsible_unit"):
        limit, what = _TEXT[name]
        if len(values.get(name, "")) > limit:
            bad(name, f"{what}过长（最多 {limit} 字）")
    if values.get("district") and enterprises.district_of(values["district"]) is None:
        bad("district", f"未知的区市：{values['district']}（应为青岛市十个区市之一）")
    for name, day_only in (("received_at", False), ("promised_date", True), ("verify_due", True)):
        try:
            when = _when(raw.get(name), day_only=day_only)
        except ValueError:
            bad(name, f"{LABELS[name]}无法识别：{_cell_text(raw.get(name))}（应为 2026-03-01 或 2026-03-01 09:30）")
            continue
        if when is not None:
            values[name] = when
    for name, money in (("workers", False), ("amount", True), ("verify_lead_days", False)):
        try:
            number = _whole(raw.get(name), money=money)
        except ValueError:
            what = "金额须为不小于 0 的整数（元，可写“万”）" if money else f"{LABELS[name]}须为不小于 0 的整数"
            bad(name, f"{what}：{_cell_text(raw.get(name))}")
            continue
        if number is not None:
            values[name] = number
    if values.get("verify_lead_days", 0) > 365:
        bad("verify_lead_days", "核实提前天数不能超过 365 天")
    code = enterprises.normalize_credit_code(_cell_text(raw.get("credit_code"))) or None
    if code:
        problem = enterprises.credit_code_problem(code)
        if problem:
            bad("credit_code", f"{problem}：{code}")
    data = ClueCreate(source=ClueSource.other, title="-")
    if not problems:
        try:
            data = ClueCreate.model_validate({"title": "-", **values})
        except ValidationError as e:  # pydantic's bounds (sizes)
            for err in e.errors():
                name = str(err["loc"][0]) if err["loc"] else "title"
                bad(name, f"{LABELS.get(name, name)}超出允许范围：{_cell_text(values.get(name))}")
    return _Row(line=line, data=data, credit_code=code, problems=problems)


def import_file(*, db: Session, data: bytes, actor: str, filename: str | None = None,
                now: datetime | None = None) -> ClueImportResult:
    """Register the clues of an XLSX file (one per row, first sheet; header names as in ``_HEADERS``, a title
    line above the header allowed), in the caller's transaction: all rows or none. Every problem is reported
    with its row number (as the spreadsheet shows it), its column and a Chinese message (ImportFailed)."""
    now = as_utc(now or utcnow())
    table, errors = _read_table(data)
    if errors:
        raise ImportFailed(errors)
    found = _header(table)
    if found is None:
        raise ImportFailed([ImportRowError(row=1, column="来源", message=(
            "找不到表头：应有“来源”和“标题”（或“内容”）列；可选 类别、受理时间、企业、统一社会信用代码、区市、"
            "涉及人数、金额、承诺办结日期、核实提前天数、核实时限、责任人、责任单位"))])
    index, columns = found
    rows: list[_Row] = []
    for line, values in table[index + 1:]:
        if not any(_cell_text(v) for v in values):
            continue
        raw = {name: values[i] if i < len(values) else None for name, i in columns.items()}
        rows.append(_parse_row(line, raw))
    if not rows:
        raise ImportFailed([ImportRowError(row=0, message="文件中没有线索数据")])
    if len(rows) > MAX_IMPORT_ROWS:
        raise ImportFailed([ImportRowError(row=0, message=f"一次最多导入 {MAX_IMPORT_ROWS} 条线索，请分批导入")],
                           len(rows))
    codes = {r.credit_code for r in rows if r.credit_code and not r.problems}
    by_code: dict[str | None, int] = {code: eid for code, eid in db.execute(
        sa.select(Enterprise.credit_code, Enterprise.id).where(Enterprise.credit_code.in_(codes)))} if codes else {}
    built: list[tuple[_Row, Clue]] = []
    for row in rows:
        if not row.problems and row.credit_code:
            if row.credit_code not in by_code:
                row.problems.append(ImportRowError(row=row.line, column="统一社会信用代码", message=(
                    f"企业库中没有统一社会信用代码为 {row.credit_code} 的企业（请先导入企业库，或留空）")))
            else:
                row.data.enterprise_id = by_code[row.credit_code]
        if row.problems:
            errors.extend(row.problems)
            continue
        try:
            built.append((row, _new_clue(db, row.data, actor, now, number="")))
        except ClueError as e:
            name = e.extra.get("field")
            column = LABELS.get(name) if isinstance(name, str) else None
            errors.append(ImportRowError(row=row.line, column=column, message=e.message))
    if errors:
        errors.sort(key=lambda e: e.row)
        raise ImportFailed(errors, len(rows))
    numbers = _numbers(db, len(built), now)
    for (row, clue), number in zip(built, numbers, strict=True):
        clue.number = number
        db.add(clue)
        db.flush()
        audit.record(db=db, actor=actor, action="clue.created", subject_type="clue", subject_id=clue.id,
                     details={**_snapshot(clue), "case_ids": [], "file": filename, "row": row.line})
    result = ClueImportResult(rows=len(rows), created=len(built), numbers=numbers)
    audit.record(db=db, actor=actor, action="clues.imported", subject_type="clue", subject_id="-",
                 details={"file": filename, "rows": len(rows), "created": len(built),
                          "first": numbers[0], "last": numbers[-1]})
    return result
