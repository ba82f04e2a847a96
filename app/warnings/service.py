"""Early warnings: the rules (seeded, edited by admins), evaluation, and the warnings it keeps.

Evaluation replays cases in time order and asks each active rule about the window up to each case
(``engine.assess``). On a key with an open warning, a case whose window still meets the rule attaches to it
with that window's cases (a case on the key after the cluster has passed does not); a higher grade raises the
warning's grade, never lowers it. On a key without one, a triggering case raises a new warning with the
window's cases — unless the case is already behind a warning on that key, which is what makes evaluation
idempotent: run it twice, or over a day already evaluated, and nothing is added.

It runs after every filed case (``evaluate_cases`` from the transcription flow), every hour over the cases
changed in the last two hours (``hourly``: a case whose enterprise or district staff corrected), and in full
(``evaluate_all``: after rules change, `hotline warnings evaluate`). A full run dates each warning at the case
that raised it; the deadline to sign for it never starts before the run. Warnings raised for cases older than
a day are listed but nobody is notified of them.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.cases.models import Case
from app.config import Settings
from app.db import as_utc, utcnow
from app.enterprises.models import Enterprise
from app.notifications.models import NotificationKind
from app.warnings import engine, notify
from app.warnings.engine import Fact, Key
from app.warnings.models import (
    RANK,
    EarlyWarning,
    Grade,
    GroupBy,
    RuleIn,
    Thresholds,
    WarningCase,
    WarningRule,
    WarningStatus,
)

log = logging.getLogger(__name__)
case_at = sa.func.coalesce(Case.accepted_at, Case.created_at)
# Rates are per day over at least this long, so one early case is not a high rate; and a site with less history
# than this (a new site) has no baseline yet: the burst test waits for it, the fixed thresholds do not.
MIN_HISTORY_DAYS = 28
RECENT_DAYS = 28  # the key's own recent rate is over the four weeks before the window
NOTIFY_WITHIN = timedelta(days=1)  # a warning dated older than this (found by a full run) is not notified
Dating = Literal["case", "now"]

# The rules a new site starts with (admins change them in 预警中心 → 规则). Thresholds are sums over the window;
# a grade is reached when any of its thresholds is. Chosen for a city hotline of about 100,000 calls a year.
DEFAULT_RULES: tuple[RuleIn, ...] = (
    # workers of one enterprise calling about the same unpaid wages: the commonest cluster, and the one to catch
    # early (a quiet enterprise warns at its third caller in three days)
    # workers of one enterprise calling about the same problem (unpaid wages, a dispatch agency gone): the
    # commonest cluster, and the one to catch early — a quiet enterprise warns at its third caller in three days
    RuleIn(name="企业同类聚集", group_by=GroupBy.enterprise_category, window_days=3, min_cases=3,
           burst_alpha=1e-5, burst_grade=Grade.yellow, floor_per_day=0.002,
           grades={Grade.orange: Thresholds(workers=30, amount=500_000),
                   Grade.red: Thresholds(callers=10, workers=50, amount=1_000_000)}),
    # complaints of any kind piling up on one enterprise over a week: stricter, since unrelated calls add up
    RuleIn(name="企业投诉聚集", group_by=GroupBy.enterprise, window_days=7, min_cases=4, burst_alpha=1e-6,
           burst_grade=Grade.yellow, floor_per_day=0.01,
           grades={Grade.orange: Thresholds(workers=30, amount=500_000),
                   Grade.red: Thresholds(callers=10, workers=50, amount=1_000_000)}),
    # a district's calls of one kind far above their usual week (a whole week, so weekdays and weekends even
    # out); a group case there is red even when nobody named the enterprise
    RuleIn(name="区域类别突增", group_by=GroupBy.district_category, window_days=7, min_cases=5, burst_alpha=1e-6,
           burst_grade=Grade.orange, floor_per_day=0.1),
    RuleIn(name="区域职业聚集", group_by=GroupBy.district_occupation, window_days=7, min_cases=5, burst_alpha=1e-6,
           burst_grade=Grade.yellow, floor_per_day=0.1, group_case_red=False),
)


class RuleError(ValueError):
    """A rule that cannot be saved (HTTP 409 for a duplicate name, 404 for a missing rule)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# --- rules -------------------------------------------------------------------------------------------------

def seed_rules(*, db: Session) -> int:
    """Add the default rules on a site that has none; returns how many were added."""
    if db.execute(sa.select(sa.func.count()).select_from(WarningRule)).scalar_one():
        return 0
    for data in DEFAULT_RULES:
        db.add(_rule_row(WarningRule(), data, actor="system"))
    db.flush()
    return len(DEFAULT_RULES)


