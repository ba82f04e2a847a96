"""Everything the machine proposes for a new case, each value with the segment and second it came from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from app.cases import dimensions, extract
from app.cases.categorize import Categorization, CategoryRule, categorize
from app.cases.extract import Evidence
from asr.types import Segment

DEFAULT_GROUP_CASE_WORKERS = 10
FIELDS = ("enterprise", "district", "occupation", "gender", "age_bracket", "enterprise_type", "arrears_type",
          "workers", "amount", "caller_phone")


@dataclass(frozen=True)
class Suggestion:
    category: Categorization
    fields: dict[str, Evidence] = field(default_factory=dict)  # only the fields the call says something about
    group_case: bool = False

    def value(self, name: str) -> Any:
        found = self.fields.get(name)
        return found.value if found else None

    def extracted(self) -> dict[str, dict[str, Any]]:
        """Case.extracted: {field: {value, confidence, start, end, speaker, segment, text}}."""
        return {name: ev.as_json() for name, ev in self.fields.items()}

    def suggested(self) -> dict[str, Any]:
        """Case.suggested: what the machine proposed, kept as it was when staff change the case."""
        return {"category": self.category.category, "category_confidence": self.category.confidence,
                **{name: {"value": ev.value, "confidence": ev.confidence} for name, ev in self.fields.items()},
                "group_case": self.group_case}


def suggest(segments: Sequence[Segment], *, taxonomy: Sequence[CategoryRule] | None = None,
            known_enterprises: Sequence[str] = (), lexicon: Sequence[str] = (),
            group_case_workers: int = DEFAULT_GROUP_CASE_WORKERS) -> Suggestion:
    """Category and dimensions of one call. ``known_enterprises``: names on file (earlier cases, lexicon
    enterprise terms) that near-miss names are corrected to; ``lexicon``: extra domain terms for correction."""
    said = extract.prepare(segments, (*known_enterprises, *lexicon))
    corrected = [Segment(s.seg.start, s.seg.end, s.seg.speaker, s.text) for s in said]
    cat = categorize(corrected, taxonomy)
    found: dict[str, Evidence | None] = {}
    found["enterprise"] = extract.enterprise(segments, known=known_enterprises, said=said)
    found["district"] = extract.district(segments, said=said)
    found["occupation"] = dimensions.occupation(said)
    found["gender"] = dimensions.gender(said)
    found["age_bracket"] = dimensions.age_bracket(said)
    found["enterprise_type"] = dimensions.enterprise_type(said, found["enterprise"])
    found["arrears_type"] = dimensions.arrears_type(said, cat.category)
    found["workers"] = dimensions.workers(said)
    found["amount"] = dimensions.amount(said)
    found["caller_phone"] = dimensions.caller_phone(said)
    fields = {k: v for k, v in found.items() if v is not None}
    workers = fields.get("workers")
    group = workers is not None and int(workers.value) >= group_case_workers
    # Evidence of the category refers to the transcript's own text, not the corrected one.
    return Suggestion(cat, fields, group)
