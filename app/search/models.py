from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class SearchEntry(Base):
    """One searchable text of a case (a transcript segment, or the case's own fields) as jieba tokens.

    Entries are what a hit shows (the segment, its second, its speaker); which cases match is decided on
    the case's whole document (:class:`SearchDoc`), so every word may be said in a different segment.
    """

    __tablename__ = "search_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    segment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("segments.id"))
    start: Mapped[float | None]  # where in the audio the text was said
    text: Mapped[str] = mapped_column(sa.Text)
    tokens: Mapped[str] = mapped_column(sa.Text)


class SearchDoc(Base):
    """A case's whole document: the tokens of its fields and of everything said, space separated.

    The full-text index over it is dialect specific and made in migration 0007: an FTS5 external-content
    table ``search_docs_fts`` (rowid = case id, columns fields/said, ranked with bm25) on SQLite; a
    ``tsv tsvector`` column (fields weighted A, positions kept, ranked with ts_rank) under a GIN index on
    PostgreSQL. Both are written by ``service.index_case`` only.
    """

    __tablename__ = "search_docs"

    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id"), primary_key=True, autoincrement=False)
    fields: Mapped[str] = mapped_column(sa.Text)
    said: Mapped[str] = mapped_column(sa.Text)


@dataclass(frozen=True)
class SearchFilters:
    """What narrows a search besides its words; dates are calendar days in Asia/Shanghai, both included."""

    category: str | None = None
    district: str | None = None
    status: str | None = None
    enterprise: str | None = None  # a part of the enterprise's name
    staff: str | None = None  # the username who filed the case or is handling it
    date_from: date | None = None
    date_to: date | None = None


class SearchHit(BaseModel):
    case_id: int
    case_no: str
    category: str
    status: str
    enterprise: str | None
    district: str | None
    segment_id: int | None  # None: the hit is in the case's own fields (or no words were asked for)
    start: float | None  # the second of the recording where it was said
    speaker: str | None
    text: str  # the matching text (segment or case fields)
    highlighted: str  # ``text`` HTML-escaped, the query's words wrapped in <mark>…</mark>


class SearchResults(BaseModel):
    query: str
    tokens: list[str]  # the query's words and their parts: what is highlighted in hits
    total: int  # every matching case, counted exactly
    # True: best first (relevance, then newest). False: newest first, because no words were asked for or
    # they match more cases than are worth ranking (service.RANK_LIMIT).
    ranked: bool = True
    items: list[SearchHit]
