"""Sealed leg files (telephony/sealed.py), with the real AES-GCM: what is on disk while a call is recorded
holds none of its audio in clear, reads back exact, survives a crash mid-append, and refuses tampering; and
filing them (app/calls/flows.py) after a crash, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from app.calls.flows import Filer, key_issuer, recover
from app.calls.models import Call
from app.config import Settings
from app.db import Database
from app.jobs import JobQueue
from app.recordings import files
from app.recordings.models import Recording
from telephony import sealed
from telephony.recorder import CallManifest, leg_files, mix, open_leg
from telephony.sealed import HEADER_SIZE, MAX_RECORD, TAG, SealedError, SealedWriter
from telephony.ws import MediaSession

KEY = bytes(range(32))
CALL = "0123456789abcdef0123456789abcdef"


def _speech(n: int, seed: int = 1) -> bytes:
    """Loud noise: no run of it can turn up in a ciphertext by chance."""
    return np.random.default_rng(seed).integers(-20000, 20000, n, dtype="<i2").tobytes()


def _records(path: Path) -> list[tuple[int, int]]:
    """(offset, length) of each record in a sealed file, from its length fields."""
    raw, pos, out = path.read_bytes(), HEADER_SIZE, []
    while pos + 4 <= len(raw):
        (length,) = struct.unpack_from(">I", raw, pos)
        out.append((pos, length))
        pos += 4 + length
    return out


def _writer(tmp_path: Path, leg: str = "caller", key: bytes = KEY, rate: int = 8000) -> SealedWriter:
    return SealedWriter(tmp_path / f"{leg}.sealed", data_key=key, call_id=CALL, leg=leg, sample_rate=rate)


def _read(path: Path, leg: str = "caller", key: bytes = KEY, call_id: str = CALL) -> sealed.Leg:
    return sealed.read(path, data_key=key, call_id=call_id, leg=leg)


def test_round_trip_one_record_per_flush_and_nothing_in_clear_meanwhile(tmp_path: Path) -> None:
    w = _writer(tmp_path, rate=16000)
    assert w.path.stat().st_size == HEADER_SIZE  # the header is on disk at once
    pieces = [_speech(800, seed) for seed in range(5)]
    w.write(pieces[0])
    w.write(pieces[1])
    assert w.samples == 1600 and w.path.stat().st_size == HEADER_SIZE  # held in memory until the flush
    w.flush()
    w.flush()  # nothing new: no empty record
    w.write(pieces[2])
    w.pad_to(3200)  # 800 samples of silence
    w.flush()
    w.write(pieces[3] + pieces[4])
    on_disk = w.path.read_bytes()  # while the call is in progress
    w.close()
    assert [length for _, length in _records(w.path)] == [3200 + TAG, 3200 + TAG, 3200 + TAG]
    assert not any(p[i:i + 64] in on_disk for p in pieces[:3] for i in range(0, len(p), 64))
    assert bytes(1600) not in on_disk  # the padded silence is sealed too
    leg = _read(w.path)
    assert leg.pcm == pieces[0] + pieces[1] + pieces[2] + bytes(1600) + pieces[3] + pieces[4]
    assert (leg.sample_rate, leg.records, leg.incomplete_tail) == (16000, 3, 0)


def test_a_long_pad_is_split_into_bounded_records(tmp_path: Path) -> None:
    w = _writer(tmp_path)
    w.pad_to(MAX_RECORD // 2 + 100)  # samples; a Twilio gap of a minute at 16 kHz is 1.9 MB of silence
    w.close()
    assert [length for _, length in _records(w.path)] == [MAX_RECORD + TAG, 200 + TAG]
    assert _read(w.path).pcm == bytes(MAX_RECORD + 200)


def test_a_crash_mid_append_loses_only_the_last_record(tmp_path: Path) -> None:
    w = _writer(tmp_path)
    pieces = [_speech(8000, seed) for seed in range(3)]  # three seconds, flushed once a second
    for p in pieces:
        w.write(p)
        w.flush()
    w.close()
    full = w.path.read_bytes()
    last_at = _records(w.path)[-1][0]
    for cut in (len(full) - 1, len(full) - TAG - 100, last_at + 4, last_at + 2, last_at):  # inside the last record
        w.path.write_bytes(full[:cut])
        leg = _read(w.path)
        assert leg.pcm == pieces[0] + pieces[1] and leg.records == 2
        assert leg.incomplete_tail == cut - last_at
    for cut in (HEADER_SIZE, HEADER_SIZE - 1, 0):  # died as it created the file
        w.path.write_bytes(full[:cut])
        assert _read(w.path).pcm == b""


@pytest.mark.parametrize("where", ["first record", "last record's tag", "length field", "header salt",
                                   "header rate", "magic"])
def test_a_flipped_bit_is_an_error_never_audio(tmp_path: Path, where: str) -> None:
    w = _writer(tmp_path)
    for seed in range(3):
        w.write(_speech(4000, seed))
        w.flush()
    w.close()
    records = _records(w.path)
    offset = {"first record": records[0][0] + 4 + 100, "last record's tag": os.path.getsize(w.path) - 1,
              "length field": records[1][0] + 3, "header salt": HEADER_SIZE - 1, "header rate": 8,
              "magic": 0}[where]
    raw = bytearray(w.path.read_bytes())
    raw[offset] ^= 0x01
    w.path.write_bytes(bytes(raw))
    with pytest.raises(SealedError, match="校验失败|不是加密录音|无效"):
        _read(w.path)


def test_records_are_bound_to_their_call_leg_key_and_place(tmp_path: Path) -> None:
    w = _writer(tmp_path)
    for seed in range(3):
        w.write(_speech(4000, seed))
        w.flush()
    w.close()
    for wrong in ({"leg": "agent"}, {"call_id": CALL[::-1]}, {"key": secrets.token_bytes(32)}):
        with pytest.raises(SealedError, match="校验失败"):
            _read(w.path, **wrong)  # type: ignore[arg-type]
    raw = w.path.read_bytes()
    (a, la), (b, lb), _ = _records(w.path)
    swapped = raw[:a] + raw[b:b + 4 + lb] + raw[a:a + 4 + la] + raw[b + 4 + lb:]  # records reordered
    w.path.write_bytes(swapped)
    with pytest.raises(SealedError, match="第 1 条记录校验失败"):
        _read(w.path)


def test_legs_sharing_a_call_key_never_share_a_keystream(tmp_path: Path) -> None:
    """Each file has its own salt (so its own key): the same audio on two legs, or a leg file made again,
    gives unrelated ciphertexts."""
    same = _speech(4000)
    paths = []
    for leg in ("caller", "agent"):
        w = _writer(tmp_path, leg)
        w.write(same)
        w.close()
        paths.append(w.path)
    a, b = (p.read_bytes()[HEADER_SIZE + 4:] for p in paths)
    assert (np.frombuffer(a, np.uint8) == np.frombuffer(b, np.uint8)).mean() < 0.05
    with pytest.raises(FileExistsError):  # a leg file is never reopened (its records would restart at 0)
        _writer(tmp_path, "caller")


def test_a_media_session_with_a_key_seals_its_legs_and_mixes_exactly(tmp_path: Path) -> None:
    """The WebSocket recorder: legs sealed while the call runs, the mix identical to one recorded in clear."""
    caller, agent = _speech(8000, 7), _speech(4000, 8)

    def record(key: bytes | None) -> tuple[Path, CallManifest]:
        def issue(m: CallManifest) -> bytes:
            m.key_id, m.wrapped_key = "test", "d3JhcHBlZA=="  # the app wraps it; here only its presence counts
            return KEY

        s = MediaSession.start(tmp_path / ("sealed" if key else "clear"), source="fork",
                               keys=issue if key else None)
        s.write("caller", caller, at=0)
        s.write("agent", agent, at=800)
        s.flush()
        if key:
            assert {p.name for p in leg_files(s.folder)} == {"caller.sealed", "agent.sealed"}
            assert caller[:2000] not in (s.folder / "caller.sealed").read_bytes()
            assert json.loads((s.folder / "call.json").read_text())["wrapped_key"] == "d3JhcHBlZA=="
        else:
            assert {p.name for p in leg_files(s.folder)} == {"caller.wav", "agent.wav"}
        return s.close("stop")

    mixes = []
    for key in (KEY, None):
        folder, manifest = record(key)
        out = io.BytesIO()
        assert mix(folder, manifest, out, data_key=key) == 1.0
        mixes.append(out.getvalue())
    assert mixes[0] == mixes[1]
    with wave.open(io.BytesIO(mixes[0])) as w:
        stereo = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)
    assert stereo[:, 0].tobytes() == caller
    assert stereo[:, 1].tobytes() == bytes(1600) + agent + bytes(6400)


def test_the_manifest_decides_the_format_a_stray_leg_is_refused(tmp_path: Path) -> None:
    manifest = CallManifest(call_id=CALL, source="sip", key_id="k", wrapped_key="eA==")
    w = open_leg(tmp_path, "caller", call_id=CALL, data_key=KEY)
    w.write(_speech(800))
    w.close()
    with pytest.raises(SealedError, match="录音密钥未解开"):
        mix(tmp_path, manifest, io.BytesIO(), data_key=None)
    clear = open_leg(tmp_path, "agent", call_id=CALL, data_key=None)  # a WAV in clear planted beside it
    clear.write(_speech(800))
    clear.close()
    with pytest.raises(SealedError, match="明文"):
        mix(tmp_path, manifest, io.BytesIO(), data_key=KEY)
    (tmp_path / "agent.wav").unlink()
    plain = CallManifest(call_id=CALL, source="sip")
    with pytest.raises(SealedError, match="没有录音密钥"):  # sealed legs, but call.json lost its key
        mix(tmp_path, plain, io.BytesIO())


# --- filing (app/calls/flows.py) -------------------------------------------------------------------------


def test_recovery_files_a_crashed_call_from_its_sealed_legs_and_refuses_a_borrowed_key(
    settings: Settings, database: Database, queue: JobQueue, tmp_path: Path
) -> None:
    issue = key_issuer(settings)
    assert issue is not None  # encryption at rest is on by default
    calls_dir = settings.calls_dir / "ws"
    speech = _speech(16000, 3)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = f"{socket.gethostname()}:{gone.pid}"  # the recording process, killed
    crashed = MediaSession.start(calls_dir, source="fork", caller="13900000021", keys=issue)
    crashed.manifest.owner = dead
    crashed.manifest.save(crashed.folder)
    crashed.write("caller", speech[:16000], at=0)
    crashed.flush()  # one second on disk …
    crashed.write("caller", speech[16000:])  # … and one still in memory when the power goes
    disk = tmp_path / "disk"
    shutil.copytree(crashed.folder, disk)
    crashed.close("stop")
    shutil.rmtree(crashed.folder)
    shutil.move(disk, crashed.folder)

    borrowed = MediaSession.start(calls_dir, source="fork", caller="13900000022", keys=issue)
    borrowed.write("caller", speech, at=0)
    folder, manifest = borrowed.close("stop")
    manifest.key_id, manifest.wrapped_key = crashed.manifest.key_id, crashed.manifest.wrapped_key  # copied over
    manifest.owner = dead
    manifest.save(folder)

    assert recover(Filer(settings, database, queue), calls_dir) == 2
    with database.session() as db:
        rows = {c.caller: c for c in db.execute(sa.select(Call)).scalars()}
        db.expunge_all()
    filed, refused = rows["13900000021"], rows["13900000022"]
    assert (filed.status, filed.end_reason) == ("ended", "recovered") and filed.recording_id
    with database.session() as db:
        rec = db.get(Recording, filed.recording_id)
        assert rec is not None and rec.encrypted
    with files.local_copy(settings, rec) as path, wave.open(str(path)) as w:
        stereo = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)
    assert stereo[:, 0].tobytes() == speech[:16000]  # left: the second that was flushed, exact
    assert not crashed.folder.exists()
    assert refused.status == "failed" and "录音密钥校验失败" in (refused.error or "")
    assert (folder / "caller.sealed").exists()  # kept: nothing is lost by refusing it
