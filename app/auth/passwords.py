"""Passwords: argon2id hashes (argon2-cffi), the scrypt hashes of earlier versions still verified (and replaced
at the next successful login), the same work for an unknown account (a dummy hash), and the password policy.

Hash parameters: argon2id with 19 MiB, 2 passes, 1 lane — OWASP's first recommended setting (RFC 9106's
"second choice" needs 64 MiB and 4 lanes: about 8× slower here, and 64 MiB per login in flight). A hash made with
other parameters verifies and is re-made with these at the next successful login, like a scrypt one.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 10
MAX_LENGTH = 256
MIN_DISTINCT = 5  # "aaaaaaaaaa", "ababababab", "1111122222": too few different characters
COMMON_PASSWORDS = Path(__file__).with_name("common-passwords.txt")

_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16, type=Type.ID)


class WeakPassword(ValueError):
    """The password breaks the policy; the message says why, for people (Chinese)."""


@dataclass(frozen=True)
class Checked:
    ok: bool
    rehash: bool = False  # right, but stored as scrypt or with older argon2 parameters: store a new hash


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify(password: str, stored: str | None) -> Checked:
    """Does ``password`` match ``stored``? With no stored hash (no such account) a dummy argon2id hash is
    checked all the same, so the answer takes as long as for a real account with a wrong password."""
    if stored is None or not stored.startswith(("$argon2", "scrypt$")):
        _verify_argon2(password, _dummy_hash())
        return Checked(False)
    if stored.startswith("scrypt$"):
        return Checked(ok := _verify_scrypt(password, stored), rehash=ok)
    ok = _verify_argon2(password, stored)
    return Checked(ok, rehash=ok and _needs_rehash(stored))


def _verify_argon2(password: str, stored: str) -> bool:
    try:
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):  # a mismatch is a VerificationError too
        return False


def _needs_rehash(stored: str) -> bool:
    try:
        return _HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return True


def _verify_scrypt(password: str, stored: str) -> bool:
    """Hashes of earlier versions: ``scrypt$N$r$p$salt$digest`` (hex)."""
    try:
        _, n, r, p, salt, digest = stored.split("$")
        candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                                   maxmem=256 * 1024 * 1024)
    except ValueError:
        return False
    return hmac.compare_digest(candidate.hex(), digest)


def scrypt_hash(password: str, *, n: int = 2**14, r: int = 8, p: int = 1) -> str:
    """A hash as earlier versions stored it (tests of the upgrade to argon2id)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p)
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


@functools.cache
def _dummy_hash() -> str:
    return _HASHER.hash(secrets.token_urlsafe(16))


# --- policy ------------------------------------------------------------------------------------------------

_EDGES = re.compile(r"^[\W\d_]+|[\W\d_]+$")  # digits, symbols and spaces before and after the letters
_NOT_ALNUM = re.compile(r"[\W_]+")


@functools.cache
def common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS.read_text(encoding="utf-8").splitlines()
    start = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))
    return frozenset(line.strip() for line in lines[start:] if line.strip())


def check_policy(password: str, *, username: str) -> None:
    """Raise WeakPassword (its message in Chinese) unless the password is at least MIN_LENGTH characters, has
    MIN_DISTINCT different ones, is not (and does not contain, forwards or backwards) the user name, and is not a
    common password — nor a common one with digits or symbols added before or after it (``password2024!``)."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"密码至少 {MIN_LENGTH} 位")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"密码不能超过 {MAX_LENGTH} 位")
    if not password.strip():
        raise WeakPassword("密码不能全是空格")
    plain = unicodedata.normalize("NFKC", password).casefold()
    if len(set(plain)) < MIN_DISTINCT:
        raise WeakPassword(f"密码过于简单：至少要有 {MIN_DISTINCT} 个不同的字符")
    if _contains_name(plain, unicodedata.normalize("NFKC", username).strip().casefold()):
        raise WeakPassword("密码不能与用户名相同，也不能包含用户名（含倒写）")
    common = common_passwords()
    core = _EDGES.sub("", plain)
    if plain in common or plain.strip() in common or (len(core) >= 4 and core in common) \
            or _NOT_ALNUM.sub("", plain) in common:
        raise WeakPassword("该密码过于常见，容易被猜中（常用密码加上数字或符号也不行），请换一个")


def _contains_name(password: str, name: str) -> bool:
    if not name:
        return False
    bare_password, bare_name = _NOT_ALNUM.sub("", password), _NOT_ALNUM.sub("", name)
    if password == name or (bare_name and bare_password == bare_name):
        return True
    if len(name) < 3:  # a two-letter name inside a password says nothing
        return False
    return any(n in p for p in (password, bare_password) for n in (name, name[::-1], bare_name, bare_name[::-1])
               if len(n) >= 3)
