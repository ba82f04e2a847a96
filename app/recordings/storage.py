"""Where recording files live: one small interface over a local folder and S3-compatible object storage.

``open_storage(settings)`` picks the backend from ``HOTLINE_STORAGE_URL``:

- ``""`` (default): :class:`LocalStorage` in the data dir's ``recordings/`` folder (one machine);
- ``s3://bucket/prefix``: :class:`S3Storage` (AWS S3, SeaweedFS, MinIO, Ceph RGW… at ``HOTLINE_S3_ENDPOINT_URL``),
  shared by every node of a multi-machine site.

Keys are relative, ``/``-separated paths such as ``ab/abcd….wav`` (no ``..``, no leading ``/``). Every
backend writes atomically (a reader sees the old object or the whole new one, never part of it), streams in
pieces of at most :data:`PIECE` bytes, and reports failures as :class:`StorageError` with a message in Chinese
that names the object but never a credential:

- :class:`ObjectMissing`: no such object;
- :class:`StorageUnavailable`: the store cannot be reached now (server down, connection refused, timeout,
  5xx after the client's own retries): the caller should retry later;
- :class:`StorageError` itself: anything else (access denied, no such bucket, a WORM-locked object, a bad key).

``stream()`` asks the store at call time, so a missing object or a store that is down is raised before the
first byte (an HTTP handler can still answer 404/503); an error in the middle of the body is raised from the
iterator. The iterator closes its file or connection when exhausted, on ``close()`` or when dropped.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

from app.config import Settings

PIECE = 256 * 1024  # bytes per piece when streaming
TMP_SUFFIX = ".tmp"  # LocalStorage.put's temporary files: ".<name>.<random>.tmp", skipped by keys()


_SESSION_LOCK = threading.Lock()  # boto3 sessions may not create clients from several threads at once
_session: Any = None


class StorageError(Exception):
    """A storage operation failed; the message (Chinese) says which object and why, without secrets."""


class ObjectMissing(StorageError):
    pass


class StorageUnavailable(StorageError):
    """The store cannot be reached now (down, refused, timed out, overloaded): retry later."""


@runtime_checkable
class Storage(Protocol):
    url: str  # for display and logs, never with secrets: "s3://bucket/prefix" or the local folder

    def put(self, key: str, source: Path, *, retain_days: int = 0) -> None:
        """Store the file ``source`` under ``key``, atomically, replacing any object there. ``retain_days > 0``:
        WORM, the object cannot be deleted or overwritten for that many days (S3 object lock, COMPLIANCE mode:
        the bucket must have object lock enabled; LocalStorage ignores it)."""
        ...

    def stream(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes ``[start, end)`` of the object (``end`` exclusive, None: to the end; past the end: cut
        there), in pieces of at most :data:`PIECE` bytes."""
        ...

    def size(self, key: str) -> int: ...

    def exists(self, key: str) -> bool: ...

    def presign(self, key: str, *, expires_s: int = 300) -> str:
        """A URL that GETs the object without credentials for ``expires_s`` seconds (Range headers work)."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; nothing to remove is fine. A WORM-locked object: StorageError."""
        ...

    def keys(self) -> Iterator[str]:
        """Every key in this store (under its prefix)."""
        ...


def check_key(key: str) -> str:
    """``key`` if it is a relative ``/``-separated path without ``.``/``..`` parts; StorageError otherwise."""
    parts = key.split("/")
    if (not key or key.startswith("/") or "\\" in key or "\0" in key
            or any(part in ("", ".", "..") for part in parts)):
        raise StorageError(f"非法的存储键 {key!r}：须为不含 “..” 的相对路径，如 ab/abcd….wav")
    return key


