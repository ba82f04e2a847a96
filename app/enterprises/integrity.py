"""Enterprise integrity (企业诚信): a score out of 100 and a colour (红 橙 黄 蓝 绿) for each enterprise, from its
cases and early warnings of the last 12 months, by a rule set that is data (published in versions by admins).

The scoring itself is pure — ``score(facts, ruleset, now) -> Rating`` over typed facts — so it can be tested
and explained item by item. Around it: ``rescore`` (some enterprises, after a case or warning changed),
``rescore_all`` (nightly; a few bulk queries, not one per enterprise), ``snapshot_month`` (the rating at the
end of a month, kept as computed so the history stays exact after the rules change), ``publish`` (a new rule
set version), ``override`` (a manager's colour, with a reason) and objections (异议) — every change audited.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.cases.models import Case
from app.db import as_utc, utcnow
from app.enterprises.models import (
    COLOUR_RANK,
    Colour,
    DistributionRead,
    Enterprise,
    EnterpriseAlias,
    EnterpriseColourHistory,
    EnterpriseObjection,
    EnterpriseScore,
    HistoryEntry,
    IntegrityRuleset,
    ItemChange,
    ObjectionStatus,
    OverrideRead,
    RatingRead,
    Rules,
    ScoreItem,
)
from app.enterprises.service import EnterpriseError
from app.warnings.models import EarlyWarning, Grade, Verdict

LOCAL_TZ = ZoneInfo("Asia/Shanghai")  # months are calendar months where the hotline is
CHUNK = 5000  # ids per IN (...) list
SYSTEM = "system"
T = TypeVar("T")
S = TypeVar("S", bound=sa.Select[*tuple[Any, ...]])
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")

# Category names as the taxonomy has them (app/cases/categorize.py DEFAULT_TAXONOMY; migration 0005).
ARREARS, INJURY, DISPATCH, CONSULT = "欠薪", "工伤", "劳务派遣", "法律咨询"

DEFAULT_RULES: dict[str, Any] = {
    "start": 100,
    "window_months": 12,
    "deductions": {
        "arrears": {"categories": [ARREARS], "points": 5, "cap": 30},
        "group": {"points": 10, "cap": 30},
        "repeat": {"min_cases": 3, "days": 90, "points": 10, "exclude_categories": [CONSULT]},
        "injury": {"categories": [INJURY], "points": 5, "cap": 20},
        "dispatch": {"categories": [DISPATCH], "points": 3, "cap": 15},
        "verified_warning": {"points": 10, "cap": 30},
        "open_red_warning": {"points": 20, "cap": 40},
    },
    "bonuses": {"quick_close": {"days": 15, "points": 1, "cap": 5}},
    "bands": [{"colour": "绿", "min_score": 90}, {"colour": "蓝", "min_score": 80},
              {"colour": "黄", "min_score": 70}, {"colour": "橙", "min_score": 60}],
    "floor_colour": "红",
    "veto": {"open_red_warning": True, "group_arrears": True, "colour": "红"},
}


# The order items are listed in: deductions, the bonus, vetoes.
ITEM_ORDER = ("arrears", "group", "repeat", "injury", "dispatch", "verified_warning", "open_red_warning",
              "quick_close", "veto_open_red_warning", "veto_group_arrears")
_ORDER = {key: n for n, key in enumerate(ITEM_ORDER)}


# --- typed inputs and outputs of the scoring --------------------------------------------------------------


@dataclass(frozen=True)
class CaseFact:
    """One of the enterprise's cases as the scoring sees it."""

    id: int
    category: str
    group_case: bool
    at: datetime  # accepted (受理), else created
    closed_at: datetime | None = None


@dataclass(frozen=True)
class WarningFact:
    """One early warning on the enterprise."""

    id: int
    grade: str  # 红 | 橙 | 黄 | 蓝
    raised_at: datetime
    verdict: str | None = None  # 属实 | 误报 | 信息不足
    verified_at: datetime | None = None
    closed_at: datetime | None = None  # 办结


@dataclass(frozen=True)
class Facts:
    cases: Sequence[CaseFact] = ()
    warnings: Sequence[WarningFact] = ()


@dataclass(frozen=True)
class Ruleset:
    """A published rule set: its version and its validated rules."""

    version: int
    rules: Rules

    @cached_property
    def categories(self) -> dict[str, tuple[str, ...]]:
        """Which category items each case category counts towards (欠薪 → arrears, …)."""
        d = self.rules.deductions
        out: dict[str, tuple[str, ...]] = {}
        for key, rule in (("arrears", d.arrears), ("injury", d.injury), ("dispatch", d.dispatch)):
            for category in rule.categories:
                out[category] = (*out.get(category, ()), key)
        return out


