from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class CallStatus(StrEnum):
    active = "active"  # in progress (ringing or talking)
    ended = "ended"  # recorded and filed
    cancelled = "cancelled"  # the caller hung up before we answered
    no_audio = "no_audio"  # ended without any audio to file
    failed = "failed"  # could not be filed (see error); the audio folder is kept


class Call(Base):
    """One call or captured session as the telephony adapter saw it: who, when, how it ended, and the
    recording it became."""

    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_uuid: Mapped[str] = mapped_column(sa.String(32), unique=True)
    source: Mapped[str] = mapped_column(sa.String(16))  # sip | siprec | twilio | fork | browser
    external_id: Mapped[str] = mapped_column(sa.String(255), index=True)  # SIP Call-ID, Twilio callSid…
    caller: Mapped[str] = mapped_column(sa.String(64), index=True)
    called: Mapped[str] = mapped_column(sa.String(64))
    channel: Mapped[str] = mapped_column(sa.String(8))
    status: Mapped[str] = mapped_column(sa.String(16), index=True)
    started_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(sa.String(32))
    dtmf: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    events: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    recording_id: Mapped[int | None] = mapped_column(sa.ForeignKey("recordings.id"), index=True)
    error: Mapped[str | None] = mapped_column(sa.Text)
    live_segments: Mapped[list[dict[str, Any]] | None] = mapped_column(sa.JSON)  # live finals, for comparison
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CallRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    call_uuid: str
    source: str
    external_id: str
    caller: str
    called: str
    channel: str
    status: str
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    dtmf: list[dict[str, Any]]
    events: list[dict[str, Any]]
    recording_id: int | None
    error: str | None
    live_segments: list[dict[str, Any]] | None = None