def _rule_row(row: WarningRule, data: RuleIn, *, actor: str) -> WarningRule:
    values = data.model_dump(mode="json")
    values["grades"] = {g: {m: v for m, v in t.items() if v is not None} for g, t in values["grades"].items()}
    for name, value in values.items():
        setattr(row, name, value)
    row.updated_by = actor
    return row


def list_rules(*, db: Session) -> list[WarningRule]:
    return list(db.execute(sa.select(WarningRule).order_by(WarningRule.id)).scalars())


def create_rule(*, db: Session, data: RuleIn, actor: str) -> WarningRule:
    if db.execute(sa.select(WarningRule.id).where(WarningRule.name == data.name)).first():
        raise RuleError(409, "duplicate", f"已有名为「{data.name}」的规则")
    row = _rule_row(WarningRule(version=1), data, actor=actor)
    db.add(row)
    db.flush()
    audit.record(db=db, actor=actor, action="warning_rule.created", subject_type="warning_rule", subject_id=row.id,
                 details=data.model_dump(mode="json"))
    return row


def update_rule(*, db: Session, rule_id: int, data: RuleIn, actor: str) -> WarningRule:
    """Replace a rule; its version goes up (warnings keep the version that raised them)."""
    row = db.get(WarningRule, rule_id, with_for_update=True)
    if row is None:
        raise RuleError(404, "not_found", "规则不存在")
    clash = db.execute(sa.select(WarningRule.id).where(WarningRule.name == data.name, WarningRule.id != rule_id))
    if clash.first():
        raise RuleError(409, "duplicate", f"已有名为「{data.name}」的规则")
    before = _rule_dict(row)
    _rule_row(row, data, actor=actor)
    row.version += 1
    db.flush()
    audit.record(db=db, actor=actor, action="warning_rule.updated", subject_type="warning_rule", subject_id=row.id,
                 details={"version": row.version, "before": before, "after": _rule_dict(row)})
    return row


def _rule_dict(row: WarningRule) -> dict[str, Any]:
    return {c: getattr(row, c) for c in ("name", "group_by", "categories", "window_days", "min_cases", "grades",
                                         "burst_alpha", "burst_grade", "baseline_days", "floor_per_day",
                                         "group_case_red", "repeat_red", "repeat_days", "active")}


def engine_rule(row: WarningRule) -> engine.Rule:
    return engine.Rule(
        id=row.id, version=row.version, name=row.name, group_by=GroupBy(row.group_by), window_days=row.window_days,
        categories=frozenset(row.categories or ()), min_cases=row.min_cases, grades=dict(row.grades or {}),
        burst_alpha=row.burst_alpha, burst_grade=row.burst_grade, baseline_days=row.baseline_days,
        floor_per_day=row.floor_per_day, group_case_red=row.group_case_red, repeat_red=row.repeat_red,
        repeat_days=row.repeat_days)


def active_rules(db: Session) -> list[engine.Rule]:
    seed_rules(db=db)
    rows = db.execute(sa.select(WarningRule).where(WarningRule.active).order_by(WarningRule.id)).scalars()
    return [engine_rule(r) for r in rows]


# --- facts -------------------------------------------------------------------------------------------------

_FACT_COLUMNS = (Case.id, case_at.label("at"), Case.category, Case.enterprise_id,
                 sa.func.coalesce(Enterprise.name, Case.enterprise).label("enterprise"), Case.district,
                 Case.occupation, Case.caller_phone, Case.workers, Case.amount, Case.group_case)


def facts(db: Session, *where: sa.ColumnElement[bool]) -> list[Fact]:
    """Cases as the rules see them (the registered name where the case is linked), oldest first."""
    stmt = (sa.select(*_FACT_COLUMNS).outerjoin(Enterprise, Enterprise.id == Case.enterprise_id)
            .where(*where).order_by(case_at, Case.id))
    return [Fact(case_id=r.id, at=as_utc(r.at), category=r.category, enterprise_id=r.enterprise_id,
                 enterprise=r.enterprise, district=r.district, occupation=r.occupation, caller=r.caller_phone,
                 workers=r.workers, amount=r.amount, group_case=bool(r.group_case))
            for r in db.connection().execute(stmt)]  # rows as they are: no ORM work on 100,000 of them


