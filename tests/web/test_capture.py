"""The 现场记录 (session capture) page end to end: Chromium (Debian's, headless) whose fake microphone plays
13 s of a real mediation session (dev corpus MD01: mediator, worker and employer on one microphone) against a
real `hotline serve`. A mediator picks 调解, records, sees the live transcript come in, stops, and the page
shows the case it was filed as; through the API the call is a browser capture on channel 调解, the recording
mono 16 kHz, and the case's transcript says the clip's words with diarized speakers (S1, S2…).

Assertions are on the DOM's text, never on rendering (no CJK font on the CI machine). Screenshots go to
$HOTLINE_WEB_SCREENSHOTS (else the test's tmp folder); they are artifacts, not committed."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from asr import audio
from tests.processes import ROOT
from tests.web.conftest import CHROMIUM, DIST, Server, api_client, login, serving

# MD01 0–13.2 s: mediator "双方今天就未签劳动合同的二倍工资问题进行调解。",
# worker "我入职十个月了，公司一直没有和我签合同。", employer "我们当时给了合同，是他自己一直没签回来。"
CLIP = ROOT / "tests" / "data" / "md01_room_13s.wav"
WORDS = ("合同", "调解", "工资", "公司", "入职", "十个月")
MEDIATOR_PASSWORD = "mediator-password-123"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium is not installed (`make test` installs it)"),
    pytest.mark.skipif(not DIST.exists(), reason="the web app is not built (`make test` runs npm run build)"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serving(tmp_path_factory.mktemp("web-capture"), sip=False) as running:
        yield running


def said(text: str) -> set[str]:
    return {w for w in WORDS if w in text}


def test_mediator_records_a_mediation_in_the_browser(server: Server, shots: Path) -> None:
    from playwright.sync_api import sync_playwright

    clip = audio.probe(CLIP)
    assert (clip.sample_rate, clip.channels) == (16000, 1) and 12 <= clip.duration <= 15
    errors: list[str] = []
    with sync_playwright() as pw, api_client(server) as client:
        made = client.post("/api/v1/users", json={"username": "mediator1", "role": "mediator",
                                                  "password": MEDIATOR_PASSWORD})
        assert made.status_code == 201, made.text
        # the fake microphone plays the clip once (no loop), then silence; permission is granted without a prompt
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=[
            "--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={CLIP}%noloop", "--autoplay-policy=no-user-gesture-required"])
        context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN",
                                      permissions=["microphone"])
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        login(page, server.base, "mediator1", MEDIATOR_PASSWORD)

        page.goto(f"{server.base}/#/capture")
        page.click("[data-test=capture-kind-mediation]")
        page.click("[data-test=capture-start]")
        page.wait_for_selector("[data-test=capture-stop]", timeout=15_000)
        started = time.monotonic()
        assert page.locator("[data-test=capture-error]").count() == 0

        # the live transcript: final lines with the clip's words while it plays
        page.wait_for_function(
            "words => [...document.querySelectorAll('[data-test=final-line]')].some("
            "l => words.some(w => l.innerText.includes(w)))", arg=list(WORDS), timeout=30_000)
        page.screenshot(path=shots / "capture-01-live.png")
        # the clip and its tail (waiting in the page, not time.sleep, so Playwright keeps handling events)
        page.wait_for_timeout(max(0.0, clip.duration + 1.5 - (time.monotonic() - started)) * 1000)
        assert page.locator("[data-test=capture-error]").count() == 0
        page.click("[data-test=capture-stop]")
        page.wait_for_selector("[data-test=capture-start]", timeout=10_000)
        # the session's end flushes the last utterance: every provisional line is replaced by its final
        page.wait_for_function("!document.querySelector('[data-test=partial-line]')", timeout=20_000)
        finals = page.locator("[data-test=final-line]")
        assert finals.count() >= 2, page.inner_text("[data-test=transcript]")  # three turns, two pauses
        live = page.inner_text("[data-test=transcript]")

        # filed, transcribed, made a case: the page names it and links to it
        page.wait_for_selector("[data-test=capture-filed]", timeout=120_000)
        case_no = page.inner_text("[data-test=capture-case]")
        assert re.fullmatch(r"12351-\d{4}-\d{6}", case_no), case_no
        page.screenshot(path=shots / "capture-02-filed.png")
        assert page.locator("[data-test=capture-error]").count() == 0

        # through the API: a browser capture on 调解, mono 16 kHz about the clip's length, recorded by the mediator
        calls = [c for c in client.get("/api/v1/calls").json() if c["source"] == "browser"]
        assert len(calls) == 1, calls
        call = calls[0]
        assert call["channel"] == "调解" and call["recording_id"], call
        rec = client.get(f"/api/v1/recordings/{call['recording_id']}").json()
        assert (rec["channels"], rec["sample_rate"], rec["layout"]) == (1, 16000, "mono"), rec
        assert clip.duration - 1 <= rec["duration"] <= clip.duration + 10, rec
        assert rec["status"] == "done" and rec["channel"] == "调解", rec

        case = next(c for c in client.get("/api/v1/cases").json()["items"] if c["case_no"] == case_no)
        assert case["recording_id"] == call["recording_id"]
        detail = client.get(f"/api/v1/cases/{case['id']}").json()
        segments = detail["transcript"]["segments"]
        text = "".join(s["text"] for s in segments)
        speakers = {s["speaker"] for s in segments}
        assert speakers and all(re.fullmatch(r"S\d+", s) for s in speakers), speakers
        assert len(speakers) >= 2, segments  # mediator, worker, employer: at least two told apart
        assert len(said(text)) >= 3, text
        assert len(said(live)) >= 2, live

        # the link opens the case
        page.click("[data-test=capture-case]")
        assert page.inner_text("[data-test=case-no]", timeout=15_000) == case_no
        page.screenshot(path=shots / "capture-03-case.png")
        browser.close()
    assert errors == []
