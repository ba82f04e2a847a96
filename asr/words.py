"""Word timings, so a transcript can highlight the word being played and seek to a word.

Two steps:

1. The engine times what Whisper said (``align_batch`` for faster-whisper: CTranslate2's cross-attention
   alignment, DTW over the alignment heads, on the encoder output the decode already made; openai-whisper's
   own ``find_alignment`` for that engine). Whisper's units for Mandarin are pieces of one or a few
   characters (a BPE token, or the tokens that make up one character); each piece gets the time of its
   tokens, in 20 ms steps, then ``fit_to_speech`` takes the pauses DTW left inside pieces out of them.
2. ``timed_words`` carries those times over to the segment's final text, after clean-up and term correction
   changed it (simplified script, full-width punctuation, 四万二千→42000, loops collapsed, homophones
   replaced), and cuts the final text into words.

The unit shown is a jieba word of the final text (工伤认定 / 青岛 / 42000元 …), with the punctuation after it
(or, at the start of a segment, before it) riding along: characters alone light up five or six times a
second and their single DTW times are the least reliable, while a word is what a reader follows, what
search matches (jieba tokens), and a sensible place to start playing. The words of a segment concatenate
to its text exactly, nothing left out. A word's time spans its characters; punctuation never stretches it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from difflib import SequenceMatcher
from functools import lru_cache
from typing import TYPE_CHECKING

import jieba
import numpy as np

from asr.types import Word

if TYPE_CHECKING:
    import ctranslate2
    from faster_whisper.tokenizer import Tokenizer

FRAMES_PER_S = 50  # Whisper's encoder output: one frame every 20 ms
_MEL_PER_S = 100  # its log-mel features: one frame every 10 ms
_LONG_S = 0.5  # a character said longer than this has taken in a pause
_MEDIAN_FILTER = 7
_SPOKEN = re.compile(r"\w")  # a character that is said (not punctuation or space)
_MAX_CHAR_S = 1.0  # no character is said longer (Mandarin: 0.15-0.35 s a syllable, a drawn-out 喂 under 1 s)

# Clean-up makes ASCII punctuation full width; matched as the same character, it keeps its own time.
_FULL_WIDTH = str.maketrans({",": "，", "?": "？", "!": "！", ":": "：", ";": "；", ".": "。"})

Span = tuple[float, float]


# ---- 1. the engine's timed pieces ------------------------------------------------------------------------


def align_batch(model: ctranslate2.models.Whisper, tokenizer: Tokenizer, encoded: ctranslate2.StorageView,
                tokens: Sequence[Sequence[int]], features: Sequence[np.ndarray],
                spans: Sequence[Span]) -> list[list[Word]]:
    """Timed pieces of each utterance of a decoded batch: ``encoded`` is the batch's encoder output,
    ``tokens`` the text tokens each utterance decoded to (no special tokens), ``features`` its log-mel
    features before padding, ``spans`` where it lies in the recording (seconds)."""
    if not any(tokens):
        return [[] for _ in tokens]
    results = model.align(encoded, tokenizer.sot_sequence, [list(t) for t in tokens],
                          [f.shape[1] for f in features], median_filter_width=_MEDIAN_FILTER)
    out: list[list[Word]] = []
    for t, result, mel, (start, end) in zip(tokens, results, features, spans, strict=True):
        pieces = _pieces(tokenizer, list(t), result.alignments) if t else []
        fitted = fit_to_speech(pieces, mel[:, : max(1, round((end - start) * _MEL_PER_S))])
        out.append([Word(start + w.start, start + w.end, w.text) for w in fitted])
    return out


def _pieces(tokenizer: Tokenizer, tokens: list[int], path: Sequence[tuple[int, int]]) -> list[Word]:
    """Pieces of whole characters with times (from the window's start) from the DTW path (text row, audio
    frame): a token starts at the first frame of its row and ends where the next one starts."""
    steps = np.asarray(path)
    first = np.diff(steps[:, 0], prepend=-1) != 0
    starts = steps[first, 1] / FRAMES_PER_S  # one per text token, then the end of text
    texts, groups = tokenizer.split_tokens_on_unicode([*tokens, tokenizer.eot])
    bounds = np.cumsum([0, *(len(g) for g in groups)])
    return [Word(float(starts[a]), float(starts[b]), text)
            for text, a, b in zip(texts[:-1], bounds[:-2], bounds[1:-1], strict=True) if text]


def _loud_frames(mel: np.ndarray) -> np.ndarray:
    """Which 10 ms frames of an utterance's log-mel features hold sound well above its quietest stretch."""
    level = mel.mean(axis=0)
    low, high = np.percentile(level, 10), np.percentile(level, 90)
    return np.asarray(level > low + 0.3 * (high - low))


