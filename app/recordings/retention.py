"""Retention: recordings deleted once their channel's retention period has run out, unless their case says no.

``HOTLINE_RETENTION_DAYS`` gives a period per channel (来电, 来访, 调解, 开庭, 上传); a channel left out keeps its
recordings forever (the default: all of them). A recording is deleted by the sweep (``hotline retention sweep``,
and daily in the worker) only when all of these hold:

- its case is closed: status 办结, the workflow's one final status (受理, 转办, 办理 and 回访 are open: 回访 can
  still reopen the case). A recording without a case (transcription failed or pending) is kept;
- its case is not on legal hold (``Case.legal_hold``, set by managers and admins for cases in dispute);
- the period has run out counted from the *later* of the recording's filing and the case's closing, so a case
  closed after years of handling keeps its evidence for a full period after it closed.

What is deleted: the object in the store (every version of it in a versioned S3 bucket). An object under WORM
lock (S3 object lock) cannot be deleted: the store refuses (``StorageError``) and the recording is skipped and
reported, to be tried again by a later sweep. What stays: the case, the recording's row as a tombstone
(``deleted_at``, sha256, sizes, channel; its wrapped data key is wiped, so any copy of the ciphertext left
elsewhere, such as an old store after ``hotline storage migrate``, can no longer be decrypted), and the transcript
unless ``HOTLINE_RETENTION_KEEP_TRANSCRIPT=false`` (then the segments' text and words are emptied and they leave
the search index; the segments' times and speakers stay). Each deletion is one transaction with its audit event
``recording.deleted_by_retention`` {sha256, size, channel, case_no…}; the object is deleted inside it, after the
case was read again under lock, so a hold set meanwhile wins. Deleting first and committing second means a crash
between them leaves a row whose object is gone: the next sweep deletes nothing more and writes the tombstone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from app.audit import service as audit
from app.cases.models import Case, CaseStatus
from app.config import Settings
from app.db import Database, as_utc, utcnow
from app.recordings import files
from app.recordings.models import Recording
from app.recordings.storage import StorageError
from app.transcripts.models import Segment, Transcript

log = logging.getLogger("hotline.retention")
LOCAL_TZ = ZoneInfo("Asia/Shanghai")
CLOSED = (CaseStatus.closed.value,)  # the statuses that count as closed: only 办结 is final
ACTION = "recording.deleted_by_retention"


def deleted_message(deleted_at: datetime) -> str:
    """What the audio endpoint answers (410) for a recording deleted by retention."""
    return f"录音已按保存期限删除（{as_utc(deleted_at).astimezone(LOCAL_TZ):%Y-%m-%d}）"


@dataclass(frozen=True)
class Due:
    """A recording whose retention period has run out, with its case."""

    recording_id: int
    case_id: int
    case_no: str
    channel: str
    sha256: str
    size: int
    days: int


@dataclass
class Swept:
    dry_run: bool
    deleted: list[Due] = field(default_factory=list)  # (dry run: would be deleted)
    skipped: dict[int, str] = field(default_factory=dict)  # recording id → why the store refused (WORM lock…)
    held: int = 0  # old enough, but the case is on legal hold
    open: int = 0  # old enough, but the case is not closed (or closed too recently)
    no_case: int = 0  # old enough, but no case was filed from it
    transcripts_emptied: int = 0

    @property
    def bytes_deleted(self) -> int:
        return sum(d.size for d in self.deleted)


def _cutoffs(settings: Settings, now: datetime) -> dict[str, tuple[int, datetime]]:
    return {channel: (days, now - timedelta(days=days)) for channel, days in settings.retention_days.items()}


def _verdict(*, filed_at: datetime, deleted_at: datetime | None, case_id: int | None, status: str | None,
             closed_at: datetime | None, held: bool | None, cutoff: datetime) -> str:
    """'due', or why the recording stays: 'held', 'open', 'no_case' ('young': its period has not run out)."""
    if deleted_at is not None or as_utc(filed_at) >= cutoff:
        return "young"
    if case_id is None:
        return "no_case"
    if held:
        return "held"
    if status not in CLOSED or (closed_at is not None and as_utc(closed_at) >= cutoff):
        return "open"
    return "due"


def due(*, database: Database, settings: Settings, now: datetime | None = None) -> Swept:
    """What a sweep would delete now, and what it keeps and why (nothing is changed). Reads only the columns
    it needs: the first sweep of a site that kept everything for years may look at millions of rows."""
    now = now or utcnow()
    found = Swept(dry_run=True)
    with database.session() as db:
        for channel, (days, cutoff) in _cutoffs(settings, now).items():
            rows = db.execute(
                sa.select(Recording.id, Recording.created_at, Recording.deleted_at, Recording.sha256,
                          Recording.size_bytes, Case.id.label("case_id"), Case.case_no, Case.status, Case.closed_at,
                          Case.legal_hold)
                .outerjoin(Case, Case.recording_id == Recording.id)
                .where(Recording.channel == channel, Recording.deleted_at.is_(None), Recording.created_at < cutoff)
                .order_by(Recording.id))
            for row in rows:
                verdict = _verdict(filed_at=row.created_at, deleted_at=row.deleted_at, case_id=row.case_id,
                                   status=row.status, closed_at=row.closed_at, held=row.legal_hold, cutoff=cutoff)
                if verdict == "due":
                    found.deleted.append(Due(row.id, row.case_id, row.case_no, channel, row.sha256, row.size_bytes,
                                             days))
                elif verdict != "young":
                    setattr(found, verdict, getattr(found, verdict) + 1)
    return found


def sweep(*, database: Database, settings: Settings, actor: str = "system:retention", dry_run: bool = False,
          now: datetime | None = None, progress: Callable[[int, int], None] | None = None) -> Swept:
    """Delete every recording whose retention period has run out (see the module's doc); ``dry_run``: only say
    which. ``progress(done, total)`` after each recording. Returns what was deleted, skipped and kept."""
    now = now or utcnow()
    found = due(database=database, settings=settings, now=now)
    if dry_run:
        return found
    report = Swept(dry_run=False, held=found.held, open=found.open, no_case=found.no_case)
    cutoffs = _cutoffs(settings, now)
    for n, item in enumerate(found.deleted, 1):
        try:
            done = _delete_one(database=database, settings=settings, item=item, cutoffs=cutoffs, actor=actor,
                               now=now)
        except StorageError as e:
            report.skipped[item.recording_id] = str(e)
            log.warning("recording %s (case %s) kept: %s", item.recording_id, item.case_no, e)
        else:
            if done is not None:
                report.deleted.append(item)
                report.transcripts_emptied += done
        if progress:
            progress(n, len(found.deleted))
    if report.deleted or report.skipped:
        with database.session() as db:
            audit.record(db=db, actor=actor, action="retention.swept", subject_type="storage", subject_id="retention",
                         details={"deleted": len(report.deleted), "bytes": report.bytes_deleted,
                                  "skipped": {str(k): v[:300] for k, v in report.skipped.items()},
                                  "held": report.held, "open": report.open, "no_case": report.no_case,
                                  "days": dict(settings.retention_days)})
    return report


def _delete_one(*, database: Database, settings: Settings, item: Due, cutoffs: dict[str, tuple[int, datetime]],
                actor: str, now: datetime) -> int | None:
    """Delete one recording's object and leave its tombstone, in one transaction; the case read again under
    lock first. Returns how many transcripts were emptied (None: no longer due, nothing done). A store that
    refuses the deletion raises StorageError and nothing changes."""
    with database.session() as db:
        rec = db.get(Recording, item.recording_id, with_for_update=True)
        case = db.execute(sa.select(Case).where(Case.recording_id == item.recording_id)
                          .with_for_update()).scalar_one_or_none()
        if rec is None or rec.channel not in cutoffs:
            return None
        days, cutoff = cutoffs[rec.channel]
        if case is None or _verdict(filed_at=rec.created_at, deleted_at=rec.deleted_at, case_id=case.id,
                                    status=case.status, closed_at=case.closed_at, held=case.legal_hold,
                                    cutoff=cutoff) != "due":
            return None  # held or deleted since the list was made
        files.store(settings, rec.storage).delete(rec.path)  # StorageError (WORM lock…): rolled back, skipped
        encrypted = rec.wrapped_key is not None
        rec.deleted_at = now
        rec.wrapped_key, rec.key_id = None, None  # crypto-shredded: stray copies of the ciphertext are noise
        emptied = 0 if settings.retention_keep_transcript else _empty_transcripts(db, rec, case)
        audit.record(db=db, actor=actor, action=ACTION, subject_type="recording", subject_id=rec.id, details={
            "sha256": rec.sha256, "size": rec.size_bytes, "stored_size": rec.stored_size, "channel": rec.channel,
            "case_id": case.id, "case_no": case.case_no, "closed_at": case.closed_at, "filed_at": rec.created_at,
            "retention_days": days, "storage": rec.storage, "key": rec.path, "encrypted": encrypted,
            "transcript": "removed" if emptied else "kept"})
        return emptied


def _empty_transcripts(db: Any, rec: Recording, case: Case) -> int:
    """The recording's transcripts (post-call and live) lose their words: each segment's text, timed words and
    machine text are emptied, so is the live transcript kept on its call; the case's search entries for them go.
    Returns how many transcripts."""
    from app.calls.models import Call
    from app.search import service as search  # imports the cases domain; kept out of the audio route's imports

    db.execute(sa.update(Call).where(Call.recording_id == rec.id, Call.live_segments.is_not(None))
               .values(live_segments=None))
    ids = list(db.execute(sa.select(Transcript.id).where(Transcript.recording_id == rec.id)).scalars())
    if not ids:
        return 0
    db.execute(sa.update(Segment).where(Segment.transcript_id.in_(ids))
               .values(text="", words=None, machine_text=None))
    db.flush()
    search.index_case(db=db, case=case, segments=[])  # the fields entry stays; what was said leaves the index
    return len(ids)
