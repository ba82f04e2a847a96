"""Rising key terms (上升关键词) of a period against the one before, from what callers said.

Words are cut by jieba with the domain dictionary (the search tokenizer's words, the ASR lexicon, the taxonomy's
category terms and the lexicon table: else jieba cuts 劳务派遣 into 劳务/派遣) and filtered by a stop list of
function words and the hotline's own small talk. A term counts once per case that mentions it (document
frequency), so one long call cannot make a topic. Terms are ranked by a smoothed log ratio of this period's
count against the previous period's, scaled to this period's volume::

    score = log((n + α) / (m · N / M + α))

(n, m: cases mentioning the term now and before; N, M: all cases now and before; α: smoothing, so a word going
from 0 to 2 does not outrank one going from 20 to 60). Only terms in at least ``min_cases`` cases now are kept.
Ties are broken by n, then by the term itself, so the ranking is deterministic."""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

import jieba

from app.cases.categorize import DEFAULT_TAXONOMY
from app.cases.extract import DISTRICT_ALIASES, DISTRICTS
from app.search.tokenize import DOMAIN_WORDS, jieba_with
from asr.lexicon import load_terms

ALPHA = 2.0
MIN_CASES = 3
_CJK = re.compile(r"^[\u3400-\u9fff]{2,}$")  # Chinese words of two characters or more
_COUNTED = re.compile(r"^[零一二两三四五六七八九十百千万几半多每]+[个月天年号次块元人名位岁周]{0,2}$")  # 两个, 三个月

# Function words, fillers and what every call says (greetings, the hotline, the union) — never a topic.
_STOP_TEXT = """
你好 您好 喂喂 请问 谢谢 谢谢您 好的 是的 对的 没事 不用 不客气 再见 那个 这个 就是 然后 还是 但是 因为 所以 如果
我们 你们 他们 她们 咱们 自己 大家 人家 这边 那边 这里 那里 这样 那样 怎么 怎么办 怎么样 什么 为什么 多少 几个 一个
一下 一些 有些 有点 现在 今天 昨天 明天 去年 今年 当时 时候 之前 之后 以后 以前 后来 已经 一直 还有 没有 不是 可以 可能
应该 需要 知道 觉得 感觉 希望 想要 问问 问一下 说说 告诉 联系 电话 号码 手机 热线 来电 接线 工会 总工会 职工服务热线
情况 问题 事情 东西 方面 地方 意思 一样 特别 比较 非常 真的 反正 其实 直接 马上 这么 那么 而且 或者 以及 关于 对于
的话 之类 等等 麻烦 帮忙 帮助 处理 反映 一点 不能 不会 不要 不了 能够 一般 目前 主要 相关 具体 确实 一定 基本 肯定 所有
公司 单位 老板 工作 上班 干活 员工 工人 师傅 领导 我们公司 他们公司 青岛 青岛市 山东 过去 过来 出来 起来 回来 下来
突然 结果 本来 好像 只能 只是 记录 记下 确认
"""
STOP_WORDS = frozenset(_STOP_TEXT.split())
_PLACES = frozenset({*DISTRICTS, *DISTRICT_ALIASES})


@dataclass(frozen=True)
class TermChange:
    term: str
    current: int  # cases mentioning it in the period
    previous: int  # … in the period before
    score: float  # smoothed log ratio (see the module's docstring)

    @property
    def index(self) -> float:
        """The score as a ratio (e^score): 3.0 means three times as often, volume allowed for."""
        return math.exp(self.score)


@lru_cache(maxsize=4)
def version(words: tuple[str, ...]) -> str:
    """What a kept cut depends on besides the text: the dictionary, the stop list and the filters."""
    return hashlib.sha256("\n".join([*words, "|", *sorted(STOP_WORDS), "|", _COUNTED.pattern, _CJK.pattern])
                          .encode()).hexdigest()[:16]


def digest(version: str, text: str) -> str:
    return hashlib.sha256(f"{version}\n{text}".encode()).hexdigest()[:32]


def domain_words(extra: Iterable[str] = ()) -> tuple[str, ...]:
    words = [*DOMAIN_WORDS, *load_terms(), *(t for rule in DEFAULT_TAXONOMY for t in rule.terms), *extra]
    return tuple(sorted({w.strip() for w in words if 2 <= len(w.strip()) <= 16}))


@lru_cache(maxsize=4)
def _tokenizer(words: tuple[str, ...]) -> jieba.Tokenizer:
    return jieba_with(words)


def terms_of(text: str, words: tuple[str, ...]) -> set[str]:
    """The distinct candidate key terms of one case's text."""
    return {t for t in _tokenizer(words).lcut(text, HMM=False)
            if _CJK.match(t) and not _COUNTED.match(t) and t not in STOP_WORDS and t not in _PLACES}


def document_frequency(texts: Mapping[int, str], words: tuple[str, ...]) -> Counter[str]:
    """For each term, how many of the cases (id → text) mention it."""
    counts: Counter[str] = Counter()
    for text in texts.values():
        counts.update(terms_of(text, words))
    return counts


def rising(current: Counter[str], previous: Counter[str], *, n_current: int, n_previous: int,
           alpha: float = ALPHA, min_cases: int = MIN_CASES, limit: int = 10) -> list[TermChange]:
    """The terms rising most against the previous period (see the module's docstring), best first."""
    scale = n_current / n_previous if n_previous else 1.0
    out = []
    for term, n in current.items():
        if n < min_cases:
            continue
        m = previous.get(term, 0)
        score = math.log((n + alpha) / (m * scale + alpha))
        if score > 0:
            out.append(TermChange(term, n, m, round(score, 6)))
    out.sort(key=lambda t: (-t.score, -t.current, t.term))
    return out[:limit]
