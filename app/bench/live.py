"""`hotline bench live`: dev-corpus calls played in real time into a real `hotline serve`, live text measured.

Each call is sent as a SIPREC session (caller and agent on their own labelled streams, each leg's μ-law
file streamed at 20 ms per packet) so both parties are heard, as with a PBX that forks its calls to us.
A WebSocket client per call (the same endpoint the staff console uses) timestamps every event. Printed:

- delay from the end of each utterance in the audio (the truth file's turn end) to the final event that
  covers it: p50/p95/max;
- interval between partial updates while someone speaks (and from speech start to the first partial);
- CPU of the whole `hotline serve` tree;
- CER of the live finals against the truth, and of the post-call transcription of the same calls.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

from app.bench.sip import CpuMeter
from app.bench.spine import free_port
from telephony import rtp

METADATA = """<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns="urn:ietf:params:xml:ns:recording:1">
  <datamode>complete</datamode>
  <participant participant_id="p1"><nameID aor="sip:{caller}@carrier"/></participant>
  <participant participant_id="p2"><nameID aor="sip:8001@pbx"/></participant>
  <stream stream_id="s1"><label>1</label></stream>
  <stream stream_id="s2"><label>2</label></stream>
  <participantstreamassoc participant_id="p1"><send>s1</send></participantstreamassoc>
  <participantstreamassoc participant_id="p2"><send>s2</send></participantstreamassoc>
</recording>"""


@dataclass
class Played:
    name: str
    caller: str
    turns: list[dict[str, Any]]
    audio_start: float = 0.0  # wall time of the first RTP packet (audio time 0)
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)  # (received at, event)


def _siprec_invite(port: int, local: int, media: int, caller: str, call_id: str) -> bytes:
    sdp = ("v=0\r\no=bench 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           f"m=audio {media} RTP/AVP 0\r\na=label:1\r\na=sendonly\r\n"
           f"m=audio {media + 2} RTP/AVP 0\r\na=label:2\r\na=sendonly\r\n")
    body = (f"--b\r\nContent-Type: application/sdp\r\n\r\n{sdp}\r\n--b\r\n"
            f"Content-Type: application/rs-metadata+xml\r\n\r\n{METADATA.format(caller=caller)}\r\n--b--\r\n")
    head = (f"INVITE sip:srs@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
            f"From: <sip:src@127.0.0.1:{local}>;tag=bench\r\nTo: <sip:srs@127.0.0.1:{port}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:src@127.0.0.1:{local}>;+sip.src\r\n"
            f"Require: siprec\r\nMax-Forwards: 70\r\nContent-Type: multipart/mixed;boundary=b\r\n"
            f"Content-Length: {len(body.encode())}\r\n\r\n")
    return (head + body).encode()


def _request(method: str, port: int, local: int, call_id: str, to_tag: str, cseq: int) -> bytes:
    return (f"{method} sip:srs@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
            f"From: <sip:src@127.0.0.1:{local}>;tag=bench\r\nTo: <sip:srs@127.0.0.1:{port}>;tag={to_tag}\r\n"
            f"Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode()


def _play(corpus: Path, played: Played, port: int) -> None:
    """One SIPREC session: INVITE, stream both legs in real time, BYE."""
    legs = [(corpus / f"{played.name}_caller.ulaw").read_bytes(), (corpus / f"{played.name}_agent.ulaw").read_bytes()]
    sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sip.bind(("127.0.0.1", 0))
    sip.settimeout(10)
    local = sip.getsockname()[1]
    call_id = uuid.uuid4().hex
    media = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in legs]
    for m in media:
        m.bind(("127.0.0.1", 0))
    sip.sendto(_siprec_invite(port, local, media[0].getsockname()[1], played.caller, call_id), ("127.0.0.1", port))
    while True:
        answer = sip.recv(65535).decode()
        if answer.startswith("SIP/2.0 200"):
            break
    to_header = next(line for line in answer.split("\r\n") if line.lower().startswith("to:"))
    to_tag = to_header.split(";tag=", 1)[1].split(";")[0]
    ports = [int(p) for p in re.findall(r"m=audio (\d+)", answer)]
    sip.sendto(_request("ACK", port, local, call_id, to_tag, 1), ("127.0.0.1", port))
    packets = max(len(leg) for leg in legs) // 160
    played.audio_start = time.time()
    start = time.monotonic()
    for i in range(packets):
        for leg, sock, dest in zip(legs, media, ports, strict=True):
            payload = leg[i * 160:(i + 1) * 160]
            if len(payload) == 160:
                sock.sendto(rtp.build(payload_type=0, seq=i, timestamp=i * 160, ssrc=id(sock) & 0xFFFF,
                                      payload=payload), ("127.0.0.1", dest))
        time.sleep(max(0.0, start + (i + 1) * 0.02 - time.monotonic()))
    time.sleep(1.0)
    sip.sendto(_request("BYE", port, local, call_id, to_tag, 2), ("127.0.0.1", port))
    with contextlib.suppress(TimeoutError):
        reply = sip.recv(65535).decode()
        if not reply.startswith("SIP/2.0 200"):
            print(f"  {played.name}: BYE answered {reply.split(chr(13), 1)[0]}")
    for s in (sip, *media):
        s.close()


def _listen(base: str, token: str, calls: dict[str, Played], stop: threading.Event) -> None:
    """The feed: for each call started, a per-call client that timestamps its events."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    by_caller = {p.caller: p for p in calls.values()}
    ws_base = base.replace("http://", "ws://")
    with connect(f"{ws_base}/api/v1/calls/live?token={token}") as feed:
        while not stop.is_set():
            try:
                event = json.loads(feed.recv(timeout=0.5))
            except TimeoutError:
                continue
            except ConnectionClosed:
                return
            played = by_caller.get(event.get("caller", ""))
            if event.get("type") == "call_started" and played:
                threading.Thread(target=_follow, args=(ws_base, token, event["call_id"], played), daemon=True).start()


