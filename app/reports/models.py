"""The report archive: each generated report (月度分析报告, 企业预警风险信息日报), its parameters and its files.

A row is written each time a report is generated; its files lie under ``data_dir/reports/KIND/PERIOD/`` named
by their sha256 (regenerating a period whose data did not change gives the same bytes, so the same files), and
their digests go into the audit chain (``report.generated``)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class ReportKind(StrEnum):
    monthly = "monthly"  # 月度分析报告: period YYYY-MM (a Beijing month)
    daily = "daily"  # 企业预警风险信息日报: period YYYY-MM-DD (a Beijing day)


class ReportFormat(StrEnum):
    docx = "docx"
    pdf = "pdf"


TITLES = {ReportKind.monthly: "12351职工服务热线月度分析报告", ReportKind.daily: "企业预警风险信息日报"}


class Report(Base):
    """One generated report: what was asked for, the files made, and their sha256 (also in the audit chain)."""

    __tablename__ = "reports"
    __table_args__ = (sa.Index("ix_reports_kind_period", "kind", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    period: Mapped[str] = mapped_column(sa.String(10))  # 2026-11 | 2026-12-03
    title: Mapped[str] = mapped_column(sa.String(128))
    parameters: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    summary: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)  # headline figures, for the list
    docx_path: Mapped[str] = mapped_column(sa.String(256))  # relative to the data dir
    docx_sha256: Mapped[str] = mapped_column(sa.String(64))
    docx_size: Mapped[int]
    pdf_path: Mapped[str] = mapped_column(sa.String(256))
    pdf_sha256: Mapped[str] = mapped_column(sa.String(64))
    pdf_size: Mapped[int]
    generated_by: Mapped[str] = mapped_column(sa.String(128))
    generated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class CaseTerms(Base):
    """The key terms of one case's caller text (app/reports/terms.py), kept so each case is cut by jieba once:
    ``digest`` covers the text and the dictionary it was cut with, so a corrected transcript or a changed
    dictionary is cut again. Filled by report generation and each morning for the day before."""

    __tablename__ = "report_case_terms"

    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True)
    digest: Mapped[str] = mapped_column(sa.String(32))
    terms: Mapped[list[str]] = mapped_column(sa.JSON, default=list)


# --- API shapes -----------------------------------------------------------------------------------------


class ReportCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: ReportKind
    period: str = Field(pattern=r"^\d{4}-\d{2}(-\d{2})?$", description="月报 YYYY-MM，日报 YYYY-MM-DD（北京时间）")


class ReportFile(BaseModel):
    format: ReportFormat
    filename: str  # what a download is called (Chinese: sent as RFC 5987 filename*)
    sha256: str
    size: int
    url: str


class ReportRead(BaseModel):
    id: int
    kind: ReportKind
    period: str
    title: str
    parameters: dict[str, Any]
    summary: dict[str, Any]
    files: list[ReportFile]
    generated_by: str
    generated_at: datetime
    unchanged: bool = False  # the same bytes as the previous report of this kind and period


class ReportPagination(BaseModel):
    total: int
    items: list[ReportRead]
