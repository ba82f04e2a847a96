from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Layout = Literal["caller-left", "agent-left", "mono"]
EngineName = Literal["faster-whisper", "openai-whisper"]

# Decoding bias toward simplified characters with punctuation in our domain (issue 3 refines it).
DEFAULT_PROMPT = "以下是普通话的句子，这是职工服务热线的通话录音，内容涉及工资、社保、工伤、劳动合同和仲裁。"


@dataclass(frozen=True)
class AudioInfo:
    format: str
    codec: str
    sample_rate: int
    channels: int
    duration: float


@dataclass(frozen=True)
class Word:
    """A word of a segment's text and when it was said (seconds from the recording's start). The words of a
    segment concatenate to its text exactly; punctuation rides with the word before it (asr/words.py)."""

    start: float
    end: float
    text: str
    probability: float = 1.0  # the decoder's confidence in it (the least of its pieces'); below 0.5: re-listen


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    speaker: str
    text: str
    words: list[Word] = field(default_factory=list, hash=False)  # empty where no timings were made (live)


@dataclass(frozen=True)
class Transcript:
    duration: float
    language: str
    engine: str
    model: str
    processing_s: float
    segments: list[Segment] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AsrOptions:
    engine: EngineName = "faster-whisper"
    model_dir: Path | None = None  # None: the bundled Whisper base
    compute_type: str = "int8"
    beam_size: int = 5
    threads: int = 0  # cores per decode; 0: one, with one decode per core side by side
    layout: Layout = "caller-left"
    language: str = "zh"
    initial_prompt: str = DEFAULT_PROMPT
    num_speakers: int | None = None  # single-microphone sessions: None estimates it
    diarization_dir: Path | None = None  # single-microphone sessions: a pyannote.audio pipeline; None: embedded
    correct_terms: bool = True  # domain-term correction (asr/lexicon.py)
    extra_terms: tuple[str, ...] = ()  # e.g. enterprise names on file, added to the lexicon
