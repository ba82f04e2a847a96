"""`hotline bench warnings`: a year of Qingdao hotline traffic with injected episodes, replayed through the
early-warning engine (app/warnings/service.py).

The year (2025, Asia/Shanghai) is generated from a seed, nothing of the engine's rules in it:

- Background: Poisson arrivals (a fixed count spread over the year by an intensity) with office hours, fewer
  calls at weekends and on public holidays, more 欠薪 in the weeks before the Spring Festival; the ten
  districts weighted by population; the 12351 categories in a realistic mix (欠薪 ~40%); each call from its
  own number; an enterprise named on most dispute calls (a registered one, else a name the registry does not
  know), chosen by a heavy-tailed popularity (log-normal: most enterprises get 0–3 calls a year, a few get
  dozens); headcount mostly 1, some 2–9, never a group case (≥ HOTLINE_GROUP_CASE_WORKERS: red by policy,
  so background keeps none); amounts where a caller would say one.
- Episodes, the ground truth:
  A "an enterprise stops paying ~30 workers": 6–15 calls from different workers over ~10 days, front-loaded,
    each reporting 1 to 30 workers (so some are group cases) and amounts;
  B "a labour-dispatch agency collapses": 12–25 劳务派遣 calls in one district over 2–5 days, naming the agency
    or one of the enterprises its workers were sent to (3–6), headcounts under the group-case line;
  D "a small burst": 4–5 欠薪 calls about one enterprise within 3 days;
  C "a slow trickle": one call every 2–4 weeks for 4–8 months about an enterprise with no other traffic —
    these must NOT warn.
  Episode calls are real calls: not all of them link to the registry (some name the enterprise by its short
  name, some not at all), some do not say the district, and the ones landing on a weekend often wait for
  Monday.

Measured on the embedded default (a SQLite file, migrated) and on PostgreSQL when a server is given (a
database of its own, dropped after): load time, a full re-evaluation (time, peak RSS over the start), a second
one (must raise nothing), per-case incremental evaluation at each case's own time, and detection: an episode
is detected by the first warning raised at or after its first call, no later than its last call + the
longest rule window, whose cases include one of the episode's; its delay from the first and from the second
call; recall; false warnings (none of their cases in an A/B/D episode) per month; trickle enterprises warned.
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import json
import math
import os
import random
import statistics
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psutil
import sqlalchemy as sa

from app.bench import scratch_sqlite
from app.cases.models import Case, CaseStatus
from app.config import Settings
from app.db import Base, Database
from app.enterprises.models import Enterprise
from app.recordings.models import Recording
from app.warnings.models import EarlyWarning, WarningCase, WarningRule

TZ = timezone(timedelta(hours=8), "Asia/Shanghai")
YEAR = 2025
START = datetime(YEAR, 1, 1, tzinfo=TZ)
DAYS = 365
END = START + timedelta(days=DAYS)
BATCH = 10_000  # rows per INSERT executemany while loading
PG_DATABASE = "hotline_bench_warnings"

# The ten districts and their resident population (万, 2020 census): callers come from where people live.
DISTRICTS: tuple[tuple[str, float], ...] = (
    ("市南区", 55.2), ("市北区", 104.2), ("李沧区", 74.6), ("崂山区", 55.4), ("黄岛区", 190.4),
    ("城阳区", 111.0), ("即墨区", 134.5), ("胶州市", 100.1), ("平度市", 118.9), ("莱西市", 70.2),
)


@dataclass(frozen=True)
class Category:
    name: str  # as in the taxonomy (app/cases/categorize.DEFAULT_TAXONOMY)
    share: float  # percent of calls
    named: float  # how often the caller names the enterprise
    occupations: tuple[str, ...]  # as recorded (app/cases/dimensions.OCCUPATIONS values)


CATEGORIES: tuple[Category, ...] = (
    Category("欠薪", 40, 0.90, ("建筑工人", "农民工", "力工", "普工", "瓦工", "木工", "钢筋工", "焊工", "厨师",
                               "服务员", "司机", "保洁员", "保安", "销售员", "操作工")),
    Category("劳动合同", 18, 0.85, ("普工", "操作工", "文员", "销售员", "技术员", "会计", "司机", "服务员",
                                   "仓管员", "业务员")),
    Category("社会保险", 12, 0.80, ("普工", "操作工", "保安", "保洁员", "文员", "司机", "厨师")),
    Category("工伤", 8, 0.85, ("建筑工人", "焊工", "操作工", "叉车工", "装卸工", "搬运工", "电工", "力工")),
    Category("工时休假", 5, 0.80, ("普工", "操作工", "保安", "服务员", "收银员", "护士")),
    Category("劳务派遣", 4, 0.85, ("普工", "操作工", "装配工", "包装工", "质检员")),
    Category("新就业形态", 4, 0.70, ("外卖骑手", "快递员", "网约车司机", "配送员", "主播")),
    Category("女职工权益", 2, 0.80, ("文员", "销售员", "收银员", "会计", "护士", "教师")),
    Category("法律咨询", 5, 0.15, ("普工", "文员", "销售员", "司机")),
    Category("其他", 2, 0.40, ("普工", "保洁员", "服务员")),
)
ARREARS = "欠薪"
DISPATCH = "劳务派遣"
DISPATCH_OCCUPATIONS = ("普工", "操作工", "装配工", "包装工", "质检员")

# Calls by hour of the day (local): the hotline is staffed 8:30–17:30, a few calls reach it outside hours.
HOURS = (0.1, 0.05, 0.05, 0.05, 0.05, 0.1, 0.3, 0.8, 4.0, 7.0, 7.5, 6.0,
         3.5, 5.0, 7.0, 6.5, 5.5, 3.0, 1.2, 0.8, 0.6, 0.4, 0.3, 0.2)
WEEKDAYS = (1.2, 1.1, 1.05, 1.0, 0.95, 0.35, 0.25)  # Monday first
# 2025 public holidays (first day, days): New Year, Spring Festival, Qingming, Labour Day, Dragon Boat, National Day.
HOLIDAYS = (((1, 1), 1), ((1, 28), 8), ((4, 4), 3), ((5, 1), 5), ((5, 31), 3), ((10, 1), 8))
HOLIDAY_FACTOR = 0.3
# 欠薪 swells before the Spring Festival (2025-01-29; 2026-02-17): migrant workers want their pay to go home.
ARREARS_PEAKS = (((1, 1), 27), ((12, 1), 31))
ARREARS_PEAK_FACTOR = 1.5
NO_PHONE = 0.02  # withheld numbers
NO_DISTRICT = 0.10  # the district was not said (or not recognised)
PHONE_PREFIXES = ("130", "131", "132", "135", "136", "137", "138", "139", "150", "151", "152", "155", "156", "157",
                  "158", "159", "176", "177", "178", "180", "181", "182", "183", "185", "186", "187", "188", "189",
                  "198", "199")

STATUSES = tuple(s.value for s in CaseStatus)
KINDS = {"A": "欠薪停发约30人", "B": "劳务派遣公司倒闭", "D": "3天内4–5起欠薪", "C": "涓流(不应预警)"}


# --- the year -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Company:
    id: int  # enterprises.id
    name: str
    short: str  # how callers name it without the registry (恒达机械)
    district: str


@dataclass(slots=True)
class Call:
    """One case as the engine reads it, with the episode it belongs to (None: background)."""

    at: datetime  # UTC: accepted_at = created_at
    category: str
    enterprise_id: int | None
    enterprise: str | None
    district: str | None
    occupation: str | None
    workers: int | None
    amount: int | None
    episode: str | None = None
    phone: str | None = None
    id: int = 0  # cases.id, in time order


@dataclass
class Episode:
    id: str  # A01, B02, C03, D04 …
    kind: str  # A | B | C | D (KINDS)
    subject: str  # the enterprise, or district × category
    enterprise_id: int | None
    district: str | None
    case_ids: list[int] = field(default_factory=list)
    times: list[datetime] = field(default_factory=list)  # of its calls, in order (UTC)

    @property
    def positive(self) -> bool:
        return self.kind != "C"


@dataclass
class Year:
    seed: int
    companies: list[Company]
    calls: list[Call]  # in time order; calls[i].id == i + 1
    episodes: list[Episode]
    group_workers: int


def _date(month_day: tuple[int, int]) -> int:
    return (datetime(YEAR, *month_day, tzinfo=TZ) - START).days


def _marked(spans: Sequence[tuple[tuple[int, int], int]]) -> set[int]:
    return {d for start, n in spans for d in range(_date(start), min(DAYS, _date(start) + n))}


def _day_weights() -> list[float]:
    holidays = _marked(HOLIDAYS)
    return [WEEKDAYS[(START + timedelta(days=d)).weekday()] * (HOLIDAY_FACTOR if d in holidays else 1.0)
            for d in range(DAYS)]


def _cum(weights: Sequence[float]) -> list[float]:
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


class Clock:
    """Times of calls: a day, then an hour by the office-hours profile, then a second within it."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.hours = _cum(HOURS)
        self.holidays = _marked(HOLIDAYS)

    def at(self, day: int) -> datetime:
        hour = self.rng.choices(range(24), cum_weights=self.hours)[0]
        local = START + timedelta(days=day, hours=hour, seconds=self.rng.randrange(3600))
        return local.astimezone(UTC)

    def workday(self, day: int, stay: float = 0.35) -> int:
        """Calls about an episode falling on a weekend or holiday mostly wait for the next working day."""
        while day < DAYS - 1 and self._off(day) and self.rng.random() > stay:
            day += 1
        return day

    def _off(self, day: int) -> bool:
        return (START + timedelta(days=day)).weekday() >= 5 or day in self.holidays