class Pieces(Iterator[bytes]):
    """The pieces of one opened object; closes it when exhausted, on ``close()`` or when dropped."""

    def __init__(self, read: Callable[[int], bytes], close: Callable[[], None], remaining: int | None,
                 fail: Callable[[Exception], StorageError]) -> None:
        self._read, self._close, self._remaining, self._fail = read, close, remaining, fail
        self._closed = False

    def __iter__(self) -> Pieces:
        return self

    def __next__(self) -> bytes:
        if self._closed or self._remaining == 0:
            self.close()
            raise StopIteration
        n = PIECE if self._remaining is None else min(PIECE, self._remaining)
        try:
            piece = self._read(n)
        except StorageError:
            self.close()
            raise
        except Exception as e:
            self.close()
            raise self._fail(e) from e
        if not piece:
            self.close()
            raise StopIteration
        if self._remaining is not None:
            self._remaining -= len(piece)
        return piece

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            with contextlib.suppress(Exception):
                self._close()

    def __enter__(self) -> Pieces:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # dropped before the end: release the file or connection now
        if hasattr(self, "_closed"):
            self.close()


def _empty() -> Pieces:
    return Pieces(lambda n: b"", lambda: None, 0, StorageError)


def _check_source(source: Path) -> None:
    """A missing source file is the caller's mistake, not the store's: FileNotFoundError, as ``open``."""
    if not Path(source).is_file():
        raise FileNotFoundError(errno.ENOENT, "没有要存入的文件", str(source))


def _check_range(start: int, end: int | None) -> None:
    if start < 0 or (end is not None and end < 0):
        raise ValueError(f"bad byte range [{start}, {end})")