def _follow(ws_base: str, token: str, call_id: str, played: Played) -> None:
    from websockets.sync.client import connect

    with connect(f"{ws_base}/api/v1/calls/{call_id}/live?token={token}") as ws:
        for message in ws:
            event = json.loads(message)
            played.events.append((time.time(), event))
            if event.get("type") == "call_ended":
                return


def _delays(p: Played) -> list[float]:
    """Per truth turn: when the last final covering it arrived, after the turn ended in the audio."""
    finals = [(t, e) for t, e in p.events if e.get("type") == "final"]
    # event times count from the INVITE; audio time 0 is the first packet: align on the wall clock
    lead = p.audio_start - min((t for t, e in p.events if e.get("type") == "call_started"), default=p.audio_start)
    out = []
    for turn in p.turns:
        hits = [t for t, e in finals if e["role"] == turn["role"]
                and e["start"] - lead - 0.3 < turn["end"] and e["end"] - lead + 0.3 > turn["start"]]
        if hits:
            out.append(max(hits) - (p.audio_start + turn["end"]))
    return out


def _partial_gaps(p: Played) -> list[float]:
    gaps = []
    last: dict[tuple[str, int], float] = {}
    for t, e in p.events:
        if e.get("type") == "partial":
            key = (e["role"], e["utterance"])
            if key in last:
                gaps.append(t - last[key])
            last[key] = t
    return gaps


def _cer(p: Played, texts: list[tuple[float, str, str]]) -> tuple[int, int]:
    from asr.metrics import char_errors

    ref = "".join(t["text"] for t in sorted(p.turns, key=lambda t: t["start"]))
    hyp = "".join(text for _start, _role, text in sorted(texts))
    return char_errors(ref, hyp)


def _stats(values: list[float]) -> str:
    if not values:
        return "n/a"
    a = np.array(values)
    return f"p50 {np.percentile(a, 50):.2f} s, p95 {np.percentile(a, 95):.2f} s, max {a.max():.2f} s (n={len(a)})"


