"""Recordings in the store, encrypted at rest, through the product: upload, play by range, transcribe, a
tampered file, the store down, ``hotline storage migrate`` from the data dir to S3, and a key rotation.

The S3 side runs on a real SeaweedFS (``app/bench/seaweed.py``, started once for the session by conftest).
"""

from __future__ import annotations

import base64
import os
import secrets
import time
import wave

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.audit.models import AuditEvent
from app.bench.seaweed import SeaweedFS
from app.calls.flows import Filer
from app.calls.models import Call
from app.cli import app as cli
from app.config import Settings
from app.db import Database
from app.jobs import JobQueue
from app.main import create_app
from app.recordings import files, moves, ranges
from app.recordings.models import Recording, StorageMove
from app.recordings.storage import S3Storage, ensure_bucket
from app.users.models import Role
from telephony import g711
from telephony.recorder import CallManifest
from tests.conftest import CALL, DATA, add_user, login

SHORT = DATA / "md01_room_13s.wav"  # 13 s, one microphone


def _client(settings: Settings, database: Database) -> TestClient:
    app = create_app(settings, database=database, queue=JobQueue(settings, database=database))
    return TestClient(app)


def _upload(client: TestClient, auth: dict[str, str], data: bytes, name: str = "call.wav") -> dict:
    r = client.post("/api/v1/recordings", headers=auth, files={"file": (name, data, "audio/wav")})
    assert r.status_code in (200, 201), r.text
    return r.json()


def _row(database: Database, recording_id: int) -> Recording:
    with database.session() as db:
        rec = db.get(Recording, recording_id)
        assert rec is not None
        return rec


def _actions(database: Database) -> list[str]:
    with database.session() as db:
        return list(db.execute(sa.select(AuditEvent.action).order_by(AuditEvent.id)).scalars())


def _s3(seaweed: SeaweedFS, settings: Settings, bucket: str) -> Settings:
    s3 = seaweed.settings_for(settings, bucket)
    ensure_bucket(files.store(s3, s3.storage_url))
    return s3


@pytest.fixture
def bucket() -> str:
    return f"rec-{secrets.token_hex(4)}"


def test_a_tampered_recording_is_never_played_nor_transcribed(settings: Settings, database: Database) -> None:
    add_user(database, "li", Role.mediator)
    with _client(settings, database) as client:
        auth = login(client, "li")
        body = _upload(client, auth, CALL.read_bytes())
        rec = _row(database, body["id"])
        stored = settings.recordings_dir / rec.path
        data = bytearray(stored.read_bytes())
        data[200_000] ^= 0x01  # one bit, in the fourth 64 KiB chunk
        stored.write_bytes(bytes(data))
        # the first chunks still play (they authenticate); a range over the tampered chunk is refused
        assert client.get(f"/api/v1/recordings/{rec.id}/audio", headers={**auth, "Range": "bytes=0-99"}
                          ).content == CALL.read_bytes()[:100]
        r = client.get(f"/api/v1/recordings/{rec.id}/audio", headers={**auth, "Range": "bytes=199000-199999"})
        assert r.status_code == 409 and r.json()["code"] == "audio_tampered", r.text
    assert "recording.integrity_failed" in _actions(database)
    with pytest.raises(files.Corrupted, match="校验失败"):
        files.verify(settings, rec)
    JobQueue(settings, immediate=True, database=database).enqueue_transcription(rec.id)
    after = _row(database, rec.id)
    assert after.status == "failed" and "篡改" in (after.error or "")


def test_encryption_off_stores_the_file_in_clear(settings: Settings, database: Database) -> None:
    clear = settings.model_copy(update={"encrypt_recordings": False})
    add_user(database, "li", Role.mediator)
    with _client(clear, database) as client:
        body = _upload(client, login(client, "li"), SHORT.read_bytes(), name="s.wav")
    rec = _row(database, body["id"])
    assert not rec.encrypted and rec.path == f"{rec.sha256[:2]}/{rec.sha256}.wav"
    assert (settings.recordings_dir / rec.path).read_bytes() == SHORT.read_bytes()
    with files.local_copy(clear, rec) as path:  # the stored file itself, no copy
        assert path == settings.recordings_dir / rec.path


