"""`hotline serve` as an operator runs it: one process tree, a call imported becomes a searchable case,
Ctrl-C stops everything."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import httpx
import psutil
import pytest

from app.config import Settings
from tests.conftest import CALL
from tests.processes import env_for, start, stop, wait_for

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "var", redis_url=None)


def test_serve_files_an_imported_call_and_stops_cleanly(sqlite_settings: Settings, tmp_path: Path) -> None:
    port = _free_port()
    env = env_for(sqlite_settings, HOTLINE_HTTP_PORT=str(port))
    log = tmp_path / "serve.log"
    serve = start(["serve"], env, log)
    tree: list[psutil.Process] = []
    try:
        base = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                return httpx.get(f"{base}/api/v1/health").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(healthy, 60, "the API to answer", log)
        tree = [psutil.Process(serve.pid), *psutil.Process(serve.pid).children(recursive=True)]
        assert any("worker" in p.cmdline() for p in tree), "the transcription worker runs in the same tree"
        assert "12351" in httpx.get(base + "/").text  # the web app is served

        password = (sqlite_settings.data_dir / "initial-admin-password.txt").read_text().strip()
        imported = start(["import", "--wait", "--channel", "来电", str(CALL)], env, tmp_path / "import.log")
        assert imported.wait(timeout=180) == 0, (tmp_path / "import.log").read_text()
        assert "→ 工单 12351-" in (tmp_path / "import.log").read_text()

        with httpx.Client(base_url=base) as client:
            token = client.post("/api/v1/auth/token", data={"username": "admin", "password": password}).json()
            client.headers["Authorization"] = f"Bearer {token['access_token']}"
            hits = client.get("/api/v1/search", params={"q": "辞职"}).json()
            assert hits["total"] == 1
            case = client.get(f"/api/v1/cases/{hits['items'][0]['case_id']}").json()
            assert case["channel"] == "来电" and case["transcript"]["segments"]
    finally:
        code = stop(serve, signal.SIGINT)
    assert code == 0
    wait_for(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in tree), 20,
             "every process of the tree to exit", log)
