"""Recording → Transcript: decode, split channels, speakers by channel, Whisper, Mandarin clean-up."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import cast

import numpy as np

from asr import mandarin, words
from asr.audio import SAMPLE_RATE, decode
from asr.diarize import diarize
from asr.engines import Engine
from asr.engines.faster_whisper import FasterWhisperEngine
from asr.lexicon import default_corrector
from asr.models import resolve_model_dir
from asr.score import AudioScorer, TextScorer
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


def warm_up(options: AsrOptions, cache_dir: Path) -> Engine:
    """Load the engine and what clean-up needs (jieba's dictionary, pinyin tables), then decode one second of
    silence, so that a worker's first recording is as fast as the rest."""
    engine = load_engine(options, cache_dir)
    default_corrector(options.extra_terms).correct("劳山区")
    engine.transcribe_channels([np.zeros(SAMPLE_RATE, dtype=np.float32)], [[(0.0, 1.0)]])
    return engine


def speakers_for(layout: Layout) -> list[str]:
    """Speaker role of each decoded channel of a call."""
    return ["caller", "agent"] if layout == "caller-left" else ["agent", "caller"]


def _single_mic(audio: np.ndarray, options: AsrOptions, engine: Engine) -> list[Segment]:
    """One microphone: diarize into speaker turns (S1, S2, …), then decode each turn."""
    turns = diarize(audio, options.num_speakers, options.diarization_dir)
    decoded = engine.transcribe_channels([audio], [[(t.start, t.end) for t in turns]])[0]
    by_start = {t.start: t.speaker for t in turns}
    return [Segment(round(raw.start, 2), round(raw.end, 2), by_start.get(raw.start, "S1"), raw.text, raw.words)
            for raw in decoded]


def transcribe_channels(channels: list[np.ndarray], options: AsrOptions, engine: Engine) -> Transcript:
    started = time.perf_counter()
    duration = max(len(c) for c in channels) / SAMPLE_RATE
    if options.layout == "mono" or len(channels) == 1:
        raw_segments = _single_mic(np.mean(channels, axis=0).astype(np.float32), options, engine)
    else:
        decoded = engine.transcribe_channels(channels[:2])
        raw_segments = [Segment(round(r.start, 2), round(r.end, 2), role, r.text, r.words)
                        for role, rs in zip(speakers_for(options.layout), decoded, strict=True) for r in rs]
    corrector = default_corrector(options.extra_terms) if options.correct_terms else None
    segments: list[Segment] = []
    for seg in raw_segments:  # words: the engine's timed pieces until here, then the final text's words
        text = mandarin.clean(seg.text)
        if text and corrector:
            text, _changes = corrector.correct(text)
        if text:
            segments.append(Segment(seg.start, seg.end, seg.speaker, text,
                                    words.timed_words(seg.words, text, seg.start, seg.end)))
    segments.sort(key=lambda s: (s.start, s.end))
    return Transcript(
        duration=round(duration, 3), language=options.language, engine=engine.name,
        model=engine.model_dir.name, processing_s=round(time.perf_counter() - started, 3), segments=segments,
    )


def transcribe_file(path: Path, options: AsrOptions, cache_dir: Path) -> Transcript:
    return transcribe_and_score(path, options, cache_dir)[0]


def transcribe_and_score(path: Path, options: AsrOptions, cache_dir: Path) -> tuple[Transcript, AudioScorer | None]:
    """The transcript, and a scorer of candidate texts against the same audio (asr/score.py) for checking the
    case's facts; None where the engine cannot score (openai-whisper)."""
    engine = load_engine(options, cache_dir)
    channels = decode(path)
    return transcribe_channels(channels, options, engine), audio_scorer(engine, channels, options.layout)


def scorer_for(path: Path, options: AsrOptions, cache_dir: Path) -> AudioScorer | None:
    """A scorer of candidate texts against a recording already transcribed (re-checking a case's facts)."""
    return audio_scorer(load_engine(options, cache_dir), decode(path), options.layout)


def audio_scorer(engine: Engine, channels: list[np.ndarray], layout: Layout) -> AudioScorer | None:
    """A scorer of texts against decoded channels, by speaker role; None where the engine cannot score."""
    if not hasattr(engine, "score_encoded"):
        return None
    return AudioScorer(cast(TextScorer, engine), by_role(channels, layout))


def by_role(channels: list[np.ndarray], layout: Layout) -> dict[str, np.ndarray]:
    """Each speaker role's audio: a call's parties on their channels; one microphone ("room") for the mix of
    a session (its S1, S2 … all spoke into it)."""
    if layout == "mono" or len(channels) == 1:
        return {"room": np.mean(channels, axis=0).astype(np.float32)}
    return dict(zip(speakers_for(layout), channels[:2], strict=True))


def speaker_audio(channels: list[np.ndarray], layout: Layout, speaker: str) -> np.ndarray:
    """The audio ``speaker`` was recorded on: their channel of a call, the one microphone of a session."""
    roles = by_role(channels, layout)
    return roles.get(speaker, next(iter(roles.values())))
