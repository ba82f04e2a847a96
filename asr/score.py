"""Facts checked against the audio: how well candidate texts fit what was said in a stretch of a recording.

Where a fact can only be one of a closed set (the ten districts and their streets, the registry's candidates
for a heard name, the numbers heard in the call), each candidate is put in place of what was heard and the
whole sentence is scored against that stretch's audio by the Whisper model already loaded (forced decoding:
the sum of the log-probabilities of its tokens). What the decoder heard freely often scores better than any
candidate (it is its own best guess), so candidates are compared with each other, and with the heard text
only to see how far they are from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from asr.audio import SAMPLE_RATE

_PAD_S = 0.2  # around a segment's own times


class TextScorer(Protocol):
    def encode_clip(self, clip: np.ndarray) -> np.ndarray: ...
    def score_encoded(self, encoded: np.ndarray, texts: Sequence[str]) -> list[float]: ...


class AudioScorer:
    """Scores texts against a recording's channels, by speaker role (caller/agent, or S1… of one mic)."""

    def __init__(self, engine: TextScorer, channels: dict[str, np.ndarray]) -> None:
        self.engine = engine
        self.channels = channels
        self._cache: dict[tuple[str, float, float, str], float] = {}
        self._encoded: dict[tuple[str, float, float], np.ndarray] = {}  # one encoding per stretch

    def score(self, speaker: str, start: float, end: float, texts: Sequence[str]) -> list[float]:
        """Log-probability of each text said by ``speaker`` between ``start`` and ``end`` (seconds)."""
        audio = self.channels.get(speaker, next(iter(self.channels.values())))  # S1, S2 …: the one microphone
        todo = list(dict.fromkeys(t for t in texts if (speaker, start, end, t) not in self._cache))
        if todo:
            key = (speaker, start, end)
            if key not in self._encoded:
                a, b = max(0, int((start - _PAD_S) * SAMPLE_RATE)), int((end + _PAD_S) * SAMPLE_RATE)
                self._encoded[key] = self.engine.encode_clip(audio[a:b])
            for text, value in zip(todo, self.engine.score_encoded(self._encoded[key], todo), strict=True):
                self._cache[(speaker, start, end, text)] = value
        return [self._cache[(speaker, start, end, t)] for t in texts]
