"""Chinese tokens for the full-text index (jieba), shared by indexing and querying."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import jieba

from app.auth.permissions import ID, PHONE, Masking, NumberSpan, number_spans
from app.cases.extract import DISTRICT_ALIASES, DISTRICTS

# Words jieba should keep whole: labour-law terms and Qingdao place names.
DOMAIN_WORDS = (
    "欠薪", "讨薪", "加班费", "经济补偿", "劳动合同", "劳务派遣", "派遣公司", "用工单位", "社保", "社会保险",
    "工伤", "工伤认定", "仲裁", "劳动仲裁", "试用期", "产假", "哺乳期", "职工服务热线", "人社局", "工会",
    *DISTRICTS, *DISTRICT_ALIASES,
)
_WORD = re.compile(r"\w", re.UNICODE)
MAX_TOKEN = 64  # longer "words" (a pasted URL, a run of digits) are not indexed: PostgreSQL lexemes have a limit
_lock = threading.Lock()


def jieba_with(words: Iterable[str]) -> jieba.Tokenizer:
    """A jieba tokenizer of its own (jieba's global one is left alone) that keeps ``words`` whole."""
    jieba.setLogLevel(logging.WARNING)
    tok = jieba.Tokenizer()
    with _lock:
        tok.initialize()
        for word in words:
            tok.add_word(word, freq=20000)
    return tok


@lru_cache(maxsize=1)
def _tokenizer() -> jieba.Tokenizer:
    return jieba_with(DOMAIN_WORDS)


def _keep(token: str) -> bool:
    return bool(token.strip()) and len(token) <= MAX_TOKEN and bool(_WORD.search(token))


# Tokens that touch a phone or ID card number are indexed under a mark of their own: HIDDEN, the kinds of
# number they touch (p: phone, i: ID; both: ip), then the token (\ue000p1234). A query is only ever looked up
# under the marks its user may see (``variants``), so a role that sees 138****5678 finds nothing by the digits
# it cannot see (searching 1234, 13812345678 or 一二三四 tells it nothing), while a role that sees the number
# finds it as before. HIDDEN is a private-use character: FTS5 and tsvector keep it inside the token, and it is
# taken out of whatever a user types.
HIDDEN = "\ue000"
_KIND_MARK = {PHONE: "p", ID: "i"}
_MARKS = ("i", "p", "ip")


def _touching(spans: list[NumberSpan], start: int, end: int) -> str:
    """The mark for a token at [start, end): the kinds of number it overlaps, "" for none."""
    kinds = {_KIND_MARK[s.kind] for s in spans if s.start < end and start < s.end}
    return "".join(sorted(kinds))


def index_tokens(text: str) -> list[str]:
    """Search-mode tokens: whole words and the shorter words inside them, so 海丰 finds 青岛海丰水产; those of
    a phone or ID card number marked (HIDDEN)."""
    spans = number_spans(text)
    if not spans:
        return _words(text)
    return [f"{HIDDEN}{mark}{t}" if (mark := _touching(spans, start, end)) else t
            for t, start, end in token_spans(text)]


def _words(text: str) -> list[str]:
    return [t.lower() for t in _tokenizer().cut_for_search(text) if _keep(t)]


def token_spans(text: str) -> list[tuple[str, int, int]]:
    """The index tokens of ``text`` with where each stands in it: (token, start, end), sub-words included."""
    return [(t.lower(), start, end) for t, start, end in _tokenizer().tokenize(text, mode="search") if _keep(t)]


def visible_spans(text: str, masking: Masking) -> list[tuple[str, int, int]]:
    """``token_spans`` less the tokens of numbers ``masking`` hides: what a query of that user may match and
    mark in ``text``."""
    hidden = [s for s in number_spans(text) if masking.hides(s.kind)] if masking.active else []
    return [t for t in token_spans(text) if not any(s.start < t[2] and t[1] < s.end for s in hidden)]


def visible_tokens(tokens: str, masking: Masking) -> set[str]:
    """An entry's stored tokens (space separated) as a user's query may match them: unmarked ones, and marked
    ones of the numbers the user sees, without their mark."""
    out = set()
    for token in tokens.split():
        if not token.startswith(HIDDEN):
            out.add(token)
            continue
        mark, word = _split_mark(token)
        if all(not masking.hides(kind) for kind, letter in _KIND_MARK.items() if letter in mark):
            out.add(word)
    return out


def _split_mark(token: str) -> tuple[str, str]:
    body = token[len(HIDDEN):]
    for mark in sorted(_MARKS, key=len, reverse=True):
        if body.startswith(mark):
            return mark, body[len(mark):]
    return "", body


def variants(word: str, masking: Masking) -> list[str]:
    """The index tokens a query word may match for a user: itself, and itself inside the numbers the user
    sees (marked as ``index_tokens`` marks them)."""
    return [word] + [f"{HIDDEN}{mark}{word}" for mark in _MARKS
                     if all(not masking.hides(kind) for kind, letter in _KIND_MARK.items() if letter in mark)]


@dataclass(frozen=True)
class QueryTerm:
    """A query word that must occur: as itself, or as all of ``parts`` (拖欠工资 = 拖欠 + 工资)."""

    word: str
    parts: tuple[str, ...]


def query_terms(text: str) -> list[QueryTerm]:
    """The words of a query (jieba's reading of it), each with its parts; HIDDEN taken out of it first."""
    text = text.replace(HIDDEN, "")
    terms: dict[str, QueryTerm] = {}
    for word in (t.lower() for t in _tokenizer().cut(text) if _keep(t)):
        parts = tuple(dict.fromkeys(p for p in _words(word) if p != word))  # never marked: see variants
        terms.setdefault(word, QueryTerm(word, parts))
    return list(terms.values())
