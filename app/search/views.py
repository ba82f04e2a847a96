from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.audit import service as audit
from app.auth.permissions import Masking, Permission
from app.cases.models import CaseStatus
from app.deps import DbSession, require
from app.errors import ApiError
from app.search import service
from app.search.models import SearchFilters, SearchResults
from app.users.models import User

router = APIRouter(prefix="/api/v1/search", tags=["search"])
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_STATUSES = [s.value for s in CaseStatus]


def _day(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        if not _DAY.fullmatch(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise ApiError(422, "invalid_date", f"{name}应为 YYYY-MM-DD 格式的日期，如 2025-03-01") from None


def _filters(category: str | None, district: str | None, status: str | None, enterprise: str | None,
             staff: str | None, date_from: str | None, date_to: str | None) -> SearchFilters:
    if status and status not in _STATUSES:
        raise ApiError(422, "invalid_status", f"状态应为 {'、'.join(_STATUSES)} 之一")
    filters = SearchFilters(
        category=category or None, district=district or None, status=status or None,
        enterprise=(enterprise or "").strip() or None, staff=staff or None,
        date_from=_day(date_from, "起始日期"), date_to=_day(date_to, "结束日期"),
    )
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        raise ApiError(422, "invalid_date_range", "起始日期不能晚于结束日期")
    return filters


@router.get("")
def search(
    db: DbSession,
    user: Annotated[User, Depends(require(Permission.search))],
    q: Annotated[str, Query(max_length=200, description="要查找的词，如企业名称；留空则按条件列出工单")] = "",
    category: Annotated[str | None, Query(max_length=32, description="类别")] = None,
    district: Annotated[str | None, Query(max_length=16, description="区市，如 崂山区")] = None,
    status: Annotated[str | None, Query(max_length=8, description="状态：受理/转办/办理/回访/办结")] = None,
    enterprise: Annotated[str | None, Query(max_length=128, description="企业名称中的一部分")] = None,
    staff: Annotated[str | None, Query(max_length=64, description="登记人或承办人的用户名")] = None,
    date_from: Annotated[str | None, Query(description="登记日期起（含），YYYY-MM-DD，北京时间")] = None,
    date_to: Annotated[str | None, Query(description="登记日期止（含），YYYY-MM-DD，北京时间")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> SearchResults:
    """Cases in which the words were said (or are in their fields), narrowed by the filters, best first;
    each with the segment, speaker and second where the words were said, the words marked. The digits of a
    phone or ID card number the user sees masked are not searched (138****5678 cannot be probed)."""
    filters = _filters(category, district, status, enterprise, staff, date_from, date_to)
    results = service.search(db=db, q=q, filters=filters, limit=limit, offset=offset,
                             masking=Masking.for_role(user.role))  # no matching on digits it sees masked
    used = {k: v.isoformat() if isinstance(v, date) else v for k, v in vars(filters).items() if v}
    audit.record(db=db, actor=f"user:{user.username}", action="search", subject_type="search", subject_id="-",
                 details={"q": q, "filters": used, "hits": results.total, "offset": offset})
    return results
