"""Everything the machine proposes for a new case, each value with the segment and second it came from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from app.cases import dimensions, extract, verify
from app.cases.categorize import Categorization, CategoryRule, categorize
from app.cases.extract import Evidence, Said
from app.cases.verify import NameResolver, Scorer
from asr.types import Segment

DEFAULT_GROUP_CASE_WORKERS = 10
FIELDS = ("enterprise", "district", "occupation", "gender", "age_bracket", "enterprise_type", "arrears_type",
          "workers", "amount", "caller_phone")


@dataclass(frozen=True)
class Suggestion:
    category: Categorization
    fields: dict[str, Evidence] = field(default_factory=dict)  # only the fields the call says something about
    group_case: bool = False
    said: tuple[Said, ...] = ()  # the segments as extraction read them (domain terms corrected): for the summary

    enterprise_id: int | None = None  # the registry entry the enterprise resolved to (linked once confirmed)
    fixes: tuple[verify.Fix, ...] = ()  # stretches of the transcript the audio showed to be a place or a name
    enterprise_heard: str = ""  # the enterprise name as heard, where the registry's spelling replaced it

    def corrected_texts(self) -> dict[int, str]:
        """Segment index → its text with the fixes applied, for the segments that have any."""
        by_segment: dict[int, list[verify.Fix]] = {}
        for f in self.fixes:
            by_segment.setdefault(f.segment, []).append(f)
        return {s.index: verify.apply_fixes(s.text, by_segment[s.index]) for s in self.said
                if s.index in by_segment}

    def value(self, name: str) -> Any:
        """The value to fill in: None where nothing was said, or where it is too unsure (待核实)."""
        found = self.fields.get(name)
        return found.value if found and found.status != verify.UNVERIFIED else None

    def extracted(self) -> dict[str, dict[str, Any]]:
        """Case.extracted: {field: {value, confidence, start, end, speaker, segment, text, status}}; the
        enterprise's also says which registry entry it resolved to (linked when staff confirm it) and how it was
        heard."""
        out = {name: ev.as_json() for name, ev in self.fields.items()}
        if self.enterprise_id is not None and "enterprise" in out:
            out["enterprise"] |= {"enterprise_id": self.enterprise_id, "heard": self.enterprise_heard}
        return out

    def suggested(self) -> dict[str, Any]:
        """Case.suggested: what the machine proposed, kept as it was when staff change the case."""
        return {"category": self.category.category, "category_confidence": self.category.confidence,
                **{name: {"value": ev.value, "confidence": ev.confidence, **({"status": ev.status} if ev.status
                                                                              else {})}
                   for name, ev in self.fields.items()},
                "group_case": self.group_case,
                **({"enterprise_id": self.enterprise_id} if self.enterprise_id is not None else {})}


def suggest(segments: Sequence[Segment], *, taxonomy: Sequence[CategoryRule] | None = None,
            known_enterprises: Sequence[str] = (), lexicon: Sequence[str] = (),
            group_case_workers: int = DEFAULT_GROUP_CASE_WORKERS, scorer: Scorer | None = None,
            resolver: NameResolver | None = None) -> Suggestion:
    """Category and dimensions of one call. ``known_enterprises``: names people confirmed (and lexicon
    enterprise terms) that near-miss names are corrected to; ``lexicon``: extra domain terms for correction;
    ``scorer``: the call's audio, to check places, numbers and names against (app/cases/verify.py);
    ``resolver``: the enterprise registry."""
    said = extract.prepare(segments, (*known_enterprises, *lexicon))
    corrected = [Segment(s.seg.start, s.seg.end, s.seg.speaker, s.text) for s in said]
    cat = categorize(corrected, taxonomy)
    found: dict[str, Evidence | None] = {}
    fixes: list[verify.Fix] = []
    registered = verify.enterprise(said, scorer, heard=extract.enterprise(segments, known=known_enterprises,
                                                                          said=said), resolver=resolver, fixes=fixes)
    found["enterprise"] = registered.evidence if registered else None
    found["district"] = verify.district(said, scorer, heard=extract.district(segments, said=said), fixes=fixes)
    found["occupation"] = dimensions.occupation(said)
    found["gender"] = dimensions.gender(said)
    found["age_bracket"] = dimensions.age_bracket(said)
    found["enterprise_type"] = dimensions.enterprise_type(said, found["enterprise"])
    found["arrears_type"] = dimensions.arrears_type(said, cat.category)
    found["workers"] = verify.check_number(scorer, dimensions.workers(said), said)
    found["amount"] = (verify.check_number(scorer, dimensions.amount(said), said)
                       or verify.amount_heard_as_count(scorer, said))
    found["caller_phone"] = dimensions.caller_phone(said)
    fields = {k: v for k, v in found.items() if v is not None}
    workers = fields.get("workers")
    group = workers is not None and workers.status != verify.UNVERIFIED and int(workers.value) >= group_case_workers
    # Evidence of the category refers to the transcript's own text, not the corrected one.
    return Suggestion(cat, fields, group, tuple(said), registered.enterprise_id if registered else None,
                      tuple(fixes), registered.heard if registered else "")
