from __future__ import annotations

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class SearchEntry(Base):
    """One searchable text of a case (a transcript segment, or the case's own fields) as jieba tokens.

    The full-text index over ``tokens`` is dialect specific and made in the migration: an FTS5
    external-content table on SQLite, a GIN index over a tsvector of the tokens on PostgreSQL.
    """

    __tablename__ = "search_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    segment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("segments.id"))
    start: Mapped[float | None]  # where in the audio the text was said
    text: Mapped[str] = mapped_column(sa.Text)
    tokens: Mapped[str] = mapped_column(sa.Text)


class SearchHit(BaseModel):
    case_id: int
    case_no: str
    category: str
    status: str
    enterprise: str | None
    segment_id: int | None
    start: float | None
    speaker: str | None
    text: str  # the matching text (segment or case field)


class SearchResults(BaseModel):
    query: str
    tokens: list[str]  # the query's words and their parts: what to highlight in hits
    total: int
    items: list[SearchHit]
