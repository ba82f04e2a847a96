"""Categorization of a call into the 12351 taxonomy, with a confidence and the evidence kept.

Two views of the same words, combined:

- Rules: each category has terms (editable by admins in the taxonomy table). A term counts once per segment
  it appears in, twice when the caller says it (the caller states the problem; the agent often repeats or
  explains law). Their share of all points is the rules' distribution.
- A small multinomial naive Bayes over jieba tokens, trained at first use on hand-written caller utterances
  (data/category_examples.txt): it catches what no term lists (被退回来了, 一分钱补偿都不给) and weighs
  the many weak words of a call. Deterministic, pure Python, a few milliseconds.

With term hits, the result is 0.6 rules + 0.4 model; without, the model alone at half confidence. A caller
who only asks how the law works (question phrasing, no sign of a dispute) is 法律咨询 whatever topic the
question is about. Nothing recognisable at all is 其他 with confidence 0.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jieba

from app.search.tokenize import jieba_with
from asr.types import Segment

OTHER = "其他"
CONSULT = "法律咨询"
EXAMPLES_FILE = Path(__file__).parent / "data" / "category_examples.txt"


@dataclass(frozen=True)
class CategoryRule:
    """One category of the taxonomy as the categorizer uses it."""

    name: str
    terms: tuple[str, ...] = ()
    description: str = ""


# The default 12351 taxonomy (seeded into the taxonomy table by migration 0005; admins edit it there).
DEFAULT_TAXONOMY: tuple[CategoryRule, ...] = (
    CategoryRule("欠薪", ("欠薪", "拖欠", "欠工资", "工资没发", "没发工资", "不发工资", "克扣", "加班费", "讨薪",
                         "欠款", "工钱", "工程款", "拖欠工资"),
                 "工资被拖欠、克扣，含加班费未付"),
    CategoryRule("劳动合同", ("劳动合同", "合同", "辞退", "开除", "解除", "经济补偿", "赔偿金", "试用期", "辞职",
                             "裁员", "续签", "离职"),
                 "劳动合同的订立、变更、解除、终止，经济补偿"),
    CategoryRule("社会保险", ("社保", "社会保险", "养老保险", "医疗保险", "失业保险", "五险", "补缴", "断缴",
                             "生育保险"),
                 "社会保险费未缴、少缴、断缴"),
    CategoryRule("工伤", ("工伤", "受伤", "扭伤", "骨折", "工伤认定", "伤残", "医药费", "职业病", "砸伤",
                         "摔伤", "劳动能力鉴定", "停工留薪"),
                 "工作中受伤、职业病及工伤认定"),
    CategoryRule("工时休假", ("加班", "休息日", "年假", "休假", "工时", "调休", "倒班", "双休", "病假", "年休假",
                             "夜班"),
                 "工作时间、加班、休息休假"),
    CategoryRule("劳务派遣", ("派遣", "劳务派遣", "派遣公司", "用工单位", "退回", "人力资源", "派到", "派过去",
                             "外包"),
                 "劳务派遣用工、退回、同工同酬"),
    CategoryRule("女职工权益", ("怀孕", "孕期", "产假", "哺乳", "生育", "女职工", "产检", "孕妇", "三期"),
                 "孕期、产期、哺乳期女职工的权益"),
    CategoryRule("新就业形态", ("骑手", "外卖", "快递员", "送餐", "平台", "网约车", "跑单", "配送", "站点",
                               "主播"),
                 "快递员、外卖骑手、网约车司机等平台从业人员"),
    CategoryRule(CONSULT, ("想问一下", "咨询一下", "请问一下", "我想咨询", "怎么规定", "法律规定", "可以约定",
                           "合法吗"),
                 "询问法律法规和办事程序，未提出具体争议"),
    CategoryRule(OTHER, (), "以上都不是"),
)
# Caller phrasing of a question about the law, and words that show a dispute has already happened.
QUESTION_TERMS = ("想问一下", "咨询一下", "请问一下", "我想咨询", "怎么规定", "法律规定", "可以约定", "合法吗",
                  "多久", "多少", "吗")
DISPUTE_TERMS = ("拖欠", "欠", "没发", "不发", "克扣", "辞退", "开除", "不要我们", "受伤", "伤了", "让我",
                 "逼", "不给", "不交", "没交", "没有给", "投诉")
RULES_WEIGHT = 0.6
_WORD = re.compile(r"[\u3400-\u9fffA-Za-z0-9]")


@dataclass(frozen=True)
class Categorization:
    category: str
    confidence: float
    # {term, category, start, end, speaker, segment, source: rule|model}
    evidence: list[dict[str, Any]] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)  # the combined distribution, for review screens


# --- the model ------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _tokenizer() -> jieba.Tokenizer:
    return jieba_with(term for rule in DEFAULT_TAXONOMY for term in rule.terms)


def tokens(text: str) -> list[str]:
    return [t for t in _tokenizer().lcut(text, HMM=False) if _WORD.search(t)]


def load_examples(path: Path = EXAMPLES_FILE) -> list[tuple[str, str]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            label, text = line.split("\t", 1)
            out.append((label.strip(), text.strip()))
    return out


@dataclass(frozen=True)
class NaiveBayes:
    """Multinomial naive Bayes with add-one smoothing over token counts."""

    log_prior: dict[str, float]
    log_likelihood: dict[str, dict[str, float]]
    log_unseen: dict[str, float]
    vocabulary: frozenset[str]

    @classmethod
    def train(cls, examples: Iterable[tuple[str, str]]) -> NaiveBayes:
        counts: dict[str, Counter[str]] = {}
        docs: Counter[str] = Counter()
        for label, text in examples:
            counts.setdefault(label, Counter()).update(tokens(text))
            docs[label] += 1
        vocabulary = frozenset(t for c in counts.values() for t in c)
        v = len(vocabulary)
        n_docs = sum(docs.values())
        log_likelihood, log_unseen = {}, {}
        for label, c in counts.items():
            total = sum(c.values()) + v
            log_likelihood[label] = {t: math.log((n + 1) / total) for t, n in c.items()}
            log_unseen[label] = math.log(1 / total)
        return cls({k: math.log(n / n_docs) for k, n in docs.items()}, log_likelihood, log_unseen, vocabulary)

    def distribution(self, weighted: Mapping[str, float], labels: Sequence[str]) -> dict[str, float]:
        """P(label | tokens) over ``labels`` that the model knows; tokens never seen in training are ignored.
        The per-token evidence is averaged (a long call is not more certain than a short one)."""
        known = {t: w for t, w in weighted.items() if t in self.vocabulary}
        labels = [lb for lb in labels if lb in self.log_prior]
        if not known or not labels:
            return {}
        n = sum(known.values())
        scores = {}
        for lb in labels:
            ll = self.log_likelihood[lb]
            loglik = sum(w * ll.get(t, self.log_unseen[lb]) for t, w in known.items())
            scores[lb] = self.log_prior[lb] + 4.0 * loglik / math.sqrt(n)
        top = max(scores.values())
        exp = {lb: math.exp(s - top) for lb, s in scores.items()}
        z = sum(exp.values())
        return {lb: e / z for lb, e in exp.items()}

    def leaning(self, token: str, label: str) -> float:
        """How much a token favours ``label`` over the other labels (log ratio to their mean)."""
        if token not in self.vocabulary:
            return 0.0
        mine = self.log_likelihood[label].get(token, self.log_unseen[label])
        others = [self.log_likelihood[lb].get(token, self.log_unseen[lb]) for lb in self.log_likelihood if lb != label]
        return mine - sum(others) / max(len(others), 1)


@lru_cache(maxsize=1)
def model() -> NaiveBayes:
    return NaiveBayes.train(load_examples())


# --- categorize -----------------------------------------------------------------------------------------


def categorize(segments: Sequence[Segment], taxonomy: Sequence[CategoryRule] | None = None) -> Categorization:
    """The category of a call from its segments; ``taxonomy``: the active categories (default: built in)."""
    rules = list(taxonomy) if taxonomy else list(DEFAULT_TAXONOMY)
    names = [r.name for r in rules]
    fallback = OTHER if OTHER in names else names[-1]
    if CONSULT in names:
        asked = next(r.terms for r in rules if r.name == CONSULT)
        consult = _consultation(segments, (*QUESTION_TERMS, *asked))
        if consult:
            return Categorization(CONSULT, round(min(0.9, 0.5 + 0.1 * len(consult)), 2), consult, {CONSULT: 1.0})
    scores, evidence = _rule_scores(segments, [r for r in rules if r.name != CONSULT])
    weighted: dict[str, float] = {}
    for seg in segments:
        for t in tokens(seg.text):
            weighted[t] = weighted.get(t, 0.0) + (0.5 if seg.speaker == "agent" else 1.0)
    disputes = [n for n in names if n not in (CONSULT, OTHER)] or names
    nb = model().distribution(weighted, disputes)
    total = sum(scores.values())
    if total == 0 and not nb:
        return Categorization(fallback, 0.0, [], {})
    if total:
        combined = {n: RULES_WEIGHT * scores.get(n, 0.0) / total + (1 - RULES_WEIGHT) * nb.get(n, 0.0)
                    for n in names}
        damp = 1.0
    else:
        combined = {n: nb.get(n, 0.0) for n in names}
        damp = 0.5
    best = max(names, key=lambda n: combined[n])
    chosen = [e for e in evidence if e["category"] == best] or _model_evidence(segments, best)
    return Categorization(best, round(combined[best] * damp, 2), chosen,
                          {n: round(p, 3) for n, p in combined.items() if p >= 0.01})


def _rule_scores(segments: Sequence[Segment], rules: Sequence[CategoryRule]) -> tuple[dict[str, float],
                                                                                        list[dict[str, Any]]]:
    scores: dict[str, float] = {}
    evidence: list[dict[str, Any]] = []
    for i, seg in enumerate(segments):
        weight = 1.0 if seg.speaker == "agent" else 2.0
        for rule in rules:
            hit = next((t for t in sorted(rule.terms, key=len, reverse=True) if t and t in seg.text), None)
            if hit:
                scores[rule.name] = scores.get(rule.name, 0.0) + weight
                evidence.append(_evidence(hit, rule.name, i, seg, "rule"))
    return scores, evidence


def _evidence(term: str, category: str, index: int, seg: Segment, source: str) -> dict[str, Any]:
    return {"term": term, "category": category, "start": seg.start, "end": seg.end, "speaker": seg.speaker,
            "segment": index, "source": source}


def _model_evidence(segments: Sequence[Segment], category: str) -> list[dict[str, Any]]:
    """The words that led the model to ``category`` (when no term of it was said), strongest first."""
    nb = model()
    if category not in nb.log_prior:
        return []
    found = []
    for i, seg in enumerate(segments):
        for t in dict.fromkeys(tokens(seg.text)):
            lean = nb.leaning(t, category)
            if lean > 1.0 and len(t) > 1:
                found.append((lean, _evidence(t, category, i, seg, "model")))
    return [e for _, e in sorted(found, key=lambda f: -f[0])[:5]]


def _consultation(segments: Sequence[Segment], questions: Sequence[str] = QUESTION_TERMS) -> list[dict[str, Any]]:
    """Evidence that the caller only asks about the law: questions, and no dispute anywhere they speak."""
    said = [(i, s) for i, s in enumerate(segments) if s.speaker != "agent"]
    if not said or any(t in s.text for _, s in said for t in DISPUTE_TERMS):
        return []
    evidence = []
    for i, seg in said:
        hit = next((t for t in questions if t and t in seg.text), None)
        if hit:
            evidence.append(_evidence(hit, CONSULT, i, seg, "rule"))
    return evidence
