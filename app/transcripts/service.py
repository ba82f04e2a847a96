"""Transcripts: store what the ASR produced; people correct segments (versioned, the machine's text kept)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.db import utcnow
from app.transcripts.models import Segment, Transcript
from asr import types as asr
from asr import words as asr_words

MAX_SEGMENT_CHARS = 2000  # a segment is one utterance (under 28 s): far less is ever said in one
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SPOKEN = re.compile(r"\w")


def word_rows(words: Sequence[asr.Word], *, probabilities: bool = True) -> list[list[Any]] | None:
    """Words as stored in ``segments.words``: [start, end, text, probability] (the decoder's); without
    ``probabilities`` (text a person wrote: nothing uncertain about it) [start, end, text]."""
    return [[w.start, w.end, w.text, w.probability] if probabilities else [w.start, w.end, w.text]
            for w in words] or None


def timed(rows: Sequence[Sequence[Any]] | None) -> list[asr.Word]:
    """Stored words ([start, end, text] or [start, end, text, probability]) as timed words."""
    return [asr.Word(float(r[0]), float(r[1]), str(r[2]), float(r[3]) if len(r) > 3 else 1.0)
            for r in rows or () if len(r) >= 3]


def store(*, db: Session, recording_id: int, result: asr.Transcript, kind: str = "final") -> Transcript:
    transcript = Transcript(
        recording_id=recording_id, kind=kind, engine=result.engine, model=result.model,
        language=result.language, duration=result.duration, processing_s=result.processing_s,
    )
    transcript.segments = [
        Segment(idx=i, start=s.start, end=s.end, speaker=s.speaker, text=s.text, words=word_rows(s.words))
        for i, s in enumerate(result.segments)
    ]
    db.add(transcript)
    db.flush()
    return transcript


def for_recording(*, db: Session, recording_id: int, kind: str = "final") -> Transcript | None:
    stmt = sa.select(Transcript).where(Transcript.recording_id == recording_id, Transcript.kind == kind)
    return db.execute(stmt).scalar_one_or_none()


def get(*, db: Session, transcript_id: int) -> Transcript | None:
    return db.get(Transcript, transcript_id)


def segment(*, db: Session, transcript_id: int, idx: int, for_update: bool = False) -> Segment | None:
    stmt = sa.select(Segment).where(Segment.transcript_id == transcript_id, Segment.idx == idx)
    if for_update:
        stmt = stmt.with_for_update()
    return db.execute(stmt).scalar_one_or_none()


# --- corrections --------------------------------------------------------------------------------------


class InvalidCorrection(Exception):
    """The corrected text cannot be taken (empty, too long, not text): the message says why, in Chinese."""


@dataclass
class StaleVersion(Exception):
    """The segment changed since the client read it: nothing was written; ``current`` is how it stands."""

    current: Segment

    def __str__(self) -> str:
        who = self.current.edited_by or "系统"
        return f"此段已被 {who} 修改（当前版本 {self.current.version}），请在最新内容上重新校对"


def checked_text(value: Any) -> str:
    """A corrected segment text as it will be stored, or InvalidCorrection."""
    if not isinstance(value, str):
        raise InvalidCorrection("校对内容须为文字")
    text = value.strip()
    if not text:
        raise InvalidCorrection("校对内容不能为空")
    if len(text) > MAX_SEGMENT_CHARS:
        raise InvalidCorrection(f"校对内容不能超过{MAX_SEGMENT_CHARS}个字")
    if _CONTROL.search(text) or "\n" in text:
        raise InvalidCorrection("校对内容不能包含换行或控制字符")
    if not _SPOKEN.search(text):
        raise InvalidCorrection("校对内容须包含文字")
    return text


def even_words(text: str, start: float, end: float) -> list[asr.Word]:
    """``text``'s words timed by spreading [start, end] evenly over the characters said (the fallback when
    Whisper's alignment cannot be run): each character the same share, punctuation none."""
    said = [ch for ch in text if _SPOKEN.match(ch)]
    if not said or end <= start:
        return [asr.Word(start, max(start, end), w) for w in asr_words.word_cuts(text)] if text else []
    step = (end - start) / len(said)
    pieces = [asr.Word(start + k * step, start + (k + 1) * step, ch) for k, ch in enumerate(said)]
    return asr_words.timed_words(pieces, text, start, end)


def carried_words(seg: Segment, text: str) -> list[asr.Word]:
    """The words of ``text`` timed from the segment's stored words (unchanged characters keep their time, a
    replaced stretch shares the time of what it replaced), evenly where it has none."""
    old = timed(seg.words)
    return asr_words.timed_words(old, text, seg.start, seg.end) if old else even_words(text, seg.start, seg.end)


def correct(*, db: Session, seg: Segment, text: Any, version: int, actor: str, username: str,
            words: Sequence[asr.Word] | None = None) -> str:
    """A person's correction of one segment: the machine's text kept (first edit), the text replaced, the
    version bumped, ``transcript.corrected`` {segment, before, after, version} audited. ``words``: the new
    text's timed words (default: carried over from the old ones). StaleVersion when ``version`` is not the
    segment's (nothing written); InvalidCorrection for text that cannot be taken. Returns the text before."""
    new = checked_text(text)
    if version != seg.version:
        raise StaleVersion(seg)
    before = seg.text
    if seg.machine_text is None:
        seg.machine_text = before
    seg.text = new
    seg.words = word_rows(words if words is not None else carried_words(seg, new), probabilities=False)
    seg.version += 1
    seg.edited_by, seg.edited_at = username, utcnow()
    db.flush()
    audit.record(db=db, actor=actor, action="transcript.corrected", subject_type="transcript",
                 subject_id=seg.transcript_id, details={
                     "segment": seg.idx, "segment_id": seg.id, "before": before, "after": new,
                     "version": seg.version})
    return before


def set_words(*, db: Session, seg: Segment, words: Sequence[asr.Word], version: int) -> bool:
    """Store better word timings for the segment's text, unless it was edited again since ``version``."""
    if seg.version != version:
        return False
    seg.words = word_rows(words, probabilities=seg.edited_by is None)
    db.flush()
    return True


@dataclass(frozen=True)
class Replaced:
    removed: int  # machine segments dropped
    kept: int  # segments people edited, kept as they are
    added: int  # segments of the new transcription


def replace_unedited(*, db: Session, transcript: Transcript, result: asr.Transcript) -> Replaced:
    """A new transcription of the recording in place of the segments no person edited; edited ones stay
    (with their idx renumbered in time order), and new segments of the same speaker overlapping one of them
    are left out. The caller clears the case's search entries first (they point at segments) and indexes
    them again after."""
    segments = list(transcript.segments)
    kept = [s for s in segments if s.edited_by is not None]
    old = [s for s in segments if s.edited_by is None]
    fresh = [s for s in result.segments
             if not any(k.speaker == s.speaker and s.start < k.end and k.start < s.end for k in kept)]
    for seg in old:
        db.delete(seg)
    for seg in kept:  # out of the way of the new numbering (idx is unique per transcript)
        seg.idx = -1 - seg.idx
    db.flush()
    rows = [*kept, *(Segment(transcript_id=transcript.id, idx=0, start=s.start, end=s.end, speaker=s.speaker,
                             text=s.text, words=word_rows(s.words)) for s in fresh)]
    rows.sort(key=lambda r: (r.start, r.end))
    for i, row in enumerate(rows):
        row.idx = i
        db.add(row)
    transcript.engine, transcript.model = result.engine, result.model
    transcript.processing_s, transcript.duration = result.processing_s, result.duration
    db.flush()
    db.expire(transcript, ["segments"])
    return Replaced(removed=len(old), kept=len(kept), added=len(fresh))