def fit_to_speech(pieces: Sequence[Word], mel: np.ndarray) -> list[Word]:
    """``pieces`` (times from the clip's start) fitted to the sound (``mel``: the clip's log-mel features,
    Whisper's normalisation). DTW hands a pause to a neighbouring token, so a piece that lasts longer than
    its characters can be said is shrunk to the sound inside it (a word said after a pause starts when it is
    said, not when the pause began); and DTW starts the first token at the clip's first frame, so the first
    piece said starts where the sound does."""
    if not pieces:
        return []
    loud = _loud_frames(mel)
    out = []
    first = True
    for w in pieces:
        said = len(_SPOKEN.findall(w.text))
        if said and (first or w.end - w.start > _LONG_S * said):
            a, b = round(w.start * _MEL_PER_S), round(w.end * _MEL_PER_S)
            sound = np.flatnonzero(loud[a:b])
            if sound.size:
                end = float(a + sound[-1] + 1) / _MEL_PER_S if w.end - w.start > _LONG_S * said else w.end
                w = Word(float(a + sound[0]) / _MEL_PER_S, end, w.text)
        first = first and not said
        out.append(w)
    return out


# ---- 2. the final text's words ---------------------------------------------------------------------------


def char_spans(pieces: Sequence[Word]) -> tuple[str, list[Span]]:
    """The engine's text and each character's time: a piece's time shared evenly by the characters said in
    it; a space or punctuation mark in a piece with words takes no time (at the point where it stands)."""
    chars: list[str] = []
    spans: list[Span] = []
    for piece in pieces:
        said = [bool(_SPOKEN.match(ch)) for ch in piece.text] if _SPOKEN.search(piece.text) else [True] * len(
            piece.text)
        step = (piece.end - piece.start) / max(1, sum(said))
        t = piece.start
        for is_said in said:
            spans.append((t, t + step) if is_said else (t, t))
            t += step if is_said else 0.0
        chars.append(piece.text)
    return "".join(chars), spans