def _companies(rng: random.Random, n: int) -> list[Company]:
    from app.bench.enterprises import Registry  # plausible Qingdao names (青岛恒达机械有限公司)

    reg = Registry(rng)
    names: dict[str, Company] = {}
    shorts: set[str] = set()
    districts = [d for d, _ in DISTRICTS]
    cum = _cum([w for _, w in DISTRICTS])
    while len(names) < n:
        name = reg.make()
        short = name.brand + name.trade
        if name.full in names or short in shorts:
            continue
        shorts.add(short)
        names[name.full] = Company(len(names) + 1, name.full, short, rng.choices(districts, cum_weights=cum)[0])
    return list(names.values())


def _wage(rng: random.Random) -> int:
    return int(min(20000, max(2500, rng.lognormvariate(math.log(5500), 0.3))))


def _amount(rng: random.Random, category: str, workers: int | None) -> int | None:
    if category == ARREARS and rng.random() < 0.85:
        months = rng.choices((1, 2, 3, 4, 5, 6), weights=(35, 25, 15, 10, 8, 7))[0]
        return round((workers or 1) * _wage(rng) * months, -2)
    if category == "劳动合同" and rng.random() < 0.3:
        return round(_wage(rng) * rng.randint(1, 8), -2)
    if category == "工伤" and rng.random() < 0.25:
        return rng.randint(5, 200) * 1000
    return None


def _occupation(rng: random.Random, choices: Sequence[str], said: float = 0.65) -> str | None:
    return rng.choice(choices) if rng.random() < said else None


def _district(rng: random.Random, district: str | None) -> str | None:
    return district if rng.random() >= NO_DISTRICT else None


def _named(rng: random.Random, c: Company, linked: float = 0.85, short: float = 0.10) -> tuple[int | None, str | None]:
    """How a call about ``c`` names it: linked to the registry, by its short name only, or not at all."""
    r = rng.random()
    if r < linked:
        return c.id, c.name
    if r < linked + short:
        return None, c.short
    return None, None


