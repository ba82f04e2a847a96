"""Backups that restore, checked end to end.

``backup`` copies, while the site runs:

- the SQLite database, as one consistent snapshot (SQLite's online backup API: a reader, so writers carry on);
  everything else the backup lists (recordings, reports, the audit head, counts) is read from that snapshot, so
  it all describes one moment. PostgreSQL is dumped by ``pg_dump -Fc`` beside this command run with
  ``include_database=False`` (``--no-database``): then the list and the head come from the live database, read
  in one REPEATABLE READ transaction, and the dump is taken *after* it (the README's procedure);
- the recordings in the data dir's store, as stored (ciphertext stays ciphertext); recordings in S3 are backed up
  by the bucket's own means (versioning, replication): their keys and sha256 are listed so a restore can check
  the bucket holds each of them intact. Recordings deleted by retention (tombstones) have nothing to copy;
- the archived reports (``reports/``), the JWT secret (``secret.key``) and the media token (``media.token``) where
  they are kept in the data dir, and the master key only when asked (``include_master_key``): a backup with the
  key beside the ciphertext protects nothing if it is stolen;
- last, ``manifest.json``: format version, created_at, schema revision, audit head (seq, id, hash), counts, every
  recording (id, sha256, where, key, stored size) and every file copied (path, size, sha256). A directory without
  it is an unfinished backup.

Not copied: the job queue (the database is the source of truth; the sweep queues unfinished jobs again), the
model cache, temporary files, calls in progress.

``restore`` copies a backup into an *empty* data dir (and database), then checks it end to end: each file against
the manifest's sha256; the audit chain as ``hotline audit verify`` does, against the manifest's head (a restored
SQLite database must end exactly at that event; a restored dump, taken after the backup, must hold it unchanged);
every recording against the manifest and read back whole (decrypted, with the master key from the backup if it
holds one, else the configured one) and checked against its sha256; every archived report against its sha256.
``RestoreReport.ok`` is false on any mismatch.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa

from app.audit import service as audit
from app.config import Settings
from app.db import MIGRATIONS_DIR, Database
from app.recordings import crypto, files
from app.recordings.models import LOCAL, Recording
from app.recordings.storage import LocalStorage, StorageError, check_key

FORMAT = "hotline-backup"
VERSION = 1
MANIFEST = "manifest.json"
DB_FILE = "hotline.db"
RECORDINGS = "recordings"
REPORTS = "reports"
KEYS = "keys"
KEY_FILES = ("secret.key", "media.token")  # kept in the data dir when not given by the environment
MASTER_KEY = "master.key"
IGNORED_IN_TARGET = ("models", "workers")  # the model cache (make setup puts it there); stale worker heartbeats
BLOCK = 1 << 20


class BackupError(Exception):
    """A backup or restore refused before it started (the message says why and what to do)."""


class Progress(Protocol):
    """Where a long copy reports how far it is (the CLI draws rich progress bars)."""

    def phase(self, description: str, total: int | None, *, unit: str = "") -> None: ...

    def advance(self, amount: int) -> None: ...


class _Quiet:
    def phase(self, description: str, total: int | None, *, unit: str = "") -> None:
        return None

    def advance(self, amount: int) -> None:
        return None


@dataclass
class BackupResult:
    target: Path
    manifest: dict[str, Any]
    files: int
    bytes: int
    seconds: float
    missing: dict[str, str] = field(default_factory=dict)  # file → why it could not be copied
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing


@dataclass
class RestoreReport:
    source: Path
    manifest: dict[str, Any]
    bad_files: dict[str, str] = field(default_factory=dict)  # backup file → why (sha256, missing)
    audit_ok: bool = False
    audit_message: str = ""
    audit_events: int = 0
    events_after_head: int = 0  # restored dump: events after the manifest's head (the dump was taken after it)
    recordings_ok: int = 0
    recordings_tombstones: int = 0
    recordings_failed: dict[int, str] = field(default_factory=dict)
    reports_ok: int = 0
    reports_failed: dict[int, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    copy_seconds: float = 0.0
    verify_seconds: float = 0.0
    bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.audit_ok and not (self.bad_files or self.recordings_failed or self.reports_failed)


# --- backup -----------------------------------------------------------------------------------------------


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL; None for any other database."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:":
        raise BackupError("内存中的 SQLite 数据库无法备份")
    return Path(parsed.database)


def _sha256_copy(src: Path, dst: Path, progress: Progress, *, mode: int | None = None) -> tuple[int, str]:
    """Copy ``src`` to ``dst`` (folders made), hashing on the way; returns (size, sha256)."""
    dst.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    digest = hashlib.sha256()
    size = 0
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    fd = os.open(dst, flags, 0o600 if mode is None else mode)
    with src.open("rb") as inp, os.fdopen(fd, "wb") as out:
        while block := inp.read(BLOCK):
            digest.update(block)
            out.write(block)
            size += len(block)
            progress.advance(len(block))
    return size, digest.hexdigest()


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _snapshot_sqlite(source: Path, dest: Path) -> None:
    """A consistent copy of a live SQLite database (WAL): the online backup API copies every page in one step
    inside one read transaction, so writers carry on and the copy is one moment of the database. The copy is
    switched to a rollback journal: one self-contained file."""
    if not source.is_file():
        raise BackupError(f"数据库文件 {source} 不存在")
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(dest)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
    finally:
        src.close()
    dest.chmod(0o600)


@dataclass(frozen=True)
class _Facts:
    """What the backup lists, read in one transaction (from the snapshot, or the live database)."""

    revision: str | None
    head: dict[str, Any] | None
    counts: dict[str, int]
    recordings: list[dict[str, Any]]
    reports: list[dict[str, Any]]


def _facts(conn: sa.Connection) -> _Facts:
    revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    head_row = conn.execute(sa.text("SELECT id, seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")).first()
    head = {"seq": int(head_row.seq), "id": int(head_row.id), "hash": str(head_row.hash)} if head_row else None

    def count(table: str, where: str = "") -> int:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table} {where}")).scalar_one())

    recordings = [
        {"id": r.id, "sha256": r.sha256, "storage": r.storage, "key": r.path, "size": r.size_bytes,
         "stored_size": r.stored_size, "encrypted": bool(r.encrypted), "deleted": r.deleted_at is not None}
        for r in conn.execute(sa.text(
            "SELECT id, sha256, storage, path, size_bytes, stored_size, wrapped_key IS NOT NULL AS encrypted,"
            " deleted_at FROM recordings ORDER BY id"))
    ]
    reports = [
        {"id": r.id, "files": [[r.docx_path, r.docx_sha256], [r.pdf_path, r.pdf_sha256]]}
        for r in conn.execute(sa.text("SELECT id, docx_path, docx_sha256, pdf_path, pdf_sha256 FROM reports"
                                      " ORDER BY id"))
    ]
    counts = {
        "recordings": len(recordings), "recordings_deleted": sum(r["deleted"] for r in recordings),
        "recordings_encrypted": sum(r["encrypted"] for r in recordings), "cases": count("cases"),
        "transcripts": count("transcripts"), "audit_events": count("audit_events"), "users": count("users"),
        "reports": len(reports),
    }
    return _Facts(str(revision) if revision else None, head, counts, recordings, reports)


@contextmanager
def _read_only(url: str) -> Iterator[sa.Connection]:
    """One read transaction that sees one moment of the database (REPEATABLE READ on PostgreSQL; a deferred
    read transaction on SQLite, which in WAL mode is a snapshot and blocks no writer)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    if engine.dialect.name == "sqlite":  # the driver would run SELECTs outside any transaction: BEGIN ourselves
        sa.event.listen(engine, "connect", lambda dbapi_conn, _record: setattr(dbapi_conn, "isolation_level", None))
        sa.event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
    try:
        with engine.connect() as plain:
            conn = plain.execution_options(isolation_level="REPEATABLE READ") \
                if engine.dialect.name == "postgresql" else plain
            with conn.begin():
                yield conn
    finally:
        engine.dispose()


