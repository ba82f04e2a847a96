"""`hotline bench sip`: N concurrent sipp calls of S seconds each into a real `hotline sip`.

Prints per-call RTP packets sent/received/lost (as the adapter's media engine counted them), SIP
response times as sipp measured them (INVITE → 200 OK and BYE → 200 OK), and the CPU used by the SIP
process, the media engine and sipp. The audio streamed is the bundled greeting, looped to length; the
adapter runs in a scratch data dir with no transcription worker, so only telephony is measured.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import sqlalchemy as sa

from app.bench.spine import free_port
from telephony import g711

SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="bench caller">
  <send retrans="500" start_rtd="1">
    <![CDATA[
      INVITE sip:12351@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:138[call_number]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:12351@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:caller@[local_ip]:[local_port]>
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
  <recv response="200" rtd="1"/>
  <send>
    <![CDATA[
      ACK sip:12351@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:138[call_number]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:12351@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <nop><action><exec rtp_stream="{audio},1,0"/></action></nop>
  <pause milliseconds="{pause_ms}"/>
  <send retrans="500" start_rtd="2">
    <![CDATA[
      BYE sip:12351@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:138[call_number]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:12351@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" rtd="2"/>
</scenario>
"""


@dataclass
class CpuMeter:
    """CPU seconds some processes have used so far (a process that is gone counts 0)."""

    procs: list[psutil.Process]

    def seconds(self) -> float:
        total = 0.0
        for p in self.procs:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total