def _background(rng: random.Random, n: int, companies: list[Company], weights: list[float],
                unregistered: list[str], group_workers: int) -> list[Call]:
    day_cum = _cum(_day_weights())
    days = rng.choices(range(DAYS), cum_weights=day_cum, k=n)
    clock = Clock(rng)
    peaks = _marked(ARREARS_PEAKS)
    cat_w = [c.share for c in CATEGORIES]
    cat_cum = _cum(cat_w)
    peak_cum = _cum([w * (ARREARS_PEAK_FACTOR if c.name == ARREARS else 1.0) for c, w in zip(CATEGORIES, cat_w,
                                                                                                strict=True)])
    ent_cum = _cum(weights)
    districts = [d for d, _ in DISTRICTS]
    dist_cum = _cum([w for _, w in DISTRICTS])
    top = min(9, group_workers - 1)
    sizes = list(range(2, top + 1))
    size_w = [1 / (s - 0.5) ** 1.5 for s in sizes]
    calls = []
    for day in days:
        cum = peak_cum if day in peaks else cat_cum
        cat = CATEGORIES[bisect.bisect_left(cum, rng.random() * cum[-1])]
        enterprise_id: int | None = None
        enterprise: str | None = None
        district: str | None = rng.choices(districts, cum_weights=dist_cum)[0]
        if rng.random() < cat.named:
            if rng.random() < 0.85:
                c = companies[bisect.bisect_left(ent_cum, rng.random() * ent_cum[-1])]
                enterprise_id, enterprise, district = c.id, c.name, c.district
            else:
                enterprise = rng.choice(unregistered)
        if cat.name in ("法律咨询", "其他") and rng.random() < 0.5:
            workers = None
        elif rng.random() < 0.8 or not sizes:
            workers = 1
        else:
            workers = rng.choices(sizes, weights=size_w)[0]
        calls.append(Call(clock.at(day), cat.name, enterprise_id, enterprise, _district(rng, district),
                          _occupation(rng, cat.occupations), workers, _amount(rng, cat.name, workers)))
    return calls


def _episode_a(rng: random.Random, clock: Clock, ep: Episode, c: Company) -> list[Call]:
    """An enterprise stops paying ~30 workers: 6–15 of them call over ~10 days, most in the first days."""
    start = rng.randint(20, DAYS - 25)
    affected = rng.randint(20, 40)
    wage, months = _wage(rng), rng.randint(1, 3)
    occupations = rng.sample(CATEGORIES[0].occupations, 2)
    calls = []
    first = clock.at(clock.workday(start, stay=1.0))
    for k in range(rng.randint(6, 15)):
        at = first if k == 0 else clock.at(clock.workday(start + int(10 * rng.random() ** 2)))
        if at <= first:
            at = first + timedelta(minutes=rng.randint(10, 240))
        r = rng.random()
        workers = 1 if r < 0.55 else rng.randint(2, 9) if r < 0.8 else rng.randint(10, min(30, affected))
        category = rng.choices((ARREARS, "劳动合同", "社会保险"), weights=(90, 5, 5))[0]
        amount = int(round(workers * wage * months * rng.uniform(0.8, 1.2), -2)) if rng.random() < 0.85 else None
        eid, name = _named(rng, c)
        calls.append(Call(at, category, eid, name, _district(rng, c.district), _occupation(rng, occupations, 0.7),
                          workers, amount if category == ARREARS else None, ep.id))
    return calls


def _episode_b(rng: random.Random, clock: Clock, ep: Episode, agency: Company, users: list[Company],
               district: str) -> list[Call]:
    """A dispatch agency collapses: its workers at several enterprises of one district call within days."""
    start = rng.randint(20, DAYS - 15)
    span = rng.randint(2, 5)
    calls = []
    first = clock.at(clock.workday(start, stay=1.0))
    for k in range(rng.randint(12, 25)):
        at = first if k == 0 else clock.at(clock.workday(start + int(span * rng.random() ** 1.5)))
        if at <= first:
            at = first + timedelta(minutes=rng.randint(5, 180))
        category = DISPATCH if rng.random() < 0.85 else ARREARS
        r = rng.random()
        eid, name = _named(rng, agency) if r < 0.4 else _named(rng, rng.choice(users)) if r < 0.9 else (None, None)
        workers = 1 if rng.random() < 0.6 else rng.randint(2, 8)
        amount = int(round(workers * _wage(rng) * rng.uniform(0.5, 2), -2)) if rng.random() < 0.5 else None
        calls.append(Call(at, category, eid, name, district if rng.random() < 0.95 else None,
                          _occupation(rng, DISPATCH_OCCUPATIONS, 0.7), workers, amount, ep.id))
    return calls


def _episode_d(rng: random.Random, clock: Clock, ep: Episode, c: Company) -> list[Call]:
    """A small burst: 4–5 arrears calls about one enterprise within 3 days."""
    start = rng.randint(20, DAYS - 10)
    first = clock.at(clock.workday(start, stay=1.0))
    wage = _wage(rng)
    calls = []
    for k in range(rng.randint(4, 5)):
        at = first if k == 0 else clock.at(start + rng.randrange(3))
        if at <= first:
            at = first + timedelta(minutes=rng.randint(10, 300))
        workers = rng.choice((1, 1, 1, 2, 3))
        amount = round(workers * wage * rng.randint(1, 3), -2) if rng.random() < 0.85 else None
        eid, name = _named(rng, c)
        calls.append(Call(at, ARREARS, eid, name, _district(rng, c.district),
                          _occupation(rng, CATEGORIES[0].occupations), workers, amount, ep.id))
    return calls


def _episode_c(rng: random.Random, clock: Clock, ep: Episode, c: Company) -> list[Call]:
    """A slow trickle: one call every 2–4 weeks for 4–8 months, nothing else about the enterprise."""
    day = rng.randint(0, 150)
    until = min(DAYS - 1, day + 30 * rng.randint(4, 8))
    calls = []
    while day <= until:
        category = rng.choices((ARREARS, "劳动合同", "社会保险"), weights=(60, 25, 15))[0]
        workers = 1 if rng.random() < 0.85 else rng.randint(2, 3)
        eid, name = _named(rng, c, linked=0.95, short=0.05)
        calls.append(Call(clock.at(clock.workday(day)), category, eid, name, _district(rng, c.district),
                          _occupation(rng, CATEGORIES[0].occupations), workers,
                          _amount(rng, category, workers), ep.id))
        day += rng.randint(14, 28)
    return calls


