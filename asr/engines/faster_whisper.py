"""faster-whisper (CTranslate2) engine.

Two ways of decoding, for two kinds of audio:

- **A party's channel of a call** goes through faster-whisper's own ``transcribe``: its VAD removes the
  silences and joins what is said into windows of up to 30 s, Whisper's own window, decoded with its
  timestamps, temperature fallback and the previous window's text as context, with no prompt. On calls
  nobody tuned for this is what works best: decoding each utterance in a short window of its own (our
  earlier way, 3× faster) and a domain prompt both cost accuracy (``hotline bench asr --baseline``
  compares with plain faster-whisper in the same run). Each word keeps the decoder's probability.
- **Speaker turns** of a single-microphone session (``regions``) and live clips keep the short windows:
  each stretch is encoded with its own length plus one second, similar lengths batched together, so the
  turns found by diarization stay the segments.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer

from asr.engines import SAMPLE_RATE, RawSegment
from asr.types import AsrOptions, Word
from asr.words import align_batch

_TAIL_S = 1.0  # silence after each utterance inside its window (the model expects audio to trail off)
_BATCH = 4  # utterances per decode; small batches keep both workers busy to the end of a call
_MAX_TOKENS = 448  # Whisper's text context: prompt + output


_TOKENS_PER_S = 12  # above fast Mandarin (about 6 characters, 8 tokens a second): room, not a loop


def _max_length(batch: list[_Utterance], prefix: int) -> int:
    """CTranslate2's max_length (prompt prefix included) for a batch: what its longest utterance can say in
    its duration, so a repetition loop stops within a few words instead of running on to Whisper's context."""
    longest = max(u.end - u.start for u in batch)
    return min(_MAX_TOKENS - prefix, prefix + int(_TOKENS_PER_S * longest) + 12)


_GIVE_UP_LOGPROB = -1.5  # mean token log-probability of a window Whisper could not decode at any temperature


def _undecodable(piece: Any) -> bool:
    """Whisper tried every temperature and still found nothing likely: what it wrote is noise, music or a
    tone read as words (a recorded greeting became 生命健康福祭…, with English words in it), not speech."""
    temperature = piece.temperature if piece.temperature is not None else 0.0
    return bool(temperature >= 1.0 and piece.avg_logprob < _GIVE_UP_LOGPROB)


_PAUSE_S = 0.5  # a pause this long between two words ends an utterance (as the VAD of short windows does)


def _utterances_of(piece: Any) -> list[RawSegment]:
    """A faster-whisper segment cut into utterances where its words leave a pause: a window of 30 s often
    comes back as one segment, and a transcript line (what replay, search hits and facts point at) should be
    what was said in one breath."""
    words = [Word(float(w.start), float(w.end), w.word, float(w.probability)) for w in piece.words or []]
    if not words:
        return [RawSegment(float(piece.start), float(piece.end), piece.text)]
    groups: list[list[Word]] = [[words[0]]]
    for w in words[1:]:
        if w.start - groups[-1][-1].end >= _PAUSE_S:
            groups.append([])
        groups[-1].append(w)
    return [RawSegment(g[0].start, g[-1].end, "".join(w.text for w in g), g) for g in groups]


@dataclass(frozen=True)
class _Utterance:
    channel: int
    start: float
    end: float
    features: np.ndarray  # (n_mels, frames)


