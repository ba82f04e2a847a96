"""What a person's correction of a segment sets going: new word timings, and terms for the lexicon.

Word timings: Whisper's own alignment (CTranslate2 ``model.align``, the cross-attention DTW that
``asr.words.align_batch`` runs after a decode) of the corrected text on the segment's audio, the one channel
its speaker was recorded on; then ``asr.words.timed_words`` cuts the text into words as the worker does.
When that cannot be done (no recording file, a model that cannot align, a text too long for Whisper's
context), the segment's time is spread over its characters, and a log line says so.

Terms: where a stretch of two or more Chinese characters the machine heard was replaced by a plausible term
(2-16 Chinese characters), the term goes into the admin lexicon, so the ASR's term correction and case
extraction know it from the next call on (and ``hotline cases refresh`` on earlier ones).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path

from app.config import Settings
from asr.types import Word

log = logging.getLogger(__name__)

_CJK = re.compile(r"[\u3400-\u9fff]")
_TERM = re.compile(r"[\u3400-\u9fff]{2,16}")
_MAX_CLIP_S = 29.0


@dataclass(frozen=True)
class Timing:
    words: list[Word]
    aligned: bool  # by Whisper's alignment; False: spread evenly (why in ``note``)
    note: str = ""


def align(*, settings: Settings, path: Path, layout: str, speaker: str, start: float, end: float,
          text: str) -> list[Word]:
    """``text``'s words timed by Whisper's alignment on [start, end] of the recording at ``path``.
    Raises (ValueError, ModelError, AudioError …) when it cannot be done."""
    from app.transcripts.flows import asr_options
    from asr.audio import SAMPLE_RATE, decode
    from asr.words import timed_words
    from asr.worker import load_engine, speaker_audio

    if end - start > _MAX_CLIP_S or end <= start:
        raise ValueError(f"segment of {end - start:.1f} s cannot be aligned in one window")
    options = asr_options(settings, layout)
    engine = load_engine(options, settings.models_dir)  # loaded once per process
    if not hasattr(engine, "align_text"):
        raise ValueError(f"the {engine.name} engine does not align text")
    audio = speaker_audio(decode(path), options.layout, speaker)
    clip = audio[int(start * SAMPLE_RATE): int(end * SAMPLE_RATE)]
    if not clip.size:
        raise ValueError("no audio at the segment's time")
    words = timed_words(engine.align_text(clip, start, end, text), text, start, end)
    if "".join(w.text for w in words) != text:
        raise ValueError("aligned words do not make up the text")
    return words


def retime(*, settings: Settings, path: Path | None, layout: str, speaker: str, start: float, end: float,
           text: str) -> Timing:
    """The corrected text's words: aligned when possible, else spread evenly (and logged)."""
    from app.transcripts.service import even_words

    if path is None or not path.is_file():
        note = "录音文件不存在"
    else:
        try:
            return Timing(align(settings=settings, path=path, layout=layout, speaker=speaker, start=start,
                                end=end, text=text), True)
        except Exception as e:  # noqa: BLE001 - any failure of the model or the audio: fall back, say so
            note = f"{type(e).__name__}: {e}"
    return Timing(even_words(text, start, end), False, note)


def sounds_alike(heard: str, meant: str) -> bool:
    """Whether ``meant`` is what ``heard`` could be a mishearing of: as many syllables, and on average no
    more than a usual confusion of initial or final apart (连川/联创, 重才/仲裁; not 张三/李四, which is a
    different thing said, not a term misheard)."""
    from pypinyin import Style, lazy_pinyin

    from asr.lexicon import syllable_cost

    if len(heard) != len(meant):
        return False
    a, b = lazy_pinyin(heard, style=Style.NORMAL), lazy_pinyin(meant, style=Style.NORMAL)
    return len(a) == len(b) and sum(syllable_cost(x, y) for x, y in zip(a, b, strict=True)) <= 0.5 * len(a)


def learned_terms(machine: str, corrected: str) -> list[str]:
    """Terms a correction teaches: each stretch of 2+ Chinese characters of the machine's text replaced by
    2-16 Chinese characters that sound alike (a misheard name or term, 连川→联创, 重才→仲裁), widened to the
    corrected text's whole words (jieba) when those stay a plausible term."""
    from asr.words import word_cuts

    cuts = word_cuts(corrected)
    bounds, pos = [], 0
    for cut in cuts:
        bounds.append((pos, pos + len(cut)))
        pos += len(cut)
    found: list[str] = []
    matcher = SequenceMatcher(None, machine, corrected, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "replace" or len(_CJK.findall(machine[i1:i2])) < 2:
            continue
        new = corrected[j1:j2]
        if not _TERM.fullmatch(new) or not sounds_alike(machine[i1:i2], new):
            continue
        a = min((s for s, e in bounds if e > j1), default=j1)
        b = max((e for s, e in bounds if s < j2), default=j2)
        wide = corrected[a:b].rstrip("，。？！、；：,.?!;: ")
        term = wide if _TERM.fullmatch(wide) else new
        if term not in found:
            found.append(term)
    return found
