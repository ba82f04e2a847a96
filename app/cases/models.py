from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow
from app.enterprises import models as _enterprises  # noqa: F401  (cases.enterprise_id → enterprises.id)
from app.transcripts.models import TranscriptRead


class CaseStatus(StrEnum):
    accepted = "受理"
    assigned = "转办"
    handling = "办理"
    follow_up = "回访"
    closed = "办结"


class Case(Base):
    """A work order: what one call or session was about, and where it stands."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_no: Mapped[str] = mapped_column(sa.String(32), unique=True)
    status: Mapped[str] = mapped_column(sa.String(8), default=CaseStatus.accepted, index=True)
    channel: Mapped[str] = mapped_column(sa.String(8))
    recording_id: Mapped[int] = mapped_column(sa.ForeignKey("recordings.id"), unique=True)
    transcript_id: Mapped[int | None] = mapped_column(sa.ForeignKey("transcripts.id"))
    category: Mapped[str] = mapped_column(sa.String(16), index=True)
    category_confidence: Mapped[float]
    category_evidence: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON)  # matched terms + segment
    enterprise: Mapped[str | None] = mapped_column(sa.String(128), index=True)
    enterprise_id: Mapped[int | None] = mapped_column(sa.ForeignKey("enterprises.id"), index=True)  # 企业库
    district: Mapped[str | None] = mapped_column(sa.String(16), index=True)
    summary: Mapped[str] = mapped_column(sa.Text, default="")
    created_by: Mapped[str] = mapped_column(sa.String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Dimensions the union analyses (suggested from the transcript, confirmed or changed by staff).
    occupation: Mapped[str | None] = mapped_column(sa.String(32), index=True)  # 诉求人职业
    gender: Mapped[str | None] = mapped_column(sa.String(4))  # 男 | 女
    age_bracket: Mapped[str | None] = mapped_column(sa.String(16))  # 年龄段, e.g. 18-25, 26-35 …
    enterprise_type: Mapped[str | None] = mapped_column(sa.String(8), index=True)  # 国有/集体/民营/外资/个体/机关事业…
    arrears_type: Mapped[str | None] = mapped_column(sa.String(16))  # 欠薪类别: 工资/加班费/经济补偿/工程款…
    workers: Mapped[int | None]  # number of workers involved
    amount: Mapped[int | None] = mapped_column(sa.BigInteger)  # amount in dispute, whole yuan
    caller_phone: Mapped[str | None] = mapped_column(sa.String(32), index=True)  # full; masked on read per role
    group_case: Mapped[bool] = mapped_column(default=False, index=True)  # 群体性: many workers involved
    # {field: {value, confidence, start, end, speaker, segment, text}}: where each value was said
    extracted: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    suggested: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)  # what the machine first proposed
    # fields a person set or confirmed: re-extraction (after a transcript correction, `hotline cases refresh`)
    # never changes them; NULL on cases nobody touched
    locked_fields: Mapped[list[str] | None] = mapped_column(sa.JSON)
    confirmed_by: Mapped[str | None] = mapped_column(sa.String(64))
    confirmed_at: Mapped[datetime | None]
    # Workflow and SLA clocks: 受理 → 转办 → 办理 → 回访 → 办结, 督办 beside them.
    difficulty: Mapped[str] = mapped_column(sa.String(8), default="一般")  # 一般 | 疑难 | 特别复杂
    unit: Mapped[str | None] = mapped_column(sa.String(64), index=True)  # the unit it is handed to (转办)
    assignee: Mapped[str | None] = mapped_column(sa.String(64), index=True)  # username handling it
    accepted_at: Mapped[datetime | None] = mapped_column(index=True)  # 受理: the SLA clocks start here
    feedback_due_at: Mapped[datetime | None] = mapped_column(index=True)  # first feedback to the caller
    first_feedback_at: Mapped[datetime | None]
    due_at: Mapped[datetime | None] = mapped_column(index=True)  # completion deadline (by difficulty)
    closed_at: Mapped[datetime | None]
    escalated: Mapped[bool] = mapped_column(default=False, index=True)  # 督办
    escalated_at: Mapped[datetime | None]
    # Legal hold (保全): a case in dispute keeps its recording and transcript whatever the retention period;
    # set and cleared by managers and admins (case:hold), audited; who and when: the last change
    legal_hold: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    legal_hold_reason: Mapped[str | None] = mapped_column(sa.String(500))
    legal_hold_by: Mapped[str | None] = mapped_column(sa.String(64))
    legal_hold_at: Mapped[datetime | None]


class Counter(Base):
    """Named sequences (case numbers per year) that stay gap-free and safe under concurrent workers."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    value: Mapped[int]