def _audio(seconds: float, folder: Path) -> tuple[Path, int]:
    """The bundled greeting looped to ``seconds``, as raw μ-law; returns the file and its packet count."""
    from telephony.media import load_greeting
    from telephony.options import BUNDLED_GREETING

    greeting = load_greeting(str(BUNDLED_GREETING))
    assert greeting is not None
    one = b"".join(greeting.frames[g711.PCMU])
    packets = int(seconds * 50)
    data = (one * (packets * 160 // len(one) + 1))[: packets * 160]
    path = folder / "bench.ulaw"
    path.write_bytes(data)
    return path, packets


def _percentiles(values: list[float]) -> str:
    if not values:
        return "n/a"
    a = np.array(values)
    return (f"p50 {np.percentile(a, 50):.1f} ms, p95 {np.percentile(a, 95):.1f} ms, "
            f"p99 {np.percentile(a, 99):.1f} ms, max {a.max():.1f} ms (n={len(a)})")


def run(calls: int, seconds: float, rate: float, keep: bool) -> None:
    sipp = shutil.which("sipp")
    if not sipp:
        sys.exit("sipp is not installed (Debian package sip-tester)")
    data = Path(tempfile.mkdtemp(prefix="hotline-bench-sip-"))
    audio, packets = _audio(seconds, data)
    port = free_port()
    env = {**os.environ, "HOTLINE_DATA_DIR": str(data / "var"), "HOTLINE_SIP_PORT": str(port),
           "HOTLINE_SIP_RATE_LIMIT": str(max(200.0, rate * 10)), "HOTLINE_SIP_RTP_TIMEOUT_S": "60",
           "HOTLINE_RTP_PORT_MIN": "20000", "HOTLINE_RTP_PORT_MAX": str(20000 + 4 * calls + 100)}
    env.pop("HOTLINE_DATABASE_URL", None)
    log = (data / "sip.log").open("wb")
    adapter = subprocess.Popen([sys.executable, "-m", "app.cli", "sip"], env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_ready(data / "sip.log", adapter)
        sip_proc = psutil.Process(adapter.pid)
        children = sip_proc.children()
        media_proc = next(p for p in children if "telephony.media" in " ".join(p.cmdline()))
        others = [p for p in children if p.pid != media_proc.pid]  # the filing process (and its tracker)
        meters = {"SIP process": CpuMeter([sip_proc]), "media engine": CpuMeter([media_proc]),
                  "filing process": CpuMeter(others)}
        before = {k: m.seconds() for k, m in meters.items()}
        scenario = data / "bench.xml"
        pause_ms = int(seconds * 1000) + 500  # the stream's last packets leave before the BYE
        scenario.write_text(SCENARIO.replace("{audio}", str(audio)).replace("{pause_ms}", str(pause_ms)))
        print(f"{calls} calls of {seconds:.0f} s at {rate:g} calls/s into 127.0.0.1:{port} (sipp) …", flush=True)
        wall = time.monotonic()
        result = subprocess.Popen([sipp, f"127.0.0.1:{port}", "-sf", str(scenario), "-m", str(calls), "-l", str(calls),
                                   "-r", str(rate), "-i", "127.0.0.1", "-mi", "127.0.0.1", "-mp", "40000",
                                   "-rtp_buffsize", "1048576",
                                   "-nostdin", "-trace_rtt", "-rtt_freq", "1", "-trace_err",
                                   "-timeout", f"{int(seconds * 3 + calls / rate + 120)}s"],
                                  cwd=data, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        sipp_meter = CpuMeter([psutil.Process(result.pid)])
        sipp_cpu = 0.0
        while result.poll() is None:
            sipp_cpu = max(sipp_cpu, sipp_meter.seconds())
            time.sleep(0.2)
        elapsed = time.monotonic() - wall
        cpu = {k: meters[k].seconds() - before[k] for k in meters}
        cpu["sipp"] = sipp_cpu
        out = result.stdout.read() if result.stdout else ""
        _report(data, calls, packets, elapsed, cpu, result.returncode, out)
    finally:
        adapter.send_signal(signal.SIGTERM)
        try:
            adapter.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(adapter.pid, signal.SIGKILL)
        log.close()
        if not keep:
            shutil.rmtree(data, ignore_errors=True)
        else:
            print(f"kept {data}")


def _wait_ready(log: Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while "SIP adapter on" not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"the SIP adapter did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.1)


def _rtts(data: Path) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"1": [], "2": []}
    for path in data.glob("*_rtt.csv"):
        with path.open() as f:
            for row in csv.reader(f, delimiter=";"):
                if len(row) >= 3 and row[2].strip() in out:
                    out[row[2].strip()].append(float(row[1]))
    return out


def _legs(data: Path, calls: int) -> list[dict[str, int]]:
    """Each finished call's RTP statistics, as recorded by the adapter (waits for the filing to finish)."""
    from app.calls.models import Call

    engine = sa.create_engine(f"sqlite:///{data / 'var' / 'hotline.db'}")
    deadline = time.monotonic() + 120
    rows: list[Any] = []
    while time.monotonic() < deadline:
        with engine.connect() as c:
            rows = list(c.execute(sa.select(Call.status, Call.events)))
        if len(rows) >= calls and all(r[0] != "active" for r in rows):
            break
        time.sleep(0.5)
    engine.dispose()
    legs: list[dict[str, int]] = []
    for _status, raw in rows:
        events: list[dict[str, Any]] = json.loads(raw) if isinstance(raw, str) else raw  # type: ignore[assignment]
        legs += [e["legs"].get("caller", {}) for e in events if e.get("event") == "rtp"]
    return legs


def _report(data: Path, calls: int, packets: int, elapsed: float, cpu: dict[str, float], rc: int, out: str) -> None:
    legs = _legs(data, calls)
    received = [leg.get("received", 0) for leg in legs]
    lost = [max(0, packets - r) for r in received]
    rtt = _rtts(data)
    ok = sum(1 for leg in legs if leg)
    print(f"sipp exit code {rc}; {ok} of {calls} calls recorded; wall {elapsed:.1f} s")
    if rc != 0:
        print(out[-2500:])
    if received:
        print(f"RTP per call: sent {packets}, received min {min(received)} / max {max(received)}, "
              f"lost min {min(lost)} / max {max(lost)}; total sent {packets * calls}, received {sum(received)}, "
              f"lost {packets * calls - sum(received)}; late {sum(leg.get('late', 0) for leg in legs)}")
    print(f"SIP INVITE → 200 OK: {_percentiles(rtt['1'])}")
    print(f"SIP BYE → 200 OK:    {_percentiles(rtt['2'])}")
    both = rtt["1"] + rtt["2"]
    print(f"SIP all responses:   {_percentiles(both)}")
    cores = psutil.cpu_count() or 1
    print("CPU: " + ", ".join(f"{k} {v:.1f} s ({100 * v / elapsed:.0f}% of one core)" for k, v in cpu.items())
          + f"; {cores} cores")
