"""Encryption at rest of call recordings: AES-256-GCM envelope encryption, in chunks for HTTP Range reads.

Keys. Each recording gets a random 256-bit *data key* that encrypts that one file, once. The data key is
stored next to the recording's row only *wrapped* (AES-256-GCM) by a *master key*: ``WrappedKey(key_id, blob)``
with ``blob = version(1) || nonce(12) || ciphertext(32) || tag(16)`` and associated data
``b"HLKEY" || len(key_id) || key_id || context``; the caller passes the recording's sha256 as ``context``, so
a wrapped key copied onto another recording does not unwrap. Master keys come from ``HOTLINE_MASTER_KEY``
(base64 of 32 bytes), or a key file (``HOTLINE_MASTER_KEY_FILE``, else ``<data dir>/master.key``, generated
on first use with mode 0600). The key file is text, one key a line, ``<key_id> <base64 of 32 bytes>``; blank
lines and ``#`` comments are allowed, and the *last* key is the current one (new wraps). ``Keyring.rotate``
appends a new key; older keys stay for unwrapping until ``Keyring.retire`` drops those no recording uses.

File format (version 1). A fixed-length header, ``HEADER = b"HLREC" || version(1) || chunk size (u32 BE) ||
plaintext size (u64 BE)`` (18 bytes), then the plaintext in chunks of ``CHUNK`` (64 KiB) bytes, the last one
shorter (an empty file has one empty chunk); each chunk is stored as ciphertext || 16-byte GCM tag. Chunk *i*
is encrypted under the data key with nonce = *i* (96-bit big-endian: a data key encrypts exactly one file,
so nonces never repeat) and associated data ``HEADER || i (u64 BE) || final flag (1 byte)``. Offsets follow
from the plaintext size alone, so a range read fetches just the chunks it needs.

Threat model. Someone who gets the stored objects (a stolen disk or backup, an S3 bucket readable by the
wrong people, a storage administrator) learns nothing but the sizes, and cannot alter, reorder, truncate
or extend a recording unnoticed: every chunk is authenticated with its index, whether it is the last one and
the total size, and nothing that failed authentication is ever returned. The header is bound into every
chunk; a read that starts in the first chunk, and ``decrypt_file``, also check the stored header itself.
Out of scope: anyone who holds the master key (the application's host, whoever can read its data dir or
environment), and the database, whose rows hold the plaintext sizes, hashes and wrapped keys.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import re
import secrets
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

if TYPE_CHECKING:
    from app.config import Settings

MAGIC = b"HLREC"
VERSION = 1
CHUNK = 64 * 1024
TAG = 16
KEY_SIZE = 32
NONCE_SIZE = 12
_HEADER = struct.Struct(">5sBIQ")
HEADER_SIZE = _HEADER.size  # 18
_CHUNK_AAD = struct.Struct(">QB")
_SEALED_CHUNK = CHUNK + TAG

_WRAP_VERSION = b"\x01"
_WRAP_SIZE = 1 + NONCE_SIZE + KEY_SIZE + TAG
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_KEY_FILE_NOTE = (
    "# 12351 Hotline master keys (录音加密主密钥): one a line, '<key_id> <base64 of 32 bytes>'; the last is current.\n"
    "# Keep a copy somewhere safe: without it, the encrypted recordings cannot be read.\n"
)


class CryptoError(Exception):
    """A recording or wrapped key that does not authenticate, or a master key that cannot be used."""


# --- the chunked file format -------------------------------------------------------------------------


def chunk_count(plain_size: int) -> int:
    """Chunks in a file of ``plain_size`` bytes (at least one: an empty file has one empty chunk)."""
    return max(1, -(-plain_size // CHUNK))


def sealed_size(plain_size: int) -> int:
    """Bytes on storage of a sealed file of ``plain_size`` plaintext bytes."""
    if plain_size < 0:
        raise ValueError(f"negative size: {plain_size}")
    return HEADER_SIZE + plain_size + TAG * chunk_count(plain_size)


def _header(plain_size: int) -> bytes:
    return _HEADER.pack(MAGIC, VERSION, CHUNK, plain_size)


def _chunk_offset(index: int) -> int:
    """Where chunk ``index`` starts in the sealed file."""
    return HEADER_SIZE + index * _SEALED_CHUNK


def _chunk_plain_len(index: int, plain_size: int) -> int:
    return min(CHUNK, plain_size - index * CHUNK)


def _nonce(index: int) -> bytes:
    return index.to_bytes(NONCE_SIZE, "big")


def _chunk_aad(header: bytes, index: int, *, final: bool) -> bytes:
    return header + _CHUNK_AAD.pack(index, final)


def _aead(data_key: bytes) -> AESGCM:
    if len(data_key) != KEY_SIZE:
        raise ValueError(f"a data key is {KEY_SIZE} bytes, not {len(data_key)}")
    return AESGCM(data_key)


def _read_exactly(src: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes: fewer only at the end of ``src`` (raw streams may return short reads)."""
    parts, left = [], n
    while left:
        part = src.read(left)
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def seal(src: BinaryIO, dst: BinaryIO, data_key: bytes, plain_size: int) -> int:
    """Encrypt ``src`` (exactly ``plain_size`` bytes, else ValueError) into ``dst``; returns the bytes written.

    On ValueError part of the file may have been written: the caller discards ``dst``.
    """
    aead, header = _aead(data_key), _header(plain_size)
    dst.write(header)
    written, count = HEADER_SIZE, chunk_count(plain_size)
    for index in range(count):
        want = _chunk_plain_len(index, plain_size)
        plain = _read_exactly(src, want)
        if len(plain) != want:
            raise ValueError(f"the source is shorter than the {plain_size} bytes announced")
        sealed = aead.encrypt(_nonce(index), plain, _chunk_aad(header, index, final=index == count - 1))
        dst.write(sealed)
        written += len(sealed)
    if src.read(1):
        raise ValueError(f"the source is longer than the {plain_size} bytes announced")
    return written