class SlaRead(BaseModel):
    """The case's clocks: deadlines and where it stands against them (computed at read time)."""

    feedback_due_at: datetime
    feedback_overdue: bool  # first feedback given late, or not yet given and late
    due_at: datetime
    overdue: bool  # closed after the deadline, or still open past it
    due_soon: bool  # open, not overdue, deadline within HOTLINE_SLA_DUE_SOON_HOURS


class CaseBase(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    case_no: str
    status: str
    channel: str
    recording_id: int
    category: str
    category_confidence: float
    enterprise: str | None
    district: str | None
    summary: str
    created_at: datetime
    created_by: str
    difficulty: str
    unit: str | None
    assignee: str | None
    escalated: bool
    group_case: bool
    workers: int | None
    amount: int | None


class CaseListItem(CaseBase):
    sla: SlaRead


class CaseRead(CaseListItem):
    category_evidence: list[dict[str, Any]]
    transcript: TranscriptRead | None
    occupation: str | None
    gender: str | None
    age_bracket: str | None
    enterprise_type: str | None
    enterprise_id: int | None  # the registered enterprise (企业库) the case is linked to
    arrears_type: str | None
    caller_phone: str | None  # masked for roles without phone:unmasked
    extracted: dict[str, Any]
    suggested: dict[str, Any]
    locked_fields: list[str] | None = None  # set or confirmed by a person: re-extraction leaves them
    confirmed_by: str | None
    confirmed_at: datetime | None
    accepted_at: datetime | None
    first_feedback_at: datetime | None
    closed_at: datetime | None
    escalated_at: datetime | None
    updated_at: datetime
    next_statuses: list[str]  # where the workflow allows it to go from here
    legal_hold: bool = False  # 保全: kept whatever the retention period (HOTLINE_RETENTION_DAYS)
    legal_hold_reason: str | None = None
    legal_hold_by: str | None = None  # who set or cleared it last, and when
    legal_hold_at: datetime | None = None
    # whether the user who asked may change this case (app/cases/access.py): its assignee, anyone while it is
    # in the pool (受理, held by nobody), managers and admins; the page shows the others the case read-only
    may_change: bool = False


class CasePagination(BaseModel):
    total: int
    items: list[CaseListItem]


class CaseUpdate(BaseModel):
    """Staff confirm or change the suggested fields; only the fields sent are changed (null clears one)."""

    model_config = ConfigDict(extra="forbid")

    category: str | None = None
    enterprise: str | None = None
    district: str | None = None
    occupation: str | None = None
    gender: str | None = None
    age_bracket: str | None = None
    enterprise_type: str | None = None
    arrears_type: str | None = None
    workers: int | None = None
    amount: int | None = None
    summary: str | None = None
    difficulty: str | None = None  # needs case:escalate; moves the completion deadline
    confirm: bool = False  # the values as they now stand are confirmed by the caller of this request


class TransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str
    unit: str | None = None
    assignee: str | None = None
    note: str | None = Field(default=None, max_length=2000)


class LegalHoldIn(BaseModel):
    """Put a case on legal hold (a reason is required) or take it off (a reason is welcome)."""

    model_config = ConfigDict(extra="forbid")

    hold: bool
    reason: str | None = Field(default=None, max_length=500)


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(max_length=2000)


# When a case counts from (受理, else created): early warnings select cases by it, alone and by key (0015).
_CASE_AT = sa.func.coalesce(Case.accepted_at, Case.created_at)
sa.Index("ix_cases_case_at", _CASE_AT)
sa.Index("ix_cases_enterprise_at", Case.enterprise_id, _CASE_AT)
sa.Index("ix_cases_district_category_at", Case.district, Case.category, _CASE_AT)
