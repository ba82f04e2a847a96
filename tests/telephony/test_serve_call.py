"""The whole way: a sipp call into `hotline serve` becomes a transcribed, searchable case."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from app.config import Settings
from tests.helpers import word_said
from tests.processes import env_for, start, stop, wait_for
from tests.telephony import sipp
from tests.telephony.conftest import free_port

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sipp.SIPP, reason="sipp (sip-tester) is not installed")]
CALLER = Path(__file__).resolve().parent.parent / "data" / "d03_caller_11s.ulaw"  # D03 caller, first 11 s


def follow_live(base: str, token: str, events: list[dict[str, Any]], done: threading.Event) -> None:
    """What the staff console does: the calls feed, then the live transcript of the call that starts."""
    from websockets.sync.client import connect

    ws_base = base.replace("http://", "ws://")
    with connect(f"{ws_base}/api/v1/calls/live?token={token}") as feed:
        started = json.loads(feed.recv(timeout=60))
        events.append(started)
    with connect(f"{ws_base}/api/v1/calls/{started['call_id']}/live?token={token}") as call:
        for message in call:
            event = json.loads(message)
            events.append(event)
            if event["type"] == "call_ended":
                break
    done.set()


def test_a_sip_call_into_serve_becomes_a_searchable_case(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var", redis_url=None)
    http, sip = free_port(), free_port()
    env = env_for(settings, HOTLINE_HTTP_PORT=str(http), HOTLINE_SIP_ENABLED="true", HOTLINE_SIP_PORT=str(sip),
                  HOTLINE_RTP_PORT_MIN="39000", HOTLINE_RTP_PORT_MAX="39998")
    log = tmp_path / "serve.log"
    serve = start(["serve"], env, log)
    base = f"http://127.0.0.1:{http}"
    try:
        wait_for(lambda: "SIP adapter on" in log.read_text(), 90, "the SIP adapter", log)
        tree = psutil.Process(serve.pid).children(recursive=True)
        assert any("sip" in p.cmdline() for p in tree) and any("telephony.media" in p.cmdline() for p in tree)
        wait_for(lambda: "live transcription listening" in log.read_text(), 90, "live transcription", log)
        password = (settings.data_dir / "initial-admin-password.txt").read_text().strip()
        with httpx.Client(base_url=base, timeout=30) as client:
            token = client.post("/api/v1/auth/token", data={"username": "admin", "password": password}).json()
            client.headers["Authorization"] = f"Bearer {token['access_token']}"
            live: list[dict[str, Any]] = []
            done = threading.Event()
            threading.Thread(target=follow_live, args=(base, token["access_token"], live, done), daemon=True).start()
            time.sleep(0.5)
            r = sipp.run(sipp.call_scenario(audio=CALLER, seconds=11.5, caller="13812345678"), tmp_path, sip)
            assert r.returncode == 0, r.stdout[-2000:]
            assert done.wait(60), live
            # live: the call announced (screen pop: no earlier cases), partials while the caller spoke, finals
            assert live[0]["type"] == "call_started" and live[0]["caller"] == "13812345678"
            assert live[0]["previous_cases"] == []
            finals = [e for e in live if e["type"] == "final"]
            assert any(e["type"] == "partial" and e["role"] == "caller" for e in live)
            assert finals and all(e["role"] == "caller" for e in finals)
            assert "派到黄岛" in "".join(e["text"] for e in finals)

            # post-call: the call is filed, its recording transcribed (slow on a busy 2-core box), a case made
            def filed() -> dict[str, Any] | None:
                calls = client.get("/api/v1/calls").json()
                return calls[0] if calls and calls[0]["recording_id"] else None

            call = wait_for(filed, 60, "the call to be filed as a recording", log)
            assert isinstance(call, dict)
            assert (call["caller"], call["status"], call["source"]) == ("13812345678", "ended", "sip")

            def transcribed() -> dict[str, Any] | None:
                rec = client.get(f"/api/v1/recordings/{call['recording_id']}").json()
                return rec if rec["status"] in ("done", "failed") else None

            rec = wait_for(transcribed, 420, "the call's recording to be transcribed", log)
            assert isinstance(rec, dict) and rec["status"] == "done", rec
            cases = client.get("/api/v1/cases").json()["items"]
            assert len(cases) == 1
            case = client.get(f"/api/v1/cases/{cases[0]['id']}").json()
            assert case["channel"] == "来电"
            assert {s["speaker"] for s in case["transcript"]["segments"]} >= {"caller"}
            # searchable by a word said in the call, the hit at the second it was said
            word = word_said(case["transcript"]["segments"])
            hits = client.get("/api/v1/search", params={"q": word}).json()
            assert [h["case_id"] for h in hits["items"]] == [case["id"]], hits
            assert hits["items"][0]["speaker"] == "caller" and hits["items"][0]["start"] is not None
            kept = wait_for(lambda: client.get(f"/api/v1/calls/{call['id']}").json()["live_segments"], 30,
                            "the live transcript kept on the call", log)
            assert [s["text"] for s in kept] == [e["text"] for e in finals]  # type: ignore[union-attr]
    finally:
        assert stop(serve, signal.SIGINT) == 0