def test_on_s3_the_data_dir_holds_no_audio_and_ranges_play(
    settings: Settings, database: Database, seaweed: SeaweedFS, bucket: str
) -> None:
    s3 = _s3(seaweed, settings, bucket)
    add_user(database, "li", Role.mediator)
    with _client(s3, database) as client:
        auth = login(client, "li")
        body = _upload(client, auth, CALL.read_bytes())
        rec = _row(database, body["id"])
        assert rec.storage == f"s3://{bucket}" and rec.encrypted
        assert [p for p in settings.recordings_dir.rglob("*") if p.is_file()] == []
        store = files.store(s3, rec.storage)
        assert isinstance(store, S3Storage) and store.size(rec.path) == rec.stored_size
        whole = CALL.read_bytes()
        for lo, hi in ((0, 99), (65_530, 65_545), (len(whole) - 10, len(whole) - 1)):
            r = client.get(f"/api/v1/recordings/{rec.id}/audio", headers={**auth, "Range": f"bytes={lo}-{hi}"})
            assert r.status_code == 206 and r.content == whole[lo:hi + 1]
            assert r.headers["content-range"] == f"bytes {lo}-{hi}/{len(whole)}"
        assert client.get(f"/api/v1/recordings/{rec.id}/download", headers=auth).content == whole
        r = client.get(f"/api/v1/recordings/{rec.id}/audio", headers={**auth, "Range": f"bytes={len(whole)}-"})
        assert r.status_code == 416


def test_s3_down_upload_refused_and_job_waits_then_completes(
    settings: Settings, database: Database, seaweed: SeaweedFS, bucket: str
) -> None:
    s3 = _s3(seaweed, settings, bucket)
    add_user(database, "li", Role.mediator)
    with _client(s3, database) as client:
        auth = login(client, "li")
        body = _upload(client, auth, SHORT.read_bytes(), name="s.wav")
        seaweed.kill()
        try:
            r = client.post("/api/v1/recordings", headers=auth,
                            files={"file": ("c.wav", CALL.read_bytes(), "audio/wav")})
            assert r.status_code == 503 and r.json()["code"] == "storage_unavailable", r.text
            assert r.headers["retry-after"] == "30"
            assert client.get(f"/api/v1/recordings/{body['id']}/audio", headers=auth).status_code == 503
            # the worker: Huey's retries all meet the store down; the job is not failed for good but queued
            # again (the sweep takes it once its lease runs out)
            JobQueue(s3, immediate=True, database=database).enqueue_transcription(body["id"])
            rec = _row(database, body["id"])
            assert rec.status == "queued" and rec.lease_until is not None, (rec.status, rec.error)
        finally:
            seaweed.start()
        with database.session() as db:
            assert db.execute(sa.select(sa.func.count()).select_from(Recording)).scalar_one() == 1
        assert list((settings.data_dir / "tmp").iterdir()) == []
    JobQueue(s3, immediate=True, database=database).enqueue_transcription(body["id"])
    assert _row(database, body["id"]).status == "done"


