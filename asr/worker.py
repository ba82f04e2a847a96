"""Recording → Transcript: decode, split channels, speakers by channel, Whisper, Mandarin clean-up."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from asr import mandarin
from asr.audio import SAMPLE_RATE, decode
from asr.engines import Engine
from asr.engines.faster_whisper import FasterWhisperEngine
from asr.lexicon import default_corrector
from asr.models import resolve_model_dir
from asr.types import AsrOptions, Layout, Segment, Transcript

_engines: dict[tuple[str, Path, str, int, int, str], Engine] = {}
_engines_lock = threading.Lock()


def load_engine(options: AsrOptions, cache_dir: Path) -> Engine:
    """The engine for these options, loaded once per process."""
    model_dir = resolve_model_dir(options.model_dir, cache_dir)
    key = (options.engine, model_dir, options.compute_type, options.threads, options.beam_size,
           options.initial_prompt)
    with _engines_lock:
        if key not in _engines:
            if options.engine == "openai-whisper":
                from asr.engines.openai_whisper import OpenAIWhisperEngine

                _engines[key] = OpenAIWhisperEngine(model_dir, options, cache_dir)
            else:
                _engines[key] = FasterWhisperEngine(model_dir, options)
        return _engines[key]


def speakers_for(layout: Layout, channels: int) -> list[str]:
    """Speaker role of each decoded channel. Mono audio (or layout mono) is one unnamed speaker."""
    if layout == "mono" or channels == 1:
        return ["speaker"]
    return ["caller", "agent"] if layout == "caller-left" else ["agent", "caller"]


def transcribe_channels(channels: list[np.ndarray], options: AsrOptions, engine: Engine) -> Transcript:
    started = time.perf_counter()
    duration = max(len(c) for c in channels) / SAMPLE_RATE
    if options.layout == "mono" and len(channels) > 1:
        channels = [np.mean(channels, axis=0).astype(np.float32)]
    roles = speakers_for(options.layout, len(channels))
    segments: list[Segment] = []
    decoded = engine.transcribe_channels(channels[: len(roles)])
    corrector = default_corrector(options.extra_terms) if options.correct_terms else None
    for role, raw_segments in zip(roles, decoded, strict=True):
        for raw in raw_segments:
            text = mandarin.clean(raw.text)
            if text and corrector:
                text, _changes = corrector.correct(text)
            if text:
                segments.append(Segment(round(raw.start, 2), round(raw.end, 2), role, text))
    segments.sort(key=lambda s: (s.start, s.end))
    return Transcript(
        duration=round(duration, 3), language=options.language, engine=engine.name,
        model=engine.model_dir.name, processing_s=round(time.perf_counter() - started, 3), segments=segments,
    )


def transcribe_file(path: Path, options: AsrOptions, cache_dir: Path) -> Transcript:
    engine = load_engine(options, cache_dir)
    return transcribe_channels(decode(path), options, engine)
