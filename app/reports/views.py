from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from app.audit import service as audit
from app.auth.permissions import Permission
from app.deps import AppSettings, CurrentDatabase, DbSession, require
from app.errors import ApiError
from app.reports import service
from app.reports.models import ReportCreate, ReportFormat, ReportKind, ReportPagination, ReportRead
from app.users.models import User

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])
Reader = Annotated[User, Depends(require(Permission.report_read))]
Generator = Annotated[User, Depends(require(Permission.stats_read))]
MEDIA = {ReportFormat.docx: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
         ReportFormat.pdf: "application/pdf"}


def _error(e: service.ReportError) -> ApiError:
    return ApiError(e.status, e.code, e.message)


@router.post("", status_code=201)
async def generate(body: ReportCreate, database: CurrentDatabase, settings: AppSettings, user: Generator) -> ReportRead:
    """Generate the monthly (period YYYY-MM) or daily (YYYY-MM-DD) report now and archive it: the DOCX and the
    PDF, their sha256 in the audit chain. Generating the same period again with the same data gives the same
    files (``unchanged``)."""
    if (body.kind is ReportKind.monthly) != (len(body.period) == 7):
        raise ApiError(422, "invalid_period", "月报的期间为 YYYY-MM，日报为 YYYY-MM-DD")
    try:
        read, _ = await run_in_threadpool(service.generate, database=database, settings=settings, kind=body.kind,
                                          period=body.period, actor=f"user:{user.username}")
    except service.ReportError as e:
        raise _error(e) from e
    return read


@router.get("")
def listing(
    db: DbSession, user: Reader,
    kind: ReportKind | None = None,
    period: Annotated[str | None, Query(max_length=10)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ReportPagination:
    """The archive, newest first."""
    total, rows = service.listing(db=db, kind=kind, period=period, limit=limit, offset=offset)
    return ReportPagination(total=total, items=[service.to_read(r) for r in rows])


@router.get("/{report_id}")
def read(report_id: int, db: DbSession, user: Reader) -> ReportRead:
    try:
        return service.to_read(service.get(db=db, report_id=report_id))
    except service.ReportError as e:
        raise _error(e) from e


@router.get("/{report_id}/{fmt}", response_class=FileResponse)
def download(report_id: int, fmt: ReportFormat, db: DbSession, settings: AppSettings, user: Reader) -> FileResponse:
    """The archived DOCX or PDF, checked against its sha256; named in Chinese (RFC 5987 ``filename*``)."""
    try:
        row = service.get(db=db, report_id=report_id)
        path = service.file_of(settings=settings, row=row, fmt=fmt)
    except service.ReportError as e:
        raise _error(e) from e
    audit.record(db=db, actor=f"user:{user.username}", action="report.downloaded", subject_type="report",
                 subject_id=row.id, details={"format": fmt.value, "sha256": getattr(row, f"{fmt.value}_sha256")})
    db.commit()  # the download is on record before a byte is sent
    return FileResponse(path, media_type=MEDIA[fmt], filename=service.filename(row, fmt))