def test_migrate_to_s3_resumes_and_switches_only_when_all_are_verified(
    settings: Settings, database: Database, seaweed: SeaweedFS, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_user(database, "li", Role.mediator)
    with _client(settings, database) as client:
        auth = login(client, "li")
        ids = [_upload(client, auth, SHORT.read_bytes() + bytes([i]) * 2, name=f"{i}.wav")["id"] for i in range(3)]
    s3 = _s3(seaweed, settings, bucket)
    target = s3.storage_url
    hidden = settings.recordings_dir / _row(database, ids[1]).path
    hidden.rename(hidden.with_name("away"))  # one file unreadable: that run copies the others, switches nothing
    first = moves.migrate(database=database, settings=s3, target=target, actor="test")
    assert (first.copied, list(first.failed), first.switched) == (2, [ids[1]], 0)
    assert {_row(database, i).storage for i in ids} == {"local"}
    hidden.with_name("away").rename(hidden)
    for key, value in {"HOTLINE_DATA_DIR": str(settings.data_dir), "HOTLINE_DATABASE_URL": settings.database_url,
                       **seaweed.env_for(bucket)}.items():
        monkeypatch.setenv(key, value or "")
    monkeypatch.setenv("HOTLINE_SECRET_KEY", settings.secret_key or "")
    out = CliRunner().invoke(cli, ["storage", "migrate", "--to", target])
    assert out.exit_code == 0, out.output
    assert "本次复制并校验 1，此前已校验 2" in out.output and "已切换 3 份" in out.output
    assert {_row(database, i).storage for i in ids} == {target}
    with database.session() as db:
        assert db.execute(sa.select(sa.func.count()).select_from(StorageMove)).scalar_one() == 3
    assert "storage.migrated" in _actions(database)
    for i in ids:  # read from S3 now, with the data dir's copies gone
        (settings.recordings_dir / _row(database, i).path).unlink()
        files.verify(s3, _row(database, i))
    assert CliRunner().invoke(cli, ["storage", "verify"]).exit_code == 0


def test_key_rotation_rewraps_without_touching_the_audio(settings: Settings, database: Database) -> None:
    add_user(database, "li", Role.mediator)
    with _client(settings, database) as client:
        auth = login(client, "li")
        ids = [_upload(client, auth, SHORT.read_bytes() + bytes([i]), name=f"{i}.wav")["id"] for i in range(2)]
    before = {i: (settings.recordings_dir / _row(database, i).path).read_bytes() for i in ids}
    old = _row(database, ids[0]).key_id
    done = moves.rotate_key(database=database, settings=settings, actor="test", retire=True)
    assert done.key_id != old and done.rewrapped == 2 and done.retired == [old]
    files.forget_keyring(settings)
    for i in ids:
        rec = _row(database, i)
        assert rec.key_id == done.key_id
        assert (settings.recordings_dir / rec.path).read_bytes() == before[i]
        files.verify(settings, rec)
    key_file = settings.data_dir / "master.key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600" and old not in key_file.read_text()
    assert "storage.key_rotated" in _actions(database)


def test_a_configured_master_key_is_used_and_no_key_file_is_made(settings: Settings, database: Database) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    keyed = settings.model_copy(update={"master_key": key})
    add_user(database, "li", Role.mediator)
    with _client(keyed, database) as client:
        body = _upload(client, login(client, "li"), SHORT.read_bytes(), name="s.wav")
    assert not (settings.data_dir / "master.key").exists()
    files.verify(keyed, _row(database, body["id"]))
    with pytest.raises(files.Corrupted, match="主密钥"):  # the data dir's generated key is another key
        files.verify(settings.model_copy(update={"master_key": base64.b64encode(os.urandom(32)).decode()}),
                     _row(database, body["id"]))


@pytest.mark.parametrize(("header", "expected"), [
    (None, ranges.Span(0, 1000, False)),
    ("bytes=0-99", ranges.Span(0, 100, True)),
    ("bytes=990-", ranges.Span(990, 1000, True)),
    ("bytes=990-5000", ranges.Span(990, 1000, True)),  # the last byte is cut to the file
    ("bytes=-10", ranges.Span(990, 1000, True)),  # the last 10 bytes
    ("bytes=-5000", ranges.Span(0, 1000, True)),
    ("bytes=0-0,10-20", ranges.Span(0, 1000, False)),  # several ranges: the whole file (RFC 9110 allows it)
    ("items=0-9", ranges.Span(0, 1000, False)),
    ("bytes=1000-", None),  # past the end: 416
    ("bytes=50-10", None),
    ("bytes=-0", None),
])
def test_range_header(header: str | None, expected: ranges.Span | None) -> None:
    assert ranges.parse(header, 1000) == expected


def test_a_call_ending_while_s3_is_down_waits_in_its_folder_and_is_filed_when_it_is_back(
    settings: Settings, database: Database, seaweed: SeaweedFS, bucket: str
) -> None:
    s3 = _s3(seaweed, settings, bucket)
    folder = s3.calls_dir / "sip" / "c1"
    folder.mkdir(parents=True)
    for leg in ("caller", "agent"):  # the legs as the recorder leaves them: 16-bit PCM WAV per party
        with wave.open(str(folder / f"{leg}.wav"), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(8000)
            out.writeframes(g711.decode((DATA / f"d03_{leg}_6s.ulaw").read_bytes(), g711.PCMU))
    now = time.time()
    manifest = CallManifest(call_id="c1", source="sip", caller="13800000001", called="12351", started_at=now - 30,
                            answered_at=now - 29, ended_at=now, end_reason="bye")
    manifest.save(folder)
    filer = Filer(s3, database, JobQueue(s3, database=database))
    filer.first_retry_s = 0.5
    filer.started(manifest)
    seaweed.kill()
    try:
        filer.finished(folder, manifest)
        with database.session() as db:
            call = db.execute(sa.select(Call)).scalar_one()
            assert call.status == "failed" and "重试" in (call.error or "")
        assert (folder / "caller.wav").exists()  # nothing lost: the legs wait
    finally:
        seaweed.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with database.session() as db:
            call = db.execute(sa.select(Call)).scalar_one()
        if call.status == "ended" and not folder.exists():  # the row first, then the folder goes
            break
        time.sleep(0.2)
    assert call.status == "ended" and call.recording_id, (call.status, call.error)
    assert not folder.exists()
    rec = _row(database, call.recording_id)
    assert rec.storage == f"s3://{bucket}" and rec.encrypted
