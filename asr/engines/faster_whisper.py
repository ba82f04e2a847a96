"""faster-whisper (CTranslate2) engine: VAD splits a channel into utterances, decoded in one batch."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from faster_whisper import BatchedInferencePipeline, WhisperModel
from faster_whisper.vad import VadOptions, get_speech_timestamps

from asr.audio import SAMPLE_RATE
from asr.types import AsrOptions

# Endpointing for call audio: a pause of half a second ends an utterance; no utterance passes 28 s
# (Whisper's window is 30 s), so each utterance is decoded alone and keeps its own timestamps.
_VAD = VadOptions(min_silence_duration_ms=500, speech_pad_ms=200, max_speech_duration_s=28)


@dataclass(frozen=True)
class RawSegment:
    start: float
    end: float
    text: str


class FasterWhisperEngine:
    name = "faster-whisper"

    def __init__(self, model_dir: Path, options: AsrOptions) -> None:
        threads = options.threads or os.cpu_count() or 1
        self.model_dir = model_dir
        self.options = options
        self._model = WhisperModel(str(model_dir), device="cpu", compute_type=options.compute_type,
                                   cpu_threads=threads)
        self._pipeline = BatchedInferencePipeline(self._model)
        self._lock = threading.Lock()  # one decode at a time per loaded model

    def transcribe(self, audio: np.ndarray) -> list[RawSegment]:
        """Utterances of one channel (16 kHz float32), with times in seconds from the channel's start."""
        speech = get_speech_timestamps(audio, _VAD)
        if not speech:
            return []
        clips = [{"start": s["start"] / SAMPLE_RATE, "end": s["end"] / SAMPLE_RATE} for s in speech]
        o = self.options
        with self._lock:
            segments, _info = self._pipeline.transcribe(
                audio, language=o.language, beam_size=o.beam_size, batch_size=8, vad_filter=False,
                clip_timestamps=clips, initial_prompt=o.initial_prompt, log_progress=False,
            )
            return [RawSegment(float(s.start), float(s.end), s.text) for s in segments]
