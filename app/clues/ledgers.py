"""The ledgers (台账): 新增欠薪线索清单, 已办结欠薪线索清单, 舆情核实清单 — one query each, paged for the screen
and streamed to XLSX.

"Every 欠薪 case is a clue in the arrears ledger automatically" is done by the *query*, not by copying cases
into the clues table: the arrears ledgers are ``UNION ALL`` of the 欠薪 clues and the 欠薪 cases. A copy would
have to follow every later change of a case (its category, enterprise, district, amount, status — changed by
staff, by re-extraction, by the workflow), through hooks every writer must remember to call, and would
drift the day one is missed; the query is always right and costs one index scan more. A case that is linked
to an arrears clue (the clue was 转为工单, or staff registered a clue to track the case with 倒排工期 and 追回金额)
is listed once, through the clue. A hotline case's own row has no 追回金额: cases do not record one.

Periods are Beijing calendar days, inclusive: received (受理) in the period for 新增 and 舆情, closed (办结/结案) in
it for 已办结. ``status`` matches the row's own status (a clue's 核实中…结案 or a case's 受理…办结).

XLSX: XlsxWriter in ``constant_memory`` mode (each row goes to disk as it is written) fed from the database
in chunks (``yield_per``): memory stays flat however long the ledger. Text is masked for the reader's role.
Measured on the 2-core development box, 100,000 rows: ~23 s on SQLite and on PostgreSQL, Python heap peak
~5 MiB; about 7 s of it is reading, building and masking rows, the rest XlsxWriter's per-cell serialization.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.auth.permissions import Masking
from app.cases.models import Case, CaseStatus
from app.clues.models import (
    ARREARS,
    LEDGER_TITLES,
    OPINION_SOURCES,
    Clue,
    ClueCase,
    ClueSource,
    ClueStatus,
    LedgerKind,
    LedgerPage,
    LedgerRow,
    LedgerTotals,
)
from app.clues.service import LOCAL_TZ, day_end, day_start, local_day, overdue_sql
from app.db import as_utc, utcnow
from app.enterprises.models import Enterprise

CHUNK = 2000  # rows fetched from the database at a time
MASKED = Masking(phones=True, ids=True)  # what an export shows when the caller does not say
COLUMNS = ("编号", "来源", "受理时间", "企业", "统一社会信用代码", "区市", "涉及人数", "金额", "诉求", "办理进展",
           "责任人", "时限", "是否逾期", "办结时间", "追回金额")
WIDTHS = (18, 10, 17, 28, 21, 9, 9, 12, 50, 32, 18, 11, 9, 17, 12)
STATUSES = tuple(dict.fromkeys([*(s.value for s in ClueStatus), *(s.value for s in CaseStatus)]))
EXCEL_TEXT_LIMIT = 32767


@dataclass(frozen=True)
class LedgerFilter:
    """period_start/period_end: Beijing days, inclusive; district and status: exact; None: no filter."""

    period_start: date | None = None
    period_end: date | None = None
    district: str | None = None
    status: str | None = None

    def as_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in vars(self).items() if v is not None}


# --- the query -----------------------------------------------------------------------------------------------


def _in_period(column: Any, f: LedgerFilter) -> list[sa.ColumnElement[bool]]:
    conds = []
    if f.period_start:
        conds.append(column >= day_start(f.period_start))
    if f.period_end:
        conds.append(column < day_end(f.period_end))
    return conds


def _clue_select(kind: LedgerKind, f: LedgerFilter, now: datetime) -> sa.Select[*tuple[Any, ...]]:
    conds: list[sa.ColumnElement[bool]] = []
    if kind is LedgerKind.opinion:
        conds.append(Clue.source.in_([s.value for s in OPINION_SOURCES]))
    else:
        conds.append(Clue.category == ARREARS)
    if kind is LedgerKind.arrears_closed:
        conds += [Clue.status == ClueStatus.closed.value, *_in_period(Clue.closed_at, f)]
    else:
        conds += _in_period(Clue.received_at, f)
    if f.district:
        conds.append(Clue.district == f.district)
    if f.status:
        conds.append(Clue.status == f.status)
    return (
        sa.select(
            sa.literal_column("'clue'", sa.String).label("ref"), Clue.id.label("id"), Clue.number.label("number"),
            Clue.source.label("source"), Clue.received_at.label("received_at"), Clue.enterprise.label("enterprise"),
            Enterprise.credit_code.label("credit_code"), Clue.district.label("district"),
            Clue.workers.label("workers"), Clue.amount.label("amount"), Clue.title.label("title"),
            Clue.content.label("content"), Clue.status.label("status"), Clue.verdict.label("verdict"),
            Clue.last_note.label("note"), Clue.responsible_unit.label("unit"), Clue.responsible.label("person"),
            Clue.promised_date.label("deadline_day"), Clue.due_at.label("due_at"),
            sa.case((overdue_sql(now), 1), else_=0).label("overdue"), Clue.closed_at.label("closed_at"),
            Clue.amount_recovered.label("amount_recovered"),
        )
        .outerjoin(Enterprise, Enterprise.id == Clue.enterprise_id)
        .where(*conds)
    )


def _case_received() -> sa.ColumnElement[Any]:
    return sa.func.coalesce(Case.accepted_at, Case.created_at)


def _case_overdue(now: datetime) -> sa.ColumnElement[bool]:
    """As the case list's 超期 (app/cases/service.py): past the completion deadline, open or closed late."""
    return sa.and_(Case.due_at.is_not(None), sa.or_(
        sa.and_(Case.closed_at.is_(None), Case.due_at < now),
        sa.and_(Case.closed_at.is_not(None), Case.due_at < Case.closed_at)))


