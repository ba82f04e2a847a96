"""The enterprise registry (企业库): registered enterprises, the other names they go by, and the API shapes."""

from __future__ import annotations

import itertools
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class AliasSource(StrEnum):
    imported = "import"  # the 别名 column of an imported registry file
    confirmed = "confirmed"  # the heard or typed name of a case staff linked to this enterprise
    correction = "correction"  # a transcript correction that named this enterprise


class Colour(StrEnum):
    """Integrity colours, worst first (``COLOUR_RANK`` orders them: 红 0 … 绿 4)."""

    red = "红"
    orange = "橙"
    yellow = "黄"
    blue = "蓝"
    green = "绿"


COLOUR_RANK: dict[str, int] = {c.value: i for i, c in enumerate(Colour)}


class ObjectionStatus(StrEnum):
    pending = "待处理"
    upheld = "成立"
    rejected = "不成立"


class Enterprise(Base):
    """One registered enterprise: its canonical name and 统一社会信用代码 are unique."""

    __tablename__ = "enterprises"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(128), unique=True)
    credit_code: Mapped[str | None] = mapped_column(sa.String(18), unique=True)
    district: Mapped[str | None] = mapped_column(sa.String(16), index=True)
    address: Mapped[str] = mapped_column(sa.String(256), default="")
    industry: Mapped[str] = mapped_column(sa.String(64), default="")
    enterprise_type: Mapped[str | None] = mapped_column(sa.String(8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, index=True)


class EnterpriseAlias(Base):
    """Another spelling an enterprise is known, heard or typed as; each alias points at one enterprise."""

    __tablename__ = "enterprise_aliases"

    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(sa.ForeignKey("enterprises.id", ondelete="CASCADE"), index=True)
    alias: Mapped[str] = mapped_column(sa.String(128), unique=True)
    source: Mapped[str] = mapped_column(sa.String(16))
    created_by: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- API shapes -----------------------------------------------------------------------------------------


class EnterpriseBase(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    credit_code: str | None
    district: str | None
    address: str
    industry: str
    enterprise_type: str | None


class EnterpriseListItem(EnterpriseBase):
    cases: int = 0  # cases linked to it
    colour: Colour = Colour.green  # as shown: the manual override if any, else computed (绿 when never rated)
    score: float = 100.0


class EnterprisePagination(BaseModel):
    total: int
    items: list[EnterpriseListItem]


class AliasRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    alias: str
    source: str
    created_by: str
    created_at: datetime


class MonthCount(BaseModel):
    month: str  # YYYY-MM
    cases: int
    amount: int
    workers: int


class CategoryCount(BaseModel):
    category: str
    cases: int


class EnterpriseCase(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    case_no: str
    status: str
    category: str
    created_at: datetime
    amount: int | None
    workers: int | None
    group_case: bool


class EnterpriseStats(BaseModel):
    cases: int
    open_cases: int
    amount: int  # whole yuan in dispute, all its cases together
    workers: int
    group_cases: int
    by_month: list[MonthCount]
    categories: list[CategoryCount]


class EnterpriseRead(EnterpriseBase):
    created_at: datetime
    updated_at: datetime
    aliases: list[AliasRead]
    stats: EnterpriseStats
    recent_cases: list[EnterpriseCase]  # newest first
    colour: Colour  # as shown: the manual override if any, else the computed one
    score: float
    computed_colour: Colour
    ruleset_version: int | None  # None: never rated (no cases: 绿 at the starting score)
    computed_at: datetime | None
    deductions: list[ScoreItem]  # the items behind the score (bonuses and vetoes too)
    override: OverrideRead | None
    history: list[HistoryEntry]  # monthly snapshots, oldest first, each with what changed
    objections: list[ObjectionRead]  # newest first


class ImportRowError(BaseModel):
    row: int  # the spreadsheet's row number (the header is row 1); 0 for the file as a whole
    column: str | None = None
    message: str


class ImportResult(BaseModel):
    rows: int
    created: int
    updated: int
    unchanged: int
    aliases: int  # aliases added


class Candidate(BaseModel):
    enterprise_id: int
    name: str  # the canonical name
    matched: str  # the registered name or alias that matched
    score: float = Field(ge=0.0, le=1.0)
    district: str | None = None


class ResolveRead(BaseModel):
    heard: str
    candidates: list[Candidate]  # best first; empty: no registered enterprise is close enough


class CaseEnterpriseLink(BaseModel):
    """Link a case to a registered enterprise (null unlinks it); ``heard_name`` is how it was said or typed."""

    model_config = ConfigDict(extra="forbid")

    enterprise_id: int | None
    heard_name: str | None = Field(default=None, max_length=128)


# --- integrity (企业诚信): scores and colours, the rule set they come from, history, objections ------------


class IntegrityRuleset(Base):
    """One published version of the scoring rules (``rules`` validated by ``Rules``); the newest one is in force.
    Versions are never edited: a rating and a monthly snapshot record the version they were computed with."""

    __tablename__ = "integrity_rulesets"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(unique=True)
    rules: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    note: Mapped[str] = mapped_column(sa.Text, default="")
    published_by: Mapped[str] = mapped_column(sa.String(64))
    published_at: Mapped[datetime] = mapped_column(default=utcnow)


class EnterpriseScore(Base):
    """An enterprise's current integrity score and colour, with the items behind it; a manual override
    (``override_colour``, with its reason) takes precedence over the computed colour wherever it is shown."""

    __tablename__ = "enterprise_scores"

    enterprise_id: Mapped[int] = mapped_column(sa.ForeignKey("enterprises.id", ondelete="CASCADE"),
                                               primary_key=True)
    score: Mapped[float]
    colour: Mapped[str] = mapped_column(sa.String(2), index=True)  # as computed
    ruleset_version: Mapped[int]
    # [{item, label, points, case_ids, warning_ids}]: deductions negative, bonuses positive, vetoes 0
    items: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)
    override_colour: Mapped[str | None] = mapped_column(sa.String(2), index=True)
    override_reason: Mapped[str | None] = mapped_column(sa.Text)
    override_by: Mapped[str | None] = mapped_column(sa.String(64))
    override_at: Mapped[datetime | None]


class EnterpriseColourHistory(Base):
    """The rating as computed at the end of one month (Asia/Shanghai), kept as it was: a later rule set or
    a later change to a case does not rewrite it."""

    __tablename__ = "enterprise_colour_history"
    __table_args__ = (sa.UniqueConstraint("enterprise_id", "month", name="uq_enterprise_colour_history_month"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(sa.ForeignKey("enterprises.id", ondelete="CASCADE"), index=True)
    month: Mapped[str] = mapped_column(sa.String(7), index=True)  # YYYY-MM
    score: Mapped[float]
    colour: Mapped[str] = mapped_column(sa.String(2))
    ruleset_version: Mapped[int]
    items: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)


class EnterpriseObjection(Base):
    """异议: someone disputes an enterprise's colour; a manager decides it (成立 / 不成立) with an outcome."""

    __tablename__ = "enterprise_objections"

    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(sa.ForeignKey("enterprises.id", ondelete="CASCADE"), index=True)
    raised_by: Mapped[str] = mapped_column(sa.String(64))
    reason: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(8), default=ObjectionStatus.pending.value, index=True)
    outcome: Mapped[str | None] = mapped_column(sa.Text)
    decided_by: Mapped[str | None] = mapped_column(sa.String(64))
    decided_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# The rule set as admins write it. Deduction points are written as positive numbers and shown negative.

Categories = Annotated[list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=16)]],
                       Field(min_length=1, max_length=20)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PerCase(_Strict):
    """``points`` off for each matching case (or warning), at most ``cap`` in all."""

    points: float = Field(ge=0, le=100)
    cap: float = Field(ge=0, le=100)


