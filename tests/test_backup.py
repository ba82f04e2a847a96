"""`hotline backup` / `hotline restore`: a backup of a running site restores into an empty data dir and checks
out end to end (files, audit chain against the backup's head, every recording decrypted and hashed); a tampered
backup is named and exits 1. SQLite as it is; PostgreSQL by the README's procedure (pg_dump -Fc, pg_restore)."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.audit import service as audit
from app.backup import service as backups
from app.cli import app as cli
from app.config import Settings
from app.db import Database
from app.recordings import files
from app.recordings.models import Recording
from app.recordings.storage import ensure_bucket
from app.reports.models import Report
from app.users.models import Role
from tests.conftest import CALL, PG_URL, add_user, login
from tests.processes import env_for

PG_DUMP, PG_RESTORE = "/usr/bin/pg_dump", "/usr/bin/pg_restore"


def _upload(client: TestClient, auth: dict[str, str], n: int) -> list[int]:
    """``n`` real recordings (distinct audio), encrypted at rest as by default."""
    ids = []
    for i in range(n):
        r = client.post("/api/v1/recordings", headers=auth,
                        files={"file": (f"call-{i}.wav", CALL.read_bytes() + bytes([i + 1]) * 2, "audio/wav")})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids


def _report(settings: Settings, database: Database) -> None:
    """An archived report (files under data_dir/reports, digests in the row)."""
    paths = {}
    for fmt, data in (("docx", b"PK docx bytes"), ("pdf", b"%PDF-1.7 pdf bytes")):
        digest = hashlib.sha256(data).hexdigest()
        rel = f"reports/daily/2026-12-01/{digest}.{fmt}"
        (settings.data_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (settings.data_dir / rel).write_bytes(data)
        paths[fmt] = (rel, digest, len(data))
    with database.session() as db:
        db.add(Report(kind="daily", period="2026-12-01", title="日报", docx_path=paths["docx"][0],
                      docx_sha256=paths["docx"][1], docx_size=paths["docx"][2], pdf_path=paths["pdf"][0],
                      pdf_sha256=paths["pdf"][1], pdf_size=paths["pdf"][2], generated_by="test"))


@pytest.fixture
def site(client: TestClient, settings: Settings, database: Database) -> list[int]:
    """A running site with three uploaded recordings, a user and an archived report."""
    add_user(database, "li", Role.mediator)
    ids = _upload(client, login(client, "li"), 3)
    _report(settings, database)
    return ids


@dataclass(frozen=True)
class Ran:
    exit_code: int
    output: str  # stdout and stderr, rich's line wrapping undone


def _run(env: dict[str, str | None], *args: str) -> Ran:
    r = CliRunner().invoke(cli, list(args), env=env)  # type: ignore[arg-type]
    return Ran(r.exit_code, r.output.replace("\n", ""))


def _restore_env(settings: Settings, into: Path, **extra: str | None) -> dict[str, str | None]:
    env: dict[str, str | None] = {**env_for(settings), "HOTLINE_DATA_DIR": str(into), "HOTLINE_DATABASE_URL": None}
    env.update(extra)
    return env


def _rewrite_manifest(backup: Path, name: str) -> None:
    """What a careful attacker does after changing a file: make the manifest agree with it."""
    manifest = json.loads((backup / "manifest.json").read_text())
    for entry in manifest["files"]:
        if entry["path"] == name:
            data = (backup / name).read_bytes()
            entry["sha256"], entry["size"] = hashlib.sha256(data).hexdigest(), len(data)
    (backup / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False))


@pytest.fixture
def sqlite_only(db_url: str) -> None:
    """First among a test's fixtures: skipped before the site is set up."""
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite backups; PostgreSQL has its own procedure (test_postgres_…)")


