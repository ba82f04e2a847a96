"""Build cases from hand-written transcripts (no model needed), through the real services."""

from __future__ import annotations

import hashlib
from typing import Any

from app.cases import service as cases
from app.cases.models import Case
from app.db import Database
from app.recordings.models import Recording
from app.search import service as search
from app.search.tokenize import index_tokens
from app.transcripts import service as transcripts
from asr import types as asr
from asr.words import word_cuts


def timed_words(text: str, start: float, end: float) -> list[asr.Word]:
    """``text``'s words (as the worker cuts them), said one after another evenly over [start, end]."""
    cuts = word_cuts(text)
    step = (end - start) / len(cuts)
    return [asr.Word(round(start + k * step, 2), round(start + (k + 1) * step, 2), w) for k, w in enumerate(cuts)]


def file_transcript(database: Database, turns: list[tuple[str, str]], name: str = "call", *,
                    timed: bool = False) -> int:
    """A case from (speaker, text) turns, 5 s apart (``timed``: with word timings); returns the case id."""
    segments = [asr.Segment(5.0 * i, 5.0 * i + 4, who, text, timed_words(text, 5.0 * i, 5.0 * i + 4) if timed else [])
                for i, (who, text) in enumerate(turns)]
    result = asr.Transcript(duration=5.0 * len(turns), language="zh", engine="hand-written", model="-",
                            processing_s=0.0, segments=segments)
    with database.session() as db:
        rec = Recording(
            sha256=hashlib.sha256(f"{name}{turns}".encode()).hexdigest(), path=f"{name}.wav",
            original_name=f"{name}.wav", size_bytes=1, format="wav", codec="pcm_mulaw", sample_rate=8000,
            channels=2, duration=result.duration, layout="caller-left", channel="来电", status="done",
            uploaded_by="test",
        )
        db.add(rec)
        db.flush()
        transcript = transcripts.store(db=db, recording_id=rec.id, result=result)
        case = cases.file_case(db=db, recording=rec, transcript=transcript, actor="test")
        search.index_case(db=db, case=case, segments=transcript.segments)
        return case.id


def word_said(segments: list[dict[str, Any]], avoid: str = "") -> str:
    """A word the caller's post-call transcript holds, to search for: 黄岛 when it came out so (the D03 clips
    say it plainly), else its longest word of two characters or more not in ``avoid``. Whisper's cuts of a
    SIP leg shift with where its first packet fell, so the exact words vary a little from run to run."""
    said = [seg["text"] for seg in segments if seg["speaker"] == "caller"]
    if any("黄岛" in text for text in said):
        return "黄岛"
    words = [t for text in said for t in index_tokens(text) if len(t) >= 2 and t not in avoid]
    assert words, said
    return max(words, key=len)


def read_case(database: Database, case_id: int) -> Case:
    """The case as it stands now, detached from its session."""
    with database.session() as db:
        case = db.get(Case, case_id)
        assert case is not None
        db.expunge(case)
        return case
