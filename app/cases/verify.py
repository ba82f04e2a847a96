"""Case facts checked against the audio: where a fact can only be one of a closed set, the candidates are
scored in the place where it was said (asr/score.py) and the best is taken, with a confidence.

- **Places**: a stretch that sounds like a district or a street/town of Qingdao (西海岸星期 → 西海岸新区,
  李汤区 → 李沧区, 行动是 → 平度市) is tried with each place that sounds near it and, where it ends like 区/市,
  every district of its length; the place that fits the audio best is the one said. Both parties count: an
  agent reading the place back (您说的是即墨区，对吧？) adds to the caller's mention; two parties disagreeing
  lowers the confidence.
- **Numbers**: a count or an amount is tried against what else it could have been (三十个人 heard as 十个人:
  二十…九十; 两万 heard as 万; a value said elsewhere in the call, such as the agent's read-back).
- **Names**: the registry's candidates for a heard enterprise name (app/enterprises), each put in the name's
  place.

A fact below ``VERIFY_BELOW`` is kept as a suggestion marked 待核实 (``Evidence.status``): the agent is asked,
the case field is not filled in silently.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Protocol

from app.cases import extract, numbers_zh
from app.cases.extract import (
    DISTRICTS,
    Evidence,
    Said,
    by_caller_first,
    char_cost,
    loose_cost,
    readings,
    sounds,
)

log = logging.getLogger(__name__)

VERIFY_BELOW = 0.6  # a fact less sure than this is marked 待核实
SPOT_AT = 0.8  # a registered name found in a clause (no name extracted there) sounds at least this alike
LINK_AT = 0.75  # a registered enterprise is put on the case at this confidence: a wrong one costs most (its
# warnings, its colour), so the bar is above VERIFY_BELOW; the dev calls' right links scored 0.89-0.96
UNREGISTERED = 0.55  # a heard enterprise name the registry does not hold: the agent checks its spelling
UNVERIFIED = "待核实"
_MAX_GAP = 5.0  # nats per character: a candidate this much worse than what was heard was not said there
_MAX_CANDIDATES = 12  # scored per stretch
_CJK = re.compile(r"[\u3400-\u9fff]")
_TAIL = 6  # characters after a stretch kept in the scored text (the rest of the sentence is the same for all)


class Scorer(Protocol):
    def score(self, speaker: str, start: float, end: float, texts: Sequence[str]) -> list[float]: ...


@dataclass(frozen=True)
class Slot:
    """A stretch ``text[i:j]`` of a segment that may be one of ``candidates`` (each with its own stretch)."""

    said: Said
    spans: tuple[tuple[str, int, int], ...]  # (candidate, i, j)


@dataclass(frozen=True)
class Choice:
    value: str
    confidence: float
    said: Said
    start: int = 0  # the stretch of said.text it takes the place of
    end: int = 0


@dataclass(frozen=True)
class Fix:
    """A stretch of a segment's text that the audio showed to be a place or a registered name: the
    transcript is corrected there (``segment`` indexes the transcript's segments; positions are in the text
    as extraction read it, app/cases/extract.Said.text)."""

    segment: int
    start: int
    end: int
    text: str


def _softmax(scores: Sequence[float]) -> list[float]:
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


def choose(scorer: Scorer, slot: Slot) -> Choice | None:
    """The candidate that fits the audio best, with a confidence: how far it stands above the others
    (softmax of the scores), lowered the further it is below what the decoder heard freely."""
    s = slot.said
    end = max(j for _, _, j in slot.spans)
    heard = s.text[: end + _TAIL]
    texts = [s.text[:i] + c + s.text[j:end + _TAIL] for c, i, j in slot.spans]
    scores = scorer.score(s.seg.speaker, s.seg.start, s.seg.end, [heard, *texts])
    heard_score, scores = scores[0], scores[1:]
    probs = _softmax(scores)
    k = max(range(len(scores)), key=lambda n: scores[n])
    value, i, j = slot.spans[k]
    gap = (scores[k] - heard_score) / max(1, len(value))
    log.debug("choose %s: %s (gap %.2f/char vs heard %r)", s.text[i:j], sorted(
        zip(scores, (c for c, _, _ in slot.spans), strict=True), reverse=True)[:4], gap, s.text[i:j])
    if gap < -_MAX_GAP and s.text[i:j] != value:
        return None
    closeness = 1.0 if gap >= -1.0 else 1.0 - 0.5 * (-1.0 - gap) / (_MAX_GAP - 1.0)
    return Choice(value, probs[k] * closeness, s, i, j)


# --- places ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _places() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Place names said in full (districts, 西海岸新区, streets and towns) → (district, syllables)."""
    names = {**{d: d for d in DISTRICTS}, "西海岸新区": "黄岛区", "西海岸": "黄岛区", **extract.streets()}
    return {name: (district, sounds(name)) for name, district in names.items()}


