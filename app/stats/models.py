from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import BaseModel


class Dimension(StrEnum):
    """What case statistics can be grouped by: a column of ``cases`` each."""

    category = "category"
    district = "district"
    occupation = "occupation"
    gender = "gender"
    age_bracket = "age_bracket"
    enterprise_type = "enterprise_type"
    arrears_type = "arrears_type"
    status = "status"
    enterprise = "enterprise"


class Period(StrEnum):
    """Buckets of time, in Asia/Shanghai: a day (2026-11-24), a week (named by its Monday) or a month (2026-11)."""

    day = "day"
    week = "week"
    month = "month"


class StatsRow(BaseModel):
    key: str | None  # the dimension's value (None: not filled in); None for every row without group_by
    period: str | None  # the bucket's name; None without period
    cases: int
    workers: int  # workers involved, summed over the cases that say
    amount: int  # amounts in dispute, whole yuan, summed


class StatsSummary(BaseModel):
    cases: int
    workers: int
    amount: int
    overdue: int  # still open past their completion deadline (due_at), now
    closed_late: int  # closed after their deadline
    feedback_overdue: int  # first feedback to the caller late, or still missing past its deadline
    group_cases: int  # 群体性 cases
    escalated: int  # 督办


class CaseStats(BaseModel):
    group_by: Dimension | None
    period: Period | None
    date_from: date | None
    date_to: date | None
    rows: list[StatsRow]
    summary: StatsSummary