def _target_dir(target: Path) -> None:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"备份目录 {target} 已存在且不是空目录：请为每次备份指定一个新目录")
    target.mkdir(parents=True, exist_ok=True, mode=0o700)


def _master_key_text(settings: Settings) -> str | None:
    """The master key file's text (every key, oldest first), or None when no master key is set or generated."""
    if settings.master_key:
        key = settings.master_key.strip()
        try:
            raw = base64.b64decode(key, validate=True)
        except (binascii.Error, ValueError):
            raise BackupError("HOTLINE_MASTER_KEY 无效，无法写入备份") from None
        return f"{crypto.key_id_for(raw)} {key}\n"
    path = settings.master_key_file or settings.data_dir / MASTER_KEY
    return path.read_text(encoding="utf-8") if path.is_file() else None


def backup(*, settings: Settings, target: Path, include_database: bool = True, include_master_key: bool = False,
           progress: Progress | None = None) -> BackupResult:
    """Back the site up into ``target`` (a new or empty directory); see the module's doc."""
    progress = progress or _Quiet()
    started = time.monotonic()
    url = settings.sqlalchemy_url
    db_path = sqlite_path(url)
    if include_database and db_path is None:
        raise BackupError("数据库是 PostgreSQL：请先运行本命令并加 --no-database，再用 pg_dump -Fc 备份数据库"
                          "（步骤见 README「备份与保存期限」）")
    _target_dir(target)
    listed: list[dict[str, Any]] = []
    missing: dict[str, str] = {}
    notes: list[str] = []

    def add(path: str, size: int, digest: str) -> None:
        listed.append({"path": path, "size": size, "sha256": digest})

    if include_database:
        assert db_path is not None
        progress.phase("数据库快照", None)
        snapshot = target / DB_FILE
        _snapshot_sqlite(db_path, snapshot)
        with _read_only(f"sqlite:///{snapshot}") as conn:
            facts = _facts(conn)
        add(DB_FILE, snapshot.stat().st_size, _sha256_of(snapshot))
    else:
        with _read_only(url) as conn:
            facts = _facts(conn)

    local = LocalStorage(settings.recordings_dir)
    todo = [r for r in facts.recordings if r["storage"] == LOCAL and not r["deleted"]]
    progress.phase(f"录音 {len(todo)} 份", sum(r["stored_size"] or r["size"] for r in todo), unit="bytes")
    for rec in todo:
        name = f"{RECORDINGS}/{check_key(rec['key'])}"
        try:
            size, digest = _sha256_copy(local.path(rec["key"]), target / name, progress)
        except (OSError, StorageError) as e:  # deleted by retention after the snapshot, or lost
            missing[name] = f"录音 #{rec['id']}：{getattr(e, 'strerror', None) or e}"
            continue
        add(name, size, digest)

    report_files = [(path, sha) for r in facts.reports for path, sha in r["files"]]
    progress.phase(f"报告 {len(report_files)} 个文件", len(report_files))
    for path, _sha in report_files:
        try:
            size, digest = _sha256_copy(settings.data_dir / path, target / path, progress)
        except OSError as e:
            missing[path] = f"报告文件：{e.strerror or e}"
        else:
            add(path, size, digest)
        progress.advance(1)

    for name in KEY_FILES:
        kept = settings.data_dir / name
        if kept.is_file():
            size, digest = _sha256_copy(kept, target / KEYS / name, progress, mode=0o600)
            add(f"{KEYS}/{name}", size, digest)
        else:
            notes.append(f"{name} 不在数据目录中（由环境变量设置）：恢复后请照原样配置")
    master = _master_key_text(settings) if include_master_key else None
    if include_master_key and master is None:
        notes.append("没有找到主密钥（未生成，也未配置），备份中不含主密钥")
    if master is not None:
        key_path = target / KEYS / MASTER_KEY
        key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(master)
        add(f"{KEYS}/{MASTER_KEY}", key_path.stat().st_size, _sha256_of(key_path))

    manifest = {
        "format": FORMAT, "version": VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "hotline_version": _version(),
        "database": ({"kind": "sqlite", "file": DB_FILE} if include_database
                     else {"kind": "none", "dialect": sa.engine.make_url(url).get_backend_name(),
                           "note": "backed up separately (pg_dump -Fc, after this backup)"}),
        "schema_revision": facts.revision,
        "audit_head": facts.head,
        "counts": facts.counts,
        "master_key_included": master is not None,
        "recordings": facts.recordings,
        "files": listed,
        "missing": missing,
    }
    os.sync()  # every copied file on disk before the manifest says the backup is whole
    tmp = target / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, target / MANIFEST)
    return BackupResult(target, manifest, len(listed), sum(f["size"] for f in listed), time.monotonic() - started,
                        missing, notes)