def _case_select(kind: LedgerKind, f: LedgerFilter, now: datetime) -> sa.Select[*tuple[Any, ...]]:
    # Not correlated: the (few) tracked case ids are found once, not once per case (a correlated EXISTS made
    # SQLite scan every arrears clue for every case: minutes for a 100,000-row ledger).
    tracked = sa.select(ClueCase.case_id).join(Clue, Clue.id == ClueCase.clue_id).where(Clue.category == ARREARS)
    received = _case_received()
    conds: list[sa.ColumnElement[bool]] = [Case.category == ARREARS, Case.id.not_in(tracked)]
    if kind is LedgerKind.arrears_closed:
        conds += [Case.status == CaseStatus.closed.value, Case.closed_at.is_not(None),
                  *_in_period(Case.closed_at, f)]
    else:
        conds += _in_period(received, f)
    if f.district:
        conds.append(Case.district == f.district)
    if f.status:
        conds.append(Case.status == f.status)
    return (
        sa.select(
            sa.literal_column("'case'", sa.String), Case.id, Case.case_no,
            sa.literal_column(f"'{ClueSource.hotline.value}'", sa.String), received, Case.enterprise,
            Enterprise.credit_code, Case.district, Case.workers, Case.amount, sa.cast(sa.null(), sa.String(200)),
            Case.summary, Case.status, sa.cast(sa.null(), sa.String(8)), sa.literal_column("''", sa.Text),
            Case.unit, Case.assignee, sa.cast(sa.null(), sa.Date), Case.due_at,
            sa.case((_case_overdue(now), 1), else_=0), Case.closed_at, sa.cast(sa.null(), sa.BigInteger),
        )
        .outerjoin(Enterprise, Enterprise.id == Case.enterprise_id)
        .where(*conds)
    )


def _rows_query(kind: LedgerKind, f: LedgerFilter, now: datetime) -> sa.Subquery:
    clues = _clue_select(kind, f, now)
    if kind is LedgerKind.opinion:
        return clues.subquery("ledger")
    return sa.union_all(clues, _case_select(kind, f, now)).subquery("ledger")


def _ordered(kind: LedgerKind, u: sa.Subquery) -> sa.Select[*tuple[Any, ...]]:
    if kind is LedgerKind.arrears_closed:
        return sa.select(u).order_by(u.c.closed_at, u.c.received_at, u.c.number)
    return sa.select(u).order_by(u.c.received_at, u.c.number)


def totals(*, db: Session, kind: LedgerKind | str, filters: LedgerFilter | None = None,
           now: datetime | None = None) -> LedgerTotals:
    """Counts and sums over every row of the ledger."""
    kind, f, now = LedgerKind(kind), filters or LedgerFilter(), as_utc(now or utcnow())
    u = _rows_query(kind, f, now)
    row = db.execute(sa.select(
        sa.func.count(), sa.func.coalesce(sa.func.sum(u.c.workers), 0), sa.func.coalesce(sa.func.sum(u.c.amount), 0),
        sa.func.coalesce(sa.func.sum(u.c.amount_recovered), 0), sa.func.coalesce(sa.func.sum(u.c.overdue), 0),
    )).one()
    return LedgerTotals(rows=int(row[0]), workers=int(row[1]), amount=int(row[2]), amount_recovered=int(row[3]),
                        overdue=int(row[4]))


