"""`hotline bench reports`: reports and exports on 100,000 generated cases (a SQLite file, migrated).

The cases are the year of Qingdao traffic that `hotline bench warnings` generates (app/bench/warnings.py: districts
by population, the 12351 category mix, enterprises with heavy-tailed popularity, episodes), loaded in bulk. On top:
cases filed over 30 days before the year's end are closed, most within their 5-day deadline and some late; the
cases of the reported month and the month before get a transcript with two caller segments made from phrases of
their category (the rising-term analysis has real text to cut), and 劳务派遣 phrases are said more in the
reported month.

Timed, each against its target:
- the monthly report (月度分析报告) of ``month``: figures, three charts, DOCX and PDF, archived — cold (first in
  the process: jieba's dictionary, the font, matplotlib) and warm (the same again);
- a ledger of 100,000 rows to XLSX, streamed (app/clues/ledgers.write_xlsx, constant memory): for this step every
  case is filed as 欠薪 so that the arrears ledger holds them all; peak memory as RSS over the start (psutil,
  sampled) during the timed run, and the Python heap's peak (tracemalloc) in a second run;
- a case PDF (app/exports/service.case_pdf): the first and the median of 20 (the font, parsed once per process,
  is timed on its own).
"""

from __future__ import annotations

import random
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from app.bench import scratch_sqlite
from app.bench import warnings as traffic
from app.config import Settings
from app.db import Database
from app.reports import periods
from app.reports import service as reports

TARGET_REPORT_S, TARGET_LEDGER_S, TARGET_CASE_PDF_S = 10.0, 10.0, 0.5
ENTERPRISES = 20_000
PHRASES: dict[str, tuple[str, ...]] = {
    "欠薪": ("老板拖欠我们三个月工资了", "工地上的工钱一直不给结", "包工头跑了，工程款拿不到", "加班费也不给算",
             "公司说没钱，让我们等着", "讨薪讨了好几次都没用"),
    "劳动合同": ("公司没跟我签劳动合同", "试用期被辞退了，没有经济补偿", "合同到期公司不续签", "被单方面解除合同"),
    "社会保险": ("公司一直没给交社保", "养老保险断缴了半年", "入职一年了还没有五险"),
    "工伤": ("干活的时候把手砸伤了", "工伤认定公司不配合", "住院的医药费公司不管"),
    "工时休假": ("每天加班到晚上十点", "一个月只休两天", "年休假不让休"),
    "劳务派遣": ("劳务派遣公司把我们退回了", "派遣公司和用工单位互相推", "同工不同酬，派遣工待遇差"),
    "新就业形态": ("外卖平台扣了我的配送费", "骑手受伤了站点不管", "网约车平台突然封号"),
    "女职工权益": ("怀孕了公司让我辞职", "产假工资不给发", "哺乳期被调岗降薪"),
    "法律咨询": ("想咨询一下经济补偿怎么算", "请问一下试用期最长多久", "加班费是怎么规定的"),
    "其他": ("想问问工会能不能帮忙", "单位的食堂太差了"),
}
DISPATCH_EXTRA = ("派遣公司突然倒闭了，工资没人管", "劳务派遣的工人被集体退回")


def _say(line: str) -> None:
    print(f"  … {line}", flush=True)


def _close_and_transcribe(database: Database, month: str, seed: int) -> tuple[int, int]:
    """Close the older cases (some late) and give the cases of ``month`` and the month before transcripts."""
    rng = random.Random(seed + 2)
    window = periods.month(month)
    before = periods.month(periods.shift_months(month, -1))
    with database.engine.begin() as conn:
        closed = conn.execute(sa.text(
            "UPDATE cases SET closed_at = datetime(created_at, '+' || (id % 7) || ' days') "  # 5 and 6 days: late
            "WHERE status = '办结'")).rowcount
        rows = conn.execute(sa.text("SELECT id, category, created_at FROM cases WHERE created_at >= :a AND "
                                    "created_at < :b ORDER BY id"),
                            {"a": before.start.strftime("%Y-%m-%d %H:%M:%S"),
                             "b": window.end.strftime("%Y-%m-%d %H:%M:%S")}).all()
        transcripts: list[dict[str, Any]] = []
        segments: list[dict[str, Any]] = []
        boundary = window.start.strftime("%Y-%m-%d %H:%M:%S")
        for case_id, category, created_at in rows:
            transcripts.append({"id": case_id, "recording_id": case_id, "kind": "final", "engine": "bench",
                                "model": "-", "language": "zh", "duration": 90.0, "processing_s": 0.0,
                                "created_at": created_at})
            said = list(rng.sample(PHRASES.get(category, PHRASES["其他"]), 2))
            if str(created_at) >= boundary and rng.random() < 0.08:
                said[1] = rng.choice(DISPATCH_EXTRA)  # the reported month: a dispatch agency in trouble
            for i, text in enumerate(said):
                segments.append({"transcript_id": case_id, "idx": 2 * i, "start": 10.0 * i, "end": 10.0 * i + 6,
                                 "speaker": "caller", "text": f"您好，{text}，电话是138{rng.randrange(10**8):08d}"})
                segments.append({"transcript_id": case_id, "idx": 2 * i + 1, "start": 10.0 * i + 6,
                                 "end": 10.0 * i + 10, "speaker": "agent", "text": "好的，我们记录一下"})
        conn.execute(sa.text("INSERT INTO transcripts (id, recording_id, kind, engine, model, language, duration, "
                             "processing_s, created_at) VALUES (:id, :recording_id, :kind, :engine, :model, "
                             ":language, :duration, :processing_s, :created_at)"), transcripts)
        conn.execute(sa.text("INSERT INTO segments (transcript_id, idx, start, \"end\", speaker, text, version) "
                             "VALUES (:transcript_id, :idx, :start, :end, :speaker, :text, 0)"), segments)
        conn.execute(sa.text("UPDATE cases SET transcript_id = id WHERE id IN (SELECT id FROM transcripts)"))
    return closed, len(rows)