def _near(stretch: str, syllables: tuple[str, ...]) -> float | None:
    """Average loose sound cost of ``stretch`` against a name's syllables; None when too far: every syllable a
    usual confusion or keeping its initial or final, except one wholly different syllable in names of four
    or more; no more than a third of a syllable off on average."""
    n = len(syllables)
    total = 0.0
    far = 0
    for ch, syllable in zip(stretch, syllables, strict=True):
        if not _CJK.match(ch):
            return None
        cost = min((loose_cost(r, syllable) for r in readings(ch)), default=1.0)
        far += cost >= 1.0
        total += cost
        if far > (1 if n >= 4 else 0) or total > 0.34 * n + 0.01:
            return None
    return total / n


def _district_like_end(ch: str) -> bool:
    return char_cost(ch, "qu", loose=True) <= 0.5 or char_cost(ch, "shi", loose=True) <= 0.5


def place_slots(said: Sequence[Said]) -> list[Slot]:
    """Stretches that sound like a Qingdao place but are not written as one."""
    slots: list[Slot] = []
    places = _places()
    for s in said:
        text = s.text
        spans: dict[tuple[int, int, str], float] = {}
        for name, (_district, syllables) in places.items():
            n = len(syllables)
            for i in range(len(text) - n + 1):
                stretch = text[i:i + n]
                if stretch == name:
                    continue
                cost = _near(stretch, syllables)
                if cost is not None:
                    spans[(i, i + n, name)] = cost
        if not spans:
            continue
        for group in _overlapping(sorted(spans)):
            ranked = sorted(group, key=lambda k: spans[k])[:_MAX_CANDIDATES]
            chosen = {(name, i, j) for i, j, name in ranked}
            for i, j, name in ranked[:1]:
                if name in DISTRICTS and _district_like_end(text[j - 1]):  # heard like a district: try them all
                    chosen |= {(d, i, j) for d in DISTRICTS}
            slots.append(Slot(s, tuple(sorted(chosen, key=lambda c: (c[1], c[0])))))
    return slots


def _overlapping(keys: list[tuple[int, int, str]]) -> list[list[tuple[int, int, str]]]:
    groups: list[list[tuple[int, int, str]]] = []
    end = -1
    for key in keys:
        if key[0] < end:
            groups[-1].append(key)
            end = max(end, key[1])
        else:
            groups.append([key])
            end = key[1]
    return groups


def district(said: Sequence[Said], scorer: Scorer | None, *, heard: Evidence | None,
             fixes: list[Fix] | None = None) -> Evidence | None:
    """The district, from places written in the transcript (``heard``, by app/cases/extract.district) and
    places checked against the audio; mentions by both parties add up, disagreement lowers confidence."""
    votes: dict[str, list[Evidence]] = {}
    if heard is not None:
        votes.setdefault(heard.value, []).append(heard)
    for ev in extract.place_mentions(said):  # every place written in full, by either party
        if not any(e.segment == ev.segment for e in votes.get(ev.value, [])):
            votes.setdefault(ev.value, []).append(ev)
    if scorer is not None:
        for slot in place_slots(said):
            choice = choose(scorer, slot)
            if choice is not None and choice.confidence >= 0.3:
                value = _places()[choice.value][0]
                votes.setdefault(value, []).append(choice.said.evidence(value, 0.85 * choice.confidence))
                if fixes is not None and choice.confidence >= VERIFY_BELOW:
                    fixes.append(Fix(choice.said.index, choice.start, choice.end, choice.value))
    if not votes:
        return None
    return _tally(votes)