# --- rows --------------------------------------------------------------------------------------------------------


def _demand(title: str | None, content: str | None) -> str:
    content = (content or "").strip()
    if not title:
        return content
    if not content or content.startswith(title):
        return content or title
    return f"{title}：{content}"


def _linked_cases(db: Session, clue_ids: Sequence[int]) -> dict[int, list[str]]:
    """For clues 转为工单 / 结案: the numbers (and statuses) of the cases they are linked to."""
    if not clue_ids:
        return {}
    out: dict[int, list[str]] = {}
    for clue_id, case_no, status in db.execute(
            sa.select(ClueCase.clue_id, Case.case_no, Case.status).join(Case, Case.id == ClueCase.case_id)
            .where(ClueCase.clue_id.in_(clue_ids)).order_by(ClueCase.clue_id, Case.id)):
        out.setdefault(int(clue_id), []).append(f"{case_no}（{status}）")
    return out


def _progress(r: Any, cases: list[str]) -> str:
    text = str(r.status)
    if r.ref == "clue" and r.verdict and r.status in (ClueStatus.to_case.value, ClueStatus.closed.value):
        text += f"（{r.verdict}）"
    if cases:
        text += "，工单 " + "、".join(cases)
    if r.note:
        text += f"：{r.note}"
    return text


@dataclass(slots=True)
class LedgerItem:
    """One ledger row as streamed (a plain dataclass: 100,000 pydantic models cost seconds); ``LedgerRow`` is
    its API schema, field for field."""

    ref: str
    id: int
    number: str
    source: str
    received_at: datetime
    enterprise: str | None
    credit_code: str | None
    district: str | None
    workers: int | None
    amount: int | None
    demand: str
    progress: str
    responsible: str
    deadline: date | None
    overdue: bool
    closed_at: datetime | None
    amount_recovered: int | None


_ITEM_FIELDS = tuple(LedgerRow.model_fields)


def _row(r: Any, cases: list[str]) -> LedgerItem:
    deadline = r.deadline_day if r.deadline_day is not None else (local_day(r.due_at) if r.due_at else None)
    return LedgerItem(
        r.ref, r.id, r.number, r.source, as_utc(r.received_at), r.enterprise, r.credit_code, r.district, r.workers,
        r.amount, _demand(r.title, r.content), _progress(r, cases),
        " / ".join(x for x in (r.unit, r.person) if x), deadline, bool(r.overdue),
        as_utc(r.closed_at) if r.closed_at else None, r.amount_recovered)


def _build(db: Session, chunk: Sequence[Any]) -> list[LedgerItem]:
    wanted = [r.id for r in chunk if r.ref == "clue" and r.status in (ClueStatus.to_case.value,
                                                                      ClueStatus.closed.value)]
    cases = _linked_cases(db, wanted)
    return [_row(r, cases.get(r.id, []) if r.ref == "clue" else []) for r in chunk]


def page(*, db: Session, kind: LedgerKind | str, filters: LedgerFilter | None = None, limit: int = 50,
         offset: int = 0, now: datetime | None = None) -> LedgerPage:
    """One page of the ledger for the screen, with the totals over all of it."""
    kind, f, now = LedgerKind(kind), filters or LedgerFilter(), as_utc(now or utcnow())
    sums = totals(db=db, kind=kind, filters=f, now=now)
    chunk = db.execute(_ordered(kind, _rows_query(kind, f, now)).limit(limit).offset(offset)).all()
    items = [LedgerRow.model_validate({name: getattr(item, name) for name in _ITEM_FIELDS})
             for item in _build(db, chunk)]
    return LedgerPage(kind=kind, title=LEDGER_TITLES[kind], total=sums.rows, totals=sums, items=items, limit=limit,
                      offset=offset)


