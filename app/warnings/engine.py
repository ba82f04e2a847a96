"""What a rule says about a window of cases: pure functions over typed facts, no database.

A rule groups cases by a key and looks at the ``window_days`` up to each new case. The window's grade is the
highest whose thresholds (distinct callers, cases, workers, amount: any one suffices) are met; a group case
(群体性) in the window, or a key warned about and closed within ``repeat_days``, makes it 红. Besides, the
burst test: the number of distinct callers in the window against a Poisson baseline — the key's own rate over
``baseline_days`` before the window, floored by its peers' rate (the mean over the keys of the same rule that
had cases then) and by ``floor_per_day`` — gives ``burst_grade`` when the exact tail probability P(X ≥ n) is at
most ``burst_alpha``. So a district that always has 10 calls a week does not warn at 10, while an enterprise
nobody called about warns at 3.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

from app.warnings.models import RANK, Grade, GroupBy

DAY = timedelta(days=1)
_DAYS = tuple(timedelta(days=n) for n in range(400))


@dataclass(frozen=True, slots=True)
class Fact:
    """One case as the rules see it."""

    case_id: int
    at: datetime  # when it was accepted (受理), UTC
    category: str
    enterprise_id: int | None = None
    enterprise: str | None = None
    district: str | None = None
    occupation: str | None = None
    caller: str | None = None  # the calling number; None: unknown (each such case counts as its own caller)
    workers: int | None = None
    amount: int | None = None
    group_case: bool = False

    @property
    def order(self) -> tuple[datetime, int]:
        return (self.at, self.case_id)


@dataclass(frozen=True)
class Rule:
    """A rule as the engine uses it (read from ``WarningRule``)."""

    id: int
    version: int
    name: str
    group_by: GroupBy
    window_days: int
    categories: frozenset[str] = frozenset()
    min_cases: int = 2
    grades: dict[str, dict[str, int]] = field(default_factory=dict)
    burst_alpha: float | None = None
    burst_grade: str = Grade.yellow.value
    baseline_days: int = 180
    floor_per_day: float = 0.0
    group_case_red: bool = True
    repeat_red: bool = True
    repeat_days: int = 90

    @property
    def window(self) -> timedelta:
        return _DAYS[self.window_days] if self.window_days < len(_DAYS) else timedelta(days=self.window_days)


@dataclass(frozen=True)
class Key:
    """What a warning is about: the stable key (one open warning each) and how people read it."""

    key: str
    subject: str
    enterprise_id: int | None = None
    enterprise: str | None = None
    district: str | None = None
    category: str | None = None


def _norm(name: str) -> str:
    return "".join(name.split())


def key_of(rule: Rule, fact: Fact) -> Key | None:
    """The group key of ``fact`` under ``rule``; None when the rule does not look at such a case."""
    if rule.categories and fact.category not in rule.categories:
        return None
    if rule.group_by is GroupBy.enterprise_category:
        of = key_of(replace(rule, group_by=GroupBy.enterprise, categories=frozenset()), fact)
        if of is None:
            return None
        return replace(of, key=f"{of.key}|{fact.category}", subject=f"{of.subject} × {fact.category}",
                       category=fact.category)
    if rule.group_by is GroupBy.enterprise:
        if fact.enterprise_id is not None:
            return Key(f"enterprise:{fact.enterprise_id}", fact.enterprise or f"企业#{fact.enterprise_id}",
                       enterprise_id=fact.enterprise_id, enterprise=fact.enterprise, district=fact.district)
        if fact.enterprise and _norm(fact.enterprise):  # not in the registry (yet): grouped by the name said
            return Key(f"enterprise-name:{_norm(fact.enterprise)}", fact.enterprise, enterprise=fact.enterprise,
                       district=fact.district)
        return None
    if not fact.district:
        return None
    if rule.group_by is GroupBy.district_category:
        return Key(f"{fact.district}|{fact.category}", f"{fact.district} × {fact.category}",
                   district=fact.district, category=fact.category)
    if not fact.occupation:
        return None
    return Key(f"{fact.district}|职业:{fact.occupation}", f"{fact.district} × {fact.occupation}",
               district=fact.district)


def keyer(rule: Rule) -> Callable[[Fact], Key | None]:
    """``key_of`` for one rule, remembering the key of each combination of the fields that rule reads (a full
    replay asks for 100,000 cases' keys, most of them among a few thousand)."""
    memo: dict[tuple[object, ...], Key | None] = {}
    filtered = bool(rule.categories)

    def signature(f: Fact) -> tuple[object, ...]:
        category = f.category in rule.categories if filtered else True
        if rule.group_by is GroupBy.enterprise:
            return (category, f.enterprise_id, f.enterprise, f.district)
        if rule.group_by is GroupBy.enterprise_category:
            return (category, f.enterprise_id, f.enterprise, f.district, f.category)
        if rule.group_by is GroupBy.district_category:
            return (category, f.district, f.category)
        return (category, f.district, f.occupation)

    def key(fact: Fact) -> Key | None:
        sig = signature(fact)
        if sig not in memo:
            memo[sig] = key_of(rule, fact)
        return memo[sig]

    return key


def burst_threshold(mean: float, alpha: float) -> int:
    """The smallest n with P(X ≥ n) ≤ alpha for X ~ Poisson(mean): from the exact tail at the mean, each next
    tail is the last one less the probability of exactly n."""
    if mean <= 0:
        return 1
    n = max(1, math.floor(mean))
    tail = poisson_tail(n, mean)
    pmf = math.exp(-mean + n * math.log(mean) - math.lgamma(n + 1))
    while tail > alpha and n < mean + 10_000:
        tail -= pmf
        n += 1
        pmf *= mean / n
    return n


def poisson_tail(n: int, mean: float) -> float:
    """P(X ≥ n) for X ~ Poisson(mean), summed exactly from n upwards (no 1 − CDF cancellation): the first term
    from lgamma, each next one the last times mean/k."""
    if n <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    term = math.exp(-mean + n * math.log(mean) - math.lgamma(n + 1))
    total, k = 0.0, n
    while term > total * 1e-15 and k < n + 10_000:
        total += term
        k += 1
        term *= mean / k
    return min(1.0, total)


@dataclass(frozen=True)
class Figures:
    """What a window holds."""

    cases: int
    callers: int
    workers: int
    amount: int
    group_cases: int
    categories: dict[str, int]
    start: datetime
    end: datetime

    @classmethod
    def of(cls, window: Sequence[Fact]) -> Figures:
        phones = {f.caller for f in window if f.caller}
        return cls(
            cases=len(window),
            callers=len(phones) + sum(1 for f in window if not f.caller),
            workers=sum(max(1, f.workers or 1) for f in window),
            amount=sum(f.amount or 0 for f in window),
            group_cases=sum(1 for f in window if f.group_case),
            categories=dict(Counter(f.category for f in window).most_common()),
            start=min(f.at for f in window),
            end=max(f.at for f in window),
        )

    def value(self, measure: str) -> int:
        return int(getattr(self, measure))

    def snapshot(self) -> Figures:
        return self


class Running:
    """The window of one key as a replay moves forward through its cases (oldest first): the figures are kept
    up to date as cases come in and drop out, instead of being counted again for every case."""

    def __init__(self, items: Sequence[Fact]) -> None:
        self.items = items
        self.lo = self.hi = 0
        self.phones: dict[str, int] = {}
        self.categories: dict[str, int] = {}
        self.unknown = self.workers = self.amount = self.group_cases = 0

    def _count(self, f: Fact, sign: int) -> None:
        if f.caller:
            left = self.phones.get(f.caller, 0) + sign
            if left:
                self.phones[f.caller] = left
            else:
                del self.phones[f.caller]
        else:
            self.unknown += sign
        self.categories[f.category] = self.categories.get(f.category, 0) + sign
        self.workers += sign * max(1, f.workers or 1)
        self.amount += sign * (f.amount or 0)
        self.group_cases += sign * f.group_case

    def move(self, upto: int, after: datetime) -> None:
        """The window to hold items[…upto] later than ``after``; both ends only move forward."""
        if upto + 1 < self.hi:  # asked to go back: count afresh
            self.__init__(self.items)  # type: ignore[misc]
        while self.hi <= upto:
            self._count(self.items[self.hi], +1)
            self.hi += 1
        while self.lo < self.hi and self.items[self.lo].at <= after:
            self._count(self.items[self.lo], -1)
            self.lo += 1

    def facts(self) -> list[Fact]:
        return list(self.items[self.lo:self.hi])

    @property
    def cases(self) -> int:
        return self.hi - self.lo

    @property
    def callers(self) -> int:
        return len(self.phones) + self.unknown

    def value(self, measure: str) -> int:
        return int(getattr(self, measure))

    def snapshot(self) -> Figures:
        return self.figures()

    def figures(self) -> Figures:
        return Figures(cases=self.hi - self.lo, callers=len(self.phones) + self.unknown, workers=self.workers,
                       amount=self.amount, group_cases=self.group_cases,
                       categories={c: n for c, n in sorted(self.categories.items(), key=lambda cn: -cn[1]) if n},
                       start=self.items[self.lo].at, end=self.items[self.hi - 1].at)


@dataclass(frozen=True)
class Baseline:
    """The expected number of callers in a window: the largest of the key's own rate over ``baseline_days``,
    its own rate over the last weeks before the window (a slow seasonal rise, 欠薪 before 春节, is the usual by
    the time it is high), its peers' rate and the rule's floor."""

    own_per_day: float
    peer_per_day: float
    floor_per_day: float
    days_seen: float  # how much history the rates are over (less than baseline_days on a new site)
    known: bool = True  # False: too little history to tell a burst from the usual (the burst test is skipped)
    recent_per_day: float = 0.0
    burst_at: int | None = None  # the fewest callers that make a burst (see ``needed``)

    def expected(self, rule: Rule) -> float:
        return rule.window_days * max(self.own_per_day, self.recent_per_day, self.peer_per_day, self.floor_per_day)

    def needed(self, rule: Rule) -> int:
        """The fewest callers in a window that make a burst under ``rule`` (its tail probability ≤ α): as
        worked out when the baseline was made (``for_rule``), else now."""
        if self.burst_at is not None:
            return self.burst_at
        return burst_threshold(self.expected(rule), rule.burst_alpha or 0.0)

    def for_rule(self, rule: Rule) -> Baseline:
        """This baseline with ``needed`` worked out once (a baseline is kept per key and day)."""
        return replace(self, burst_at=burst_threshold(self.expected(rule), rule.burst_alpha or 0.0))


@dataclass(frozen=True)
class Assessment:
    grade: str
    figures: Figures
    expected: float | None
    p_value: float | None
    because: tuple[str, ...]  # what raised it: 阈值:黄, 突增, 群体性, 重复发生

    def as_dict(self) -> dict[str, object]:
        f = self.figures
        return {"cases": f.cases, "callers": f.callers, "workers": f.workers, "amount": f.amount,
                "group_cases": f.group_cases, "categories": f.categories, "window_start": f.start.isoformat(),
                "window_end": f.end.isoformat(), "expected": None if self.expected is None else round(self.expected, 4),
                "p_value": self.p_value, "because": list(self.because)}


def threshold_grade(rule: Rule, figures: Stats) -> str | None:
    """The highest grade any of whose thresholds the window meets."""
    for grade in sorted(rule.grades, key=lambda g: RANK.get(g, -1), reverse=True):
        limits = rule.grades[grade] or {}
        if any(v is not None and figures.value(m) >= v for m, v in limits.items()):
            return grade
    return None


def higher(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return a or b
    return a if RANK[a] >= RANK[b] else b


class Stats(Protocol):
    """What a window holds, as counted so far (``Figures``, or a ``Running`` window)."""

    @property
    def cases(self) -> int: ...

    @property
    def callers(self) -> int: ...

    @property
    def group_cases(self) -> int: ...

    def value(self, measure: str) -> int: ...

    def snapshot(self) -> Figures: ...


def assess(rule: Rule, stats: Stats, baseline: Baseline, *, repeat: bool = False) -> Assessment | None:
    """The grade ``rule`` gives a window holding ``stats``, or None when it gives none. Cheap when it gives
    none (most windows): comparisons only; the exact tail probability is worked out for a burst alone."""
    grouped = rule.group_case_red and stats.group_cases > 0
    if stats.cases < rule.min_cases and not grouped:
        return None
    because: list[str] = []
    grade = threshold_grade(rule, stats)
    if grade is not None:
        because.append(f"阈值:{grade}")
    expected = p_value = None
    if rule.burst_alpha is not None and baseline.known and stats.cases >= rule.min_cases \
            and stats.callers >= baseline.needed(rule):
        expected = baseline.expected(rule)
        p_value = poisson_tail(stats.callers, expected)
        if p_value <= rule.burst_alpha:
            grade = higher(grade, rule.burst_grade)
            because.append("突增")
    if grouped:
        grade = Grade.red.value
        because.append("群体性")
    if grade is not None and repeat and rule.repeat_red:
        grade = Grade.red.value
        because.append("重复发生")
    if grade is None:
        return None
    return Assessment(grade, stats.snapshot(), expected, p_value, tuple(because))


def _wan(amount: int) -> str:
    return f"{amount / 10_000:.1f} 万元" if amount >= 10_000 else f"{amount} 元"


def reason(rule: Rule, key: Key, a: Assessment) -> str:
    """Why, in one sentence for the manager: 崂山区某水产公司 7 天内 4 起欠薪来电，涉及 23 人，金额 18.6 万元."""
    f = a.figures
    kinds = list(f.categories)
    what = kinds[0] if len(kinds) == 1 else "、".join(f"{c}{n}起" for c, n in list(f.categories.items())[:3])
    where = f"{key.district}" if key.district and key.enterprise and key.district not in key.subject else ""
    text = f"{where}{key.subject} {rule.window_days} 天内 {f.cases} 起{what if len(kinds) == 1 else ''}来电"
    if len(kinds) > 1:
        text += f"（{what}）"
    if f.callers != f.cases:
        text += f"，{f.callers} 位来电人"
    text += f"，涉及 {f.workers} 人"
    if f.amount:
        text += f"，金额 {_wan(f.amount)}"
    notes = []
    if "群体性" in a.because:
        notes.append(f"含群体性案件 {f.group_cases} 起")
    if "突增" in a.because and a.expected is not None:
        notes.append(f"远高于以往（同期预期 {a.expected:.1f} 人次，P={a.p_value:.1e}）")
    if "重复发生" in a.because:
        notes.append("此前预警办结后再次发生")
    return text + ("；" + "；".join(notes) if notes else "")
