"""Early warnings (劳动争议预警): rules kept as data, the warnings they raise, and the API shapes.

A rule groups cases by a key (the enterprise; district × category; district × occupation), looks at the last
``window_days`` of them, and raises a graded warning (红 > 橙 > 黄 > 蓝) when a grade's thresholds are met or the
window's count is improbable against the group's own and its peers' history (the burst test). There is at most
one open warning per group key (``open_key`` is unique and cleared on 办结); later cases on the key attach to it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class Grade(StrEnum):
    """Warning grades as in Chinese emergency-warning practice, lowest first (``RANK`` orders them)."""

    blue = "蓝"
    yellow = "黄"
    orange = "橙"
    red = "红"


RANK: dict[str, int] = {g.value: i for i, g in enumerate(Grade)}  # 蓝 0 < 黄 1 < 橙 2 < 红 3


class GroupBy(StrEnum):
    enterprise = "enterprise"  # the registered enterprise, else the enterprise name on the case
    enterprise_category = "enterprise_category"  # 企业 × 诉求类别: workers of one enterprise on the same problem
    district_category = "district_category"  # 区市 × 诉求类别
    district_occupation = "district_occupation"  # 区市 × 职业


class WarningStatus(StrEnum):
    new = "待签收"
    signed = "已签收"
    verified = "已核实"
    acting = "处置中"
    closed = "办结"


class Verdict(StrEnum):
    true = "属实"
    false_alarm = "误报"
    insufficient = "信息不足"


class Action(StrEnum):
    """联动处置: what was done about a verified warning."""

    inspection = "转人社监察"
    interview = "约谈企业"
    legal_aid = "法律援助"
    mediation = "调解"
    other = "其他"


class WarningRule(Base):
    """One rule, editable by admins; ``version`` counts its edits (a warning records the version it used)."""

    __tablename__ = "warning_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    group_by: Mapped[str] = mapped_column(sa.String(24))
    categories: Mapped[list[str]] = mapped_column(sa.JSON, default=list)  # only cases of these; empty: all
    window_days: Mapped[int]
    min_cases: Mapped[int] = mapped_column(default=2)  # never a warning on fewer cases than this
    # {grade: {"callers": n, "cases": n, "workers": n, "amount": yuan}}: a grade is reached when any of its
    # thresholds is; a grade may be left out (then only the burst test or a higher one gives a warning)
    grades: Mapped[dict[str, dict[str, int]]] = mapped_column(sa.JSON, default=dict)
    burst_alpha: Mapped[float | None]  # Poisson tail probability at or under which the count is a burst; NULL: off
    burst_grade: Mapped[str] = mapped_column(sa.String(2), default=Grade.yellow.value)  # grade a burst raises
    baseline_days: Mapped[int] = mapped_column(default=180)  # history before the window the baseline is from
    floor_per_day: Mapped[float] = mapped_column(default=0.0)  # the baseline rate never goes under this
    group_case_red: Mapped[bool] = mapped_column(default=True)  # a group case (群体性) in the window: 红
    repeat_red: Mapped[bool] = mapped_column(default=True)  # a key warned and closed within repeat_days: 红
    repeat_days: Mapped[int] = mapped_column(default=90)
    active: Mapped[bool] = mapped_column(default=True)
    version: Mapped[int] = mapped_column(default=1)
    updated_by: Mapped[str] = mapped_column(sa.String(64), default="system")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class EarlyWarning(Base):
    """One warning on one group key: its grade, where it stands, and what was found and done."""

    __tablename__ = "warnings"

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(sa.ForeignKey("warning_rules.id"), index=True)
    rule_version: Mapped[int]
    group_by: Mapped[str] = mapped_column(sa.String(24))
    group_key: Mapped[str] = mapped_column(sa.String(200), index=True)  # e.g. enterprise:17, 崂山区|欠薪
    open_key: Mapped[str | None] = mapped_column(sa.String(200), unique=True)  # = group_key until 办结
    subject: Mapped[str] = mapped_column(sa.String(200))  # what it groups, for people: 企业名 or 崂山区 × 欠薪
    enterprise_id: Mapped[int | None] = mapped_column(sa.ForeignKey("enterprises.id"), index=True)
    enterprise: Mapped[str | None] = mapped_column(sa.String(128))
    district: Mapped[str | None] = mapped_column(sa.String(16), index=True)
    category: Mapped[str | None] = mapped_column(sa.String(16))
    grade: Mapped[str] = mapped_column(sa.String(2), index=True)
    status: Mapped[str] = mapped_column(sa.String(8), default=WarningStatus.new.value, index=True)
    reason: Mapped[str] = mapped_column(sa.Text)  # why, in words: 崂山区某公司 7 天内 4 起欠薪来电，涉及 23 人…
    # figures behind the grade: cases, callers, workers, amount, window_start, window_end, p_value, expected
    figures: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    first_case_at: Mapped[datetime]  # when the earliest case behind it was accepted
    raised_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    sign_due_at: Mapped[datetime] = mapped_column(index=True)  # by grade (HOTLINE_WARNING_SIGN_HOURS)
    signed_by: Mapped[str | None] = mapped_column(sa.String(64))
    signed_at: Mapped[datetime | None]
    verdict: Mapped[str | None] = mapped_column(sa.String(8))  # 属实 | 误报 | 信息不足
    verified_by: Mapped[str | None] = mapped_column(sa.String(64))
    verified_at: Mapped[datetime | None]
    actions: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)  # [{action, note, by, at}]
    amount_recovered: Mapped[int | None] = mapped_column(sa.BigInteger)  # 追回金额, whole yuan
    workers_covered: Mapped[int | None]  # 惠及职工
    outcome: Mapped[str | None] = mapped_column(sa.Text)
    closed_by: Mapped[str | None] = mapped_column(sa.String(64))
    closed_at: Mapped[datetime | None] = mapped_column(index=True)
    escalation_level: Mapped[int] = mapped_column(default=0)  # 1: managers told it was not signed for; 2: admins
    escalated_at: Mapped[datetime | None]
    snoozed_until: Mapped[datetime | None]  # 暂缓: not escalated and not listed as new until then …
    snooze_cases: Mapped[int | None]  # … or until its case count reaches this
    snooze_reason: Mapped[str | None] = mapped_column(sa.Text)
    inhibited_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("warnings.id"))  # a red one over its cases


class WarningCase(Base):
    """A case behind a warning (the cases that raised it and those attached later)."""

    __tablename__ = "warning_cases"

    warning_id: Mapped[int] = mapped_column(sa.ForeignKey("warnings.id", ondelete="CASCADE"), primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id"), primary_key=True, index=True)
    attached_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- API shapes -----------------------------------------------------------------------------------------


class Thresholds(BaseModel):
    model_config = ConfigDict(extra="forbid")

    callers: int | None = Field(default=None, ge=1)  # distinct callers (a case without a number counts once)
    cases: int | None = Field(default=None, ge=1)
    workers: int | None = Field(default=None, ge=1)  # workers involved, summed
    amount: int | None = Field(default=None, ge=1)  # whole yuan, summed


class RuleIn(BaseModel):
    """A rule as admins write it (create, or replace on PUT)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    group_by: GroupBy
    categories: list[str] = Field(default_factory=list, max_length=50)
    window_days: int = Field(ge=1, le=365)
    min_cases: int = Field(default=2, ge=1, le=10000)
    grades: dict[Grade, Thresholds] = Field(default_factory=dict)
    burst_alpha: float | None = Field(default=None, gt=0.0, lt=0.5)
    burst_grade: Grade = Grade.yellow
    baseline_days: int = Field(default=180, ge=7, le=3650)
    floor_per_day: float = Field(default=0.0, ge=0.0, le=1000.0)
    group_case_red: bool = True
    repeat_red: bool = True
    repeat_days: int = Field(default=90, ge=1, le=3650)
    active: bool = True

    @field_validator("categories")
    @classmethod
    def _categories(cls, v: list[str]) -> list[str]:
        return sorted({c.strip() for c in v if c.strip()})


