"""The monthly analysis of the 12351 hotline (月度分析报告): the month's figures from the database, then the report.

Cases count in the Beijing month they were filed (``created_at``, as in app/stats). 同比 compares with the same
month a year before, 环比 with the month before. Closure is measured as of the month's end (or now, for the
month in progress), so regenerating a past month later gives the same figures:

- 办结: closed by then; 按期办结: closed no later than its deadline (``due_at``); 按期办结率 = 按期办结 / 办结;
- 逾期: closed after its deadline, or still open past it then.

Hot topics: the largest categories (with their 环比) and the rising key terms of what callers said (caller
segments of the transcripts, else the case summary; see app/reports/terms.py), each with up to three example
calls, masked (phone and ID numbers) whoever reads the report. 回访 satisfaction is not recorded yet: 未记录.
Warnings: raised in the month by grade, closed in the month, amounts recovered and workers covered by them."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.auth.permissions import Masking
from app.cases.extract import DISTRICTS
from app.cases.models import Case
from app.db import utcnow
from app.reports import charts, periods, terms
from app.reports.document import Document, Figure, Heading, Para, Table
from app.reports.models import TITLES, CaseTerms, ReportKind
from app.stats.models import Period
from app.stats.service import TZ, period_expr
from app.taxonomy.models import LexiconTerm
from app.transcripts.models import Segment
from app.warnings.models import EarlyWarning, Grade

ISSUER = "12351职工服务热线"
MASK = Masking(phones=True, ids=True)  # reports circulate: numbers masked for every reader
UNKNOWN_DISTRICT = "未注明"
OTHER = "其他"
HOT_CATEGORIES = 3
HOT_TERMS = 8
TERMS_WITH_EXAMPLES = 3
EXAMPLES = 3
EXCERPT = 40  # characters either side of a term in an example
CHUNK = 2000  # ids per IN (...) list and rows per INSERT
GRADES = [g.value for g in reversed(Grade)]  # 红 橙 黄 蓝


@dataclass(frozen=True)
class Totals:
    cases: int = 0
    workers: int = 0
    amount: int = 0  # whole yuan in dispute
    group_cases: int = 0
    closed: int = 0  # by the end of the period
    on_time: int = 0  # closed no later than the deadline
    overdue: int = 0  # closed late, or open past the deadline at the end of the period

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.closed if self.closed else None


@dataclass(frozen=True)
class DistrictRow:
    district: str
    totals: Totals
    previous: int  # cases the month before


@dataclass(frozen=True)
class Example:
    case_id: int
    case_no: str
    day: str  # 11月3日
    district: str
    text: str  # masked


@dataclass(frozen=True)
class HotCategory:
    category: str
    cases: int
    previous: int
    examples: list[Example]


@dataclass(frozen=True)
class HotTerm:
    change: terms.TermChange
    examples: list[Example]


@dataclass(frozen=True)
class WarningFigures:
    raised: dict[str, int]  # by grade
    closed: int
    amount_recovered: int
    workers_covered: int
    open_at_end: int

    @property
    def raised_total(self) -> int:
        return sum(self.raised.values())


@dataclass
class MonthlyFigures:
    month: str
    window: periods.Window
    as_of: datetime
    current: Totals
    previous: Totals  # the month before (环比)
    year_ago: Totals  # the same month a year before (同比)
    channels: list[tuple[str, int]]
    categories: list[tuple[str, int, int, int]]  # name, this month, month before, year before
    districts: list[DistrictRow]
    daily: list[tuple[str, int]]  # YYYY-MM-DD, cases
    hot_categories: list[HotCategory] = field(default_factory=list)
    hot_terms: list[HotTerm] = field(default_factory=list)
    warnings: WarningFigures | None = None

    def summary(self) -> dict[str, Any]:
        """Headline figures kept with the archived report."""
        assert self.warnings is not None
        return {
            "cases": self.current.cases, "cases_previous": self.previous.cases, "cases_year_ago": self.year_ago.cases,
            "mom": change(self.current.cases, self.previous.cases), "yoy": change(self.current.cases,
                                                                                  self.year_ago.cases),
            "workers": self.current.workers, "amount": self.current.amount, "group_cases": self.current.group_cases,
            "closed": self.current.closed, "overdue": self.current.overdue,
            "on_time_rate": None if self.current.on_time_rate is None else round(self.current.on_time_rate, 4),
            "warnings_raised": self.warnings.raised_total, "warnings_closed": self.warnings.closed,
            "amount_recovered": self.warnings.amount_recovered,
            "hot_terms": [t.change.term for t in self.hot_terms],
        }


# --- numbers as the report writes them ---------------------------------------------------------------------


def change(current: int, previous: int) -> float | None:
    """Relative change (0.125 = +12.5%); None when there is nothing to compare with."""
    return None if previous == 0 else round((current - previous) / previous, 6)


def fmt_change(current: int, previous: int) -> str:
    c = change(current, previous)
    return "—" if c is None else f"{c * 100:+.1f}%"


def say_change(word: str, current: int, previous: int) -> str:
    """同比增长12.5% / 环比下降3.0% / 同比持平 / 去年同期无数据."""
    c = change(current, previous)
    if c is None:
        return f"{word}无可比数据（上期为0）"
    if c == 0:
        return f"{word}持平"
    return f"{word}{'增长' if c > 0 else '下降'}{abs(c) * 100:.1f}%"


def fmt_int(n: int) -> str:
    return f"{n:,}"


def fmt_share(part: int, whole: int) -> str:
    return "—" if whole == 0 else f"{part / whole * 100:.1f}%"


def fmt_rate(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def fmt_wan(yuan: int) -> str:
    return f"{yuan / 10000:,.2f}万元"


# --- figures from the database -------------------------------------------------------------------------------


def _count_if(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def _in(window: periods.Window) -> list[sa.ColumnElement[bool]]:
    return [Case.created_at >= window.start, Case.created_at < window.end]


def _totals_columns(as_of: datetime) -> list[sa.ColumnElement[Any]]:
    closed = sa.and_(Case.closed_at.is_not(None), Case.closed_at <= as_of)
    late = sa.and_(closed, Case.due_at.is_not(None), Case.closed_at > Case.due_at)
    open_past = sa.and_(sa.not_(closed), Case.due_at.is_not(None), Case.due_at < as_of)
    return [
        sa.func.count(Case.id).label("cases"),
        sa.func.coalesce(sa.func.sum(Case.workers), 0).label("workers"),
        sa.func.coalesce(sa.func.sum(Case.amount), 0).label("amount"),
        _count_if(Case.group_case.is_(True)).label("group_cases"),
        _count_if(closed).label("closed"),
        _count_if(sa.and_(closed, sa.or_(Case.due_at.is_(None), Case.closed_at <= Case.due_at))).label("on_time"),
        _count_if(sa.or_(late, open_past)).label("overdue"),
    ]


def _totals(row: Any) -> Totals:
    return Totals(cases=int(row.cases), workers=int(row.workers), amount=int(row.amount),
                  group_cases=int(row.group_cases), closed=int(row.closed), on_time=int(row.on_time),
                  overdue=int(row.overdue))


def totals(*, db: Session, window: periods.Window, as_of: datetime) -> Totals:
    return _totals(db.execute(sa.select(*_totals_columns(as_of)).where(*_in(window))).one())


def _grouped(db: Session, column: Any, window: periods.Window) -> dict[str | None, int]:
    rows = db.execute(sa.select(column, sa.func.count(Case.id)).where(*_in(window)).group_by(column))
    return {key: int(n) for key, n in rows}


def _districts(db: Session, window: periods.Window, previous: periods.Window, as_of: datetime) -> list[DistrictRow]:
    stmt = sa.select(Case.district.label("district"), *_totals_columns(as_of)).where(*_in(window)) \
        .group_by(Case.district)
    now = {row.district: _totals(row) for row in db.execute(stmt)}
    before = _grouped(db, Case.district, previous)
    names = [*DISTRICTS, *sorted(k for k in set(now) | set(before) if k is not None and k not in DISTRICTS)]
    rows = [DistrictRow(name, now.get(name, Totals()), before.get(name, 0)) for name in names]
    if None in now or None in before:
        rows.append(DistrictRow(UNKNOWN_DISTRICT, now.get(None, Totals()), before.get(None, 0)))
    return rows


def _daily(db: Session, window: periods.Window) -> list[tuple[str, int]]:
    day = period_expr(db.get_bind().dialect.name, Period.day).label("day")
    counts = {d: int(n) for d, n in db.execute(
        sa.select(day, sa.func.count(Case.id)).where(*_in(window)).group_by(sa.text("day")))}
    return [(d.isoformat(), counts.get(d.isoformat(), 0)) for d in window.days()]


def texts(*, db: Session, window: periods.Window) -> dict[int, str]:
    """What callers said on each case of the period: its transcript's caller segments, else its summary."""
    out: dict[int, list[str]] = defaultdict(list)
    stmt = (sa.select(Case.id, Segment.text).join(Segment, Segment.transcript_id == Case.transcript_id)
            .where(*_in(window), Segment.speaker != "agent").order_by(Case.id, Segment.idx))
    for case_id, text in db.execute(stmt):
        out[case_id].append(text)
    for case_id, summary in db.execute(sa.select(Case.id, Case.summary).where(*_in(window)).order_by(Case.id)):
        if case_id not in out and summary:
            out[case_id].append(summary)
    return {k: "".join(v) for k, v in out.items()}


