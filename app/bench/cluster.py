"""`hotline bench cluster`: a whole site on one machine, on loopback, with faults injected under load.

PostgreSQL (a scratch database on the server given), a Redis of its own (so it can be restarted), SeaweedFS
(S3), two API processes, two transcription workers and one SIP node: each a real ``hotline`` process with
its own data dir (nodes share nothing on disk), one environment for all (database, Redis, S3, secret and
master keys). The load: N recordings uploaded over HTTP, alternating between the API processes and sent
again to the other one when a request fails (a load balancer's behaviour), and M sipp calls. During it:
``kill -9`` of a worker that holds a job, of an API process, of the SIP node with calls up (each started
again a few seconds later), and a restart of Redis. Counted from the database once everything settled:
recordings and calls in, cases out, duplicates, losses, the longest wait from recording to case.

Then, unless skipped, a fixed batch through one worker pinned to core 0 and through two workers pinned to
cores 0 and 1 (recordings a minute each, and the ratio), and the cost of encryption at rest: what sealing,
storing, fetching and opening a recording take encrypted and in clear (through app/recordings/files.py against
the cluster's store, median of several), against the import-to-case time of recordings sent one at a time,
encrypted and in clear by turns (whose own difference is printed too, noisier).

On this 2-core machine every process competes for the same cores; restarts take much longer than on a
site where each node has a machine of its own, and other work on the machine shows in every figure (the
load average is printed with the throughput).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from base64 import b64encode
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from app.bench.seaweed import SeaweedError, SeaweedFS
from app.bench.sip import CpuMeter
from app.bench.spine import free_port

ROOT = Path(__file__).resolve().parent.parent.parent  # the checkout the `hotline` processes run from
DATA = ROOT / "tests" / "data"
UPLOAD_SOURCE = DATA / "call_d03.wav"  # 29 s stereo 8 kHz μ-law, a Mandarin hotline call
CALL_SOURCE = DATA / "d03_caller_11s.ulaw"  # the caller's side of it, raw μ-law for sipp
ADMIN = "bench-admin"
BUCKET = "hotline-bench"
RTP_PORTS = (30000, 30999)  # the SIP node's; sipp's media ports are drawn below them
WORKER_NICE = 10  # transcription is batch work: a restarting API or SIP node goes first on 2 cores

console = Console(highlight=False, width=None if sys.stdout.isatty() else 110)


class ClusterError(RuntimeError):
    """The cluster could not be brought up or driven (not a finding about the product)."""


@dataclass(frozen=True)
class ClusterOptions:
    recordings: int = 16
    calls: int = 12
    seed: int = 12351
    keep: bool = False
    skip_throughput: bool = False
    batch: int = 8  # recordings per throughput / encryption measurement
    clip_seconds: float = 12.0  # each uploaded recording: the first seconds of call_d03.wav
    call_seconds: float = 9.0  # each sipp call streams this much of the caller's audio
    window_s: float = 40.0  # uploads and calls are spread over this long; the faults happen inside it
    restart_after_s: float = 3.0  # a killed process is started again this long after
    redis_down_s: float = 2.0  # how long Redis stays stopped when it is restarted
    storage: str = "s3"  # "s3": SeaweedFS; "shared-dir": every node's recordings/ is one local folder
    redis_persist: bool = True  # Redis with its append-only file, as a site runs it
    beam_size: int | None = None  # HOTLINE_ASR_BEAM_SIZE for every worker; None: as configured (5)
    # the SIP node's greeting: none by default, because the bundled one on a call's agent leg takes Whisper
    # ~35 s to turn into nothing (a repetition loop through every fallback temperature); "default" for it
    greeting: str = ""
    timeout_s: float = 300.0  # after the load, how long to wait for every recording to become a case
    postgres_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


# --- audio: every upload and every call distinct (recordings are content-addressed) ---------------------


def _chunks(wav: bytes) -> Iterator[tuple[bytes, int, int]]:
    """(chunk id, offset of its header, size) for each RIFF chunk."""
    at = 12
    while at + 8 <= len(wav):
        size = struct.unpack_from("<I", wav, at + 4)[0]
        yield wav[at:at + 4], at, size
        at += 8 + size + (size & 1)


def clip_wav(wav: bytes, seconds: float) -> bytes:
    """The first ``seconds`` of a WAV file (any codec with a fixed block size), header sizes rewritten."""
    found = {cid: (at, size) for cid, at, size in _chunks(wav)}
    if b"fmt " not in found or b"data" not in found:
        raise ClusterError("not a WAV file with fmt and data chunks")
    fmt_at = found[b"fmt "][0]
    byte_rate, align = struct.unpack_from("<IH", wav, fmt_at + 16)
    data_at, data_size = found[b"data"]
    size = min(data_size, int(seconds * byte_rate) // align * align)
    out = bytearray(wav[:data_at] + b"data" + struct.pack("<I", size) + wav[data_at + 8:data_at + 8 + size])
    struct.pack_into("<I", out, 4, len(out) - 8)
    return bytes(out)


def mark(payload: bytes, tag: int, start: int = 0) -> bytes:
    """``payload`` with the lowest bit of 48 spread-out bytes from ``start`` on flipped by the bits of ``tag``:
    a different tag gives different bytes, and no one hears it."""
    out = bytearray(payload)
    step = max(1, (len(out) - start) // 49)
    for bit in range(48):
        if tag >> bit & 1:
            out[start + (bit + 1) * step] ^= 1
    return bytes(out)


def unique_wav(clip: bytes, tag: int) -> bytes:
    data_at = next(at for cid, at, _ in _chunks(clip) if cid == b"data")
    return mark(clip, tag, start=data_at + 8)


def tag_for(seed: int, phase: int, index: int) -> int:
    return (seed & 0xFFFFFFFF) << 16 | phase << 12 | index


# --- the processes -------------------------------------------------------------------------------------


@dataclass
class Node:
    """One `hotline` process (API, worker or SIP node) with its own data dir, log and optional core."""

    name: str
    kind: str  # api | worker | sip
    args: list[str]
    env: dict[str, str]
    log: Path
    cpu: int | None = None
    nice: int = 0
    http_port: int | None = None
    sip_port: int | None = None
    proc: subprocess.Popen[bytes] | None = None
    log_mark: int = 0  # size of the log when this run started

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        self.log_mark = self.log.stat().st_size if self.log.exists() else 0
        pin = ["taskset", "-c", str(self.cpu)] if self.cpu is not None else []
        pin += ["nice", "-n", str(self.nice)] if self.nice else []
        with self.log.open("ab") as out:  # the child keeps its own copy of the descriptor
            out.write(f"\n=== {datetime.now():%H:%M:%S} start\n".encode())
            out.flush()
            self.proc = subprocess.Popen([*pin, sys.executable, "-m", "app.cli", *self.args], env=self.env, cwd=ROOT,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def this_run(self) -> str:
        with self.log.open("rb") as f:
            f.seek(self.log_mark)
            return f.read().decode(errors="replace")

    def ready(self) -> bool:
        if self.kind == "api":
            try:
                return httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False
        return ("Huey consumer started" if self.kind == "worker" else "SIP adapter on") in self.this_run()

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if not self.alive or time.monotonic() > deadline:
                why = "exited" if not self.alive else f"not ready after {timeout:.0f} s"
                raise ClusterError(f"{self.name} {why}; the end of {self.log}:\n{self.tail()}")
            time.sleep(0.2)

    def kill9(self) -> None:
        """The whole process group at once (the SIP node's media engine and filer too), as in a crash."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM to the process itself (it stops its own children), SIGKILL to what is left after."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
        with contextlib.suppress(ProcessLookupError):  # children that outlived their parent
            os.killpg(self.proc.pid, signal.SIGKILL)

    def tail(self, chars: int = 3000) -> str:
        lines = self.this_run().splitlines() if self.log.exists() else []
        return "\n".join(line for line in lines if 'HTTP/1.1"' not in line)[-chars:]  # access lines hide causes


@dataclass
class Redis:
    """A redis-server of the bench's own, so it can be restarted without touching the system's."""

    folder: Path
    persist: bool
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder), "--save", "",
                "--appendonly", "yes" if self.persist else "no", "--daemonize", "no",
                "--logfile", str(self.folder / "redis.log")]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while not self._pong():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise ClusterError(f"redis-server did not start:\n{self._log_tail()}")
            time.sleep(0.05)

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def _log_tail(self) -> str:
        path = self.folder / "redis.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else "(no log)"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Cluster:
    root: Path
    db_url: str
    redis: Redis
    s3: SeaweedFS | None  # None with storage "shared-dir"
    apis: list[Node]
    workers: list[Node]
    sip: Node
    engine: sa.Engine
    password: str

    @property
    def nodes(self) -> list[Node]:
        return [*self.apis, *self.workers, self.sip]


