"""Reports (月度分析报告, 企业预警风险信息日报) read back with real readers, on SQLite and PostgreSQL: python-docx for
the DOCX (numbers, East-Asian fonts), pdftotext/pdffonts for the PDF (numbers, the embedded CJK font), pdftoppm for
a picture of page 1 (HOTLINE_REPORT_SCREENSHOTS, else the test's tmp dir). Also: 同比/环比 on a constructed
dataset, the rising-term ranking, the archive and its audit events, byte-identical regeneration, the API and
its permissions, the CLI and the worker's morning job."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import zipfile
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import docx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.audit import service as audit
from app.audit.models import AuditEvent
from app.cases.models import Case
from app.cli import app as cli
from app.config import Settings
from app.db import Database, utcnow
from app.enterprises import integrity
from app.enterprises.models import Enterprise
from app.recordings.models import Recording
from app.reports import monthly, periods, service, terms
from app.reports.models import Report, ReportKind
from app.transcripts.models import Segment, Transcript
from app.users.models import Role
from app.warnings import workflow
from app.warnings.models import EarlyWarning, WarningRule
from tests.conftest import add_user, login
from tests.processes import env_for

MONTH = "2025-11"  # the month reported: 2025-10 before it, 2024-11 a year before
NOW = datetime(2025, 12, 2, 1, 0, tzinfo=UTC)  # generated on 2 December (Beijing)
PHONE = "13812345678"
needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils (pdftotext) missing")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


_serial = iter(range(1, 10_000))


def add_case(db: Any, created_at: str, *, said: list[str] | None = None, **fields: Any) -> int:
    n = next(_serial)
    rec = Recording(sha256=f"{n:064x}", path=f"r{n}.wav", original_name=f"r{n}.wav", size_bytes=1, format="wav",
                    codec="pcm_s16le", sample_rate=8000, channels=2, duration=1.0, layout="caller-left",
                    channel="来电", status="done", uploaded_by="test")
    db.add(rec)
    db.flush()
    transcript_id = None
    if said:
        t = Transcript(recording_id=rec.id, kind="final", engine="hand", model="-", language="zh", duration=10.0,
                       processing_s=0.0)
        db.add(t)
        db.flush()
        for i, text in enumerate(said):
            db.add(Segment(transcript_id=t.id, idx=2 * i, start=4.0 * i, end=4.0 * i + 2, speaker="caller",
                           text=text))
            db.add(Segment(transcript_id=t.id, idx=2 * i + 1, start=4.0 * i + 2, end=4.0 * i + 4, speaker="agent",
                           text="好的，劳务派遣的问题我们记下了"))  # the agent's words never count
        transcript_id = t.id
    values: dict[str, Any] = {"category": "欠薪", "status": "受理", "channel": "来电", "summary": "", **fields}
    case = Case(case_no=f"QD-{n:06d}", recording_id=rec.id, transcript_id=transcript_id, category_confidence=0.9,
                category_evidence=[], created_by="test", created_at=utc(created_at), **values)
    db.add(case)
    db.flush()
    return case.id


def _rule(db: Any) -> int:
    rule = db.execute(sa.select(WarningRule).limit(1)).scalar()
    if rule is None:
        rule = WarningRule(name="企业", group_by="enterprise", window_days=30, burst_alpha=None)
        db.add(rule)
        db.flush()
    return int(rule.id)


def add_warning(db: Any, *, subject: str, grade: str, raised_at: datetime, enterprise_id: int | None = None,
                closed_at: datetime | None = None, reason: str = "测试", **fields: Any) -> int:
    key = f"k:{next(_serial)}"
    w = EarlyWarning(rule_id=_rule(db), rule_version=1, group_by="enterprise", group_key=key,
                     open_key=None if closed_at else key, subject=subject, enterprise_id=enterprise_id,
                     grade=grade, status="办结" if closed_at else "待签收", reason=reason, figures={},
                     first_case_at=raised_at, raised_at=raised_at, sign_due_at=raised_at + timedelta(hours=2),
                     closed_at=closed_at, district="黄岛区", category="欠薪", **fields)
    db.add(w)
    db.flush()
    return int(w.id)


@pytest.fixture
def dataset(database: Database) -> None:
    """Six cases in 2025-11 (one filed at 00:30 on 1 November Beijing, still 31 October in UTC), four in
    2025-10, three in 2024-11; 劳务派遣 said on three November calls and on none in October; two warnings."""
    with database.session() as db:
        # November 2025
        add_case(db, "2025-10-31T16:30:00", category="劳务派遣", district="黄岛区", workers=3, amount=9000,
                 said=["我在劳务派遣公司上班，被退回了，工资也没发"],
                 due_at=utc("2025-11-06T00:00:00"), closed_at=utc("2025-11-05T00:00:00"), status="办结")
        add_case(db, "2025-11-03T02:00:00", category="劳务派遣", district="黄岛区", workers=2, amount=6000,
                 said=["劳务派遣的工人被用工单位退回，工资拖欠两个月"],
                 due_at=utc("2025-11-08T00:00:00"), closed_at=utc("2025-11-12T00:00:00"), status="办结")  # late
        add_case(db, "2025-11-10T03:00:00", category="欠薪", district="市南区", workers=1, amount=4000,
                 said=["我们是劳务派遣过去的，工资没有结"], due_at=utc("2025-11-15T00:00:00"))  # open, overdue
        add_case(db, "2025-11-12T03:00:00", category="欠薪", district="市南区", workers=1, amount=3000,
                 said=[f"老板拖欠工资三个月，我的电话是{PHONE}"], due_at=utc("2025-12-20T00:00:00"))
        add_case(db, "2025-11-20T03:00:00", category="工伤", district="城阳区", workers=1,
                 said=["工地上受伤了，工伤认定怎么办"])
        add_case(db, "2025-11-25T03:00:00", category="欠薪", district=None, workers=30, amount=600000,
                 group_case=True, summary="三十名工人被拖欠工资，联系电话13912345678")
        # October 2025
        add_case(db, "2025-10-02T03:00:00", category="欠薪", district="市南区", workers=1, amount=2000,
                 said=["拖欠工资两个月了"])
        add_case(db, "2025-10-09T03:00:00", category="欠薪", district="黄岛区", workers=1, said=["工资一直不给"])
        add_case(db, "2025-10-15T03:00:00", category="劳动合同", district="黄岛区", said=["劳动合同到期不续签"])
        add_case(db, "2025-10-31T15:59:00", category="劳动合同", district="城阳区", said=["辞退没有经济补偿"])
        # November 2024
        for day in ("03", "14", "25"):
            add_case(db, f"2024-11-{day}T03:00:00", category="欠薪", district="市北区", workers=1)
        add_warning(db, subject="青岛某建筑公司", grade="红", raised_at=utc("2025-11-04T01:00:00"),
                    reason=f"来电人{PHONE}反映")
        add_warning(db, subject="青岛某派遣公司", grade="黄", raised_at=utc("2025-10-20T01:00:00"),
                    closed_at=utc("2025-11-18T01:00:00"), amount_recovered=50000, workers_covered=12)


def _docx_text(data: bytes) -> str:
    doc = docx.Document(io.BytesIO(data))
    lines = [p.text for p in doc.paragraphs]
    for table in doc.tables:
        lines += ["\t".join(c.text for c in row.cells) for row in table.rows]
    return "\n".join(lines)


def _pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


def _flat(text: str) -> str:
    return "".join(text.split())


def _expected(database: Database) -> dict[str, Any]:
    """The month's figures counted in Python from the rows (independently of the report's SQL)."""
    window = periods.month(MONTH)
    with database.session() as db:
        rows = db.execute(sa.select(Case)).scalars().all()
    inside = [c for c in rows if window.start <= c.created_at < window.end]
    closed = [c for c in inside if c.closed_at is not None and c.closed_at <= window.end]
    late = [c for c in closed if c.due_at is not None and c.closed_at is not None and c.closed_at > c.due_at]
    open_past = [c for c in inside if c not in closed and c.due_at is not None and c.due_at < window.end]
    return {"cases": len(inside), "workers": sum(c.workers or 0 for c in inside),
            "amount": sum(c.amount or 0 for c in inside), "group": sum(c.group_case for c in inside),
            "closed": len(closed), "on_time": len(closed) - len(late), "overdue": len(late) + len(open_past),
            "categories": Counter(c.category for c in inside)}


@needs_poppler
def test_monthly_report_says_what_the_database_holds(database: Database, settings: Settings, dataset: None,
                                                     tmp_path: Path) -> None:
    read, rendered = service.generate(database=database, settings=settings, kind="monthly", period=MONTH,
                                      actor="test", now=NOW, out_dir=tmp_path / "out")
    e = _expected(database)
    assert (e["cases"], e["workers"], e["amount"], e["group"], e["closed"], e["on_time"], e["overdue"]) == \
        (6, 38, 622000, 1, 2, 1, 2)
    assert read.summary["cases"] == 6 and read.summary["cases_previous"] == 4 and read.summary["cases_year_ago"] == 3
    assert read.summary["mom"] == 0.5 and read.summary["yoy"] == 1.0  # 环比 +50%, 同比 +100%
    assert read.summary["hot_terms"][0] == "劳务派遣"

    text = _docx_text(rendered.docx)
    assert "2025年11月，热线共受理职工诉求6件，同比增长100.0%，环比增长50.0%；涉及职工38人，涉及金额62.20万元；" \
           "群体性诉求1件。" in text
    assert "已办结2件，按期办结率50.0%，逾期2件" in text
    assert "受理量（件）\t6\t4\t+50.0%\t3\t+100.0%" in text
    assert "涉及金额（元）\t622,000\t2,000\t+31000.0%\t0\t—" in text
    assert f"欠薪\t{e['categories']['欠薪']}\t50.0%\t2\t+50.0%\t3\t+0.0%" in text
    assert "劳务派遣\t2\t33.3%\t0\t—\t0\t—" in text
    assert "黄岛区\t2\t33.3%\t+0.0%\t5\t15,000\t0\t1\t50.0%" in text
    assert "未注明\t1\t16.7%\t—\t30\t600,000\t1\t0\t—" in text
    assert "回访满意度：未记录" in text
    assert "本月新发预警1条（红色1条，橙色0条，黄色0条，蓝色0条）；办结预警1条，追回金额5.00万元，惠及职工12人" in text
    assert "1\t劳务派遣\t3\t0\t" in text  # the rising term first, with its counts
    assert "138****5678" in text and PHONE not in text and "13912345678" not in text  # examples masked

    pdf_path = tmp_path / "out" / read.files[1].filename
    assert pdf_path.name == "12351职工服务热线月度分析报告（2025年11月）.pdf"
    pdf_text = _flat(_pdf_text(pdf_path))
    for phrase in ("热线共受理职工诉求6件，同比增长100.0%，环比增长50.0%", "按期办结率50.0%", "回访满意度：未记录",
                   "追回金额5.00万元", "138****5678"):
        assert _flat(phrase) in pdf_text
    assert PHONE not in pdf_text
    fonts = subprocess.run(["pdffonts", str(pdf_path)], capture_output=True, text=True, check=True).stdout
    listed = fonts.splitlines()[2:]
    assert listed and all("WenQuanYi" in line and " yes yes " in line for line in listed), fonts
    assert "TrueType" in fonts

    shots = Path(os.environ.get("HOTLINE_REPORT_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", str(pdf_path),
                    str(shots / f"monthly-{MONTH}-page1-{database.dialect}")], check=True)
    png = shots / f"monthly-{MONTH}-page1-{database.dialect}.png"
    assert png.stat().st_size > 20_000  # a page of text and a chart, not a blank one


def test_docx_names_the_east_asian_font_everywhere(database: Database, settings: Settings, dataset: None) -> None:
    rendered = service.render(database=database, kind="monthly", period=MONTH, now=NOW)
    with zipfile.ZipFile(io.BytesIO(rendered.docx)) as z:
        body = z.read("word/document.xml").decode()
        styles = z.read("word/styles.xml").decode()
        assert {i.date_time for i in z.infolist()} == {(2025, 11, 30, 0, 0, 0)}  # no time of generation
    assert 'w:eastAsia="仿宋"' in styles and 'w:eastAsia="黑体"' in styles
    runs = re.findall(r"<w:r>(.*?)</w:r>", body, flags=re.S)
    with_text = [r for r in runs if re.search(r"<w:t[ >][^<]*[\u4e00-\u9fff]", r)]
    assert with_text and all("w:eastAsia=" in r for r in with_text)
    assert "eastAsiaTheme" not in body
    doc = docx.Document(io.BytesIO(rendered.docx))
    section = doc.sections[0]
    assert (round(section.page_width.mm), round(section.page_height.mm)) == (210, 297)  # A4
    assert doc.core_properties.created == datetime(2025, 11, 29, 16, tzinfo=UTC) and doc.core_properties.revision == 1
    assert len(doc.inline_shapes) == 3  # the charts


def test_regenerating_a_period_gives_the_same_bytes_and_both_are_archived(
        database: Database, settings: Settings, dataset: None) -> None:
    first, r1 = service.generate(database=database, settings=settings, kind="monthly", period=MONTH, actor="a",
                                 now=NOW)
    second, r2 = service.generate(database=database, settings=settings, kind="monthly", period=MONTH, actor="b",
                                  now=NOW + timedelta(days=40))  # later: the month's figures stand as they were
    assert r1.docx == r2.docx and r1.pdf == r2.pdf
    assert not first.unchanged and second.unchanged
    assert [f.sha256 for f in first.files] == [f.sha256 for f in second.files]
    assert b"/CreationDate (D:20251130000000+08'00')" in r1.pdf
    with database.session() as db:
        rows = db.execute(sa.select(Report).order_by(Report.id)).scalars().all()
        events = db.execute(sa.select(AuditEvent).where(AuditEvent.action == "report.generated")
                            .order_by(AuditEvent.seq)).scalars().all()
    assert [r.generated_by for r in rows] == ["a", "b"] and rows[0].docx_path == rows[1].docx_path
    assert [e.details["pdf_sha256"] for e in events] == [rows[0].pdf_sha256] * 2
    assert events[0].details["docx_sha256"] == first.files[0].sha256 and events[1].details["unchanged"] is True
    stored = settings.data_dir / rows[0].pdf_path
    assert stored.read_bytes() == r1.pdf and stored.parent == settings.data_dir / "reports" / "monthly" / MONTH


def test_rising_terms_rank_a_new_topic_over_a_steady_common_word() -> None:
    now = Counter({"工资": 40, "劳务派遣": 6, "退回": 2})
    before = Counter({"工资": 30, "劳务派遣": 0, "退回": 0})
    ranked = terms.rising(now, before, n_current=100, n_previous=80)
    assert [t.term for t in ranked] == ["劳务派遣", "工资"]  # 退回 is under the minimum count
    assert ranked[0].current == 6 and ranked[0].previous == 0 and ranked[0].index == pytest.approx(4.0)
    # smoothing: 0 → 3 is less than 20 → 60 (both tripled and more, but one is noise-sized)
    small = terms.rising(Counter({"a": 3, "b": 60}), Counter({"a": 0, "b": 20}), n_current=100, n_previous=100)
    assert [t.term for t in small] == ["b", "a"]
    words = terms.domain_words()
    assert "劳务派遣" in terms.terms_of("我是劳务派遣公司派过去的，被退回两个月了", words)  # kept whole
    assert not {"两个", "公司", "我们"} & terms.terms_of("我们两个在公司", words)


def test_daily_report_lists_new_warnings_escalations_and_colour_changes(
        database: Database, settings: Settings, tmp_path: Path) -> None:
    now = utcnow()
    today = periods.today(now).isoformat()
    with database.session() as db:
        ent = Enterprise(name="青岛恒达建筑劳务有限公司", credit_code="91370200MA3C5XXX1Y", district="黄岛区")
        db.add(ent)
        db.flush()
        red = add_warning(db, subject="青岛恒达建筑劳务有限公司", grade="红", raised_at=now, enterprise_id=ent.id,
                          reason=f"7 天内 4 起欠薪来电，涉及 23 人，来电人 {PHONE}")
        late = add_warning(db, subject="黄岛区 × 欠薪", grade="黄", raised_at=now - timedelta(minutes=1))
        db.get(EarlyWarning, late).sign_due_at = now - timedelta(minutes=1)  # nobody signed for it in time
        add_warning(db, subject="前天的预警", grade="蓝", raised_at=now - timedelta(days=2),
                    closed_at=now - timedelta(days=1))  # not today's
        integrity.rescore(db=db, enterprise_ids=[ent.id], now=now)  # an open red warning: 绿 → 红
        workflow.sweep(db=db, settings=settings, now=now)  # escalates the unsigned one
        older = add_warning(db, subject="市北区 × 劳务派遣", grade="橙", raised_at=now - timedelta(days=3))
        audit.record(db=db, actor="worker", action="warning.upgraded", subject_type="warning", subject_id=older,
                     details={"from": "黄", "to": "橙", "rule": "区市×类别", "reason": "…"})  # as the engine does
    read, rendered = service.generate(database=database, settings=settings, kind=ReportKind.daily, period=today,
                                      actor="test")
    text = _docx_text(rendered.docx)
    label = periods.cn_date(periods.day(today).first)
    assert f"企业预警风险信息日报\n（{label}）" in text
    assert "当日新增预警2条（红色1条，橙色0条，黄色1条，蓝色0条）" in text
    assert "预警升级1次，超时未签收上报1次" in text and "企业诚信颜色变化1家，其中转差1家" in text
    assert f"{older}\t市北区 × 劳务派遣\t橙\t黄→橙" in text
    assert "截至当日24时，在办预警3条（红色1条，橙色1条，黄色1条，蓝色0条）" in text
    assert f"{red}\t红\t青岛恒达建筑劳务有限公司\t黄岛区\t欠薪" in text
    assert "138****5678" in text and PHONE not in text
    assert f"{late}\t黄岛区 × 欠薪\t黄\t超时未签收，上报（一级）" in text
    assert "青岛恒达建筑劳务有限公司\t91370200MA3C5XXX1Y\t黄岛区\t绿→红" in text
    assert "前天的预警" not in text
    assert read.summary["new_warnings"] == 2 and read.summary["colour_changes"] == 1
    if shutil.which("pdftotext"):
        path = tmp_path / "daily.pdf"
        path.write_bytes(rendered.pdf)
        assert _flat("绿→红") in _flat(_pdf_text(path)) and _flat("超时未签收，上报（一级）") in _flat(_pdf_text(path))


@pytest.fixture
def manager(client: TestClient, database: Database) -> dict[str, str]:
    add_user(database, "wang", Role.manager)
    return login(client, "wang")


def test_api_generates_lists_and_downloads_with_audit(client: TestClient, database: Database, settings: Settings,
                                                      dataset: None, manager: dict[str, str],
                                                      agent: dict[str, str]) -> None:
    r = client.post("/api/v1/reports", json={"kind": "monthly", "period": MONTH}, headers=manager)
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["title"] == "12351职工服务热线月度分析报告（2025年11月）" and made["summary"]["cases"] == 6
    listed = client.get("/api/v1/reports", headers=manager).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == made["id"]
    for f in made["files"]:
        got = client.get(f["url"], headers=manager)
        assert got.status_code == 200
        assert got.headers["content-disposition"].endswith(f"filename*=utf-8''{quote(f['filename'])}")
        assert __import__("hashlib").sha256(got.content).hexdigest() == f["sha256"]
    assert client.get(made["files"][1]["url"], headers=manager).content.startswith(b"%PDF")
    with database.session() as db:
        actions = [(e.action, e.actor, e.details.get("format")) for e in db.execute(
            sa.select(AuditEvent).where(AuditEvent.action.like("report.%")).order_by(AuditEvent.seq)).scalars()]
    assert actions == [("report.generated", "user:wang", None), ("report.downloaded", "user:wang", "docx"),
                       ("report.downloaded", "user:wang", "pdf"), ("report.downloaded", "user:wang", "pdf")]
    # agents see neither the archive nor the statistics behind it
    assert client.get("/api/v1/reports", headers=agent).status_code == 403
    assert client.get(made["files"][0]["url"], headers=agent).status_code == 403
    assert client.post("/api/v1/reports", json={"kind": "daily", "period": "2025-11-30"},
                       headers=agent).status_code == 403
    # periods: malformed, the wrong shape for the kind, not begun
    for body in ({"kind": "monthly", "period": "2025-13"}, {"kind": "daily", "period": MONTH},
                 {"kind": "monthly", "period": "2999-01"}, {"kind": "daily", "period": "2025-02-30"}):
        bad = client.post("/api/v1/reports", json=body, headers=manager)
        assert bad.status_code == 422, (body, bad.text)
    assert client.get("/api/v1/reports/999/pdf", headers=manager).status_code == 404
    # a file changed on disk after archiving is refused, not served
    with database.session() as db:
        path = settings.data_dir / db.get(Report, made["id"]).pdf_path
    path.write_bytes(path.read_bytes() + b"\n")
    assert client.get(made["files"][1]["url"], headers=manager).status_code == 409


@pytest.fixture
def run(settings: Settings, database: Database) -> Iterator[Any]:
    runner = CliRunner()
    env = env_for(settings)
    yield lambda *args: runner.invoke(cli, list(args), env=env)


def test_cli_writes_both_files_and_archives(run: Any, database: Database, dataset: None, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    r = run("report", "monthly", "--month", MONTH, "--out", str(out))
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["12351职工服务热线月度分析报告（2025年11月）.docx",
                                                     "12351职工服务热线月度分析报告（2025年11月）.pdf"]
    assert "已归档" in r.output and "sha256" in r.output
    r = run("report", "daily", "--day", "2025-11-30", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert (out / "企业预警风险信息日报（2025年11月30日）.pdf").stat().st_size > 1000
    r = run("report", "monthly", "--month", "11/2025", "--out", str(out))
    assert r.exit_code == 2 and "YYYY-MM" in r.output
    with database.session() as db:
        assert db.execute(sa.select(sa.func.count(Report.id))).scalar_one() == 2


def test_a_month_without_data_and_the_workers_morning_report(database: Database, settings: Settings) -> None:
    with database.session() as db:
        f = monthly.figures(db=db, month="2025-06", now=NOW)
    assert f.current.cases == 0 and f.hot_terms == [] and f.current.on_time_rate is None
    assert monthly.say_change("环比", 0, 0) == "环比无可比数据（上期为0）"
    assert monthly.document(f).text().count("未记录") == 2  # in the section and in the notes
    read = service.daily_job(database=database, settings=settings, now=utc("2025-12-02T23:00:00"))  # 07:00 on 3rd
    assert (read.kind, read.period, read.generated_by) == (ReportKind.daily, "2025-12-02", "system:reports")
    assert read.title == "企业预警风险信息日报（2025年12月2日）" and read.summary["new_warnings"] == 0