def vocabulary(*, db: Session) -> tuple[str, ...]:
    """The words jieba keeps whole: the built-in domain words and the lexicon table's."""
    return terms.domain_words(db.execute(sa.select(LexiconTerm.term).order_by(LexiconTerm.term)).scalars())


def case_terms(*, db: Session, texts_by_case: dict[int, str], words: tuple[str, ...]) -> dict[int, set[str]]:
    """Each case's key terms: kept ones where the text and the dictionary are unchanged, the others cut now and
    kept (report_case_terms). Cutting is the slow part of the report (jieba, ~250k characters a second)."""
    version = terms.version(words)
    digests = {cid: terms.digest(version, text) for cid, text in texts_by_case.items()}
    out: dict[int, set[str]] = {}
    ids = list(texts_by_case)
    for first in range(0, len(ids), CHUNK):
        chunk = ids[first:first + CHUNK]
        for cid, digest, found in db.execute(sa.select(CaseTerms.case_id, CaseTerms.digest, CaseTerms.terms)
                                             .where(CaseTerms.case_id.in_(chunk))):
            if digests[cid] == digest:
                out[cid] = set(found)
    fresh: list[dict[str, Any]] = []
    for cid in ids:
        if cid not in out:
            out[cid] = terms.terms_of(texts_by_case[cid], words)
            fresh.append({"case_id": cid, "digest": digests[cid], "terms": sorted(out[cid])})
    dialect = db.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(CaseTerms)
    upsert = insert.on_conflict_do_update(index_elements=[CaseTerms.case_id],
                                          set_={"digest": insert.excluded.digest, "terms": insert.excluded.terms})
    for first in range(0, len(fresh), CHUNK):
        db.execute(upsert, fresh[first:first + CHUNK])
    return out