def _tally(votes: dict[str, list[Evidence]]) -> Evidence:
    """The value with the most support: its best mention, confidence raised when both parties said it and
    lowered by the support of other values."""
    def support(evs: list[Evidence]) -> float:
        return 1.0 - math.prod(1.0 - e.confidence for e in evs)

    ranked = sorted(votes.items(), key=lambda kv: support(kv[1]), reverse=True)
    value, evs = ranked[0]
    best = max(evs, key=lambda e: (e.speaker != "agent", e.confidence))
    confidence = support(evs)
    if len({e.speaker for e in evs}) > 1:
        confidence = min(0.98, confidence + 0.1)
    if len(ranked) > 1:
        confidence -= 0.5 * support(ranked[1][1])
    return with_confidence(best, confidence)


def with_confidence(ev: Evidence, confidence: float) -> Evidence:
    confidence = round(max(0.05, min(0.99, confidence)), 2)
    return replace(ev, confidence=confidence, status=UNVERIFIED if confidence < VERIFY_BELOW else "")


# --- numbers --------------------------------------------------------------------------------------------


_DIGITS = "0123456789"


def number_variants(value: int) -> list[int]:
    """What a heard number may have been: a tens digit lost (10 → 20…90; 15 → 25…95); for a round number,
    a leading digit lost (2000 → 12000, 22000…) or 两 heard as nothing (10000 → 20000)."""
    out = {value}
    text = str(value)
    if value < 100:
        out |= {d * 10 + value % 10 for d in range(1, 10)}  # 十 heard for 三十
    elif len(text) >= 4 and set(text[1:]) <= {"0"}:
        out |= {int(d + text) for d in _DIGITS[1:]}  # a lost leading digit: 2000 for 12000
        out |= {value * k for k in (2, 3)} if text.startswith("1") else set()  # 两万 heard as 万
    return sorted(v for v in out if v > 0)


def check_number(scorer: Scorer | None, ev: Evidence | None, said: Sequence[Said]) -> Evidence | None:
    """``ev`` (a count or an amount found in the text) checked against the audio: the same number said in
    another segment (the agent reading it back) makes it surer; where the other kind of unit fits the audio
    better (人 and 元 are confused on the telephone) it is marked 待核实; otherwise the number's stretch is
    tried with its variants, and another number that fits better is taken, marked 待核实."""
    if ev is None:
        return None
    s = next((x for x in said if x.index == ev.segment), None)
    if s is None:
        return ev
    spans = [(v, i, j) for v, i, j in spoken_numbers(s.text) if v == ev.value]
    agreeing = [x for x in said if x.index != s.index and any(v == ev.value for v, _, _ in spoken_numbers(x.text))]
    confidence = ev.confidence + (0.15 if agreeing else 0.0)
    if scorer is None or not spans:
        return with_confidence(ev, confidence)
    _, i, j = spans[0]
    if _other_unit_fits(scorer, s, j):
        return with_confidence(ev, min(confidence, 0.45))  # heard 200人, said 200元 (or the reverse): ask
    slot = Slot(s, tuple((str(v), i, j) for v in number_variants(ev.value)))
    choice = choose(scorer, slot)
    if choice is None:
        return with_confidence(ev, confidence - 0.2)
    if int(choice.value) != ev.value:
        # the audio prefers another number: take it only when it is clearly better, and ask the agent
        return with_confidence(replace(ev, value=int(choice.value)), min(0.55, choice.confidence))
    return with_confidence(ev, min(0.95, confidence * (0.6 + 0.4 * choice.confidence) + 0.1))


_UNITS = {"人": "元", "元": "人", "块": "人"}


def _other_unit_fits(scorer: Scorer, s: Said, j: int) -> bool:
    """Whether the unit after a number (at ``j``, within two characters: 个人, 块钱) fits the audio worse than
    the other kind of unit would."""
    k = next((k for k in range(j, min(j + 3, len(s.text))) if s.text[k] in _UNITS), None)
    if k is None:
        return False
    heard = s.text[: k + 1 + _TAIL]
    other = s.text[:k] + _UNITS[s.text[k]] + s.text[k + 1: k + 1 + _TAIL]
    a, b = scorer.score(s.seg.speaker, s.seg.start, s.seg.end, [heard, other])
    return b > a


