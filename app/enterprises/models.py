"""The enterprise registry (企业库): registered enterprises, the other names they go by, and the API shapes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class AliasSource(StrEnum):
    imported = "import"  # the 别名 column of an imported registry file
    confirmed = "confirmed"  # the heard or typed name of a case staff linked to this enterprise
    correction = "correction"  # a transcript correction that named this enterprise


class Enterprise(Base):
    """One registered enterprise: its canonical name and 统一社会信用代码 are unique."""

    __tablename__ = "enterprises"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(128), unique=True)
    credit_code: Mapped[str | None] = mapped_column(sa.String(18), unique=True)
    district: Mapped[str | None] = mapped_column(sa.String(16), index=True)
    address: Mapped[str] = mapped_column(sa.String(256), default="")
    industry: Mapped[str] = mapped_column(sa.String(64), default="")
    enterprise_type: Mapped[str | None] = mapped_column(sa.String(8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, index=True)


class EnterpriseAlias(Base):
    """Another spelling an enterprise is known, heard or typed as; each alias points at one enterprise."""

    __tablename__ = "enterprise_aliases"

    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(sa.ForeignKey("enterprises.id", ondelete="CASCADE"), index=True)
    alias: Mapped[str] = mapped_column(sa.String(128), unique=True)
    source: Mapped[str] = mapped_column(sa.String(16))
    created_by: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- API shapes -----------------------------------------------------------------------------------------


class EnterpriseBase(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    credit_code: str | None
    district: str | None
    address: str
    industry: str
    enterprise_type: str | None


class EnterpriseListItem(EnterpriseBase):
    cases: int = 0  # cases linked to it


class EnterprisePagination(BaseModel):
    total: int
    items: list[EnterpriseListItem]


class AliasRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    alias: str
    source: str
    created_by: str
    created_at: datetime


class MonthCount(BaseModel):
    month: str  # YYYY-MM
    cases: int
    amount: int
    workers: int


class CategoryCount(BaseModel):
    category: str
    cases: int


class EnterpriseCase(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    case_no: str
    status: str
    category: str
    created_at: datetime
    amount: int | None
    workers: int | None
    group_case: bool


class EnterpriseStats(BaseModel):
    cases: int
    open_cases: int
    amount: int  # whole yuan in dispute, all its cases together
    workers: int
    group_cases: int
    by_month: list[MonthCount]
    categories: list[CategoryCount]


class EnterpriseRead(EnterpriseBase):
    created_at: datetime
    updated_at: datetime
    aliases: list[AliasRead]
    stats: EnterpriseStats
    recent_cases: list[EnterpriseCase]  # newest first


class ImportRowError(BaseModel):
    row: int  # the spreadsheet's row number (the header is row 1); 0 for the file as a whole
    column: str | None = None
    message: str


class ImportResult(BaseModel):
    rows: int
    created: int
    updated: int
    unchanged: int
    aliases: int  # aliases added


class Candidate(BaseModel):
    enterprise_id: int
    name: str  # the canonical name
    matched: str  # the registered name or alias that matched
    score: float = Field(ge=0.0, le=1.0)
    district: str | None = None


class ResolveRead(BaseModel):
    heard: str
    candidates: list[Candidate]  # best first; empty: no registered enterprise is close enough


class CaseEnterpriseLink(BaseModel):
    """Link a case to a registered enterprise (null unlinks it); ``heard_name`` is how it was said or typed."""

    model_config = ConfigDict(extra="forbid")

    enterprise_id: int | None
    heard_name: str | None = Field(default=None, max_length=128)
