"""Cases: filed from a transcript, numbered per year, listed and read."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.cases import extract
from app.cases.categorize import categorize
from app.cases.models import Case, CaseStatus, Counter
from app.db import utcnow
from app.recordings.models import Recording
from app.transcripts.models import Transcript
from asr.types import Segment as AsrSegment

CASE_PREFIX = "12351"


def next_number(*, db: Session, name: str) -> int:
    """Atomically take the next value of a named counter (row lock on PostgreSQL; SQLite holds the
    database write lock for the whole transaction)."""
    bump = sa.update(Counter).where(Counter.name == name).values(value=Counter.value + 1).returning(Counter.value)
    value = db.execute(bump).scalar_one_or_none()
    if value is not None:
        return int(value)
    try:
        with db.begin_nested():
            db.add(Counter(name=name, value=1))
        return 1
    except IntegrityError:  # another transaction created it first
        return int(db.execute(bump).scalar_one())


def _summary(segments: list[AsrSegment]) -> str:
    said = [s.text for s in segments if s.speaker != "agent"] or [s.text for s in segments]
    return "".join(said)[:200]


def file_case(*, db: Session, recording: Recording, transcript: Transcript, actor: str) -> Case:
    """Create the case for a freshly transcribed recording: number, status 受理, first categorization."""
    segments = [AsrSegment(s.start, s.end, s.speaker, s.text) for s in transcript.segments]
    cat = categorize(segments)
    ent = extract.enterprise(segments)
    dist = extract.district(segments)
    year = utcnow().year
    case = Case(
        case_no=f"{CASE_PREFIX}-{year}-{next_number(db=db, name=f'case:{year}'):06d}",
        status=CaseStatus.accepted.value, channel=recording.channel, recording_id=recording.id,
        transcript_id=transcript.id, category=cat.category, category_confidence=cat.confidence,
        category_evidence=cat.evidence, enterprise=ent.value if ent else None,
        district=dist.value if dist else None, summary=_summary(segments), created_by=actor,
    )
    db.add(case)
    db.flush()
    audit.record(db=db, actor=actor, action="case.created", subject_type="case", subject_id=case.id, details={
        "case_no": case.case_no, "status": case.status, "channel": case.channel, "recording_id": recording.id,
        "transcript_id": transcript.id, "category": cat.category, "confidence": cat.confidence,
        "enterprise": case.enterprise, "enterprise_at": ent.start if ent else None,
        "district": case.district, "district_at": dist.start if dist else None,
    })
    return case


def get(*, db: Session, case_id: int) -> Case | None:
    return db.get(Case, case_id)


def list_cases(*, db: Session, limit: int, offset: int, status: str | None = None,
               category: str | None = None) -> tuple[int, list[Case]]:
    stmt = sa.select(Case)
    if status:
        stmt = stmt.where(Case.status == status)
    if category:
        stmt = stmt.where(Case.category == category)
    total = db.execute(sa.select(sa.func.count()).select_from(stmt.subquery())).scalar_one()
    rows = db.execute(stmt.order_by(Case.created_at.desc(), Case.id.desc()).limit(limit).offset(offset)).scalars()
    return total, list(rows)