def generate(*, cases: int, enterprises: int, seed: int, episodes: int = 25, trickles: int = 8,
             group_workers: int = 10) -> Year:
    """The year: ``cases`` calls in all (background + episodes), ``enterprises`` registered, pure and seeded.
    ``episodes`` of kinds A/B/D (about 4:2:4) and ``trickles`` of kind C."""
    rng = random.Random(seed)
    companies = _companies(rng, enterprises)
    weights = [rng.lognormvariate(0.0, 1.0) for _ in companies]  # popularity: heavy-tailed
    clock = Clock(rng)
    n_b = round(episodes * 0.2)
    n_a = round(episodes * 0.4)
    n_d = episodes - n_a - n_b
    order = list(range(len(companies)))
    rng.shuffle(order)
    picked = iter(order)
    by_district: dict[str, list[Company]] = defaultdict(list)
    for c in companies:
        by_district[c.district].append(c)
    taken: set[int] = set()
    eps: list[Episode] = []
    calls: list[Call] = []

    def take() -> Company:
        c = companies[next(picked)]
        while c.id in taken:
            c = companies[next(picked)]
        taken.add(c.id)
        return c

    for i in range(trickles):
        c = take()
        weights[c.id - 1] = 0.0  # no other traffic: the trickle is all there is
        ep = Episode(f"C{i + 1:02d}", "C", c.name, c.id, c.district)
        eps.append(ep)
        calls += _episode_c(rng, clock, ep, c)
    for i in range(n_a):
        c = take()
        ep = Episode(f"A{i + 1:02d}", "A", c.name, c.id, c.district)
        eps.append(ep)
        calls += _episode_a(rng, clock, ep, c)
    dist_cum = _cum([w for _, w in DISTRICTS])
    for i in range(n_b):
        district = rng.choices([d for d, _ in DISTRICTS], cum_weights=dist_cum)[0]
        local = [c for c in by_district[district] if c.id not in taken]
        chosen = rng.sample(local, min(len(local), rng.randint(4, 7)))
        taken.update(c.id for c in chosen)
        agency, users = chosen[0], chosen[1:] or chosen
        ep = Episode(f"B{i + 1:02d}", "B", f"{district} × {DISPATCH}（{agency.name}）", agency.id, district)
        eps.append(ep)
        calls += _episode_b(rng, clock, ep, agency, users, district)
    for i in range(n_d):
        c = take()
        ep = Episode(f"D{i + 1:02d}", "D", c.name, c.id, c.district)
        eps.append(ep)
        calls += _episode_d(rng, clock, ep, c)
    if len(calls) > cases:
        raise ValueError(f"{len(calls)} episode calls do not fit in {cases} cases")

    reg_names = {c.name for c in companies} | {c.short for c in companies}
    from app.bench.enterprises import Registry

    reg = Registry(rng)
    unregistered: list[str] = []
    while len(unregistered) < max(1, enterprises // 2):
        full = reg.make().full
        if full not in reg_names:
            reg_names.add(full)
            unregistered.append(full)
    calls += _background(rng, cases - len(calls), companies, weights, unregistered, group_workers)

    calls.sort(key=lambda c: c.at)
    numbers = rng.sample(range(10**8), len(calls))  # a number of its own for each call
    by_id = {ep.id: ep for ep in eps}
    for i, call in enumerate(calls):
        call.id = i + 1
        if call.episode is not None or rng.random() >= NO_PHONE:
            call.phone = f"{rng.choice(PHONE_PREFIXES)}{numbers[i]:08d}"
        if call.episode is not None:
            by_id[call.episode].case_ids.append(call.id)
            by_id[call.episode].times.append(call.at)
    return Year(seed, companies, calls, eps, group_workers)


# --- loading --------------------------------------------------------------------------------------------


def _status(at: datetime, rng: random.Random) -> str:
    age = (END - at).days
    if age > 30:
        return CaseStatus.closed.value
    return rng.choice(STATUSES)


def _case_row(call: Call, year: Year, rng: random.Random) -> dict[str, Any]:
    name = call.enterprise or ""
    summary = f"{call.district or ''}{name}{call.category}：{call.workers or 1} 人" + (
        f"，{call.amount} 元" if call.amount else "")
    return {
        "id": call.id, "case_no": f"12351-{YEAR}-{call.id:06d}", "status": _status(call.at, rng), "channel": "来电",
        "recording_id": call.id, "category": call.category, "category_confidence": 0.8,
        "category_evidence": [], "enterprise": call.enterprise, "enterprise_id": call.enterprise_id,
        "district": call.district, "summary": summary, "created_by": f"agent{call.id % 20 + 1:02d}",
        "created_at": call.at, "updated_at": call.at, "occupation": call.occupation,
        "gender": rng.choice(("男", "女", None)), "age_bracket": rng.choice(("18-25", "26-35", "36-45", "46-55", None)),
        "enterprise_type": "民营" if call.enterprise else None,
        "arrears_type": "工资" if call.category == ARREARS else None, "workers": call.workers,
        "amount": call.amount, "caller_phone": call.phone,
        "group_case": call.workers is not None and call.workers >= year.group_workers,
        "extracted": {}, "suggested": {}, "difficulty": "一般", "accepted_at": call.at,
        "feedback_due_at": call.at + timedelta(hours=24), "due_at": call.at + timedelta(days=5), "escalated": False,
    }  # the columns left out stay NULL (transcript_id, locked_fields, confirmed_*, unit, assignee, closed_at …)


def _recording_row(call: Call) -> dict[str, Any]:
    return {
        "id": call.id, "sha256": f"{call.id:064x}", "path": f"bench/{call.id}.wav",
        "original_name": f"{call.id}.wav", "size_bytes": 0, "format": "wav", "codec": "pcm_mulaw",
        "sample_rate": 8000, "channels": 2, "duration": 120.0, "layout": "caller-left", "channel": "来电",
        "status": "done", "attempts": 1, "uploaded_by": "bench", "created_at": call.at, "storage": "local",
    }


def _default(column: Any) -> Any:
    """A column's Python-side scalar default (compiled inserts name every column that has one)."""
    default = column.default
    return getattr(default, "arg", None) if default is not None and default.is_scalar else None


def _insert(conn: sa.Connection, model: type[Base], rows: list[dict[str, Any]]) -> None:
    """``INSERT`` of ``rows`` (all with the same keys). On SQLite the statement is compiled once and each value
    goes through its column type's bind processor straight into the driver's executemany: the same values
    SQLAlchemy would send, without its per-row bookkeeping (most of the load time at 100,000 rows)."""
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(sa.insert(model), rows)
        return
    columns = model.__table__.c
    keys = list(rows[0])
    compiled = sa.insert(model).values({k: sa.bindparam(k) for k in keys}).compile(
        dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    order = compiled.positiontup or keys
    procs = [columns[k].type.dialect_impl(conn.dialect).bind_processor(conn.dialect) for k in order]
    params = [tuple(v if proc is None or v is None else proc(v) for proc, v in
                    zip(procs, (row[k] if k in row else _default(columns[k]) for k in order), strict=True))
              for row in rows]
    conn.exec_driver_sql(str(compiled), params)


def load(database: Database, year: Year, *, batch: int = BATCH) -> None:
    """Enterprises, then recordings and cases in batches of ``batch`` with Core executemany."""
    rng = random.Random(year.seed + 1)
    with database.engine.begin() as conn:
        for first in range(0, len(year.companies), batch):
            _insert(conn, Enterprise, [
                {"id": c.id, "name": c.name, "credit_code": None, "district": c.district, "address": "",
                 "industry": "", "enterprise_type": "民营", "created_at": START, "updated_at": START}
                for c in year.companies[first:first + batch]])
    for first in range(0, len(year.calls), batch):
        chunk = year.calls[first:first + batch]
        with database.engine.begin() as conn:
            _insert(conn, Recording, [_recording_row(c) for c in chunk])
            _insert(conn, Case, [_case_row(c, year, rng) for c in chunk])
    if database.dialect == "postgresql":
        with database.engine.begin() as conn:
            for table in ("enterprises", "recordings", "cases"):  # ids were given: move the sequences past them
                conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                                     f" (SELECT max(id) FROM {table}))"))
            conn.execute(sa.text("ANALYZE"))  # what autovacuum would soon do; the app never ANALYZEs SQLite


