"""Chinese tokens for the full-text index (jieba), shared by indexing and querying."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import jieba

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


def index_tokens(text: str) -> list[str]:
    """Search-mode tokens: whole words and the shorter words inside them, so 海丰 finds 青岛海丰水产."""
    return [t.lower() for t in _tokenizer().cut_for_search(text) if _keep(t)]


def token_spans(text: str) -> list[tuple[str, int, int]]:
    """The index tokens of ``text`` with where each stands in it: (token, start, end), sub-words included."""
    return [(t.lower(), start, end) for t, start, end in _tokenizer().tokenize(text, mode="search") if _keep(t)]


@dataclass(frozen=True)
class QueryTerm:
    """A query word that must occur: as itself, or as all of ``parts`` (拖欠工资 = 拖欠 + 工资)."""

    word: str
    parts: tuple[str, ...]


def query_terms(text: str) -> list[QueryTerm]:
    terms: dict[str, QueryTerm] = {}
    for word in (t.lower() for t in _tokenizer().cut(text) if _keep(t)):
        parts = tuple(dict.fromkeys(p for p in index_tokens(word) if p != word))
        terms.setdefault(word, QueryTerm(word, parts))
    return list(terms.values())