def warm_terms(*, db: Session, window: periods.Window) -> int:
    """Cut and keep the key terms of the cases of ``window`` (the worker does yesterday's each morning, so the
    monthly report finds them ready); returns how many cases it looked at."""
    found = texts(db=db, window=window)
    case_terms(db=db, texts_by_case=found, words=vocabulary(db=db))
    return len(found)


def _excerpt(text: str, term: str | None) -> str:
    text = " ".join(text.split())
    at = text.find(term) if term else -1
    if at < 0:
        return MASK.text(text[:2 * EXCERPT] + ("…" if len(text) > 2 * EXCERPT else ""))
    start, end = max(0, at - EXCERPT), min(len(text), at + len(term or "") + EXCERPT)
    return MASK.text(("…" if start else "") + text[start:end] + ("…" if end < len(text) else ""))


def _examples(db: Session, case_ids: Sequence[int], texts_by_case: dict[int, str], term: str | None) -> list[Example]:
    if not case_ids:
        return []
    rows = db.execute(sa.select(Case.id, Case.case_no, Case.created_at, Case.district)
                      .where(Case.id.in_(list(case_ids)))).all()
    by_id = {r.id: r for r in rows}
    out = []
    for cid in case_ids:
        r = by_id[cid]
        d = periods.local_day(r.created_at)
        out.append(Example(cid, r.case_no, f"{d.month}月{d.day}日", r.district or UNKNOWN_DISTRICT,
                           _excerpt(texts_by_case.get(cid, ""), term)))
    return out


