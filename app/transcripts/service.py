"""Transcripts: store what the ASR produced."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.transcripts.models import Segment, Transcript
from asr import types as asr


def store(*, db: Session, recording_id: int, result: asr.Transcript, kind: str = "final") -> Transcript:
    transcript = Transcript(
        recording_id=recording_id, kind=kind, engine=result.engine, model=result.model,
        language=result.language, duration=result.duration, processing_s=result.processing_s,
    )
    transcript.segments = [
        Segment(idx=i, start=s.start, end=s.end, speaker=s.speaker, text=s.text,
                words=[[w.start, w.end, w.text] for w in s.words] or None)
        for i, s in enumerate(result.segments)
    ]
    db.add(transcript)
    db.flush()
    return transcript


def for_recording(*, db: Session, recording_id: int, kind: str = "final") -> Transcript | None:
    stmt = sa.select(Transcript).where(Transcript.recording_id == recording_id, Transcript.kind == kind)
    return db.execute(stmt).scalar_one_or_none()
