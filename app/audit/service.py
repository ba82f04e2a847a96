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
class Entry:
    """One event for ``record_many``."""

    actor: str
    action: str
    subject_type: str
    subject_id: str | int
    details: dict[str, Any] | None = None


def record_many(*, db: Session, entries: list[Entry]) -> int:
    """Append many events in one go (one lock, one look at the head, one bulk insert), chained exactly as
    ``record`` would chain them one by one; for sweeps that change thousands of things at once."""
    if not entries:
        return 0
    if db.get_bind().dialect.name == "postgresql":
        db.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_CHAIN_LOCK})
    db.flush()
    last = db.execute(sa.select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)).first()
    seq, prev = (last.seq, last.hash) if last else (0, GENESIS)
    at = utcnow()
    rows = []
    for e in entries:
        seq += 1
        clean: dict[str, Any] = json.loads(json.dumps(e.details or {}, ensure_ascii=False, default=str))
        fields = dict(seq=seq, at=at, actor=e.actor, action=e.action, subject_type=e.subject_type,
                      subject_id=str(e.subject_id), details=clean, prev_hash=prev)
        prev = event_hash(**fields)  # type: ignore[arg-type]
        rows.append({**fields, "hash": prev})
    for i in range(0, len(rows), 5000):
        db.execute(sa.insert(AuditEvent), rows[i:i + 5000])
    return len(rows)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    events: int
    first_bad_seq: int | None = None
    first_bad_id: int | None = None
    reason: str = ""
    head_seq: int = 0  # the last event checked (0: none); compare with an anchor kept elsewhere
    head_hash: str = GENESIS

    @property
    def head(self) -> str:
        """``SEQ:HASH`` of the chain's last event: the anchor to keep outside the database."""
        return f"{self.head_seq}:{self.head_hash}"


class AnchorError(ValueError):
    pass


@dataclass(frozen=True)
class Anchor:
    """A head of the chain written down elsewhere (``SEQ:HASH``): the chain must still hold that event,
    with that hash, or it was cut back (the tail truncated) or rewritten since."""

    seq: int
    hash: str

    @classmethod
    def parse(cls, text: str) -> Anchor:
        seq, sep, digest = text.strip().partition(":")
        digest = digest.strip().lower()
        hex_digest = len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)
        if not sep or not seq.strip().isdigit() or not hex_digest:
            raise AnchorError(f"anchor must be SEQ:HASH (a sequence number and a 64-hex SHA-256), not {text!r}")
        return cls(int(seq), digest)

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"


def verify(*, db: Session, expect: Anchor | None = None) -> VerifyResult:
    """Walk the chain in sequence order; report the first event that was edited, removed, inserted or moved.

    A chain cut back at its end (the last events deleted) still links up; that is caught by ``expect``, a head
    recorded earlier (``VerifyResult.head``, kept outside the database): the event at ``expect.seq`` must
    still be there with ``expect.hash``."""
    prev = GENESIS
    expected_seq = 1
    count = 0
    anchored = expect is None or expect.seq == 0
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
            elif expect is not None and ev.seq == expect.seq:
                if ev.hash != expect.hash:
                    bad = f"hash differs from the anchor {expect} (the chain was rewritten since)"
                anchored = True
        if bad:
            return VerifyResult(False, count, ev.seq, ev.id, bad, head_seq=expected_seq - 1, head_hash=prev)
        prev = ev.hash
        expected_seq += 1
    head_seq = expected_seq - 1
    if not anchored:
        assert expect is not None
        reason = (f"the chain ends at seq {head_seq}, before the anchor {expect.seq}: "
                  f"events {head_seq + 1}..{expect.seq} (at least) were deleted from its end")
        return VerifyResult(False, count, head_seq + 1, None, reason, head_seq=head_seq, head_hash=prev)
    return VerifyResult(True, count, head_seq=head_seq, head_hash=prev)


def for_subject(*, db: Session, subject_type: str, subject_id: str | int) -> list[AuditEvent]:
    stmt = (
        sa.select(AuditEvent)
        .where(AuditEvent.subject_type == subject_type, AuditEvent.subject_id == str(subject_id))
        .order_by(AuditEvent.seq)
    )
    return list(db.execute(stmt).scalars())


def case_timeline(
    *, db: Session, case_id: int, recording_id: int, transcript_id: int | None, limit: int, offset: int,
    actor: str | None = None,
) -> tuple[int, list[AuditEvent]]:
    """What happened to a case, oldest first: its own events (created, read, changed, moved along, feedback),
    those of its recording and transcript (received, transcribed, played, downloaded), of the call it came
    from, and refused attempts on its routes (``/api/v1/cases/ID…``). Returns (total, one page). With
    ``actor``, this read of the timeline is recorded too (``case.timeline_read``, after the page is taken)."""
    from app.calls.models import Call  # a leaf module; imported here to keep the audit package's imports few

    call_ids = [str(i) for i in db.execute(sa.select(Call.id).where(Call.recording_id == recording_id)).scalars()]
    path = f"/api/v1/cases/{case_id}"
    subject = sa.or_(
        sa.and_(AuditEvent.subject_type == "case", AuditEvent.subject_id == str(case_id)),
        sa.and_(AuditEvent.subject_type == "recording", AuditEvent.subject_id == str(recording_id)),
        sa.and_(AuditEvent.subject_type == "transcript", AuditEvent.subject_id == str(transcript_id or "-")),
        sa.and_(AuditEvent.subject_type == "call", AuditEvent.subject_id.in_(call_ids)),
        sa.and_(AuditEvent.subject_type == "route",
                sa.or_(AuditEvent.subject_id == path, AuditEvent.subject_id.startswith(path + "/", autoescape=True))),
    )
    total = db.execute(sa.select(sa.func.count()).select_from(AuditEvent).where(subject)).scalar_one()
    page = list(db.execute(sa.select(AuditEvent).where(subject).order_by(AuditEvent.seq).limit(limit)
                           .offset(offset)).scalars())
    if actor:
        record(db=db, actor=actor, action="case.timeline_read", subject_type="case", subject_id=case_id,
               details={"offset": offset, "returned": len(page)})
    return total, page