def _category_examples(db: Session, window: periods.Window, category: str,
                       texts_by_case: dict[int, str]) -> list[Example]:
    """The category's cases involving most workers, then most money, then the earliest."""
    ids = list(db.execute(sa.select(Case.id).where(*_in(window), Case.category == category)
                          .order_by(sa.func.coalesce(Case.workers, 0).desc(), sa.func.coalesce(Case.amount, 0).desc(),
                                    Case.id).limit(EXAMPLES)).scalars())
    return _examples(db, ids, texts_by_case, None)


def _warnings(db: Session, window: periods.Window, as_of: datetime) -> WarningFigures:
    raised = {g: int(n) for g, n in db.execute(
        sa.select(EarlyWarning.grade, sa.func.count(EarlyWarning.id))
        .where(EarlyWarning.raised_at >= window.start, EarlyWarning.raised_at < window.end)
        .group_by(EarlyWarning.grade))}
    closed = db.execute(sa.select(
        sa.func.count(EarlyWarning.id), sa.func.coalesce(sa.func.sum(EarlyWarning.amount_recovered), 0),
        sa.func.coalesce(sa.func.sum(EarlyWarning.workers_covered), 0))
        .where(EarlyWarning.closed_at >= window.start, EarlyWarning.closed_at < window.end)).one()
    open_at_end = db.execute(sa.select(sa.func.count(EarlyWarning.id)).where(
        EarlyWarning.raised_at < as_of,
        sa.or_(EarlyWarning.closed_at.is_(None), EarlyWarning.closed_at > as_of))).scalar_one()
    return WarningFigures(raised={g: raised.get(g, 0) for g in GRADES}, closed=int(closed[0] or 0),
                          amount_recovered=int(closed[1] or 0), workers_covered=int(closed[2] or 0),
                          open_at_end=int(open_at_end))