class RuleRead(RuleIn):
    model_config = ConfigDict(from_attributes=True)

    id: int
    version: int
    updated_by: str
    updated_at: datetime


class WarningListItem(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    grade: Grade
    status: WarningStatus
    subject: str
    group_by: GroupBy
    rule_id: int
    rule_name: str
    enterprise_id: int | None
    district: str | None
    category: str | None
    reason: str
    figures: dict[str, Any]
    case_ids: list[int]
    raised_at: datetime
    first_case_at: datetime
    sign_due_at: datetime
    overdue: bool  # not signed for by its deadline
    escalation_level: int
    snoozed: bool
    inhibited_by_id: int | None
    verdict: Verdict | None
    closed_at: datetime | None


class WarningCaseRead(BaseModel):
    """A case behind a warning with where it said what (its evidence) and where it stands now."""

    id: int
    case_no: str
    status: str
    category: str
    enterprise: str | None
    district: str | None
    workers: int | None
    amount: int | None
    group_case: bool
    created_at: datetime
    recording_id: int | None
    evidence: dict[str, Any]  # the case's extracted facts with segment/second/speaker ({field: {...}})
    summary: str


class TimelineEvent(BaseModel):
    at: datetime
    actor: str
    action: str  # the audit action, e.g. warning.raised, warning.signed, warning.attached
    label: str  # the same in Chinese for people: 预警生成, 签收 …
    details: dict[str, Any]


class WarningRead(WarningListItem):
    rule_version: int
    signed_by: str | None
    signed_at: datetime | None
    verified_by: str | None
    verified_at: datetime | None
    actions: list[dict[str, Any]]
    amount_recovered: int | None
    workers_covered: int | None
    outcome: str | None
    closed_by: str | None
    snoozed_until: datetime | None
    snooze_cases: int | None
    snooze_reason: str | None
    cases: list[WarningCaseRead]
    timeline: list[TimelineEvent]
    next_statuses: list[WarningStatus]


class WarningPagination(BaseModel):
    total: int
    items: list[WarningListItem]


class WarningTransitionIn(BaseModel):
    """签收 (to 已签收), 核实 (to 已核实 with a verdict), 联动处置 (to 处置中 with an action; again to add one),
    办结 (to 办结 with the outcome)."""

    model_config = ConfigDict(extra="forbid")

    to: WarningStatus
    verdict: Verdict | None = None
    action: Action | None = None
    note: str | None = Field(default=None, max_length=2000)
    amount_recovered: int | None = Field(default=None, ge=0, le=10**12)
    workers_covered: int | None = Field(default=None, ge=0, le=10**6)


class SnoozeIn(BaseModel):
    """暂缓: until a date, or until the warning has this many more cases (or both: whichever comes first)."""

    model_config = ConfigDict(extra="forbid")

    until: datetime | None = None
    more_cases: int | None = Field(default=None, ge=1, le=10000)
    reason: str = Field(min_length=1, max_length=2000)


class EvaluationRead(BaseModel):
    """What one evaluation did (``POST /warnings/evaluate``, `hotline warnings evaluate`, the hourly run)."""

    cases: int
    raised: int
    attached: int
    upgraded: int
    escalated: int
    woken: int
    seconds: float


class WarningSummary(BaseModel):
    """The dashboard panel: open warnings by grade and by district."""

    by_grade: dict[str, int]
    by_district: list[dict[str, Any]]  # [{district, 红, 橙, 黄, 蓝, total}]
    new: int  # waiting to be signed for
    overdue: int