class CategoryDeduction(PerCase):
    categories: Categories  # cases of these categories (the taxonomy's names)


class RepeatDeduction(_Strict):
    """重复投诉: ``points`` off once when some ``days``-day stretch holds ``min_cases`` cases or more."""

    min_cases: int = Field(ge=2, le=1000)
    days: int = Field(ge=1, le=366)
    points: float = Field(ge=0, le=100)
    exclude_categories: list[str] = Field(default_factory=list, max_length=20)  # e.g. questions (法律咨询)


class Deductions(_Strict):
    arrears: CategoryDeduction  # 欠薪
    group: PerCase  # 群体性
    repeat: RepeatDeduction  # 重复投诉
    injury: CategoryDeduction  # 工伤
    dispatch: CategoryDeduction  # 劳务派遣
    verified_warning: PerCase  # 预警核实属实
    open_red_warning: PerCase  # 未办结的红色预警


class QuickCloseBonus(_Strict):
    """及时办结: ``points`` back for each case closed within ``days`` of being accepted, at most ``cap``."""

    days: int = Field(ge=1, le=365)
    points: float = Field(ge=0, le=100)
    cap: float = Field(ge=0, le=100)


class Bonuses(_Strict):
    quick_close: QuickCloseBonus


class Band(_Strict):
    colour: Colour
    min_score: float = Field(ge=0, le=100)  # this colour from this score up


