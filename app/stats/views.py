from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.audit import service as audit
from app.auth.permissions import Permission
from app.deps import DbSession, require
from app.errors import ApiError
from app.stats import service
from app.stats.models import CaseStats, Dimension, Period
from app.users.models import User

router = APIRouter(prefix="/api/v1/stats", tags=["stats"])
Analyst = Annotated[User, Depends(require(Permission.stats_read))]


@router.get("/cases")
def case_stats(
    db: DbSession,
    user: Analyst,
    group_by: Annotated[Dimension | None, Query(description="分组维度：类别、区市、职业、年龄段……")] = None,
    period: Annotated[Period | None, Query(description="按日/周/月（北京时间）分段")] = None,
    date_from: Annotated[date | None, Query(description="起始日期（含），北京时间")] = None,
    date_to: Annotated[date | None, Query(description="结束日期（含），北京时间")] = None,
    category: str | None = None,
    district: str | None = None,
    status: str | None = None,
) -> CaseStats:
    """Cases, workers involved and amounts by a dimension and/or by period, with overdue and group-case
    counts for the same selection in ``summary``."""
    q = service.StatsQuery(group_by=group_by, period=period, date_from=date_from, date_to=date_to,
                           category=category, district=district, status=status)
    try:
        stats = service.case_stats(db=db, q=q)
    except ValueError as e:
        raise ApiError(422, "invalid_range", str(e)) from e
    audit.record(db=db, actor=f"user:{user.username}", action="stats.read", subject_type="stats",
                 subject_id="cases", details={"query": {k: v for k, v in q.__dict__.items() if v is not None},
                                              "rows": len(stats.rows)})
    return stats
