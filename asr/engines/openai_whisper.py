"""openai-whisper engine (PyTorch), on the same weights as the default engine.

The bundled CTranslate2 weights are converted once into an openai-whisper checkpoint in the model cache
(``hotline asr export-openai`` does it ahead of time). Utterances come from the same VAD as the default
engine and each is transcribed by ``whisper.transcribe`` (30 s windows, greedy or beam search), so the
two engines can be compared on identical work. Slower; kept for comparison and for sites that standardise
on the reference implementation.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from asr.engines import SAMPLE_RATE, RawSegment, utterances
from asr.models import ModelError
from asr.types import AsrOptions


def checkpoint_for(model_dir: Path, cache_dir: Path) -> Path:
    """The openai-whisper checkpoint converted from ``model_dir``, made on first use."""
    from asr.export import export_openai

    out = cache_dir / f"{model_dir.name}-openai.pt"
    if not out.exists() or out.stat().st_mtime < (model_dir / "model.bin").stat().st_mtime:
        export_openai(model_dir, out)
    return out


class OpenAIWhisperEngine:
    name = "openai-whisper"

    def __init__(self, model_dir: Path, options: AsrOptions, cache_dir: Path) -> None:
        try:
            import torch
            import whisper
        except ImportError as e:
            raise ModelError("HOTLINE_ASR_ENGINE=openai-whisper needs torch and openai-whisper "
                             "(`make setup` installs them); or use the default faster-whisper engine") from e
        torch.set_num_threads(options.threads or os.cpu_count() or 1)
        self.model_dir = model_dir
        self.options = options
        self._model = whisper.load_model(str(checkpoint_for(model_dir, cache_dir)), device="cpu")
        self._lock = threading.Lock()

    def transcribe_channels(
        self, channels: list[np.ndarray], regions: list[list[tuple[float, float]]] | None = None
    ) -> list[list[RawSegment]]:
        spans = regions or [utterances(audio) for audio in channels]
        results: list[list[RawSegment]] = []
        with self._lock:
            for audio, channel_spans in zip(channels, spans, strict=True):
                segments = []
                for start, end in channel_spans:
                    clip = audio[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]
                    out = self._model.transcribe(
                        clip, language=self.options.language, initial_prompt=self.options.initial_prompt or None,
                        beam_size=self.options.beam_size, fp16=False, temperature=0.0,
                        condition_on_previous_text=False, without_timestamps=True, verbose=None,
                    )
                    segments.append(RawSegment(start, end, str(out["text"])))
                results.append(segments)
        return results
