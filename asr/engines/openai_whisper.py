"""openai-whisper engine (PyTorch), on the same weights as the default engine.

The bundled CTranslate2 weights are converted once into an openai-whisper checkpoint in the model cache
(``hotline asr export-openai`` does it ahead of time). Utterances come from the same VAD as the default
engine and each is transcribed by ``whisper.transcribe`` (30 s windows, greedy or beam search), so the
two engines can be compared on identical work. Slower; kept for comparison and for sites that standardise
on the reference implementation.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from asr.engines import SAMPLE_RATE, RawSegment, utterances
from asr.models import ModelError
from asr.types import AsrOptions, Word
from asr.words import fit_to_speech


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
        _use_alignment_heads(self._model, model_dir)
        self._tokenizer = whisper.tokenizer.get_tokenizer(
            self._model.is_multilingual, num_languages=self._model.num_languages, language=options.language,
            task="transcribe")
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
                    segments.append(RawSegment(start, end, str(out["text"]),
                                               [Word(start + w.start, start + w.end, w.text)
                                                for w in self._words(clip, out["segments"])]))
                results.append(segments)
        return results

    def _words(self, clip: np.ndarray, decoded: list[dict[str, Any]]) -> list[Word]:
        """Timed pieces of what ``transcribe`` said (times from the clip's start), by openai-whisper's own
        DTW alignment. Not ``transcribe(word_timestamps=True)``: without timestamp tokens that decodes the
        audio after the last word a second time, which costs a decode and may add text."""
        from whisper.audio import N_FRAMES, log_mel_spectrogram, pad_or_trim
        from whisper.timing import find_alignment

        mel = log_mel_spectrogram(clip, self._model.dims.n_mels)
        pieces = []
        for seg in decoded:  # one 30 s window each
            seek = int(seg["seek"])
            tokens = [t for t in seg["tokens"] if t < self._tokenizer.eot]
            window = pad_or_trim(mel[:, seek : seek + N_FRAMES], N_FRAMES)
            offset = seek / 100  # mel frames are 10 ms
            pieces += [Word(offset + float(t.start), offset + float(t.end), t.word) for t in find_alignment(
                self._model, self._tokenizer, tokens, window, min(N_FRAMES, mel.shape[1] - seek)) if t.word]
        return fit_to_speech(pieces, mel.numpy())


def _use_alignment_heads(model: Any, model_dir: Path) -> None:
    """The cross-attention heads that follow timing, as the CTranslate2 model lists them (openai-whisper
    otherwise uses every head of the upper half of the decoder, which is coarser)."""
    import torch

    config = model_dir / "config.json"
    heads = json.loads(config.read_text()).get("alignment_heads") if config.is_file() else None
    if heads:
        mask = torch.zeros(model.dims.n_text_layer, model.dims.n_text_head, dtype=torch.bool)
        for layer, head in heads:
            mask[layer, head] = True
        model.register_buffer("alignment_heads", mask.to_sparse(), persistent=False)
