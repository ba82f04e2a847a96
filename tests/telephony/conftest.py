"""A real `hotline sip` process (with its media engine child) for sipp and test clients to call."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from app.calls.models import Call
from app.config import Settings
from app.db import Database
from app.recordings import files
from app.recordings.models import Recording
from tests.processes import env_for, start, stop, wait_for

_next_rtp = iter(range(21000, 39000, 1000))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, socket.socket() as t:
        for _ in range(50):
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            try:
                t.bind(("127.0.0.1", port))
                return int(port)
            except OSError:
                u.close()
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    raise RuntimeError("no free port")


@dataclass
class Adapter:
    settings: Settings
    port: int
    log: Path
    proc: subprocess.Popen[bytes]
    database: Database

    def calls(self) -> list[Call]:
        with self.database.session() as db:
            rows = list(db.execute(sa.select(Call).order_by(Call.id)).scalars())
            db.expunge_all()
            return rows

    def wait_calls(self, n: int, timeout: float = 30) -> list[Call]:
        """The first ``n`` calls once all of them are finished (no longer active)."""
        def done() -> list[Call] | None:
            rows = self.calls()
            return rows if len(rows) >= n and all(c.status != "active" for c in rows[:n]) else None
        return wait_for(done, timeout, f"{n} finished call(s)", self.log)  # type: ignore[return-value]

    def audio(self, recording_id: int) -> np.ndarray:
        """The filed recording as (samples, channels) int16."""
        import wave

        with self.database.session() as db:
            rec = db.get(Recording, recording_id)
            assert rec is not None
        with files.local_copy(self.settings, rec) as path, wave.open(str(path)) as w:  # decrypted, sha256 checked
            frames = w.readframes(w.getnframes())
            return np.frombuffer(frames, "<i2").reshape(-1, w.getnchannels())

    def log_text(self) -> str:
        return self.log.read_text()


def start_adapter(tmp: Path, db_url: str | None = None, **extra: str) -> Adapter:
    port = free_port()
    rtp = next(_next_rtp)
    settings = Settings(data_dir=tmp / "var", database_url=db_url, redis_url=None)
    settings.ensure_dirs()
    env = env_for(settings, HOTLINE_SIP_PORT=str(port), HOTLINE_RTP_PORT_MIN=str(rtp),
                  HOTLINE_RTP_PORT_MAX=str(rtp + 998), **extra)
    log = tmp / "sip.log"
    proc = start(["sip"], env, log)
    wait_for(lambda: "SIP adapter on" in log.read_text() or proc.poll() is not None, 60, "the SIP adapter", log)
    assert proc.poll() is None, log.read_text()
    return Adapter(settings, port, log, proc, Database(settings.sqlalchemy_url))


@pytest.fixture(scope="module")
def adapter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Adapter]:
    """One adapter for the module (SQLite): answers after 1 s of ringing, ends silent calls after 3 s."""
    tmp = tmp_path_factory.mktemp("sip")
    a = start_adapter(tmp, HOTLINE_SIP_ANSWER_DELAY_MS="1000", HOTLINE_SIP_RTP_TIMEOUT_S="3")
    yield a
    stop(a.proc)
    a.database.dispose()
