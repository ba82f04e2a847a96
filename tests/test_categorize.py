"""First categorization and extraction, on the truth text of dev-corpus calls (copied to tests/data)."""

from __future__ import annotations

import json

import pytest

from app.cases.categorize import OTHER, categorize
from app.cases.extract import district, enterprise
from asr.types import Segment
from tests.conftest import DATA


def _segments(path: str) -> tuple[dict, list[Segment]]:
    truth = json.loads((DATA / path).read_text())
    return truth, [Segment(t["start"], t["end"], t["role"], t["text"]) for t in truth["turns"]]


@pytest.mark.parametrize("name", ["truth_D01.json", "truth_D02.json", "call_d03.json", "truth_D04.json",
                                  "truth_D05.json"])
def test_dev_calls(name: str) -> None:
    truth, segments = _segments(name)
    cat = categorize(segments)
    assert cat.category == truth["category"]
    assert 0 < cat.confidence <= 1 and cat.evidence
    assert all(e["term"] in next(s.text for s in segments if s.start == e["start"]) for e in cat.evidence)
    found = enterprise(segments)
    assert (found.value if found else None) == truth["enterprise"]
    place = district(segments)
    assert (place.value if place else None) == truth["district"]


def test_nothing_known_is_other_with_no_confidence() -> None:
    cat = categorize([Segment(0, 2, "caller", "你好，我打错电话了。")])
    assert (cat.category, cat.confidence, cat.evidence) == (OTHER, 0.0, [])


def test_district_aliases_map_to_the_district() -> None:
    assert district([Segment(0, 1, "caller", "我在西海岸新区上班")]).value == "黄岛区"  # type: ignore[union-attr]


def test_a_factory_without_a_name_is_not_an_enterprise() -> None:
    assert enterprise([Segment(0, 1, "caller", "我在一家电子厂上班")]) is None