def carry_spans(pieces: Sequence[Word], text: str) -> list[Span | None]:
    """The time of each character of ``text`` (the engine's text after clean-up and correction), matched
    character by character with the engine's text: an unchanged character keeps its time, a replaced
    stretch (四万二千→42000, 工商→工伤, 說→说) shares the time of what it replaced, evenly; what clean-up
    added (punctuation) has None. The time of what clean-up removed (the extra copies of a collapsed loop)
    goes to the character after it, to the one before it at the end: 现在现在现在厂里说 → 现在 spans all
    three copies."""
    raw, spans = char_spans(pieces)
    spans = _cap_pauses(raw, spans)
    out: list[Span | None] = [None] * len(text)
    removed_from: float | None = None  # start of a removed stretch not yet given to a character
    matcher = SequenceMatcher(None, raw.translate(_FULL_WIDTH), text, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out[j1:j2] = spans[i1:i2]
        elif tag == "replace":
            start, end = spans[i1][0], spans[i2 - 1][1]
            step = (end - start) / (j2 - j1)
            out[j1:j2] = [(start + k * step, start + (k + 1) * step) for k in range(j2 - j1)]
        elif tag == "delete":
            removed_from = spans[i1][0] if removed_from is None else removed_from
            if j1 == len(text) and j1 and (last := out[j1 - 1]) is not None:
                out[j1 - 1] = (last[0], max(last[1], spans[i2 - 1][1]))
            continue
        if removed_from is not None and tag != "insert" and (first := out[j1]) is not None:
            out[j1] = (min(removed_from, first[0]), first[1])
            removed_from = None
    return out


def carry_probabilities(pieces: Sequence[Word], text: str) -> list[float]:
    """The decoder's probability of each character of ``text``, matched like ``carry_spans``: a character
    keeps its piece's probability, a replaced stretch the least of what it replaced; what clean-up added
    (punctuation) counts as certain."""
    raw = "".join(p.text for p in pieces)
    probs = [p.probability for p in pieces for _ in p.text]
    out = [1.0] * len(text)
    matcher = SequenceMatcher(None, raw.translate(_FULL_WIDTH), text, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out[j1:j2] = probs[i1:i2]
        elif tag == "replace":
            out[j1:j2] = [min(probs[i1:i2])] * (j2 - j1)
    return out


def _cap_pauses(raw: str, spans: list[Span]) -> list[Span]:
    """No said character longer than _MAX_CHAR_S, a backstop for pieces ``fit_to_speech`` could not fit
    (no sound found in them). The pause is taken to come before the character (where DTW puts it), after
    it for the last character said (the silence that ends an utterance)."""
    said = [k for k, ch in enumerate(raw) if _SPOKEN.match(ch)]
    out = list(spans)
    for k in said:
        start, end = spans[k]
        if end - start > _MAX_CHAR_S:
            out[k] = (start, start + _MAX_CHAR_S) if k == said[-1] else (end - _MAX_CHAR_S, end)
    return out


@lru_cache(maxsize=1)
def _jieba() -> jieba.Tokenizer:
    jieba.setLogLevel(logging.WARNING)
    jieba.dt.check_initialized()
    return jieba.dt


def word_cuts(text: str) -> list[str]:
    """``text`` cut into words (jieba), each punctuation or space run joined to the word before it (to the
    first word when nothing comes before): they concatenate to ``text``."""
    words: list[str] = []
    lead = ""
    for token in _jieba().cut(text):
        if not _SPOKEN.search(token):
            if words:
                words[-1] += token
            else:
                lead += token
            continue
        words.append(lead + token)
        lead = ""
    if lead:  # nothing said at all: one "word" of punctuation
        words.append(lead)
    return words


def timed_words(pieces: Sequence[Word], text: str, start: float, end: float) -> list[Word]:
    """The words of a segment's final ``text``, timed from the engine's ``pieces`` and kept inside the
    segment's [start, end], in order. [] when the engine gave no timings."""
    if not pieces or not text:
        return []
    spans = carry_spans(pieces, text)
    probs = carry_probabilities(pieces, text)
    words: list[Word] = []
    pos = 0
    prev_end = start
    for cut in word_cuts(text):
        said = [span for k in range(pos, pos + len(cut)) if (span := spans[k]) is not None and _SPOKEN.match(text[k])]
        pos += len(cut)
        if said:
            w_start, w_end = min(s for s, _ in said), max(e for _, e in said)
        else:  # all of it added by clean-up: no time of its own, it sits where the previous word ended
            w_start = w_end = prev_end
        w_start = min(max(w_start, prev_end, start), end)
        w_end = min(max(w_end, w_start), end)
        said_probs = [probs[k] for k in range(pos - len(cut), pos) if _SPOKEN.match(text[k])]
        words.append(Word(round(w_start, 2), round(w_end, 2), cut, round(min(said_probs, default=1.0), 3)))
        prev_end = w_end
    return words
