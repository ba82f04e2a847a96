from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow
from app.transcripts.models import TranscriptRead


class CaseStatus(StrEnum):
    accepted = "受理"
    assigned = "转办"
    handling = "办理"
    follow_up = "回访"
    closed = "办结"


class Case(Base):
    """A work order: what one call or session was about, and where it stands."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_no: Mapped[str] = mapped_column(sa.String(32), unique=True)
    status: Mapped[str] = mapped_column(sa.String(8), default=CaseStatus.accepted, index=True)
    channel: Mapped[str] = mapped_column(sa.String(8))
    recording_id: Mapped[int] = mapped_column(sa.ForeignKey("recordings.id"), unique=True)
    transcript_id: Mapped[int | None] = mapped_column(sa.ForeignKey("transcripts.id"))
    category: Mapped[str] = mapped_column(sa.String(16), index=True)
    category_confidence: Mapped[float]
    category_evidence: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON)  # matched terms + segment
    enterprise: Mapped[str | None] = mapped_column(sa.String(128), index=True)
    district: Mapped[str | None] = mapped_column(sa.String(16), index=True)
    summary: Mapped[str] = mapped_column(sa.Text, default="")
    created_by: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Counter(Base):
    """Named sequences (case numbers per year) that stay gap-free and safe under concurrent workers."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    value: Mapped[int]


class CaseBase(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    case_no: str
    status: str
    channel: str
    recording_id: int
    category: str
    category_confidence: float
    enterprise: str | None
    district: str | None
    summary: str
    created_at: datetime


class CaseRead(CaseBase):
    category_evidence: list[dict[str, Any]]
    transcript: TranscriptRead | None


class CasePagination(BaseModel):
    total: int
    items: list[CaseBase]