def amount_heard_as_count(scorer: Scorer | None, said: Sequence[Said]) -> Evidence | None:
    """An amount the telephone turned into a count (一共欠了二十七万元 heard as 27万人): a number of a
    thousand or more before 人, said by the caller, where 元 fits the audio better. Always 待核实."""
    if scorer is None:
        return None
    for s in said:
        if s.seg.speaker == "agent":
            continue
        for value, _i, j in spoken_numbers(s.text):
            if value >= 1000 and s.text[j:j + 1] == "人" and _other_unit_fits(scorer, s, j):
                return with_confidence(s.evidence(value, 0.5), 0.5)
    return None


_SPOKEN_NUMBER = re.compile(rf"({numbers_zh.NUMBER})(万|千)?")


def spoken_numbers(text: str) -> list[tuple[int, int, int]]:
    """The numbers in a text, as (value, start, end): 30, 三十, 4.2万, 八千六."""
    out = []
    for m in _SPOKEN_NUMBER.finditer(text):
        n = numbers_zh.parse(m.group(1), m.group(2) or "")
        if n is not None:
            out.append((n.value, m.start(), m.end()))
    return out


# --- enterprise names -----------------------------------------------------------------------------------


class NameResolver(Protocol):
    def __len__(self) -> int: ...
    def resolve(self, heard: str, *, limit: int = 5, loose: bool = False) -> Sequence[NameMatch] | None: ...


class NameMatch(Protocol):
    @property
    def enterprise_id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def score(self) -> float: ...


@dataclass(frozen=True)
class Registered:
    evidence: Evidence
    enterprise_id: int | None  # the registry entry it resolved to, if any
    heard: str = ""  # the name as heard, where the registry's spelling replaced it


def _span_of(name: str, text: str) -> tuple[int, int] | None:
    """Where in ``text`` the (corrected) ``name`` was heard: the stretch between the first and the last
    characters they share in order, if they share most of them."""
    from difflib import SequenceMatcher

    blocks = [b for b in SequenceMatcher(None, text, name, autojunk=False).get_matching_blocks() if b.size]
    if not blocks or sum(b.size for b in blocks) < 0.4 * len(name):
        return None
    i = blocks[0].a - blocks[0].b
    j = blocks[-1].a + blocks[-1].size + (len(name) - blocks[-1].b - blocks[-1].size)
    return max(0, i), min(len(text), j)


def _clause_before(text: str, end: int) -> str:
    """The clause ending at ``end``: from the punctuation before it (what was heard before a name can be part
    of it: 京岛有享… , 我在…的青岛政和…)."""
    k = max(text.rfind(p, 0, end) for p in "，。？！；,.?!;")
    return text[k + 1:end]


def candidates(resolver: NameResolver, heard: str, clause: str | None) -> tuple[list[NameMatch], set[int]]:
    """Registry candidates for a heard name and for the clause it was heard in (best score per enterprise),
    and which of them the resolver would also answer on the sound alone (its strict setting)."""
    found: dict[int, NameMatch] = {}
    strict: set[int] = set()
    for query in dict.fromkeys(q for q in (heard, clause) if q):
        strict |= {m.enterprise_id for m in resolver.resolve(query, limit=5) or ()}
        for m in resolver.resolve(query, limit=5, loose=True) or ():
            if m.enterprise_id not in found or m.score > found[m.enterprise_id].score:
                found[m.enterprise_id] = m
    return sorted(found.values(), key=lambda m: -m.score)[:5], strict


def spotted(said: Sequence[Said], resolver: NameResolver) -> Evidence | None:
    """A registered name in a clause that ends like a registered company (…有限公司) where extraction found no
    name (京岛一家商贸有限公司: 一家 reads as "a company"): the registry's strict answer, for the audio to check."""
    for s in by_caller_first(said):
        for m in re.finditer("股份有限公司|有限责任公司|有限公司", s.text):
            clause = _clause_before(s.text, m.end())
            found = resolver.resolve(clause, limit=1, loose=True)
            span = _span_of(found[0].name, s.text) if found and found[0].score >= SPOT_AT else None
            if span is not None:
                return s.evidence(s.text[span[0]:span[1]], 0.6)  # the stretch the name lines up with
    return None


