"""The web app end to end: Chromium (Debian's, headless, driven by Playwright) against a real `hotline serve`
with a real sipp call. Log in, see the call's live transcript in the agent console, save its case, find it by
a word said in the call and land on that second, play and download the recording, see the dashboard's
charts, and check that an agent cannot open the admin page.

Assertions are on the DOM's text, never on rendering (no CJK font on the CI machine). Screenshots of each page
go to $HOTLINE_WEB_SCREENSHOTS (else the test's tmp folder); they are artifacts, not committed."""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import word_said
from tests.processes import ROOT
from tests.telephony import sipp
from tests.web.conftest import AGENT_PASSWORD, CHROMIUM, DIST, Server, api_client, login, serving

CALLER = ROOT / "tests" / "data" / "d03_caller_11s.ulaw"  # D03 caller, first 11 s: "…派到黄岛…"
SUMMARY = "网页端到端测试：来电人反映用工问题"  # shares no word with the call, so a hit on a word said is in the call

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium is not installed (`make test` installs it)"),
    pytest.mark.skipif(not sipp.SIPP, reason="sipp (sip-tester) is not installed"),
    pytest.mark.skipif(not DIST.exists(), reason="the web app is not built (`make test` runs npm run build)"),
]
# A partial line seen at any moment (they are replaced quickly, so a poll could miss them).
SEE_PARTIALS = """
new MutationObserver(() => {
  if (document.querySelector('[data-test=partial-line]')) window.__sawPartial = true
}).observe(document, {childList: true, subtree: true})
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serving(tmp_path_factory.mktemp("web-e2e"), sip=True) as running:
        yield running


def test_staff_work_a_call_in_the_browser(server: Server, shots: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as pw, api_client(server) as client:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1366, "height": 768}, accept_downloads=True, locale="zh-CN")
        context.add_init_script(SEE_PARTIALS)
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))

        # a page behind the login sends you to it; a wrong password is said so, in Chinese
        page.goto(f"{server.base}/#/cases")
        page.wait_for_selector("[data-test=login-submit]")
        page.screenshot(path=shots / "01-login.png")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", "wrong-password")
        page.click("[data-test=login-submit]")
        assert "用户名或密码错误" in page.inner_text("[data-test=login-error]", timeout=10_000)
        login(page, server.base, "admin", server.admin_password)

        # the console: a sipp call pops up, and both its partials and finals appear as it is spoken
        page.goto(f"{server.base}/#/console")
        page.wait_for_selector("[data-test=feed-state]:has-text('来电推送已连接')", timeout=15_000)
        call = threading.Thread(target=lambda: sipp.run(
            sipp.call_scenario(audio=CALLER, seconds=11.5, caller="13812345678"), tmp_path, server.sip_port))
        call.start()
        page.wait_for_selector("[data-test=caller]:has-text('13812345678')", timeout=30_000)
        assert "无历史工单" in page.inner_text("[data-test=screen-pop] >> xpath=..")
        page.wait_for_selector("[data-test=final-line]:has-text('黄岛')", timeout=60_000)
        page.screenshot(path=shots / "02-console-live.png")
        call.join(60)
        page.wait_for_selector("[data-test=call-state]:has-text('通话已结束')", timeout=30_000)
        assert page.evaluate("window.__sawPartial === true"), "no provisional (partial) line was shown"
        assert page.locator("[data-test=partial-line]").count() == 0  # every partial replaced by its final

        # the call is transcribed and filed; its case opens in the console, prefilled, and is saved from there
        page.wait_for_selector("[data-test=case-form]", timeout=420_000)
        case_no = page.inner_text("[data-test=console-case-no]")
        assert re.fullmatch(r"12351-\d{4}-\d{6}", case_no), case_no
        page.fill("textarea[data-test=field-summary]", SUMMARY)
        page.click("[data-test=save-case]")
        page.wait_for_selector(".el-message--success:has-text('工单已保存')", timeout=15_000)
        page.screenshot(path=shots / "03-console-case.png")
        case = client.get("/api/v1/cases").json()["items"][0]
        assert case["case_no"] == case_no
        detail = client.get(f"/api/v1/cases/{case['id']}").json()
        assert detail["summary"] == SUMMARY
        assert detail["confirmed_by"] == "admin"

        # full-text search: the hit is highlighted and opens the case at the second it was said
        page.goto(f"{server.base}/#/cases")
        word = word_said(detail["transcript"]["segments"], avoid=SUMMARY)
        page.fill("input[data-test=search-input]", word)
        page.press("input[data-test=search-input]", "Enter")
        hit = page.locator("[data-test=hit]").first
        hit.wait_for(timeout=15_000)
        assert word in hit.locator("mark").first.inner_text()
        page.screenshot(path=shots / "04-search.png")
        expected = client.get("/api/v1/search", params={"q": word}).json()["items"][0]
        assert expected["start"] is not None, expected  # said in the call: the hit carries its second
        hit.click()
        second = f"{math.ceil(expected['start'] * 10) / 10:g}"
        page.wait_for_url(re.compile(rf"#/cases/{expected['case_id']}\?t={re.escape(second)}$"), timeout=10_000)
        assert page.inner_text("[data-test=case-no]", timeout=15_000) == case_no

        # the player: loaded at that second, the segment said then highlighted; plays; downloads (audited)
        page.wait_for_selector("[data-test=play]:not([disabled])", timeout=30_000)
        clock = page.inner_text("[data-test=player-time]")
        assert clock.startswith(f"00:{int(expected['start']):02d} /"), clock
        active = page.locator(".line.active")
        assert expected["text"] in active.inner_text(timeout=5_000)
        page.click("[data-test=play]")
        page.wait_for_selector("[data-test=play]:has-text('暂停')", timeout=10_000)
        page.wait_for_function(
            "t => !document.querySelector('[data-test=player-time]').innerText.startsWith(t)", arg=clock[:5],
            timeout=10_000)
        page.click("[data-test=play]")
        # word by word: clicking a word plays from it, and the word being played is lit
        word_span = page.locator("[data-test=final-line]").nth(1).locator(".word").nth(1)
        at = float(word_span.get_attribute("data-start") or "nan")
        word_span.click()
        page.wait_for_function("s => document.querySelector('[data-test=player-time]').innerText.startsWith(s)",
                               arg=f"00:{int(at):02d}", timeout=5_000)
        assert page.locator(".line.active .word.current").inner_text() == word_span.inner_text()
        page.screenshot(path=shots / "05-case-detail.png")
        with page.expect_download(timeout=30_000) as download:
            page.click("[data-test=download]")
        saved = tmp_path / download.value.suggested_filename
        download.value.save_as(saved)
        assert saved.suffix == ".wav" and saved.read_bytes()[:4] == b"RIFF"
        timeline = client.get(f"/api/v1/cases/{case['id']}/timeline").json()
        assert "recording.downloaded" in {e["action"] for e in timeline} or any(
            e["action"].startswith("recording.") and "download" in e["action"] for e in timeline), timeline

        # the dashboard draws its charts from the statistics
        page.goto(f"{server.base}/#/dashboard")
        for chart in ("chart-category", "chart-district", "chart-trend"):
            page.wait_for_selector(f"[data-test={chart}] canvas", timeout=15_000)
        page.wait_for_selector("[data-test=chart-category][data-points='1']", timeout=15_000)
        assert page.locator("[data-test=dashboard-error]").count() == 0
        assert page.inner_text("[data-test=kpi-all]").startswith("1")
        page.screenshot(path=shots / "06-dashboard.png")

        # an agent sees no admin menu, and is refused the admin page
        page.click("[data-test=logout]")
        page.wait_for_selector("[data-test=login-notice]:has-text('您已退出登录')")
        login(page, server.base, "agent1", AGENT_PASSWORD)
        assert page.locator("[data-test=menu-admin]").count() == 0
        page.goto(f"{server.base}/#/admin")
        assert "无权访问" in page.inner_text("[data-test=forbidden]", timeout=10_000)
        page.screenshot(path=shots / "07-agent-forbidden.png")

        # a session that expires goes back to the login page with a message
        page.evaluate("localStorage.setItem('hotline.token', 'expired.token.value')")
        page.goto(f"{server.base}/#/cases")
        page.reload()
        assert "登录已过期" in page.inner_text("[data-test=login-notice]", timeout=10_000)
        browser.close()
    assert errors == []