class _Pieces:
    """Exact-length reads from a stream of byte pieces of any size."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self._pieces = iter(pieces)
        self._buf = bytearray()

    def take(self, n: int) -> bytes | None:
        """The next ``n`` bytes, or None when the stream ends first."""
        while len(self._buf) < n:
            piece = next(self._pieces, None)
            if piece is None:
                return None
            self._buf += piece
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def exhausted(self) -> bool:
        return not self._buf and not any(self._pieces)


def _check_header(stored: bytes | None, plain_size: int) -> None:
    if stored is None:
        raise CryptoError("录音密文不完整：文件头缺失（对象被截断）")
    magic, version, chunk, size = _HEADER.unpack(stored)
    if magic != MAGIC:
        raise CryptoError("不是加密录音：文件头标识不符（文件被篡改或并非本系统加密）")
    if version != VERSION:
        raise CryptoError(f"加密录音格式版本 {version} 不受支持（本程序支持版本 {VERSION}）")
    if chunk != CHUNK or size != plain_size:
        raise CryptoError("录音密文文件头校验失败：分块大小或明文长度与记录不符，文件被篡改或损坏")


def _open_chunks(
    pieces: _Pieces, aead: AESGCM, *, plain_size: int, first: int, last: int
) -> Iterator[tuple[int, bytes]]:
    """Authenticate and decrypt chunks ``first..last`` read in order from ``pieces``: (index, plaintext)."""
    header, count = _header(plain_size), chunk_count(plain_size)
    for index in range(first, last + 1):
        sealed = pieces.take(_chunk_plain_len(index, plain_size) + TAG)
        if sealed is None:
            raise CryptoError(f"录音密文不完整（第 {index + 1} 块，共 {count} 块）：文件被截断")
        aad = _chunk_aad(header, index, final=index == count - 1)
        try:
            plain = aead.decrypt(_nonce(index), sealed, aad)
        except InvalidTag:
            raise CryptoError(
                f"录音密文校验失败（第 {index + 1} 块，共 {count} 块）：文件被篡改或损坏，或密钥不符"
            ) from None
        yield index, plain


def decrypt_range(
    fetch: Callable[[int, int], Iterable[bytes]],
    *,
    data_key: bytes,
    plain_size: int,
    start: int = 0,
    end: int | None = None,
) -> Iterator[bytes]:
    """Plaintext bytes ``[start, end)`` of a sealed object, one authenticated chunk at a time.

    ``fetch(cstart, cend)`` yields the stored bytes ``[cstart, cend)`` in pieces of any size; it is called
    once, for the chunks the range needs (from offset 0, header included, when the range starts in the
    first chunk). Arguments are checked here (ValueError); CryptoError comes while iterating.
    """
    end = plain_size if end is None else end
    if not 0 <= start <= end <= plain_size:
        raise ValueError(f"range [{start}, {end}) is not within the {plain_size} bytes of the recording")
    aead = _aead(data_key)
    if start == end:
        return iter(())
    return _decrypt_span(fetch, aead, plain_size=plain_size, start=start, end=end)


def _decrypt_span(
    fetch: Callable[[int, int], Iterable[bytes]], aead: AESGCM, *, plain_size: int, start: int, end: int
) -> Iterator[bytes]:
    first, last = start // CHUNK, (end - 1) // CHUNK
    cstart = 0 if first == 0 else _chunk_offset(first)
    cend = min(_chunk_offset(last + 1), sealed_size(plain_size))
    pieces = _Pieces(fetch(cstart, cend))
    if first == 0:
        _check_header(pieces.take(HEADER_SIZE), plain_size)
    for index, plain in _open_chunks(pieces, aead, plain_size=plain_size, first=first, last=last):
        base = index * CHUNK
        yield plain[max(start - base, 0) : end - base]
    if not pieces.exhausted():
        raise CryptoError("录音存储返回的密文多于所请求的范围：存储后端异常")


def decrypt_file(src: BinaryIO, dst: BinaryIO, *, data_key: bytes, plain_size: int) -> str:
    """Decrypt a whole sealed file into ``dst``; returns the sha256 (hex) of the plaintext.

    Every chunk is authenticated before it is written, and the file must end exactly after the final
    chunk. On CryptoError ``dst`` holds a partial (authentic) prefix: the caller discards it.
    """
    aead, digest = _aead(data_key), hashlib.sha256()
    pieces = _Pieces(iter(lambda: src.read(_SEALED_CHUNK), b""))
    _check_header(pieces.take(HEADER_SIZE), plain_size)
    last = chunk_count(plain_size) - 1
    for _, plain in _open_chunks(pieces, aead, plain_size=plain_size, first=0, last=last):
        digest.update(plain)
        dst.write(plain)
    if not pieces.exhausted():
        raise CryptoError("录音密文校验失败：最后一块之后还有多余数据，文件被篡改或损坏")
    return digest.hexdigest()


# --- master keys ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrappedKey:
    """A data key wrapped (AES-256-GCM) by master key ``key_id``."""

    key_id: str
    blob: bytes


def key_id_for(master_key: bytes) -> str:
    """The id of a master key: the first 8 hex digits of its sha256 (reveals nothing about the key)."""
    return hashlib.sha256(master_key).hexdigest()[:8]


def _wrap_aad(key_id: str, context: bytes) -> bytes:
    kid = key_id.encode()
    return b"HLKEY" + bytes([len(kid)]) + kid + context


def _decode_key(text: str) -> bytes | None:
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return key if len(key) == KEY_SIZE else None


def _new_key_line() -> tuple[str, str]:
    key = secrets.token_bytes(KEY_SIZE)
    key_id = key_id_for(key)
    return key_id, f"{key_id} {base64.b64encode(key).decode()}\n"


def _parse_key_file(path: Path) -> dict[str, bytes]:
    """Keys in file order (the last is current); CryptoError naming the file and line, never the key."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CryptoError(f"主密钥文件 {path} 不存在") from None
    except (OSError, UnicodeDecodeError) as e:
        raise CryptoError(f"主密钥文件 {path} 无法读取：{type(e).__name__}") from None
    keys: dict[str, bytes] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        key = _decode_key(parts[1]) if len(parts) == 2 else None
        if len(parts) != 2 or not _KEY_ID.fullmatch(parts[0]):
            raise CryptoError(f"主密钥文件 {path} 第 {number} 行格式错误：应为“<密钥编号> <32 字节密钥的 base64>”")
        if key is None:
            raise CryptoError(f"主密钥文件 {path} 第 {number} 行的密钥不是 32 字节密钥的 base64 编码")
        if parts[0] in keys:
            raise CryptoError(f"主密钥文件 {path} 第 {number} 行：密钥编号 {parts[0]} 重复")
        keys[parts[0]] = key
    if not keys:
        raise CryptoError(f"主密钥文件 {path} 中没有密钥")
    return keys