@dataclass(frozen=True)
class Item:
    """One line of the score: points off (negative), back (positive) or a veto (0), and its evidence."""

    item: str
    label: str
    points: float
    case_ids: list[int] = field(default_factory=list)
    warning_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Rating:
    score: float
    colour: str
    ruleset_version: int
    items: list[Item]

    def items_json(self) -> list[dict[str, Any]]:
        return [{"item": i.item, "label": i.label, "points": i.points, "case_ids": list(i.case_ids),
                 "warning_ids": list(i.warning_ids)} for i in self.items]


@dataclass(frozen=True)
class ColourChange:
    enterprise_id: int
    before: str
    after: str
    score_before: float
    score_after: float


@dataclass
class RescoreResult:
    rated: int  # enterprises scored and stored
    colour_changes: list[ColourChange]
    seconds: float


# --- time ----------------------------------------------------------------------------------------------


def months_back(at: datetime, months: int) -> datetime:
    """The same moment ``months`` calendar months earlier (the day clamped to the month's length)."""
    index = at.year * 12 + at.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    next_first = datetime(year + (month == 12), month % 12 + 1, 1)
    last_day = (next_first - timedelta(days=1)).day
    return at.replace(year=year, month=month, day=min(at.day, last_day))


def month_of(at: datetime) -> str:
    """The calendar month (Asia/Shanghai) ``at`` falls in, as YYYY-MM."""
    return as_utc(at).astimezone(LOCAL_TZ).strftime("%Y-%m")


def month_start(month: str) -> datetime:
    """The first instant of ``month`` (Asia/Shanghai), in UTC; EnterpriseError 422 for a malformed month."""
    m = _MONTH.match(month)
    if m is None:
        raise EnterpriseError(422, "bad_month", f"月份格式应为 YYYY-MM：{month}")
    return datetime(int(m[1]), int(m[2]), 1, tzinfo=LOCAL_TZ).astimezone(UTC)


def next_month(month: str) -> str:
    year, mon = int(month[:4]), int(month[5:])
    return f"{year + mon // 12:04d}-{mon % 12 + 1:02d}"


def previous_month(month: str) -> str:
    year, mon = int(month[:4]), int(month[5:])
    return f"{year - (mon == 1):04d}-{(mon - 2) % 12 + 1:02d}"


# --- the scoring (pure) --------------------------------------------------------------------------------


def _per_case(item: str, label: str, points: float, cap: float, ids: list[int], *,
              warnings: bool = False) -> Item | None:
    """``points`` off per id, at most ``cap``; None when nothing matched or the item is switched off."""
    off = min(len(ids) * points, cap)
    if not ids or off <= 0:
        return None
    unit = "条" if warnings else "件"
    return Item(item=item, label=f"{label} {len(ids)} {unit}", points=-round(off, 2),
                case_ids=[] if warnings else ids, warning_ids=ids if warnings else [])


def _densest(cases: list[CaseFact], days: int) -> list[CaseFact]:
    """The most cases that fall within one stretch of ``days`` days (the earliest such stretch)."""
    best: list[CaseFact] = []
    span = timedelta(days=days)
    start = 0
    for end, case in enumerate(cases):
        while case.at - cases[start].at >= span:
            start += 1
        if end - start + 1 > len(best):
            best = cases[start:end + 1]
    return best


def _open_red(warnings: Iterable[WarningFact], now: datetime) -> list[WarningFact]:
    """Red warnings not closed by ``now`` (a warning found to be a false alarm by then does not count)."""
    return [w for w in warnings if w.grade == Grade.red.value and (w.closed_at is None or w.closed_at > now)
            and not (w.verdict == Verdict.false_alarm.value and (w.verified_at is None or w.verified_at <= now))]


def _case_items(cases: list[CaseFact], ruleset: Ruleset, now: datetime) -> list[Item]:
    """The case-based items (one pass over the cases), deductions first, then the bonus and the veto."""
    d, rules = ruleset.rules.deductions, ruleset.rules
    by_key: dict[str, list[int]] = {"arrears": [], "injury": [], "dispatch": [], "group": [], "quick_close": [],
                                    "veto_group_arrears": []}
    complaints: list[CaseFact] = []
    quick = timedelta(days=rules.bonuses.quick_close.days)
    for c in cases:
        for key in ruleset.categories.get(c.category, ()):
            by_key[key].append(c.id)
        if c.group_case:
            by_key["group"].append(c.id)
            if c.category in d.arrears.categories:
                by_key["veto_group_arrears"].append(c.id)
        if c.category not in d.repeat.exclude_categories:
            complaints.append(c)
        if c.closed_at is not None and c.closed_at <= now and c.closed_at - c.at <= quick:
            by_key["quick_close"].append(c.id)
    found = [_per_case("arrears", "欠薪投诉", d.arrears.points, d.arrears.cap, by_key["arrears"]),
             _per_case("group", "群体性事件", d.group.points, d.group.cap, by_key["group"]),
             _repeat(complaints, rules),
             _per_case("injury", "工伤投诉", d.injury.points, d.injury.cap, by_key["injury"]),
             _per_case("dispatch", "劳务派遣投诉", d.dispatch.points, d.dispatch.cap, by_key["dispatch"]),
             _bonus(by_key["quick_close"], rules)]
    if rules.veto.group_arrears and by_key["veto_group_arrears"]:
        found.append(Item(item="veto_group_arrears", label="一票否决：发生群体性欠薪", points=0,
                          case_ids=by_key["veto_group_arrears"]))
    return [i for i in found if i is not None]