def _version() -> str:
    try:
        return metadata.version("hotline12351")
    except metadata.PackageNotFoundError:
        return "unknown"


# --- restore ----------------------------------------------------------------------------------------------


def read_manifest(source: Path) -> dict[str, Any]:
    path = source / MANIFEST
    if not path.is_file():
        raise BackupError(f"{source} 不是完整的备份：缺少 {MANIFEST}（备份未完成，或目录不对）")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BackupError(f"{path} 无法读取：{e}") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path} 不是本系统的备份清单")
    if manifest.get("version") != VERSION:
        raise BackupError(f"备份清单版本 {manifest.get('version')} 不受支持（本版本读取 {VERSION}）")
    return manifest


def _leftovers(folder: Path, allowed: frozenset[Path] = frozenset()) -> list[str]:
    """What a data dir holds besides empty folders, the model cache and ``allowed``: a restore must not mix
    with it."""
    if not folder.exists():
        return []
    if not folder.is_dir():
        return [str(folder)]
    out = []
    for entry in sorted(folder.iterdir()):
        if (entry.name in IGNORED_IN_TARGET and entry.is_dir()) or entry.resolve() in allowed:
            continue
        if entry.is_dir() and not entry.is_symlink():
            out += _leftovers(entry, allowed)
        else:
            out.append(str(entry))
    return out


