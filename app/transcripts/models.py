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
    # People correct segments (migration 0010): the machine's own text is kept from the first edit on
    machine_text: Mapped[str | None] = mapped_column(sa.Text)  # NULL: never edited
    edited_by: Mapped[str | None] = mapped_column(sa.String(64))  # username of the last person to edit it
    edited_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(default=0, server_default="0")  # one more on each edit


# A word of a segment on the wire: [start, end, text] (seconds from the recording's start), or
# [start, end, text, probability] where the decoder gave one (0-1; below 0.5 the UI suggests listening again).
TimedWord = tuple[float, float, str] | tuple[float, float, str, float]


class SegmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    idx: int
    start: float
    end: float
    speaker: str
    text: str
    words: list[TimedWord] = []  # concatenate to ``text``; [] where none were made
    version: int = 0  # send it back with a correction; a stale one is refused (409)
    machine_text: str | None = None  # the machine's text, once a person corrected the segment
    edited_by: str | None = None  # 已校对: who corrected it last
    edited_at: datetime | None = None

    @field_validator("words", mode="before")
    @classmethod
    def _none_is_no_words(cls, value: Any) -> Any:
        return [] if value is None else value


class SegmentCorrection(BaseModel):
    """A person's correction of one segment's text; ``version``: the segment's version it was made on."""

    model_config = ConfigDict(extra="forbid")

    text: Any  # checked by the service, so that anything but text is refused in Chinese
    version: int


class CorrectionResult(BaseModel):
    segment: SegmentRead
    case_id: int | None  # the case filed from this transcript
    changed_fields: list[str]  # case fields re-extraction changed (locked ones never are)
    learned_terms: list[str]  # corrected terms added to the lexicon
    aligned: bool  # words timed by Whisper's alignment (false: carried over from the machine's, or even)
    applied_ms: float  # from the request to the correction searchable and the case re-extracted


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
