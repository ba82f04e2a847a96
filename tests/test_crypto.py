"""Recordings encrypted at rest (app/recordings/crypto.py), with the real AES-GCM: the chunked format round
trip, range reads that fetch only what they need, tampering/truncation/extension detected, wrapped keys bound
to their recording, master keys from the environment, a key file or the data dir, rotation and retirement."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import Settings
from app.recordings.crypto import (
    CHUNK,
    HEADER_SIZE,
    CryptoError,
    Keyring,
    WrappedKey,
    decrypt_file,
    decrypt_range,
    key_id_for,
    seal,
    sealed_size,
)

ROOT = Path(__file__).resolve().parent.parent
TAG = 16
SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17]
CONTEXT = hashlib.sha256(b"recording one").digest()
OTHER = hashlib.sha256(b"recording two").digest()


def sealed(plain: bytes, key: bytes) -> bytes:
    out = io.BytesIO()
    assert seal(io.BytesIO(plain), out, key, len(plain)) == len(out.getvalue()) == sealed_size(len(plain))
    return out.getvalue()


class Store:
    """A stored object read the way a backend streams it: in pieces of varying size, each fetch recorded."""

    def __init__(self, blob: bytes, seed: int = 0) -> None:
        self.blob, self.calls, self._rnd = blob, list[tuple[int, int]](), random.Random(seed)

    def fetch(self, cstart: int, cend: int) -> Iterator[bytes]:
        self.calls.append((cstart, cend))
        data, pos = self.blob[cstart:cend], 0
        while pos < len(data):
            n = self._rnd.choice([0, 1, 7, 4096, CHUNK + TAG, 3 * CHUNK])
            yield data[pos : pos + n]
            pos += n


def read_range(blob: bytes, key: bytes, size: int, start: int = 0, end: int | None = None) -> bytes:
    return b"".join(decrypt_range(Store(blob).fetch, data_key=key, plain_size=size, start=start, end=end))


def settings_for(tmp_path: Path, **kw: object) -> Settings:
    base: dict[str, object] = {"data_dir": tmp_path / "var", "master_key": None, "master_key_file": None}
    return Settings(**(base | kw))  # type: ignore[arg-type]


@pytest.fixture
def key() -> bytes:
    return os.urandom(32)


# --- the chunked format ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_round_trip(size: int, key: bytes) -> None:
    plain = os.urandom(size)
    blob = sealed(plain, key)
    assert blob[:6] == b"HLREC\x01"
    if size >= 16:
        assert plain[:16] not in blob
    out = io.BytesIO()
    assert decrypt_file(io.BytesIO(blob), out, data_key=key, plain_size=size) == hashlib.sha256(plain).hexdigest()
    assert out.getvalue() == plain
    assert read_range(blob, key, size) == plain


def test_sealed_size() -> None:
    assert sealed_size(0) == HEADER_SIZE + TAG  # one empty final chunk
    assert sealed_size(CHUNK) == HEADER_SIZE + CHUNK + TAG
    assert sealed_size(CHUNK + 1) == HEADER_SIZE + CHUNK + 1 + 2 * TAG


def test_seal_refuses_a_source_of_another_length(key: bytes) -> None:
    with pytest.raises(ValueError, match="shorter"):
        seal(io.BytesIO(b"x" * 10), io.BytesIO(), key, 11)
    with pytest.raises(ValueError, match="longer"):
        seal(io.BytesIO(b"x" * (CHUNK + 1)), io.BytesIO(), key, CHUNK)


def test_same_plaintext_differs_under_another_data_key(key: bytes) -> None:
    plain = b"\x00" * 1000
    assert sealed(plain, key)[HEADER_SIZE:] != sealed(plain, os.urandom(32))[HEADER_SIZE:]


def expected_span(size: int, start: int, end: int) -> tuple[int, int]:
    first, last = start // CHUNK, (end - 1) // CHUNK
    cstart = 0 if first == 0 else HEADER_SIZE + first * (CHUNK + TAG)
    return cstart, min(HEADER_SIZE + (last + 1) * (CHUNK + TAG), sealed_size(size))


def ranges(size: int, rnd: random.Random) -> Iterator[tuple[int, int]]:
    yield from [(0, size), (size - 1, size), (0, 1), (size // 2, size // 2)]
    for b in range(CHUNK, size, CHUNK):  # across each chunk boundary, and either side of it
        yield from [(b - 1, b + 1), (b - 1, b), (b, b + 1), (b - 5, min(b + CHUNK + 5, size))]
    for _ in range(40):
        start = rnd.randrange(size)
        yield start, rnd.randint(start, size)


@pytest.mark.parametrize("size", [1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17, 7 * CHUNK])
def test_ranges_fetch_only_the_chunks_they_need(size: int, key: bytes) -> None:
    plain = os.urandom(size)
    blob = sealed(plain, key)
    for start, end in ranges(size, random.Random(size)):
        store = Store(blob, seed=start)
        got = b"".join(decrypt_range(store.fetch, data_key=key, plain_size=size, start=start, end=end))
        assert got == plain[start:end], (start, end)
        assert store.calls == ([] if start == end else [expected_span(size, start, end)]), (start, end)


def test_range_arguments_are_checked_before_any_fetch(key: bytes) -> None:
    blob = sealed(b"abc", key)
    for start, end in [(-1, 2), (2, 1), (0, 4)]:
        with pytest.raises(ValueError):
            decrypt_range(Store(blob).fetch, data_key=key, plain_size=3, start=start, end=end)
    with pytest.raises(ValueError, match="32 bytes"):
        decrypt_range(Store(blob).fetch, data_key=key[:16], plain_size=3)


def test_range_reads_hold_one_chunk_at_a_time(key: bytes) -> None:
    """The fetch is consumed lazily: each chunk's plaintext comes out before the next chunk is read."""
    size = 5 * CHUNK + 3
    blob, fetched = sealed(os.urandom(size), key), [0]

    def fetch(cstart: int, cend: int) -> Iterator[bytes]:
        for pos in range(cstart, cend, 4096):
            fetched[0] += len(piece := blob[pos : min(pos + 4096, cend)])
            yield piece

    reader = decrypt_range(fetch, data_key=key, plain_size=size, start=10, end=size - 10)
    for k, piece in enumerate(reader):
        assert len(piece) <= CHUNK
        assert fetched[0] <= HEADER_SIZE + (k + 1) * (CHUNK + TAG) + 4096
    assert k == 4 and fetched[0] == sealed_size(size) - (3 + TAG)  # the last, 3-byte chunk is not needed