def _key_filter(rule: engine.Rule, keys: Iterable[Key]) -> sa.ColumnElement[bool]:
    """Cases that may have one of ``keys`` under ``rule`` (a superset: ``key_of`` decides)."""
    keys = list(keys)
    if rule.group_by is GroupBy.enterprise_category:
        plain = replace(rule, group_by=GroupBy.enterprise)
        return sa.or_(*(sa.and_(_key_filter(plain, [k]), Case.category == k.category) for k in keys))
    if rule.group_by is GroupBy.enterprise:
        ids = [k.enterprise_id for k in keys if k.enterprise_id is not None]
        names = [k.key.removeprefix("enterprise-name:") for k in keys if k.enterprise_id is None]
        said = sa.func.replace(sa.func.replace(Case.enterprise, " ", ""), "\u3000", "")  # as key_of compares them
        return sa.or_(Case.enterprise_id.in_(ids), sa.and_(Case.enterprise_id.is_(None), said.in_(names)))
    if rule.group_by is GroupBy.district_category:
        return sa.or_(*(sa.and_(Case.district == k.district, Case.category == k.category) for k in keys))
    pairs = [k.key.split("|职业:", 1) for k in keys]
    return sa.or_(*(sa.and_(Case.district == d, Case.occupation == o) for d, o in pairs))


def _key_sql(rule: engine.Rule) -> sa.ColumnElement[Any]:
    if rule.group_by is GroupBy.enterprise:
        return sa.func.coalesce(sa.cast(Case.enterprise_id, sa.String), Case.enterprise)
    if rule.group_by is GroupBy.enterprise_category:
        return sa.func.coalesce(sa.cast(Case.enterprise_id, sa.String), Case.enterprise) + "|" + Case.category
    other = Case.category if rule.group_by is GroupBy.district_category else Case.occupation
    return sa.case((sa.and_(Case.district.is_not(None), other.is_not(None)), Case.district + "|" + other))


# --- history: the key's own cases and its peers' -----------------------------------------------------------

class History:
    """The cases of each (rule, key) in time order, with a running window over them, and the baselines."""

    def __init__(self, earliest: datetime | None, db: Session | None = None) -> None:
        self.earliest = earliest
        self.db = db  # given: the baseline's own counts come from SQL (only the windows' cases are loaded)
        self._counted: dict[tuple[int, str, datetime, datetime], int] = {}
        self.by_key: dict[tuple[int, str], list[Fact]] = defaultdict(list)
        self._orders: dict[tuple[int, str], list[tuple[datetime, int]]] = {}
        self._times: dict[tuple[int, str], list[datetime]] = {}
        self._running: dict[tuple[int, str], engine.Running] = {}
        self._baselines: dict[tuple[int, str, datetime], engine.Baseline] = {}
        self._grouped: dict[tuple[int, str], bool] = {}

    def add(self, rule: engine.Rule, key: Key, fact: Fact) -> None:
        self.by_key[(rule.id, key.key)].append(fact)

    def seal(self, *, in_order: bool = False) -> None:
        """Index what was added (``in_order``: it was added oldest first, no sorting needed)."""
        for k, items in self.by_key.items():
            if not in_order:
                items.sort(key=lambda f: f.order)
            self._times[k] = [f.at for f in items]
            self._grouped[k] = any(f.group_case for f in items)

    def window(self, rule: engine.Rule, key: Key, fact: Fact) -> engine.Running | None:
        """The key's window up to and including ``fact``; None when the fact is not among what was loaded for
        this rule (a later case another rule's key brought in)."""
        k = (rule.id, key.key)
        if k not in self._times:
            return None  # nothing loaded for this key under this rule
        if len(self.by_key[k]) < rule.min_cases and not (rule.group_case_red and self._grouped.get(k)):
            return None  # a key with fewer cases than the rule needs, ever: no window of it can say anything
        running = self._running.get(k)
        if running is not None and running.hi < len(running.items) and running.items[running.hi] is fact:
            i = running.hi  # the replay's next case on this key (a full replay visits them all in order)
        elif running is None and self.by_key[k] and self.by_key[k][0] is fact:
            i = 0  # the key's first case
        else:
            if k not in self._orders:
                if k not in self._times:
                    return None
                self._orders[k] = [f.order for f in self.by_key[k]]
            orders = self._orders[k]
            i = bisect.bisect_left(orders, fact.order)
            if i == len(orders) or orders[i] != fact.order:
                return None
        if running is None:
            running = self._running[k] = engine.Running(self.by_key[k])
        running.move(i, fact.at - rule.window)
        return running

    def own(self, rule: engine.Rule, key: Key, start: datetime, end: datetime) -> int:
        if self.db is None:
            times = self._times[(rule.id, key.key)]
            return bisect.bisect_left(times, end) - bisect.bisect_left(times, start)
        slot = (rule.id, key.key, start, end)
        if slot not in self._counted:
            where = [_key_filter(rule, [key]), case_at >= start, case_at < end]
            if rule.categories:
                where.append(Case.category.in_(sorted(rule.categories)))
            self._counted[slot] = self.db.execute(sa.select(sa.func.count()).where(*where)).scalar_one()
        return self._counted[slot]

    def days_seen(self, start: datetime, end: datetime) -> float:
        if self.earliest is None or end <= self.earliest:
            return 0.0
        return (end - max(start, self.earliest)).total_seconds() / 86400

    def baseline(self, rule: engine.Rule, key: Key, fact: Fact, peers: Peers) -> engine.Baseline:
        """The key's baseline for a window ending at ``fact``: over whole days before the window, so the same for
        every case of the key on one day (kept, not counted again)."""
        end = _day(fact.at - rule.window)
        slot = (rule.id, key.key, end)
        if (known := self._baselines.get(slot)) is None:
            made = self._baseline(rule, key, end, peers)
            known = self._baselines[slot] = made.for_rule(rule) if made.known else made
        return known

    def _baseline(self, rule: engine.Rule, key: Key, end: datetime, peers: Peers) -> engine.Baseline:
        start = end - timedelta(days=rule.baseline_days)
        seen = self.days_seen(start, end)
        if seen < MIN_HISTORY_DAYS:
            return engine.Baseline(0.0, 0.0, rule.floor_per_day, seen, known=False)
        recent = self.own(rule, key, end - timedelta(days=RECENT_DAYS), end) / RECENT_DAYS
        return engine.Baseline(self.own(rule, key, start, end) / seen, peers.per_key(rule, key, start, end) / seen,
                               rule.floor_per_day, seen, known=True, recent_per_day=recent)


