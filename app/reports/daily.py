"""The daily enterprise-warning report (企业预警风险信息日报) for one Beijing day (00:00–24:00), made each morning by
the worker for the day before: warnings raised that day, warnings upgraded or escalated (not signed for in
time) that day, and enterprises whose integrity colour changed that day (computed, or set by a manager).

Upgrades, escalations and colour changes are read from the audit chain (``warning.upgraded``,
``warning.escalated``, ``enterprise.colour_changed``, ``enterprise.colour_overridden``), which records each
with its before and after; new warnings from the warnings table (``raised_at``). Warning reasons are masked."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.db import utcnow
from app.enterprises.models import COLOUR_RANK, Enterprise
from app.reports import periods
from app.reports.document import Document, Heading, Para, Table
from app.reports.models import TITLES, ReportKind
from app.reports.monthly import GRADES, ISSUER, MASK, UNKNOWN_DISTRICT, fmt_int
from app.stats.service import TZ
from app.warnings.models import EarlyWarning

COLOUR_EVENTS = ("enterprise.colour_changed", "enterprise.colour_overridden")
WARNING_EVENTS = ("warning.upgraded", "warning.escalated")
REASON_CHARS = 80


@dataclass(frozen=True)
class NewWarning:
    id: int
    grade: str
    subject: str
    district: str
    category: str
    raised: str  # HH:MM
    status: str
    reason: str  # masked, shortened


@dataclass(frozen=True)
class WarningChange:
    id: int
    subject: str
    grade: str  # now
    what: str  # 黄→橙 / 超时未签收，上报（一级）
    at: str  # HH:MM


@dataclass(frozen=True)
class ColourChange:
    enterprise_id: int
    name: str
    credit_code: str
    district: str
    before: str
    after: str
    score: str  # 100→82.0, or 人工调整
    at: str

    @property
    def worse(self) -> bool:
        return COLOUR_RANK.get(self.after, 4) < COLOUR_RANK.get(self.before, 4)


@dataclass
class DailyFigures:
    day: str
    window: periods.Window
    new: list[NewWarning] = field(default_factory=list)
    changed: list[WarningChange] = field(default_factory=list)
    colours: list[ColourChange] = field(default_factory=list)
    open_by_grade: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        grades = Counter(w.grade for w in self.new)
        return {"new_warnings": len(self.new), "new_by_grade": {g: grades.get(g, 0) for g in GRADES},
                "upgraded": sum(c.what.count("→") for c in self.changed),
                "escalated": sum("上报" in c.what for c in self.changed),
                "colour_changes": len(self.colours), "worse": sum(c.worse for c in self.colours),
                "open_warnings": sum(self.open_by_grade.values())}


def _hm(at: datetime) -> str:
    return at.astimezone(TZ).strftime("%H:%M")


def _reason(text: str) -> str:
    text = " ".join(text.split())
    return MASK.text(text if len(text) <= REASON_CHARS else text[:REASON_CHARS] + "…")


def figures(*, db: Session, day: str, now: datetime | None = None) -> DailyFigures:
    window = periods.day(day)
    if window.start > (now or utcnow()):
        raise periods.PeriodError(f"{periods.cn_date(window.first)}尚未开始")
    f = DailyFigures(day=day, window=window)
    rows = db.execute(sa.select(EarlyWarning).where(EarlyWarning.raised_at >= window.start,
                                                    EarlyWarning.raised_at < window.end)
                      .order_by(EarlyWarning.raised_at, EarlyWarning.id)).scalars()
    f.new = sorted((NewWarning(w.id, w.grade, w.subject, w.district or UNKNOWN_DISTRICT, w.category or "—",
                               _hm(w.raised_at), w.status, _reason(w.reason)) for w in rows),
                   key=lambda w: (GRADES.index(w.grade) if w.grade in GRADES else 9, w.raised, w.id))
    events = db.execute(sa.select(AuditEvent).where(
        AuditEvent.at >= window.start, AuditEvent.at < window.end,
        AuditEvent.action.in_((*WARNING_EVENTS, *COLOUR_EVENTS))).order_by(AuditEvent.seq)).scalars().all()
    warning_ids = {int(e.subject_id) for e in events if e.action in WARNING_EVENTS}
    warnings = {w.id: w for w in db.execute(sa.select(EarlyWarning).where(EarlyWarning.id.in_(warning_ids)))
                .scalars()} if warning_ids else {}
    enterprise_ids = {int(e.subject_id) for e in events if e.action in COLOUR_EVENTS}
    enterprises = {e.id: e for e in db.execute(sa.select(Enterprise).where(Enterprise.id.in_(enterprise_ids)))
                   .scalars()} if enterprise_ids else {}
    for e in events:
        d = e.details or {}
        if e.action in WARNING_EVENTS:
            w = warnings.get(int(e.subject_id))
            if w is None:
                continue
            what = f"{d.get('from', '?')}→{d.get('to', '?')}" if e.action == "warning.upgraded" else \
                f"超时未签收，上报（{'一级' if d.get('level', 1) == 1 else '二级'}）"
            f.changed.append(WarningChange(w.id, w.subject, w.grade, what, _hm(e.at)))
        else:
            ent = enterprises.get(int(e.subject_id))
            if ent is None:
                continue
            if e.action == "enterprise.colour_changed":
                before, after = str(d.get("before") or "绿"), str(d.get("after") or "绿")
                score = f"{float(d.get('score_before', 100.0)):.1f}→{float(d.get('score_after', 100.0)):.1f}"
            else:
                if not d.get("after"):
                    continue  # an override removed: the computed colour shows again (its change is its own event)
                before, after, score = str(d.get("before") or d.get("computed") or "绿"), str(d["after"]), "人工调整"
            if before == after:
                continue
            f.colours.append(ColourChange(ent.id, ent.name, ent.credit_code or "—", ent.district or UNKNOWN_DISTRICT,
                                          before, after, score, _hm(e.at)))
    f.colours.sort(key=lambda c: (COLOUR_RANK.get(c.after, 9), c.name, c.at))
    open_rows = db.execute(sa.select(EarlyWarning.grade, sa.func.count(EarlyWarning.id)).where(
        EarlyWarning.raised_at < window.end,
        sa.or_(EarlyWarning.closed_at.is_(None), EarlyWarning.closed_at >= window.end))
        .group_by(EarlyWarning.grade))
    counts = {g: int(n) for g, n in open_rows}
    f.open_by_grade = {g: counts.get(g, 0) for g in GRADES}
    return f


def document(f: DailyFigures) -> Document:
    d = f.window.first
    label = periods.cn_date(d)
    s = f.summary()
    doc = Document(title=TITLES[ReportKind.daily], subtitle=f"（{label}）",
                   date=datetime(d.year, d.month, d.day, tzinfo=TZ), author=ISSUER,
                   subject=f"{label}新增及升级预警、企业诚信颜色变化", keywords="12351;预警;企业风险;日报",
                   footer=f"{ISSUER} · 企业预警风险信息日报 · {label}")
    doc.add(Para(f"统计时段：{label}0时至24时（北京时间）。"))
    doc.add(Heading("一、概况"))
    by_grade = "，".join(f"{g}色{s['new_by_grade'][g]}条" for g in GRADES)
    doc.add(Para(f"当日新增预警{fmt_int(s['new_warnings'])}条（{by_grade}）；预警升级{fmt_int(s['upgraded'])}次，"
                 f"超时未签收上报{fmt_int(s['escalated'])}次；企业诚信颜色变化{fmt_int(s['colour_changes'])}家，"
                 f"其中转差{fmt_int(s['worse'])}家。截至当日24时，在办预警{fmt_int(s['open_warnings'])}条（"
                 + "，".join(f"{g}色{f.open_by_grade[g]}条" for g in GRADES) + "）。"))
    doc.add(Heading("二、新增预警"))
    if f.new:
        doc.add(Table(("编号", "等级", "预警对象", "区市", "类别", "时间", "状态", "预警原因"),
                      [[str(w.id), w.grade, w.subject, w.district, w.category, w.raised, w.status, w.reason]
                       for w in f.new],
                      widths_mm=(12.0, 11.0, 30.0, 16.0, 16.0, 13.0, 15.0, None)))
    else:
        doc.add(Para("无。"))
    doc.add(Heading("三、预警升级与超时上报"))
    if f.changed:
        doc.add(Table(("编号", "预警对象", "当前等级", "变化", "时间"),
                      [[str(c.id), c.subject, c.grade, c.what, c.at] for c in f.changed],
                      widths_mm=(14.0, None, 20.0, 44.0, 16.0)))
    else:
        doc.add(Para("无。"))
    doc.add(Heading("四、企业诚信颜色变化"))
    if f.colours:
        doc.add(Table(("企业名称", "统一社会信用代码", "区市", "颜色变化", "分数", "时间"),
                      [[c.name, c.credit_code, c.district, f"{c.before}→{c.after}", c.score, c.at] for c in f.colours],
                      widths_mm=(None, 38.0, 16.0, 18.0, 22.0, 13.0)))
    else:
        doc.add(Para("无。"))
    doc.add(Para("说明：预警等级由高到低为红、橙、黄、蓝；企业诚信颜色由差到好为红、橙、黄、蓝、绿。"
                 "预警原因中的电话号码、身份证号已脱敏。", small=True))
    return doc