def iter_rows(*, db: Session, kind: LedgerKind | str, filters: LedgerFilter | None = None,
              now: datetime | None = None, chunk: int = CHUNK) -> Iterator[LedgerItem]:
    """Every row of the ledger in order, read from the database ``chunk`` at a time (a server-side cursor on
    PostgreSQL): never the whole ledger in memory."""
    kind, f, now = LedgerKind(kind), filters or LedgerFilter(), as_utc(now or utcnow())
    result = db.execute(_ordered(kind, _rows_query(kind, f, now)).execution_options(yield_per=chunk))
    try:
        for part in result.partitions(chunk):
            yield from _build(db, part)
    finally:
        result.close()


# --- XLSX ----------------------------------------------------------------------------------------------------------


def _local(at: datetime | None) -> datetime | None:
    """Excel has no time zones: Beijing wall time, naive."""
    return as_utc(at).astimezone(LOCAL_TZ).replace(tzinfo=None) if at else None


_EXCEL_EPOCH_DAYS = 25569  # the Excel serial day number of 1970-01-01 (1900 date system)
_EXCEL_ORDINAL = date(1899, 12, 30).toordinal()
_BEIJING_OFFSET_S = 8 * 3600  # Asia/Shanghai has kept UTC+8 without summer time since 1991


def _excel_time(at: datetime) -> float:
    """An instant as an Excel serial date-time in Beijing wall time: one float operation per cell (XlsxWriter's
    write_datetime does the same through several datetime conversions; this runs 200,000 times a ledger)."""
    return (at.timestamp() + _BEIJING_OFFSET_S) / 86400 + _EXCEL_EPOCH_DAYS


def _excel_day(day: date) -> int:
    return day.toordinal() - _EXCEL_ORDINAL


def describe(kind: LedgerKind, f: LedgerFilter) -> str:
    """The filters in words, for the line under the title."""
    period = f"{f.period_start or '不限'} 至 {f.period_end or '不限'}"
    basis = "办结时间" if kind is LedgerKind.arrears_closed else "受理时间"
    return f"{basis}：{period}　区市：{f.district or '全部'}　状态：{f.status or '全部'}"


