"""Case statistics in SQL (one grouped query, one summary query) on SQLite and PostgreSQL alike.

Times are bucketed by the day in Asia/Shanghai, where the hotline is: PostgreSQL converts with the zone itself;
SQLite adds 8 hours (China has kept UTC+8 without daylight saving since 1991). Date filters are Shanghai days
too, both ends included."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.cases.models import Case, CaseStatus
from app.db import utcnow
from app.stats.models import CaseStats, Dimension, Period, StatsRow, StatsSummary

TZ = ZoneInfo("Asia/Shanghai")
_PG_FORMAT = {Period.day: "YYYY-MM-DD", Period.week: "YYYY-MM-DD", Period.month: "YYYY-MM"}
_SQLITE_FORMAT = {Period.day: "%Y-%m-%d", Period.week: "%Y-%m-%d", Period.month: "%Y-%m"}


@dataclass(frozen=True)
class StatsQuery:
    group_by: Dimension | None = None
    period: Period | None = None
    date_from: date | None = None  # Shanghai days, inclusive
    date_to: date | None = None
    category: str | None = None
    district: str | None = None
    status: str | None = None


def local_midnight(day: date) -> datetime:
    """The instant (UTC) a Shanghai day begins."""
    return datetime.combine(day, time(), tzinfo=TZ).astimezone(UTC)


def period_expr(dialect: str, period: Period) -> sa.ColumnElement[str]:
    """``cases.created_at`` as the name of its Shanghai day, week (its Monday) or month."""
    if dialect == "postgresql":
        local = sa.func.timezone(TZ.key, Case.created_at)  # timestamptz → Shanghai wall-clock time
        if period is Period.week:
            local = sa.func.date_trunc("week", local)  # ISO weeks: Monday
        return sa.func.to_char(local, _PG_FORMAT[period])
    modifiers = ["+8 hours"] + (["weekday 0", "-6 days"] if period is Period.week else [])  # Sunday, back to Monday
    return sa.func.strftime(_SQLITE_FORMAT[period], Case.created_at, *modifiers)


def _filters(q: StatsQuery) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if q.date_from:
        conditions.append(Case.created_at >= local_midnight(q.date_from))
    if q.date_to:
        conditions.append(Case.created_at < local_midnight(q.date_to + timedelta(days=1)))
    for column, value in ((Case.category, q.category), (Case.district, q.district), (Case.status, q.status)):
        if value:
            conditions.append(column == value)
    return conditions


def _int(value: Any) -> int:
    return int(value or 0)  # SUM is NULL over no rows, and a Decimal on PostgreSQL


def case_stats(*, db: Session, q: StatsQuery, now: datetime | None = None) -> CaseStats:
    if q.date_from and q.date_to and q.date_from > q.date_to:
        raise ValueError("开始日期不能晚于结束日期")
    dialect = db.get_bind().dialect.name
    where = _filters(q)
    key = getattr(Case, q.group_by.value) if q.group_by else sa.null()
    bucket = period_expr(dialect, q.period) if q.period else sa.null()
    # Grouped by the output columns' names: the same expression written twice would be two different bound
    # parameters to PostgreSQL, which then refuses the query.
    stmt = (
        sa.select(key.label("grp_key"), bucket.label("grp_period"), sa.func.count(Case.id).label("cases"),
                  sa.func.sum(Case.workers).label("workers"), sa.func.sum(Case.amount).label("amount"))
        .where(*where)
        .group_by(sa.text("grp_key"), sa.text("grp_period"))
        .order_by(sa.text("grp_period"), sa.text("cases DESC"))
    )
    if q.group_by:  # unfilled last on both backends (SQLite puts NULL first, PostgreSQL last)
        stmt = stmt.order_by(key.is_(None), sa.text("grp_key"))
    rows = [StatsRow(key=None if r.grp_key is None else str(r.grp_key), period=r.grp_period, cases=r.cases,
                     workers=_int(r.workers), amount=_int(r.amount)) for r in db.execute(stmt)]
    return CaseStats(group_by=q.group_by, period=q.period, date_from=q.date_from, date_to=q.date_to, rows=rows,
                     summary=summary(db=db, where=where, now=now or utcnow()))


def summary(*, db: Session, where: list[sa.ColumnElement[bool]], now: datetime) -> StatsSummary:
    open_ = Case.status != CaseStatus.closed.value

    def count_if(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
        return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)

    row = db.execute(sa.select(
        sa.func.count(Case.id).label("cases"),
        sa.func.sum(Case.workers).label("workers"),
        sa.func.sum(Case.amount).label("amount"),
        count_if(sa.and_(open_, Case.due_at.is_not(None), Case.due_at < now)).label("overdue"),
        count_if(sa.and_(Case.closed_at.is_not(None), Case.due_at.is_not(None), Case.closed_at > Case.due_at))
        .label("closed_late"),
        count_if(sa.and_(Case.feedback_due_at.is_not(None), sa.or_(
            Case.first_feedback_at > Case.feedback_due_at,
            sa.and_(Case.first_feedback_at.is_(None), Case.feedback_due_at < now)))).label("feedback_overdue"),
        count_if(Case.group_case.is_(True)).label("group_cases"),
        count_if(Case.escalated.is_(True)).label("escalated"),
    ).where(*where)).one()
    return StatsSummary(cases=row.cases, workers=_int(row.workers), amount=_int(row.amount), overdue=_int(row.overdue),
                        closed_late=_int(row.closed_late), feedback_overdue=_int(row.feedback_overdue),
                        group_cases=_int(row.group_cases), escalated=_int(row.escalated))