class FasterWhisperEngine:
    name = "faster-whisper"

    def __init__(self, model_dir: Path, options: AsrOptions, *, workers: int | None = None) -> None:
        """``workers``: how many decodes may run at once, each on ``options.threads`` cores (default one);
        by default as many as the cores allow. A recording's batches are spread over them: on 2 cores two
        one-thread decodes side by side get through a call faster than one decode on two threads, whose
        small matrix products leave the threads waiting on each other."""
        threads = options.threads or 1
        workers = workers or max(1, len(os.sched_getaffinity(0)) // threads)  # the cores this process may use
        self.workers = workers
        self.model_dir = model_dir
        self.options = options
        self._whisper = WhisperModel(str(model_dir), device="cpu", compute_type=options.compute_type,
                                     cpu_threads=threads, num_workers=workers)
        self._tokenizer = Tokenizer(self._whisper.hf_tokenizer, multilingual=True, task="transcribe",
                                    language=options.language)
        prompt = self._tokenizer.encode(" " + options.initial_prompt.strip()) if options.initial_prompt else []
        self._prefix = ([self._tokenizer.sot_prev, *prompt[-(_MAX_TOKENS // 2 - 1):]] if prompt else []) + [
            *self._tokenizer.sot_sequence, self._tokenizer.no_timestamps]
        self._lock = threading.Semaphore(workers)  # decodes at once on this loaded model

    def transcribe_channels(
        self, channels: list[np.ndarray], regions: list[list[tuple[float, float]]] | None = None
    ) -> list[list[RawSegment]]:
        """Utterances of each channel with their text; times in seconds from the recording's start.
        ``regions``: the stretches to decode per channel (speaker turns), each in a window of its own length;
        default: each channel through faster-whisper's own pipeline."""
        if regions is None:
            with ThreadPoolExecutor(self.workers) as pool:  # the parties' channels side by side
                return list(pool.map(self._transcribe_channel, channels))
        results: list[list[RawSegment]] = [[] for _ in channels]
        with ThreadPoolExecutor(self.workers) as pool:
            pending = [
                self._prepare(i, audio, start, end)
                for i, audio in enumerate(channels)
                for start, end in regions[i]
            ]
            pending.sort(key=lambda u: u.features.shape[1])  # similar lengths share a batch: little padding
            batches = [pending[i : i + _BATCH] for i in range(0, len(pending), _BATCH)][::-1]  # longest first
            for batch, decoded in zip(batches, pool.map(self._decode_words, batches), strict=True):
                for utt, segment in zip(batch, decoded, strict=True):
                    results[utt.channel].append(segment)
        for segments in results:
            segments.sort(key=lambda s: s.start)
        return results

    def _transcribe_channel(self, audio: np.ndarray) -> list[RawSegment]:
        """One party's channel through faster-whisper's own pipeline (VAD-joined 30 s windows, timestamps,
        temperature fallback, previous text as context, no prompt), each word with its probability."""
        with self._lock:
            pieces, _info = self._whisper.transcribe(
                audio, language=self.options.language, beam_size=self.options.beam_size, vad_filter=True,
                word_timestamps=True)
            return [u for p in pieces if p.text.strip() and not _undecodable(p) for u in _utterances_of(p)]

    def align_text(self, clip: np.ndarray, start: float, end: float, text: str) -> list[Word]:
        """``text``'s timed pieces in ``clip`` (said between ``start`` and ``end`` of the recording): Whisper's
        alignment of a text it did not decode itself (a person's correction). ValueError when the text does
        not fit Whisper's context."""
        features = self._whisper.feature_extractor(np.pad(clip, (0, int(_TAIL_S * SAMPLE_RATE))))
        tokens = [t for t in self._tokenizer.encode(text) if t < self._tokenizer.eot]
        if not tokens or len(tokens) > _MAX_TOKENS - len(self._tokenizer.sot_sequence):
            raise ValueError(f"{len(tokens)} tokens do not fit Whisper's context")
        with self._lock:
            encoded = self._whisper.model.encode(
                ctranslate2.StorageView.from_array(features[None].astype(np.float32)), to_cpu=False)
            return align_batch(self._whisper.model, self._tokenizer, encoded, [tokens], [features], [(start, end)])[0]

    def encode_clip(self, clip: np.ndarray) -> np.ndarray:
        """The encoder's output for a clip (its first 29 s), kept to score several sets of texts against."""
        clip = clip[: int((30 - _TAIL_S) * SAMPLE_RATE)]  # Whisper's window (a longer segment: its start)
        features = self._whisper.feature_extractor(np.pad(clip, (0, int(_TAIL_S * SAMPLE_RATE))))[:, :3000]
        with self._lock:
            return np.asarray(self._whisper.model.encode(
                ctranslate2.StorageView.from_array(features[None].astype(np.float32)), to_cpu=True))

    def score_encoded(self, encoded: np.ndarray, texts: Sequence[str]) -> list[float]:
        """How well each text fits the encoded clip: the sum of the log-probabilities Whisper gives its tokens
        when made to say it (forced decoding)."""
        if not texts:
            return []
        tokens = [self._tokenizer.encode(t) or [self._tokenizer.eot] for t in texts]
        start = [*self._tokenizer.sot_sequence, self._tokenizer.no_timestamps]
        with self._lock:
            results = self._whisper.model.align(
                ctranslate2.StorageView.from_array(np.repeat(encoded, len(texts), axis=0)), start, tokens,
                [encoded.shape[1]] * len(texts))
        return [float(np.log(np.maximum(np.asarray(r.text_token_probs), 1e-12)).sum()) for r in results]

    def decode_clips(self, clips: list[np.ndarray], beam_size: int | None = None, tail: float = 0.3) -> list[str]:
        """Text of each clip (16 kHz float32), all in one batch: live decoding's entry point. Live clips end
        where speech ended, so a shorter silent tail than post-call decoding's does."""
        batch = [_Utterance(0, 0.0, len(c) / SAMPLE_RATE,
                            self._whisper.feature_extractor(np.pad(c, (0, int(tail * SAMPLE_RATE)))))
                 for c in clips]
        with self._lock:
            return [decoded.text for decoded in self._decode(batch, beam_size)]

    def _decode_words(self, batch: list[_Utterance]) -> list[RawSegment]:
        with self._lock:
            return self._decode(batch, words=True)

    def _prepare(self, channel: int, audio: np.ndarray, start: float, end: float) -> _Utterance:
        clip = audio[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]
        padded = np.pad(clip, (0, int(_TAIL_S * SAMPLE_RATE)))
        return _Utterance(channel, start, end, self._whisper.feature_extractor(padded))

    def _decode(self, batch: list[_Utterance], beam_size: int | None = None, *,
                words: bool = False) -> list[RawSegment]:
        """Each utterance's text; ``words``: with its timed pieces too (asr/words.py), aligned on this
        batch's encoder output (no second encoder pass)."""
        frames = max(u.features.shape[1] for u in batch)
        stacked = np.stack([np.pad(u.features, ((0, 0), (0, frames - u.features.shape[1]))) for u in batch])
        encoded = self._whisper.model.encode(ctranslate2.StorageView.from_array(stacked.astype(np.float32)),
                                             to_cpu=False)
        results = self._whisper.model.generate(
            encoded, [self._prefix] * len(batch), beam_size=beam_size or self.options.beam_size,
            max_length=_max_length(batch, len(self._prefix)), suppress_blank=True, suppress_tokens=[-1],
        )
        eot = self._tokenizer.eot
        tokens = [[t for t in r.sequences_ids[0] if t < eot] for r in results]
        timed = (align_batch(self._whisper.model, self._tokenizer, encoded, tokens, [u.features for u in batch],
                             [(u.start, u.end) for u in batch]) if words else [[] for _ in batch])
        return [RawSegment(u.start, u.end, self._tokenizer.decode(t), w)
                for u, t, w in zip(batch, tokens, timed, strict=True)]
