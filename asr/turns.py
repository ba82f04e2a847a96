"""Speaker turns: what both diarizers (asr/diarize.py, embedded; asr/diarize_pyannote.py, pyannote.audio) return,
and their conversions to and from pyannote.core ``Annotation`` and RTTM. One home for what the two share, so
that neither imports the other's internals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyannote.core import Annotation

MAX_SPEAKERS = 6  # the most speakers either diarizer estimates when the number is not given


@dataclass(frozen=True)
class SpeakerTurn:
    start: float
    end: float
    speaker: str  # S1, S2, … in order of first speaking


def to_annotation(turns: list[SpeakerTurn], uri: str = "session") -> Annotation:
    """A pyannote.core Annotation of the turns (pyannote.core is needed only here)."""
    from pyannote.core import Annotation, Segment

    annotation = Annotation(uri=uri)
    for turn in turns:
        annotation[Segment(turn.start, turn.end)] = turn.speaker
    return annotation


def from_annotation(annotation: Annotation, duration: float) -> list[SpeakerTurn]:
    """The turns of an Annotation, in time order, clipped to ``[0, duration]``, labels renamed S1, S2, … in
    order of first speaking."""
    names: dict[str, str] = {}
    turns: list[SpeakerTurn] = []
    tracks = sorted(annotation.itertracks(yield_label=True), key=lambda t: (t[0].start, t[0].end))
    for segment, _track, label in tracks:
        start, end = round(max(segment.start, 0.0), 2), round(min(segment.end, duration), 2)
        if end > start:
            turns.append(SpeakerTurn(start, end, names.setdefault(str(label), f"S{len(names) + 1}")))
    return turns


def to_rttm(turns: list[SpeakerTurn], uri: str = "session") -> str:
    return "".join(f"SPEAKER {uri} 1 {t.start:.3f} {t.end - t.start:.3f} <NA> <NA> {t.speaker} <NA> <NA>\n"
                   for t in turns)