def _repeat(complaints: list[CaseFact], rules: Rules) -> Item | None:
    """重复投诉: the densest stretch of ``days`` days, when it holds ``min_cases`` complaints or more."""
    rule = rules.deductions.repeat
    if len(complaints) < rule.min_cases or rule.points <= 0:
        return None
    dense = _densest(complaints, rule.days)
    if len(dense) < rule.min_cases:
        return None
    return Item(item="repeat", label=f"重复投诉：{rule.days} 天内 {len(dense)} 件", points=-rule.points,
                case_ids=[c.id for c in dense])


def _bonus(ids: list[int], rules: Rules) -> Item | None:
    bonus = rules.bonuses.quick_close
    back = min(len(ids) * bonus.points, bonus.cap)
    if not ids or back <= 0:
        return None
    return Item(item="quick_close", label=f"{bonus.days} 天内办结 {len(ids)} 件", points=round(back, 2),
                case_ids=ids)


def _warning_items(warnings: list[WarningFact], rules: Rules, since: datetime, now: datetime) -> list[Item]:
    """预警核实属实 (raised in the window, verified by ``now``), 未办结的红色预警 and its veto."""
    d = rules.deductions
    verified = [w.id for w in warnings if w.verdict == Verdict.true.value and w.raised_at > since
                and (w.verified_at is None or w.verified_at <= now)]
    red = [w.id for w in _open_red(warnings, now)]
    found = [_per_case("verified_warning", "预警核实属实", d.verified_warning.points, d.verified_warning.cap,
                       verified, warnings=True),
             _per_case("open_red_warning", "未办结的红色预警", d.open_red_warning.points, d.open_red_warning.cap,
                       red, warnings=True)]
    if rules.veto.open_red_warning and red:
        found.append(Item(item="veto_open_red_warning", label="一票否决：存在未办结的红色预警", points=0,
                          warning_ids=red))
    return [i for i in found if i is not None]


def band(points: float, rules: Rules) -> str:
    """The colour a score falls in (bands best first; under the last one: the floor colour)."""
    for b in rules.bands:
        if points >= b.min_score:
            return b.colour.value
    return rules.floor_colour.value


def score(facts: Facts, ruleset: Ruleset, now: datetime) -> Rating:
    """Rate one enterprise at ``now``: the cases accepted in the last ``window_months`` months and the warnings
    on it (verified ones raised in that window; red ones still open at ``now`` whenever raised). Starts at
    ``start``, takes the deductions off and adds the bonuses (never over ``start`` nor under 0), picks the
    colour band, and a veto makes it the veto colour unless the band is already worse."""
    rules = ruleset.rules
    if not facts.cases and not facts.warnings:
        return Rating(score=rules.start, colour=band(rules.start, rules), ruleset_version=ruleset.version, items=[])
    since = months_back(now, rules.window_months)
    cases = sorted((c for c in facts.cases if since < c.at <= now), key=lambda c: (c.at, c.id))
    warnings = sorted((w for w in facts.warnings if w.raised_at <= now), key=lambda w: (w.raised_at, w.id))
    items = _case_items(cases, ruleset, now) + _warning_items(warnings, rules, since, now)
    total = round(min(max(rules.start + sum(i.points for i in items), 0.0), rules.start), 2)
    colour = band(total, rules)
    vetoed = any(i.item.startswith("veto_") for i in items)
    if vetoed and COLOUR_RANK[rules.veto.colour.value] < COLOUR_RANK[colour]:
        colour = rules.veto.colour.value
    return Rating(score=total, colour=colour, ruleset_version=ruleset.version,
                  items=sorted(items, key=lambda i: _ORDER[i.item]))


# --- rule sets -----------------------------------------------------------------------------------------