# --- measuring ------------------------------------------------------------------------------------------


class PeakRss:
    """The process's peak resident memory over its value at the start, sampled every 10 ms."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.start = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self) -> PeakRss:
        gc.collect()
        self.start = self.peak = self.proc.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)

    @property
    def delta_mib(self) -> float:
        return (self.peak - self.start) / 2**20


@dataclass
class EpisodeResult:
    id: str
    kind: str
    subject: str
    calls: int
    first_at: datetime
    second_at: datetime | None
    warning_id: int | None = None
    rule: str | None = None
    grade: str | None = None
    group_key: str | None = None
    raised_at: datetime | None = None
    earlier_warning: int | None = None  # its cases joined a warning raised before its first call
    on_key: int = 0  # its calls on its own key: linked to its enterprise (A, C, D), its district × 劳务派遣 (B)
    swept: bool = False  # the warning was raised without any of its calls, which were attached to it later

    @property
    def detected(self) -> bool:
        return self.raised_at is not None

    @property
    def from_first_h(self) -> float | None:
        return None if self.raised_at is None else (self.raised_at - self.first_at).total_seconds() / 3600

    @property
    def from_second_h(self) -> float | None:
        if self.raised_at is None or self.second_at is None:
            return None
        return (self.raised_at - self.second_at).total_seconds() / 3600

    @property
    def within_day(self) -> bool:
        h = self.from_second_h
        return h is not None and h <= 24.0


@dataclass
class FalseWarning:
    id: int
    rule: str
    grade: str
    group_key: str
    subject: str
    raised_at: datetime
    cases: int  # by the end of the year (cases attach while the window still meets the rule)
    raised_cases: int  # the window it was raised on
    trickle: bool  # holds a trickle enterprise's case
    reason: str
    swept: bool = False  # raised on background cases alone; an episode's cases were attached to it later


@dataclass
class Detection:
    episodes: list[EpisodeResult]
    trickles: list[EpisodeResult]  # detected = warned (should be none)
    false: list[FalseWarning]  # none of their cases in an A/B/D episode
    swept: list[FalseWarning]  # raised on background alone, an episode's cases attached later
    warnings: int
    horizon_days: int

    @property
    def recall(self) -> float:
        return sum(e.detected for e in self.episodes) / max(1, len(self.episodes))

    @property
    def within_day(self) -> float:
        return sum(e.within_day for e in self.episodes) / max(1, len(self.episodes))

    @property
    def false_per_month(self) -> float:
        return len(self.false) / 12


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def detect(database: Database, year: Year) -> Detection:
    with database.session() as db:
        rules = {r.id: r for r in db.scalars(sa.select(WarningRule))}
        warnings = list(db.execute(sa.select(EarlyWarning.id, EarlyWarning.rule_id, EarlyWarning.grade,
                                             EarlyWarning.group_key, EarlyWarning.subject, EarlyWarning.raised_at,
                                             EarlyWarning.reason)))
        links = list(db.execute(sa.select(WarningCase.warning_id, WarningCase.case_id, WarningCase.attached_at)))
    horizon = max((r.window_days for r in rules.values() if r.active), default=30)
    raised_of = {w.id: _as_utc(w.raised_at) for w in warnings}
    cases_of: dict[int, set[int]] = defaultdict(set)
    raised_with: dict[int, set[int]] = defaultdict(set)  # the window that raised it (attached as it was raised)
    for wid, cid, attached in links:
        cases_of[wid].add(cid)
        if abs((_as_utc(attached) - raised_of[wid]).total_seconds()) < 1:
            raised_with[wid].add(cid)
    episode_of = {cid: ep for ep in year.episodes for cid in ep.case_ids}
    results: list[EpisodeResult] = []
    trickles: list[EpisodeResult] = []
    ordered = sorted(warnings, key=lambda w: _as_utc(w.raised_at))
    for ep in year.episodes:
        first, last = ep.times[0], ep.times[-1]
        res = EpisodeResult(ep.id, ep.kind, ep.subject, len(ep.case_ids), first,
                            ep.times[1] if len(ep.times) > 1 else None, on_key=_on_key(year, ep))
        mine = set(ep.case_ids)
        for w in ordered:
            raised = _as_utc(w.raised_at)
            on_trickle = not ep.positive and w.group_key == f"enterprise:{ep.enterprise_id}"
            touches = bool(cases_of[w.id] & mine) or on_trickle
            if not touches:
                continue
            if ep.positive and raised < first:
                res.earlier_warning = res.earlier_warning or w.id
                continue
            if ep.positive and raised > last + timedelta(days=horizon):
                continue
            res.warning_id, res.raised_at, res.group_key = w.id, raised, w.group_key
            res.grade, res.rule = w.grade, rules[w.rule_id].name if w.rule_id in rules else str(w.rule_id)
            res.swept = not raised_with[w.id] & mine
            break
        (results if ep.positive else trickles).append(res)
    false: list[FalseWarning] = []
    swept: list[FalseWarning] = []
    for w in ordered:
        kinds = {episode_of[c].kind for c in cases_of[w.id] if c in episode_of}
        raised_kinds = {episode_of[c].kind for c in raised_with[w.id] if c in episode_of}
        if raised_kinds - {"C"}:
            continue
        f = FalseWarning(w.id, rules[w.rule_id].name if w.rule_id in rules else str(w.rule_id), w.grade, w.group_key,
                         w.subject, _as_utc(w.raised_at), len(cases_of[w.id]), len(raised_with[w.id]), "C" in kinds,
                         w.reason,
                         swept=bool(kinds - {"C"}))
        (swept if f.swept else false).append(f)
    return Detection(results, trickles, false, swept, len(warnings), horizon)


def _on_key(year: Year, ep: Episode) -> int:
    calls = [year.calls[i - 1] for i in ep.case_ids]
    if ep.kind == "B":
        return sum(c.district == ep.district and c.category == DISPATCH for c in calls)
    return sum(c.enterprise_id == ep.enterprise_id for c in calls)


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class BackendResult:
    backend: str
    cases: int
    load_s: float
    evaluate_s: float
    evaluate_cpu_s: float  # this process's CPU time: what the figure is on an idle machine (not the server's)
    evaluate_rss_mib: float
    raised: int
    attached: int
    again_s: float
    again_raised: int
    incremental_ms: list[float]
    incremental_raised: int
    warnings: int
    detection: Detection


Evaluator = Callable[..., Any]


@dataclass
class Engine:
    """The engine's three entry points (app/warnings/service.py), passed in so a test can stand in for it."""

    seed_rules: Evaluator
    evaluate_all: Evaluator
    evaluate_case: Evaluator


