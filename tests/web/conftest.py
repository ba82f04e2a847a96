"""What the browser tests share: a real `hotline serve` in its own data folder, Debian's Chromium, a logged-in
page, an admin API client and the screenshots folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import Settings
from tests.processes import ROOT, env_for, start, stop, wait_for
from tests.telephony.conftest import free_port

CHROMIUM = Path("/usr/bin/chromium")
DIST = ROOT / "web" / "dist" / "index.html"
AGENT_PASSWORD = "agent-password-123"


@dataclass
class Server:
    base: str
    sip_port: int
    admin_password: str
    log: Path


@contextmanager
def serving(tmp: Path, *, sip: bool) -> Iterator[Server]:
    """`hotline serve` (live transcription on, SIP on a free port when ``sip``) with an agent ``agent1``."""
    settings = Settings(data_dir=tmp / "var", redis_url=None)
    http, sip_port = free_port(), (free_port() if sip else 0)
    extra = {"HOTLINE_HTTP_PORT": str(http)}
    if sip:
        extra.update(HOTLINE_SIP_ENABLED="true", HOTLINE_SIP_PORT=str(sip_port), HOTLINE_RTP_PORT_MIN="38000",
                     HOTLINE_RTP_PORT_MAX="38998")
    env = env_for(settings, **extra)
    log = tmp / "serve.log"
    serve = start(["serve"], env, log)
    try:
        if sip:
            wait_for(lambda: "SIP adapter on" in log.read_text(), 90, "the SIP adapter", log)
        wait_for(lambda: "live transcription listening" in log.read_text(), 90, "live transcription", log)
        added = subprocess.run([sys.executable, "-m", "app.cli", "users", "add", "agent1", "--role", "agent",
                                "--password-stdin"], input=AGENT_PASSWORD + "\n", env=env, cwd=ROOT,
                               capture_output=True, text=True, timeout=60)
        assert added.returncode == 0, added.stdout + added.stderr
        password = (settings.data_dir / "initial-admin-password.txt").read_text().strip()
        yield Server(f"http://127.0.0.1:{http}", sip_port, password, log)
    finally:
        assert stop(serve, signal.SIGINT) == 0


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("HOTLINE_WEB_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def login(page: Any, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/#/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.press("input[name=password]", "Enter")
    page.wait_for_selector("[data-test=current-user]", timeout=15_000)
    assert page.inner_text("[data-test=current-user]") == username


@contextmanager
def api_client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, timeout=30) as client:
        token = client.post("/api/v1/auth/token", data={"username": "admin", "password": server.admin_password})
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        yield client
