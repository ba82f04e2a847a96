"""台账, 线索, 报告 and exports end to end: Chromium (Debian's, headless, driven by Playwright) against a real
`hotline serve`.

Two calls are imported as real recordings (the D03 call cut to two lengths, so each is its own call), transcribed
by the worker and filed as cases; staff then file them as 欠薪 in 黄岛区 with the figures the caller gave, through
the API the case form uses. A manager (created by the admin over the API) then works in the browser:

- 台账: the 新增欠薪线索清单 lists both cases with the totals row over all of it; the Excel export downloads
  (fetched with the session's token, saved under its Chinese name) and openpyxl reads it back: title, header,
  one row per case (the same numbers as the API's ledger), a 合计 row.
- 线索: a clue registered through the form (舆情监测, linked to the first case), opened, moved 核实中 → 属实; a
  second tab left open on it asks for 不属实 and shows the server's Chinese refusal. The ledgers then list the
  clue (and the linked case once, through it), also on the 舆情核实清单.
- 报告: a 日报 for today (Beijing) and a 月报 for this month generated on the page, listed in the archive with
  their digests, the 月报 previewed (a PDF in an <iframe> from a blob URL) and both PDFs downloaded; pypdf reads
  Chinese text out of them.
- The case page exports the case as PDF (pypdf finds its number) and the transcript as SRT.
- 线索 import: an XLSX with a bad row is refused whole with the row listed; the corrected file registers both.

Assertions are on the DOM's text and on the downloaded files. Screenshots go to $HOTLINE_WEB_SCREENSHOTS (else
the test's tmp folder); they are artifacts, not committed."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.processes import ROOT, wait_for
from tests.web.conftest import CHROMIUM, DIST, Server, api_client, login, serving
from tests.web.test_warnings_e2e import cut_wav

CALL = ROOT / "tests" / "data" / "call_d03.wav"
CUTS = (10.8, 11.0)  # two different files: two calls, two cases
MANAGER, MANAGER_PASSWORD = "manager2", "manager-password-456"
CLUE_TITLE = "网帖反映某物流园拖欠三十名装卸工工资"
CLUE_ENTERPRISE = "青岛海港物流园有限公司"
HAN = re.compile(r"[\u4e00-\u9fff]")
LEDGER_COLUMNS = ["编号", "来源", "受理时间", "企业", "统一社会信用代码", "区市", "涉及人数", "金额", "诉求",
                  "办理进展", "责任人", "时限", "是否逾期", "办结时间", "追回金额"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium is not installed (`make test` installs it)"),
    pytest.mark.skipif(not DIST.exists(), reason="the web app is not built (`make test` runs npm run build)"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serving(tmp_path_factory.mktemp("reports-e2e"), sip=False) as running:
        yield running


def file_cases(client: httpx.Client) -> list[dict[str, Any]]:
    """Two imported calls, transcribed and filed, then filed as 欠薪 in 黄岛区 as an agent would in the form."""
    for n, seconds in enumerate(CUTS):
        sent = client.post("/api/v1/recordings", data={"channel": "来电"},
                           files={"file": (f"d03-{n}.wav", cut_wav(CALL, seconds), "audio/wav")})
        assert sent.status_code == 201, sent.text

    def filed() -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = client.get("/api/v1/cases", params={"limit": 10}).json()["items"]
        return items if len(items) >= len(CUTS) else None

    wait_for(filed, 600, "the calls to be transcribed and filed")
    cases = []
    for n, case in enumerate(sorted(client.get("/api/v1/cases", params={"limit": 10}).json()["items"],
                                    key=lambda c: c["id"])):
        changed = client.patch(f"/api/v1/cases/{case['id']}", json={
            "category": "欠薪", "district": "黄岛区", "workers": 5 + n, "amount": 100_000 * (n + 1)})
        assert changed.status_code == 200, changed.text
        cases.append(changed.json())
    return cases


def pdf_text(data: bytes) -> str:
    from pypdf import PdfReader

    assert data[:5] == b"%PDF-", data[:20]
    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


def download(page: Any, click: str, folder: Path, *, then: str | None = None) -> Path:
    """Click ``click`` (and then ``then``: a dropdown's item) and save the download the page makes."""
    with page.expect_download(timeout=120_000) as info:
        page.click(click)
        if then:
            page.click(then)
    got = info.value
    assert got.failure() is None, got.failure()
    path = folder / got.suggested_filename
    got.save_as(path)
    return path


def clue_file(path: Path, second_source: str) -> Path:
    """An import file as offices keep them: a title line, the header, two clues (the second from
    ``second_source``; its spreadsheet row is 4)."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["上级交办线索登记表"])
    sheet.append(["来源", "类别", "标题", "受理时间", "企业名称", "区市", "涉及人数", "金额", "责任单位"])
    sheet.append(["上级交办", "欠薪", "某小区物业拖欠保洁员工资", "2026/1/5 9:30", "青岛安居物业有限公司", "市南区", 8,
                  "6.4万", "市南区总工会"])
    sheet.append([second_source, "欠薪", "网帖反映某餐饮店拖欠服务员工资", "2026年1月6日", "青岛味道餐饮有限公司",
                  "市北区", "5人", "32,000元", "市北区总工会"])
    book.save(path)
    return path


def pick(page: Any, select: str, option: str) -> None:
    """Choose ``option`` in the Element Plus select ``select``."""
    page.click(select)
    page.locator(".el-select-dropdown__item:visible", has_text=option).first.click()


def test_a_manager_works_ledgers_clues_reports_and_exports(server: Server, shots: Path, tmp_path: Path) -> None:
    from openpyxl import load_workbook
    from playwright.sync_api import sync_playwright

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    errors: list[str] = []
    beijing = datetime.now(ZoneInfo("Asia/Shanghai"))
    today, month = beijing.strftime("%Y-%m-%d"), beijing.strftime("%Y-%m")
    with sync_playwright() as pw, api_client(server) as client:
        created = client.post("/api/v1/users", json={"username": MANAGER, "password": MANAGER_PASSWORD,
                                                     "role": "manager"})
        assert created.status_code == 201, created.text
        cases = file_cases(client)
        case_nos = sorted(c["case_no"] for c in cases)

        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN", accept_downloads=True)
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        login(page, server.base, MANAGER, MANAGER_PASSWORD)
        for item in ("clues", "ledgers", "reports"):
            assert page.locator(f"[data-test=menu-{item}]").count() == 1, item

        # --- 台账: both cases on the 新增欠薪线索清单, the totals, the Excel export read back ---------------
        page.click("[data-test=menu-ledgers]")
        page.wait_for_url(re.compile(r"#/ledgers"), timeout=10_000)
        numbers = page.locator("[data-test=ledger-table] [data-test=ledger-number]")
        numbers.nth(1).wait_for(timeout=15_000)
        assert sorted(numbers.all_inner_texts()) == case_nos
        totals = page.inner_text("[data-test=ledger-totals]")
        assert "全部 2 条" in totals and "涉及 11 人" in totals and "300,000 元" in totals, totals
        footer = page.inner_text("[data-test=ledger-table] .el-table__footer")
        assert "合计" in footer and "300,000" in footer, footer
        page.screenshot(path=shots / "reports-01-ledger.png", full_page=True)

        xlsx = download(page, "[data-test=ledger-export]", downloads)
        assert xlsx.name.endswith(".xlsx") and "新增欠薪线索清单" in xlsx.name, xlsx.name
        api_ledger = client.get("/api/v1/ledgers/arrears-new", params={"limit": 500}).json()
        book = load_workbook(xlsx, read_only=True)
        try:
            rows = [list(r) for r in book.worksheets[0].iter_rows(values_only=True)]
        finally:
            book.close()
        assert rows[0][0] == "新增欠薪线索清单", rows[0]
        assert rows[2][:15] == LEDGER_COLUMNS, rows[2]
        data = [r for r in rows[3:] if r[0] and not str(r[0]).startswith("合计")]
        assert [r[0] for r in data] == [r["number"] for r in api_ledger["items"]]
        assert sorted(r[0] for r in data) == case_nos
        assert sum(r[7] for r in data) == api_ledger["totals"]["amount"] == 300_000
        assert any(str(r[0]).startswith("合计") for r in rows[3:]), rows[-1]

        # --- 线索: registered through the form, verified (属实); a stale tab's move refused ------------------
        page.click("[data-test=menu-clues]")
        page.wait_for_selector("[data-test=clues-table]", timeout=10_000)
        page.click("[data-test=clue-new]")
        page.wait_for_selector("[data-test=clue-dialog] [data-test=clue-submit]", timeout=5_000)
        page.click("[data-test=clue-submit]")  # nothing filled in: checked before sending
        assert "请选择线索来源" in page.inner_text("[data-test=clue-form-error]", timeout=5_000)
        pick(page, "[data-test=clue-source]", "舆情监测")
        page.fill("input[data-test=clue-title]", CLUE_TITLE)
        page.fill("textarea[data-test=clue-content]", "网帖称该物流园拖欠装卸工三个月工资，约三十人。")
        pick(page, "[data-test=clue-district]", "黄岛区")
        page.fill("[data-test=clue-enterprise] input, input[data-test=clue-enterprise]", CLUE_ENTERPRISE)
        page.fill("[data-test=clue-workers] input, input[data-test=clue-workers]", "30")
        page.fill("[data-test=clue-amount] input, input[data-test=clue-amount]", "450000")
        page.fill("input[data-test=clue-unit]", "黄岛区总工会")
        page.fill("input[data-test=clue-responsible]", "李明")
        page.fill("input[data-test=clue-cases]", str(cases[0]["id"]))
        page.screenshot(path=shots / "reports-02-clue-form.png")
        page.click("[data-test=clue-submit]")
        page.wait_for_url(re.compile(r"#/clues/\d+$"), timeout=15_000)
        clue_id = int(page.url.rsplit("/", 1)[1])
        page.wait_for_selector("[data-test=clue-status]:has-text('核实中')", timeout=15_000)
        number = page.inner_text("[data-test=clue-number]")
        assert re.fullmatch(r"XS-\d{4}-\d{6}", number), number
        assert page.inner_text("[data-test=clue-title]") == CLUE_TITLE
        assert page.locator("[data-test=clue-case]").count() == 1
        assert "剩余 15 天" in page.inner_text("[data-test=clue-deadline]")  # 倒排工期: 15 days unless given

        stale = context.new_page()  # a second tab on the same clue, left open
        stale.on("pageerror", lambda e: errors.append(str(e)))
        stale.goto(page.url)
        stale.wait_for_selector("[data-test=clue-move-不属实]", timeout=15_000)

        page.click("[data-test=clue-move-属实]")
        page.fill("textarea[data-test=clue-move-note]", "经电话联系三名装卸工，情况属实")
        page.click("[data-test=clue-move-submit]")
        page.wait_for_selector("[data-test=clue-status]:has-text('属实')", timeout=10_000)
        page.wait_for_selector("[data-test=clue-move-dialog]", state="hidden", timeout=5_000)
        assert page.inner_text("[data-test=clue-verdict]") == "属实"
        assert "情况属实" in page.inner_text("[data-test=clue-note]")
        moves = page.locator("[data-test=clue-actions] button").all_inner_texts()
        assert [m.strip() for m in moves] == ["转为工单", "结案"], moves
        page.screenshot(path=shots / "reports-03-clue-verified.png", full_page=True)

        stale.click("[data-test=clue-move-不属实]")
        stale.click("[data-test=clue-move-submit]")
        assert "请填写核实情况" in stale.inner_text("[data-test=clue-move-error]", timeout=5_000)  # checked first
        stale.fill("textarea[data-test=clue-move-note]", "企业称已发放")
        stale.click("[data-test=clue-move-submit]")
        stale.wait_for_selector("[data-test=clue-move-error]:has-text('不能直接')", timeout=10_000)
        refused = stale.inner_text("[data-test=clue-move-error]")
        assert "属实" in refused and "不属实" in refused and "结案" in refused, refused  # the server's words
        stale.screenshot(path=shots / "reports-04-clue-refused.png")
        stale.close()
        saved = client.get(f"/api/v1/clues/{clue_id}").json()
        assert (saved["status"], saved["verdict"], saved["source"], saved["workers"], saved["amount"]) == \
            ("属实", "属实", "舆情监测", 30, 450_000), saved
        assert [c["id"] for c in saved["cases"]] == [cases[0]["id"]]

        # the list shows it; the ledgers list the clue (and the linked case once, through it)
        page.click("[data-test=menu-clues]")
        row = page.locator("[data-test=clues-table] .el-table__row", has_text=number)
        row.wait_for(timeout=10_000)
        assert row.locator("[data-test=clue-row-status]").inner_text() == "属实"
        page.click("[data-test=menu-ledgers]")
        numbers.nth(1).wait_for(timeout=15_000)
        page.wait_for_selector(f"[data-test=ledger-number]:has-text('{number}')", timeout=15_000)
        assert sorted(numbers.all_inner_texts()) == sorted([number, cases[1]["case_no"]])  # cases[0] via the clue
        page.click("#tab-opinion")
        page.wait_for_selector("[data-test=ledger-title]:has-text('舆情核实清单')", timeout=10_000)
        page.wait_for_selector(f"[data-test=ledger-number]:has-text('{number}')", timeout=15_000)
        assert numbers.count() == 1
        page.screenshot(path=shots / "reports-05-ledger-opinion.png", full_page=True)

        # --- 报告: today's 日报 and this month's 月报 generated, archived, previewed, downloaded ------------
        page.click("[data-test=menu-reports]")
        page.wait_for_selector("[data-test=reports-table]", timeout=10_000)
        page.click("[data-test=report-kind-daily]")
        shown = page.input_value("[data-test=report-day] input, input[data-test=report-day]")
        assert shown == f"{beijing.year}年{beijing.month}月{beijing.day}日", shown
        page.click("[data-test=report-generate]")
        page.wait_for_selector("[data-test=report-generated]:has-text('企业预警风险信息日报')", timeout=180_000)
        page.click("[data-test=report-kind-monthly]")
        shown = page.input_value("[data-test=report-month] input, input[data-test=report-month]")
        assert shown == f"{beijing.year}年{beijing.month}月", shown
        page.click("[data-test=report-generate]")
        page.wait_for_selector("[data-test=report-generated]:has-text('月度分析报告')", timeout=300_000)
        archive = client.get("/api/v1/reports").json()["items"]
        assert sorted((r["kind"], r["period"]) for r in archive) == [("daily", today), ("monthly", month)], archive
        assert {r["generated_by"] for r in archive} == {f"user:{MANAGER}"}
        monthly = next(r for r in archive if r["kind"] == "monthly")
        daily = next(r for r in archive if r["kind"] == "daily")
        table = page.locator("[data-test=reports-table] .el-table__body-wrapper .el-table__row")
        table.nth(1).wait_for(timeout=10_000)
        assert table.count() == 2
        pdf_sha = next(f["sha256"] for f in monthly["files"] if f["format"] == "pdf")
        shown_sha = page.locator("[data-test=report-sha-pdf]").all_inner_texts()
        assert f"{pdf_sha[:8]}…{pdf_sha[-4:]}" in shown_sha, shown_sha
        page.screenshot(path=shots / "reports-06-archive.png", full_page=True)

        page.click(f"[data-test=report-preview-{monthly['id']}]")
        frame = page.locator("[data-test=report-preview-frame]")
        frame.wait_for(timeout=30_000)
        assert (frame.get_attribute("src") or "").startswith("blob:")
        page.wait_for_timeout(1500)  # let the PDF viewer draw for the screenshot
        page.screenshot(path=shots / "reports-07-preview.png")
        page.locator("[data-test=report-preview] .el-dialog__headerbtn").click()

        monthly_pdf = download(page, f"[data-test=report-pdf-{monthly['id']}]", downloads)
        assert monthly_pdf.name == f"{monthly['title']}.pdf", monthly_pdf.name
        text = pdf_text(monthly_pdf.read_bytes())
        assert len(HAN.findall(text)) > 100 and "月度分析报告" in text.replace("\n", ""), text[:500]
        daily_pdf = download(page, f"[data-test=report-pdf-{daily['id']}]", downloads)
        text = pdf_text(daily_pdf.read_bytes())
        assert "企业预警风险信息日报" in text.replace("\n", ""), text[:500]

        # --- the case page: the case as PDF, the transcript as SRT ----------------------------------------------
        case = cases[0]
        page.goto(f"{server.base}/#/cases/{case['id']}")
        page.wait_for_selector("[data-test=case-no]", timeout=15_000)
        case_pdf = download(page, "[data-test=case-export-button]", downloads, then="[data-test=case-export-pdf]")
        assert case_pdf.suffix == ".pdf" and case["case_no"] in case_pdf.name, case_pdf.name
        text = pdf_text(case_pdf.read_bytes())
        assert case["case_no"] in text and HAN.search(text), text[:500]
        srt = download(page, "[data-test=transcript-export-button]", downloads,
                       then="[data-test=transcript-export-srt]")
        body = srt.read_text(encoding="utf-8-sig")
        assert srt.suffix == ".srt" and "-->" in body and HAN.search(body), body[:300]
        page.screenshot(path=shots / "reports-08-case-export.png", full_page=True)

        # --- 线索 import: a file with a bad row is refused whole, its rows listed; the corrected one goes in --------
        page.click("[data-test=menu-clues]")
        page.wait_for_selector("[data-test=clues-table]", timeout=10_000)
        page.set_input_files("[data-test=clue-import-file]", files=[clue_file(downloads / "线索导入.xlsx", "微博")])
        refused_rows = page.locator("[data-test=clue-import-errors] .el-table__body-wrapper .el-table__row")
        refused_rows.first.wait_for(timeout=15_000)
        assert refused_rows.count() == 1
        assert "未知的来源：微博" in refused_rows.first.inner_text() and "4" in refused_rows.first.inner_text()
        page.screenshot(path=shots / "reports-09-import-refused.png", full_page=True)
        corrected = clue_file(downloads / "线索导入2.xlsx", "舆情监测")
        page.set_input_files("[data-test=clue-import-file]", files=[corrected])
        assert "登记线索 2 条" in page.inner_text("[data-test=clue-import-result]", timeout=15_000)
        assert page.locator("[data-test=clue-import-errors]").count() == 0
        imported = page.locator("[data-test=clues-table] .el-table__row", has_text="某小区物业拖欠保洁员工资")
        imported.wait_for(timeout=10_000)
        assert client.get("/api/v1/clues").json()["total"] == 3

        # every export and download is on record, by the manager
        audit = client.get("/api/v1/audit/events", params={"actor": f"user:{MANAGER}", "limit": 500})
        assert audit.status_code == 200, audit.text
        actions = {e["action"] for e in audit.json()["items"]}
        assert {"ledger.exported", "report.generated", "report.downloaded", "case.exported",
                "transcript.exported", "clue.created", "clue.transition", "clues.imported"} <= actions, actions
        browser.close()
    assert errors == []