@pytest.fixture
def postgres_only(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("the PostgreSQL procedure (the SQLite backup has its own tests)")


def test_backup_while_writing_then_restore_verifies_everything(
    sqlite_only: None, site: list[int], settings: Settings, database: Database, tmp_path: Path
) -> None:
    stop = threading.Event()

    def busy() -> None:  # the site keeps working during the backup (API, worker: each a transaction)
        n = 0
        while not stop.is_set():
            with database.session() as db:
                audit.record(db=db, actor="test", action="case.read", subject_type="case", subject_id=n)
            n += 1

    writer = threading.Thread(target=busy)
    writer.start()
    try:
        r = _run(env_for(settings), "backup", str(tmp_path / "bk"), "--include-master-key")
    finally:
        stop.set()
        writer.join()
    assert r.exit_code == 0, r.output
    assert "备份中将包含录音加密主密钥" in r.output and "备份完成" in r.output
    bk = tmp_path / "bk"
    manifest = json.loads((bk / "manifest.json").read_text())
    assert manifest["format"] == "hotline-backup" and manifest["version"] == 1
    assert manifest["schema_revision"] == "0018" and manifest["master_key_included"] is True
    assert manifest["counts"]["recordings"] == 3 and manifest["counts"]["reports"] == 1
    names = {f["path"] for f in manifest["files"]}
    assert {"hotline.db", "keys/master.key"} <= names and len([n for n in names if n.startswith("recordings/")]) == 3
    assert not any("jobs.db" in n for n in names)  # the queue is not backed up: the database is the truth
    # the recordings are copied as stored: ciphertext, byte for byte
    with database.session() as db:
        rows = list(db.execute(sa.select(Recording)).scalars())
    for rec in rows:
        assert (bk / "recordings" / rec.path).read_bytes() == (settings.recordings_dir / rec.path).read_bytes()
        assert CALL.read_bytes()[1000:1064] not in (bk / "recordings" / rec.path).read_bytes()
    # the snapshot is one moment: its audit chain ends exactly at the head the manifest names
    with sqlite3.connect(bk / "hotline.db") as snap:
        seq, digest = snap.execute("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").fetchone()
    assert manifest["audit_head"]["seq"] == seq and manifest["audit_head"]["hash"] == digest

    into = tmp_path / "restored"
    r = _run(_restore_env(settings, into), "restore", str(bk))
    assert r.exit_code == 0, r.output
    assert "校验通过" in r.output and "录音完好 3 份" in r.output and "报告完好 1 份" in r.output
    assert f"审计链完好：{seq} 条事件，末尾 {seq}:{digest}" in r.output
    assert (into / "master.key").stat().st_mode & 0o777 == 0o600
    restored = Database(f"sqlite:///{into / 'hotline.db'}")
    try:
        with restored.session() as db:
            assert db.execute(sa.select(sa.func.count()).select_from(Recording)).scalar_one() == 3
            last = db.execute(sa.select(audit.AuditEvent).order_by(audit.AuditEvent.seq.desc()).limit(1)).scalar_one()
            assert last.action == "backup.restored" and last.details["ok"] is True
            assert audit.verify(db=db).ok
    finally:
        restored.dispose()


def test_restore_decrypts_with_the_configured_key_when_the_backup_has_none(
    sqlite_only: None, site: list[int], settings: Settings, tmp_path: Path
) -> None:
    r = _run(env_for(settings), "backup", str(tmp_path / "bk"))
    assert r.exit_code == 0, r.output
    assert "主密钥" not in r.output
    assert not (tmp_path / "bk" / "keys" / "master.key").exists()
    # no key anywhere: the recordings cannot be checked, and no key is made up
    r = _run(_restore_env(settings, tmp_path / "nokey"), "restore", str(tmp_path / "bk"))
    assert r.exit_code == 1 and "没有主密钥" in r.output and "未通过校验" in r.output
    assert not (tmp_path / "nokey" / "master.key").exists()
    # the site's key, kept elsewhere as the README says
    kept = tmp_path / "safe" / "master.key"
    kept.parent.mkdir()
    shutil.copy(settings.data_dir / "master.key", kept)
    r = _run(_restore_env(settings, tmp_path / "ok", HOTLINE_MASTER_KEY_FILE=str(kept)), "restore",
             str(tmp_path / "bk"))
    assert r.exit_code == 0, r.output
    assert "录音完好 3 份" in r.output and "HOTLINE_MASTER_KEY_FILE" in r.output


def test_a_flipped_byte_in_a_recording_is_reported(
    sqlite_only: None, site: list[int], settings: Settings, database: Database, tmp_path: Path
) -> None:
    bk = tmp_path / "bk"
    assert _run(env_for(settings), "backup", str(bk), "--include-master-key").exit_code == 0
    with database.session() as db:
        rec = db.get(Recording, site[1])
        assert rec is not None
    name = f"recordings/{rec.path}"
    data = bytearray((bk / name).read_bytes())
    data[5000] ^= 0x01
    (bk / name).write_bytes(bytes(data))
    r = _run(_restore_env(settings, tmp_path / "r1"), "restore", str(bk))
    assert r.exit_code == 1
    assert f"文件 {name}：内容与备份清单记录的 sha256 不符" in r.output
    assert f"录音 #{site[1]}：" in r.output and "录音完好 2 份，失败 1 份" in r.output
    # the manifest made to agree: the recording itself still fails (its ciphertext does not authenticate)
    _rewrite_manifest(bk, name)
    r = _run(_restore_env(settings, tmp_path / "r2"), "restore", str(bk))
    assert r.exit_code == 1 and "与备份清单记录的 sha256 不符" not in r.output
    assert f"录音 #{site[1]}：录音 #{site[1]} 校验失败" in r.output and "未通过校验" in r.output


def test_an_edited_or_truncated_audit_table_is_reported(
    sqlite_only: None, site: list[int], settings: Settings, tmp_path: Path
) -> None:
    bk = tmp_path / "bk"
    assert _run(env_for(settings), "backup", str(bk), "--include-master-key").exit_code == 0
    pristine = (bk / "hotline.db").read_bytes()
    with sqlite3.connect(bk / "hotline.db") as db:  # as an attacker with the file would: triggers off, edit
        db.execute("DROP TRIGGER audit_events_no_update")
        db.execute("UPDATE audit_events SET actor = 'user:nobody' WHERE seq = 2")
    db.close()
    r = _run(_restore_env(settings, tmp_path / "r1"), "restore", str(bk))
    assert r.exit_code == 1
    assert "文件 hotline.db：内容与备份清单记录的 sha256 不符" in r.output
    assert "审计链校验失败：事件 seq=2" in r.output and "edited" in r.output
    _rewrite_manifest(bk, "hotline.db")  # the manifest made to agree: the chain still names the event
    r = _run(_restore_env(settings, tmp_path / "r2"), "restore", str(bk))
    assert r.exit_code == 1 and "审计链校验失败：事件 seq=2" in r.output and "sha256 不符" not in r.output
    # the last events cut off: the chain still links up, but ends before the manifest's head
    (bk / "hotline.db").write_bytes(pristine)
    with sqlite3.connect(bk / "hotline.db") as db:
        db.execute("DROP TRIGGER audit_events_no_delete")
        db.execute("DELETE FROM audit_events WHERE seq > (SELECT max(seq) - 2 FROM audit_events)")
    db.close()
    _rewrite_manifest(bk, "hotline.db")
    r = _run(_restore_env(settings, tmp_path / "r3"), "restore", str(bk))
    assert r.exit_code == 1 and "审计链校验失败" in r.output and "deleted from its end" in r.output


def test_restore_refuses_a_data_dir_that_is_not_empty(
    sqlite_only: None, site: list[int], settings: Settings, tmp_path: Path
) -> None:
    bk = tmp_path / "bk"
    assert _run(env_for(settings), "backup", str(bk)).exit_code == 0
    into = tmp_path / "used"
    (into / "recordings").mkdir(parents=True)
    (into / "models" / "whisper").mkdir(parents=True)  # the model cache may be there already: that is fine
    (into / "models" / "whisper" / "model.bin").write_bytes(b"weights")
    (into / "hotline.db").write_bytes(b"someone's data")
    r = _run(_restore_env(settings, into), "restore", str(bk))
    assert r.exit_code == 2 and "不是空的" in r.output and "hotline.db" in r.output
    assert (into / "hotline.db").read_bytes() == b"someone's data"
    (into / "hotline.db").unlink()
    r = _run(_restore_env(settings, into, HOTLINE_MASTER_KEY_FILE=str(settings.data_dir / "master.key")),
             "restore", str(bk))
    assert r.exit_code == 0, r.output
    # a backup directory is never written over, and an unfinished one is not restored
    r = _run(env_for(settings), "backup", str(bk))
    assert r.exit_code == 2 and "不是空目录" in r.output
    manifest = json.loads((bk / "manifest.json").read_text())
    (bk / "manifest.json").write_text(json.dumps({**manifest, "schema_revision": "0999"}))
    r = _run(_restore_env(settings, tmp_path / "newer"), "restore", str(bk))  # made by a newer version
    assert r.exit_code == 2 and "比本程序新" in r.output and not (tmp_path / "newer").exists()
    (bk / "manifest.json").unlink()
    r = _run(_restore_env(settings, tmp_path / "fresh"), "restore", str(bk))
    assert r.exit_code == 2 and "缺少 manifest.json" in r.output


def test_recordings_in_s3_are_listed_and_checked_in_the_bucket(
    sqlite_only: None, settings: Settings, database: Database, tmp_path: Path, seaweed: Any
) -> None:
    from app.jobs import JobQueue
    from app.main import create_app

    bucket = f"bk-{uuid.uuid4().hex[:8]}"
    s3 = seaweed.settings_for(settings, bucket)
    ensure_bucket(files.store(s3, s3.storage_url))
    add_user(database, "li", Role.mediator)
    with TestClient(create_app(s3, database=database, queue=JobQueue(s3, database=database))) as client:
        ids = _upload(client, login(client, "li"), 2)
    env = {**env_for(settings), **seaweed.env_for(bucket)}
    r = _run(env, "backup", str(tmp_path / "bk"))
    assert r.exit_code == 0, r.output
    manifest = json.loads((tmp_path / "bk" / "manifest.json").read_text())
    assert [r["id"] for r in manifest["recordings"]] == ids
    assert all(r["storage"] == f"s3://{bucket}" and len(r["sha256"]) == 64 for r in manifest["recordings"])
    assert not (tmp_path / "bk" / "recordings").exists()  # the bucket is backed up by its own means
    env = {**_restore_env(settings, tmp_path / "r", HOTLINE_MASTER_KEY_FILE=str(settings.data_dir / "master.key")),
           **seaweed.env_for(bucket)}
    r = _run(env, "restore", str(tmp_path / "bk"))
    assert r.exit_code == 0 and "录音完好 2 份" in r.output, r.output


# --- PostgreSQL: the README's procedure ---------------------------------------------------------------------


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def test_postgres_pg_dump_beside_backup_no_database_then_pg_restore(
    postgres_only: None, client: TestClient, settings: Settings, database: Database, db_url: str, tmp_path: Path
) -> None:
    assert PG_URL is not None
    schema = sa.engine.make_url(db_url).query["options"].removeprefix("-csearch_path=")  # type: ignore[union-attr]
    add_user(database, "li", Role.mediator)
    ids = _upload(client, login(client, "li"), 2)
    bk = tmp_path / "bk"
    # 1. hotline backup --no-database (recordings, keys, manifest); a plain backup is refused with the procedure
    r = _run(env_for(settings), "backup", str(tmp_path / "plain"))
    assert r.exit_code == 2 and "pg_dump" in r.output and "--no-database" in r.output
    r = _run(env_for(settings), "backup", str(bk), "--no-database")
    assert r.exit_code == 0, r.output
    manifest = json.loads((bk / "manifest.json").read_text())
    assert manifest["database"]["kind"] == "none" and "hotline.db" not in {f["path"] for f in manifest["files"]}
    with database.session() as db:  # the site carries on between the two steps
        audit.record(db=db, actor="test", action="case.read", subject_type="case", subject_id=1)
    # 2. pg_dump -Fc right after it
    dump = bk / "hotline.pgdump"
    subprocess.run([PG_DUMP, "-Fc", "-n", schema, "-f", str(dump), _libpq(PG_URL)], check=True, timeout=120)
    # restore: pg_restore into an empty database, then hotline restore --no-database into an empty data dir
    target = f"restore_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    base = sa.engine.make_url(PG_URL)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {target}"))
        restored_url = base.set(database=target).render_as_string(hide_password=False)
        subprocess.run([PG_RESTORE, "-d", _libpq(restored_url), str(dump)], check=True, timeout=120)
        url = f"{restored_url}?options=-csearch_path%3D{schema}"
        env = _restore_env(settings, tmp_path / "r", HOTLINE_DATABASE_URL=url,
                           HOTLINE_MASTER_KEY_FILE=str(settings.data_dir / "master.key"))
        r = _run(env, "restore", str(bk))
        assert r.exit_code == 2 and "不含数据库" in r.output  # the files alone, without --no-database: refused
        r = _run(env, "restore", str(bk), "--no-database")
        assert r.exit_code == 0, r.output
        assert "校验通过" in r.output and f"录音完好 {len(ids)} 份" in r.output
        assert "其中 1 条晚于备份清单" in r.output  # the event written between the backup and the dump
        # a dump whose audit table was edited is caught the same way
        restored = sa.create_engine(url)
        with restored.begin() as conn:
            conn.execute(sa.text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
            conn.execute(sa.text("UPDATE audit_events SET actor = 'user:nobody' WHERE seq = 1"))
        restored.dispose()
        r = _run({**env, "HOTLINE_DATA_DIR": str(tmp_path / "r2")}, "restore", str(bk), "--no-database")
        assert r.exit_code == 1 and "审计链校验失败：事件 seq=1" in r.output
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {target} WITH (FORCE)"))
        admin.dispose()


def test_backup_service_reports_timing(sqlite_only: None, site: list[int], settings: Settings, tmp_path: Path) -> None:
    done = backups.backup(settings=settings, target=tmp_path / "bk")
    assert done.complete and done.files == 3 + 2 + 1  # recordings, report files, the database
    assert done.seconds > 0 and done.bytes > 3 * CALL.stat().st_size
