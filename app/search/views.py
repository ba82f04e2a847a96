from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.audit import service as audit
from app.auth.permissions import Permission
from app.deps import DbSession, require
from app.search import service
from app.search.models import SearchResults
from app.users.models import User

router = APIRouter(prefix="/api/v1/search", tags=["search"])


@router.get("")
def search(
    db: DbSession,
    user: Annotated[User, Depends(require(Permission.search))],
    q: Annotated[str, Query(min_length=1, max_length=200, description="要查找的词，如企业名称")],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> SearchResults:
    """Cases in which the words were said, each with the segment and second where they were said."""
    results = service.search(db=db, q=q, limit=limit, offset=offset)
    audit.record(db=db, actor=f"user:{user.username}", action="search", subject_type="search", subject_id="-",
                 details={"q": q, "hits": results.total})
    return results