def _day(at: datetime) -> datetime:
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def peer_group(rule: engine.Rule, key: Key) -> str:
    """Which keys a key is compared with: every enterprise; the same category at the other enterprises; the
    same category (occupation) in the other districts."""
    if rule.group_by is GroupBy.enterprise:
        return ""
    return key.key.split("|", 1)[1]


class _Sliding:
    """Cases and distinct keys of one peer group over a period that only moves forward (a full replay)."""

    def __init__(self, times: list[datetime], keys: list[str]) -> None:
        self.times, self.keys = times, keys
        self.lo = self.hi = 0
        self.counts: Counter[str] = Counter()

    def per_key(self, start: datetime, end: datetime) -> float:
        lo, hi = bisect.bisect_left(self.times, start), bisect.bisect_left(self.times, end)
        if lo < self.lo or hi < self.hi:  # went back: count afresh
            self.lo = self.hi = 0
            self.counts.clear()
        while self.hi < hi:
            self.counts[self.keys[self.hi]] += 1
            self.hi += 1
        while self.lo < lo:
            key = self.keys[self.lo]
            self.counts[key] -= 1
            if not self.counts[key]:
                del self.counts[key]
            self.lo += 1
        return (self.hi - self.lo) / len(self.counts) if self.counts else 0.0


_PEER_CACHE: dict[tuple[str, int, int, str, datetime], float] = {}  # per process: the worker evaluates each case
_PEER_CACHE_SIZE = 10_000


class Peers:
    """Cases per key over a period among a key's peers that had any: from the cases in memory (a full replay),
    or from SQL, cached per rule, peer group and day for the process (one query a day, not one per case)."""

    def __init__(self, db: Session | None = None,
                 known: Sequence[tuple[engine.Rule, Sequence[tuple[Fact, Key]]]] = ()) -> None:
        self.db = db
        self._memory: dict[tuple[int, str], _Sliding] = {}
        for rule, keyed in known:  # (fact, key) oldest first
            grouped: dict[str, tuple[list[datetime], list[str]]] = defaultdict(lambda: ([], []))
            for f, k in keyed:
                times, keys = grouped[peer_group(rule, k)]
                times.append(f.at)
                keys.append(k.key)
            for group, (times, keys) in grouped.items():
                self._memory[(rule.id, group)] = _Sliding(times, keys)
        self._in_memory = {rule.id for rule, _ in known}

    def per_key(self, rule: engine.Rule, key: Key, start: datetime, end: datetime) -> float:
        group = peer_group(rule, key)
        if rule.id in self._in_memory:
            sliding = self._memory.get((rule.id, group))
            return sliding.per_key(start, end) if sliding else 0.0
        assert self.db is not None
        slot = (_db_name(self.db), rule.id, rule.version, group, start)
        if slot not in _PEER_CACHE:
            if len(_PEER_CACHE) >= _PEER_CACHE_SIZE:
                _PEER_CACHE.clear()
            _PEER_CACHE[slot] = self._query(rule, group, start, end)
        return _PEER_CACHE[slot]

    def _query(self, rule: engine.Rule, group: str, start: datetime, end: datetime) -> float:
        assert self.db is not None
        key = _key_sql(rule)
        where = [case_at >= start, case_at < end, key.is_not(None)]
        if rule.categories:
            where.append(Case.category.in_(sorted(rule.categories)))
        if rule.group_by in (GroupBy.district_category, GroupBy.enterprise_category):
            where.append(Case.category == group)
        elif rule.group_by is GroupBy.district_occupation:
            where.append(Case.occupation == group.removeprefix("职业:"))
        n, distinct = self.db.execute(sa.select(sa.func.count(), sa.func.count(sa.distinct(key))).where(*where)).one()
        return n / distinct if distinct else 0.0


