"""What every `hotline` process does before work: files private to this user (umask 077), the data dir's modes
checked (a warning, not a crash), and staged files left by a crash removed.

**Who uses the data dir.** Each `hotline` process that works in a data dir holds a shared lock on
``<data dir>/.lock`` (``DataDirLock``) for as long as it works there. The staging folder ``<data dir>/tmp`` holds
uploads being received (``upload-*``), recordings being sealed (``seal-*``), decrypted copies for the decoder
(``audio-*``), copies of a storage move (``move-*``) and ledgers being sent (``ledger-*``), each removed by its
process when done. A process killed meanwhile leaves its file behind: ``sweep_staging`` removes them all when it
gets the lock exclusively (no other process works in this data dir: what is there is left over), and otherwise
only those untouched for ``STALE_AFTER`` (no upload, decode or copy lasts that long).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from app.config import Settings

log = logging.getLogger("hotline.startup")

UMASK = 0o077
STAGING_PREFIXES = ("upload-", "seal-", "audio-", "move-", "ledger-")
STALE_AFTER = 24 * 3600.0
RECORDINGS_CHECKED = 200  # recordings whose modes are looked at on start (the folders are all checked)


def private_umask() -> None:
    """Files and folders made by this process from now on are for this user only (0600 / 0700)."""
    os.umask(UMASK)


class DataDirLock:
    """``flock`` on ``<data dir>/.lock``: shared while a process works in the data dir, exclusive (briefly) to
    sweep the staging folder. Released when the process ends, however it ends."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = data_dir / ".lock"
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)

    def _lock(self, how: int) -> None:
        assert self._fd is not None, "released"
        fcntl.flock(self._fd, how)

    def shared(self) -> None:
        self._lock(fcntl.LOCK_SH)

    def try_exclusive(self) -> bool:
        """The lock alone (no other process holds it, shared or not); False, and no lock at all, if not."""
        try:
            self._lock(fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DataDirLock:
        self.shared()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@dataclass(frozen=True)
class Swept:
    removed: list[str]
    alone: bool  # no other process worked in the data dir: everything left over was removed


def sweep_staging(settings: Settings, lock: DataDirLock) -> Swept:
    """Remove staged files left by a crash (see the module's docstring); the lock is held shared afterwards."""
    alone = lock.try_exclusive()
    removed = []
    try:
        folder = settings.data_dir / "tmp"
        now = time.time()
        for path in sorted(folder.iterdir()) if folder.is_dir() else []:
            if not path.name.startswith(STAGING_PREFIXES):
                continue
            with contextlib.suppress(FileNotFoundError):
                info = path.lstat()
                if not stat.S_ISREG(info.st_mode) or not (alone or now - info.st_mtime > STALE_AFTER):
                    continue
                path.unlink()
                removed.append(path.name)
    finally:
        lock.shared()
    if removed:
        log.warning("removed %d staged file(s) left in %s by a process that stopped mid-way", len(removed), folder)
    return Swept(removed, alone)


# --- modes ---------------------------------------------------------------------------------------------------


def _secrets(settings: Settings) -> list[Path]:
    d = settings.data_dir
    paths = [d / "secret.key", d / "media.token", d / "master.key", d / "initial-admin-password.txt",
             d / "jobs.db"]
    if settings.master_key_file:
        paths.append(settings.master_key_file)
    if settings.database_url is None:  # the embedded SQLite database and its journal
        db = d / "hotline.db"
        paths += [db, db.with_name("hotline.db-wal"), db.with_name("hotline.db-shm")]
    return paths


def _open_to_others(path: Path) -> int | None:
    """The mode bits that let group or others in, or None if there are none (or no such file)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    return mode if mode & 0o077 else None


def check_modes(settings: Settings) -> list[str]:
    """Warnings (in Chinese, with the command that fixes it) for the data dir, the database, the keys and the
    recordings when group or others may read them; nothing is changed (a backup group may be on purpose)."""
    warnings = []
    folders = [settings.data_dir, settings.recordings_dir, settings.calls_dir, settings.data_dir / "tmp"]
    for folder in folders:
        if (mode := _open_to_others(folder)) is not None:
            warnings.append(f"数据目录 {folder} 的权限为 {mode:04o}，其他用户可以进入或读取；请执行 chmod 700 {folder}")
    files = [p for p in _secrets(settings) if p.exists()]
    recordings = settings.recordings_dir
    if recordings.is_dir():  # recordings/ab/<sha256>…: every ab/ folder, and the first files
        seen = 0
        for sub in sorted(recordings.iterdir()):
            files.append(sub)
            if sub.is_dir() and seen < RECORDINGS_CHECKED:
                for path in sub.iterdir():
                    files.append(path)
                    seen += 1
                    if seen >= RECORDINGS_CHECKED:
                        break
    for path in files:
        if (mode := _open_to_others(path)) is not None:
            fix = "chmod 700" if path.is_dir() else "chmod 600"
            warnings.append(f"{path} 的权限为 {mode:04o}，其他用户可以读取；请执行 {fix} {path}")
    if len(warnings) > 20:
        warnings = [*warnings[:20], f"……另有 {len(warnings) - 20} 处权限过宽（可执行 chmod -R go-rwx "
                                    f"{settings.data_dir} 一并修正）"]
    return warnings


def prepare(settings: Settings, *, sweep: bool) -> DataDirLock:
    """Start-up of a long-running process (`hotline serve`, `worker`, `sip`, `live`): the data dir locked
    (shared) for the process's life, leftover staged files swept (``sweep``), and modes checked and warned about
    by the first process in the data dir (not again by the children `hotline serve` starts)."""
    settings.ensure_dirs()
    lock = DataDirLock(settings.data_dir)
    first = sweep_staging(settings, lock).alone if sweep else lock.try_exclusive()
    lock.shared()
    if first:
        for warning in check_modes(settings):
            log.warning("%s", warning)
    return lock
