"""`hotline bench cluster`: its distinct recordings, its Redis that restarts, and how it names losses and
duplicates. (The whole bench takes minutes; it is run by hand: `hotline bench cluster`.)"""

from __future__ import annotations

import hashlib
import shutil
import socket
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from app.bench import cluster
from asr.audio import probe

DATA = Path(__file__).parent / "data"


def test_uploads_are_short_distinct_wavs(tmp_path: Path) -> None:
    clip = cluster.clip_wav((DATA / "call_d03.wav").read_bytes(), 12.0)
    a, b, again = (cluster.unique_wav(clip, cluster.tag_for(12351, 1, i)) for i in (0, 1, 0))
    assert len(a) == len(b) == len(clip)
    assert len({hashlib.sha256(x).hexdigest() for x in (clip, a, b)}) == 3
    assert a == again  # the same seed gives the same bytes: a re-sent upload is the same upload
    assert sum(x != y for x, y in zip(a, clip, strict=True)) <= 48  # a few lowest bits, nothing audible
    path = tmp_path / "a.wav"
    path.write_bytes(a)
    info = probe(path)
    assert (info.channels, info.sample_rate) == (2, 8000)
    assert info.duration == pytest.approx(12.0, abs=0.01)


def test_make_uploads_differ_across_phases() -> None:
    opts = cluster.ClusterOptions(clip_seconds=3.0)
    shas = [u.sha256 for phase in (1, 2) for u in cluster.make_uploads(opts, phase, 3)]
    assert len(set(shas)) == 6


def _rec(**kw: object) -> SimpleNamespace:
    base = {"id": 1, "status": "done", "attempts": 1, "lease_until": None, "error": None,
            "case_at": datetime(2026, 1, 1, tzinfo=UTC)}
    return SimpleNamespace(**(base | kw))


def test_losses_name_the_upload_and_why() -> None:
    ok = cluster.Upload("a.wav", b"a", "sha-a", status=201, attempts=["api1: 201"])
    stuck = cluster.Upload("b.wav", b"b", "sha-b", status=200, duplicate=True,
                           attempts=["api1: 500", "api2: 200"])
    gone = cluster.Upload("c.wav", b"c", "sha-c", status=201, attempts=["api2: 201"])
    never = cluster.Upload("d.wav", b"d", "sha-d", attempts=["api1: ConnectError"])
    lease = datetime(2026, 1, 1, 12, 10, tzinfo=UTC)
    by_sha = {"sha-a": _rec(), "sha-b": _rec(id=2, status="queued", attempts=0, lease_until=lease, case_at=None)}
    losses = cluster._upload_losses([ok, stuck, gone, never], by_sha)
    assert len(losses) == 2
    assert losses[0].startswith("b.wav acknowledged (200) but recording #2 without a case: queued, 0 attempt(s), "
                                "lease until")
    assert "api1: 500, api2: 200" in losses[0]
    assert losses[1].startswith("c.wav acknowledged (201) but not on file")


def test_call_losses_only_for_answered_calls(tmp_path: Path) -> None:
    answered = cluster.Caller("13900000001", tmp_path / "1")
    unanswered = cluster.Caller("13900000002", tmp_path / "2")
    filed = cluster.Caller("13900000003", tmp_path / "3")
    for c, log in ((answered, "ANSWERED\n"), (unanswered, ""), (filed, "ANSWERED\nENDED\n")):
        c.folder.mkdir()
        (c.folder / "call_1_logs.log").write_text(log)
    row = SimpleNamespace(id=7, status="failed", recording_id=None, end_reason="bye", error="disk full")
    calls = {answered.number: [row], filed.number: [SimpleNamespace(id=8, recording_id=5)]}
    losses = cluster._call_losses([answered, unanswered, filed], calls, [_rec(id=5)])
    assert losses == ["answered call from 13900000001: call #7 failed (bye, disk full) without a recording"]
    assert (answered.answered, answered.completed, filed.completed) == (True, False, True)


def _redis(port: int, *command: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall((f"*{len(command)}\r\n" + "".join(f"${len(c)}\r\n{c}\r\n" for c in command)).encode())
        return s.recv(256)


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server is not installed")
def test_its_own_redis_restarts_on_the_same_port_with_its_data(tmp_path: Path) -> None:
    redis = cluster.Redis(tmp_path / "redis", persist=True)
    redis.start()
    try:
        assert _redis(redis.port, "SET", "k", "v") == b"+OK\r\n"
        port = redis.port
        redis.stop()
        with pytest.raises(OSError):
            _redis(port, "PING")
        redis.start()
        assert redis.port == port and _redis(port, "GET", "k") == b"$1\r\nv\r\n"
    finally:
        redis.stop()