def check_target(*, settings: Settings, include_database: bool, manifest: dict[str, Any]) -> None:
    """Refuse to restore over anything (BackupError saying what is in the way)."""
    db_path = sqlite_path(settings.sqlalchemy_url)
    restored_db = frozenset() if include_database or db_path is None else frozenset(
        Path(f"{db_path}{suffix}").resolve() for suffix in ("", "-wal", "-shm"))  # put back by other means
    found = _leftovers(settings.data_dir, restored_db)
    if found:
        shown = "、".join(found[:3]) + (f" 等 {len(found)} 项" if len(found) > 3 else "")
        raise BackupError(f"数据目录 {settings.data_dir} 不是空的（{shown}）：恢复只写入空的数据目录，"
                          "以免与现有数据混在一起。请将 HOTLINE_DATA_DIR 指向一个新目录（或先移走其中的内容）")
    revision = manifest.get("schema_revision")
    if revision and not _known_revision(str(revision)):
        raise BackupError(f"备份的数据库版本 {revision} 比本程序新（本程序最新为 {_head_revision()}）："
                          "请用制作备份的版本或更新的版本恢复")
    has_db = (manifest.get("database") or {}).get("kind") == "sqlite"
    if include_database:
        if not has_db:
            raise BackupError("该备份不含数据库（以 --no-database 制作）：请先用 pg_restore 恢复数据库，"
                              "再以 --no-database 运行 hotline restore")
        if db_path is None:
            raise BackupError("该备份的数据库是 SQLite，而 HOTLINE_DATABASE_URL 指向 PostgreSQL：请去掉该设置后恢复")
        if db_path.exists():
            raise BackupError(f"数据库文件 {db_path} 已存在：恢复不覆盖现有数据库")


def _scripts() -> Any:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(cfg)


def _known_revision(revision: str) -> bool:
    from alembic.util.exc import CommandError

    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


def _head_revision() -> str:
    return str(_scripts().get_current_head())


def _key_settings(settings: Settings, manifest: dict[str, Any]) -> tuple[Settings, str]:
    """The settings to decrypt with: the master key from the backup when it holds one (restored into the data
    dir), else the configured one. Never generates a key."""
    restored = settings.data_dir / MASTER_KEY
    if manifest.get("master_key_included") and restored.is_file():
        return settings.model_copy(update={"master_key": None, "master_key_file": restored}), "备份中的主密钥"
    if settings.master_key:
        return settings, "HOTLINE_MASTER_KEY"
    if settings.master_key_file:
        return settings, f"HOTLINE_MASTER_KEY_FILE（{settings.master_key_file}）"
    return settings, ""


