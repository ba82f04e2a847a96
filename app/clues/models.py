"""Clues (线索): leads that reach the union besides hotline calls — 舆情 monitoring, 上级交办/督办, letters and
visits — registered by hand (form or XLSX import), verified (核实中 → 属实/不属实 → 转为工单 / 结案) against
deadlines counted back from the promised completion date (倒排工期), and linked to an enterprise and to cases."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Mapped, mapped_column

from app.cases import models as _cases  # noqa: F401  (clue_cases.case_id → cases.id)
from app.db import Base, utcnow
from app.enterprises import models as _enterprises  # noqa: F401  (clues.enterprise_id → enterprises.id)


class ClueSource(StrEnum):
    hotline = "热线工单"  # registered from a hotline case (to track it on the ledgers with 倒排工期 and recovery)
    opinion = "舆情监测"
    assigned = "上级交办"
    supervised = "上级督办"
    letters = "来信来访"
    other = "其他"


# The 舆情核实清单 lists the clues that come from outside the hotline and must be verified and reported back.
OPINION_SOURCES = (ClueSource.opinion, ClueSource.assigned, ClueSource.supervised)


class ClueStatus(StrEnum):
    verifying = "核实中"
    confirmed = "属实"
    unfounded = "不属实"
    to_case = "转为工单"
    closed = "结案"


ARREARS = "欠薪"  # the category the arrears ledgers list (cases and clues alike)


class Clue(Base):
    """One clue: where it came from, what it says, the enterprise, its deadlines and where it stands."""

    __tablename__ = "clues"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(sa.String(32), unique=True)  # XS-2026-000001, gap-free per year
    source: Mapped[str] = mapped_column(sa.String(8), index=True)  # ClueSource
    category: Mapped[str] = mapped_column(sa.String(16), default=ARREARS, index=True)  # 欠薪, 社保 … (taxonomy)
    title: Mapped[str] = mapped_column(sa.String(200))
    content: Mapped[str] = mapped_column(sa.Text, default="")
    received_at: Mapped[datetime] = mapped_column(index=True)  # 受理时间: when the clue reached the office
    enterprise: Mapped[str | None] = mapped_column(sa.String(128), index=True)  # the name as given
    enterprise_id: Mapped[int | None] = mapped_column(sa.ForeignKey("enterprises.id"), index=True)  # 企业库
    district: Mapped[str | None] = mapped_column(sa.String(16), index=True)
    workers: Mapped[int | None]
    amount: Mapped[int | None] = mapped_column(sa.BigInteger)  # amount in dispute, whole yuan
    # 倒排工期: the promised completion date, and the verification deadline counted back from it.
    promised_date: Mapped[date]  # 承诺办结日期 (Beijing calendar day; due at the end of it)
    verify_lead_days: Mapped[int]  # 核实 due this many days before the promised date
    verify_due: Mapped[date]  # 核实时限 = promised − lead, never before the day the clue was received
    due_at: Mapped[datetime] = mapped_column(index=True)  # end of promised_date, Beijing time (SQL overdue tests)
    verify_due_at: Mapped[datetime]  # end of verify_due, Beijing time
    status: Mapped[str] = mapped_column(sa.String(8), default=ClueStatus.verifying.value, index=True)
    verdict: Mapped[str | None] = mapped_column(sa.String(8))  # 属实 | 不属实, kept after 转为工单 / 结案
    responsible: Mapped[str | None] = mapped_column(sa.String(64), index=True)  # 责任人 (may be outside the system)
    responsible_unit: Mapped[str | None] = mapped_column(sa.String(64), index=True)  # 责任单位
    amount_recovered: Mapped[int | None] = mapped_column(sa.BigInteger)  # 追回金额, whole yuan
    last_note: Mapped[str] = mapped_column(sa.Text, default="")  # the latest 办理进展 written on a transition
    verified_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None] = mapped_column(index=True)
    created_by: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ClueCase(Base):
    """A case a clue is linked to (turned into, or about the same matter). An arrears case linked to an arrears
    clue is listed on the ledgers through the clue, not twice."""

    __tablename__ = "clue_cases"

    clue_id: Mapped[int] = mapped_column(sa.ForeignKey("clues.id", ondelete="CASCADE"), primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id"), primary_key=True, index=True)
    linked_by: Mapped[str] = mapped_column(sa.String(64))
    linked_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- API schemas -------------------------------------------------------------------------------------------

class ClueFields(BaseModel):
    """What staff fill in on the form (create) and may change (update)."""

    model_config = ConfigDict(extra="forbid")

    source: ClueSource | None = None
    category: str | None = Field(default=None, min_length=1, max_length=16)
    title: str | None = Field(default=None, min_length=1, max_length=200)
    content: str | None = Field(default=None, max_length=20000)
    received_at: datetime | None = None  # 受理时间; now when not given
    enterprise: str | None = Field(default=None, max_length=128)
    enterprise_id: int | None = None  # a registered enterprise: fills in the name and district when not given
    district: str | None = Field(default=None, max_length=16)
    workers: int | None = Field(default=None, ge=0, le=1_000_000)
    amount: int | None = Field(default=None, ge=0, le=10**12)
    promised_date: date | None = None  # 承诺办结日期; 15 days after receipt when not given
    verify_lead_days: int | None = Field(default=None, ge=0, le=365)  # 核实 due this many days before it
    verify_due: date | None = None  # or the 核实 deadline itself (sets the lead)
    responsible: str | None = Field(default=None, max_length=64)
    responsible_unit: str | None = Field(default=None, max_length=64)
    amount_recovered: int | None = Field(default=None, ge=0, le=10**12)
    case_ids: list[int] | None = Field(default=None, max_length=100)  # linked cases (replaces the links)


class ClueCreate(ClueFields):
    source: ClueSource
    title: str = Field(min_length=1, max_length=200)


class ClueUpdate(ClueFields):
    """Only the fields sent are changed (null clears an optional one); each change is audited."""


class ClueCaseRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    case_no: str
    status: str
    category: str


class ClueListItem(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    number: str
    source: str
    category: str
    title: str
    received_at: datetime
    enterprise: str | None
    enterprise_id: int | None
    district: str | None
    workers: int | None
    amount: int | None
    promised_date: date
    verify_due: date
    status: str
    verdict: str | None
    responsible: str | None
    responsible_unit: str | None
    amount_recovered: int | None
    closed_at: datetime | None
    overdue: bool  # past the promised date (open), closed after it, or still 核实中 past the 核实 deadline
    verify_overdue: bool  # 核实 not done by its deadline (still 核实中 after it, or verified late)


class ClueRead(ClueListItem):
    content: str
    credit_code: str | None  # of the linked registered enterprise
    verify_lead_days: int
    due_at: datetime
    verify_due_at: datetime
    last_note: str
    verified_at: datetime | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    cases: list[ClueCaseRead]
    next_statuses: list[str]  # where the workflow lets it go from here


class CluePagination(BaseModel):
    total: int
    items: list[ClueListItem]


class ClueTransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str
    note: str | None = Field(default=None, max_length=2000)  # required for 不属实 and 结案
    case_ids: list[int] | None = Field(default=None, max_length=100)  # 转为工单: the existing case(s) it became
    amount_recovered: int | None = Field(default=None, ge=0, le=10**12)  # 结案: 追回金额


class ClueImportResult(BaseModel):
    rows: int
    created: int
    numbers: list[str]  # the numbers given, in the file's order


# --- ledgers (台账) ------------------------------------------------------------------------------------------


class LedgerKind(StrEnum):
    arrears_new = "arrears-new"  # 新增欠薪线索清单: arrears clues and cases received in the period
    arrears_closed = "arrears-closed"  # 已办结欠薪线索清单: arrears clues and cases closed in the period
    opinion = "opinion"  # 舆情核实清单: clues from 舆情监测 / 上级交办 / 上级督办 received in the period


LEDGER_TITLES: dict[LedgerKind, str] = {
    LedgerKind.arrears_new: "新增欠薪线索清单",
    LedgerKind.arrears_closed: "已办结欠薪线索清单",
    LedgerKind.opinion: "舆情核实清单",
}


class LedgerRow(BaseModel):
    ref: str  # "clue" | "case": what ``id`` is the id of
    id: int
    number: str  # 编号: the clue's XS-… or the case's 12351-…
    source: str  # 来源
    received_at: datetime  # 受理时间
    enterprise: str | None  # 企业
    credit_code: str | None  # 统一社会信用代码 (of the linked registered enterprise)
    district: str | None  # 区市
    workers: int | None  # 涉及人数
    amount: int | None  # 金额
    demand: str  # 诉求
    progress: str  # 办理进展
    responsible: str  # 责任人 (unit / person)
    deadline: date | None  # 时限 (Beijing day)
    overdue: bool  # 是否逾期
    closed_at: datetime | None  # 办结时间
    amount_recovered: int | None  # 追回金额


class LedgerTotals(BaseModel):
    rows: int
    workers: int
    amount: int
    amount_recovered: int
    overdue: int


class LedgerPage(BaseModel):
    kind: LedgerKind
    title: str
    total: int
    totals: LedgerTotals  # over every row matching the filters, not only this page
    items: list[LedgerRow]
    limit: int
    offset: int