def engine() -> Engine:
    from app.warnings import service

    return Engine(service.seed_rules, service.evaluate_all, service.evaluate_case)


def _count(database: Database) -> int:
    with database.session() as db:
        return int(db.scalar(sa.select(sa.func.count()).select_from(EarlyWarning)) or 0)


def measure(database: Database, settings: Settings, year: Year, *, incremental: int = 300,
            eng: Engine | None = None, progress: Callable[[str], None] = lambda _: None) -> BackendResult:
    """Load the year into a fresh migrated ``database`` and measure the engine on it."""
    eng = eng or engine()
    began = time.perf_counter()
    load(database, year)
    load_s = time.perf_counter() - began
    progress(f"{database.dialect}: {len(year.calls)} cases loaded in {load_s:.1f} s")
    with database.session() as db:
        eng.seed_rules(db=db)
    with PeakRss() as rss:
        began, cpu = time.perf_counter(), time.process_time()
        with database.session() as db:
            first = eng.evaluate_all(db=db, settings=settings, now=END)
        evaluate_s, evaluate_cpu_s = time.perf_counter() - began, time.process_time() - cpu
    progress(f"{database.dialect}: full evaluation {evaluate_s:.1f} s, {first.raised} raised")
    began = time.perf_counter()
    with database.session() as db:
        again = eng.evaluate_all(db=db, settings=settings, now=END)
    again_s = time.perf_counter() - began
    before = _count(database)
    # as the worker files them: consecutive cases in time order, each evaluated at its own time (the peers' rates
    # are worked out at the first case of each day and kept for the day)
    ordered = sorted(range(len(year.calls)), key=lambda i: year.calls[i].at)
    start = random.Random(year.seed + 2).randrange(max(1, len(ordered) - incremental))
    sample = ordered[start:start + incremental]
    ms: list[float] = []
    for i in sample:
        call = year.calls[i]
        began = time.perf_counter()
        with database.session() as db:
            eng.evaluate_case(db=db, settings=settings, case_id=call.id, now=call.at)
        ms.append((time.perf_counter() - began) * 1000)
    after = _count(database)
    return BackendResult(database.dialect, len(year.calls), load_s, evaluate_s, evaluate_cpu_s, rss.delta_mib,
                         first.raised,
                         first.attached, again_s, again.raised, ms, after - before, after, detect(database, year))


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[tuple[Database, Settings]]:
    """A database of its own (``hotline_bench_warnings``) on the server of ``admin_url``, dropped after."""
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    url = sa.engine.make_url(admin_url).set(database=PG_DATABASE).render_as_string(hide_password=False)

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)"))

    drop()
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {PG_DATABASE}"))
    try:
        with tempfile.TemporaryDirectory(prefix="hotline-bench-warnings-") as tmp:
            settings = Settings(data_dir=Path(tmp) / "var", database_url=url, redis_url=None)
            settings.ensure_dirs()
            database = Database(url)
            try:
                database.upgrade()
                yield database, settings
            finally:
                database.dispose()
    finally:
        drop()
        admin.dispose()


# --- report ---------------------------------------------------------------------------------------------