def write_xlsx(*, db: Session, kind: LedgerKind | str, filters: LedgerFilter | None = None, path: Path | str,
               masking: Masking | None = None, now: datetime | None = None) -> int:
    """Write the ledger to ``path`` as XLSX, streaming (constant memory); returns the number of data rows.

    Layout: title, the filters and export time, the header (frozen, filterable), one row per item, a 合计 row
    (rows, workers, amounts, overdue count). Text is masked with ``masking`` (default: phone and ID numbers
    masked). Printed A4 landscape, one page wide, the header repeated on every page."""
    import xlsxwriter

    kind, f, now = LedgerKind(kind), filters or LedgerFilter(), as_utc(now or utcnow())
    masking = masking or MASKED
    path = Path(path)
    title = LEDGER_TITLES[kind]
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "tmpdir": str(path.parent)})
    try:
        sheet = book.add_worksheet(title)
        # No cell borders: printed grid lines draw the table, so empty cells need not be written at all (a third
        # fewer cells: XlsxWriter's per-cell cost is most of the time of a 100,000-row export).
        base = {"font_name": "宋体", "font_size": 10, "valign": "top"}
        fmt_title = book.add_format({"bold": True, "font_size": 16, "align": "center", "font_name": "黑体"})
        fmt_sub = book.add_format({"font_size": 10, "font_name": "宋体"})
        fmt_head = book.add_format({**base, "bold": True, "align": "center", "valign": "vcenter", "text_wrap": True,
                                    "bg_color": "#D9E1F2", "border": 1})
        fmt_text = book.add_format(base)
        fmt_wrap = book.add_format({**base, "text_wrap": True})
        fmt_int = book.add_format({**base, "num_format": "#,##0"})
        fmt_day = book.add_format({**base, "num_format": "yyyy-mm-dd"})
        fmt_time = book.add_format({**base, "num_format": "yyyy-mm-dd hh:mm"})
        fmt_late = book.add_format({**base, "align": "center", "font_color": "#C00000", "bold": True})
        fmt_ok = book.add_format({**base, "align": "center"})
        fmt_sum = book.add_format({**base, "bold": True, "num_format": "#,##0", "top": 1})
        for i, width in enumerate(WIDTHS):
            sheet.set_column(i, i, width)
        last_col = len(COLUMNS) - 1
        exported = _local(now)
        sheet.merge_range(0, 0, 0, last_col, title, fmt_title)
        sheet.merge_range(1, 0, 1, last_col, f"{describe(kind, f)}　导出时间：{exported:%Y-%m-%d %H:%M}（北京时间）",
                          fmt_sub)
        for i, name in enumerate(COLUMNS):
            sheet.write_string(2, i, name, fmt_head)
        sheet.freeze_panes(3, 0)
        sheet.repeat_rows(2)
        sheet.set_landscape()
        sheet.set_paper(9)  # A4
        sheet.fit_to_pages(1, 0)
        sheet.hide_gridlines(0)  # grid lines printed too

        put, num = sheet.write_string, sheet.write_number
        mask = masking.text if masking.active else str
        n = workers = amount = recovered = late = 0
        row = 3
        for item in iter_rows(db=db, kind=kind, filters=f, now=now):
            put(row, 0, item.number, fmt_text)
            put(row, 1, item.source, fmt_text)
            num(row, 2, _excel_time(item.received_at), fmt_time)
            if item.enterprise:
                put(row, 3, item.enterprise, fmt_wrap)
            if item.credit_code:
                put(row, 4, item.credit_code, fmt_text)
            if item.district:
                put(row, 5, item.district, fmt_text)
            if item.workers is not None:
                num(row, 6, item.workers, fmt_int)
                workers += item.workers
            if item.amount is not None:
                num(row, 7, item.amount, fmt_int)
                amount += item.amount
            if item.demand:  # free text: phone and ID numbers masked for the reader
                put(row, 8, mask(item.demand)[:EXCEL_TEXT_LIMIT], fmt_wrap)
            put(row, 9, mask(item.progress)[:EXCEL_TEXT_LIMIT], fmt_wrap)
            if item.responsible:
                put(row, 10, item.responsible, fmt_wrap)
            if item.deadline is not None:
                num(row, 11, _excel_day(item.deadline), fmt_day)
            put(row, 12, "是" if item.overdue else "否", fmt_late if item.overdue else fmt_ok)
            if item.closed_at is not None:
                num(row, 13, _excel_time(item.closed_at), fmt_time)
            if item.amount_recovered is not None:
                num(row, 14, item.amount_recovered, fmt_int)
                recovered += item.amount_recovered
            n += 1
            late += item.overdue
            row += 1
        put(row, 0, "合计", fmt_sum)
        put(row, 1, f"共 {n} 条", fmt_sum)
        for col in (2, 3, 4, 5, 8, 9, 10, 11, 13):
            sheet.write_blank(row, col, None, fmt_sum)
        num(row, 6, workers, fmt_sum)
        num(row, 7, amount, fmt_sum)
        put(row, 12, f"逾期 {late} 条", fmt_sum)
        num(row, 14, recovered, fmt_sum)
        sheet.autofilter(2, 0, max(row - 1, 2), last_col)
    finally:
        book.close()
    return n


def file_name(kind: LedgerKind | str, filters: LedgerFilter | None, now: datetime | None = None) -> str:
    """新增欠薪线索清单_2026-03-01至2026-03-31.xlsx (the export day when no period is given)."""
    kind, f = LedgerKind(kind), filters or LedgerFilter()
    if f.period_start or f.period_end:
        span = f"{f.period_start or '起'}至{f.period_end or '今'}"
    else:
        span = f"截至{local_day(now or utcnow())}"
    return f"{LEDGER_TITLES[kind]}_{span}.xlsx"


@dataclass(frozen=True)
class Export:
    path: Path
    filename: str  # the name to download it as
    rows: int
    sha256: str


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export(*, db: Session, kind: LedgerKind | str, filters: LedgerFilter | None, path: Path, actor: str,
           masking: Masking, now: datetime | None = None) -> Export:
    """Write the ledger's XLSX to ``path`` and put the export on record (``ledger.exported`` with the filters,
    the number of rows and the file's sha256), in the caller's transaction."""
    kind, f, now = LedgerKind(kind), filters or LedgerFilter(), as_utc(now or utcnow())
    rows = write_xlsx(db=db, kind=kind, filters=f, path=path, masking=masking, now=now)
    digest = sha256_of(path)
    name = file_name(kind, f, now)
    audit.record(db=db, actor=actor, action="ledger.exported", subject_type="ledger", subject_id=kind.value,
                 details={"kind": kind.value, "title": LEDGER_TITLES[kind], "filters": f.as_dict(), "rows": rows,
                          "sha256": digest, "file": name, "masked": masking.active})
    return Export(path=path, filename=name, rows=rows, sha256=digest)