def restore(*, settings: Settings, source: Path, include_database: bool = True, actor: str = "cli",
            progress: Progress | None = None) -> RestoreReport:
    """Restore the backup in ``source`` into the configured (empty) data dir and database, then check it all;
    see the module's doc. BackupError: refused before anything was copied."""
    progress = progress or _Quiet()
    manifest = read_manifest(source)
    check_target(settings=settings, include_database=include_database, manifest=manifest)
    report = RestoreReport(source, manifest)
    started = time.monotonic()
    _copy_back(settings, source, manifest, report, include_database, progress)
    report.copy_seconds = time.monotonic() - started
    started = time.monotonic()
    database = Database(settings.sqlalchemy_url)
    try:
        if not include_database:
            _require_restored_database(database)
        database.upgrade()  # a backup made by an older version: brought up to date, as the next start would
        _check_audit(database, manifest, report, exact=include_database)
        _check_recordings(database, settings, manifest, report, exact=include_database, progress=progress)
        _check_reports(database, settings, report)
        with database.session() as db:
            audit.record(db=db, actor=actor, action="backup.restored", subject_type="storage", subject_id="backup",
                         details={"backup_created_at": manifest.get("created_at"),
                                  "audit_head": manifest.get("audit_head"), "ok": report.ok,
                                  "recordings_ok": report.recordings_ok,
                                  "recordings_failed": sorted(report.recordings_failed),
                                  "bad_files": sorted(report.bad_files)[:50], "audit_ok": report.audit_ok})
    finally:
        database.dispose()
    report.verify_seconds = time.monotonic() - started
    return report


def _destination(settings: Settings, name: str) -> Path | None:
    """Where a backup file goes back to (None: not ours to restore)."""
    if name == DB_FILE:
        return sqlite_path(settings.sqlalchemy_url)
    head, _, rest = name.partition("/")
    if head == RECORDINGS and rest:
        return LocalStorage(settings.recordings_dir).path(rest)
    if head == REPORTS and rest:
        check_key(rest)
        return settings.data_dir / REPORTS / rest
    if head == KEYS and rest in (*KEY_FILES, MASTER_KEY):
        return settings.data_dir / rest
    return None


def _copy_back(settings: Settings, source: Path, manifest: dict[str, Any], report: RestoreReport,
               include_database: bool, progress: Progress) -> None:
    settings.ensure_dirs()
    entries = [f for f in manifest.get("files", []) if include_database or f.get("path") != DB_FILE]
    progress.phase(f"复制 {len(entries)} 个文件", sum(int(f.get("size") or 0) for f in entries), unit="bytes")
    for entry in entries:
        name = str(entry.get("path", ""))
        try:
            dest = _destination(settings, name)
        except StorageError:
            dest = None
        if dest is None:
            report.bad_files[name] = "清单中的路径无法识别（清单被改动？）"
            continue
        src = source / name
        if not src.is_file():
            report.bad_files[name] = "备份中缺少该文件"
            continue
        secret = name.startswith(f"{KEYS}/") or name == DB_FILE
        size, digest = _sha256_copy(src, dest, progress, mode=0o600 if secret else None)
        report.bytes += size
        if digest != entry.get("sha256") or size != entry.get("size"):
            report.bad_files[name] = "内容与备份清单记录的 sha256 不符（文件被改动或损坏）"
    for name, why in (manifest.get("missing") or {}).items():
        report.bad_files[name] = f"备份时未能复制：{why}"
    if manifest.get("master_key_included"):
        report.notes.append(f"主密钥已从备份恢复到 {settings.data_dir / MASTER_KEY}：请另行保管一份，"
                            "且不要与备份放在一起")


def _require_restored_database(database: Database) -> None:
    with database.engine.connect() as conn:
        if not sa.inspect(conn).has_table("audit_events"):
            raise BackupError("数据库是空的：请先用 pg_restore 恢复 pg_dump 的备份，"
                              "再运行 hotline restore --no-database")


