"""Speech-to-text engines behind one interface (faster-whisper by default, openai-whisper on request).

Both split each channel into utterances with the same VAD and return the same typed segments, so the
rest of the pipeline (and ``hotline bench asr``) does not care which one ran.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from faster_whisper.vad import VadOptions, get_speech_timestamps

from asr.types import Word

SAMPLE_RATE = 16_000
# A pause of half a second ends an utterance; none passes 28 s (Whisper's window is 30 s).
_VAD = VadOptions(min_silence_duration_ms=500, speech_pad_ms=200, max_speech_duration_s=28)


@dataclass(frozen=True)
class RawSegment:
    start: float
    end: float
    text: str
    # Whisper's pieces of ``text`` (a character or a few) with when each was said, in seconds from the
    # recording's start; asr/words.py carries them over to the cleaned-up text's words
    words: list[Word] = field(default_factory=list, hash=False)


class Engine(Protocol):
    name: str
    model_dir: Path

    def transcribe_channels(
        self, channels: list[np.ndarray], regions: list[list[tuple[float, float]]] | None = None
    ) -> list[list[RawSegment]]:
        """Utterances of each channel (16 kHz float32) with their text, times in seconds; ``regions`` gives
        the stretches to decode per channel (speaker turns), by default VAD finds them."""
        ...


def utterances(audio: np.ndarray) -> list[tuple[float, float]]:
    """Speech regions of one channel (silero VAD, shipped inside faster-whisper), in seconds."""
    return [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in get_speech_timestamps(audio, _VAD)]
