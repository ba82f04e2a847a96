"""`hotline bench spine`: import → searchable case, end to end through a real `hotline serve`."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PeakRss:
    """Samples the resident memory of a process and all its children every 50 ms."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                root = psutil.Process(self.pid)
                procs = [root, *root.children(recursive=True)]
                total = 0
                for p in procs:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        total += p.memory_info().rss
                self.peak = max(self.peak, total)
            except psutil.NoSuchProcess:
                return
            time.sleep(0.05)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def run(path: Path, query: str) -> None:
    data = Path(tempfile.mkdtemp(prefix="hotline-bench-"))
    port = free_port()
    env = {**os.environ, "HOTLINE_DATA_DIR": str(data), "HOTLINE_HTTP_PORT": str(port),
           "HOTLINE_SIP_ENABLED": "false"}
    env.pop("HOTLINE_DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rss = PeakRss(proc.pid)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.get("/api/v1/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("hotline serve did not come up within 60 s")
                time.sleep(0.2)
            time.sleep(3)  # let the worker load the model, as it will have on a running server
            password = (data / "initial-admin-password.txt").read_text().strip()
            token = client.post("/api/v1/auth/token", data={"username": "admin", "password": password}).json()
            client.headers["Authorization"] = f"Bearer {token['access_token']}"
            started = time.perf_counter()
            with path.open("rb") as f:
                up = client.post("/api/v1/recordings", files={"file": (path.name, f, "audio/wav")})
            up.raise_for_status()
            uploaded = time.perf_counter() - started
            recording = up.json()
            while True:
                hits = client.get("/api/v1/search", params={"q": query}).json()
                if hits["total"]:
                    break
                if client.get(f"/api/v1/recordings/{recording['id']}").json()["status"] == "failed":
                    raise SystemExit("transcription failed")
                if time.perf_counter() - started > 600:
                    raise SystemExit(f"no case found for {query!r} within 600 s")
                time.sleep(0.1)
            searchable = time.perf_counter() - started
            case = client.get(f"/api/v1/cases/{hits['items'][0]['case_id']}").json()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        peak = rss.stop()
    hit = hits["items"][0]
    print(f"file                      {path.name} ({recording['duration']:.1f} s audio, {recording['channels']} ch)")
    print(f"upload + store            {uploaded:.2f} s")
    print(f"import → searchable case  {searchable:.2f} s   (case {case['case_no']}, {case['category']})")
    print(f"  of which transcription  {case['transcript']['processing_s']:.2f} s "
          f"(RTF {case['transcript']['processing_s'] / recording['duration']:.3f})")
    print(f"search {query!r}: hit at {hit['start']} s: {hit['text']}")
    print(f"peak RSS of hotline serve {peak / 2**20:.0f} MiB (API + worker process tree)")
    print(f"cores                     {os.cpu_count()}")