def figures(*, db: Session, month: str, now: datetime | None = None) -> MonthlyFigures:
    """Everything the monthly report says about ``month`` (YYYY-MM, Beijing)."""
    window = periods.month(month)
    now = now or utcnow()
    if window.start > now:
        raise periods.PeriodError(f"{periods.cn_month(month)}尚未开始")
    as_of = min(now, window.end)
    before = periods.month(periods.shift_months(month, -1))
    year_ago = periods.month(periods.shift_months(month, -12))
    cur = totals(db=db, window=window, as_of=as_of)
    prev = totals(db=db, window=before, as_of=before.end)
    ago = totals(db=db, window=year_ago, as_of=year_ago.end)
    channels = sorted(((k or "未注明", n) for k, n in _grouped(db, Case.channel, window).items()),
                      key=lambda kv: (-kv[1], kv[0]))
    cat_now, cat_before, cat_ago = (_grouped(db, Case.category, w) for w in (window, before, year_ago))
    names = sorted({k for k in (*cat_now, *cat_before) if k}, key=lambda k: (-cat_now.get(k, 0),
                                                                              -cat_before.get(k, 0), k))
    categories = [(k, cat_now.get(k, 0), cat_before.get(k, 0), cat_ago.get(k, 0)) for k in names]
    f = MonthlyFigures(month=month, window=window, as_of=as_of, current=cur, previous=prev, year_ago=ago,
                       channels=channels, categories=categories, districts=_districts(db, window, before, as_of),
                       daily=_daily(db, window))
    text_now = texts(db=db, window=window)
    for name, n, m, _ in [c for c in categories if c[0] != OTHER and c[1] > 0][:HOT_CATEGORIES]:
        f.hot_categories.append(HotCategory(name, n, m, _category_examples(db, window, name, text_now)))
    words = vocabulary(db=db)
    per_case = case_terms(db=db, texts_by_case=text_now, words=words)
    per_case_before = case_terms(db=db, texts_by_case=texts(db=db, window=before), words=words)
    df_now: Counter[str] = Counter()
    for found in per_case.values():
        df_now.update(found)
    df_before: Counter[str] = Counter()
    for found in per_case_before.values():
        df_before.update(found)
    rising = terms.rising(df_now, df_before, n_current=len(per_case), n_previous=len(per_case_before),
                          limit=HOT_TERMS)
    for i, tc in enumerate(rising):
        ids = [cid for cid in sorted(per_case) if tc.term in per_case[cid]][:EXAMPLES] \
            if i < TERMS_WITH_EXAMPLES else []
        f.hot_terms.append(HotTerm(tc, _examples(db, ids, text_now, tc.term)))
    f.warnings = _warnings(db, window, as_of)
    return f


# --- the report ------------------------------------------------------------------------------------------------


def _example_rows(examples: Sequence[Example]) -> list[list[str]]:
    return [[e.case_no, e.day, e.district, e.text] for e in examples]


EXAMPLE_HEADER = ("工单编号", "日期", "区市", "来电内容（摘录，已脱敏）")
EXAMPLE_WIDTHS = (38.0, 20.0, 18.0, None)


