"""The audit trail: append events to a hash chain, and verify the chain end to end."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.db import as_utc, utcnow

GENESIS = "0" * 64
_PG_CHAIN_LOCK = 12351  # advisory lock id: appends to the chain are serialized


def _stamp(at: datetime) -> str:
    return as_utc(at).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    details: dict[str, Any],
    prev_hash: str,
) -> str:
    body = json.dumps(
        [seq, _stamp(at), actor, action, subject_type, subject_id, details, prev_hash],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(body.encode()).hexdigest()


def record(
    *,
    db: Session,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str | int,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event in the caller's transaction (so it commits or rolls back with the change)."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_CHAIN_LOCK})
    # On SQLite every transaction already holds the write lock (BEGIN IMMEDIATE, see app/db.py).
    last = db.execute(sa.select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)).first()
    seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
    # Round-trip details through JSON so the hash is computed over exactly what is stored.
    clean: dict[str, Any] = json.loads(json.dumps(details or {}, ensure_ascii=False, default=str))
    at = utcnow()
    fields = dict(
        seq=seq, at=at, actor=actor, action=action, subject_type=subject_type, subject_id=str(subject_id),
        details=clean, prev_hash=prev,
    )
    event = AuditEvent(**fields, hash=event_hash(**fields))  # type: ignore[arg-type]
    db.add(event)
    db.flush()
    return event


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    events: int
    first_bad_seq: int | None = None
    first_bad_id: int | None = None
    reason: str = ""


def verify(*, db: Session) -> VerifyResult:
    """Walk the chain in sequence order; report the first event that was edited, removed, inserted or moved."""
    prev = GENESIS
    expected_seq = 1
    count = 0
    rows = db.execute(sa.select(AuditEvent).order_by(AuditEvent.seq, AuditEvent.id)).scalars()
    for ev in rows:
        count += 1
        bad = None
        if ev.seq != expected_seq:
            bad = f"sequence jumps from {expected_seq - 1} to {ev.seq} (an event was removed or inserted)"
        elif ev.prev_hash != prev:
            bad = "prev_hash does not match the event before it (events removed, inserted or reordered)"
        else:
            recomputed = event_hash(
                seq=ev.seq, at=ev.at, actor=ev.actor, action=ev.action, subject_type=ev.subject_type,
                subject_id=ev.subject_id, details=ev.details, prev_hash=ev.prev_hash,
            )
            if recomputed != ev.hash:
                bad = "content does not match its hash (the event was edited)"
        if bad:
            return VerifyResult(False, count, ev.seq, ev.id, bad)
        prev = ev.hash
        expected_seq += 1
    return VerifyResult(True, count)


def for_subject(*, db: Session, subject_type: str, subject_id: str | int) -> list[AuditEvent]:
    stmt = (
        sa.select(AuditEvent)
        .where(AuditEvent.subject_type == subject_type, AuditEvent.subject_id == str(subject_id))
        .order_by(AuditEvent.seq)
    )
    return list(db.execute(stmt).scalars())
