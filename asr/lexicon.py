"""Domain-term correction: replace stretches of Whisper output that sound like a lexicon term.

Whisper base mishears legal and local terms as homophones (工伤认定 → 工商认定, 崂山区 → 劳山区,
有限公司 → 有线公司, 补缴 → 不搅). A stretch of the output is replaced by a term when their pinyin
(toneless) matches, allowing the usual confusions of southern and telephone speech (z/zh, c/ch, s/sh,
n/l, f/h, r/l; an/ang, en/eng, in/ing, ian/iang, uan/uang) on longer terms.

Correct text must survive, so a replacement is refused when:
- the stretch is already the term, or contains punctuation or non-Chinese characters;
- the term has two characters and the pinyin is not identical, or the stretch is itself a common word
  (工商 stays 工商 unless it is part of a longer term such as 工伤认定);
- a short term (2-3 characters) would cut a real word of the sentence in two (水产|加工厂 holds no 产假);
- a syllable is wholly different, unless the term has six characters or more;
- a longer term already claimed the stretch.
``tests/asr/test_lexicon.py`` runs the corrector over correct transcripts and requires no change.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jieba
from pypinyin import Style, pinyin

LEXICON_FILE = Path(__file__).parent / "data" / "lexicon.txt"
_CJK_RUN = re.compile(r"[\u3400-\u9fff]+")
_INITIALS = ("zh", "ch", "sh", "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h", "j", "q", "x", "r", "z",
             "c", "s", "y", "w")
_NEAR_INITIALS = {frozenset(p) for p in (("z", "zh"), ("c", "ch"), ("s", "sh"), ("n", "l"), ("f", "h"),
                                           ("l", "r"))}
_NEAR_FINALS = {frozenset(p) for p in (("an", "ang"), ("en", "eng"), ("in", "ing"), ("ian", "iang"),
                                         ("uan", "uang"))}
_COMMON_WORD_FREQ = 50  # jieba dictionary frequency above which a 2-3 character stretch is a real word


@lru_cache(maxsize=4096)
def split_syllable(syllable: str) -> tuple[str, str]:
    """A toneless pinyin syllable's initial and final: zhang → (zh, ang), an → ('', an)."""
    for ini in _INITIALS:
        if syllable.startswith(ini):
            return ini, syllable[len(ini):]
    return "", syllable


@lru_cache(maxsize=65536)
def syllable_cost(a: str, b: str) -> float:
    """0 same, 0.5 a usual confusion of initial or final (not both), 1 different."""
    if a == b:
        return 0.0
    (ia, fa), (ib, fb) = split_syllable(a), split_syllable(b)
    if ia == ib and frozenset((fa, fb)) in _NEAR_FINALS:
        return 0.5
    if fa == fb and frozenset((ia, ib)) in _NEAR_INITIALS:
        return 0.5
    return 1.0


@lru_cache(maxsize=65536)
def _readings(ch: str) -> tuple[str, ...]:
    return tuple(pinyin(ch, style=Style.NORMAL, heteronym=True)[0])


@dataclass(frozen=True)
class Term:
    text: str
    syllables: tuple[str, ...]


@lru_cache(maxsize=1)
def _word_freq() -> dict[str, int]:
    jieba.setLogLevel(logging.WARNING)
    jieba.dt.check_initialized()
    return jieba.dt.FREQ  # type: ignore[no-any-return]


def load_terms(path: Path = LEXICON_FILE) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


class Corrector:
    def __init__(self, terms: Iterable[str]) -> None:
        seen: dict[str, Term] = {}
        for text in terms:
            text = text.strip()
            if 2 <= len(text) <= 16 and _CJK_RUN.fullmatch(text) and text not in seen:
                seen[text] = Term(text, tuple(s[0] for s in pinyin(text, style=Style.NORMAL)))
        self.terms = sorted(seen.values(), key=lambda t: -len(t.text))  # longer terms win

    def _acceptable(self, stretch: str, term: Term) -> bool:
        n = len(term.text)
        if n <= 3 and _word_freq().get(stretch, 0) >= _COMMON_WORD_FREQ:
            return False
        # Two characters: the same syllables; longer: 0.2 a syllable on average, and no wholly different
        # syllable below six characters. Checked syllable by syllable, stopping at the first that breaks it.
        budget = 0.0 if n == 2 else 0.2 * n
        total = 0.0
        for ch, syllable in zip(stretch, term.syllables, strict=True):
            cost = min(syllable_cost(r, syllable) for r in _readings(ch))
            total += cost
            if total > budget or (cost >= 1.0 and n < 6):
                return False
        return True

    def correct(self, text: str) -> tuple[str, list[tuple[str, str]]]:
        """The corrected text and the (heard, replaced by) pairs."""
        changes: list[tuple[str, str]] = []
        out = []
        last = 0
        for run in _CJK_RUN.finditer(text):
            fixed, run_changes = self._correct_run(run.group(0))
            out.append(text[last:run.start()] + fixed)
            changes += run_changes
            last = run.end()
        out.append(text[last:])
        return "".join(out), changes

    def _correct_run(self, run: str) -> tuple[str, list[tuple[str, str]]]:
        inside_word = _inside_words(run)
        claimed = [False] * len(run)
        replacements: list[tuple[int, Term]] = []
        for term in self.terms:
            n = len(term.text)
            i = 0
            while i + n <= len(run):
                stretch = run[i:i + n]
                if stretch == term.text:  # already right: protect it from shorter terms
                    claimed[i:i + n] = [True] * n
                    i += n
                    continue
                cuts_word = n <= 3 and (inside_word[i] or inside_word[i + n])
                if not any(claimed[i:i + n]) and not cuts_word and self._acceptable(stretch, term):
                    replacements.append((i, term))
                    claimed[i:i + n] = [True] * n
                    i += n
                    continue
                i += 1
        chars = list(run)
        changes = []
        for i, term in sorted(replacements, key=lambda r: r[0]):
            changes.append((run[i:i + len(term.text)], term.text))
            chars[i:i + len(term.text)] = list(term.text)
        return "".join(chars), changes


def _inside_words(run: str) -> list[bool]:
    """inside[k]: position k (a boundary between characters k-1 and k) falls inside a real word."""
    inside = [False] * (len(run) + 1)
    freq = _word_freq()
    pos = 0
    for word in jieba.cut(run, HMM=False):
        if len(word) > 1 and freq.get(word, 0) >= _COMMON_WORD_FREQ:
            for k in range(pos + 1, pos + len(word)):
                inside[k] = True
        pos += len(word)
    return inside


@lru_cache(maxsize=8)
def default_corrector(extra: tuple[str, ...] = ()) -> Corrector:
    """The domain lexicon plus ``extra`` terms (e.g. enterprise names on file)."""
    return Corrector([*load_terms(), *extra])
