"""Run `hotline` commands as real processes, the way operators do."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from app.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def env_for(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update(HOTLINE_DATA_DIR=str(settings.data_dir), HOTLINE_DATABASE_URL=settings.sqlalchemy_url,
               HOTLINE_JOB_RETRY_DELAY_S="0", HOTLINE_SIP_ENABLED="false")  # tests that call in start their own
    env.update(extra)
    if settings.redis_url:
        env["HOTLINE_REDIS_URL"] = settings.redis_url
    return env


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "app.cli", *args], env=env, cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGINT, timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise


def wait_for(check: Callable[[], object], timeout: float, what: str, log: Path | None = None) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    lines = log.read_text().splitlines() if log and log.exists() else []
    tail = "\n".join(line for line in lines if 'HTTP/1.1"' not in line)[-4000:]  # access lines hide the cause
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{tail}")