def enterprise(said: Sequence[Said], scorer: Scorer | None, *, heard: Evidence | None,
               resolver: NameResolver | None, fixes: list[Fix] | None = None) -> Registered | None:
    """The enterprise: the heard name resolved against the registry (candidates by sound and characters),
    the candidates checked against the audio where the name was said. A registered name is taken only when
    it sounds like what was heard and fits the audio there, and, when it sounds alike only loosely, when it is
    said again in the call (the agent reading it back); otherwise the name stays as heard, marked 待核实 when
    a registry exists but does not hold it: nothing is pulled onto a registered name without evidence in the
    audio."""
    if resolver is None or len(resolver) == 0:  # no registry imported: the name as heard, nothing to check it by
        return Registered(with_confidence(heard, heard.confidence), None) if heard else None
    if heard is None:
        heard = spotted(said, resolver) if scorer is not None else None
        if heard is None:
            return None
    s = next((x for x in said if x.index == heard.segment), None)
    span = _span_of(str(heard.value), s.text) if s is not None else None
    clause = _clause_before(s.text, span[1]) if s is not None and span is not None else None
    matches, strict = candidates(resolver, str(heard.value), clause)
    unsure = Registered(with_confidence(heard, min(heard.confidence, UNREGISTERED)), None)
    if not matches:  # not a registered name: as heard (ASR spells names it does not know its own way), asked
        return unsure
    if scorer is None or s is None or span is None:  # no audio to check by: the sound alone, never linked
        return unsure
    # each candidate in the place of the stretch it lines up with (the heard name may be cut short: 管理有限公司)
    spans = {m.name: _span_of(m.name, s.text) or span for m in matches}
    choice = choose(scorer, Slot(s, tuple((n, *spans[n]) for n in dict.fromkeys(m.name for m in matches))))
    if choice is None:  # no registered name fits what was said there: keep what was heard, and ask
        return unsure
    match = next(m for m in matches if m.name == choice.value)
    confidence = match.score * choice.confidence
    again = [x for x in said if x.index != s.index and (choice.value in x.text or _core_said(choice.value, x.text)
                                                        or _resolves_to(resolver, x.text, match.enterprise_id))]
    if again:
        confidence += 0.1  # said again elsewhere in the call (the agent reading it back)
    elif match.enterprise_id not in strict:
        # Sounding like a registered name only loosely (a brand character sharing just its initial or final)
        # and said once: registries hold many names that sound alike, so this is a suggestion to confirm.
        confidence = min(confidence, UNREGISTERED)
    if confidence < LINK_AT:  # the name as heard, for the agent to check: no registered name is put forward
        return unsure
    value = replace(heard, value=choice.value)
    if fixes is not None:
        fixes.append(Fix(s.index, choice.start, choice.end, choice.value))
    return Registered(with_confidence(value, confidence), match.enterprise_id, str(heard.value))


def apply_fixes(text: str, fixes: Sequence[Fix]) -> str:
    """``text`` with the fixes of its segment applied (overlapping ones: the first kept)."""
    out, pos = [], 0
    for f in sorted(fixes, key=lambda f: (f.start, -f.end)):
        if f.start < pos:
            continue
        out += [text[pos:f.start], f.text]
        pos = f.end
    return "".join([*out, text[pos:]])


def _resolves_to(resolver: NameResolver, text: str, enterprise_id: int) -> bool:
    """Whether a clause of ``text`` that ends like a company sounds like the same registered enterprise (two
    parties heard loosely alike, independently, are evidence)."""
    return any(m.enterprise_id == enterprise_id
               for suffix in extract.ORG_SUFFIX.finditer(text)
               for m in resolver.resolve(_clause_before(text, suffix.end()), limit=3, loose=True) or ())


def _core_said(name: str, text: str) -> bool:
    core = extract.core_of(name)
    return len(core) >= 3 and core in text