# --- the warnings on the keys being evaluated ------------------------------------------------------------

@dataclass
class Evaluation:
    cases: int = 0
    raised: int = 0
    attached: int = 0
    upgraded: int = 0
    escalated: int = 0
    woken: int = 0
    seconds: float = 0.0
    touched: set[int] = field(default_factory=set)  # warning ids raised, upgraded or attached to

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("cases", "raised", "attached", "upgraded", "escalated", "woken",
                                              "seconds")}


class Ledger:
    """The warnings of the keys in play, the cases behind them, and what this evaluation changes."""

    def __init__(self, db: Session, keys: Iterable[str] | None, *, settings: Settings, now: datetime,
                 dating: Dating, actor: str) -> None:
        self.db, self.settings, self.now, self.dating, self.actor = db, settings, now, dating, actor
        stmt = sa.select(EarlyWarning)
        if keys is not None:
            stmt = stmt.where(EarlyWarning.group_key.in_(sorted(set(keys))))
        self.warnings: list[EarlyWarning] = list(db.execute(stmt).scalars())
        self.open: dict[str, EarlyWarning] = {w.group_key: w for w in self.warnings if w.open_key is not None}
        ids = [w.id for w in self.warnings]
        self.cases: dict[int, set[int]] = defaultdict(set)
        self.last_case_at: dict[int, datetime] = {}
        for chunk in _chunks(ids, 5000):
            rows = db.execute(sa.select(WarningCase.warning_id, WarningCase.case_id, case_at)
                              .join(Case, Case.id == WarningCase.case_id).where(WarningCase.warning_id.in_(chunk)))
            for warning_id, case_id, at in rows:
                self.cases[warning_id].add(case_id)
                self.last_case_at[warning_id] = max(self.last_case_at.get(warning_id, as_utc(at)), as_utc(at))
        self.on_key: dict[str, list[EarlyWarning]] = defaultdict(list)
        self.closed: dict[str, list[datetime]] = defaultdict(list)  # when warnings not found false were closed
        for w in self.warnings:
            self.on_key[w.group_key].append(w)
            if w.closed_at is not None and w.verdict != "误报":
                self.closed[w.group_key].append(as_utc(w.closed_at))
        self.new_links: list[dict[str, Any]] = []
        self.result = Evaluation()
        self._attached_now: dict[int, list[int]] = defaultdict(list)

    def behind_key(self, key: str, case_id: int) -> bool:
        return any(case_id in self.cases[w.id] for w in self.on_key.get(key, ()))

    def closed_recently(self, key: str, at: datetime, days: int) -> bool:
        since = at - timedelta(days=days)
        return any(since <= closed <= at for closed in self.closed.get(key, ()))

    def _attach(self, w: EarlyWarning, facts_: Iterable[Fact], at: datetime, *, audited: bool = True) -> int:
        added = 0
        for f in facts_:
            if f.case_id in self.cases[w.id]:
                continue
            self.cases[w.id].add(f.case_id)
            self.last_case_at[w.id] = max(self.last_case_at.get(w.id, f.at), f.at)
            self.new_links.append({"warning_id": w.id, "case_id": f.case_id, "attached_at": at})
            if audited:  # the cases a warning is raised with are in its warning.raised event
                self._attached_now[w.id].append(f.case_id)
            added += 1
        if added:
            self.result.touched.add(w.id)
        return added

    def dated(self, fact: Fact) -> datetime:
        return fact.at if self.dating == "case" else self.now

    def decide(self, rule: engine.Rule, key: Key, fact: Fact, window: Sequence[Fact],
               found: engine.Assessment) -> None:
        """Apply what ``rule`` found at ``fact``: attach, raise the grade, or raise a new warning."""
        w = self.open.get(key.key)
        at = self.dated(fact)
        if w is not None:
            fresh = fact.case_id not in self.cases[w.id]
            self.result.attached += self._attach(w, window, at)
            if RANK[found.grade] > RANK[w.grade]:
                self._upgrade(w, rule, key, found, fact)
            elif fresh and found.figures.cases >= int(w.figures.get("cases", 0)):
                w.figures, w.reason = found.as_dict(), engine.reason(rule, key, found)
            return
        if not self.behind_key(key.key, fact.case_id):
            self._raise(rule, key, fact, window, found)

    def _sign_due(self, grade: str, at: datetime) -> datetime:
        hours = self.settings.warning_sign_hours.get(grade, 24)
        return max(at, self.now) + timedelta(hours=hours)

    def _raise(self, rule: engine.Rule, key: Key, fact: Fact, window: Sequence[Fact],
               found: engine.Assessment) -> None:
        at = self.dated(fact)
        w = EarlyWarning(
            rule_id=rule.id, rule_version=rule.version, group_by=rule.group_by.value, group_key=key.key,
            open_key=key.key, subject=key.subject, enterprise_id=key.enterprise_id, enterprise=key.enterprise,
            district=key.district, category=key.category, grade=found.grade, status=WarningStatus.new.value,
            reason=engine.reason(rule, key, found), figures=found.as_dict(), first_case_at=min(f.at for f in window),
            raised_at=at, updated_at=at, sign_due_at=self._sign_due(found.grade, at), actions=[],
            escalation_level=0)
        try:
            with self.db.begin_nested():
                self.db.add(w)
                self.db.flush()
        except IntegrityError:  # another worker raised one on this key a moment ago: it takes the cases
            taken = self.db.execute(sa.select(EarlyWarning).where(EarlyWarning.open_key == key.key)).scalar_one()
            self.warnings.append(taken)
            self.on_key[key.key].append(taken)
            self.open[key.key] = taken
            self.result.attached += self._attach(taken, window, at)
            return
        self.warnings.append(w)
        self.on_key[key.key].append(w)
        self.open[key.key] = w
        self._attach(w, window, at, audited=False)
        self.result.raised += 1
        audit.record(db=self.db, actor=self.actor, action="warning.raised", subject_type="warning", subject_id=w.id,
                     details={"rule": rule.name, "rule_version": rule.version, "grade": w.grade,
                              "subject": w.subject, "reason": w.reason, "cases": [f.case_id for f in window],
                              "as_of": fact.at.isoformat()})
        if self.now - fact.at <= NOTIFY_WITHIN:
            notify.managers(db=self.db, warning=w, kind=NotificationKind.warning_raised, now=self.now)

    def _upgrade(self, w: EarlyWarning, rule: engine.Rule, key: Key, found: engine.Assessment, fact: Fact) -> None:
        before = w.grade
        w.grade, w.figures, w.reason = found.grade, found.as_dict(), engine.reason(rule, key, found)
        at = self.dated(fact)
        w.updated_at = at
        if w.status == WarningStatus.new and w.signed_at is None:  # not yet signed for: the shorter deadline
            w.sign_due_at = min(as_utc(w.sign_due_at), self._sign_due(found.grade, at))
        if w.snoozed_until is not None or w.snooze_cases is not None:  # new information wakes it
            _wake(self.db, w, actor=self.actor, why="预警升级")
        self.result.upgraded += 1
        self.result.touched.add(w.id)
        audit.record(db=self.db, actor=self.actor, action="warning.upgraded", subject_type="warning", subject_id=w.id,
                     details={"from": before, "to": w.grade, "rule": rule.name, "reason": w.reason,
                              "as_of": fact.at.isoformat()})
        if found.grade == Grade.red and self.now - fact.at <= NOTIFY_WITHIN:
            notify.managers(db=self.db, warning=w, kind=NotificationKind.warning_red, now=self.now)

    def flush(self) -> None:
        """Store the new links (in bulk), audit them per warning, and wake snoozed warnings that got enough."""
        for chunk in _chunks(self.new_links, 5000):
            self.db.execute(sa.insert(WarningCase), chunk)
        self.new_links.clear()
        audit.record_many(db=self.db, entries=[
            audit.Entry(actor=self.actor, action="warning.attached", subject_type="warning", subject_id=warning_id,
                        details={"cases": case_ids}) for warning_id, case_ids in self._attached_now.items()])
        by_id = {w.id: w for w in self.warnings}
        for warning_id in self._attached_now:
            w = by_id[warning_id]
            if w.snooze_cases is not None and len(self.cases[w.id]) >= w.snooze_cases:
                _wake(self.db, w, actor=self.actor, why=f"案件数达到 {w.snooze_cases} 起")
                self.result.woken += 1
        self._attached_now.clear()