def _verdict(seconds: float, target: float) -> str:
    return f"target ≤ {target:g} s: {'ok' if seconds <= target else 'OVER'}"


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def run(*, cases: int = 100_000, month: str = "2025-11", seed: int = 12351) -> None:
    settings = Settings()
    began = time.perf_counter()
    year = traffic.generate(cases=cases, enterprises=ENTERPRISES, seed=seed,
                            group_workers=settings.group_case_workers)
    _say(f"{len(year.calls):,} cases of {traffic.YEAR} generated in {time.perf_counter() - began:.1f} s")
    with scratch_sqlite("reports") as (database, s):
        load_s, _ = _timed(lambda: traffic.load(database, year))
        closed, transcribed = _close_and_transcribe(database, month, seed)
        _say(f"loaded into SQLite in {load_s:.1f} s; {closed:,} closed, {transcribed:,} transcripts "
             f"({month} and the month before)")

        cold_s, (read, rendered) = _timed(lambda: reports.generate(database=database, settings=s, kind="monthly",
                                                                   period=month, actor="bench"))
        warm_s, (again, rendered_again) = _timed(lambda: reports.generate(
            database=database, settings=s, kind="monthly", period=month, actor="bench"))
        parts = ", ".join(f"{k} {v:.2f}" for k, v in rendered_again.seconds.items())
        summary = read.summary

        from app.clues import ledgers

        with database.engine.begin() as conn:
            conn.execute(sa.text("UPDATE cases SET category = '欠薪'"))  # every case on the arrears ledger
        out = s.data_dir / "ledger.xlsx"
        with database.session() as db, traffic.PeakRss() as rss:
            ledger_s, rows = _timed(lambda: ledgers.write_xlsx(db=db, kind="arrears-new", path=out))
        size_mb = out.stat().st_size / 2**20
        tracemalloc.start()
        with database.session() as db:
            ledgers.write_xlsx(db=db, kind="arrears-new", path=s.data_dir / "ledger-traced.xlsx")
        heap_peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()

        from app.auth.permissions import Masking
        from app.exports import service as exports

        masking = Masking(phones=True, ids=True)
        case_id = year.calls[len(year.calls) // 2].id
        with database.session() as db:
            pdf_cold, first = _timed(lambda: exports.case_pdf(db=db, case_id=case_id, masking=masking))
            warm = [_timed(lambda: exports.case_pdf(db=db, case_id=case_id, masking=masking))[0] for _ in range(20)]
        pdf_warm = statistics.median(warm)
        from reportlab.pdfbase.ttfonts import TTFont

        from app.documents.fonts import cjk_font

        font_s, _ = _timed(lambda: TTFont("BenchCJK", str(cjk_font()), subfontIndex=0))  # what a process pays once

    print()
    print(f"hotline bench reports — {len(year.calls):,} cases ({traffic.YEAR}, seed {seed}), SQLite, "
          f"{ENTERPRISES:,} enterprises")
    print(f"monthly report {month} ({summary['cases']:,} cases, 环比 {_pct(summary['mom'])}, 同比 "
          f"{_pct(summary['yoy'])}; rising terms: {'、'.join(summary['hot_terms'][:3]) or '—'}):")
    print(f"  cold {cold_s:.2f} s  [{_verdict(cold_s, TARGET_REPORT_S)}]   warm {warm_s:.2f} s ({parts})")
    print(f"  DOCX {read.files[0].size / 1024:.0f} KB, PDF {read.files[1].size / 1024:.0f} KB with 3 charts; "
          f"regenerated identical: {'yes' if again.unchanged else 'NO'}")
    print(f"ledger XLSX (新增欠薪线索清单, streamed): {rows:,} rows in {ledger_s:.2f} s  "
          f"[{_verdict(ledger_s, TARGET_LEDGER_S)}]")
    print(f"  file {size_mb:.1f} MB; peak RSS +{rss.delta_mib:.0f} MiB over the start; peak Python heap "
          f"{heap_peak:.1f} MiB (tracemalloc, second run)")
    print(f"case PDF: first {pdf_cold:.3f} s, then median of 20 {pdf_warm * 1000:.0f} ms, {len(first) / 1024:.0f} KB  "
          f"[{_verdict(max(pdf_cold, pdf_warm), TARGET_CASE_PDF_S)}]; parsing the CJK font, once per process (here "
          f"done by the report before): {font_s:.2f} s")


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:+.1f}%"