def describe(year: Year) -> dict[str, Any]:
    background = [c for c in year.calls if c.episode is None]
    per_enterprise = Counter(c.enterprise_id for c in background if c.enterprise_id is not None)
    counts = [per_enterprise.get(c.id, 0) for c in year.companies]
    cats = Counter(c.category for c in background)
    weekend = sum(c.at.astimezone(TZ).weekday() >= 5 for c in background)
    office = sum(8 <= c.at.astimezone(TZ).hour < 18 for c in background)
    kinds = Counter(ep.kind for ep in year.episodes)
    return {
        "cases": len(year.calls), "background": len(background), "episode_cases": len(year.calls) - len(background),
        "enterprises": len(year.companies),
        "categories": {k: round(v / max(1, len(background)), 3) for k, v in cats.most_common()},
        "enterprise_cases": {"0": sum(n == 0 for n in counts), "1-3": sum(1 <= n <= 3 for n in counts),
                             "4-10": sum(4 <= n <= 10 for n in counts), "11-30": sum(11 <= n <= 30 for n in counts),
                             ">30": sum(n > 30 for n in counts), "max": max(counts, default=0)},
        "linked": round(sum(c.enterprise_id is not None for c in background) / max(1, len(background)), 3),
        "weekend": round(weekend / max(1, len(background)), 3),
        "office_hours": round(office / max(1, len(background)), 3),
        "background_group_cases": sum(c.workers is not None and c.workers >= year.group_workers for c in background),
        "episodes": {k: kinds.get(k, 0) for k in KINDS},
    }


def _h(hours: float | None) -> str:
    if hours is None:
        return "—"
    return f"{hours / 24:.1f} d" if abs(hours) >= 48 else f"{hours:.1f} h"


def _local(at: datetime | None) -> str:
    return at.astimezone(TZ).strftime("%m-%d %H:%M") if at else "—"


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def print_report(year: Year, info: dict[str, Any], results: list[BackendResult], gen_s: float) -> None:
    print(f"hotline bench warnings — {info['cases']} cases ({info['background']} background + "
          f"{info['episode_cases']} in {len(year.episodes)} episodes), {info['enterprises']} enterprises, "
          f"seed {year.seed}, year {YEAR} (Asia/Shanghai), generated in {gen_s:.1f} s")
    print("  categories (background): " + "  ".join(f"{k} {v:.1%}" for k, v in info["categories"].items()))
    ec = info["enterprise_cases"]
    print(f"  registered enterprises by background cases a year: 0: {ec['0']}  1–3: {ec['1-3']}  4–10: {ec['4-10']}  "
          f"11–30: {ec['11-30']}  >30: {ec['>30']}  (max {ec['max']}); linked to the registry {info['linked']:.0%}")
    print(f"  weekend share {info['weekend']:.1%}, 08–18 h share {info['office_hours']:.1%}, "
          f"background group cases {info['background_group_cases']}")
    print("  episodes: " + ", ".join(f"{info['episodes'][k]} {k} ({v})" for k, v in KINDS.items()))
    print()
    print(f"  {'backend':<11}{'load':>8}{'full eval':>11}{'(CPU)':>8}{'peak RSS':>11}{'raised':>8}{'2nd eval':>10}"
          f"{'2nd raised':>11}{'incr p50':>10}{'p95':>9}{'max':>9}{'incr raised':>12}")
    for r in results:
        print(f"  {r.backend:<11}{r.load_s:>7.1f}s{r.evaluate_s:>10.1f}s{r.evaluate_cpu_s:>7.1f}s"
              f"{r.evaluate_rss_mib:>7.0f} MiB{r.raised:>8}"
              f"{r.again_s:>9.1f}s{r.again_raised:>11}{_pct(r.incremental_ms, 0.5):>8.1f}ms"
              f"{_pct(r.incremental_ms, 0.95):>7.1f}ms{max(r.incremental_ms):>7.1f}ms{r.incremental_raised:>12}")
    print(f"  (full eval: wall time, and this process's CPU time in brackets; peak RSS over the start. incremental:"
          f" evaluate_case on {len(results[0].incremental_ms)} consecutive cases of the loaded year, in time order"
          f" as the worker files them, each at its own time and in its own transaction; 2nd eval / incr raised"
          f" must be 0; load average {os.getloadavg()[0]:.1f} on"
          f" {os.cpu_count()} cores)")
    for r in results:
        _print_detection(r)
    if len(results) > 1:
        a, b = (_signature(r.detection) for r in results)
        print(f"\ndetection identical on {results[0].backend} and {results[1].backend}: {'yes' if a == b else 'NO'}")


def _signature(d: Detection) -> list[Any]:
    return [(e.id, e.raised_at, e.grade, e.group_key) for e in d.episodes + d.trickles] + [len(d.false),
                                                                                          len(d.swept)]


