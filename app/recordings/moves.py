"""Site-wide operations on the recordings' bytes: move them to another store, check them all, rotate the
master key. Each is resumable and audited; none holds a transaction while it copies or reads.

``migrate``: every recording not yet in the target is copied there as stored (ciphertext stays ciphertext,
under the same data key), then read back from the target and checked against its sha256; each verified copy
is noted (``storage_moves``), so a second run resumes where the first stopped. Only when every recording is
verified are the rows switched to the target, all in one transaction: until then every read goes to the old
store. The old copies are left where they were (remove them once the site runs on the new store).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult

from app.audit import service as audit
from app.config import Settings
from app.db import Database
from app.recordings import crypto, files
from app.recordings.models import LOCAL, Recording, StorageMove
from app.recordings.storage import StorageError

log = logging.getLogger("hotline.storage")
Progress = Callable[[int], None]  # called with how many recordings were just done


@dataclass
class Moved:
    target: str
    total: int = 0  # recordings to be in the target
    copied: int = 0  # copied and verified in this run
    already: int = 0  # verified by an earlier run (or already there)
    failed: dict[int, str] = field(default_factory=dict)  # recording id → why
    switched: int = 0  # rows switched to the target (0 until every recording is verified)
    filed_meanwhile: int = 0  # filed into the old store during the run: not switched, the next run takes them

    @property
    def complete(self) -> bool:
        return not self.failed and not self.filed_meanwhile


def normalize(url: str) -> str:
    url = url.strip().rstrip("/")
    return LOCAL if url in ("", LOCAL) else url


def pending(*, database: Database, target: str) -> tuple[list[Recording], set[int]]:
    """The recordings not yet switched to ``target``, and the ids among them already verified there."""
    with database.session() as db:
        rows = list(db.execute(sa.select(Recording).where(Recording.storage != target, Recording.deleted_at.is_(None))
                               .order_by(Recording.id)).scalars())
        done = set(db.execute(sa.select(StorageMove.recording_id)
                              .where(StorageMove.target == target)).scalars())
    return rows, done


def migrate(*, database: Database, settings: Settings, target: str, actor: str,
            progress: Progress | None = None) -> Moved:
    target = normalize(target)
    dest = files.store(settings, target)  # a bad URL or unreachable store fails here, before any copy
    rows, done = pending(database=database, target=target)
    report = Moved(target, total=len(rows))
    for rec in rows:
        if rec.id in done:
            report.already += 1
        else:
            try:
                _copy_and_verify(settings, rec, target)
            except (StorageError, crypto.CryptoError, OSError) as e:
                report.failed[rec.id] = str(e)
                log.error("recording %s not moved to %s: %s", rec.id, dest.url, e)
            else:
                with database.session() as db:
                    db.merge(StorageMove(recording_id=rec.id, target=target))
                report.copied += 1
        if progress:
            progress(1)
    if not report.failed:
        report.switched = _switch(database=database, target=target, actor=actor, report=report)
    return report


def _copy_and_verify(settings: Settings, rec: Recording, target: str) -> None:
    source, dest = files.store(settings, rec.storage), files.store(settings, target)
    tmp = settings.data_dir / "tmp" / f"move-{uuid.uuid4().hex}"
    settings.ensure_dirs()
    try:
        with tmp.open("wb") as out:
            for piece in source.stream(rec.path):
                out.write(piece)
        dest.put(rec.path, tmp, retain_days=settings.s3_object_lock_days)
    finally:
        tmp.unlink(missing_ok=True)
    files.verify(settings, _at(rec, target))  # read back from the target: sha256 of the audio in clear


def _at(rec: Recording, url: str) -> Recording:
    """A detached copy of the row that reads from ``url``."""
    copy = Recording(**{c.key: getattr(rec, c.key) for c in sa.inspect(Recording).column_attrs})
    copy.storage = url
    return copy


def _switch(*, database: Database, target: str, actor: str, report: Moved) -> int:
    """Every recording not in the target has a verified copy there: point their rows to it, at once."""
    with database.session() as db:
        verified = sa.select(StorageMove.recording_id).where(StorageMove.target == target)
        missing = db.execute(sa.select(sa.func.count()).select_from(Recording).where(
            Recording.storage != target, Recording.deleted_at.is_(None), Recording.id.not_in(verified))).scalar_one()
        if missing:  # filed meanwhile by a node still writing to the old store: the next run takes them
            report.filed_meanwhile = missing
            return 0
        result = db.execute(sa.update(Recording).where(Recording.storage != target, Recording.deleted_at.is_(None))
                            .values(storage=target))
        switched = cast(CursorResult[Any], result).rowcount
        audit.record(db=db, actor=actor, action="storage.migrated", subject_type="storage", subject_id=target[:64],
                     details={"target": target, "switched": switched, "copied": report.copied,
                              "already": report.already})
    return int(switched or 0)


@dataclass
class Verified:
    total: int = 0
    ok: int = 0
    failed: dict[int, str] = field(default_factory=dict)


def verify_all(*, database: Database, settings: Settings, actor: str, progress: Progress | None = None) -> Verified:
    """Read every recording back from where its row says and check its sha256 (and, encrypted, every
    chunk's tag); each failure is audited as ``recording.integrity_failed``."""
    with database.session() as db:
        rows = list(db.execute(sa.select(Recording).where(Recording.deleted_at.is_(None))  # tombstones: no bytes
                               .order_by(Recording.id)).scalars())
    report = Verified(total=len(rows))
    for rec in rows:
        try:
            files.verify(settings, rec)
            report.ok += 1
        except (StorageError, crypto.CryptoError) as e:
            report.failed[rec.id] = str(e)
            with database.session() as db:
                audit.record(db=db, actor=actor, action="recording.integrity_failed", subject_type="recording",
                             subject_id=rec.id, details={"error": str(e)[:500]})
        if progress:
            progress(1)
    return report


def _call_keys(settings: Settings) -> set[str]:
    """Master keys wrapping the keys of calls still waiting in this node's call folders (in progress, or
    not yet filed): they stay until those calls are filed."""
    found = set()
    for manifest in settings.calls_dir.glob("*/*/call.json"):
        try:
            key_id = json.loads(manifest.read_text()).get("key_id")
        except (OSError, ValueError):
            continue
        if key_id:
            found.add(str(key_id))
    return found


@dataclass
class Rotated:
    key_id: str
    rewrapped: int
    retired: list[str]


def rotate_key(*, database: Database, settings: Settings, actor: str, retire: bool = False,
               batch: int = 500) -> Rotated:
    """A new master key becomes current and every recording's data key is wrapped again by it; the audio is
    not touched. ``retire``: then remove the old keys from the key file (only once every node has picked up
    the new key: a node still wrapping with an old key would file recordings nobody could read)."""
    ring = files.keyring(settings)
    new_id = ring.rotate()
    rewrapped = 0
    while True:
        with database.session() as db:
            rows = list(db.execute(sa.select(Recording).where(
                Recording.wrapped_key.is_not(None), Recording.key_id != ring.current_id).limit(batch)).scalars())
            for rec in rows:
                wrapped = ring.rewrap(crypto.WrappedKey(rec.key_id or "", rec.wrapped_key or b""),
                                      bytes.fromhex(rec.sha256))
                rec.key_id, rec.wrapped_key = wrapped.key_id, wrapped.blob
            rewrapped += len(rows)
        if len(rows) < batch:
            break
    retired: list[str] = []
    if retire:
        with database.session() as db:
            in_use = set(db.execute(sa.select(Recording.key_id).where(Recording.key_id.is_not(None))
                                    .distinct()).scalars())
        retired = ring.retire({k for k in in_use if k} | _call_keys(settings))
    with database.session() as db:
        audit.record(db=db, actor=actor, action="storage.key_rotated", subject_type="storage", subject_id=new_id,
                     details={"key_id": new_id, "rewrapped": rewrapped, "retired": retired})
    return Rotated(new_id, rewrapped, retired)

