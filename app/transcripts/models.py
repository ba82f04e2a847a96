from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, field_validator
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, utcnow


class Transcript(Base):
    __tablename__ = "transcripts"
    __table_args__ = (sa.UniqueConstraint("recording_id", "kind"),)  # one post-call transcript per recording

    id: Mapped[int] = mapped_column(primary_key=True)
    recording_id: Mapped[int] = mapped_column(sa.ForeignKey("recordings.id"))
    kind: Mapped[str] = mapped_column(sa.String(16), default="final")  # final (post-call) | live
    engine: Mapped[str] = mapped_column(sa.String(32))
    model: Mapped[str] = mapped_column(sa.String(128))
    language: Mapped[str] = mapped_column(sa.String(8))
    duration: Mapped[float]
    processing_s: Mapped[float]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    segments: Mapped[list[Segment]] = relationship(order_by="Segment.idx", lazy="selectin")


class Segment(Base):
    __tablename__ = "segments"
    __table_args__ = (sa.UniqueConstraint("transcript_id", "idx"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    transcript_id: Mapped[int] = mapped_column(sa.ForeignKey("transcripts.id"), index=True)
    idx: Mapped[int]
    start: Mapped[float]
    end: Mapped[float]
    speaker: Mapped[str] = mapped_column(sa.String(32))
    text: Mapped[str] = mapped_column(sa.Text)
    # [[start, end, text], …]: the words of ``text`` (they concatenate to it) and when each was said;
    # NULL before migration 0008 and where no timings were made
    words: Mapped[list[list[Any]] | None] = mapped_column(sa.JSON)


# A word of a segment on the wire: [start, end, text] (seconds from the recording's start).
TimedWord = tuple[float, float, str]


class SegmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    idx: int
    start: float
    end: float
    speaker: str
    text: str
    words: list[TimedWord] = []  # concatenate to ``text``; [] where none were made

    @field_validator("words", mode="before")
    @classmethod
    def _none_is_no_words(cls, value: Any) -> Any:
        return [] if value is None else value


class TranscriptRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    engine: str
    model: str
    language: str
    duration: float
    processing_s: float
    created_at: datetime
    segments: list[SegmentRead]