def _wake(db: Session, w: EarlyWarning, *, actor: str, why: str) -> None:
    w.snoozed_until, w.snooze_cases = None, None
    audit.record(db=db, actor=actor, action="warning.woken", subject_type="warning", subject_id=w.id,
                 details={"why": why})


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


# --- evaluation --------------------------------------------------------------------------------------------

def _db_name(db: Session) -> str:
    """Which database a cached figure belongs to (tests and the benchmark open several in one process)."""
    bind = db.get_bind()
    engine_ = bind.engine if isinstance(bind, sa.Connection) else bind
    return str(engine_.url)


_EARLIEST: dict[str, datetime] = {}  # per database: when its first case was accepted (only ever earlier)


def _earliest(db: Session) -> datetime | None:
    url = _db_name(db)
    if url not in _EARLIEST:
        at = db.execute(sa.select(sa.func.min(case_at))).scalar_one_or_none()
        if at is None:
            return None
        _EARLIEST[url] = as_utc(at)
    return _EARLIEST[url]


_UNKNOWN = engine.Baseline(0.0, 0.0, 0.0, 0.0, known=False)


def _replay(ledger: Ledger, rules: Sequence[engine.Rule], new: Sequence[Fact], history: History,
            peers: Peers, keys: dict[tuple[int, int], Key] | None = None) -> None:
    """Each case in time order through each rule; ``keys`` ((rule id, case id) → key) where already known."""
    for fact in sorted(new, key=lambda f: f.order):
        for rule in rules:
            key = keys.get((rule.id, fact.case_id)) if keys is not None else engine.key_of(rule, fact)
            if key is None or (window := history.window(rule, key, fact)) is None:
                continue
            if window.cases < rule.min_cases and not (rule.group_case_red and window.group_cases):
                continue  # nothing this rule could say: no baseline needed
            burst = rule.burst_alpha is not None and window.cases >= rule.min_cases
            baseline = history.baseline(rule, key, fact, peers) if burst else _UNKNOWN
            repeat = ledger.closed_recently(key.key, fact.at, rule.repeat_days)
            found = engine.assess(rule, window, baseline, repeat=repeat)
            if found is not None:
                ledger.decide(rule, key, fact, window.facts(), found)
    ledger.result.cases += len(new)