def _print_detection(r: BackendResult) -> None:
    d = r.detection
    print(f"\ndetection on {r.backend}: {d.warnings} warnings in all; an episode is detected by the first warning "
          f"holding one of its calls, raised from its first call to {d.horizon_days} days after its last")
    print(f"  {'ep':<4}{'calls':>5}{'on key':>7}  {'first call':<12}{'2nd call':<12}{'raised':<12}{'grade':<6}"
          f"{'after 1st':>10}{'after 2nd':>10}  {'≤1d':<4}{'rule':<14}subject")
    for e in d.episodes:
        mark = ("✓" if e.within_day else "✗") if e.detected else "✗"
        extra = f"  (joined warning #{e.earlier_warning} raised before)" if e.earlier_warning and not e.detected else ""
        rule = (e.rule or "") + ("*" if e.swept else "")
        print(f"  {e.id:<4}{e.calls:>5}{e.on_key:>7}  {_local(e.first_at):<12}{_local(e.second_at):<12}"
              f"{_local(e.raised_at) if e.detected else 'MISSED':<12}{e.grade or '':<6}{_h(e.from_first_h):>10}"
              f"{_h(e.from_second_h):>10}  {mark:<4}{_cut(rule, 13):<14}{_cut(e.subject, 40)}{extra}")
    print("  (on key: its calls linked to its enterprise — A, D — or in its district as 劳务派遣 — B; the others named "
          "it by a short name, or not at all, or gave no district. *: a warning raised before its calls were in it)")
    detected = [e for e in d.episodes if e.detected]
    n = len(d.episodes)
    print(f"  recall {len(detected)}/{n} ({d.recall:.0%})", end="")
    for kind in ("A", "B", "D"):
        of = [e for e in d.episodes if e.kind == kind]
        if of:
            print(f"  [{kind} {sum(e.detected for e in of)}/{len(of)}]", end="")
    print()
    if detected:
        firsts = [e.from_first_h or 0.0 for e in detected]
        seconds = [e.from_second_h for e in detected if e.from_second_h is not None]
        print(f"  delay after the first call: median {_h(statistics.median(firsts))}, max {_h(max(firsts))}; "
              f"after the second: median {_h(statistics.median(seconds) if seconds else None)}, "
              f"max {_h(max(seconds) if seconds else None)}")
    print(f"  within one day of the second call: {sum(e.within_day for e in d.episodes)}/{n} ({d.within_day:.0%}; "
          f"target ≥ 90%)")
    every = d.false + d.swept
    print(f"  false warnings: {len(d.false)} = {d.false_per_month:.1f} a month (target ≤ 2): none of their cases in an "
          f"episode; and {len(d.swept)} more raised on background cases alone that took in an episode's calls later "
          f"(together {len(every) / 12:.1f} a month)")
    if every:
        by_rule = Counter(f"{f.rule} {f.grade}" for f in every)
        print("    by rule and grade: " + ", ".join(f"{k} {v}" for k, v in by_rule.most_common()))
        by_month = Counter(f.raised_at.astimezone(TZ).month for f in every)
        print("    by month: " + " ".join(f"{m}月 {by_month.get(m, 0)}" for m in range(1, 13)))
        for f in sorted(every, key=lambda f: f.raised_at)[:30]:
            print(f"    #{f.id:<5}{_local(f.raised_at)}  {f.grade} {_cut(f.rule, 12):<13}"
                  f"{f.raised_cases:>3} cases ({f.cases} by the end){' *' if f.swept else ''}  {_cut(f.reason, 90)}")
    warned = [t for t in d.trickles if t.detected]
    print(f"  trickle enterprises warned: {len(warned)}/{len(d.trickles)} (target 0)"
          + "".join(f"\n    {t.id} {t.calls} calls, warned {_local(t.raised_at)} {t.grade} by {t.rule}: {t.subject}"
                    for t in warned))


def as_dict(year: Year, info: dict[str, Any], results: list[BackendResult], gen_s: float) -> dict[str, Any]:
    def iso(at: datetime | None) -> str | None:
        return at.isoformat() if at else None

    out: dict[str, Any] = {"seed": year.seed, "generated_s": round(gen_s, 2), "year": info, "backends": []}
    for r in results:
        d = r.detection
        out["backends"].append({
            "backend": r.backend, "cases": r.cases, "load_s": round(r.load_s, 2),
            "evaluate_s": round(r.evaluate_s, 2), "evaluate_cpu_s": round(r.evaluate_cpu_s, 2),
            "evaluate_peak_rss_mib": round(r.evaluate_rss_mib, 1),
            "raised": r.raised, "attached": r.attached,
            "second_evaluate_s": round(r.again_s, 2), "second_raised": r.again_raised,
            "incremental": {"n": len(r.incremental_ms), "p50_ms": round(_pct(r.incremental_ms, 0.5), 2),
                            "p95_ms": round(_pct(r.incremental_ms, 0.95), 2),
                            "max_ms": round(max(r.incremental_ms), 2), "raised": r.incremental_raised},
            "warnings": r.warnings, "recall": round(d.recall, 3), "within_one_day_of_second": round(d.within_day, 3),
            "false_warnings": len(d.false), "false_per_month": round(d.false_per_month, 2),
            "trickles_warned": sum(t.detected for t in d.trickles),
            "episodes": [{"id": e.id, "kind": e.kind, "subject": e.subject, "calls": e.calls,
                          "first_at": iso(e.first_at), "second_at": iso(e.second_at), "detected": e.detected,
                          "raised_at": iso(e.raised_at), "warning_id": e.warning_id, "rule": e.rule,
                          "grade": e.grade, "group_key": e.group_key,
                          "hours_after_first": e.from_first_h, "hours_after_second": e.from_second_h,
                          "earlier_warning": e.earlier_warning, "on_key": e.on_key, "swept": e.swept}
                         for e in d.episodes + d.trickles],
            "swept_false": len(d.swept),
            "false": [{"id": f.id, "rule": f.rule, "grade": f.grade, "group_key": f.group_key,
                       "raised_at": iso(f.raised_at), "cases": f.cases, "raised_cases": f.raised_cases,
                       "trickle": f.trickle, "swept": f.swept, "reason": f.reason}
                      for f in d.false + d.swept],
        })
    return out


def run(*, cases: int = 100_000, enterprises: int = 20_000, seed: int = 12351, episodes: int = 25,
        trickles: int = 8, incremental: int = 300, postgres_url: str | None = None, as_json: bool = False,
        eng: Engine | None = None) -> list[BackendResult]:
    settings = Settings()
    began = time.perf_counter()
    year = generate(cases=cases, enterprises=enterprises, seed=seed, episodes=episodes, trickles=trickles,
                    group_workers=settings.group_case_workers)
    gen_s = time.perf_counter() - began
    info = describe(year)

    def say(line: str) -> None:
        if not as_json:
            print(f"  … {line}", flush=True)

    say(f"{len(year.calls)} cases generated in {gen_s:.1f} s")
    results = []
    with scratch_sqlite("warnings") as (database, s):
        results.append(measure(database, s, year, incremental=incremental, eng=eng, progress=say))
    if postgres_url:
        with postgres_database(postgres_url) as (database, s):
            results.append(measure(database, s, year, incremental=incremental, eng=eng, progress=say))
    if as_json:
        print(json.dumps(as_dict(year, info, results, gen_s), ensure_ascii=False, indent=1))
    else:
        print()
        print_report(year, info, results, gen_s)
    return results