def _check_audit(database: Database, manifest: dict[str, Any], report: RestoreReport, *, exact: bool) -> None:
    head = manifest.get("audit_head")
    anchor = audit.Anchor(int(head["seq"]), str(head["hash"])) if head else None
    with database.session() as db:
        result = audit.verify(db=db, expect=anchor)
    report.audit_events = result.events
    if not result.ok:
        report.audit_message = (f"审计链校验失败：事件 seq={result.first_bad_seq}（id={result.first_bad_id}）："
                                f"{result.reason}；完好至 {result.head}")
        return
    wanted = f"{head['seq']}:{head['hash']}" if head else "0:" + audit.GENESIS
    if exact and result.head != wanted:
        report.audit_message = (f"审计链止于 {result.head}，与备份清单记录的末尾事件 {wanted} 不符"
                                "（数据库被截断或改写）")
        return
    report.events_after_head = result.head_seq - (int(head["seq"]) if head else 0)
    report.audit_ok = True
    report.audit_message = f"审计链完好：{result.events} 条事件，末尾 {result.head}" + (
        f"（其中 {report.events_after_head} 条晚于备份清单，来自其后的数据库转储）" if report.events_after_head else "")


def _check_recordings(database: Database, settings: Settings, manifest: dict[str, Any], report: RestoreReport,
                      *, exact: bool, progress: Progress) -> None:
    listed = {int(r["id"]): r for r in manifest.get("recordings", [])}
    with database.session() as db:
        rows = list(db.execute(sa.select(Recording).order_by(Recording.id)).scalars())
    keyed, source = _key_settings(settings, manifest)
    has_key = bool(source) or (settings.data_dir / MASTER_KEY).is_file()
    if has_key and not source:
        source = "数据目录中的主密钥"
    report.notes.append(f"解密所用主密钥：{source or '无（未配置，备份中也没有）'}")
    seen: set[int] = set()
    progress.phase(f"校验录音 {len(rows)} 份", len(rows))
    for rec in rows:
        progress.advance(1)
        seen.add(rec.id)
        entry = listed.get(rec.id)
        if entry is None:
            if exact:
                report.recordings_failed[rec.id] = "数据库中有、备份清单中没有的录音（数据库被改动）"
                continue
            report.notes.append(f"录音 #{rec.id} 晚于备份清单（其后的数据库转储中才有）")
        elif (entry["sha256"], entry["key"], entry["storage"]) != (rec.sha256, rec.path, rec.storage) or (
                bool(entry["deleted"]) != (rec.deleted_at is not None) and (exact or entry["deleted"])):
            # (a dump taken after the backup may hold a tombstone the sweep left meanwhile; never the reverse)
            report.recordings_failed[rec.id] = ("数据库中的登记（sha256、存储位置、删除标记）与备份清单不符"
                                                "（数据库被改动）")
            continue
        if rec.deleted_at is not None:
            report.recordings_tombstones += 1
            continue
        if rec.encrypted and not has_key:
            report.recordings_failed[rec.id] = ("没有主密钥，无法解密校验：请设置 HOTLINE_MASTER_KEY_FILE 指向另行保管"
                                                "的主密钥，或使用含主密钥的备份")
            continue
        try:
            files.verify(keyed, rec)
        except (StorageError, crypto.CryptoError) as e:
            report.recordings_failed[rec.id] = str(e)
        else:
            report.recordings_ok += 1
    for rec_id in sorted(set(listed) - seen):
        report.recordings_failed[rec_id] = "备份清单中的录音在数据库中不存在（数据库被改动）"


def _check_reports(database: Database, settings: Settings, report: RestoreReport) -> None:
    from app.reports.models import Report

    with database.session() as db:
        rows = list(db.execute(sa.select(Report).order_by(Report.id)).scalars())
    for row in rows:
        for path, sha in ((row.docx_path, row.docx_sha256), (row.pdf_path, row.pdf_sha256)):
            file = settings.data_dir / path
            if not file.is_file():
                report.reports_failed[row.id] = f"报告文件 {path} 缺失"
            elif _sha256_of(file) != sha:
                report.reports_failed[row.id] = f"报告文件 {path} 与登记的 sha256 不符"
        if row.id not in report.reports_failed:
            report.reports_ok += 1

