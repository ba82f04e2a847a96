"""The transcription job: recording → transcript → case → search index, each step audited.

Idempotent: a recording that already has its transcript is left alone, and the unique constraints on
(recording, kind) and on the case's recording make a second transcript or case impossible even when two
workers race. The slow part (Whisper) runs outside any database transaction.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, replace
from typing import cast, get_args

from sqlalchemy.exc import IntegrityError

from app.audit import service as audit
from app.cases import service as cases
from app.config import Settings
from app.db import Database
from app.recordings import service as recordings
from app.recordings.models import JobStatus
from app.search import service as search
from app.taxonomy import service as taxonomy
from app.transcripts import service as transcripts
from asr.audio import AudioError
from asr.models import ModelError
from asr.types import AsrOptions, Layout
from asr.worker import transcribe_file

log = logging.getLogger(__name__)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def asr_options(settings: Settings, layout: str) -> AsrOptions:
    if layout not in get_args(Layout):
        raise ValueError(f"unknown channel layout {layout!r}")
    return AsrOptions(
        engine=settings.asr_engine, model_dir=settings.asr_model_dir, compute_type=settings.asr_compute_type,
        beam_size=settings.asr_beam_size, threads=settings.asr_threads, layout=cast(Layout, layout),
        diarization_dir=settings.diarization_dir,
    )


class PermanentFailure(Exception):
    """Retrying cannot help (the audio is unusable or the model is not configured)."""


@dataclass(frozen=True)
class Outcome:
    recording_id: int
    case_id: int | None
    skipped: str = ""  # why nothing was done, if nothing was


def transcribe_recording(*, database: Database, settings: Settings, recording_id: int) -> Outcome:
    worker = worker_id()
    actor = f"worker:{worker}"
    with database.session() as db:
        rec = recordings.claim(db=db, recording_id=recording_id, worker=worker, lease_s=settings.job_lease_s)
        if rec is None:
            return Outcome(recording_id, None, "done, failed or held by another worker")
        path, layout = recordings.file_path(settings, rec), rec.layout
        # the domain lexicon admins keep, and the enterprises already on file, bias the term correction
        options = replace(asr_options(settings, layout), extra_terms=taxonomy.asr_terms(db=db))
    if not path.is_file():
        raise PermanentFailure(f"录音文件缺失：{rec.path}（数据目录 recordings/ 下）")
    try:
        result = transcribe_file(path, options, settings.models_dir)
    except (AudioError, ModelError) as e:
        raise PermanentFailure(str(e)) from e
    try:
        with database.session() as db:
            rec = recordings.get(db=db, recording_id=recording_id)
            assert rec is not None
            transcript = transcripts.store(db=db, recording_id=rec.id, result=result)
            audit.record(db=db, actor=actor, action="transcript.created", subject_type="recording",
                         subject_id=rec.id, details={
                             "transcript_id": transcript.id, "segments": len(transcript.segments),
                             "engine": result.engine, "model": result.model, "processing_s": result.processing_s})
            case = cases.file_case(db=db, recording=rec, transcript=transcript, actor=actor, settings=settings)
            search.index_case(db=db, case=case, segments=transcript.segments)
            rec.status = JobStatus.done.value
            rec.error = None
            rec.lease_until = None
            return Outcome(recording_id, case.id)
    except IntegrityError:
        # Another worker filed it between our claim and now: theirs stands, ours is dropped.
        log.warning("recording %s was transcribed concurrently; keeping the first transcript", recording_id)
        return Outcome(recording_id, None, "transcribed concurrently")


def mark_failed(*, database: Database, recording_id: int, error: str, final: bool) -> None:
    """Record a failed attempt; ``final``: no retry is coming, the job stays failed until re-queued."""
    with database.session() as db:
        rec = recordings.get(db=db, recording_id=recording_id)
        if rec is None or rec.status == JobStatus.done:
            return
        rec.error = error[:2000]
        rec.status = (JobStatus.failed if final else JobStatus.queued).value
        rec.claimed_by = None
        rec.lease_until = None if final else recordings.queued_lease()
        audit.record(db=db, actor=f"worker:{worker_id()}", action="transcription.failed", subject_type="recording",
                     subject_id=rec.id, details={"error": error[:500], "final": final, "attempts": rec.attempts})