def ensure_default(*, db: Session) -> IntegrityRuleset:
    """The rule set in force; when none was ever published, version 1 with ``DEFAULT_RULES``:

    - start at 100; cases accepted (else created) in the last 12 months, warnings on the enterprise;
    - 欠薪 −5 per case (at most −30); 群体性 −10 per case (at most −30); 工伤 −5 (at most −20);
      劳务派遣 −3 (at most −15) — the taxonomy's category names;
    - 重复投诉 −10 once when 3 or more cases (法律咨询 questions not counted) fall within 90 days;
    - 预警核实属实 −10 per warning verified true (at most −30); 未办结的红色预警 −20 each (at most −40);
    - 及时办结 +1 per case closed within 15 days of being accepted (at most +5; never over 100);
    - 绿 ≥ 90, 蓝 ≥ 80, 黄 ≥ 70, 橙 ≥ 60, else 红;
    - 一票否决: an unresolved red warning, or a group (群体性) arrears case in the period, makes it 红.

    So one open 欠薪 case gives 95 (绿); three within 90 days 100 − 15 − 10 = 75 (黄); a group arrears case 红
    whatever the score. Safe when two processes call it at once (the unique version decides)."""
    found = _newest(db)
    if found is not None:
        return found
    try:
        with db.begin_nested():
            db.add(IntegrityRuleset(version=1, rules=Rules.model_validate(DEFAULT_RULES).model_dump(mode="json"),
                                    note="默认规则", published_by=SYSTEM, published_at=utcnow()))
    except DbIntegrityError:
        pass
    created = _newest(db)
    assert created is not None
    return created


def _newest(db: Session) -> IntegrityRuleset | None:
    return db.execute(sa.select(IntegrityRuleset).order_by(IntegrityRuleset.version.desc()).limit(1)).scalar()


def active(*, db: Session) -> Ruleset:
    """The rule set in force, validated (the default one is created when there is none)."""
    row = ensure_default(db=db)
    return Ruleset(version=row.version, rules=Rules.model_validate(row.rules))


def publish(*, db: Session, rules: Rules | dict[str, Any], actor: str, note: str = "") -> IntegrityRuleset:
    """Publish ``rules`` as the next version (in force from now; stored scores change at the next rescore,
    monthly snapshots never). Validated (422 with the problems); audited ``integrity.ruleset_published``."""
    try:
        checked = rules if isinstance(rules, Rules) else Rules.model_validate(rules)
    except ValidationError as e:
        problems = "；".join(f"{'.'.join(map(str, err['loc']))}：{err['msg']}" for err in e.errors())
        raise EnterpriseError(422, "bad_rules", f"评分规则有误：{problems}") from e
    newest = ensure_default(db=db)
    row = IntegrityRuleset(version=newest.version + 1, rules=checked.model_dump(mode="json"), note=note,
                           published_by=actor.removeprefix("user:"), published_at=utcnow())
    db.add(row)
    db.flush()
    audit.record(db=db, actor=actor, action="integrity.ruleset_published", subject_type="integrity_ruleset",
                 subject_id=row.version, details={"version": row.version, "note": note, "rules": row.rules})
    return row


# --- loading facts in bulk -----------------------------------------------------------------------------


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


def _by_ids(stmt: S, column: Any, ids: Sequence[int] | None) -> Iterator[S]:
    """``stmt`` once (all rows) when ``ids`` is None, else once per chunk of ids."""
    if ids is None:
        yield stmt
        return
    for chunk in _chunks(ids):
        yield stmt.where(column.in_(chunk))


def load_facts(*, db: Session, since: datetime, now: datetime,
               enterprise_ids: Sequence[int] | None = None) -> dict[int, Facts]:
    """Cases and warnings that may count between ``since`` and ``now``, by enterprise, in two queries (per
    chunk of ids); ``score`` picks exactly what counts. None: every enterprise."""
    cases: dict[int, list[CaseFact]] = {}
    case_stmt = (sa.select(Case.enterprise_id, Case.id, Case.category, Case.group_case,
                           sa.func.coalesce(Case.accepted_at, Case.created_at), Case.closed_at)
                 .where(Case.enterprise_id.is_not(None), Case.created_at <= now,
                        sa.or_(Case.created_at > since, Case.accepted_at > since)))
    for case_q in _by_ids(case_stmt, Case.enterprise_id, enterprise_ids):
        for eid, cid, category, group, at, closed in db.execute(case_q):
            fact = CaseFact(id=cid, category=category, group_case=bool(group), at=at, closed_at=closed)
            cases.setdefault(int(eid or 0), []).append(fact)
    warnings: dict[int, list[WarningFact]] = {}
    w = EarlyWarning
    warning_stmt = (sa.select(w.enterprise_id, w.id, w.grade, w.raised_at, w.verdict, w.verified_at, w.closed_at)
                    .where(w.enterprise_id.is_not(None), w.raised_at <= now,
                           sa.or_(w.raised_at > since, w.closed_at.is_(None), w.closed_at > now)))
    for warning_q in _by_ids(warning_stmt, w.enterprise_id, enterprise_ids):
        for eid, wid, grade, raised, verdict, verified, closed in db.execute(warning_q):
            signal = WarningFact(id=wid, grade=grade, raised_at=raised, verdict=verdict, verified_at=verified,
                                 closed_at=closed)
            warnings.setdefault(int(eid or 0), []).append(signal)
    return {eid: Facts(cases=cases.get(eid, ()), warnings=warnings.get(eid, ()))
            for eid in cases.keys() | warnings.keys()}


