"""A first, honest categorization: keyword rules over what the caller said, with the evidence kept.

Each category has terms; a term counts once per segment it appears in, twice when the caller says it
(the caller states the problem; the agent often just repeats or explains law). The best-scoring category
wins; confidence is its share of all points, so a call that touches several topics gets a low number and
a call with no known term is 其他 with confidence 0. A caller who only asks how the law works (question
phrasing, no sign of a dispute) is 法律咨询 whatever topic the question is about. The cases issue
replaces this with a trained model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from asr.types import Segment

OTHER = "其他"

CATEGORY_TERMS: dict[str, tuple[str, ...]] = {
    "欠薪": ("欠薪", "拖欠", "欠工资", "工资没发", "没发工资", "不发工资", "克扣", "加班费", "讨薪", "欠款"),
    "劳动合同": ("劳动合同", "合同", "辞退", "开除", "解除", "经济补偿", "赔偿金", "试用期", "辞职", "裁员"),
    "社会保险": ("社保", "社会保险", "养老保险", "医疗保险", "失业保险", "五险", "公积金", "补缴"),
    "工伤": ("工伤", "受伤", "扭伤", "骨折", "工伤认定", "伤残", "医药费", "职业病"),
    "工时休假": ("加班", "休息日", "年假", "休假", "工时", "调休", "倒班", "双休", "病假"),
    "劳务派遣": ("派遣", "劳务派遣", "派遣公司", "用工单位", "退回", "人力资源"),
    "女职工权益": ("怀孕", "孕期", "产假", "哺乳", "生育", "女职工", "产检"),
    "新就业形态": ("骑手", "外卖", "快递员", "送餐", "平台", "网约车", "跑单", "配送"),
}
CONSULT = "法律咨询"
CATEGORIES: tuple[str, ...] = (*CATEGORY_TERMS, CONSULT, OTHER)
# Caller phrasing of a question about the law, and words that show a dispute has already happened.
QUESTION_TERMS = ("想问一下", "咨询一下", "请问一下", "我想咨询", "怎么规定", "法律规定", "可以约定", "合法吗",
                  "多久", "多少", "吗")
DISPUTE_TERMS = ("拖欠", "欠", "没发", "不发", "克扣", "辞退", "开除", "不要我们", "受伤", "伤了", "让我",
                 "逼", "不给", "不交", "没交", "没有给", "投诉")


@dataclass(frozen=True)
class Categorization:
    category: str
    confidence: float
    evidence: list[dict[str, Any]] = field(default_factory=list)  # {term, category, start, speaker}


def categorize(segments: list[Segment]) -> Categorization:
    scores: dict[str, float] = dict.fromkeys(CATEGORY_TERMS, 0.0)
    evidence: list[dict[str, Any]] = []
    for seg in segments:
        weight = 1.0 if seg.speaker == "agent" else 2.0
        for category, terms in CATEGORY_TERMS.items():
            hit = next((t for t in sorted(terms, key=len, reverse=True) if t in seg.text), None)
            if hit:
                scores[category] += weight
                evidence.append({"term": hit, "category": category, "start": seg.start, "speaker": seg.speaker})
    consult = _consultation(segments)
    if consult:
        return Categorization(CONSULT, round(min(0.9, 0.5 + 0.1 * len(consult)), 2), consult)
    total = sum(scores.values())
    if total == 0:
        return Categorization(OTHER, 0.0, [])
    best = max(scores, key=lambda c: scores[c])
    return Categorization(best, round(scores[best] / total, 2), [e for e in evidence if e["category"] == best])


def _consultation(segments: list[Segment]) -> list[dict[str, Any]]:
    """Evidence that the caller only asks about the law: questions, and no dispute anywhere they speak."""
    said = [s for s in segments if s.speaker != "agent"]
    if not said or any(t in s.text for s in said for t in DISPUTE_TERMS):
        return []
    evidence = []
    for seg in said:
        hit = next((t for t in QUESTION_TERMS if t in seg.text), None)
        if hit:
            evidence.append({"term": hit, "category": CONSULT, "start": seg.start, "speaker": seg.speaker})
    return evidence
