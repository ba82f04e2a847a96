"""Sealed leg files: a party's audio encrypted (AES-256-GCM) while the call is being recorded, crash-safe.

When a call has a data key (32 random bytes the app makes when the call starts and keeps in ``call.json``
only wrapped by its master key), each leg is written to ``LEG.sealed`` instead of ``LEG.wav``; nothing of the
audio reaches the disk in clear. The PCM written since the previous ``flush`` is held in memory (at most
about a second: the recorders flush at least once a second, as they do for a WAV) and appended as one
authenticated record, so a ``kill -9`` leaves every complete record readable and loses at most the last
second, as before.

File format (version 1)::

    header  = b"HLLEG" || version (1) || sample rate (u32 BE) || salt (16 random bytes)      26 bytes
    record  = length (u32 BE) || ciphertext || GCM tag (16)        length = len(ciphertext) + 16

Record *i* (from 0) holds 16-bit little-endian mono PCM, at most ``MAX_RECORD`` bytes. It is encrypted under
the leg key ``HKDF-SHA256(data key, salt, info=b"hotline leg v1")`` with nonce = *i* (96-bit big-endian)
and associated data ``header || len(call id) || call id || len(leg) || leg || i (u64 BE)``. The salt is
fresh for every file (and a file is never reopened), so a nonce is never used twice under one key even
though the call's legs share its data key; the associated data ties each record to its call, its leg
(caller/agent/room: swapping two legs' files does not go unnoticed), its place in the file and the header.

Reading back (``read``) stops quietly at an incomplete trailing record (a crash mid-append: the length or
the record runs past the end of the file) and raises ``SealedError`` for anything else that is wrong: a
record that fails authentication (tampered, reordered, another call's or leg's, or the wrong key), a bad
header, an impossible length. Plain bytes are only ever returned once authenticated. Truncation at a
record boundary cannot be told from a crash there; the lengths of the records are visible to anyone.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"HLLEG"
VERSION = 1
KEY_SIZE = 32
SALT_SIZE = 16
TAG = 16
NONCE_SIZE = 12
MAX_RECORD = 1 << 20  # plaintext bytes per record (a long pad of silence is split)
_HEADER = struct.Struct(">5sBI16s")
HEADER_SIZE = _HEADER.size  # 26
_LENGTH = struct.Struct(">I")
_INDEX = struct.Struct(">Q")
_INFO = b"hotline leg v1"


class SealedError(Exception):
    """A sealed leg that cannot be read back: bad header, a record that fails authentication, or no key."""


def _leg_key(data_key: bytes, salt: bytes) -> AESGCM:
    if len(data_key) != KEY_SIZE:
        raise ValueError(f"a call's data key is {KEY_SIZE} bytes, not {len(data_key)}")
    derived = HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt, info=_INFO).derive(data_key)
    return AESGCM(derived)


def _aad_prefix(header: bytes, call_id: str, leg: str) -> bytes:
    cid, name = call_id.encode(), leg.encode()
    if len(cid) > 255 or len(name) > 255:
        raise ValueError("call id and leg name are at most 255 bytes")
    return header + bytes([len(cid)]) + cid + bytes([len(name)]) + name


def _nonce(index: int) -> bytes:
    return index.to_bytes(NONCE_SIZE, "big")


class SealedWriter:
    """A leg written as sealed records; the same interface as ``recorder.WavWriter``.

    In clear only in this process's memory: the PCM written since the last ``flush`` (about a second)."""

    def __init__(self, path: Path, *, data_key: bytes, call_id: str, leg: str, sample_rate: int = 8000) -> None:
        """Create ``path`` (FileExistsError if it exists: a leg file is never reopened) and write its header."""
        self.path = path
        self.sample_rate = sample_rate
        self.channels = 1
        self.data_bytes = 0
        salt = os.urandom(SALT_SIZE)
        header = _HEADER.pack(MAGIC, VERSION, sample_rate, salt)
        self._aead = _leg_key(data_key, salt)
        self._aad = _aad_prefix(header, call_id, leg)
        self._index = 0
        self._pending = bytearray()
        self._f: BinaryIO = path.open("xb")
        self._f.write(header)
        self._f.flush()

    def write(self, pcm: bytes) -> None:
        if pcm:
            self._pending += pcm
            self.data_bytes += len(pcm)

    def pad_to(self, samples: int) -> None:
        """Silence up to ``samples`` (an agent leg that said nothing after its greeting)."""
        missing = samples * 2 - self.data_bytes
        if missing > 0:
            self.write(bytes(missing))

    @property
    def samples(self) -> int:
        return self.data_bytes // 2

    def flush(self) -> None:
        """Append what was written since the last flush as sealed records (nothing if nothing was)."""
        if not self._pending:
            return
        data, out = bytes(self._pending), bytearray()
        self._pending.clear()
        for start in range(0, len(data), MAX_RECORD):
            piece = data[start:start + MAX_RECORD]
            sealed = self._aead.encrypt(_nonce(self._index), piece, self._aad + _INDEX.pack(self._index))
            out += _LENGTH.pack(len(sealed)) + sealed
            self._index += 1
        self._f.write(out)  # one write per flush: a crash leaves whole records and at most one partial one
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self.flush()
            self._f.close()


@dataclass(frozen=True, slots=True)
class Leg:
    """A sealed leg read back: its authenticated PCM (16-bit little-endian mono) and what the file said."""

    pcm: bytes
    sample_rate: int  # 0: the file ended inside its header (the recorder died as it created it)
    records: int
    incomplete_tail: int  # bytes after the last complete record (a crash mid-append), ignored


def read(path: Path, *, data_key: bytes, call_id: str, leg: str) -> Leg:
    """The leg's audio up to its last complete record; SealedError for anything that does not authenticate."""
    raw = path.read_bytes()
    if len(raw) < HEADER_SIZE:
        return Leg(b"", 0, 0, len(raw))
    header = raw[:HEADER_SIZE]
    magic, version, rate, salt = _HEADER.unpack(header)
    if magic != MAGIC:
        raise SealedError(f"{path.name}：不是加密录音分轨文件（文件头标识不符）")
    if version != VERSION:
        raise SealedError(f"{path.name}：加密录音分轨格式版本 {version} 不受支持（本程序支持版本 {VERSION}）")
    aead, aad = _leg_key(data_key, salt), _aad_prefix(header, call_id, leg)
    parts: list[bytes] = []
    pos, index = HEADER_SIZE, 0
    while pos + _LENGTH.size <= len(raw):
        (length,) = _LENGTH.unpack_from(raw, pos)
        if not TAG <= length <= MAX_RECORD + TAG:
            raise SealedError(f"{path.name}：第 {index + 1} 条记录长度 {length} 无效，文件被篡改或损坏")
        end = pos + _LENGTH.size + length
        if end > len(raw):
            break  # the last record was being appended when the recorder died
        try:
            parts.append(aead.decrypt(_nonce(index), raw[pos + _LENGTH.size:end], aad + _INDEX.pack(index)))
        except InvalidTag:
            raise SealedError(
                f"{path.name}：第 {index + 1} 条记录校验失败：文件被篡改或损坏，不属于本通话的这一方，或密钥不符"
            ) from None
        pos, index = end, index + 1
    return Leg(b"".join(parts), rate, index, len(raw) - pos)