def evaluate_all(*, db: Session, settings: Settings, now: datetime | None = None, dating: Dating = "case",
                 actor: str = "system:warnings") -> Evaluation:
    """Replay every case through the active rules (after rules change; the benchmark). Idempotent."""
    started, now = time.perf_counter(), as_utc(now or utcnow())
    rules = active_rules(db)
    everything = facts(db)  # oldest first
    history = History(everything[0].at if everything else None)
    keys: dict[tuple[int, int], Key] = {}
    keyed: list[tuple[engine.Rule, list[tuple[Fact, Key]]]] = []
    for rule in rules:
        key_of = engine.keyer(rule)
        pairs = [(f, k) for f in everything if (k := key_of(f)) is not None]
        for f, k in pairs:
            history.add(rule, k, f)
            keys[(rule.id, f.case_id)] = k
        keyed.append((rule, pairs))
    history.seal(in_order=True)
    ledger = Ledger(db, None, settings=settings, now=now, dating=dating, actor=actor)
    _replay(ledger, rules, everything, history, Peers(known=keyed), keys)
    return _finish(db, ledger, started)


def evaluate_cases(*, db: Session, settings: Settings, case_ids: Sequence[int], now: datetime | None = None,
                   dating: Dating = "now", actor: str = "system:warnings", peers: Peers | None = None) -> Evaluation:
    """Evaluate these cases (just filed, or changed) against the history of their keys, and the later cases on
those keys whose windows hold them (an older case corrected may complete a cluster)."""
    started, now = time.perf_counter(), as_utc(now or utcnow())
    rules = active_rules(db)
    new = [f for chunk in _chunks(sorted(set(case_ids)), 5000) for f in facts(db, Case.id.in_(chunk))]
    if not new or not rules:
        return Evaluation(cases=len(new))
    history = History(_earliest(db), db)  # the baselines' counts from SQL: only windows are loaded
    keys: set[str] = set()
    decide = {f.case_id: f for f in new}
    first = min(f.at for f in new)
    for rule in rules:
        wanted = {k.key: k for f in new if (k := engine.key_of(rule, f)) is not None}
        if not wanted:
            continue
        keys |= set(wanted)
        since = first - rule.window - timedelta(days=1)
        upto = max(f.at for f in new) + rule.window
        for f in facts(db, _key_filter(rule, wanted.values()), case_at >= since, case_at <= upto):
            if (k := engine.key_of(rule, f)) is not None and k.key in wanted:
                history.add(rule, k, f)
                if f.at > first:  # a later case whose window now holds one of these (an older case corrected)
                    decide.setdefault(f.case_id, f)
    history.seal()
    ledger = Ledger(db, keys, settings=settings, now=now, dating=dating, actor=actor)
    _replay(ledger, rules, list(decide.values()), history, peers or Peers(db))
    ledger.result.cases = len(new)
    return _finish(db, ledger, started)