@dataclass(frozen=True)
class _Stored:
    colour: str
    score: float
    ruleset_version: int
    items_text: str  # the items as stored JSON text: compared with the new ones without parsing 20,000 of them


def _stored(db: Session, ids: Sequence[int] | None) -> dict[int, _Stored]:
    """Stored ratings by enterprise; None: all of them."""
    out: dict[int, _Stored] = {}
    s = EnterpriseScore
    base = sa.select(s.enterprise_id, s.colour, s.score, s.ruleset_version, sa.cast(s.items, sa.Text))
    for stmt in _by_ids(base, s.enterprise_id, ids):
        out.update({eid: _Stored(colour, value, version, items) for eid, colour, value, version, items
                    in db.execute(stmt)})
    return out


# --- rescoring -----------------------------------------------------------------------------------------


_SCORES = cast(sa.Table, EnterpriseScore.__table__)
_UPDATE_SCORE = (sa.update(_SCORES).where(_SCORES.c.enterprise_id == sa.bindparam("eid"))
                 .values(score=sa.bindparam("score"), colour=sa.bindparam("colour"),
                         ruleset_version=sa.bindparam("version"), items=sa.bindparam("items", type_=sa.JSON)))


def _store(db: Session, *, ratings: dict[int, Rating], stored: dict[int, _Stored], now: datetime, actor: str,
           every_row: bool = False) -> list[ColourChange]:
    """Write the ratings in bulk: new rows inserted, changed ones updated, ``computed_at`` set on the others
    in one statement per chunk (``every_row``: the ratings cover every stored row, so one statement); audit
    each computed colour that changed (never rated counts as 绿 at 100)."""
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    changes: list[ColourChange] = []
    for eid, r in ratings.items():
        items = r.items_json()
        old = stored.get(eid)
        if old is None:
            inserts.append({"enterprise_id": eid, "score": r.score, "colour": r.colour,
                            "ruleset_version": r.ruleset_version, "items": items, "computed_at": now})
        elif (old.score, old.colour, old.ruleset_version, old.items_text) != (r.score, r.colour, r.ruleset_version,
                                                                              json.dumps(items)):
            updates.append({"eid": eid, "score": r.score, "colour": r.colour, "version": r.ruleset_version,
                            "items": items})
        before, before_score = (old.colour, old.score) if old else (Colour.green.value, 100.0)
        if before != r.colour:
            changes.append(ColourChange(eid, before, r.colour, before_score, r.score))
    for chunk in _chunks(inserts):
        db.execute(sa.insert(EnterpriseScore), list(chunk))
    for chunk in _chunks(updates):
        db.execute(_UPDATE_SCORE, list(chunk))
    if every_row:
        db.execute(sa.update(_SCORES).values(computed_at=now))
    else:
        for ids in _chunks([eid for eid in ratings if eid in stored]):
            db.execute(sa.update(_SCORES).where(_SCORES.c.enterprise_id.in_(ids)).values(computed_at=now))
    for obj in [o for o in db.identity_map.values() if isinstance(o, EnterpriseScore)]:
        db.expire(obj)  # bulk statements bypass loaded objects
    audit.record_many(db=db, entries=[audit.Entry(
        actor=actor, action="enterprise.colour_changed", subject_type="enterprise", subject_id=change.enterprise_id,
        details={"before": change.before, "after": change.after, "score_before": change.score_before,
                 "score_after": change.score_after, "items": [i.item for i in ratings[change.enterprise_id].items],
                 "ruleset_version": ratings[change.enterprise_id].ruleset_version}) for change in changes])
    return changes


def rescore(*, db: Session, enterprise_ids: Iterable[int], now: datetime | None = None,
            actor: str = SYSTEM) -> RescoreResult:
    """Recompute and store the rating of these enterprises (call after a case is filed, changed, linked or
    unlinked, and after a warning on it changes). Unknown ids are skipped."""
    started = time.perf_counter()
    now = now or utcnow()
    wanted = sorted(set(enterprise_ids))
    ids: list[int] = []
    for chunk in _chunks(wanted):
        ids += db.execute(sa.select(Enterprise.id).where(Enterprise.id.in_(chunk))).scalars()
    if not ids:
        return RescoreResult(0, [], time.perf_counter() - started)
    ruleset = active(db=db)
    facts = load_facts(db=db, since=months_back(now, ruleset.rules.window_months), now=now, enterprise_ids=ids)
    ratings = {eid: score(facts.get(eid, Facts()), ruleset, now) for eid in ids}
    changes = _store(db, ratings=ratings, stored=_stored(db, ids), now=now, actor=actor)
    return RescoreResult(len(ratings), changes, time.perf_counter() - started)


