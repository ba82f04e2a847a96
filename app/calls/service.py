"""Calls: the adapter's record of each call (start, end, DTMF, hold), linked to its recording."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.calls.models import Call, CallStatus
from telephony.recorder import CallManifest


def _ts(t: float | None) -> datetime | None:
    return datetime.fromtimestamp(t, UTC) if t else None


def by_uuid(*, db: Session, call_uuid: str) -> Call | None:
    return db.execute(sa.select(Call).where(Call.call_uuid == call_uuid)).scalar_one_or_none()


def get(*, db: Session, call_id: int) -> Call | None:
    return db.get(Call, call_id)


def started(*, db: Session, manifest: CallManifest) -> Call:
    """The call's row when it starts (idempotent: recovery may report a call again)."""
    call = by_uuid(db=db, call_uuid=manifest.call_id)
    if call:
        return call
    call = Call(call_uuid=manifest.call_id, source=manifest.source, external_id=manifest.external_id[:255],
                caller=manifest.caller[:64], called=manifest.called[:64], channel=manifest.channel,
                status=CallStatus.active.value, started_at=_ts(manifest.started_at), dtmf=[], events=[])
    db.add(call)
    db.flush()
    audit.record(db=db, actor=manifest.actor, action="call.started", subject_type="call", subject_id=call.id,
                 details={"source": manifest.source, "external_id": manifest.external_id,
                          "caller": manifest.caller, "called": manifest.called})
    return call


def finished(*, db: Session, manifest: CallManifest, status: CallStatus, recording_id: int | None,
             error: str | None = None) -> Call:
    call = started(db=db, manifest=manifest)
    # numbers learned after the start (mod_audio_fork metadata frames) fill what was still empty
    call.caller = call.caller or manifest.caller[:64]
    call.called = call.called or manifest.called[:64]
    call.status = status.value
    call.answered_at = _ts(manifest.answered_at)
    call.ended_at = _ts(manifest.ended_at)
    call.end_reason = manifest.end_reason
    call.dtmf = manifest.dtmf
    call.events = manifest.events
    call.recording_id = recording_id
    call.error = error
    audit.record(db=db, actor=manifest.actor, action="call.ended", subject_type="call", subject_id=call.id,
                 details={"status": status.value, "reason": manifest.end_reason, "recording_id": recording_id,
                          "dtmf": "".join(d["digit"] for d in manifest.dtmf), "error": error})
    return call


def for_recording(*, db: Session, recording_id: int) -> Call | None:
    return db.execute(sa.select(Call).where(Call.recording_id == recording_id)).scalar_one_or_none()


def recent(*, db: Session, limit: int, status: str | None = None) -> list[Call]:
    q = sa.select(Call).order_by(Call.started_at.desc()).limit(limit)
    if status:
        q = q.where(Call.status == status)
    return list(db.execute(q).scalars())