class LocalStorage:
    """Files under ``root`` (the data dir's ``recordings/``), one per key.

    ``put`` copies to a temporary file in the destination's folder, fsyncs it, renames it over the key
    (``os.replace``, atomic on POSIX) and fsyncs the folder. ``retain_days`` is ignored: a local folder has no
    WORM; whoever can write the data dir can delete recordings (use S3 object lock for evidence).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.url = str(self.root)

    def __repr__(self) -> str:
        return f"LocalStorage({self.url!r})"

    def path(self, key: str) -> Path:
        """The file of ``key``; StorageError if it would lie outside ``root`` (``..``, symlinks)."""
        path = self.root / check_key(key)
        root = self.root.resolve()
        if not path.resolve().is_relative_to(root):
            raise StorageError(f"存储键 {key!r} 指向录音目录 {self.root} 之外")
        return path

    def put(self, key: str, source: Path, *, retain_days: int = 0) -> None:
        dest = self.path(key)
        _check_source(source)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}{TMP_SUFFIX}")
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            with open(source, "rb") as src, open(tmp, "xb") as out:
                while block := src.read(1 << 20):
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, dest)
            _fsync_dir(dest.parent)
        except OSError as e:
            raise StorageError(f"写入 {key} 失败：{e.strerror or e}（{self.url}）") from e
        finally:
            tmp.unlink(missing_ok=True)

    def stream(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        _check_range(start, end)
        path = self.path(key)
        try:
            f = open(path, "rb")  # noqa: SIM115  # closed by Pieces
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as e:
            raise ObjectMissing(f"录音文件不存在：{key}（{self.url}）") from e
        except OSError as e:
            raise StorageError(f"读取 {key} 失败：{e.strerror or e}（{self.url}）") from e
        try:
            f.seek(start)
        except OSError:
            f.close()
            raise
        remaining = None if end is None else max(0, end - start)
        return Pieces(f.read, f.close, remaining,
                      lambda e: StorageError(f"读取 {key} 失败：{e}（{self.url}）"))

    def size(self, key: str) -> int:
        path = self.path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError) as e:
            raise ObjectMissing(f"录音文件不存在：{key}（{self.url}）") from e
        except OSError as e:
            raise StorageError(f"读取 {key} 失败：{e.strerror or e}（{self.url}）") from e
        if not path.is_file():
            raise ObjectMissing(f"录音文件不存在：{key}（{self.url}）")
        return st.st_size

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def presign(self, key: str, *, expires_s: int = 300) -> str:
        raise StorageError("本地存储没有预签名地址")

    def delete(self, key: str) -> None:
        path = self.path(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as e:
            raise StorageError(f"删除 {key} 失败：{e.strerror or e}（{self.url}）") from e

    def keys(self) -> Iterator[str]:
        def walk(folder: Path, rel: str) -> Iterator[str]:
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except FileNotFoundError:
                return
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    yield from walk(Path(entry.path), f"{rel}{entry.name}/")
                elif entry.is_file() and not (entry.name.startswith(".") and entry.name.endswith(TMP_SUFFIX)):
                    yield f"{rel}{entry.name}"

        return walk(self.root, "")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class S3Storage:
    """Objects ``prefix/key`` in ``bucket`` of an S3-compatible store (``settings.s3_*``).

    The client gives up quickly when the server is down (connect timeout 2 s, two attempts), so a caller hears
    :class:`StorageUnavailable` within a few seconds; custom endpoints use path-style addressing
    (``http://host:port/bucket/key``). ``put`` uses multipart upload for big files (S3 makes the object
    visible only when complete); ``retain_days > 0`` puts it under object lock in COMPLIANCE mode.
    """

    CONNECT_TIMEOUT = 2
    READ_TIMEOUT = 30

    def __init__(self, bucket: str, prefix: str = "", *, settings: Settings) -> None:
        import boto3  # heavy: imported only when S3 is used
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        if not bucket:
            raise StorageError("S3 存储地址缺少存储桶名：应为 s3://bucket 或 s3://bucket/prefix")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.endpoint_url = _without_userinfo(settings.s3_endpoint_url)  # shown in messages: no secrets
        config = Config(
            connect_timeout=self.CONNECT_TIMEOUT, read_timeout=self.READ_TIMEOUT,
            retries={"max_attempts": 2, "mode": "standard"}, signature_version="s3v4",
            s3={"addressing_style": "path" if settings.s3_endpoint_url else "auto"},
        )
        with _SESSION_LOCK:  # one session for all: its loaded service models make a new client cheap
            global _session
            _session = _session or boto3.session.Session()
            self.client: Any = _session.client(  # botocore's S3 client (no stubs)
                "s3", endpoint_url=settings.s3_endpoint_url or None, region_name=settings.s3_region or None,
                aws_access_key_id=settings.s3_access_key_id or None,
                aws_secret_access_key=settings.s3_secret_access_key or None, config=config,
            )
        self.transfer = TransferConfig(multipart_threshold=16 << 20, multipart_chunksize=16 << 20,
                                       max_concurrency=4)

    def __repr__(self) -> str:
        return f"S3Storage({self.url!r}, endpoint={self.endpoint_url!r})"

    def object_key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _where(self) -> str:
        return f"{self.url}" + (f" @ {self.endpoint_url}" if self.endpoint_url else "")

    def _error(self, e: Exception, action: str, key: str | None = None) -> StorageError:
        """The StorageError for a boto3/botocore exception ``e`` raised while doing ``action`` (Chinese)."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionError,
            HTTPClientError,
            IncompleteReadError,
            NoCredentialsError,
            PartialCredentialsError,
            ResponseStreamingError,
        )

        what = f"{action} {key}" if key else action
        where = self._where()
        if isinstance(e, ClientError):
            err = e.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            message = str(err.get("Message", "")) or code
            if code in ("404", "NoSuchKey", "NotFound") and key is not None:
                return ObjectMissing(f"录音对象不存在：{key}（{where}）")
            if code == "NoSuchBucket":
                return StorageError(f"{what} 失败：存储桶 {self.bucket} 不存在（{where}）")
            if status >= 500 or code in ("SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout"):
                return StorageUnavailable(f"{what} 失败：对象存储暂时不可用（HTTP {status} {code}），请稍后重试"
                                          f"（{where}）")
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "AccessDenied"):
                return StorageError(f"{what} 失败：对象存储拒绝访问（{code}）：请检查 HOTLINE_S3_ACCESS_KEY_ID、"
                                    f"HOTLINE_S3_SECRET_ACCESS_KEY 及其权限（{where}）")
            return StorageError(f"{what} 失败：{code} {message}（{where}）")
        if isinstance(e, NoCredentialsError | PartialCredentialsError):
            return StorageError(f"{what} 失败：没有 S3 凭据，请设置 HOTLINE_S3_ACCESS_KEY_ID 与 "
                                f"HOTLINE_S3_SECRET_ACCESS_KEY（{where}）")
        if isinstance(e, ConnectionError | HTTPClientError | IncompleteReadError | ResponseStreamingError
                      | OSError):
            return StorageUnavailable(f"{what} 失败：无法连接对象存储（{type(e).__name__}），请稍后重试（{where}）")
        if isinstance(e, BotoCoreError):
            return StorageError(f"{what} 失败：{type(e).__name__}（{where}）")
        return StorageError(f"{what} 失败：{type(e).__name__}: {e}（{where}）")

    def put(self, key: str, source: Path, *, retain_days: int = 0) -> None:
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        obj = self.object_key(key)
        extra: dict[str, Any] = {}
        if retain_days > 0:
            extra = {"ObjectLockMode": "COMPLIANCE",
                     "ObjectLockRetainUntilDate": datetime.now(UTC) + timedelta(days=retain_days)}
        _check_source(source)
        try:
            self.client.upload_file(str(source), self.bucket, obj, ExtraArgs=extra or None, Config=self.transfer)
        except S3UploadFailedError as e:  # boto3 turns the ClientError into text; the original is its cause
            cause = e.__cause__ or e.__context__
            err = self._error(cause, "上传", key) if isinstance(cause, ClientError | BotoCoreError) else None
            if isinstance(cause, ClientError) and retain_days > 0 and _code(cause) == "InvalidRequest":
                err = StorageError(f"上传 {key} 失败：存储桶 {self.bucket} 未启用对象锁定（Object Lock），"
                                   f"无法按 {retain_days} 天合规保留（{self._where()}）")
            raise err or StorageError(f"上传 {key} 失败：{e}（{self._where()}）") from e
        except (ClientError, BotoCoreError, OSError) as e:
            raise self._error(e, "上传", key) from e

    def stream(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        from botocore.exceptions import BotoCoreError, ClientError

        _check_range(start, end)
        obj = self.object_key(key)
        if end is not None and end <= start:
            self.size(key)  # nothing to read, but a missing object is still missing
            return _empty()
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": obj}
        if start or end is not None:
            args["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            body = self.client.get_object(**args)["Body"]
        except ClientError as e:
            if _code(e) == "InvalidRange":  # start at or past the end: nothing there
                return _empty()
            raise self._error(e, "读取", key) from e
        except (BotoCoreError, OSError) as e:
            raise self._error(e, "读取", key) from e
        return Pieces(body.read, body.close, None, lambda e: self._error(e, "读取", key))

    def _head(self, key: str) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return dict(self.client.head_object(Bucket=self.bucket, Key=self.object_key(key)))
        except (ClientError, BotoCoreError, OSError) as e:
            raise self._error(e, "查询", key) from e

    def size(self, key: str) -> int:
        return int(self._head(key)["ContentLength"])

    def exists(self, key: str) -> bool:
        try:
            self._head(key)
        except ObjectMissing:
            return False
        return True

    def presign(self, key: str, *, expires_s: int = 300) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return str(self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": self.object_key(key)}, ExpiresIn=expires_s))
        except (ClientError, BotoCoreError) as e:
            raise self._error(e, "生成预签名地址", key) from e

    def delete(self, key: str) -> None:
        """Remove the object, and in a versioned (object-lock) bucket every version of it, so the bytes are
        really gone; S3 itself would only add a delete marker over a locked object. Refused while the object
        is under object lock (retain-until in the future or a legal hold)."""
        from botocore.exceptions import BotoCoreError, ClientError

        obj = self.object_key(key)
        try:
            head = self._head(key)
        except ObjectMissing:
            return
        until = head.get("ObjectLockRetainUntilDate")
        if head.get("ObjectLockLegalHoldStatus") == "ON" or (
                head.get("ObjectLockMode") and isinstance(until, datetime) and until > datetime.now(UTC)):
            raise StorageError(f"不能删除 {key}：该录音处于合规保留（WORM，对象锁定）"
                               + (f"至 {until:%Y-%m-%d %H:%M} UTC" if isinstance(until, datetime) else "")
                               + f"（{self._where()}）")
        try:
            if head.get("VersionId") in (None, "", "null"):
                self.client.delete_object(Bucket=self.bucket, Key=obj)
                return
            pages = self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=obj)
            for page in pages:
                for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                    if v["Key"] == obj:
                        self.client.delete_object(Bucket=self.bucket, Key=obj, VersionId=v["VersionId"])
        except ClientError as e:
            if _code(e) == "AccessDenied" and head.get("ObjectLockMode"):
                raise StorageError(f"不能删除 {key}：该录音（或其旧版本）处于合规保留（WORM，对象锁定）"
                                   f"（{self._where()}）") from e
            raise self._error(e, "删除", key) from e
        except (BotoCoreError, OSError) as e:
            raise self._error(e, "删除", key) from e

    def keys(self) -> Iterator[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        start = f"{self.prefix}/" if self.prefix else ""
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start):
                for item in page.get("Contents", []):
                    yield item["Key"][len(start):]
        except (ClientError, BotoCoreError, OSError) as e:
            raise self._error(e, "列出对象") from e

    def ensure_bucket(self, *, object_lock: bool = False) -> bool:
        """Create the bucket if it is missing (with object lock when ``object_lock``); True if created.
        An existing bucket without object lock when ``object_lock`` is asked for: StorageError (S3 cannot
        add it to a bucket afterwards on every server; create a new bucket)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            try:
                self.client.head_bucket(Bucket=self.bucket)
            except ClientError as e:
                if _code(e) not in ("404", "NoSuchBucket", "NotFound"):
                    raise
            else:
                if object_lock:
                    self._check_object_lock()
                return False
            args: dict[str, Any] = {"Bucket": self.bucket}
            region = self.client.meta.region_name
            if region and region != "us-east-1":
                args["CreateBucketConfiguration"] = {"LocationConstraint": region}
            if object_lock:
                args["ObjectLockEnabledForBucket"] = True
            self.client.create_bucket(**args)
            return True
        except StorageError:
            raise
        except (ClientError, BotoCoreError, OSError) as e:
            raise self._error(e, f"创建存储桶 {self.bucket}") from e

    def _check_object_lock(self) -> None:
        from botocore.exceptions import ClientError

        try:
            conf = self.client.get_object_lock_configuration(Bucket=self.bucket)
        except ClientError as e:
            if _code(e) != "ObjectLockConfigurationNotFoundError":
                raise
            conf = {}
        if conf.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") != "Enabled":
            raise StorageError(f"存储桶 {self.bucket} 未启用对象锁定（Object Lock），不能按 "
                               f"HOTLINE_S3_OBJECT_LOCK_DAYS 合规保留录音：请新建启用对象锁定的存储桶"
                               f"（{self._where()}）")


def _without_userinfo(url: str | None) -> str | None:
    if not url:
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])) if "@" in parts.netloc else url


def _code(e: Exception) -> str:
    response = getattr(e, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def open_storage(settings: Settings, url: str | None = None) -> Storage:
    """The store at ``url`` (default ``settings.storage_url``): "" or "local" → the data dir's recordings/
    folder; ``s3://bucket`` or ``s3://bucket/prefix`` → S3 with the ``settings.s3_*`` endpoint and credentials."""
    url = settings.storage_url if url is None else url
    url = url.strip()
    if url in ("", "local"):
        return LocalStorage(settings.recordings_dir)
    if url.startswith("s3://"):
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not bucket or "?" in url or "#" in url:
            raise StorageError(f"无法识别的存储地址 {url!r}：应为 s3://bucket 或 s3://bucket/prefix")
        return S3Storage(bucket, prefix, settings=settings)
    raise StorageError(f"无法识别的存储地址 {url!r}：HOTLINE_STORAGE_URL 可为空（数据目录下的 recordings/）"
                       f"或 s3://bucket/prefix（S3 兼容对象存储）")


def ensure_bucket(storage: Storage, *, object_lock: bool = False) -> bool:
    """Make sure the store can take objects: an S3 bucket is created if missing (with object lock when
    ``object_lock``, e.g. ``settings.s3_object_lock_days > 0``), a local folder made. True if it created one."""
    if isinstance(storage, S3Storage):
        return storage.ensure_bucket(object_lock=object_lock)
    if isinstance(storage, LocalStorage):
        created = not storage.root.is_dir()
        storage.root.mkdir(parents=True, exist_ok=True)
        return created
    return False