def rescore_all(*, db: Session, now: datetime | None = None, actor: str = SYSTEM) -> RescoreResult:
    """Recompute every enterprise with a case or a warning in the window, or a stored score (nightly, and after
    a rule set is published). Others are 绿 at the start score without a row."""
    started = time.perf_counter()
    now = now or utcnow()
    ruleset = active(db=db)
    facts = load_facts(db=db, since=months_back(now, ruleset.rules.window_months), now=now)
    stored = _stored(db, None)
    ratings = {eid: score(facts.get(eid, Facts()), ruleset, now) for eid in facts.keys() | stored.keys()}
    changes = _store(db, ratings=ratings, stored=stored, now=now, actor=actor, every_row=True)
    return RescoreResult(len(ratings), changes, time.perf_counter() - started)


def snapshot_month(*, db: Session, month: str, now: datetime | None = None, actor: str = SYSTEM) -> int:
    """Keep each enterprise's rating at the end of ``month`` (YYYY-MM, Asia/Shanghai; run on the 1st for the
    month just ended) with the rule set in force. Idempotent: a month already kept is left as it is, so the
    history stays as computed. Covers enterprises with facts then, a stored score, or a snapshot the month
    before (so a return to 绿 shows). Returns how many snapshots were written; 409 for a month not over."""
    now = now or utcnow()
    month_start(month)  # 422 unless YYYY-MM
    as_of = month_start(next_month(month))
    if as_of > now:
        raise EnterpriseError(409, "month_not_over", f"{month} 尚未结束，不能生成月度快照")
    ruleset = active(db=db)
    facts = load_facts(db=db, since=months_back(as_of, ruleset.rules.window_months), now=as_of)
    kept = set(db.execute(sa.select(EnterpriseColourHistory.enterprise_id)
                          .where(EnterpriseColourHistory.month == month)).scalars())
    before = set(db.execute(sa.select(EnterpriseColourHistory.enterprise_id)
                            .where(EnterpriseColourHistory.month == previous_month(month))).scalars())
    rated = set(db.execute(sa.select(EnterpriseScore.enterprise_id)).scalars())
    ids = (facts.keys() | rated | before) - kept
    rows: list[dict[str, Any]] = []
    for eid in sorted(ids):
        r = score(facts.get(eid, Facts()), ruleset, as_of)
        rows.append({"enterprise_id": eid, "month": month, "score": r.score, "colour": r.colour,
                     "ruleset_version": r.ruleset_version, "items": r.items_json(), "computed_at": now})
    for chunk in _chunks(rows):
        db.execute(sa.insert(EnterpriseColourHistory), list(chunk))
    audit.record(db=db, actor=actor, action="enterprise.colours_snapshotted", subject_type="enterprise",
                 subject_id="-", details={"month": month, "written": len(rows), "already": len(kept),
                                          "ruleset_version": ruleset.version})
    return len(rows)


# --- override and objections ---------------------------------------------------------------------------


def _enterprise(db: Session, enterprise_id: int) -> Enterprise:
    e = db.get(Enterprise, enterprise_id)
    if e is None:
        raise EnterpriseError(404, "not_found", "企业不存在")
    return e


