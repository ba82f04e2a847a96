"""The SIP user-agent server (RFC 3261) and SIPREC recording server (RFC 7866) on asyncio, UDP and TCP.

What arrives and what we answer:

- INVITE: 100 Trying, 180 Ringing, then (after ``answer_delay``) 200 OK with an SDP answer; the 200 is
  resent (T1, 2·T1 … T2) until the ACK comes, and after 64·T1 without one the call is ended with BYE.
  A multipart INVITE with ``application/rs-metadata+xml`` is a SIPREC session: every stream is answered
  ``recvonly`` and mapped to caller/agent through the metadata.
- ACK, BYE (200; 481 outside a dialog), CANCEL (200, then 487 for the INVITE if not yet answered),
  OPTIONS (200 with Allow), INFO (200; ``application/dtmf-relay`` digits kept), re-INVITE (hold/resume:
  the answer mirrors the offer's direction), anything else 405.
- No common codec: 488. Bad SDP or a request missing a mandatory header: 400 with the reason.
  Unparseable bytes: dropped and counted. Oversized: 513. Source outside ``allowed_sources``: 403.
  Over the per-source rate: INVITE gets 503 with Retry-After, other requests are dropped.
- Retransmitted requests are answered from their transaction, never processed twice.

Media runs in ``telephony.media`` (another process); this module only tells it what to do, and hands it
each call's data key (``SipOptions.keys``) with the call's streams, over their private control socket. When
a call ends, its legs are closed there first, then ``CallSink.finished`` files the call, on a worker thread so
the event loop keeps answering.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
import socket
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from telephony.media_client import MediaClient
from telephony.numbers import caller_id, first_caller_id
from telephony.options import SipOptions
from telephony.recorder import CallManifest, process_owner
from telephony.sip import sdp, siprec
from telephony.sip.message import BadRequest, SipMessage, StreamFramer, Unparseable, new_tag, parse, response, uri_user

log = logging.getLogger("hotline.sip")

T1, T2 = 0.5, 4.0
TIMER_64 = 64 * T1
ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO"
KEEPALIVE_PROBES = 3
Addr = tuple[Any, ...]


class CallSink(Protocol):
    """Where finished calls go (the platform: recording → transcript → case). Called on a worker thread."""

    def started(self, manifest: CallManifest) -> None: ...

    def finished(self, folder: Path, manifest: CallManifest) -> None: ...


class Transport(Protocol):
    reliable: bool

    def send(self, data: bytes, addr: Addr) -> None: ...


@dataclass
class Stats:
    requests: int = 0
    dropped: int = 0  # unparseable, or over the rate limit
    retransmissions: int = 0
    calls: int = 0
    idle_closed: int = 0  # TCP connections closed for saying nothing
    refused_connections: int = 0  # TCP connections over the per-source limit


@dataclass
class ServerTransaction:
    key: tuple[str, ...]
    method: str
    transport: Transport
    addr: Addr
    last: bytes | None = None
    final: int = 0
    timer: asyncio.TimerHandle | None = None


@dataclass
class CallStream:
    stream_id: str
    role: str
    port: int
    choice: sdp.Choice | None
    label: str = ""
    direction: str = "sendrecv"
    offered: tuple[int, ...] = ()
    kind: str = "audio"


@dataclass
class SipCall:
    manifest: CallManifest
    folder: Path
    invite: SipMessage
    transport: Transport
    addr: Addr
    local_tag: str
    local_address: str
    streams: list[CallStream]
    siprec: bool
    state: str = "early"  # early → confirmed → ended
    sdp_version: int = 1
    cseq_out: int = 0
    invite_txn: ServerTransaction | None = None
    ok: bytes | None = None  # our 200 OK, resent until ACK
    retransmit: asyncio.TimerHandle | None = None
    answer_task: asyncio.TimerHandle | None = None

    @property
    def remote_tag(self) -> str:
        return self.invite.from_tag


class UserAgentServer:
    def __init__(self, opts: SipOptions, media: MediaClient, sink: CallSink) -> None:
        self.opts = opts
        self.media = media
        self.sink = sink
        self.calls: dict[str, SipCall] = {}  # by SIP Call-ID
        self.by_stream: dict[str, SipCall] = {}
        self.txns: dict[tuple[str, ...], ServerTransaction] = {}
        self.client_txns: dict[str, asyncio.TimerHandle] = {}  # our BYEs, by branch
        self.stats = Stats()
        self.networks = [ipaddress.ip_network(n) for n in opts.allowed_sources]
        self.buckets: dict[str, tuple[float, float]] = {}
        self.secret = secrets.token_bytes(16)
        self.filing = ThreadPoolExecutor(1, thread_name_prefix="filing")
        self.next_port = opts.rtp_port_min
        self.ended = asyncio.Event()  # set when the last call has been filed
        self._finishing = 0
        self.tcp: dict[str, set[TcpConnection]] = {}  # open TCP connections by source address
        self.refusals_logged: dict[str, float] = {}
        media.on_event = self.on_media_event

    # --- entry --------------------------------------------------------------------------------------

    def receive(self, data: bytes, transport: Transport, addr: Addr) -> None:
        try:
            msg = parse(data)
        except BadRequest as e:
            self._refuse_bad(e, transport, addr)
            return
        except (Unparseable, UnicodeDecodeError, ValueError) as e:
            self.stats.dropped += 1
            log.info("dropped %d bytes from %s: %s", len(data), addr[0], e)
            return
        if not msg.is_request:
            self._on_response(msg)
            return
        self.stats.requests += 1
        if len(data) > self.opts.max_message_bytes:
            self._send(transport, addr, response(msg, 513))
            return
        if not self._allowed(addr[0]):
            log.warning("%s from %s refused: source not allowed", msg.method, addr[0])
            self._send(transport, addr, response(msg, 403, reason="Source Not Allowed"))
            return
        if not self._within_rate(addr[0]):
            self.stats.dropped += 1
            if msg.method == "INVITE":
                self._send(transport, addr, response(msg, 503, headers=[("Retry-After", "5")]))
            return
        try:
            self._dispatch(msg, transport, addr)
        except Exception:
            log.exception("error handling %s %s", msg.method, msg.call_id)
            if msg.method != "ACK":
                self._send(transport, addr, response(msg, 500))

    def _refuse_bad(self, e: BadRequest, transport: Transport, addr: Addr) -> None:
        self.stats.requests += 1
        log.info("400 to %s: %s", addr[0], e)
        if e.message.method != "ACK":
            self._send(transport, addr, response(e.message, 400, reason=f"Bad Request ({e})"[:120]))

    def _allowed(self, host: str) -> bool:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(ip in n for n in self.networks)

    def _within_rate(self, host: str) -> bool:
        now = time.monotonic()
        tokens, last = self.buckets.get(host, (self.opts.rate_burst, now))
        tokens = min(self.opts.rate_burst, tokens + (now - last) * self.opts.rate_limit)
        if tokens < 1:
            self.buckets[host] = (tokens, now)
            return False
        self.buckets[host] = (tokens - 1, now)
        return True

    # --- TCP connections ----------------------------------------------------------------------------

    def tcp_opened(self, conn: TcpConnection) -> bool:
        """Count a new connection; False (to be closed) when its address has its share open already."""
        open_here = self.tcp.setdefault(conn.peer[0], set())
        if len(open_here) >= self.opts.tcp_max_per_source:
            self.stats.refused_connections += 1
            now = time.monotonic()
            if now - self.refusals_logged.get(conn.peer[0], -60.0) >= 60:  # once a minute per address
                self.refusals_logged[conn.peer[0]] = now
                log.warning("TCP connection from %s closed: %d connections from that address are open already",
                            conn.peer[0], len(open_here))
            return False
        open_here.add(conn)
        return True

    def tcp_closed(self, conn: TcpConnection) -> None:
        open_here = self.tcp.get(conn.peer[0])
        if open_here is not None:
            open_here.discard(conn)
            if not open_here:
                del self.tcp[conn.peer[0]]

    def calls_over(self, transport: Transport) -> bool:
        """Whether a call (ringing or answered) runs over ``transport``."""
        return any(call.transport is transport for call in self.calls.values())

    # --- transactions -------------------------------------------------------------------------------

    @staticmethod
    def _txn_key(msg: SipMessage) -> tuple[str, ...]:
        method = "INVITE" if msg.method == "ACK" else msg.method
        branch = msg.branch
        if branch.startswith("z9hG4bK"):
            return (branch, method)
        return (msg.call_id, msg.from_tag, str(msg.cseq[0]), method, msg.get("via"))

    def _send(self, transport: Transport, addr: Addr, msg: SipMessage) -> bytes:
        data = msg.encode()
        transport.send(data, addr)
        return data

    def _reply(self, txn: ServerTransaction, msg: SipMessage) -> None:
        txn.last = self._send(txn.transport, txn.addr, msg)
        if msg.status >= 200:
            txn.final = msg.status
            loop = asyncio.get_running_loop()
            if txn.method == "INVITE" and msg.status >= 300 and not txn.transport.reliable:
                self._resend_until_ack(txn, T1)  # timer G; ACK (same branch) stops it
            else:
                if txn.timer:
                    txn.timer.cancel()
                txn.timer = loop.call_later(TIMER_64, self.txns.pop, txn.key, None)  # timer J/H

    def _resend_until_ack(self, txn: ServerTransaction, interval: float, elapsed: float = 0.0) -> None:
        loop = asyncio.get_running_loop()
        if elapsed >= TIMER_64:
            self.txns.pop(txn.key, None)
            return

        def again() -> None:
            if txn.key in self.txns and txn.last:
                txn.transport.send(txn.last, txn.addr)
                self._resend_until_ack(txn, min(interval * 2, T2), elapsed + interval)

        txn.timer = loop.call_later(interval, again)

    def _dispatch(self, msg: SipMessage, transport: Transport, addr: Addr) -> None:
        key = self._txn_key(msg)
        if msg.method == "ACK":
            self._on_ack(msg, key)
            return
        txn = self.txns.get(key)
        if txn is not None:  # a retransmission: answer from the transaction, process nothing
            self.stats.retransmissions += 1
            if txn.last:
                txn.transport.send(txn.last, txn.addr)
            return
        txn = ServerTransaction(key, msg.method, transport, addr)
        self.txns[key] = txn
        handler: Callable[[SipMessage, ServerTransaction], None] = {
            "INVITE": self._on_invite, "BYE": self._on_bye, "CANCEL": self._on_cancel,
            "OPTIONS": self._on_options, "INFO": self._on_info,
        }.get(msg.method, self._on_unsupported)
        handler(msg, txn)

    # --- methods ------------------------------------------------------------------------------------

    def _on_options(self, msg: SipMessage, txn: ServerTransaction) -> None:
        self._reply(txn, response(msg, 200, headers=[("Allow", ALLOW), ("Accept", "application/sdp"),
                                                      ("Supported", "siprec")]))

    def _on_unsupported(self, msg: SipMessage, txn: ServerTransaction) -> None:
        self._reply(txn, response(msg, 405, headers=[("Allow", ALLOW)]))

    def _on_info(self, msg: SipMessage, txn: ServerTransaction) -> None:
        call = self.calls.get(msg.call_id)
        if call is None:
            self._reply(txn, response(msg, 481))
            return
        if "dtmf-relay" in msg.get("content-type") and (m := re.search(rb"Signal\s*=\s*(\S)", msg.body)):
            at = round(time.time() - call.manifest.started_at, 3)
            call.manifest.dtmf.append({"digit": m.group(1).decode(), "at": at, "via": "info"})
        self._reply(txn, response(msg, 200, to_tag=call.local_tag))

    def _on_bye(self, msg: SipMessage, txn: ServerTransaction) -> None:
        call = self.calls.get(msg.call_id)
        if call is None or (msg.to_tag and msg.to_tag != call.local_tag):
            self._reply(txn, response(msg, 481))
            return
        self._reply(txn, response(msg, 200))
        self._end(call, "bye")

    def _on_cancel(self, msg: SipMessage, txn: ServerTransaction) -> None:
        invite_txn = self.txns.get((msg.branch, "INVITE"))
        call = self.calls.get(msg.call_id)
        if invite_txn is None or call is None or call.invite_txn is not invite_txn:
            self._reply(txn, response(msg, 481))
            return
        self._reply(txn, response(msg, 200, to_tag=call.local_tag))
        if call.state == "early" and call.ok is None:
            if call.answer_task:
                call.answer_task.cancel()
            self._reply(invite_txn, response(call.invite, 487, to_tag=call.local_tag))
            self._end(call, "cancel")

    def _on_ack(self, msg: SipMessage, key: tuple[str, ...]) -> None:
        txn = self.txns.get(key)
        if txn is not None and txn.final >= 300:  # ACK of our error response: the transaction is done
            if txn.timer:
                txn.timer.cancel()
            txn.timer = asyncio.get_running_loop().call_later(T2, self.txns.pop, key, None)  # timer I
            return
        call = self.calls.get(msg.call_id)
        if call is None or call.ok is None:
            return
        if call.retransmit:
            call.retransmit.cancel()
            call.retransmit = None
        if call.state == "early":
            call.state = "confirmed"
            self._start_greeting(call)

    def _on_invite(self, msg: SipMessage, txn: ServerTransaction) -> None:
        if msg.to_tag:
            self._on_reinvite(msg, txn)
            return
        if msg.call_id in self.calls:  # a second INVITE for a call that exists, on another branch
            self._reply(txn, response(msg, 482, reason="Loop Detected"))
            return
        if self.opts.auth_user and not self._authorized(msg):
            self._reply(txn, response(msg, 401, headers=[("WWW-Authenticate", self._challenge())]))
            return
        if len(self.calls) >= self.opts.max_calls:
            self._reply(txn, response(msg, 503, headers=[("Retry-After", "10")]))
            return
        self._reply(txn, response(msg, 100))
        try:
            offer, meta = self._offer(msg)
        except (sdp.SdpError, siprec.SiprecError, UnicodeDecodeError) as e:
            self._reply(txn, response(msg, 400, reason=f"Bad Request ({e})"[:120]))
            return
        except UnsupportedBody as e:
            self._reply(txn, response(msg, 415, headers=[("Accept", "application/sdp, multipart/mixed")],
                                      reason=str(e)[:80]))
            return
        streams = self._plan_streams(offer, meta)
        if not any(s.choice for s in streams):
            self._reply(txn, response(msg, 488, headers=[("Warning", '304 hotline "PCMU/PCMA only"')]))
            return
        call = self._new_call(msg, txn, offer, streams, meta)
        self._reply(txn, response(msg, 180, to_tag=call.local_tag))
        delay = 0.0 if call.siprec else self.opts.answer_delay
        if delay > 0:
            call.answer_task = asyncio.get_running_loop().call_later(delay, self._answer, call)
        else:
            self._answer(call)

    def _offer(self, msg: SipMessage) -> tuple[sdp.SessionDescription, siprec.Metadata | None]:
        ctype = msg.get("content-type").lower()
        if ctype.startswith("multipart/mixed"):
            parts = siprec.split_multipart(msg.get("content-type"), msg.body)
            if "application/sdp" not in parts:
                raise siprec.SiprecError("multipart body without application/sdp")
            meta = siprec.parse_metadata(parts[siprec.METADATA_TYPE]) if siprec.METADATA_TYPE in parts else None
            return sdp.parse(parts["application/sdp"].decode()), meta
        if ctype.startswith("application/sdp"):
            return sdp.parse(msg.body.decode()), None
        if not msg.body:
            raise UnsupportedBody("INVITE without an SDP offer (late offer) is not supported")
        raise UnsupportedBody(f"unsupported body {ctype or 'without Content-Type'}")

    def _plan_streams(self, offer: sdp.SessionDescription, meta: siprec.Metadata | None) -> list[CallStream]:
        roles = meta.roles_by_label(self.opts.agent_pattern) if meta else {}
        out: list[CallStream] = []
        audio_index = 0
        for m in offer.media:
            choice = sdp.choose(m) if m.kind == "audio" else None
            if meta is None:
                role = "caller"
                direction = sdp.ANSWER_DIRECTION[m.direction]
            else:
                role = roles.get(m.label, ("caller" if audio_index == 0 else "agent", None))[0]
                direction = "inactive" if m.direction == "inactive" else "recvonly"
            if choice and any(s.role == role and s.choice for s in out):
                choice = None  # two streams for one party: keep the first
            out.append(CallStream(stream_id="", role=role, port=0, choice=choice, label=m.label,
                                  direction=direction, offered=tuple(m.formats), kind=m.kind))
            audio_index += m.kind == "audio"
        return out

    def _new_call(self, msg: SipMessage, txn: ServerTransaction, offer: sdp.SessionDescription,
                  streams: list[CallStream], meta: siprec.Metadata | None) -> SipCall:
        is_siprec = meta is not None
        call_uuid = uuid.uuid4().hex
        folder = self.opts.calls_dir / call_uuid
        manifest = CallManifest(call_id=call_uuid, source="siprec" if is_siprec else "sip", external_id=msg.call_id,
                                caller=calling_party(msg), called=uri_user(msg.get("to")) or uri_user(msg.uri),
                                started_at=time.time(), owner=process_owner())
        # the legs' data key (its wrap goes into call.json), before anything is on disk: a key that cannot
        # be made (master key unreadable) refuses the call (500) rather than record it in clear
        data_key = self.opts.keys(manifest) if self.opts.keys else None
        key = base64.b64encode(data_key).decode() if data_key else None
        folder.mkdir(parents=True)
        if meta is not None:  # the parties of the recorded call, not the recording client
            parties = meta.parties(self.opts.agent_pattern)
            manifest.caller, manifest.called = (caller_id(parties[r].aor) if r in parties else ""
                                                for r in ("caller", "agent"))
        local_address = self.opts.public_address or _local_address_for(txn.addr[0], self.opts.host)
        call = SipCall(manifest, folder, msg, txn.transport, txn.addr, new_tag(), local_address, streams,
                       is_siprec, invite_txn=txn)
        manifest.save(folder)
        self.calls[msg.call_id] = call
        self.stats.calls += 1
        self.media.call_start(manifest)
        for i, (s, m) in enumerate(zip(streams, offer.media, strict=True)):
            if s.choice is None:
                continue
            sock, s.port = self._bind_rtp()
            s.stream_id = f"{call_uuid}/{i}"
            self.by_stream[s.stream_id] = call
            remote = None if m.on_hold or not m.connection else (m.connection, m.port)
            self.media.open(sock, stream_id=s.stream_id, call_id=call_uuid, role=s.role, folder=str(folder),
                            codecs={s.choice.codec: _law(s.choice)}, dtmf=s.choice.dtmf, remote=remote,
                            t0=manifest.started_at, timeout=self.opts.rtp_timeout, key=key)
        self.filing.submit(self._safe, self.sink.started, manifest)
        return call

    def _bind_rtp(self) -> tuple[socket.socket, int]:
        """A UDP socket on the next free even port of the RTP range (RTCP would be the odd one above)."""
        span = (self.opts.rtp_port_max - self.opts.rtp_port_min) // 2
        family = socket.AF_INET6 if ":" in self.opts.host else socket.AF_INET
        for _ in range(span):
            port = self.next_port
            self.next_port = port + 2 if port + 2 <= self.opts.rtp_port_max else self.opts.rtp_port_min
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((self.opts.host, port))
            except OSError:
                sock.close()
                continue
            return sock, port
        raise RuntimeError("no free RTP port in the configured range")

    def _answer(self, call: SipCall) -> None:
        call.answer_task = None
        if call.state != "early" or call.invite_txn is None:
            return
        body = self._answer_sdp(call)
        ok = response(call.invite, 200, to_tag=call.local_tag, body=body, headers=self._contact(call))
        call.manifest.answered_at = time.time()
        call.manifest.save(call.folder)  # so a call recovered after a crash knows when it was answered
        self._reply(call.invite_txn, ok)
        call.ok = call.invite_txn.last
        if not call.transport.reliable:
            self._resend_ok(call, T1, 0.0)

    def _answer_sdp(self, call: SipCall) -> bytes:
        streams = [sdp.AnswerStream(s.port, s.choice, s.direction, s.label, s.offered) for s in call.streams]
        return sdp.answer(streams, address=call.local_address, session_id=int(call.manifest.started_at),
                          version=call.sdp_version, kinds=[s.kind for s in call.streams])

    def _contact(self, call: SipCall) -> list[tuple[str, str]]:
        port = self.opts.port
        transport = ";transport=tcp" if call.transport.reliable else ""
        return [("Contact", f"<sip:hotline@{call.local_address}:{port}{transport}>"), ("Allow", ALLOW)]

    def _resend_ok(self, call: SipCall, interval: float, elapsed: float) -> None:
        def again() -> None:
            if call.state != "early" or call.ok is None:
                return
            if elapsed + interval >= TIMER_64:
                log.warning("call %s: no ACK for our 200 OK; ending it", call.manifest.external_id)
                call.state = "confirmed"
                self._hang_up(call, "no-ack")
                return
            call.transport.send(call.ok, call.addr)
            self._resend_ok(call, min(interval * 2, T2), elapsed + interval)

        call.retransmit = asyncio.get_running_loop().call_later(interval, again)

    def _on_reinvite(self, msg: SipMessage, txn: ServerTransaction) -> None:
        call = self.calls.get(msg.call_id)
        if call is None or msg.to_tag != call.local_tag:
            self._reply(txn, response(msg, 481))
            return
        try:
            offer, _meta = self._offer(msg) if msg.body else (None, None)
        except (sdp.SdpError, siprec.SiprecError, UnsupportedBody) as e:
            self._reply(txn, response(msg, 488, reason=f"Not Acceptable Here ({e})"[:120]))
            return
        if offer is not None:
            if len(offer.media) != len(call.streams):
                self._reply(txn, response(msg, 488, reason="Stream count changed"))
                return
            held = self._apply_offer(call, offer)
            call.manifest.events.append({"event": "hold" if held else "resume",
                                         "at": round(time.time() - call.manifest.started_at, 3)})
            call.manifest.save(call.folder)
            call.sdp_version += 1
        call.invite = msg if msg.from_tag == call.invite.from_tag else call.invite
        ok = response(msg, 200, to_tag=call.local_tag, body=self._answer_sdp(call), headers=self._contact(call))
        self._reply(txn, ok)

    def _apply_offer(self, call: SipCall, offer: sdp.SessionDescription) -> bool:
        """Update each stream's direction and remote address; True if every stream is now on hold."""
        held = []
        for s, m in zip(call.streams, offer.media, strict=True):
            s.direction = "inactive" if m.direction == "inactive" else (
                "recvonly" if call.siprec else sdp.ANSWER_DIRECTION[m.direction])
            held.append(m.on_hold)
            if s.stream_id:
                remote = None if m.connection == "0.0.0.0" else (m.connection, m.port)
                self.media.remote(s.stream_id, remote, m.on_hold)
        return all(held)

    # --- greeting, media events, ending -------------------------------------------------------------

    def _start_greeting(self, call: SipCall) -> None:
        if call.siprec or not self.opts.greeting:
            return
        s = next((s for s in call.streams if s.choice and s.direction in ("sendrecv", "sendonly")), None)
        if s and s.choice:
            self.media.greet(s.stream_id, law=_law(s.choice), payload_type=s.choice.codec)

    def on_media_event(self, ev: dict[str, Any]) -> None:
        call = self.by_stream.get(ev.get("stream_id", ""))
        if call is None:
            return
        if ev["ev"] == "dtmf":
            call.manifest.dtmf.append({"digit": ev["digit"], "at": ev["at"], "duration": ev["duration"]})
        elif ev["ev"] == "timeout" and call.state != "ended":
            log.info("call %s: no RTP for %.0f s; ending it", call.manifest.external_id, self.opts.rtp_timeout)
            self._hang_up(call, "rtp-timeout")

    def _hang_up(self, call: SipCall, reason: str) -> None:
        """We end the call: BYE to the caller (resent over UDP until answered), then finish it."""
        call.cseq_out = max(call.cseq_out, call.invite.cseq[0]) + 1
        branch = "z9hG4bK" + secrets.token_hex(8)
        target = _contact_uri(call.invite) or call.invite.uri
        host = call.local_address
        proto = "TCP" if call.transport.reliable else "UDP"
        bye = SipMessage(method="BYE", uri=target, headers=[
            ("Via", f"SIP/2.0/{proto} {host}:{self.opts.port};branch={branch};rport"),
            ("Max-Forwards", "70"),
            ("From", _with_tag(call.invite.get("to"), call.local_tag)),
            ("To", call.invite.get("from")), ("Call-ID", call.invite.call_id),
            ("CSeq", f"{call.cseq_out} BYE"), ("User-Agent", "12351-hotline")])
        data = bye.encode()
        call.transport.send(data, call.addr)
        if not call.transport.reliable:
            self._resend_request(branch, data, call.transport, call.addr, T1, 0.0)
        self._end(call, reason)

    def _resend_request(self, branch: str, data: bytes, transport: Transport, addr: Addr, interval: float,
                        elapsed: float) -> None:
        def again() -> None:
            if branch not in self.client_txns:
                return
            if elapsed + interval >= TIMER_64:
                self.client_txns.pop(branch, None)
                return
            transport.send(data, addr)
            self._resend_request(branch, data, transport, addr, min(interval * 2, T2), elapsed + interval)

        self.client_txns[branch] = asyncio.get_running_loop().call_later(interval, again)

    def _on_response(self, msg: SipMessage) -> None:
        if msg.status >= 200 and (timer := self.client_txns.pop(msg.branch, None)):
            timer.cancel()

    def _end(self, call: SipCall, reason: str) -> None:
        if call.state == "ended":
            return
        call.state = "ended"
        for handle in (call.retransmit, call.answer_task):
            if handle:
                handle.cancel()
        call.manifest.ended_at = time.time()
        call.manifest.end_reason = reason
        asyncio.get_running_loop().create_task(self._finish(call))

    async def _finish(self, call: SipCall) -> None:
        """Close the call's streams (their audio is then on disk), then file it on the filing thread."""
        self._finishing += 1
        try:
            opened = [s for s in call.streams if s.stream_id]
            try:
                stats = await asyncio.gather(*(self.media.close(s.stream_id) for s in opened))
            finally:
                for s in opened:
                    self.by_stream.pop(s.stream_id, None)
                self.calls.pop(call.manifest.external_id, None)
                self.media.call_end(call.manifest.call_id, call.manifest.end_reason or "")
            call.manifest.events.append({"event": "rtp", "legs": {s.role: st for s, st in zip(opened, stats,
                                                                                               strict=True)}})
            call.manifest.save(call.folder)
            await asyncio.get_running_loop().run_in_executor(self.filing, self._safe, self.sink.finished,
                                                             call.folder, call.manifest)
        finally:
            self._finishing -= 1
            if not self.calls and not self._finishing:
                self.ended.set()

    @staticmethod
    def _safe(fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("filing step %s failed; the call's folder is kept for recovery", fn.__name__)

    async def shutdown(self) -> None:
        """End every call (BYE), finish filing them, stop timers."""
        for call in list(self.calls.values()):
            if call.state == "confirmed":
                self._hang_up(call, "shutdown")
            else:
                self._end(call, "shutdown")
        if self.calls or self._finishing:
            self.ended.clear()
            await self.ended.wait()
        await asyncio.get_running_loop().run_in_executor(None, self.filing.shutdown)
        for t in self.client_txns.values():
            t.cancel()
        for txn in self.txns.values():
            if txn.timer:
                txn.timer.cancel()

    # --- digest authentication (RFC 2617 / 8760, MD5) ------------------------------------------------

    def _challenge(self) -> str:
        stamp = str(int(time.time()))
        nonce = stamp + ":" + hmac.new(self.secret, stamp.encode(), "sha256").hexdigest()[:24]
        return f'Digest realm="{self.opts.realm}", nonce="{nonce}", algorithm=MD5, qop="auth"'

    def _authorized(self, msg: SipMessage) -> bool:
        header = msg.get("authorization") or msg.get("proxy-authorization")
        if not header.lower().startswith("digest "):
            return False
        fields = dict(re.findall(r'(\w+)="?([^",]*)"?', header[7:]))
        nonce = fields.get("nonce", "")
        stamp, _, mac = nonce.partition(":")
        fresh = stamp.isdigit() and time.time() - int(stamp) < 300
        genuine = hmac.compare_digest(mac, hmac.new(self.secret, stamp.encode(), "sha256").hexdigest()[:24])
        if not (fresh and genuine and fields.get("username") == self.opts.auth_user):
            return False

        def md5(s: str) -> str:
            return hashlib.md5(s.encode()).hexdigest()  # noqa: S324 (SIP digest is MD5 by definition)

        ha1 = md5(f"{self.opts.auth_user}:{self.opts.realm}:{self.opts.auth_password}")
        ha2 = md5(f"{msg.method}:{fields.get('uri', '')}")
        if fields.get("qop"):
            expected = md5(f"{ha1}:{nonce}:{fields.get('nc', '')}:{fields.get('cnonce', '')}:{fields['qop']}:{ha2}")
        else:
            expected = md5(f"{ha1}:{nonce}:{ha2}")
        return hmac.compare_digest(expected, fields.get("response", ""))


class UnsupportedBody(ValueError):
    pass


def calling_party(msg: SipMessage) -> str:
    """The calling number of an INVITE: P-Asserted-Identity (the network's assertion; a header may list a
    sip: and a tel: URI), then Remote-Party-ID, then From; a phone number before a name; a withheld one
    (``anonymous``) is ''. PAI is kept when ``Privacy: id`` asks to hide it downstream: we are the far
    end it is asserted to."""
    asserted = [uri for name in ("p-asserted-identity", "remote-party-id") for value in msg.get_all(name)
                for uri in (re.findall(r"<([^>]+)>", value) or [value])]
    return first_caller_id([*asserted, msg.get("from")])


def _law(choice: sdp.Choice) -> int:
    return 8 if choice.name == "PCMA" else 0


def _with_tag(header: str, tag: str) -> str:
    return header if ";tag=" in header else f"{header};tag={tag}"


def _contact_uri(msg: SipMessage) -> str:
    m = re.search(r"<([^>]+)>", msg.get("contact")) or re.match(r"\s*(\S+)", msg.get("contact"))
    return m.group(1) if m else ""


def _local_address_for(remote: str, bound: str) -> str:
    """Our address as the peer sees it: the bound one, or the one the kernel routes towards the peer."""
    if bound not in ("0.0.0.0", "::", ""):
        return bound
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((remote, 9))
        return str(s.getsockname()[0])
    return "127.0.0.1"


# --- transports ----------------------------------------------------------------------------------------


class UdpTransport(asyncio.DatagramProtocol):
    reliable = False

    def __init__(self, uas: UserAgentServer) -> None:
        self.uas = uas
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        self.uas.receive(data, self, addr)

    def send(self, data: bytes, addr: Addr) -> None:
        if self.transport:
            self.transport.sendto(data, addr)


class TcpConnection(asyncio.Protocol):
    """One TCP connection: messages framed by Content-Length; a framing error closes the connection
    (only this one: other calls are untouched).

    Connections do not live for ever (RFC 3261 §18, RFC 5626 practice): one that brings no complete message
    and no CRLF keep-alive ping (answered with a CRLF pong) for ``tcp_idle_timeout`` seconds is closed, unless
    a call runs over it: a trunk may send nothing between its ACK and its BYE. Whether the peer of such a
    connection is still there is up to TCP keep-alive (``tcp_keepalive``): a peer that vanished without a FIN
    (power cut, NAT binding gone: a half-open connection) stops answering the probes and the kernel ends the
    connection. At most ``tcp_max_per_source`` connections from one address are kept; more are closed at once."""

    reliable = True

    def __init__(self, uas: UserAgentServer) -> None:
        self.uas = uas
        self.framer = StreamFramer(uas.opts.max_message_bytes)
        self.transport: asyncio.Transport | None = None
        self.peer: Addr = ("", 0)
        self.last_heard = time.monotonic()  # the last complete message or keep-alive ping
        self.idle_timer: asyncio.TimerHandle | None = None
        self.counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.peer = transport.get_extra_info("peername") or ("", 0)
        if not self.uas.tcp_opened(self):
            transport.abort()
            return
        self.counted = True
        keepalive(transport.get_extra_info("socket"), self.uas.opts.tcp_keepalive)
        self.last_heard = time.monotonic()
        self._watch(self.uas.opts.tcp_idle_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.idle_timer:
            self.idle_timer.cancel()
            self.idle_timer = None
        if self.counted:
            self.counted = False
            self.uas.tcp_closed(self)
        self.framer.buffer.clear()

    def _watch(self, delay: float) -> None:
        if delay > 0:
            self.idle_timer = asyncio.get_running_loop().call_later(delay, self._idle_check)

    def _idle_check(self) -> None:
        self.idle_timer = None
        if self.transport is None or self.transport.is_closing():
            return
        timeout = self.uas.opts.tcp_idle_timeout
        if self.uas.calls_over(self):  # a call runs over it: kept; TCP keep-alive finds a vanished peer
            self._watch(timeout)
            return
        quiet = time.monotonic() - self.last_heard
        if quiet < timeout:
            self._watch(timeout - quiet)
            return
        self.uas.stats.idle_closed += 1
        log.info("closing TCP connection from %s: idle for %.0f s%s", self.peer[0], quiet,
                 " in the middle of a message" if self.framer.buffer else "")
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        try:
            messages = self.framer.feed(data)
        except Unparseable as e:
            log.info("closing TCP connection from %s: %s", self.peer[0], e)
            self.uas.stats.dropped += 1
            if self.transport:
                self.transport.close()
            return
        if messages or self.framer.pings:
            self.last_heard = time.monotonic()
        if self.framer.pings and self.transport and not self.transport.is_closing():
            self.transport.write(b"\r\n" * self.framer.pings)  # RFC 5626 §4.4.1: pong
        for m in messages:
            self.uas.receive(m, self, self.peer)

    def send(self, data: bytes, addr: Addr) -> None:
        if self.transport and not self.transport.is_closing():
            self.transport.write(data)


def keepalive(sock: Any, idle: float) -> None:
    """TCP keep-alive on ``sock``: first probe after ``idle`` s of silence, then every ``idle``/3 s, 3 probes;
    unanswered, the kernel closes the connection (and data unacknowledged that long ends it too). Linux
    options where the platform has them."""
    if sock is None or idle <= 0:
        return
    interval = max(1, round(idle / 3))
    first = max(1, round(idle))
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (("TCP_KEEPIDLE", first), ("TCP_KEEPINTVL", interval), ("TCP_KEEPCNT", KEEPALIVE_PROBES),
                            ("TCP_USER_TIMEOUT", (first + interval * KEEPALIVE_PROBES) * 1000)):
            if hasattr(socket, name):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


async def serve(opts: SipOptions, media: MediaClient, sink: CallSink) -> tuple[UserAgentServer, list[Any]]:
    """Listen on UDP and TCP ``opts.host:opts.port``; returns the server and what to close."""
    loop = asyncio.get_running_loop()
    uas = UserAgentServer(opts, media, sink)
    udp, _ = await loop.create_datagram_endpoint(lambda: UdpTransport(uas), local_addr=(opts.host, opts.port))
    tcp = await loop.create_server(lambda: TcpConnection(uas), opts.host, opts.port, reuse_address=True)
    return uas, [udp, tcp]