def _scratch_database(server_url: str) -> tuple[str, str]:
    """Create a fresh database beside ``server_url``'s; returns (its URL, its name)."""
    name = f"bench_cluster_{secrets.token_hex(4)}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return str(sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)), name


def _drop_database(server_url: str, name: str) -> None:
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def _start_s3(opts: ClusterOptions, root: Path) -> tuple[SeaweedFS | None, dict[str, str]]:
    """SeaweedFS and the bucket, or (None, {}) for a shared local folder instead."""
    if opts.storage == "shared-dir":
        return None, {}
    import boto3

    try:
        s3 = SeaweedFS(root / "seaweedfs").start()
    except SeaweedError as e:
        raise ClusterError(str(e)) from e
    client = boto3.client("s3", **s3.client_options())
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=BUCKET)
    client.close()
    return s3, s3.env_for(BUCKET, "site1")


def _base_env(opts: ClusterOptions, db_url: str, redis: Redis, storage_env: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOTLINE_", "AWS_"))}
    env.update(HOTLINE_DATABASE_URL=db_url, HOTLINE_REDIS_URL=redis.url, HOTLINE_SECRET_KEY=secrets.token_urlsafe(48),
               HOTLINE_MASTER_KEY=b64encode(secrets.token_bytes(32)).decode(),
               HOTLINE_MEDIA_TOKEN=secrets.token_urlsafe(24), HOTLINE_SIP_ENABLED="false",
               HOTLINE_LIVE_ENABLED="false", HOTLINE_ENCRYPT_RECORDINGS="true", HOTLINE_LOG_LEVEL="INFO",
               **storage_env)
    if opts.beam_size:
        env["HOTLINE_ASR_BEAM_SIZE"] = str(opts.beam_size)
    return env


def _node(root: Path, base: dict[str, str], name: str, kind: str, args: list[str], *, shared: Path | None,
          cpu: int | None = None, nice: int = 0, **extra: str) -> Node:
    data = root / "nodes" / name
    data.mkdir(parents=True, exist_ok=True)
    if shared is not None:  # the stand-in for a shared mount when there is no S3
        (data / "recordings").symlink_to(shared, target_is_directory=True)
    http, sip = free_port(), _free_udp_and_tcp_port()
    env = {**base, "HOTLINE_DATA_DIR": str(data), "HOTLINE_HTTP_PORT": str(http), "HOTLINE_SIP_PORT": str(sip),
           **extra}
    return Node(name, kind, args, env, root / "logs" / f"{name}.log", cpu=cpu, nice=nice, http_port=http,
                sip_port=sip)


def _free_udp_and_tcp_port() -> int:
    for _ in range(50):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            try:
                u.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise ClusterError("no free port for SIP")


def _create_admin(env: dict[str, str], root: Path) -> str:
    """Migrate the database and add the bench's admin, once, before any node starts."""
    password = secrets.token_urlsafe(16)
    setup = {**env, "HOTLINE_DATA_DIR": str(root / "nodes" / "setup")}
    done = subprocess.run([sys.executable, "-m", "app.cli", "users", "add", ADMIN, "--role", "admin",
                           "--password-stdin"], input=password + "\n", env=setup, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    if done.returncode != 0:
        raise ClusterError(f"`hotline users add` failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return password


def start_cluster(opts: ClusterOptions, root: Path, db_url: str) -> Cluster:
    (root / "logs").mkdir(parents=True)
    redis = Redis(root / "redis", opts.redis_persist)
    s3: SeaweedFS | None = None
    try:
        redis.start()
        s3, storage_env = _start_s3(opts, root)
        base = _base_env(opts, db_url, redis, storage_env)
        password = _create_admin(base, root)
    except BaseException:
        redis.stop()
        if s3 is not None:
            s3.stop()
        raise
    shared = root / "shared-recordings" if opts.storage == "shared-dir" else None
    if shared is not None:
        shared.mkdir()
    serve = ["serve", "--workers", "0"]
    apis = [_node(root, base, f"api{i}", "api", serve, shared=shared) for i in (1, 2)]
    workers = [_node(root, base, f"worker{i + 1}", "worker", ["worker", "--concurrency", "1"], shared=shared, cpu=i,
                     nice=WORKER_NICE) for i in (0, 1)]
    sip = _node(root, base, "sip", "sip", ["sip"], shared=shared, HOTLINE_RTP_PORT_MIN=str(RTP_PORTS[0]),
                HOTLINE_RTP_PORT_MAX=str(RTP_PORTS[1]), HOTLINE_SIP_GREETING=opts.greeting)
    cluster = Cluster(root, db_url, redis, s3, apis, workers, sip, sa.create_engine(db_url, pool_pre_ping=True),
                      password)
    try:
        for node in cluster.nodes:
            node.start()
        for node in cluster.nodes:
            node.wait_ready()
    except BaseException:
        stop_cluster(cluster)
        raise
    return cluster


def stop_cluster(cluster: Cluster) -> None:
    for node in cluster.nodes:
        node.stop()
    cluster.redis.stop()
    if cluster.s3 is not None:
        cluster.s3.stop()
    cluster.engine.dispose()


# --- the load: uploads over HTTP, calls with sipp ------------------------------------------------------


@dataclass
class Upload:
    name: str
    data: bytes
    sha256: str
    started: float = 0.0  # epoch seconds of the first attempt
    status: int | None = None  # the 2xx that acknowledged it, None if never acknowledged
    recording_id: int | None = None
    duplicate: bool = False
    attempts: list[str] = field(default_factory=list)  # "api1: 201", "api2: ReadError", …

    @property
    def acked(self) -> bool:
        return self.status is not None


def make_uploads(opts: ClusterOptions, phase: int, count: int) -> list[Upload]:
    clip = clip_wav(UPLOAD_SOURCE.read_bytes(), opts.clip_seconds)
    out = []
    for i in range(count):
        data = unique_wav(clip, tag_for(opts.seed, phase, i))
        out.append(Upload(f"cluster-{opts.seed}-p{phase}-{i:03d}.wav", data, hashlib.sha256(data).hexdigest()))
    return out


class Uploader:
    """Sends each upload to the next API process in turn; on a failed connection or a 5xx, the same bytes
    go to the other one (as a load balancer would retry), up to ``tries`` times."""

    def __init__(self, apis: list[Node], password: str, tries: int = 10) -> None:
        self.apis = apis
        self.tries = tries
        self.turn = 0
        self.in_flight: str | None = None  # the node an upload is being sent to right now
        self.client = httpx.Client(timeout=60)
        token = self._login(password)
        self.client.headers["Authorization"] = f"Bearer {token}"

    def _login(self, password: str) -> str:
        for api in self.apis:
            with contextlib.suppress(httpx.HTTPError):
                r = self.client.post(f"{api.url}/api/v1/auth/token", data={"username": ADMIN, "password": password})
                if r.status_code == 200:
                    return str(r.json()["access_token"])
        raise ClusterError("cannot log in to either API process")

    def send(self, upload: Upload) -> None:
        upload.started = time.time()
        for attempt in range(self.tries):
            api = self.apis[(self.turn + attempt) % len(self.apis)]
            self.in_flight = api.name
            try:
                r = self.client.post(f"{api.url}/api/v1/recordings",
                                     files={"file": (upload.name, upload.data, "audio/wav")})
            except httpx.TransportError as e:
                upload.attempts.append(f"{api.name}: {type(e).__name__}")
                time.sleep(0.5)
                continue
            finally:
                self.in_flight = None
            upload.attempts.append(f"{api.name}: {r.status_code}")
            if r.status_code in (200, 201):
                body = r.json()
                upload.status, upload.recording_id, upload.duplicate = r.status_code, body["id"], body["duplicate"]
                break
            if r.status_code < 500:
                break  # refused for a reason of its own: sending it again will not help
            time.sleep(0.5)
        self.turn += 1

    def close(self) -> None:
        self.client.close()


SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="cluster caller">
  <send retrans="500">
    <![CDATA[
      INVITE sip:12351@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:12351@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:{caller}@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=caller 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200"><action><log message="ANSWERED"/></action></recv>
  <send>
    <![CDATA[
      ACK sip:12351@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:12351@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <nop><action><exec rtp_stream="{audio},1,0"/></action></nop>
  <pause milliseconds="{pause_ms}"/>
  <send retrans="500">
    <![CDATA[
      BYE sip:12351@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:12351@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"><action><log message="ENDED"/></action></recv>
</scenario>
"""


@dataclass
class Caller:
    """One sipp process placing one call from its own number with its own audio."""

    number: str
    folder: Path
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0  # time.monotonic() when sipp was started

    def _logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.folder.glob("*_logs.log"))

    @property
    def answered(self) -> bool:
        return "ANSWERED" in self._logs()

    @property
    def completed(self) -> bool:
        """sipp saw the whole call through, BYE answered (a call cut by the SIP node's crash is not)."""
        return "ENDED" in self._logs()


def _media_ports(used: set[int]) -> int:
    """An even UDP port, with the three after it free too (sipp binds its media port and port + 2)."""
    rng = random.Random()
    for _ in range(500):
        port = rng.randrange(16000, RTP_PORTS[0] - 10, 4)
        if port in used:
            continue
        socks = []
        try:
            for p in range(port, port + 4):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        used.add(port)
        return port
    raise ClusterError("no free media port for sipp")


def place_call(opts: ClusterOptions, root: Path, index: int, sip_port: int, used_ports: set[int]) -> Caller:
    sipp = shutil.which("sipp")
    if not sipp:
        raise ClusterError("sipp is not installed (Debian package sip-tester)")
    caller = Caller(f"139{opts.seed % 10000:04d}{index:04d}", root / "calls" / f"call{index:03d}")
    caller.folder.mkdir(parents=True)
    audio = caller.folder / "caller.ulaw"
    raw = CALL_SOURCE.read_bytes()[: int(opts.call_seconds * 8000)]
    audio.write_bytes(mark(raw, tag_for(opts.seed, 9, index)))
    scenario = caller.folder / "call.xml"
    scenario.write_text(SCENARIO.replace("{caller}", caller.number).replace("{audio}", str(audio))
                        .replace("{pause_ms}", str(int(opts.call_seconds * 1000) + 500)))
    cmd = [sipp, f"127.0.0.1:{sip_port}", "-sf", str(scenario), "-m", "1", "-i", "127.0.0.1", "-p", "0",
           "-mi", "127.0.0.1", "-mp", str(_media_ports(used_ports)), "-nostdin", "-trace_logs", "-trace_err",
           "-timeout", f"{int(opts.call_seconds + 90)}s"]
    with (caller.folder / "sipp.out").open("wb") as out:
        caller.proc = subprocess.Popen(cmd, cwd=caller.folder, stdin=subprocess.DEVNULL, stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True)
    caller.started = time.monotonic()
    return caller


# --- faults ---------------------------------------------------------------------------------------------


@dataclass
class Fault:
    at: float  # seconds after the load started
    wall: datetime
    what: str


class Faults:
    """The four faults at fixed points of the load window, each on a thread of its own, each waiting (briefly)
    for the moment it hurts most: a worker holding a job, an upload in flight, a call up."""

    def __init__(self, cluster: Cluster, opts: ClusterOptions, uploader: Uploader, t0: float) -> None:
        self.cluster = cluster
        self.opts = opts
        self.uploader = uploader
        self.t0 = t0
        self.log: list[Fault] = []
        self.down: dict[str, tuple[float, float]] = {}  # node → (killed, ready again), time.monotonic()
        self.error: BaseException | None = None
        self._lock = threading.Lock()

    def note(self, what: str) -> None:
        with self._lock:
            self.log.append(Fault(time.monotonic() - self.t0, datetime.now(), what))
            self.log.sort(key=lambda f: f.at)

    def run(self) -> None:
        """All four; a slow restart does not push the next fault past the load."""
        w = self.opts.window_s
        plan = [(0.15 * w, self._kill_busy_worker), (0.35 * w, self._kill_api), (0.5 * w, self._kill_sip),
                (0.7 * w, self._restart_redis)]
        threads = [threading.Thread(target=self._one, args=(at, fault), daemon=True) for at, fault in plan]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _one(self, at: float, fault: Callable[[], None]) -> None:
        try:
            self._at(at)
            fault()
        except BaseException as e:  # reported by the main thread
            self.error = e

    def _at(self, seconds: float) -> None:
        time.sleep(max(0.0, self.t0 + seconds - time.monotonic()))

    def _until(self, check: Callable[[], object], timeout: float) -> object:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if value := check():
                return value
            time.sleep(0.05)
        return None

    def _restart(self, node: Node, what: str) -> None:
        node.kill9()
        killed = time.monotonic()
        self.note(f"kill -9 {node.name} ({what})")
        time.sleep(self.opts.restart_after_s)
        node.start()
        self.note(f"{node.name} started again")
        self._supervise(node)
        self.down[node.name] = (killed, time.monotonic())
        self.note(f"{node.name} ready: down {time.monotonic() - killed:.1f} s")

    def _supervise(self, node: Node, restarts: int = 5) -> None:
        """Wait until ``node`` is ready; if it exits while starting, start it again, as systemd's
        Restart=on-failure would (each such exit is a finding, noted with its last log line)."""
        for _ in range(restarts):
            try:
                node.wait_ready()
                return
            except ClusterError:
                if node.alive:
                    raise
                last = next((line for line in reversed(node.this_run().splitlines()) if line.strip()), "")
                self.note(f"{node.name} exited while starting (status {node.proc.returncode if node.proc else '?'}: "
                          f"{last.strip()[:160]}); started again after 1 s")
                time.sleep(1.0)
                node.start()
        node.wait_ready()

    def _kill_busy_worker(self) -> None:
        by_pid = {str(w.pid): w for w in self.cluster.workers}

        def busy() -> tuple[Node, int] | None:
            held = _rows(self.cluster.engine, "SELECT id, claimed_by FROM recordings WHERE status = 'transcribing'")
            for rid, claimed_by in held:
                if node := by_pid.get(str(claimed_by).rpartition(":")[2]):
                    return node, rid
            return None

        found = self._until(busy, 15)
        if isinstance(found, tuple):
            self._restart(found[0], f"holding recording #{found[1]}")
        else:
            self._restart(self.cluster.workers[0], "idle: no job held within 15 s")

    def _kill_api(self) -> None:
        api = self.cluster.apis[0]
        caught = self._until(lambda: self.uploader.in_flight == api.name, 10)
        self._restart(api, "an upload in flight to it" if caught else "no upload in flight within 10 s")

    def _kill_sip(self) -> None:
        def up() -> int:
            return int(_rows(self.cluster.engine, "SELECT count(*) FROM calls WHERE status = 'active'")[0][0])

        calls = self._until(up, 15)
        self._restart(self.cluster.sip, f"{calls or 0} call(s) up")

    def _restart_redis(self) -> None:
        redis = self.cluster.redis
        redis.stop()
        stopped = time.monotonic()
        self.note(f"Redis stopped (SIGTERM; {'AOF on' if redis.persist else 'no persistence'})")
        time.sleep(self.opts.redis_down_s)
        redis.start()
        self.note(f"Redis started again: down {time.monotonic() - stopped:.1f} s")


# --- counting, from the database ----------------------------------------------------------------------


@dataclass
class LoadResult:
    uploads: int
    uploads_acked: int
    uploads_retried: int
    acked_on_retry_as_duplicate: int
    calls_placed: int
    calls_answered: int
    calls_completed: int  # sipp saw the BYE answered
    call_rows: int
    recordings_in: int
    upload_recordings: int
    call_recordings: int
    cases_out: int
    duplicates: list[str]
    losses: list[str]
    failed: list[str]
    wait_max_s: float
    wait_p95_s: float
    settle_s: float  # from the end of the load until everything was a case (or the timeout)
    faults: list[Fault]
    notes: list[str] = field(default_factory=list)
    calls_while_sip_down: int = 0  # placed between the SIP node's kill and its being ready again


def _rows(engine: sa.Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as c:
        return list(c.execute(sa.text(sql), params))


def _settled(engine: sa.Engine, uploads: list[Upload], callers: list[Caller]) -> bool:
    if any(c.proc is not None and c.proc.poll() is None for c in callers):
        return False
    pending = _rows(engine, "SELECT count(*) FROM recordings WHERE status IN ('queued', 'transcribing')")[0][0]
    active = _rows(engine, "SELECT count(*) FROM calls WHERE status = 'active'")[0][0]
    shas = {r[0] for r in _rows(engine, "SELECT sha256 FROM recordings")}
    numbers = {r[0] for r in _rows(engine, "SELECT caller FROM calls WHERE recording_id IS NOT NULL")}
    return (not pending and not active and all(u.sha256 in shas for u in uploads if u.acked)
            and all(c.number in numbers for c in callers if c.answered))


def _wait_settled(engine: sa.Engine, uploads: list[Upload], callers: list[Caller], timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if _settled(engine, uploads, callers):
            break
        time.sleep(1.0)
    return time.monotonic() - t0


def _duplicates(engine: sa.Engine, recs: list[Any], calls: dict[str, list[Any]]) -> list[str]:
    """A recording with more than one case, the same upload stored twice, a call filed twice."""
    out = [f"recording #{rid} has {n} cases" for rid, n in _rows(
        engine, "SELECT recording_id, count(*) FROM cases GROUP BY recording_id HAVING count(*) > 1")]
    out += [f"{name} stored {n} times" for name, n in _rows(
        engine, "SELECT original_name, count(*) FROM recordings GROUP BY original_name HAVING count(*) > 1")]
    for number, rows in calls.items():
        if len(rows) > 1:
            out.append(f"call from {number} has {len(rows)} call rows")
        filed = [r for r in recs if r.channel == "来电" and f"-{number}-" in r.original_name]
        if len(filed) > 1:
            out.append(f"call from {number} became {len(filed)} recordings: " + ", ".join(f"#{r.id}" for r in filed))
    return out


def _job_state(r: Any) -> str:
    """A recording's job as the database has it, e.g. why nothing will pick it up before its lease runs out."""
    state = f"{r.status}, {r.attempts} attempt(s)"
    if r.lease_until is not None:
        state += f", lease until {r.lease_until.astimezone():%H:%M:%S} (the sweep takes it up again only then)"
    return state + (f", error: {r.error[:200]}" if r.error else "")


def _upload_losses(uploads: list[Upload], by_sha: dict[str, Any]) -> list[str]:
    """Uploads acknowledged with a 2xx that never became a case."""
    out = []
    for u in uploads:
        r = by_sha.get(u.sha256)
        if not u.acked or (r is not None and r.case_at is not None):
            continue
        state = "not on file" if r is None else f"recording #{r.id} without a case: {_job_state(r)}"
        out.append(f"{u.name} acknowledged ({u.status}) but {state}; sent: {', '.join(u.attempts)}")
    return out


def _call_losses(callers: list[Caller], calls: dict[str, list[Any]], recs: list[Any]) -> list[str]:
    """Calls sipp got answered that have no recording, or whose recording never became a case."""
    by_id = {r.id: r for r in recs}
    out = []
    for c in callers:
        rows = calls.get(c.number, [])
        filed = [by_id[r.recording_id] for r in rows if r.recording_id in by_id]
        if not c.answered or any(f.case_at is not None for f in filed):
            continue
        if not rows:
            out.append(f"answered call from {c.number}: no call row")
        elif not filed:
            row = rows[0]
            out.append(f"answered call from {c.number}: call #{row.id} {row.status} ({row.end_reason}, "
                       f"{row.error or 'no error'}) without a recording")
        else:
            out.append(f"answered call from {c.number}: recording #{filed[0].id} without a case: "
                       f"{_job_state(filed[0])}")
    return out


def count(engine: sa.Engine, uploads: list[Upload], callers: list[Caller], faults: list[Fault],
          settle_s: float) -> LoadResult:
    recs = _rows(engine, "SELECT r.id, r.sha256, r.original_name, r.channel, r.status, r.error, r.attempts, "
                         "r.lease_until, r.created_at AS received_at, c.created_at AS case_at "
                         "FROM recordings r LEFT JOIN cases c ON c.recording_id = r.id")
    by_sha = {r.sha256: r for r in recs}
    numbers = {c.number for c in callers}
    calls: dict[str, list[Any]] = {}
    for row in _rows(engine, "SELECT id, caller, status, recording_id, end_reason, error FROM calls"):
        if row.caller in numbers:
            calls.setdefault(row.caller, []).append(row)
    waits = [(r.case_at - r.received_at).total_seconds() for r in recs if r.case_at is not None]
    notes = [f"{u.name} never acknowledged ({', '.join(u.attempts)})" + (
        f" but on file as #{by_sha[u.sha256].id}" if u.sha256 in by_sha else "") for u in uploads if not u.acked]
    notes += [f"{u.name} sent {len(u.attempts)} times: {', '.join(u.attempts)}"
              + (" (answered as a duplicate)" if u.duplicate else "")
              for u in uploads if u.acked and len(u.attempts) > 1]
    return LoadResult(
        uploads=len(uploads), uploads_acked=sum(u.acked for u in uploads),
        uploads_retried=sum(len(u.attempts) > 1 for u in uploads),
        acked_on_retry_as_duplicate=sum(u.acked and u.duplicate for u in uploads),
        calls_placed=len(callers), calls_answered=sum(c.answered for c in callers),
        calls_completed=sum(c.completed for c in callers), call_rows=sum(len(rows) for rows in calls.values()),
        recordings_in=len(recs), upload_recordings=sum(r.channel != "来电" for r in recs),
        call_recordings=sum(r.channel == "来电" for r in recs), cases_out=sum(r.case_at is not None for r in recs),
        duplicates=_duplicates(engine, recs, calls), losses=_upload_losses(uploads, by_sha) + _call_losses(
            callers, calls, recs),
        failed=[f"recording #{r.id} ({r.original_name}): {r.error}" for r in recs if r.status == "failed"],
        wait_max_s=max(waits, default=0.0), wait_p95_s=float(np.percentile(waits, 95)) if waits else 0.0,
        settle_s=settle_s, faults=faults, notes=notes)


def run_load(cluster: Cluster, opts: ClusterOptions) -> LoadResult:
    uploads = make_uploads(opts, 1, opts.recordings)
    uploader = Uploader(cluster.apis, cluster.password)
    callers: list[Caller] = []
    used_ports: set[int] = set()
    t0 = time.monotonic()
    faults = Faults(cluster, opts, uploader, t0)
    injector = threading.Thread(target=faults.run, name="faults", daemon=True)
    injector.start()
    plan = sorted([(i * opts.window_s / max(1, opts.recordings), "upload", i) for i in range(opts.recordings)]
                  + [(0.5 + i * opts.window_s / max(1, opts.calls), "call", i) for i in range(opts.calls)])
    sender = threading.Thread(target=_send_all, args=(uploader, _paced(uploads, plan, t0, "upload")),
                              name="uploads", daemon=True)
    sender.start()
    try:
        for at, kind, i in plan:
            if kind == "call":
                time.sleep(max(0.0, t0 + at - time.monotonic()))
                callers.append(place_call(opts, cluster.root, i, cluster.sip.sip_port or 0, used_ports))
        sender.join()
        injector.join()
        if faults.error:
            raise faults.error
        console.print(f"load sent in {time.monotonic() - t0:.0f} s; waiting (up to {opts.timeout_s:.0f} s) "
                      "for every recording to become a case …")
        settle_s = _wait_settled(cluster.engine, uploads, callers, opts.timeout_s)
    finally:
        uploader.close()
        for c in callers:
            if c.proc is not None and c.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(c.proc.pid, signal.SIGKILL)
                c.proc.wait()
    result = count(cluster.engine, uploads, callers, faults.log, settle_s)
    down = faults.down.get(cluster.sip.name)
    result.calls_while_sip_down = sum(down is not None and down[0] <= c.started <= down[1] for c in callers)
    return result


def _send_all(uploader: Uploader, uploads: Iterator[Upload]) -> None:
    for u in uploads:
        uploader.send(u)


def _paced(items: list[Upload], plan: list[tuple[float, str, int]], t0: float, kind: str) -> Iterator[Upload]:
    for at, k, i in plan:
        if k == kind:
            time.sleep(max(0.0, t0 + at - time.monotonic()))
            yield items[i]


# --- throughput and the cost of encryption --------------------------------------------------------------


@dataclass
class Batch:
    label: str
    recordings: int
    seconds: float  # first upload sent → last case filed
    mean_import_to_case_s: float
    encrypted: int  # how many of them are stored encrypted
    at_once: bool = True  # uploaded together (a throughput figure), or one at a time, each waited for
    worker_cpu: list[float] = field(default_factory=list)  # each worker's CPU time / wall time (1.0: a whole core)

    @property
    def per_minute(self) -> float:
        return 60 * self.recordings / self.seconds if self.seconds else 0.0


@dataclass
class ThroughputResult:
    one_worker: Batch
    two_workers: Batch
    encrypted: Batch
    clear: Batch
    storage_path: StoragePath
    load_before: float  # the machine's 1-minute load average when the measurements began
    one_drain: Batch | None = None
    two_drain: Batch | None = None

    @property
    def ratio(self) -> float:
        """Worker throughput, two vs one: from the queue-drain batches (the workers' own work, with nothing else
        of the site running on their cores), else from the end-to-end batches."""
        one, two = (self.one_drain, self.two_drain) if self.one_drain and self.two_drain else (
            self.one_worker, self.two_workers)
        return two.per_minute / one.per_minute if one.per_minute else 0.0

    @property
    def end_to_end_ratio(self) -> float:
        return self.two_workers.per_minute / self.one_worker.per_minute if self.one_worker.per_minute else 0.0

    @property
    def encryption_cost(self) -> float:
        """What encryption adds to the storage path, in % of the import-to-case time in clear."""
        off = self.clear.mean_import_to_case_s
        return 100 * self.storage_path.added / off if off else 0.0

    @property
    def end_to_end_difference(self) -> float:
        """The same, read off the end-to-end times (noisier: one recording's time varies by seconds)."""
        off = self.clear.mean_import_to_case_s
        return 100 * (self.encrypted.mean_import_to_case_s - off) / off if off else 0.0


def _cases_for(engine: sa.Engine, shas: list[str]) -> dict[str, datetime]:
    rows = _rows(engine, "SELECT r.sha256, c.created_at FROM recordings r JOIN cases c ON c.recording_id = r.id "
                         "WHERE r.sha256 = ANY(:shas)", shas=list(shas)) if shas else []
    return {sha: _utc(at) for sha, at in rows}


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _encrypted(engine: sa.Engine, shas: list[str]) -> int:
    if "wrapped_key" not in {c["name"] for c in sa.inspect(engine).get_columns("recordings")}:
        return 0
    return int(_rows(engine, "SELECT count(*) FROM recordings WHERE wrapped_key IS NOT NULL AND sha256 = ANY(:shas)",
                     shas=list(shas))[0][0])


def _await_cases(engine: sa.Engine, uploads: list[Upload], timeout: float, poll: float = 0.5) -> dict[str, datetime]:
    shas = [u.sha256 for u in uploads if u.acked]
    deadline = time.monotonic() + timeout
    while True:
        done = _cases_for(engine, shas)
        if len(done) == len(shas):
            return done
        if time.monotonic() > deadline:
            raise ClusterError(f"{len(shas) - len(done)} of {len(shas)} recordings without a case after "
                               f"{timeout:.0f} s")
        time.sleep(poll)


def _batch_result(cluster: Cluster, label: str, uploads: list[Upload], cases: dict[str, datetime],
                  at_once: bool = True) -> Batch:
    first = min(u.started for u in uploads)
    last = max(cases[u.sha256].timestamp() for u in uploads)
    mean = float(np.mean([cases[u.sha256].timestamp() - u.started for u in uploads]))
    return Batch(label, len(uploads), last - first, mean, _encrypted(cluster.engine, [u.sha256 for u in uploads]),
                 at_once)


def _send(uploader: Uploader, upload: Upload) -> None:
    uploader.send(upload)
    if not upload.acked:
        raise ClusterError(f"{upload.name} not accepted: {', '.join(upload.attempts)}")


def batch(cluster: Cluster, opts: ClusterOptions, phase: int, label: str) -> Batch:
    """A fresh batch uploaded at once, alternating between the API processes; first upload → last case."""
    uploads = make_uploads(opts, phase, opts.batch)
    uploader = Uploader(cluster.apis, cluster.password)
    meters = [CpuMeter([psutil.Process(w.pid)]) for w in cluster.workers if w.alive and w.pid]
    cpu0, t0 = [m.seconds() for m in meters], time.monotonic()
    try:
        for u in uploads:
            _send(uploader, u)
    finally:
        uploader.close()
    result = _batch_result(cluster, label, uploads, _await_cases(cluster.engine, uploads, opts.timeout_s))
    wall = time.monotonic() - t0
    result.worker_cpu = [(m.seconds() - c) / wall for m, c in zip(meters, cpu0, strict=True)]
    return result


def drain(cluster: Cluster, opts: ClusterOptions, phase: int, label: str, workers: list[Node]) -> Batch:
    """Worker throughput alone: ``workers`` (running, their model loaded) are frozen with SIGSTOP while a fresh
    batch is uploaded and queued, then continued together; from SIGCONT to the last case filed. Uploads,
    storage and the API then take no CPU from the workers while they are measured, which the end-to-end batch
    (uploads while the workers run) cannot avoid on two cores."""
    uploads = make_uploads(opts, phase, opts.batch)
    _signal(workers, signal.SIGSTOP)
    try:
        uploader = Uploader(cluster.apis, cluster.password)
        try:
            for u in uploads:
                _send(uploader, u)
        finally:
            uploader.close()
    finally:
        meters = [CpuMeter([psutil.Process(w.pid)]) for w in workers if w.pid]
        cpu0 = [m.seconds() for m in meters]
        t0, started = time.time(), time.monotonic()
        _signal(workers, signal.SIGCONT)
    cases = _await_cases(cluster.engine, uploads, opts.timeout_s, poll=0.1)
    wall = time.monotonic() - started
    last = max(cases[u.sha256].timestamp() for u in uploads)
    mean = float(np.mean([cases[u.sha256].timestamp() - t0 for u in uploads]))
    result = Batch(label, len(uploads), last - t0, mean, _encrypted(cluster.engine, [u.sha256 for u in uploads]))
    result.worker_cpu = [(m.seconds() - c) / wall for m, c in zip(meters, cpu0, strict=True)]
    return result


def _signal(nodes: list[Node], sig: signal.Signals) -> None:
    for node in nodes:
        if node.pid:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.pid, sig)


def paired(cluster: Cluster, opts: ClusterOptions, phase: int) -> tuple[Batch, Batch]:
    """Import-to-case time with nothing queued before it, encrypted (through the first API process) and in
    clear (the second, started with HOTLINE_ENCRYPT_RECORDINGS=false), taking turns so that whatever else the
    machine does weighs on both alike."""
    uploads = make_uploads(opts, phase, 2 * max(1, opts.batch // 2))
    on, off = (Uploader([api], cluster.password) for api in cluster.apis)
    cases: dict[str, datetime] = {}
    try:
        for i, u in enumerate(uploads):
            _send(on if i % 2 == 0 else off, u)
            cases |= _await_cases(cluster.engine, [u], opts.timeout_s, poll=0.1)
    finally:
        on.close()
        off.close()
    return (_batch_result(cluster, "encrypted, one at a time", uploads[0::2], cases, at_once=False),
            _batch_result(cluster, "in clear, one at a time", uploads[1::2], cases, at_once=False))


@dataclass
class StoragePath:
    """Median seconds to store a recording (seal + put) and read it back whole (get + open + check), in clear
    and encrypted: the whole of what encryption adds to a recording's way to its case."""

    reps: int
    put_clear: float
    put_encrypted: float
    read_clear: float
    read_encrypted: float

    @property
    def added(self) -> float:
        return self.put_encrypted + self.read_encrypted - self.put_clear - self.read_clear


def _node_settings(node: Node, folder: Path, encrypt: bool) -> Any:
    """The Settings a node has, in a data dir of the bench's own."""
    from app.config import Settings

    env = {k[len("HOTLINE_"):].lower(): v for k, v in node.env.items() if k.startswith("HOTLINE_")}
    env.update(data_dir=str(folder), encrypt_recordings=str(encrypt).lower())
    return Settings.model_validate(env)


def measure_storage_path(cluster: Cluster, opts: ClusterOptions, reps: int = 12) -> StoragePath:
    """Store and read back the same kind of recording through the product's own code (app/recordings/files.py),
    against the cluster's store, in clear and encrypted by turns; every object is removed afterwards."""
    from app.recordings import files
    from app.recordings.models import Recording

    folder = cluster.root / "nodes" / "storage-probe"
    folder.mkdir(parents=True, exist_ok=True)
    times: dict[tuple[bool, str], list[float]] = {}
    for i, upload in enumerate(make_uploads(opts, 6, 2 * reps)):
        encrypt = i % 2 == 0
        settings = _node_settings(cluster.apis[0], folder, encrypt)
        settings.ensure_dirs()
        source = folder / "tmp" / upload.name
        source.write_bytes(upload.data)
        t0 = time.perf_counter()
        stored = files.put(settings, source=source, sha256=upload.sha256, size=len(upload.data), ext=".wav")
        t1 = time.perf_counter()
        rec = Recording(id=0, sha256=upload.sha256, path=stored.key, storage=stored.storage,
                        size_bytes=len(upload.data), stored_size=stored.stored_size,
                        key_id=stored.wrapped.key_id if stored.wrapped else None,
                        wrapped_key=stored.wrapped.blob if stored.wrapped else None)
        with files.local_copy(settings, rec) as copy:
            copy.stat()
        t2 = time.perf_counter()
        times.setdefault((encrypt, "put"), []).append(t1 - t0)
        times.setdefault((encrypt, "read"), []).append(t2 - t1)
        files.store(settings, stored.storage).delete(stored.key)
        source.unlink()
    med = {k: float(np.median(v)) for k, v in times.items()}
    return StoragePath(reps, med[False, "put"], med[True, "put"], med[False, "read"], med[True, "read"])


def fresh_site(cluster: Cluster, opts: ClusterOptions) -> tuple[str, str]:
    """A new database and an empty queue (Redis database 1) for the measurements, the API processes started
    again on them: nothing the faults left behind (a job parked until its lease runs out) runs in the middle of
    a measurement. Returns the new database's (URL, name)."""
    for node in (cluster.sip, *cluster.workers):
        node.stop()
    url, name = _scratch_database(opts.postgres_url)
    for node in cluster.nodes:
        node.env["HOTLINE_DATABASE_URL"] = url
        node.env["HOTLINE_REDIS_URL"] = cluster.redis.url.rsplit("/", 1)[0] + "/1"
    cluster.password = _create_admin(cluster.apis[0].env, cluster.root)
    cluster.engine.dispose()
    cluster.engine = sa.create_engine(url, pool_pre_ping=True)
    for api in cluster.apis:
        _restart(api)
    return url, name


def run_throughput(cluster: Cluster, opts: ClusterOptions) -> ThroughputResult:
    one, two = cluster.workers
    load_before = os.getloadavg()[0]
    _restart(one)
    one_worker = batch(cluster, opts, 2, "1 worker (core 0)")
    one_drain = drain(cluster, opts, 7, "queued, then 1 worker", [one])
    _restart(two)
    two_workers = batch(cluster, opts, 3, "2 workers (cores 0, 1)")
    two_drain = drain(cluster, opts, 8, "queued, then 2 workers", [one, two])
    two.stop()
    clear = cluster.apis[1]
    clear.env["HOTLINE_ENCRYPT_RECORDINGS"] = "false"
    _restart(clear)
    encrypted, in_clear = paired(cluster, opts, 4)
    return ThroughputResult(one_worker, two_workers, encrypted, in_clear, measure_storage_path(cluster, opts),
                            load_before, one_drain, two_drain)


def _restart(node: Node) -> None:
    node.stop()
    node.start()
    node.wait_ready()


# --- printing -------------------------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "[green]ok[/]" if ok else "[red]MISSED[/]"


def print_load(r: LoadResult, opts: ClusterOptions) -> None:
    t = Table(title="Load with faults", title_justify="left")
    t.add_column("")
    t.add_column("figure", justify="right")
    t.add_column("target")
    t.add_row("recordings uploaded / acknowledged", f"{r.uploads} / {r.uploads_acked}", "")
    t.add_row("  sent again after a failure / answered as a duplicate", f"{r.uploads_retried} / "
              f"{r.acked_on_retry_as_duplicate}", "")
    t.add_row("calls placed / answered / seen through by sipp", f"{r.calls_placed} / {r.calls_answered} / "
              f"{r.calls_completed}", "")
    t.add_row("  placed while the SIP node was down (a caller gives up after 32 s)",
              str(r.calls_while_sip_down), "")
    t.add_row("call rows", str(r.call_rows), "")
    t.add_row("recordings in (uploads + calls)", f"{r.recordings_in} ({r.upload_recordings} + {r.call_recordings})",
              "")
    t.add_row("cases out", str(r.cases_out), "")
    t.add_row("duplicates", str(len(r.duplicates)), f"0 {_verdict(not r.duplicates)}")
    t.add_row("losses", str(len(r.losses)), f"0 {_verdict(not r.losses)}")
    t.add_row("transcriptions failed for good", str(len(r.failed)), "")
    t.add_row("longest wait, recording → case", f"{r.wait_max_s:.1f} s (p95 {r.wait_p95_s:.1f} s)", "")
    t.add_row("settled after the load in", f"{r.settle_s:.0f} s", f"≤ {opts.timeout_s:.0f} s")
    console.print(t)
    console.print("Faults injected (seconds after the load started):")
    for f in r.faults:
        console.print(f"  {f.at:6.1f} s  {f.wall:%H:%M:%S}  {f.what}")
    for title, items in (("Duplicates", r.duplicates), ("Losses", r.losses), ("Failed", r.failed),
                         ("Notes", r.notes)):
        if items:
            console.print(f"{title}:")
            for item in items:
                console.print(f"  - {item}")


def print_throughput(r: ThroughputResult) -> None:
    t = Table(title="Throughput (workers pinned: taskset -c 0 / -c 1) and the cost of encryption at rest; load "
                    f"average {r.load_before:.1f} before, {os.getloadavg()[0]:.1f} after", title_justify="left")
    for col in ("batch", "recordings", "wall", "per minute", "worker CPU (of a core)", "mean import → case",
                "stored encrypted"):
        t.add_column(col, justify="left" if col == "batch" else "right")
    drains = [b for b in (r.one_drain, r.two_drain) if b is not None]
    for b in (r.one_worker, r.two_workers, *drains, r.encrypted, r.clear):
        t.add_row(b.label, str(b.recordings), f"{b.seconds:.1f} s" if b.at_once else "-",
                  f"{b.per_minute:.1f}" if b.at_once else "-", " + ".join(f"{100 * c:.0f}%" for c in b.worker_cpu)
                  or "-", f"{b.mean_import_to_case_s:.2f} s", str(b.encrypted))
    console.print(t)
    console.print(f"two workers vs one: {r.ratio:.2f}× (target ≥ 1.8× {_verdict(r.ratio >= 1.8)})"
                  + (f", from the queued batches (workers only); end to end with uploads during the batch "
                     f"{r.end_to_end_ratio:.2f}×" if drains else ""))
    one, two = (r.one_drain, r.two_drain) if r.one_drain and r.two_drain else (r.one_worker, r.two_workers)
    if one.worker_cpu and two.worker_cpu:
        per_cpu = [60 * b.recordings / (sum(b.worker_cpu) * b.seconds) for b in (one, two)]
        console.print(f"  recordings per CPU-minute the workers got: {per_cpu[0]:.1f} with one, {per_cpu[1]:.1f} "
                      "with two (equal: the work scales; a worker below 100% of its core lost it to other "
                      "processes)")
    p = r.storage_path
    console.print(f"storage path, median of {p.reps} each: store {1000 * p.put_clear:.0f} ms in clear, "
                  f"{1000 * p.put_encrypted:.0f} ms encrypted; read back {1000 * p.read_clear:.0f} ms / "
                  f"{1000 * p.read_encrypted:.0f} ms")
    console.print(f"encryption at rest adds {1000 * p.added:+.0f} ms = {r.encryption_cost:+.1f}% of the "
                  f"import-to-case time (target ≤ 5% {_verdict(r.encryption_cost <= 5)}); end to end, "
                  f"one at a time by turns: {r.end_to_end_difference:+.1f}%")


def _describe(opts: ClusterOptions) -> None:
    storage = ("SeaweedFS S3 (s3://" + BUCKET + "/site1)" if opts.storage == "s3"
               else "one local folder symlinked into every node's data dir (no S3)")
    console.print(f"hotline bench cluster: {opts.recordings} uploads ({opts.clip_seconds:g} s stereo each) and "
                  f"{opts.calls} sipp calls ({opts.call_seconds:g} s) over {opts.window_s:g} s; seed {opts.seed}")
    console.print(f"  PostgreSQL (scratch database), Redis ({'AOF' if opts.redis_persist else 'no persistence'}), "
                  f"{storage}, recordings encrypted at rest")
    console.print(f"  2 API processes, 2 workers pinned with taskset -c 0 / -c 1 (nice {WORKER_NICE}), 1 SIP node "
                  f"(greeting: {opts.greeting or 'none'}); {os.cpu_count()} cores; "
                  f"Whisper beam {opts.beam_size or 'as configured'}")


def print_failure_logs(cluster: Cluster, result: LoadResult) -> None:
    """After a loss or a duplicate: the errors each node logged, to start the hunt from."""
    if not (result.losses or result.duplicates):
        return
    for node in cluster.nodes:
        text = node.log.read_text(errors="replace") if node.log.exists() else ""
        errors = [line for line in text.splitlines() if " ERROR " in line or " WARNING " in line
                  or line.startswith("Traceback")]
        if errors:
            console.print(f"[bold]{node.name}[/] ({node.log}), errors and warnings:")
            console.print("\n".join(errors[-15:]), markup=False)


# --- the whole run ---------------------------------------------------------------------------------------


@dataclass
class Results:
    load: LoadResult
    throughput: ThroughputResult | None

    @property
    def ok(self) -> bool:
        return not (self.load.losses or self.load.duplicates)


def run(opts: ClusterOptions) -> Results:
    root = Path(tempfile.mkdtemp(prefix="hotline-bench-cluster-"))
    databases = [_scratch_database(opts.postgres_url)]
    keep = opts.keep
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        _describe(opts)
        cluster = start_cluster(opts, root, databases[0][0])
        try:
            console.print(f"cluster up: logs in {root / 'logs'}")
            load = run_load(cluster, opts)
            print_load(load, opts)
            print_failure_logs(cluster, load)
            keep = keep or bool(load.losses or load.duplicates)
            throughput = None
            if not opts.skip_throughput:
                databases.append(fresh_site(cluster, opts))
                throughput = run_throughput(cluster, opts)
                print_throughput(throughput)
        finally:
            stop_cluster(cluster)
        return Results(load, throughput)
    except ClusterError:
        keep = True
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        if keep:
            console.print(f"kept {root} (logs, data dirs, sipp traces) and the database(s) "
                          + ", ".join(url for url, _ in databases))
        else:
            for _, name in databases:
                _drop_database(opts.postgres_url, name)
            shutil.rmtree(root, ignore_errors=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
