"""A recording's bytes: stored (encrypted at rest by default), read back by byte range, or copied out whole for
the decoder. The only module that combines the store (``storage.py``) and the cipher (``crypto.py``).

- Where: each row names its store (``Recording.storage``: ``local`` or ``s3://…``), so recordings filed before a
  move, or on another node's disk, stay readable; new ones go to the site's ``HOTLINE_STORAGE_URL``.
- Keys: ``ab/<sha256><ext>`` in clear (as before); an encrypted object adds a random token,
  ``ab/<sha256><ext>.<token>.enc``: two uploads of the same audio racing each other each write their own object
  under their own data key, and the loser's is removed, so neither can overwrite the winner's ciphertext.
- Reads authenticate every chunk (``CryptoError`` on a tampered or truncated object: nothing unauthenticated is
  returned). A whole copy is also checked against the row's sha256, in clear or not.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from app.config import Settings
from app.recordings import crypto, storage
from app.recordings.models import LOCAL, Recording
from app.recordings.storage import Storage, StorageError

_lock = threading.Lock()
_stores: dict[tuple[object, ...], Storage] = {}
_keyrings: dict[tuple[object, ...], crypto.Keyring] = {}


class Corrupted(StorageError):
    """The bytes read back are not the recording on file (sha256 differs, or the ciphertext fails to
    authenticate): never played, never transcribed."""


def location(settings: Settings) -> str:
    """Where this node files new recordings: ``local`` or the configured ``s3://bucket/prefix``."""
    return settings.storage_url.rstrip("/") or LOCAL


def store(settings: Settings, url: str) -> Storage:
    """The store at ``url`` (``local`` or ``s3://…``), one client per process and configuration."""
    spec = "" if url == LOCAL else url
    key = (spec, str(settings.recordings_dir.resolve()), settings.s3_endpoint_url, settings.s3_access_key_id,
           settings.s3_region)
    with _lock:
        if key not in _stores:
            _stores[key] = storage.open_storage(settings, spec)
        return _stores[key]


def keyring(settings: Settings) -> crypto.Keyring:
    """The master keys (loaded once per process and configuration; generated on first use when none is set)."""
    key = (settings.master_key, str(settings.master_key_file), str(settings.data_dir.resolve()))
    with _lock:
        if key not in _keyrings:
            _keyrings[key] = crypto.Keyring.load(settings)
        return _keyrings[key]


def forget_keyring(settings: Settings) -> None:
    """Drop the cached keyring (after a rotation by this process)."""
    with _lock:
        _keyrings.pop((settings.master_key, str(settings.master_key_file), str(settings.data_dir.resolve())), None)


@dataclass(frozen=True)
class Stored:
    """What the row records about the stored object."""

    storage: str
    key: str
    stored_size: int
    wrapped: crypto.WrappedKey | None


def put(settings: Settings, *, source: Path, sha256: str, size: int, ext: str) -> Stored:
    """Store a staged file (already hashed) in this node's store, sealed under a fresh data key unless
    encryption is off. Retention (WORM) applies where the store offers it (``HOTLINE_S3_OBJECT_LOCK_DAYS``)."""
    url = location(settings)
    target = store(settings, url)
    base = f"{sha256[:2]}/{sha256}{ext}"
    retain = settings.s3_object_lock_days
    if not settings.encrypt_recordings:
        if not target.exists(base):
            target.put(base, source, retain_days=retain)
        return Stored(url, base, size, None)
    data_key, wrapped = keyring(settings).new_data_key(bytes.fromhex(sha256))
    key = f"{base}.{secrets.token_hex(4)}.enc"
    sealed = settings.data_dir / "tmp" / f"seal-{uuid.uuid4().hex}"
    try:
        with source.open("rb") as src, sealed.open("wb") as dst:
            stored_size = crypto.seal(src, dst, data_key, size)
        target.put(key, sealed, retain_days=retain)
    finally:
        sealed.unlink(missing_ok=True)
    return Stored(url, key, stored_size, wrapped)


def discard(settings: Settings, stored: Stored) -> None:
    """Remove an object whose row was never written (a failed or lost race); a clear object may be shared
    by content with an existing row, so only encrypted (per-upload) objects are removed."""
    if stored.wrapped is not None:
        store(settings, stored.storage).delete(stored.key)


def data_key(settings: Settings, rec: Recording) -> bytes | None:
    if rec.wrapped_key is None:
        return None
    wrapped = crypto.WrappedKey(rec.key_id or "", rec.wrapped_key)
    return keyring(settings).unwrap(wrapped, bytes.fromhex(rec.sha256))


def read(settings: Settings, rec: Recording, start: int = 0, end: int | None = None) -> Iterator[bytes]:
    """The recording's bytes ``[start, end)`` in clear; a tampered or truncated object raises ``CryptoError``
    before its bytes are given out."""
    source = store(settings, rec.storage)
    key = data_key(settings, rec)
    if key is None:
        return source.stream(rec.path, start, end)
    return crypto.decrypt_range(lambda a, b: source.stream(rec.path, a, b), data_key=key,
                                plain_size=rec.size_bytes, start=start, end=end)


def suffix(rec: Recording) -> str:
    """The audio file's own extension (``.wav``), without the encryption suffix."""
    name = rec.path
    if rec.wrapped_key is not None:
        name = name.rsplit(".", 2)[0]
    return Path(name).suffix


@contextmanager
def local_copy(settings: Settings, rec: Recording) -> Iterator[Path]:
    """A file in clear for the decoder: the stored file itself for a local recording in clear, else a
    temporary copy (decrypted, checked against the row's sha256, removed afterwards)."""
    if rec.storage == LOCAL and rec.wrapped_key is None:
        path = settings.recordings_dir / rec.path
        if not path.is_file():
            raise storage.ObjectMissing(f"录音文件缺失：{rec.path}（数据目录 recordings/ 下）")
        yield path
        return
    settings.ensure_dirs()
    tmp = settings.data_dir / "tmp" / f"audio-{uuid.uuid4().hex}{suffix(rec)}"
    try:
        verify(settings, rec, into=tmp)
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def verify(settings: Settings, rec: Recording, *, into: Path | None = None) -> None:
    """Read the whole recording back and check its sha256 (optionally writing the clear bytes ``into``)."""
    digest = hashlib.sha256()
    if rec.stored_size is not None and (size := store(settings, rec.storage).size(rec.path)) != rec.stored_size:
        raise Corrupted(f"录音 #{rec.id} 的存储大小 {size} 与登记的 {rec.stored_size} 字节不符：文件被篡改或损坏")
    try:
        with (into.open("wb") if into else _Null()) as out:
            for piece in read(settings, rec):
                digest.update(piece)
                out.write(piece)
    except crypto.CryptoError as e:
        raise Corrupted(f"录音 #{rec.id} 校验失败：{e}") from e
    if digest.hexdigest() != rec.sha256:
        raise Corrupted(f"录音 #{rec.id} 的内容与登记的 sha256 不符：文件被篡改或损坏")


class _Null:
    def __enter__(self) -> _Null:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def write(self, data: bytes) -> int:
        return len(data)