def run(corpus: Path, names: list[str], concurrent: int, post_call: bool) -> None:
    data = Path(tempfile.mkdtemp(prefix="hotline-bench-live-"))
    print(f"scratch data dir and serve.log: {data}")
    http, sip = free_port(), free_port()
    env = {**os.environ, "HOTLINE_DATA_DIR": str(data), "HOTLINE_HTTP_PORT": str(http), "HOTLINE_SIP_PORT": str(sip),
           "HOTLINE_LIVE_MAX_CALLS": str(2 * concurrent), "HOTLINE_SIP_GREETING": ""}
    for k in ("HOTLINE_DATABASE_URL", "HOTLINE_REDIS_URL"):
        env.pop(k, None)
    log = (data / "serve.log").open("wb")
    serve = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--workers", "0"], env=env, stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{http}"
    try:
        _wait(lambda: "live transcription listening" in (data / "serve.log").read_text(), 120, serve, data)
        _wait(lambda: "SIP adapter on" in (data / "serve.log").read_text(), 60, serve, data)
        password = (data / "initial-admin-password.txt").read_text().strip()
        token = httpx.post(f"{base}/api/v1/auth/token", data={"username": "admin", "password": password}).json()[
            "access_token"]
        played = {n: Played(n, f"1380000{i:04d}", json.loads((corpus / f"{n}.json").read_text())["turns"])
                  for i, n in enumerate(names)}
        stop = threading.Event()
        threading.Thread(target=_listen, args=(base, token, played, stop), daemon=True).start()
        time.sleep(1.0)
        tree = [psutil.Process(serve.pid), *psutil.Process(serve.pid).children(recursive=True)]
        meter = CpuMeter(tree)
        cpu0 = meter.seconds()
        wall = time.monotonic()
        for i in range(0, len(names), concurrent):
            group = [threading.Thread(target=_play, args=(corpus, played[n], sip)) for n in names[i:i + concurrent]]
            for t in group:
                t.start()
            for t in group:
                t.join()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(
                any(e.get("type") == "call_ended" for _, e in p.events) for p in played.values()):
            time.sleep(0.2)
        elapsed = time.monotonic() - wall
        cpu = (meter.seconds() - cpu0) / elapsed
        stop.set()
        _report(played, concurrent, cpu, corpus, post_call)
    finally:
        serve.send_signal(signal.SIGINT)
        try:
            serve.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(serve.pid, signal.SIGKILL)
        log.close()


def _wait(check: Any, timeout: float, proc: subprocess.Popen[bytes], data: Path) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"hotline serve did not come up:\n{(data / 'serve.log').read_text()[-3000:]}")
        time.sleep(0.2)


def _report(played: dict[str, Played], concurrent: int, cpu: float, corpus: Path, post_call: bool) -> None:
    delays = [d for p in played.values() for d in _delays(p)]
    gaps = [g for p in played.values() for g in _partial_gaps(p)]
    turns = sum(len(p.turns) for p in played.values())
    print(f"{len(played)} calls, {concurrent} at a time, real time; {turns} utterances in the truth files")
    for p in played.values():
        kinds = [e.get("type") for _, e in p.events]
        print(f"  {p.name}: {kinds.count('final')} finals, {kinds.count('partial')} partials, "
              f"{'ended' if 'call_ended' in kinds else 'NOT ENDED'}")
    print(f"final delay after the end of each utterance: {_stats(delays)}; {turns - len(delays)} without a final")
    print(f"partial updates while speaking, interval: {_stats(gaps)}")
    print(f"CPU of the hotline serve tree: {100 * cpu:.0f}% of one core ({os.cpu_count()} cores)")
    errors = total = 0
    for p in played.values():
        e, n = _cer(p, [(ev["start"], ev["role"], ev["text"]) for _, ev in p.events if ev.get("type") == "final"])
        errors, total = errors + e, total + n
    line = f"CER of the live finals: {100 * errors / max(total, 1):.1f}%"
    if post_call:
        line += f"; post-call transcription of the same calls: {100 * _post_call_cer(played, corpus):.1f}%"
    print(line)


def _post_call_cer(played: dict[str, Played], corpus: Path) -> float:
    from app.config import Settings
    from app.transcripts.flows import asr_options
    from asr.worker import transcribe_file

    settings = Settings()
    errors = total = 0
    for p in played.values():
        result = transcribe_file(corpus / f"{p.name}.wav", asr_options(settings, "caller-left"), settings.models_dir)
        e, n = _cer(p, [(s.start, s.speaker, s.text) for s in result.segments])
        errors, total = errors + e, total + n
    return errors / max(total, 1)