def _write_private(path: Path, text: str) -> Path:
    """A new file beside ``path`` holding ``text``, created with mode 0600 (never readable by others)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    return tmp


def _generate_key_file(path: Path) -> None:
    """Create ``path`` with one new key unless it exists; two processes racing end up with the same file."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _write_private(path, _KEY_FILE_NOTE + _new_key_line()[1])
    try:
        with contextlib.suppress(FileExistsError):  # another process won the race: use its key
            os.link(tmp, path)
    finally:
        tmp.unlink()


_Stamp = tuple[int, int, int]


def _stamp_of(path: Path) -> _Stamp | None:
    """What changes when the key file is appended to or replaced."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class Keyring:
    """The master keys: the current one wraps new data keys; all of them unwrap."""

    def __init__(self, keys: dict[str, bytes], *, path: Path | None = None, stamp: _Stamp | None = None) -> None:
        """``keys`` oldest first (the last is current); ``path``: the key file they were read from, when
        ``stamp`` (its ``_stamp_of`` before reading) was taken."""
        if not keys:
            raise CryptoError("没有可用的主密钥")
        self._keys = dict(keys)  # replaced whole, never changed in place: threads see one keyring or the next
        self._path, self._stamp = path, stamp

    def __repr__(self) -> str:  # never the keys
        return f"Keyring(current_id={self.current_id!r}, ids={list(self._keys)!r}, path={self._path!r})"

    @classmethod
    def load(cls, settings: Settings) -> Keyring:
        """HOTLINE_MASTER_KEY, else HOTLINE_MASTER_KEY_FILE, else ``<data dir>/master.key`` (made if absent)."""
        if settings.master_key:
            key = _decode_key(settings.master_key.strip())
            if key is None:
                raise CryptoError("HOTLINE_MASTER_KEY 无效：应为 32 字节密钥的 base64 编码（openssl rand -base64 32）")
            return cls({key_id_for(key): key})
        if settings.master_key_file:
            return cls.from_file(settings.master_key_file)
        path = settings.data_dir / "master.key"
        _generate_key_file(path)
        return cls.from_file(path)

    @classmethod
    def from_file(cls, path: Path) -> Keyring:
        stamp = _stamp_of(path)
        return cls(_parse_key_file(path), path=path, stamp=stamp)

    @property
    def current_id(self) -> str:
        """The key that wraps new data keys: the last one."""
        return next(reversed(self._keys))

    @property
    def key_ids(self) -> list[str]:
        """All key ids, oldest first (the last is current)."""
        return list(self._keys)

    def new_data_key(self, context: bytes) -> tuple[bytes, WrappedKey]:
        """A random data key and its wrap under the current master key, bound to ``context``."""
        self._refresh()
        data_key = secrets.token_bytes(KEY_SIZE)
        return data_key, self._wrap(data_key, context)

    def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        """The data key; CryptoError for an unknown master key or a wrap that does not authenticate."""
        if wrapped.key_id not in self._keys:
            self._refresh()
        master = self._keys.get(wrapped.key_id)  # one lookup: another thread may reload meanwhile
        if master is None:
            raise CryptoError(f"录音密钥所用的主密钥 {wrapped.key_id} 不在密钥环中（已删除，或配置了别的主密钥）")
        blob = wrapped.blob
        if len(blob) != _WRAP_SIZE or blob[:1] != _WRAP_VERSION:
            raise CryptoError(f"录音密钥格式无效（主密钥 {wrapped.key_id}）：数据被篡改或损坏")
        try:
            return AESGCM(master).decrypt(blob[1:13], blob[13:], _wrap_aad(wrapped.key_id, context))
        except InvalidTag:
            raise CryptoError(
                f"录音密钥校验失败（主密钥 {wrapped.key_id}）：密钥被篡改、不属于这份录音，或主密钥不符"
            ) from None

    def rewrap(self, wrapped: WrappedKey, context: bytes) -> WrappedKey:
        """The same data key wrapped by the current master key (``wrapped`` itself if it already is)."""
        data_key = self.unwrap(wrapped, context)
        return wrapped if wrapped.key_id == self.current_id else self._wrap(data_key, context)

    def rotate(self) -> str:
        """Append a new master key to the key file and make it current; returns its id."""
        path = self._require_file("轮换主密钥")
        self._reload()
        key_id, line = _new_key_line()
        if not path.read_text(encoding="utf-8").endswith("\n"):
            line = "\n" + line  # edited by hand, the file ends mid-line
        with path.open("a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        self._reload()
        return key_id

    def retire(self, in_use: set[str]) -> list[str]:
        """Remove from the key file the keys not in ``in_use`` (never the current one); returns their ids."""
        if self._path is None:
            return []  # HOTLINE_MASTER_KEY: a single key, the current one
        path = self._reload()
        drop = [k for k in self._keys if k not in in_use and k != self.current_id]
        if not drop:
            return []
        kept = [line for line in path.read_text(encoding="utf-8").splitlines(keepends=True)
                if (line.split() or ["#"])[0] not in drop]
        os.replace(_write_private(path, "".join(kept)), path)
        self._reload()
        return drop

    def _wrap(self, data_key: bytes, context: bytes) -> WrappedKey:
        keys = self._keys
        key_id, nonce = next(reversed(keys)), secrets.token_bytes(NONCE_SIZE)
        sealed = AESGCM(keys[key_id]).encrypt(nonce, data_key, _wrap_aad(key_id, context))
        return WrappedKey(key_id, _WRAP_VERSION + nonce + sealed)

    def _require_file(self, action: str) -> Path:
        if self._path is None:
            raise CryptoError(
                f"无法{action}：主密钥来自 HOTLINE_MASTER_KEY。请改用密钥文件：写入一行“{self.current_id} "
                "<HOTLINE_MASTER_KEY 的值>”（编号须保持不变），"
                "设置 HOTLINE_MASTER_KEY_FILE 指向它并去掉 HOTLINE_MASTER_KEY"
            )
        return self._path

    def _refresh(self) -> None:
        """Pick up a key file another process rotated or retired since this keyring read it."""
        if self._path is not None and _stamp_of(self._path) != self._stamp:
            self._reload()

    def _reload(self) -> Path:
        path = self._require_file("重新读取主密钥")
        stamp = _stamp_of(path)
        self._keys, self._stamp = _parse_key_file(path), stamp
        return path
