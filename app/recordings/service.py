"""Recordings: content-addressed storage (sha256), probing, and the transcription job's state."""

from __future__ import annotations

import hashlib
import socket
import unicodedata
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO
from zoneinfo import ZoneInfo

import psutil
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.config import Settings
from app.db import Database, as_utc, utcnow
from app.recordings import files
from app.recordings.models import CaseChannel, JobStatus, Recording
from asr.audio import probe
from asr.types import Layout


class UploadTooLarge(Exception):
    pass


class DeletedByRetention(Exception):
    """The same audio was on file and was deleted by the retention policy."""


NAME_LIMIT = 120  # characters of an original file name kept (its extension included)
_NOT_IN_NAMES = str.maketrans({c: "_" for c in '<>:"|?*'})  # characters Windows refuses in a file name


def safe_name(name: str, *, default: str = "upload") -> str:
    """The original file name as it is kept, shown and exported: only its base name (no folders, whichever
    slash they use), no control or invisible formatting characters (bidi overrides that disguise an extension),
    none that Windows refuses, whitespace collapsed, no leading dots, at most ``NAME_LIMIT`` characters with the
    extension kept. Chinese and other letters stay: ``../../录音 1.wav`` → ``录音 1.wav``."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").translate(_NOT_IN_NAMES)
    name = " ".join(name.split()).strip(". ")
    if not name:
        return default
    if len(name) > NAME_LIMIT:
        stem, dot, ext = name.rpartition(".")
        ext = f".{ext}" if dot and stem and len(ext) <= 16 else ""
        name = name[:NAME_LIMIT - len(ext)].rstrip(". ") + ext
    return name


@dataclass(frozen=True)
class Staged:
    """A file copied into the data dir's tmp folder, with its hash and size; not yet on file."""

    path: Path
    sha256: str
    size: int


class Stage:
    """An upload being written into the data dir's tmp folder (``upload-<random>``): hashed and counted as it
    grows, refused (``UploadTooLarge``) as soon as it passes the size limit."""

    def __init__(self, settings: Settings, out: BinaryIO, path: Path) -> None:
        self._settings = settings
        self._out = out
        self.path = path
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, block: bytes) -> None:
        self.size += len(block)
        if self.size > self._settings.max_upload_bytes:
            raise UploadTooLarge(f"文件超过上传上限 {self._settings.max_upload_mb} MB")
        self._hash.update(block)
        self._out.write(block)

    def finish(self) -> Staged:
        """All written: closed (a full disk shows here at the latest) and described."""
        self._out.close()
        return Staged(self.path, self._hash.hexdigest(), self.size)


@contextmanager
def stage(settings: Settings) -> Iterator[Stage]:
    """A new staged upload to write into; its file is always removed afterwards unless ``ingest`` moved it into
    the store (a process killed meanwhile leaves it for ``app.startup.sweep_staging``)."""
    settings.ensure_dirs()
    tmp = settings.data_dir / "tmp" / f"upload-{uuid.uuid4().hex}"
    try:
        with tmp.open("xb") as out:
            yield Stage(settings, out, tmp)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def staged(settings: Settings, source: BinaryIO) -> Iterator[Staged]:
    """Copy ``source`` into a temporary file while hashing it (enforcing the size limit); the temporary
    file is always removed afterwards unless ``ingest`` moved it into the store."""
    with stage(settings) as into:
        while block := source.read(1 << 20):
            into.write(block)
        yield into.finish()


def by_sha(*, db: Session, sha256: str) -> Recording | None:
    return db.execute(sa.select(Recording).where(Recording.sha256 == sha256)).scalar_one_or_none()


def get(*, db: Session, recording_id: int) -> Recording | None:
    return db.get(Recording, recording_id)


@dataclass(frozen=True)
class Ingested:
    recording: Recording
    duplicate: bool


