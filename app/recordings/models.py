from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow

LOCAL = "local"  # Recording.storage of a file in the data dir's recordings/ folder


class CaseChannel(StrEnum):
    """How the conversation reached us; carried into the case."""

    call = "来电"
    visit = "来访"
    mediation = "调解"
    hearing = "开庭"
    upload = "上传"


class JobStatus(StrEnum):
    queued = "queued"
    transcribing = "transcribing"
    done = "done"
    failed = "failed"


class Recording(Base):
    """One call or session: the audio file (content-addressed) and the state of its transcription job."""

    __tablename__ = "recordings"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    path: Mapped[str] = mapped_column(sa.String(255))  # relative to the recordings dir
    original_name: Mapped[str] = mapped_column(sa.String(255))
    size_bytes: Mapped[int] = mapped_column(sa.BigInteger)
    format: Mapped[str] = mapped_column(sa.String(32))
    codec: Mapped[str] = mapped_column(sa.String(32))
    sample_rate: Mapped[int]
    channels: Mapped[int]
    duration: Mapped[float]
    layout: Mapped[str] = mapped_column(sa.String(16))  # caller-left | agent-left | mono
    channel: Mapped[str] = mapped_column(sa.String(8))  # CaseChannel value
    status: Mapped[str] = mapped_column(sa.String(16), default=JobStatus.queued, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    claimed_by: Mapped[str | None] = mapped_column(sa.String(128))  # host:pid of the worker on it
    lease_until: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(sa.Text)
    uploaded_by: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # where the bytes are (app/recordings/storage.py): "local" (the data dir of the node that filed it) or s3://…
    storage: Mapped[str] = mapped_column(sa.String(255), default=LOCAL, server_default=LOCAL)
    # encrypted at rest (app/recordings/crypto.py): the recording's data key wrapped by master key `key_id`;
    # both None: stored in clear (recordings filed before encryption, or with HOTLINE_ENCRYPT_RECORDINGS=false)
    key_id: Mapped[str | None] = mapped_column(sa.String(32))
    wrapped_key: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    stored_size: Mapped[int | None] = mapped_column(sa.BigInteger)  # bytes in the store (ciphertext when encrypted)
    # tombstone (app/recordings/retention.py): the bytes were deleted when the retention period ran out; the row,
    # its sha256 and sizes stay, its wrapped data key is wiped (copies left anywhere can no longer be decrypted)
    deleted_at: Mapped[datetime | None]

    @property
    def encrypted(self) -> bool:
        return self.wrapped_key is not None


class StorageMove(Base):
    """A recording copied to ``target`` and read back with the right sha256 (``hotline storage migrate``)."""

    __tablename__ = "storage_moves"

    recording_id: Mapped[int] = mapped_column(sa.ForeignKey("recordings.id", ondelete="CASCADE"), primary_key=True)
    target: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    verified_at: Mapped[datetime] = mapped_column(default=utcnow)


class RecordingRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    sha256: str
    original_name: str
    size_bytes: int
    format: str
    codec: str
    sample_rate: int
    channels: int
    duration: float
    layout: str
    channel: str
    status: str
    attempts: int
    error: str | None
    created_at: datetime
    encrypted: bool
    deleted_at: datetime | None = None  # deleted by retention (the audio endpoint answers 410)


class RecordingCreated(RecordingRead):
    duplicate: bool  # true: the same audio was already on file; nothing new was stored