def _reason(reason: str, what: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise EnterpriseError(422, "reason_required", f"请填写{what}")
    return text


def override(*, db: Session, enterprise_id: int, colour: Colour | str | None, reason: str,
             actor: str) -> EnterpriseScore:
    """Set a manual colour over the computed one (None removes it); a reason is required either way. Audited
    ``enterprise.colour_overridden`` with before and after."""
    _enterprise(db, enterprise_id)
    text = _reason(reason, "调整颜色的理由")
    value = Colour(colour).value if colour is not None else None
    row = db.get(EnterpriseScore, enterprise_id)
    if row is None:
        rescore(db=db, enterprise_ids=[enterprise_id], actor=actor)
        row = db.get(EnterpriseScore, enterprise_id, populate_existing=True)
        assert row is not None
    before = row.override_colour
    row.override_colour = value
    row.override_reason = text if value is not None else None
    row.override_by = actor.removeprefix("user:") if value is not None else None
    row.override_at = utcnow() if value is not None else None
    db.flush()
    audit.record(db=db, actor=actor, action="enterprise.colour_overridden", subject_type="enterprise",
                 subject_id=enterprise_id, details={"before": before, "after": value, "computed": row.colour,
                                                    "reason": text})
    return row


def objections(*, db: Session, enterprise_id: int) -> list[EnterpriseObjection]:
    """Its objections, newest first."""
    return list(db.execute(sa.select(EnterpriseObjection).where(EnterpriseObjection.enterprise_id == enterprise_id)
                           .order_by(EnterpriseObjection.created_at.desc(), EnterpriseObjection.id.desc())).scalars())


def create_objection(*, db: Session, enterprise_id: int, reason: str, actor: str) -> EnterpriseObjection:
    """Record an objection (异议) to the enterprise's colour, 待处理 until decided. Audited."""
    _enterprise(db, enterprise_id)
    row = EnterpriseObjection(enterprise_id=enterprise_id, raised_by=actor.removeprefix("user:"),
                              reason=_reason(reason, "异议理由"),
                              status=ObjectionStatus.pending.value, created_at=utcnow())
    db.add(row)
    db.flush()
    audit.record(db=db, actor=actor, action="enterprise.objection_raised", subject_type="enterprise",
                 subject_id=enterprise_id, details={"objection_id": row.id, "reason": row.reason})
    return row


def decide_objection(*, db: Session, enterprise_id: int, objection_id: int, status: ObjectionStatus | str,
                     outcome: str, actor: str) -> EnterpriseObjection:
    """Decide a pending objection: 成立 (upheld) or 不成立, with the outcome in words. An upheld objection does
    not change the colour by itself: correct the case or warning behind it, or override the colour. 409 when
    already decided. Audited."""
    row = db.get(EnterpriseObjection, objection_id, with_for_update=True)
    if row is None or row.enterprise_id != enterprise_id:
        raise EnterpriseError(404, "not_found", "异议不存在")
    decided = ObjectionStatus(status)
    if decided is ObjectionStatus.pending:
        raise EnterpriseError(422, "bad_status", "处理结果应为“成立”或“不成立”")
    if row.status != ObjectionStatus.pending.value:
        raise EnterpriseError(409, "already_decided", f"该异议已处理（{row.status}）")
    row.status = decided.value
    row.outcome = _reason(outcome, "处理意见")
    row.decided_by = actor.removeprefix("user:")
    row.decided_at = utcnow()
    db.flush()
    audit.record(db=db, actor=actor, action="enterprise.objection_decided", subject_type="enterprise",
                 subject_id=enterprise_id, details={"objection_id": row.id, "status": row.status,
                                                    "outcome": row.outcome})
    return row


# --- reading -------------------------------------------------------------------------------------------


def shown_colour(row: EnterpriseScore | None) -> str:
    """The colour people see: the override if any, else the computed one; 绿 when never rated."""
    if row is None:
        return Colour.green.value
    return row.override_colour or row.colour


def rating(*, db: Session, enterprise_id: int) -> RatingRead:
    """The stored rating as shown (绿 at the start score, no items, for an enterprise never rated)."""
    row = db.get(EnterpriseScore, enterprise_id)
    if row is None:
        return RatingRead(enterprise_id=enterprise_id, colour=Colour.green, score=100.0,
                          computed_colour=Colour.green, ruleset_version=None, computed_at=None, deductions=[],
                          override=None)
    override_read = None
    if row.override_colour and row.override_by and row.override_at:
        override_read = OverrideRead(colour=Colour(row.override_colour), reason=row.override_reason or "",
                                     by=row.override_by, at=row.override_at)
    return RatingRead(enterprise_id=enterprise_id, colour=Colour(shown_colour(row)), score=row.score,
                      computed_colour=Colour(row.colour), ruleset_version=row.ruleset_version,
                      computed_at=row.computed_at, deductions=[ScoreItem.model_validate(i) for i in row.items],
                      override=override_read)


def shown_colour_sql() -> sa.ColumnElement[str]:
    """The shown colour as SQL over an outer join of enterprises with enterprise_scores."""
    return sa.func.coalesce(EnterpriseScore.override_colour, EnterpriseScore.colour, Colour.green.value)


def search(*, db: Session, q: str | None = None, district: str | None = None, colour: str | None = None,
           limit: int = 50, offset: int = 0) -> tuple[int, list[tuple[Enterprise, int, str, float]]]:
    """Like ``service.search`` (name, alias or credit code containing ``q``; district) with each enterprise's
    shown colour and score, and a filter on the shown colour."""
    stmt = sa.select(Enterprise).outerjoin(EnterpriseScore, EnterpriseScore.enterprise_id == Enterprise.id)
    if q:
        q = q.strip()
        alias_hit = sa.select(EnterpriseAlias.enterprise_id).where(EnterpriseAlias.alias.contains(q, autoescape=True))
        stmt = stmt.where(sa.or_(Enterprise.name.contains(q, autoescape=True),
                                 Enterprise.credit_code == q.upper(), Enterprise.id.in_(alias_hit)))
    if district:
        stmt = stmt.where(Enterprise.district == district)
    if colour:
        stmt = stmt.where(shown_colour_sql() == Colour(colour).value)
    total = db.execute(sa.select(sa.func.count()).select_from(stmt.subquery())).scalar_one()
    rows = list(db.execute(stmt.order_by(Enterprise.name).limit(limit).offset(offset)).scalars())
    ids = [r.id for r in rows]
    counts: dict[int, int] = {}
    scores: dict[int, tuple[str, float]] = {}
    if ids:
        counts = {int(eid): int(n) for eid, n in db.execute(
            sa.select(Case.enterprise_id, sa.func.count()).where(Case.enterprise_id.in_(ids))
            .group_by(Case.enterprise_id)) if eid is not None}
        scores = {eid: (shown, value) for eid, shown, value in db.execute(
            sa.select(EnterpriseScore.enterprise_id, shown_colour_sql(), EnterpriseScore.score)
            .where(EnterpriseScore.enterprise_id.in_(ids)))}
    return int(total), [(r, counts.get(r.id, 0), *scores.get(r.id, (Colour.green.value, 100.0))) for r in rows]


def distribution(*, db: Session, district: str | None = None) -> DistributionRead:
    """How many registered enterprises show each colour (never rated: 绿), and how many of them by override."""
    shown = shown_colour_sql().label("shown")
    stmt = (sa.select(shown, sa.func.count(), sa.func.count(EnterpriseScore.override_colour))
            .select_from(Enterprise).outerjoin(EnterpriseScore, EnterpriseScore.enterprise_id == Enterprise.id))
    if district:
        stmt = stmt.where(Enterprise.district == district)
    by_colour = {c.value: 0 for c in Colour}
    overridden = 0
    for colour, n, manual in db.execute(stmt.group_by(shown)):
        by_colour[colour] = int(n)
        overridden += int(manual)
    return DistributionRead(total=sum(by_colour.values()), by_colour=by_colour, overridden=overridden)


# --- history: why it changed colour (为何变色) ------------------------------------------------------------


def changes(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[ItemChange]:
    """Items that appeared, went, or changed points or evidence between two ratings (in ``after``'s order,
    then those that went)."""
    old = {i["item"]: i for i in before}
    new = {i["item"]: i for i in after}
    out = []
    for key in [*new, *(k for k in old if k not in new)]:
        a, b = old.get(key), new.get(key)
        a_cases, b_cases = set(a["case_ids"]) if a else set(), set(b["case_ids"]) if b else set()
        a_warn, b_warn = set(a["warning_ids"]) if a else set(), set(b["warning_ids"]) if b else set()
        if a and b and a["points"] == b["points"] and a_cases == b_cases and a_warn == b_warn:
            continue
        out.append(ItemChange(item=key, label=(b or a or {})["label"], before=a["points"] if a else 0.0,
                              after=b["points"] if b else 0.0, added_case_ids=sorted(b_cases - a_cases),
                              removed_case_ids=sorted(a_cases - b_cases), added_warning_ids=sorted(b_warn - a_warn),
                              removed_warning_ids=sorted(a_warn - b_warn)))
    return out


def _points(value: float) -> str:
    return f"{value:+g} 分"


def explain(*, previous: EnterpriseColourHistory | None, current: EnterpriseColourHistory,
            diff: list[ItemChange]) -> str:
    """The change from one month to the next in one Chinese sentence, for people."""
    if previous is None:
        return f"首次评定：{current.colour}（{current.score:g} 分）"
    head = (f"由{previous.colour}变为{current.colour}" if previous.colour != current.colour
            else f"保持{current.colour}")
    head += f"（{previous.score:g} → {current.score:g} 分）"
    old_keys = {i["item"] for i in previous.items}
    new_keys = {i["item"] for i in current.items}
    parts = []
    for c in diff:
        if c.item not in old_keys:
            parts.append(f"新增「{c.label}」" + ("" if c.after == 0 else f" {_points(c.after)}"))
        elif c.item not in new_keys:
            parts.append(f"不再计入「{c.label}」" + ("" if c.before == 0 else f"（原 {_points(c.before)}）"))
        else:
            parts.append(f"「{c.label}」{c.before:+g} → {c.after:+g} 分")
    if previous.ruleset_version != current.ruleset_version:
        parts.append(f"评分规则由第 {previous.ruleset_version} 版改为第 {current.ruleset_version} 版")
    return head + ("：" + "；".join(parts) if parts else "：扣分项无变化")


def history(*, db: Session, enterprise_id: int) -> list[HistoryEntry]:
    """Its monthly snapshots, oldest first, each with what changed since the month before."""
    rows = list(db.execute(sa.select(EnterpriseColourHistory)
                           .where(EnterpriseColourHistory.enterprise_id == enterprise_id)
                           .order_by(EnterpriseColourHistory.month)).scalars())
    out = []
    previous: EnterpriseColourHistory | None = None
    for row in rows:
        diff = changes(previous.items, row.items) if previous is not None else []
        out.append(HistoryEntry(
            month=row.month, score=row.score, colour=Colour(row.colour), ruleset_version=row.ruleset_version,
            computed_at=row.computed_at, items=[ScoreItem.model_validate(i) for i in row.items],
            previous_colour=Colour(previous.colour) if previous is not None else None,
            colour_changed=previous is not None and previous.colour != row.colour,
            ruleset_changed=previous is not None and previous.ruleset_version != row.ruleset_version,
            changes=diff, explanation=explain(previous=previous, current=row, diff=diff)))
        previous = row
    return out