def document(f: MonthlyFigures) -> Document:
    assert f.warnings is not None
    label = periods.cn_month(f.month)
    last = f.window.last if f.as_of >= f.window.end else periods.local_day(f.as_of - timedelta(microseconds=1))
    doc = Document(title=TITLES[ReportKind.monthly], subtitle=f"（{label}）",
                   date=datetime(last.year, last.month, last.day, tzinfo=TZ), author=ISSUER,
                   subject=f"{label}热线受理情况、热点问题与预警处置", keywords="12351;月度分析;热点;预警",
                   footer=f"{ISSUER} · 月度分析报告 · {label}")
    c, p, y, w = f.current, f.previous, f.year_ago, f.warnings
    span = f"{periods.cn_date(f.window.first)}至{periods.cn_date(last)}"
    doc.add(Para(f"统计期间：{span}（北京时间）。数据来源：{ISSUER}工单系统。"))

    doc.add(Heading("一、总体情况"))
    doc.add(Para(
        f"{label}，热线共受理职工诉求{fmt_int(c.cases)}件，{say_change('同比', c.cases, y.cases)}，"
        f"{say_change('环比', c.cases, p.cases)}；涉及职工{fmt_int(c.workers)}人，涉及金额{fmt_wan(c.amount)}；"
        f"群体性诉求{fmt_int(c.group_cases)}件。截至{periods.cn_date(last)}，已办结{fmt_int(c.closed)}件，"
        f"按期办结率{fmt_rate(c.on_time_rate)}，逾期{fmt_int(c.overdue)}件。"))

    def metric(name: str, attr: str) -> list[str]:
        a, b, e = getattr(c, attr), getattr(p, attr), getattr(y, attr)
        return [name, fmt_int(a), fmt_int(b), fmt_change(a, b), fmt_int(e), fmt_change(a, e)]

    doc.add(Table(("指标", "本月", "上月", "环比", "去年同月", "同比"),
                  [metric("受理量（件）", "cases"), metric("涉及职工（人）", "workers"),
                   metric("涉及金额（元）", "amount"), metric("群体性诉求（件）", "group_cases"),
                   metric("办结（件）", "closed"), metric("逾期（件）", "overdue")],
                  widths_mm=(None, 22.0, 22.0, 20.0, 22.0, 20.0), caption="表1 主要指标"))
    doc.add(Figure(charts.daily_counts(tuple(d for d, _ in f.daily), tuple(n for _, n in f.daily),
                                       f"{label}每日受理量"),
                   f"图1 {label}每日受理量"))

    doc.add(Heading("二、受理渠道与诉求类别"))
    if f.channels:
        doc.add(Para("受理渠道：" + "，".join(f"{k}{fmt_int(n)}件（{fmt_share(n, c.cases)}）" for k, n in f.channels)
                     + "。"))
    doc.add(Table(("渠道", "件数", "占比"), [[k, fmt_int(n), fmt_share(n, c.cases)] for k, n in f.channels],
                  widths_mm=(None, 30.0, 30.0), caption="表2 受理渠道"))
    top = [x for x in f.categories if x[1] > 0][:3]
    if top:
        doc.add(Para("诉求类别居前的是" + "、".join(f"{k}（{fmt_int(n)}件，占{fmt_share(n, c.cases)}）"
                                                 for k, n, _, _ in top) + "。"))
    doc.add(Table(("诉求类别", "本月", "占比", "上月", "环比", "去年同月", "同比"),
                  [[k, fmt_int(n), fmt_share(n, c.cases), fmt_int(m), fmt_change(n, m), fmt_int(a), fmt_change(n, a)]
                   for k, n, m, a in f.categories],
                  widths_mm=(None, 17.0, 17.0, 17.0, 19.0, 19.0, 19.0), caption="表3 诉求类别"))
    shown = f.categories[:10]
    if shown:
        doc.add(Figure(charts.compare_bars(tuple(k for k, *_ in shown), tuple(n for _, n, _, _ in shown),
                                           tuple(m for _, _, m, _ in shown), title="诉求类别：本月与上月",
                                           current_label="本月", previous_label="上月"),
                       "图2 诉求类别（本月与上月）"))

    doc.add(Heading("三、区市分布"))
    ranked = sorted((r for r in f.districts if r.totals.cases), key=lambda r: (-r.totals.cases, r.district))
    if ranked:
        doc.add(Para("受理量居前的区市：" + "、".join(f"{r.district}{fmt_int(r.totals.cases)}件" for r in ranked[:3])
                     + "。"))
    doc.add(Table(("区市", "受理量", "占比", "环比", "涉及职工", "涉及金额（元）", "群体性", "逾期", "按期办结率"),
                  [[r.district, fmt_int(r.totals.cases), fmt_share(r.totals.cases, c.cases),
                    fmt_change(r.totals.cases, r.previous), fmt_int(r.totals.workers), fmt_int(r.totals.amount),
                    fmt_int(r.totals.group_cases), fmt_int(r.totals.overdue), fmt_rate(r.totals.on_time_rate)]
                   for r in f.districts],
                  widths_mm=(None, 14.0, 14.0, 18.0, 14.0, 22.0, 13.0, 12.0, 17.0), caption="表4 区市分布"))
    doc.add(Figure(charts.bars(tuple(r.district for r in f.districts), tuple(r.totals.cases for r in f.districts),
                               title=f"{label}各区市受理量", highlight=tuple(r.district for r in ranked[:1])),
                   "图3 各区市受理量"))

    doc.add(Heading("四、热点问题"))
    doc.add(Heading("（一）热点类别", 2))
    if not f.hot_categories:
        doc.add(Para("本月无受理记录。"))
    for i, hc in enumerate(f.hot_categories, start=1):
        doc.add(Para(f"{i}. {hc.category}：{fmt_int(hc.cases)}件，占{fmt_share(hc.cases, c.cases)}，"
                     f"{say_change('环比', hc.cases, hc.previous)}。典型来电："))
        doc.add(Table(EXAMPLE_HEADER, _example_rows(hc.examples), widths_mm=EXAMPLE_WIDTHS))
    doc.add(Heading("（二）上升关键词", 2))
    if f.hot_terms:
        doc.add(Para("从来电内容中提取关键词（结巴分词，加载劳动领域词典并剔除常用词），按本月与上月提及件数的"
                     "平滑变化排序（已按两月受理总量折算）。上升最明显的是"
                     + "、".join(f"“{t.change.term}”" for t in f.hot_terms[:3]) + "。"))
        doc.add(Table(("序号", "关键词", "本月提及（件）", "上月提及（件）", "变化指数"),
                      [[str(i), t.change.term, fmt_int(t.change.current), fmt_int(t.change.previous),
                        f"{t.change.index:.2f}"] for i, t in enumerate(f.hot_terms, start=1)],
                      widths_mm=(14.0, None, 30.0, 30.0, 24.0), caption="表5 上升关键词"))
        for t in f.hot_terms:
            if t.examples:
                doc.add(Para(f"“{t.change.term}”典型来电："))
                doc.add(Table(EXAMPLE_HEADER, _example_rows(t.examples), widths_mm=EXAMPLE_WIDTHS))
    else:
        doc.add(Para(f"本月没有提及件数不少于{terms.MIN_CASES}件且较上月上升的关键词。"))

    doc.add(Heading("五、群体性诉求与办理时效"))
    doc.add(Para(f"群体性诉求{fmt_int(c.group_cases)}件，{say_change('环比', c.group_cases, p.group_cases)}。"
                 f"本月受理的诉求截至{periods.cn_date(last)}已办结{fmt_int(c.closed)}件（办结率"
                 f"{fmt_share(c.closed, c.cases)}），其中按期办结{fmt_int(c.on_time)}件，按期办结率"
                 f"{fmt_rate(c.on_time_rate)}；逾期{fmt_int(c.overdue)}件。"))
    doc.add(Para("回访满意度：未记录（回访结果尚未登记满意度）。"))

    doc.add(Heading("六、预警处置"))
    doc.add(Para(f"本月新发预警{fmt_int(w.raised_total)}条（"
                 + "，".join(f"{g}色{fmt_int(w.raised[g])}条" for g in GRADES) + f"）；办结预警{fmt_int(w.closed)}条，"
                 f"追回金额{fmt_wan(w.amount_recovered)}，惠及职工{fmt_int(w.workers_covered)}人；"
                 f"月末在办预警{fmt_int(w.open_at_end)}条。"))
    doc.add(Table(("红色", "橙色", "黄色", "蓝色", "办结", "追回金额（元）", "惠及职工（人）"),
                  [[*(fmt_int(w.raised[g]) for g in GRADES), fmt_int(w.closed), fmt_int(w.amount_recovered),
                    fmt_int(w.workers_covered)]], caption="表6 预警发布与办结"))

    doc.add(Para("说明：1. 受理量按工单创建时间（北京时间）统计；同比为与去年同月相比，环比为与上月相比，"
                 "上期为0时记“—”。"
                 "2. 办结、按期办结、逾期按统计截止时的状态计算：办结后超过办理时限或未办结且已超过时限的为逾期；"
                 "按期办结率=按期办结件数÷办结件数。3. 典型来电摘录中的电话号码、身份证号已脱敏。"
                 "4. 回访满意度尚未记录。", small=True))
    return doc


def build(*, db: Session, month: str, now: datetime | None = None) -> tuple[Document, dict[str, Any]]:
    f = figures(db=db, month=month, now=now)
    return document(f), f.summary()
