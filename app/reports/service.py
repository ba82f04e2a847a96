"""Generate, archive, list and fetch reports.

``generate`` reads the figures in one short transaction, renders the DOCX and the PDF outside any transaction
(charts and layout take most of the time; on SQLite a transaction holds the write lock), writes the files under
``data_dir/reports/KIND/PERIOD/`` named by their sha256, and archives them in a second transaction with a
``report.generated`` audit event carrying both digests. The same period with the same data gives the same
bytes, hence the same files (``unchanged`` says so)."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.config import Settings
from app.db import Database, utcnow
from app.reports import daily, document, monthly, periods
from app.reports.models import TITLES, Report, ReportFile, ReportFormat, ReportKind, ReportRead

REPORTS_DIR = "reports"


class ReportError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Rendered:
    kind: ReportKind
    period: str
    title: str
    summary: dict[str, Any]
    docx: bytes
    pdf: bytes
    seconds: dict[str, float]  # figures, charts, docx, pdf


def title_of(kind: ReportKind, period: str) -> str:
    label = periods.cn_month(period) if kind is ReportKind.monthly else periods.cn_date(periods.day(period).first)
    return f"{TITLES[kind]}（{label}）"


def render(*, database: Database, kind: ReportKind | str, period: str, now: datetime | None = None) -> Rendered:
    """The report's files, from the figures as they stand (nothing archived)."""
    kind = ReportKind(kind)
    started = time.perf_counter()
    try:
        with database.session() as db:
            if kind is ReportKind.monthly:
                mf = monthly.figures(db=db, month=period, now=now)
                summary = mf.summary()
            else:
                df = daily.figures(db=db, day=period, now=now)
                summary = df.summary()
    except periods.PeriodError as e:
        raise ReportError(422, "invalid_period", str(e)) from e
    got = time.perf_counter()
    doc = monthly.document(mf) if kind is ReportKind.monthly else daily.document(df)  # charts drawn here
    laid = time.perf_counter()
    docx_bytes = document.to_docx(doc)
    made_docx = time.perf_counter()
    pdf_bytes = document.to_pdf(doc)
    done = time.perf_counter()
    return Rendered(kind, period, title_of(kind, period), summary, docx_bytes, pdf_bytes,
                    {"figures": got - started, "charts": laid - got, "docx": made_docx - laid, "pdf": done - made_docx})


def _write(settings: Settings, kind: ReportKind, period: str, data: bytes, fmt: ReportFormat) -> tuple[str, str]:
    """Store the file (content-addressed: written once, atomically) and return its path (relative to the data
    dir) and sha256."""
    digest = hashlib.sha256(data).hexdigest()
    relative = Path(REPORTS_DIR) / kind.value / period / f"{digest}.{fmt.value}"
    path = settings.data_dir / relative
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return relative.as_posix(), digest


def generate(*, database: Database, settings: Settings, kind: ReportKind | str, period: str, actor: str,
             now: datetime | None = None, out_dir: Path | None = None) -> tuple[ReportRead, Rendered]:
    """Make the report, archive it (files, row, audit event) and, with ``out_dir``, also write the DOCX and the
    PDF there under their Chinese names."""
    rendered = render(database=database, kind=kind, period=period, now=now)
    kind = rendered.kind
    docx_path, docx_sha = _write(settings, kind, period, rendered.docx, ReportFormat.docx)
    pdf_path, pdf_sha = _write(settings, kind, period, rendered.pdf, ReportFormat.pdf)
    with database.session() as db:
        last = db.execute(sa.select(Report).where(Report.kind == kind.value, Report.period == period)
                          .order_by(Report.id.desc()).limit(1)).scalar_one_or_none()
        unchanged = last is not None and (last.docx_sha256, last.pdf_sha256) == (docx_sha, pdf_sha)
        row = Report(kind=kind.value, period=period, title=rendered.title, parameters={"kind": kind.value,
                                                                                       "period": period},
                     summary=rendered.summary, docx_path=docx_path, docx_sha256=docx_sha,
                     docx_size=len(rendered.docx), pdf_path=pdf_path, pdf_sha256=pdf_sha,
                     pdf_size=len(rendered.pdf), generated_by=actor, generated_at=utcnow())
        db.add(row)
        db.flush()
        audit.record(db=db, actor=actor, action="report.generated", subject_type="report", subject_id=row.id,
                     details={"kind": kind.value, "period": period, "docx_sha256": docx_sha, "pdf_sha256": pdf_sha,
                              "docx_size": len(rendered.docx), "pdf_size": len(rendered.pdf),
                              "unchanged": unchanged})
        read = to_read(row, unchanged=unchanged)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for f in read.files:
            (out_dir / f.filename).write_bytes(rendered.docx if f.format is ReportFormat.docx else rendered.pdf)
    return read, rendered


def filename(row: Report, fmt: ReportFormat) -> str:
    return f"{row.title}.{fmt.value}"


def to_read(row: Report, *, unchanged: bool = False) -> ReportRead:
    files = [ReportFile(format=fmt, filename=filename(row, fmt), sha256=getattr(row, f"{fmt.value}_sha256"),
                        size=getattr(row, f"{fmt.value}_size"), url=f"/api/v1/reports/{row.id}/{fmt.value}")
             for fmt in ReportFormat]
    return ReportRead(id=row.id, kind=ReportKind(row.kind), period=row.period, title=row.title,
                      parameters=row.parameters, summary=row.summary, files=files, generated_by=row.generated_by,
                      generated_at=row.generated_at, unchanged=unchanged)


def listing(*, db: Session, kind: ReportKind | None = None, period: str | None = None, limit: int = 50,
            offset: int = 0) -> tuple[int, list[Report]]:
    stmt = sa.select(Report)
    if kind is not None:
        stmt = stmt.where(Report.kind == kind.value)
    if period:
        stmt = stmt.where(Report.period == period)
    total = db.execute(sa.select(sa.func.count()).select_from(stmt.subquery())).scalar_one()
    rows = db.execute(stmt.order_by(Report.generated_at.desc(), Report.id.desc()).limit(limit).offset(offset))
    return int(total), list(rows.scalars())


def get(*, db: Session, report_id: int) -> Report:
    row = db.get(Report, report_id)
    if row is None:
        raise ReportError(404, "not_found", "报告不存在")
    return row


def file_of(*, settings: Settings, row: Report, fmt: ReportFormat) -> Path:
    """The archived file, checked against its recorded sha256 (a file changed on disk is refused)."""
    path = settings.data_dir / getattr(row, f"{fmt.value}_path")
    if not path.is_file():
        raise ReportError(410, "file_missing", "报告文件已不在归档目录中")
    if hashlib.sha256(path.read_bytes()).hexdigest() != getattr(row, f"{fmt.value}_sha256"):
        raise ReportError(409, "file_changed", "报告文件与归档时的校验值不一致")
    return path


def daily_job(*, database: Database, settings: Settings, now: datetime | None = None) -> ReportRead:
    """The worker's morning run: yesterday's daily report (Beijing), archived."""
    yesterday = periods.today(now or utcnow()).toordinal() - 1
    day = datetime.fromordinal(yesterday).date().isoformat()
    read, _ = generate(database=database, settings=settings, kind=ReportKind.daily, period=day,
                       actor="system:reports", now=now)
    with database.session() as db:  # yesterday's calls cut into key terms now, ready for the monthly report
        monthly.warm_terms(db=db, window=periods.day(day))
    return read
