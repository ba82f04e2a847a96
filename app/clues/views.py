"""Clues (线索) and the ledgers (台账) over the API.

Reading clues and ledgers needs ``ledger:read`` (managers, admins); registering and changing clues needs
``clue:edit`` (managers, admins). Exports are audited (``ledger.exported``) and masked for the reader's role.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from starlette.background import BackgroundTask

from app.audit import service as audit
from app.auth.permissions import Masking, Permission
from app.clues import ledgers, service
from app.clues.models import (
    LEDGER_TITLES,
    Clue,
    ClueCreate,
    ClueImportResult,
    CluePagination,
    ClueRead,
    ClueSource,
    ClueStatus,
    ClueTransitionIn,
    ClueUpdate,
    LedgerKind,
    LedgerPage,
)
from app.deps import AppSettings, CurrentDatabase, DbSession, require
from app.enterprises import service as enterprises
from app.errors import ApiError
from app.users.models import User

router = APIRouter(prefix="/api/v1")
Reader = Annotated[User, Depends(require(Permission.ledger_read))]
Editor = Annotated[User, Depends(require(Permission.clue_edit))]
MAX_IMPORT_BYTES = 20 * 2**20
MAX_ERRORS_SHOWN = 1000
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _actor(user: User) -> str:
    return f"user:{user.username}"


@contextmanager
def _errors() -> Iterator[None]:
    """A refused move is 409 invalid_transition with the allowed moves; a bad value 422 invalid with its field."""
    try:
        yield
    except service.ClueError as e:
        raise ApiError(e.status, e.code, e.message, **e.extra) from e


def _clue(db: DbSession, clue_id: int, *, for_update: bool = False) -> Clue:
    clue = service.get(db=db, clue_id=clue_id, for_update=for_update)
    if clue is None:
        raise ApiError(404, "not_found", "线索不存在")
    return clue


def _period(start: date | None, end: date | None) -> None:
    if start and end and start > end:
        raise ApiError(422, "invalid", "起始日期不能晚于截止日期")


# --- clues ---------------------------------------------------------------------------------------------------------


@router.get("/clues", tags=["clues"])
def list_clues(
    db: DbSession,
    user: Reader,
    status: ClueStatus | None = None,
    source: ClueSource | None = None,
    category: Annotated[str | None, Query(max_length=16)] = None,
    district: Annotated[str | None, Query(max_length=16)] = None,
    q: Annotated[str | None, Query(max_length=128, description="编号、标题或企业名称的一部分（看不到完整电话/证件号的"
                                                                   "角色：含数字的检索词只查编号）")] = None,
    received_from: Annotated[date | None, Query(description="受理日期起（含，北京时间）")] = None,
    received_to: Annotated[date | None, Query(description="受理日期止（含，北京时间）")] = None,
    overdue: Annotated[bool | None, Query(description="逾期：过了承诺办结日期，或核实中过了核实时限")] = None,
    case_id: Annotated[int | None, Query(description="关联了这个工单的线索")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> CluePagination:
    """Clues, newest received first, filtered by any of the parameters given (the listing is audited)."""
    _period(received_from, received_to)
    filters = service.ClueFilter(
        status=status.value if status else None, source=source.value if source else None, category=category,
        district=district, q=q, received_from=received_from, received_to=received_to, overdue=overdue,
        case_id=case_id, masked=Masking.for_role(user.role).active)
    total, rows = service.list_clues(db=db, filters=filters, limit=limit, offset=offset)
    audit.record(db=db, actor=_actor(user), action="clue.listed", subject_type="clue", subject_id="-",
                 details={"filters": {k: str(v) for k, v in vars(filters).items() if v is not None},
                          "total": total, "ids": [c.id for c in rows]})
    return CluePagination(total=total, items=[service.list_item(c) for c in rows])


@router.post("/clues", status_code=201, tags=["clues"])
def create_clue(body: ClueCreate, db: DbSession, user: Editor) -> ClueRead:
    """Register a clue (form): status 核实中, numbered XS-YYYY-NNNNNN, deadlines counted back from the promised
    date; audited as ``clue.created``."""
    with _errors():
        clue = service.create(db=db, data=body, actor=_actor(user))
    return service.read(db=db, clue=clue)


@router.post("/clues/import", response_model=None, tags=["clues"])
async def import_clues(file: UploadFile, database: CurrentDatabase, user: Editor) -> ClueImportResult | JSONResponse:
    """Register the clues of an XLSX file, all rows or none; 422 ``import_failed`` lists every bad row with its
    row number, column and a message."""
    data = await file.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise ApiError(413, "too_large", f"文件过大（最多 {MAX_IMPORT_BYTES // 2**20} MB）")

    def work() -> ClueImportResult:
        with database.session() as db:
            return service.import_file(db=db, data=data, actor=_actor(user), filename=file.filename)

    try:
        return await run_in_threadpool(work)
    except service.ImportFailed as e:
        return JSONResponse(status_code=422, content={
            "code": "import_failed", "detail": str(e), "total_errors": len(e.errors),
            "errors": [err.model_dump() for err in e.errors[:MAX_ERRORS_SHOWN]]})


@router.get("/clues/{clue_id}", tags=["clues"])
def read_clue(clue_id: int, db: DbSession, user: Reader) -> ClueRead:
    """One clue with its linked cases, deadlines and next possible statuses (the read is audited)."""
    clue = _clue(db, clue_id)
    audit.record(db=db, actor=_actor(user), action="clue.read", subject_type="clue", subject_id=clue.id)
    return service.read(db=db, clue=clue)


@router.patch("/clues/{clue_id}", tags=["clues"])
def update_clue(clue_id: int, body: ClueUpdate, db: DbSession, user: Editor) -> ClueRead:
    """Change the fields sent; each change is audited (``clue.updated`` {field, before, after}). Changing the
    promised date moves the 核实 deadline with it. A closed clue takes only a corrected 追回金额 (409)."""
    clue = _clue(db, clue_id, for_update=True)
    with _errors():
        service.update(db=db, clue=clue, data=body, actor=_actor(user))
    return service.read(db=db, clue=clue)


@router.post("/clues/{clue_id}/transitions", tags=["clues"])
def move_clue(clue_id: int, body: ClueTransitionIn, db: DbSession, user: Editor) -> ClueRead:
    """Move the clue: 核实中 → 属实/不属实 → 转为工单 (links the existing cases given) / 结案. A refused move is
    409 ``invalid_transition`` with ``allowed``."""
    clue = _clue(db, clue_id, for_update=True)
    with _errors():
        service.transition(db=db, clue=clue, actor=_actor(user), to=body.to, note=body.note,
                           case_ids=body.case_ids, amount_recovered=body.amount_recovered)
    return service.read(db=db, clue=clue)


# --- ledgers -------------------------------------------------------------------------------------------------------


def _ledger_kind(kind: str) -> LedgerKind:
    try:
        return LedgerKind(kind)
    except ValueError:
        names = "、".join(f"{k.value}（{LEDGER_TITLES[k]}）" for k in LedgerKind)
        raise ApiError(404, "not_found", f"没有这个台账：{kind}（可选：{names}）") from None


def _filters(period_start: date | None, period_end: date | None, district: str | None,
             status: str | None) -> ledgers.LedgerFilter:
    _period(period_start, period_end)
    if district:
        found = enterprises.district_of(district)
        if found is None:
            raise ApiError(422, "invalid", f"未知的区市：{district}")
        district = found
    if status and status not in ledgers.STATUSES:
        raise ApiError(422, "invalid", f"没有「{status}」这个状态（可选：{'、'.join(ledgers.STATUSES)}）")
    return ledgers.LedgerFilter(period_start=period_start, period_end=period_end, district=district or None,
                                status=status or None)


PeriodStart = Annotated[date | None, Query(description="起（含，北京时间）YYYY-MM-DD")]
PeriodEnd = Annotated[date | None, Query(description="止（含，北京时间）YYYY-MM-DD")]
District = Annotated[str | None, Query(max_length=16)]
Status = Annotated[str | None, Query(max_length=8, description="线索或工单的状态")]


# Declared before /ledgers/{kind}: that path would otherwise take "arrears-new.xlsx" as a kind.
@router.get("/ledgers/{kind}.xlsx", response_class=FileResponse, tags=["ledgers"])
def export_ledger(
    kind: str, db: DbSession, user: Reader, settings: AppSettings, period_start: PeriodStart = None,
    period_end: PeriodEnd = None, district: District = None, status: Status = None,
) -> FileResponse:
    """The whole ledger as XLSX (streamed to a temporary file, then sent; masked for the reader's role), named
    in Chinese (RFC 5987 ``filename*``); audited as ``ledger.exported`` with the filters, rows and sha256."""
    which = _ledger_kind(kind)
    filters = _filters(period_start, period_end, district, status)
    directory = settings.data_dir / "tmp"
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="ledger-", suffix=".xlsx", dir=directory)
    os.close(fd)
    path = Path(name)
    try:
        done = ledgers.export(db=db, kind=which, filters=filters, path=path, actor=_actor(user),
                              masking=Masking.for_role(user.role))
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return FileResponse(path, media_type=XLSX, filename=done.filename, headers={"X-Content-SHA256": done.sha256},
                        background=BackgroundTask(path.unlink, missing_ok=True))


@router.get("/ledgers/{kind}", tags=["ledgers"])
def read_ledger(
    kind: str, db: DbSession, user: Reader, period_start: PeriodStart = None, period_end: PeriodEnd = None,
    district: District = None, status: Status = None, limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> LedgerPage:
    """One page of a ledger (arrears-new 新增欠薪线索清单, arrears-closed 已办结欠薪线索清单, opinion 舆情核实清单) with
    the totals over all of it; the read is audited (``ledger.read``)."""
    which = _ledger_kind(kind)
    filters = _filters(period_start, period_end, district, status)
    result = ledgers.page(db=db, kind=which, filters=filters, limit=limit, offset=offset)
    audit.record(db=db, actor=_actor(user), action="ledger.read", subject_type="ledger", subject_id=which.value,
                 details={"filters": filters.as_dict(), "total": result.total, "offset": offset,
                          "rows": [r.number for r in result.items]})
    return result
