"""An agent (who may play recordings but not download them) plays and seeks a recording in Chromium: the page's
player reads the audio range by range (the API answers agents in pieces of at most 1 MiB and refuses them the
whole file), and Chromium's own <audio> element plays and seeks over those short 206 answers too.

A real `hotline serve` transcribes and files the recording (Whisper), as in test_e2e.py."""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CALL
from tests.web.conftest import AGENT_PASSWORD, CHROMIUM, DIST, Server, api_client, login, serving

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium is not installed (`make test` installs it)"),
    pytest.mark.skipif(not DIST.exists(), reason="the web app is not built (`make test` runs npm run build)"),
]
MiB = 1 << 20


def longer_call(times: int) -> bytes:
    """The D03 call (8 kHz μ-law stereo) said ``times`` times over, as one WAV: over 1 MiB, so the agent's
    player needs several ranges."""
    raw = CALL.read_bytes()
    assert raw[:4] == b"RIFF" and raw[8:12] == b"WAVE"
    chunks, pos = {}, 12
    while pos + 8 <= len(raw):
        name, size = raw[pos:pos + 4], struct.unpack("<I", raw[pos + 4:pos + 8])[0]
        chunks[name] = raw[pos + 8:pos + 8 + size]
        pos += 8 + size + (size & 1)
    fmt, data = chunks[b"fmt "], chunks[b"data"] * times
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serving(tmp_path_factory.mktemp("player-e2e"), sip=False) as running:
        yield running


def test_an_agent_plays_and_seeks_a_recording_read_in_ranges(server: Server, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    audio = longer_call(3)
    assert len(audio) > MiB
    with api_client(server) as admin:
        r = admin.post("/api/v1/recordings", files={"file": ("long.wav", audio, "audio/wav")})
        assert r.status_code == 201, r.text
        recording_id = r.json()["id"]
        deadline = time.monotonic() + 600
        while not (cases := admin.get("/api/v1/cases", params={"recording_id": recording_id}).json()["items"]):
            assert time.monotonic() < deadline, "the recording was not filed as a case"
            time.sleep(2)
        case_id = cases[0]["id"]

        errors: list[str] = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                         args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
            page = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN").new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            login(page, server.base, "agent1", AGENT_PASSWORD)

            # the case page's player (WaveSurfer): loaded range by range, opens at the second asked, plays
            page.goto(f"{server.base}/#/cases/{case_id}?t=70")
            page.wait_for_selector("[data-test=play]:not([disabled])", timeout=60_000)
            assert page.locator("[data-test=player-error]").count() == 0
            assert page.locator("[data-test=download]").count() == 0  # agents may not download
            clock = page.inner_text("[data-test=player-time]")
            assert clock.startswith("01:10 / 01:2"), clock  # 87 s in all
            page.click("[data-test=play]")
            page.wait_for_function(
                "() => !document.querySelector('[data-test=player-time]').innerText.startsWith('01:10')",
                timeout=10_000)
            page.click("[data-test=play]")

            # Chromium's own media player over the same endpoint (the token added to its requests, as a
            # cookie would be): asks bytes=0-, gets 1 MiB, asks on as it plays and seeks
            token = page.evaluate("localStorage.getItem('hotline.token')")
            asked: list[str] = []

            def authorize(route) -> None:  # type: ignore[no-untyped-def]
                asked.append(route.request.headers.get("range", "-"))
                route.continue_(headers={**route.request.headers, "authorization": f"Bearer {token}"})

            page.route(f"**/api/v1/recordings/{recording_id}/audio", authorize)
            played_to = page.evaluate("""async (url) => {
                const a = new Audio(url)
                a.muted = true
                await new Promise((ok, fail) => { a.onloadedmetadata = ok; a.onerror = () => fail(new Error('load')) })
                a.currentTime = 80  // past the first MiB (about 65 s of this recording)
                await new Promise((ok) => { a.onseeked = ok })
                await a.play()
                await new Promise((ok) => { a.ontimeupdate = () => { if (a.currentTime > 81) ok() } })
                a.pause()
                return a.currentTime
            }""", f"{server.base}/api/v1/recordings/{recording_id}/audio")
            assert played_to > 81
            # it asked again past the first short answer (80 s is past the first MiB), never for the whole file
            assert len(asked) >= 2 and all(r.startswith("bytes=") for r in asked), asked
            browser.close()
        assert errors == []

        # on record: every piece the agent read, as played; nothing refused, nothing downloaded
        timeline = admin.get(f"/api/v1/cases/{case_id}/timeline", params={"limit": 500}).json()
        played = [e for e in timeline if e["action"] == "recording.played" and e["actor"] == "user:agent1"]
        assert len(played) >= 3, played  # the page's player: 2 ranges; Chromium's: at least one more
        assert all(int(e["details"]["bytes"].split("-")[1]) - int(e["details"]["bytes"].split("-")[0]) < MiB
                   for e in played)
        assert not [e for e in timeline if e["actor"] == "user:agent1"
                    and e["action"] in ("auth.denied", "recording.downloaded")]