def ingest(
    *, database: Database, settings: Settings, staged_file: Staged, original_name: str, layout: Layout,
    channel: CaseChannel, actor: str,
) -> Ingested:
    """Put a staged file on record: probe it (AudioError if unusable), store it under its sha256 and add
    its row, queued for transcription. The same audio twice gives back the first recording, unchanged.
    Either both the file and the row exist afterwards, or neither does. The original name is kept as its
    ``safe_name``."""
    original_name = safe_name(original_name)
    with database.session() as db:
        existing = by_sha(db=db, sha256=staged_file.sha256)
        if existing and existing.deleted_at is not None:  # its tombstone stands: the deletion was the policy's
            day = as_utc(existing.deleted_at).astimezone(ZoneInfo("Asia/Shanghai"))
            raise DeletedByRetention(f"这份录音已于 {day:%Y-%m-%d} 按保存期限删除（录音 #{existing.id}），"
                                     "不再重新存档；确需保存请联系管理员")
        if existing:
            audit.record(db=db, actor=actor, action="recording.duplicate", subject_type="recording",
                         subject_id=existing.id, details={"original_name": original_name[:255]})
            return Ingested(existing, True)
    info = probe(staged_file.path)
    ext = (Path(original_name).suffix.lower() or f".{info.format}")[:8]
    stored = files.put(settings, source=staged_file.path, sha256=staged_file.sha256, size=staged_file.size, ext=ext)
    try:
        with database.session() as db:
            rec = Recording(
                sha256=staged_file.sha256, path=stored.key, original_name=original_name[:255],
                size_bytes=staged_file.size, format=info.format, codec=info.codec, sample_rate=info.sample_rate,
                channels=info.channels, duration=info.duration,
                layout="mono" if info.channels == 1 else layout, channel=channel.value,
                status=JobStatus.queued.value, uploaded_by=actor, lease_until=queued_lease(),
                storage=stored.storage, stored_size=stored.stored_size,
                key_id=stored.wrapped.key_id if stored.wrapped else None,
                wrapped_key=stored.wrapped.blob if stored.wrapped else None,
            )
            db.add(rec)
            db.flush()
            audit.record(db=db, actor=actor, action="recording.received", subject_type="recording",
                         subject_id=rec.id, details={
                             "sha256": rec.sha256, "original_name": rec.original_name, "size": rec.size_bytes,
                             "format": info.format, "codec": info.codec, "channels": info.channels,
                             "duration": info.duration, "layout": rec.layout, "channel": rec.channel,
                             "storage": rec.storage, "encrypted": rec.encrypted})
    except IntegrityError:  # the same audio arrived concurrently and the other upload won
        files.discard(settings, stored)
        with database.session() as db:
            winner = by_sha(db=db, sha256=staged_file.sha256)
        if winner is None:
            raise
        return Ingested(winner, True)
    except Exception:
        files.discard(settings, stored)
        raise
    return Ingested(rec, False)


# --- the transcription job's state -------------------------------------------------------------------

QUEUED_GRACE = timedelta(minutes=10)  # a queued job not started by then is queued again (lost message)


def queued_lease() -> datetime:
    return utcnow() + QUEUED_GRACE


ENQUEUE_RETRY = timedelta(seconds=30)  # a job whose message could not be sent: the sweep's next-but-one run


def retry_soon(*, db: Session, recording_id: int) -> None:
    """A queued job whose message never reached the queue: let the sweep send it again soon (not in 10 min)."""
    rec = db.get(Recording, recording_id)
    if rec is not None and rec.status == JobStatus.queued:
        rec.lease_until = utcnow() + ENQUEUE_RETRY


def never_sent(rec: Recording) -> bool:
    """A queued job whose message could not reach the queue (``retry_soon`` cut its lease short)."""
    return (rec.status == JobStatus.queued and rec.lease_until is not None
            and as_utc(rec.lease_until) <= utcnow() + ENQUEUE_RETRY)


def claim(*, db: Session, recording_id: int, worker: str, lease_s: int) -> Recording | None:
    """Take the job for this worker, or None if it is done, failed for good, or held by a live worker."""
    rec = db.get(Recording, recording_id, with_for_update=True)
    if rec is None or rec.status in (JobStatus.done, JobStatus.failed):
        return None
    now = utcnow()
    held = rec.status == JobStatus.transcribing and rec.lease_until and as_utc(rec.lease_until) > now
    if held and rec.claimed_by != worker and not owner_is_dead(rec.claimed_by):
        return None
    rec.status = JobStatus.transcribing.value
    rec.claimed_by = worker
    rec.lease_until = now + timedelta(seconds=lease_s + rec.duration)
    rec.attempts += 1
    audit.record(db=db, actor=f"worker:{worker}", action="transcription.started", subject_type="recording",
                 subject_id=rec.id, details={"attempt": rec.attempts})
    return rec


def owner_is_dead(claimed_by: str | None) -> bool:
    """True when the claiming worker ran on this host and its process is gone (a killed worker)."""
    if not claimed_by or ":" not in claimed_by:
        return False
    host, _, pid = claimed_by.rpartition(":")
    return host == socket.gethostname() and pid.isdigit() and not psutil.pid_exists(int(pid))


def abandoned(*, db: Session) -> list[Recording]:
    """Jobs to queue again: claimed by a worker that died, or whose lease ran out."""
    now = utcnow()
    rows = db.execute(
        sa.select(Recording).where(Recording.status.in_([JobStatus.queued, JobStatus.transcribing]))
    ).scalars()
    out = []
    for rec in rows:
        expired = rec.lease_until is None or as_utc(rec.lease_until) <= now
        dead = rec.status == JobStatus.transcribing and owner_is_dead(rec.claimed_by)
        if expired or dead:
            rec.status = JobStatus.queued.value
            rec.claimed_by = None
            rec.lease_until = queued_lease()
            out.append(rec)
    return out
