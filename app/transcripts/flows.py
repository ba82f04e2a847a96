"""The transcription job: recording → transcript → case → search index, each step audited.

Idempotent: a recording that already has its transcript is left alone, and the unique constraints on
(recording, kind) and on the case's recording make a second transcript or case impossible even when two
workers race. The slow part (Whisper) runs outside any database transaction.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast, get_args

from sqlalchemy.exc import IntegrityError

from app.audit import service as audit
from app.auth.permissions import Masking
from app.cases import service as cases
from app.cases.models import Case
from app.config import Settings
from app.db import Database
from app.enterprises import service as enterprises
from app.recordings import files, storage
from app.recordings import service as recordings
from app.recordings.models import JobStatus, Recording
from app.search import service as search
from app.taxonomy import service as taxonomy
from app.taxonomy.models import TermKind
from app.transcripts import corrections
from app.transcripts import service as transcripts
from app.transcripts.models import CorrectionResult, Segment, SegmentRead
from asr.audio import AudioError
from asr.models import ModelError
from asr.score import AudioScorer
from asr.types import AsrOptions, Layout
from asr.worker import scorer_for, transcribe_and_score

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


@contextmanager
def _audio_or_none(settings: Settings, rec: Recording | None) -> Iterator[Path | None]:
    """The recording in clear for the decoder, or None (no recording, missing, unreachable or failing its
    check: the caller carries on without the audio and says so)."""
    if rec is None:
        yield None
        return
    with ExitStack() as stack:
        try:
            path: Path | None = stack.enter_context(files.local_copy(settings, rec))
        except storage.StorageError as e:
            log.warning("recording %s not readable: %s", rec.id, e)
            path = None
        yield path


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
        # the domain lexicon admins keep, and the enterprises already on file, bias the term correction
        options = replace(asr_options(settings, rec.layout), extra_terms=taxonomy.asr_terms(db=db))
    try:
        with files.local_copy(settings, rec) as path:
            result, scorer = transcribe_and_score(path, options, settings.models_dir)
    except (AudioError, ModelError, storage.ObjectMissing) as e:
        raise PermanentFailure(str(e)) from e
    except files.Corrupted as e:
        _integrity_failed(database=database, recording_id=recording_id, actor=actor, error=str(e))
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
            case = cases.file_case(db=db, recording=rec, transcript=transcript, actor=actor, settings=settings,
                                   scorer=scorer, resolver=enterprises.resolver(db=db))
            search.index_case(db=db, case=case, segments=transcript.segments)
            rec.status = JobStatus.done.value
            rec.error = None
            rec.lease_until = None
            case_id = case.id
    except IntegrityError:
        # Another worker filed it between our claim and now: theirs stands, ours is dropped.
        log.warning("recording %s was transcribed concurrently; keeping the first transcript", recording_id)
        return Outcome(recording_id, None, "transcribed concurrently")
    evaluate_warnings(database=database, settings=settings, case_id=case_id)
    return Outcome(recording_id, case_id)


def evaluate_warnings(*, database: Database, settings: Settings, case_id: int) -> None:
    """Early warnings for a case just filed, in its own transaction after the case is on file: a failure here
    loses nothing (the hourly evaluation in the worker picks the case up) and is logged."""
    from app.warnings import service as warnings

    try:
        with database.session() as db:
            warnings.evaluate_case(db=db, settings=settings, case_id=case_id)
    except Exception:
        log.exception("early-warning evaluation of case %s failed; the hourly run will try again", case_id)


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


def _integrity_failed(*, database: Database, recording_id: int, actor: str, error: str) -> None:
    with database.session() as db:
        audit.record(db=db, actor=actor, action="recording.integrity_failed", subject_type="recording",
                     subject_id=recording_id, details={"error": error[:500]})
    log.error("recording %s failed its integrity check: %s", recording_id, error)


# --- a person corrects a segment ------------------------------------------------------------------------


class SegmentNotFound(Exception):
    pass


class HiddenNumbers(Exception):
    """The segment holds a number masked for this user: saving what they see would overwrite it."""


@dataclass
class Conflict(Exception):
    """The segment was changed since the client read it (nothing written): how it stands now."""

    current: SegmentRead
    message: str

    def __str__(self) -> str:
        return self.message


def learn_terms(*, db: Any, case: Case | None, machine: str, corrected: str, actor: str) -> list[str]:
    """Terms the correction teaches (corrections.learned_terms) added to the admin lexicon, their source
    noted as ``correction:<actor>`` (added_by, and the actor of the ``lexicon.added`` audit event). Terms
    already there, or in the built-in lexicon, are skipped."""
    added = []
    for term in corrections.learned_terms(machine, corrected):
        kind = TermKind.enterprise if case is not None and term == case.enterprise else TermKind.other
        try:
            taxonomy.add_term(db=db, term=term, kind=kind, actor=f"correction:{actor}"[:64])
        except taxonomy.TaxonomyError:
            continue
        added.append(term)
    if case is not None and case.enterprise_id is not None and added:
        _alias_from_correction(db=db, case=case, corrected=corrected, terms=added, actor=actor)
    return added


def _alias_from_correction(*, db: Any, case: Case, corrected: str, terms: list[str], actor: str) -> None:
    """The enterprise name as the corrected text says it, when the correction touched it, becomes an alias of
    the registered enterprise the case is linked to (so the next call naming it so is resolved to it)."""
    from app.cases import extract
    from app.enterprises import service as enterprises
    from app.enterprises.models import AliasSource
    from asr.types import Segment as AsrSegment

    found = extract.enterprise([AsrSegment(0.0, 0.0, "caller", corrected)])
    name = str(found.value) if found else ""
    enterprise = enterprises.get(db=db, enterprise_id=case.enterprise_id) if case.enterprise_id else None
    if not name or enterprise is None or not any(t in name for t in terms):
        return
    if enterprises.add_alias(db=db, enterprise=enterprise, alias=name, source=AliasSource.correction, actor=actor):
        audit.record(db=db, actor=actor, action="enterprise.alias_added", subject_type="enterprise",
                     subject_id=enterprise.id, details={"alias": name, "source": AliasSource.correction.value,
                                                        "case_id": case.id})


def correct_segment(*, database: Database, settings: Settings, transcript_id: int, idx: int, text: Any,
                    version: int, username: str, role: str) -> CorrectionResult:
    """A person's correction of one segment, in two steps.

    1. One transaction: the text replaced (machine text kept, version bumped, audited), word timings carried
       over from the old ones, corrected terms added to the lexicon, the case's suggested fields extracted
       again (fields people set are left alone) and the case indexed again: searchable and re-extracted when
       it commits.
    2. Outside any transaction (Whisper is slow the first time it loads): the corrected text aligned on the
       segment's audio; its word timings stored unless the segment was edited again meanwhile.

    SegmentNotFound, HiddenNumbers, transcripts.InvalidCorrection, Conflict (stale ``version``)."""
    actor = f"user:{username}"
    started = time.perf_counter()
    with database.session() as db:
        seg = transcripts.segment(db=db, transcript_id=transcript_id, idx=idx, for_update=True)
        if seg is None:
            raise SegmentNotFound()
        if Masking.for_role(role).text(seg.text) != seg.text:
            raise HiddenNumbers()
        try:
            transcripts.correct(db=db, seg=seg, text=text, version=version, actor=actor, username=username)
        except transcripts.StaleVersion as e:  # nothing written; the client keeps its text
            raise Conflict(SegmentRead.model_validate(e.current), str(e)) from None
        case = cases.for_transcript(db=db, transcript_id=transcript_id)
        learned = learn_terms(db=db, case=case, machine=seg.machine_text or "", corrected=seg.text, actor=actor)
        changed = (cases.refresh_case(db=db, case=case, actor=actor, settings=settings,
                                      reason="transcript.corrected", reindex_said=True,
                                      resolver=enterprises.resolver(db=db)) if case else [])
        transcript = transcripts.get(db=db, transcript_id=transcript_id)
        rec = recordings.get(db=db, recording_id=transcript.recording_id) if transcript else None
        seg_id, new_version, case_id = seg.id, seg.version, case.id if case else None
        start, end, speaker, new_text = seg.start, seg.end, seg.speaker, seg.text
    applied_ms = (time.perf_counter() - started) * 1000
    with _audio_or_none(settings, rec) as path:
        timing = corrections.retime(settings=settings, path=path, layout=rec.layout if rec else "caller-left",
                                    speaker=speaker, start=start, end=end, text=new_text)
    with database.session() as db:
        seg = db.get(Segment, seg_id, with_for_update=True)  # an edit racing this one: its words stand
        assert seg is not None
        if timing.aligned:
            transcripts.set_words(db=db, seg=seg, words=timing.words, version=new_version)
        else:
            log.info("segment %s of transcript %s: word timings carried over from the machine's (spread evenly "
                     "where it had none), alignment not possible: %s", idx, transcript_id, timing.note)
        read = SegmentRead.model_validate(seg)
    log.info("correction of segment %s of transcript %s searchable and re-extracted in %.0f ms (changed: %s; "
             "terms learned: %s); word timings %.0f ms later", idx, transcript_id, applied_ms,
             ", ".join(changed) or "-", ", ".join(learned) or "-",
             (time.perf_counter() - started) * 1000 - applied_ms)
    return CorrectionResult(segment=read, case_id=case_id, changed_fields=changed, learned_terms=learned,
                            aligned=timing.aligned, applied_ms=round(applied_ms, 1))


# --- existing cases processed again (`hotline cases refresh`) ------------------------------------------


@dataclass(frozen=True)
class Refreshed:
    case_id: int
    case_no: str
    changed_fields: list[str]
    terms_corrected: int  # segments whose text the term correction changed
    replaced: transcripts.Replaced | None = None  # with retranscribe
    skipped: str = ""  # why not retranscribed


def _scorer_of_case(*, database: Database, settings: Settings, case_id: int) -> AudioScorer | None:
    """The case's recording, to check facts against again (None: no recording file, or audio that does not
    decode; the facts are then read from the text alone)."""
    with database.session() as db:
        case = cases.get(db=db, case_id=case_id)
        rec = recordings.get(db=db, recording_id=case.recording_id) if case else None
        if rec is None:
            return None
        options = asr_options(settings, rec.layout)
    try:
        with _audio_or_none(settings, rec) as path:
            return scorer_for(path, options, settings.models_dir) if path else None
    except (AudioError, ModelError) as e:
        log.warning("case %s: facts not checked against the audio (%s)", case_id, e)
        return None


def refresh_case(*, database: Database, settings: Settings, case_id: int, actor: str = "refresh",
                 retranscribe: bool = False) -> Refreshed:
    """One case processed again with what the site knows now (lexicon, enterprises on file): term
    correction of the segments nobody edited, then extraction, applied to the fields nobody set (each change
    audited with ``actor``). ``retranscribe``: the recording transcribed again first (outside any
    transaction), its segments replacing those nobody edited."""
    replaced, skipped = None, ""
    result, scorer = None, None
    if retranscribe:
        with database.session() as db:
            case = cases.get(db=db, case_id=case_id)
            rec = recordings.get(db=db, recording_id=case.recording_id) if case else None
            if rec is None:
                raise ValueError(f"case {case_id} has no recording")
            options = replace(asr_options(settings, rec.layout), extra_terms=taxonomy.asr_terms(db=db))
        with _audio_or_none(settings, rec) as path:
            if path:  # the audio checks the facts again too (app/cases/verify.py)
                result, scorer = transcribe_and_score(path, options, settings.models_dir)
            else:
                skipped = f"录音文件无法读取：{rec.path}"
    else:
        scorer = _scorer_of_case(database=database, settings=settings, case_id=case_id)
    with database.session() as db:
        case = cases.get(db=db, case_id=case_id)
        if case is None:
            raise ValueError(f"case {case_id} does not exist")
        transcript = transcripts.get(db=db, transcript_id=case.transcript_id) if case.transcript_id else None
        if result is not None and transcript is not None:
            search.index_case(db=db, case=case, segments=[])  # its entries point at the segments replaced
            replaced = transcripts.replace_unedited(db=db, transcript=transcript, result=result)
            audit.record(db=db, actor=actor, action="transcript.retranscribed", subject_type="transcript",
                         subject_id=transcript.id, details={
                             "removed": replaced.removed, "kept_edited": replaced.kept, "added": replaced.added,
                             "engine": result.engine, "model": result.model, "processing_s": result.processing_s})
        segments = cases.transcript_segments(db=db, case=case)
        corrected = cases.correct_terms(db=db, segments=segments, actor=actor)
        changed = cases.refresh_case(db=db, case=case, actor=actor, settings=settings, segments=segments,
                                     reason="refresh", reindex_said=bool(corrected or replaced), scorer=scorer,
                                     resolver=enterprises.resolver(db=db))
        return Refreshed(case.id, case.case_no, changed, len(corrected), replaced, skipped)