@pytest.mark.parametrize("size", [0, 1, CHUNK, 3 * CHUNK + 17])
def test_a_flipped_bit_anywhere_is_detected(size: int, key: bytes) -> None:
    blob = sealed(os.urandom(size), key)
    rnd = random.Random(size)
    offsets = [*range(HEADER_SIZE)]  # every header byte
    offsets += [HEADER_SIZE + c * (CHUNK + TAG) + rnd.randrange(min(CHUNK + TAG, len(blob) - HEADER_SIZE
                                                                    - c * (CHUNK + TAG)))
                for c in range(-(-size // CHUNK) or 1)]  # a byte in each chunk (ciphertext or tag)
    offsets.append(len(blob) - 1)  # the last tag's last byte
    for offset in offsets:
        bad = bytearray(blob)
        bad[offset] ^= 1 << rnd.randrange(8)
        with pytest.raises(CryptoError):
            decrypt_file(io.BytesIO(bytes(bad)), io.BytesIO(), data_key=key, plain_size=size)
        if size:
            with pytest.raises(CryptoError):
                read_range(bytes(bad), key, size, offset_to_plain(offset, size), size)


def offset_to_plain(offset: int, size: int) -> int:
    """A plaintext offset whose chunk holds stored byte ``offset`` (0 for the header)."""
    return min(max(offset - HEADER_SIZE, 0) // (CHUNK + TAG) * CHUNK, size - 1)


def test_messages_are_specific(key: bytes) -> None:
    size = 3 * CHUNK
    blob = bytearray(sealed(os.urandom(size), key))
    blob[HEADER_SIZE + CHUNK + TAG + 5] ^= 0x80  # second chunk
    with pytest.raises(CryptoError, match="校验失败（第 2 块，共 3 块）"):
        decrypt_file(io.BytesIO(bytes(blob)), io.BytesIO(), data_key=key, plain_size=size)
    with pytest.raises(CryptoError, match="文件头标识不符"):
        read_range(b"RIFF" + bytes(blob[4:]), key, size)


def test_nothing_unauthenticated_is_returned(key: bytes) -> None:
    """A chunk that fails its tag yields nothing: the reader gets the chunks before it, then the error."""
    size = 3 * CHUNK
    plain = os.urandom(size)
    blob = bytearray(sealed(plain, key))
    blob[-1] ^= 1  # the last chunk's tag
    got: list[bytes] = []
    with pytest.raises(CryptoError, match="第 3 块"):
        got.extend(decrypt_range(Store(bytes(blob)).fetch, data_key=key, plain_size=size))
    assert b"".join(got) == plain[: 2 * CHUNK]


@pytest.mark.parametrize("size", [0, 1, CHUNK, 3 * CHUNK + 17])
def test_wrong_key_or_wrong_size_fails(size: int, key: bytes) -> None:
    blob = sealed(os.urandom(size), key)
    with pytest.raises(CryptoError):
        decrypt_file(io.BytesIO(blob), io.BytesIO(), data_key=os.urandom(32), plain_size=size)
    with pytest.raises(CryptoError):  # the size recorded in the database is bound into every chunk
        decrypt_file(io.BytesIO(blob), io.BytesIO(), data_key=key, plain_size=size + 1)
    if size > CHUNK:  # a range read that skips the header still checks the size through the chunk's AAD
        with pytest.raises(CryptoError):
            read_range(blob, key, size - 1, CHUNK, CHUNK + 1)


def test_reordered_chunks_fail(key: bytes) -> None:
    size = 3 * CHUNK
    blob = sealed(os.urandom(size), key)
    c0, c1 = (blob[HEADER_SIZE + i * (CHUNK + TAG) : HEADER_SIZE + (i + 1) * (CHUNK + TAG)] for i in (0, 1))
    swapped = blob[:HEADER_SIZE] + c1 + c0 + blob[HEADER_SIZE + 2 * (CHUNK + TAG) :]
    with pytest.raises(CryptoError, match="第 1 块"):
        decrypt_file(io.BytesIO(swapped), io.BytesIO(), data_key=key, plain_size=size)


@pytest.mark.parametrize("size", [0, 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17])
def test_truncation_is_detected(size: int, key: bytes) -> None:
    blob = sealed(os.urandom(size), key)
    last_chunk = (size - 1) % CHUNK + 1 + TAG if size else TAG
    cuts = {len(blob) - 1, len(blob) - last_chunk, HEADER_SIZE, HEADER_SIZE - 1, 0}
    for cut in cuts:
        with pytest.raises(CryptoError):
            decrypt_file(io.BytesIO(blob[:cut]), io.BytesIO(), data_key=key, plain_size=size)
        if size:
            with pytest.raises(CryptoError, match="不完整"):
                read_range(blob[:cut], key, size, size - 1, size)


def test_truncation_at_a_chunk_boundary_with_a_matching_size_fails(key: bytes) -> None:
    """Dropping the final chunks and claiming the shorter size (header forged to match): every chunk was sealed
    with the full size, and the new last one not as final."""
    plain = os.urandom(3 * CHUNK)
    blob = sealed(plain, key)
    cut = blob[: HEADER_SIZE + 2 * (CHUNK + TAG)]
    forged = sealed(plain[: 2 * CHUNK], key)[:HEADER_SIZE] + cut[HEADER_SIZE:]  # a header for 2 chunks
    with pytest.raises(CryptoError, match="第 1 块，共 2 块"):
        decrypt_file(io.BytesIO(forged), io.BytesIO(), data_key=key, plain_size=2 * CHUNK)
    with pytest.raises(CryptoError, match="第 2 块，共 2 块"):  # a range read that skips the header
        read_range(forged, key, 2 * CHUNK, 2 * CHUNK - 1)


@pytest.mark.parametrize("size", [0, 1, CHUNK, 3 * CHUNK + 17])
def test_appended_bytes_are_detected(size: int, key: bytes) -> None:
    blob = sealed(os.urandom(size), key)
    for extra in (b"\x00", os.urandom(TAG), os.urandom(CHUNK + TAG)):
        with pytest.raises(CryptoError, match="多余"):
            decrypt_file(io.BytesIO(blob + extra), io.BytesIO(), data_key=key, plain_size=size)


def test_a_backend_returning_more_than_asked_is_an_error(key: bytes) -> None:
    blob = sealed(os.urandom(100), key)

    def sloppy(cstart: int, cend: int) -> Iterator[bytes]:
        yield blob[cstart : cend + 1] + b"!"

    with pytest.raises(CryptoError, match="多于"):
        b"".join(decrypt_range(sloppy, data_key=key, plain_size=100))


def test_fifty_megabytes_round_trip(tmp_path: Path, key: bytes) -> None:
    size = 50 * 1000 * 1000 + 12345
    src, enc, dec = tmp_path / "plain", tmp_path / "sealed", tmp_path / "out"
    with src.open("wb") as f:
        for _ in range(size // (1 << 20)):
            f.write(os.urandom(1 << 20))
        f.write(os.urandom(size % (1 << 20)))
    with src.open("rb") as s, enc.open("wb") as d:
        assert seal(s, d, key, size) == sealed_size(size) == enc.stat().st_size
    with enc.open("rb") as s, dec.open("wb") as d:
        digest = decrypt_file(s, d, data_key=key, plain_size=size)
    assert digest == hashlib.sha256(src.read_bytes()).hexdigest() == hashlib.sha256(dec.read_bytes()).hexdigest()

    def from_file(cstart: int, cend: int) -> Iterator[bytes]:
        with enc.open("rb") as f:
            f.seek(cstart)
            left = cend - cstart
            while left and (piece := f.read(min(left, 1 << 16))):
                left -= len(piece)
                yield piece

    start = size - 3 * CHUNK - 7
    with src.open("rb") as plain_file:
        plain_file.seek(start)
        want = plain_file.read()
    assert b"".join(decrypt_range(from_file, data_key=key, plain_size=size, start=start)) == want


# --- wrapped data keys ------------------------------------------------------------------------------------


def env_keyring(tmp_path: Path) -> Keyring:
    return Keyring.load(settings_for(tmp_path, master_key=base64.b64encode(os.urandom(32)).decode()))


def test_wrap_round_trip_and_context_binding(tmp_path: Path) -> None:
    ring = env_keyring(tmp_path)
    data_key, wrapped = ring.new_data_key(CONTEXT)
    assert len(data_key) == 32 and wrapped.key_id == ring.current_id and data_key not in wrapped.blob
    assert ring.unwrap(wrapped, CONTEXT) == data_key
    with pytest.raises(CryptoError, match="不属于这份录音"):
        ring.unwrap(wrapped, OTHER)  # moved onto another recording
    flipped = bytearray(wrapped.blob)
    flipped[20] ^= 4
    with pytest.raises(CryptoError):
        ring.unwrap(WrappedKey(wrapped.key_id, bytes(flipped)), CONTEXT)
    with pytest.raises(CryptoError, match="格式无效"):
        ring.unwrap(WrappedKey(wrapped.key_id, wrapped.blob[:-1]), CONTEXT)
    with pytest.raises(CryptoError, match="不在密钥环中"):
        ring.unwrap(WrappedKey("feedbeef", wrapped.blob), CONTEXT)
    assert ring.new_data_key(CONTEXT)[0] != data_key


def test_a_wrap_under_another_master_key_fails(tmp_path: Path) -> None:
    one, two = env_keyring(tmp_path), env_keyring(tmp_path)
    _, wrapped = one.new_data_key(CONTEXT)
    with pytest.raises(CryptoError):
        two.unwrap(wrapped, CONTEXT)
    with pytest.raises(CryptoError):  # even under the first key's id, the second key does not open it
        Keyring({wrapped.key_id: os.urandom(32)}).unwrap(wrapped, CONTEXT)


def test_master_key_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    master = os.urandom(32)
    monkeypatch.setenv("HOTLINE_MASTER_KEY", base64.b64encode(master).decode())
    monkeypatch.setenv("HOTLINE_DATA_DIR", str(tmp_path / "var"))
    ring = Keyring.load(Settings())
    assert ring.current_id == key_id_for(master) == hashlib.sha256(master).hexdigest()[:8]
    assert not (tmp_path / "var" / "master.key").exists()
    assert base64.b64encode(master).decode() not in repr(ring) and master.hex() not in repr(ring)
    with pytest.raises(CryptoError, match=f"写入一行“{ring.current_id} .*HOTLINE_MASTER_KEY_FILE"):
        ring.rotate()
    assert ring.retire(set()) == []


@pytest.mark.parametrize("bad", ["not base64!", base64.b64encode(os.urandom(16)).decode()])
def test_a_malformed_environment_key_is_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(CryptoError, match="HOTLINE_MASTER_KEY") as e:
        Keyring.load(settings_for(tmp_path, master_key=bad))
    assert bad not in str(e.value)


def write_keys(path: Path, *keys: tuple[str, bytes], note: str = "# site keys\n") -> None:
    path.write_text(note + "".join(f"{k} {base64.b64encode(v).decode()}\n" for k, v in keys))


def test_master_keys_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    old, new = os.urandom(32), os.urandom(32)
    write_keys(path, ("2024-a", old), ("2025-b", new))
    ring = Keyring.load(settings_for(tmp_path, master_key_file=path))
    assert ring.current_id == "2025-b" and ring.key_ids == ["2024-a", "2025-b"]
    data_key, under_old = Keyring({"2024-a": old}).new_data_key(CONTEXT)
    assert ring.unwrap(under_old, CONTEXT) == data_key  # older keys still unwrap
    assert not (tmp_path / "var" / "master.key").exists()


def test_a_configured_key_file_that_is_missing_is_an_error(tmp_path: Path) -> None:
    """Never generated silently: each node of a site would otherwise encrypt under a key of its own."""
    with pytest.raises(CryptoError, match="不存在"):
        Keyring.load(settings_for(tmp_path, master_key_file=tmp_path / "nowhere.key"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "没有密钥"),
        ("# only a comment\n\n", "没有密钥"),
        ("k1\n", "第 1 行格式错误"),
        ("{key}\n", "第 1 行格式错误"),  # a key pasted without its id
        ("# x\nk1 {key} extra\n", "第 2 行格式错误"),
        ("bad/id {key}\n", "第 1 行格式错误"),
        ("k1 {short}\n", "第 1 行的密钥不是 32 字节"),
        ("k1 {key}=\n", "第 1 行的密钥不是 32 字节"),
        ("k1 {key}\nk1 {key}\n", "密钥编号 k1 重复"),
    ],
)
def test_a_malformed_key_file_names_the_file_not_the_key(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.key"
    key, short = base64.b64encode(os.urandom(32)).decode(), base64.b64encode(os.urandom(31)).decode()
    path.write_text(content.format(key=key, short=short))
    with pytest.raises(CryptoError, match=message) as e:
        Keyring.load(settings_for(tmp_path, master_key_file=path))
    assert str(path) in str(e.value) and key not in str(e.value) and short not in str(e.value)


def test_a_binary_key_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.key"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(CryptoError, match=str(path)):
        Keyring.load(settings_for(tmp_path, master_key_file=path))


def test_generated_into_the_data_dir_once(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    ring = Keyring.load(settings)
    path = settings.data_dir / "master.key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert Keyring.load(settings).current_id == ring.current_id  # kept, not regenerated
    _, wrapped = ring.new_data_key(CONTEXT)
    assert Keyring.load(settings).unwrap(wrapped, CONTEXT) == ring.unwrap(wrapped, CONTEXT)
    assert [p.name for p in settings.data_dir.iterdir()] == ["master.key"]  # no temporary files left


def test_concurrent_first_loads_agree_threads(tmp_path: Path) -> None:
    for attempt in range(20):
        settings = settings_for(tmp_path / str(attempt))
        barrier, ids = threading.Barrier(8), list[str]()

        def load(barrier: threading.Barrier = barrier, ids: list[str] = ids, s: Settings = settings) -> None:
            barrier.wait()
            ids.append(Keyring.load(s).current_id)

        threads = [threading.Thread(target=load) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(ids) == 8 and len(set(ids)) == 1
        assert Keyring.load(settings).key_ids == ids[:1]


def test_concurrent_first_loads_agree_processes(tmp_path: Path) -> None:
    """Two (here four) processes starting at once on an empty data dir end up with the same master key."""
    data_dir = tmp_path / "var"
    script = (
        "import sys, time; from pathlib import Path; from app.config import Settings; "
        "from app.recordings.crypto import Keyring; "
        "s = Settings(data_dir=Path(sys.argv[1]), master_key=None, master_key_file=None); "
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time())); print(Keyring.load(s).current_id)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    go = f"{time.time() + 1.5:.3f}"  # after the imports, all at once
    procs = [subprocess.Popen([sys.executable, "-c", script, str(data_dir), go], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    ids = {out.strip() for out, _ in outs}
    assert len(ids) == 1 and Keyring.load(settings_for(tmp_path)).current_id in ids


# --- rotation and retirement ------------------------------------------------------------------------------


def test_rotate_rewrap_retire(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    ring = Keyring.load(settings)
    first = ring.current_id
    data_a, wrap_a = ring.new_data_key(CONTEXT)
    data_b, wrap_b = ring.new_data_key(OTHER)

    second = ring.rotate()
    assert ring.current_id == second != first and ring.key_ids == [first, second]
    assert ring.unwrap(wrap_a, CONTEXT) == data_a  # older wraps still unwrap
    assert ring.new_data_key(CONTEXT)[1].key_id == second
    assert Keyring.load(settings).current_id == second  # the file says so too

    moved = ring.rewrap(wrap_a, CONTEXT)
    assert moved.key_id == second and ring.unwrap(moved, CONTEXT) == data_a
    assert ring.rewrap(moved, CONTEXT) is moved  # already under the current key
    with pytest.raises(CryptoError):
        ring.rewrap(wrap_b, CONTEXT)  # the context still has to match

    third = ring.rotate()
    assert ring.retire({first, second}) == []  # all in use
    assert ring.retire({first}) == [second]  # unused, and not current
    assert ring.key_ids == [first, third] and ring.retire(set()) == [first]
    assert ring.key_ids == [third] and ring.retire(set()) == []  # never the current one
    with pytest.raises(CryptoError, match="不在密钥环中"):
        ring.unwrap(wrap_b, OTHER)
    text = (settings.data_dir / "master.key").read_text()
    assert text.startswith("#") and first not in text and second not in text  # comments kept
    assert (settings.data_dir / "master.key").stat().st_mode & 0o777 == 0o600
    assert Keyring.load(settings).key_ids == [third]


def test_another_process_picks_up_a_rotation(tmp_path: Path) -> None:
    """A server's keyring sees the key file change (rotated by `hotline` in another process)."""
    settings = settings_for(tmp_path)
    server, admin = Keyring.load(settings), Keyring.load(settings)
    new = admin.rotate()
    _, wrapped = admin.new_data_key(CONTEXT)
    assert server.unwrap(wrapped, CONTEXT)  # the unknown id made it reread the file
    assert server.new_data_key(CONTEXT)[1].key_id == new == server.current_id


def test_master_key_migrates_from_the_environment_to_a_file(tmp_path: Path) -> None:
    """The README's way to rotate a HOTLINE_MASTER_KEY: put it in a file under its derived id first."""
    master = os.urandom(32)
    env_ring = Keyring.load(settings_for(tmp_path, master_key=base64.b64encode(master).decode()))
    _, wrapped = env_ring.new_data_key(CONTEXT)
    path = tmp_path / "keys"
    write_keys(path, (key_id_for(master), master))
    path.write_text(path.read_text().rstrip("\n"))  # as left by an editor: no newline at the end
    file_ring = Keyring.load(settings_for(tmp_path, master_key_file=path))
    file_ring.rotate()
    assert Keyring.load(settings_for(tmp_path, master_key_file=path)).key_ids == file_ring.key_ids
    assert file_ring.rewrap(wrapped, CONTEXT).key_id == file_ring.current_id != env_ring.current_id