class Veto(_Strict):
    """一票否决: any of these in the period gives ``colour`` whatever the score."""

    open_red_warning: bool = True  # an unresolved red warning
    group_arrears: bool = True  # a group (群体性) case of an arrears category
    colour: Colour = Colour.red


class Rules(_Strict):
    start: float = Field(default=100, gt=0, le=100)
    window_months: int = Field(default=12, ge=1, le=36)  # rolling window the cases and warnings are from
    deductions: Deductions
    bonuses: Bonuses
    bands: list[Band] = Field(min_length=1, max_length=4)  # best first; under the last: floor_colour
    floor_colour: Colour = Colour.red
    veto: Veto

    @model_validator(mode="after")
    def _bands(self) -> Rules:
        # PydanticCustomError, not ValueError: the error stays JSON-serialisable in 422 responses.
        mins = [b.min_score for b in self.bands]
        if any(a <= b for a, b in itertools.pairwise(mins)):
            raise PydanticCustomError("bands_order", "颜色分档须按分数从高到低排列，且分数线互不相同")
        colours = [b.colour for b in self.bands] + [self.floor_colour]
        if len(set(colours)) != len(colours):
            raise PydanticCustomError("bands_colours", "每种颜色只能出现一次（含最低档颜色）")
        return self


class RulesetIn(_Strict):
    rules: Rules
    note: str = Field(default="", max_length=2000)


class RulesetRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    rules: Rules
    note: str
    published_by: str
    published_at: datetime


class ScoreItem(BaseModel):
    item: str  # arrears, group, repeat, injury, dispatch, verified_warning, open_red_warning, quick_close, veto_…
    label: str  # 欠薪, 群体性 …, for people
    points: float  # negative: deducted; positive: a bonus; 0: a veto
    case_ids: list[int] = Field(default_factory=list)
    warning_ids: list[int] = Field(default_factory=list)


class OverrideRead(BaseModel):
    colour: Colour
    reason: str
    by: str
    at: datetime


class ItemChange(BaseModel):
    """One item that differs from the month before."""

    item: str
    label: str
    before: float  # points the month before (0: the item was not there)
    after: float
    added_case_ids: list[int]
    removed_case_ids: list[int]
    added_warning_ids: list[int]
    removed_warning_ids: list[int]


class HistoryEntry(BaseModel):
    """One monthly snapshot and what changed since the one before (为何变色)."""

    month: str
    score: float
    colour: Colour
    ruleset_version: int
    computed_at: datetime
    items: list[ScoreItem]
    previous_colour: Colour | None  # None: the first snapshot
    colour_changed: bool
    ruleset_changed: bool  # computed with another rule set version than the month before
    changes: list[ItemChange]
    explanation: str  # the changes in one Chinese sentence


class ObjectionIn(_Strict):
    reason: str = Field(min_length=1, max_length=2000)


class ObjectionDecisionIn(_Strict):
    status: Literal["成立", "不成立"]
    outcome: str = Field(min_length=1, max_length=2000)


class ObjectionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    enterprise_id: int
    raised_by: str
    reason: str
    status: ObjectionStatus
    outcome: str | None
    decided_by: str | None
    decided_at: datetime | None
    created_at: datetime


class OverrideIn(_Strict):
    """Set (a colour) or remove (null) the manual colour; a reason either way."""

    colour: Colour | None
    reason: str = Field(min_length=1, max_length=2000)


class RatingRead(BaseModel):
    """An enterprise's colour as shown (the override if any), its computed score and colour, and the items."""

    enterprise_id: int
    colour: Colour
    score: float
    computed_colour: Colour
    ruleset_version: int | None  # None: never computed (no cases: 绿 at the starting score)
    computed_at: datetime | None
    deductions: list[ScoreItem]
    override: OverrideRead | None


class DistributionRead(BaseModel):
    total: int
    by_colour: dict[str, int]  # every colour, 红 … 绿, with 0 where none
    overridden: int  # of them, with a manual colour


EnterpriseRead.model_rebuild()
