"""Categorization: rules + naive Bayes, on the truth text and the real ASR output of the dev calls."""

from __future__ import annotations

import json

import pytest

from app.cases.categorize import CONSULT, DEFAULT_TAXONOMY, OTHER, CategoryRule, categorize, load_examples, model
from app.cases.extract import district, enterprise
from asr.types import Segment
from tests.conftest import DATA

TRUTH_CATEGORY = {"D01": "欠薪", "D02": "工伤", "D03": "劳务派遣", "D04": "社会保险", "D05": "法律咨询"}


def _segments(path: str) -> tuple[dict, list[Segment]]:
    truth = json.loads((DATA / path).read_text())
    return truth, [Segment(t["start"], t["end"], t["role"], t["text"]) for t in truth["turns"]]


def asr_segments(name: str) -> list[Segment]:
    doc = json.loads((DATA / "transcripts" / f"{name}.json").read_text())
    return [Segment(s["start"], s["end"], s["speaker"], s["text"]) for s in doc["segments"]]


@pytest.mark.parametrize("name", ["truth_D01.json", "truth_D02.json", "call_d03.json", "truth_D04.json",
                                  "truth_D05.json"])
def test_dev_calls_truth_text(name: str) -> None:
    truth, segments = _segments(name)
    cat = categorize(segments)
    assert cat.category == truth["category"]
    assert 0 < cat.confidence <= 1 and cat.evidence
    for e in cat.evidence:  # each piece of evidence points at the segment where the term was said
        seg = segments[e["segment"]]
        assert e["term"] in seg.text and (e["start"], e["speaker"]) == (seg.start, seg.speaker)
    found = enterprise(segments)
    assert (found.value if found else None) == truth["enterprise"]
    place = district(segments)
    assert (place.value if place else None) == truth["district"]


@pytest.mark.parametrize("name", sorted(TRUTH_CATEGORY))
def test_dev_calls_real_asr_output(name: str) -> None:
    cat = categorize(asr_segments(name))
    assert cat.category == TRUTH_CATEGORY[name]
    assert cat.confidence >= 0.5
    assert max(cat.scores, key=lambda k: cat.scores[k]) == cat.category


def test_nothing_known_is_other_with_no_confidence() -> None:
    cat = categorize([Segment(0, 2, "caller", "喂喂，哦哦。")])
    assert (cat.category, cat.confidence, cat.evidence) == (OTHER, 0.0, [])


def test_model_alone_decides_without_any_term_at_half_confidence() -> None:
    # No rule term is said; the words (被…退回来, 厂里不要) still point to dispatch work.
    cat = categorize([Segment(0, 4, "caller", "我们被厂里退回来了，现在没有岗位，用工单位不管")])
    assert cat.category == "劳务派遣"
    rules_only = categorize([Segment(0, 4, "caller", "老板一直说下个月再给，我们几个都等着钱用")])
    assert rules_only.category == "欠薪"
    assert 0 < rules_only.confidence <= 0.5  # model only: at most half confidence
    assert rules_only.evidence and all(e["source"] == "model" for e in rules_only.evidence)


def test_question_about_law_is_consultation_but_a_dispute_is_not() -> None:
    ask = categorize([Segment(0, 3, "caller", "我想问一下，年休假是怎么规定的？")])
    assert ask.category == CONSULT
    dispute = categorize([Segment(0, 3, "caller", "我想问一下，公司拖欠工资三个月了怎么办？")])
    assert dispute.category == "欠薪"


def test_taxonomy_from_the_table_is_used() -> None:
    segs = [Segment(0, 3, "caller", "我们食堂的饭菜里吃出了虫子，要投诉食品安全")]
    assert categorize(segs).category != "食品安全"
    custom = [*DEFAULT_TAXONOMY[:-1], CategoryRule("食品安全", ("食品安全", "吃出")), DEFAULT_TAXONOMY[-1]]
    cat = categorize(segs, custom)
    assert cat.category == "食品安全" and {e["term"] for e in cat.evidence} == {"食品安全"}
    # An inactive (left out) category is never chosen, even when its terms are said.
    without = [r for r in DEFAULT_TAXONOMY if r.name != "工伤"]
    assert categorize(asr_segments("D02"), without).category != "工伤"


def test_model_is_trained_on_every_category_and_is_deterministic() -> None:
    labels = {label for label, _ in load_examples()}
    assert labels == {r.name for r in DEFAULT_TAXONOMY}
    segs = asr_segments("D03")
    assert categorize(segs) == categorize(segs)
    assert set(model().log_prior) == labels