def evaluate_case(*, db: Session, settings: Settings, case_id: int, now: datetime | None = None,
                  dating: Dating = "now") -> Evaluation:
    return evaluate_cases(db=db, settings=settings, case_ids=[case_id], now=now, dating=dating)


def _finish(db: Session, ledger: Ledger, started: float) -> Evaluation:
    ledger.flush()
    touched = [w for w in ledger.warnings if w.id in ledger.result.touched]
    inhibit(db=db, warnings=touched)
    db.flush()
    rescore_enterprises(db=db, enterprise_ids={w.enterprise_id for w in touched if w.enterprise_id is not None},
                        now=ledger.now)
    ledger.result.seconds = round(time.perf_counter() - started, 3)
    return ledger.result


def rescore_enterprises(*, db: Session, enterprise_ids: set[int], now: datetime | None = None) -> None:
    """Enterprise colours follow their warnings (app/enterprises/integrity)."""
    if not enterprise_ids:
        return
    from app.enterprises import integrity  # colours read warnings: imported here, not at the top

    integrity.rescore(db=db, enterprise_ids=sorted(enterprise_ids), now=now or utcnow())


def changed_case_ids(*, db: Session, since: datetime) -> list[int]:
    return list(db.execute(sa.select(Case.id).where(sa.or_(Case.updated_at >= since, Case.created_at >= since))
                           .order_by(Case.id)).scalars())


def hourly(*, db: Session, settings: Settings, now: datetime | None = None) -> Evaluation:
    """The periodic run: cases filed or changed in the last two hours (a missed evaluation, a corrected
    enterprise or district), then deadlines and snoozes."""
    from app.warnings import workflow

    now = as_utc(now or utcnow())
    result = evaluate_cases(db=db, settings=settings, case_ids=changed_case_ids(db=db, since=now - timedelta(hours=2)),
                            now=now)
    swept = workflow.sweep(db=db, settings=settings, now=now)
    result.escalated, result.woken = result.escalated + swept.escalated, result.woken + swept.woken
    return result


# --- inhibition: a red warning hides the lower ones over the same cases ---------------------------------------

ENTERPRISE_LEVEL = (GroupBy.enterprise.value, GroupBy.enterprise_category.value)


def inhibit(*, db: Session, warnings: Sequence[EarlyWarning]) -> None:
    """An open warning below 红 most of whose cases are behind an open 红 one is hidden under it
    (``inhibited_by_id``), as is a red one on a district most of whose cases are behind a red one on an
    enterprise; each is shown again when that one is closed or no longer covers them."""
    if not warnings:
        return
    involved = {w.id for w in warnings}
    mine = sa.select(WarningCase.case_id).where(WarningCase.warning_id.in_(involved))
    related = set(db.execute(sa.select(WarningCase.warning_id).where(WarningCase.case_id.in_(mine))).scalars())
    candidates = list(db.execute(sa.select(EarlyWarning).where(EarlyWarning.id.in_(related | involved),
                                                               EarlyWarning.open_key.is_not(None))).scalars())
    reds = [w for w in candidates if w.grade == Grade.red]
    links: dict[int, set[int]] = defaultdict(set)
    for warning_id, case_id in db.execute(sa.select(WarningCase.warning_id, WarningCase.case_id)
                                          .where(WarningCase.warning_id.in_([w.id for w in candidates]))):
        links[warning_id].add(case_id)
    for w in candidates:
        # a lower grade hides under a red one; a red one about a district under a red one about the enterprise
        # (a group case raises both: the enterprise is the one to act on)
        over = [r for r in reds if r.id != w.id and (
            w.grade != Grade.red or (r.group_by in ENTERPRISE_LEVEL and w.group_by not in ENTERPRISE_LEVEL))]
        cover = max(over, key=lambda r: len(links[r.id] & links[w.id]), default=None)
        hidden = cover is not None and len(links[cover.id] & links[w.id]) * 2 > len(links[w.id])
        w.inhibited_by_id = cover.id if hidden and cover is not None else None
