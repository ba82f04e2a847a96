"""SIP over TCP does not keep connections for ever: silent and half-sent connections are closed after the idle
timeout, a call over TCP is not cut however quiet it is, CRLF keep-alives are answered and keep a connection,
vanished peers are left to TCP keep-alive (set on every accepted socket), and one address gets a bounded number
of connections. Real sockets against the server in this process, and against a real `hotline sip` with sipp."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from telephony.media_client import MediaClient
from telephony.options import SipOptions
from telephony.recorder import CallManifest
from telephony.sip.message import StreamFramer
from telephony.sip.server import KEEPALIVE_PROBES, TcpConnection, UserAgentServer, serve
from tests.processes import stop
from tests.telephony import sipp
from tests.telephony.conftest import start_adapter
from tests.telephony.test_sip_calls import CALLER_6S, run_ok

HALF_INVITE = (b"INVITE sip:12351@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bKhalf\r\n"
               b"From: <sip:13800138000@127.0.0.1>;tag=1\r\nTo: <sip:12351@127.0.0.1>\r\n")
OPTIONS = ("OPTIONS sip:12351@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bK{n}\r\n"
           "From: <sip:13800138000@127.0.0.1>;tag=1\r\nTo: <sip:12351@127.0.0.1>\r\nCall-ID: ka{n}\r\n"
           "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")


class _Sink:
    def started(self, manifest: CallManifest) -> None:
        pass

    def finished(self, folder: Path, manifest: CallManifest) -> None:
        pass


def _closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed ``sock`` (EOF or reset); False while it is open."""
    try:
        data = sock.recv(65536, socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except ConnectionError:
        return True
    return data == b""


def _drain(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536, socket.MSG_DONTWAIT)
    except BlockingIOError:
        return b""


async def _server(tmp_path: Path, **opts: Any) -> tuple[UserAgentServer, list[Any], int]:
    options = SipOptions(calls_dir=tmp_path / "calls", port=0, greeting=None, **opts)
    uas, servers = await serve(options, cast(MediaClient, SimpleNamespace()), _Sink())
    tcp = servers[1]
    port = tcp.sockets[0].getsockname()[1]
    return uas, servers, port


async def _close(uas: UserAgentServer, servers: list[Any]) -> None:
    for s in servers:
        s.close()
    for conns in list(uas.tcp.values()):
        for c in list(conns):
            if c.transport:
                c.transport.abort()
    await asyncio.sleep(0.05)
    uas.filing.shutdown()


def _connect(port: int, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.setblocking(False)
        socks.append(s)
    return socks


def test_framer_counts_keepalive_pings_even_split_across_reads() -> None:
    f = StreamFramer(16384)
    assert f.feed(b"\r\n\r\n") == [] and f.pings == 1
    assert f.feed(b"\r\n") == [] and f.pings == 0
    assert f.feed(b"\r\n") == [] and f.pings == 1  # the second half of a ping
    msg = OPTIONS.format(n=1).encode()
    assert f.feed(msg + b"\r\n\r\n" + msg[:10]) == [msg] and f.pings == 1
    assert f.feed(msg[10:]) == [msg] and f.pings == 0


def test_silent_and_half_sent_connections_are_closed_pings_keep_one(tmp_path: Path) -> None:
    async def main() -> None:
        uas, servers, port = await _server(tmp_path, tcp_idle_timeout=1.0)
        socks = await asyncio.to_thread(_connect, port, 50)
        pinger, talker = await asyncio.to_thread(_connect, port, 2)
        try:
            for s in socks[25:]:
                s.send(HALF_INVITE)  # half a message, then nothing
            await asyncio.sleep(0.3)
            assert sum(len(c) for c in uas.tcp.values()) == 52
            started = time.monotonic()
            pongs = b""
            answers = b""
            n = 0
            while time.monotonic() - started < 2.5:  # pings and requests keep their connections past the timeout
                pinger.send(b"\r\n\r\n")
                n += 1
                talker.send(OPTIONS.format(n=n).encode())
                await asyncio.sleep(0.25)
                pongs += _drain(pinger)
                answers += _drain(talker)
            assert all(_closed_by_server(s) for s in socks), "every silent or half-sent connection is closed"
            assert not _closed_by_server(pinger) and not _closed_by_server(talker)
            assert pongs.startswith(b"\r\n") and set(pongs) == set(b"\r\n")  # RFC 5626 pong: one CRLF per ping
            assert answers.count(b"SIP/2.0 200 OK") >= n - 1
            assert uas.stats.idle_closed == 50
            assert sum(len(c) for c in uas.tcp.values()) == 2  # nothing left behind for the closed ones
        finally:
            for s in [*socks, pinger, talker]:
                s.close()
            await _close(uas, servers)

    asyncio.run(main())


def test_a_call_keeps_its_connection_past_the_idle_timeout(tmp_path: Path) -> None:
    async def main() -> None:
        uas, servers, port = await _server(tmp_path, tcp_idle_timeout=0.5)
        quiet, busy = await asyncio.to_thread(_connect, port, 2)
        try:
            await asyncio.sleep(0.1)
            conns = [c for cs in uas.tcp.values() for c in cs]
            # a call (early or answered) runs over the first connection: only the presence in uas.calls matters
            call_conn = next(c for c in conns if c.transport and c.transport.get_extra_info("peername")
                             == busy.getsockname())
            uas.calls["c1"] = cast(Any, SimpleNamespace(transport=call_conn))
            await asyncio.sleep(1.5)
            assert _closed_by_server(quiet)
            assert not _closed_by_server(busy), "a connection carrying a call is kept"
            del uas.calls["c1"]  # the call ended: the connection is idle now
            await asyncio.sleep(1.2)
            assert _closed_by_server(busy)
        finally:
            quiet.close()
            busy.close()
            await _close(uas, servers)

    asyncio.run(main())


def test_keepalive_set_on_accepted_sockets_and_connections_per_source_capped(tmp_path: Path) -> None:
    async def main() -> None:
        uas, servers, port = await _server(tmp_path, tcp_keepalive=30.0, tcp_max_per_source=5)
        socks = await asyncio.to_thread(_connect, port, 8)
        try:
            await asyncio.sleep(0.3)
            conns: list[TcpConnection] = [c for cs in uas.tcp.values() for c in cs]
            assert len(conns) == 5 and uas.stats.refused_connections == 3
            assert sum(_closed_by_server(s) for s in socks) == 3  # the ones over the limit, at once
            assert conns[0].transport is not None
            sock = conns[0].transport.get_extra_info("socket")
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            if hasattr(socket, "TCP_KEEPIDLE"):  # Linux
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 10
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == KEEPALIVE_PROBES
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 60_000
            for s in socks:
                s.close()
            await asyncio.sleep(0.2)
            assert uas.tcp == {}  # closed connections are no longer counted: the address may connect again
            again = await asyncio.to_thread(_connect, port, 5)
            await asyncio.sleep(0.2)
            assert not any(_closed_by_server(s) for s in again)
            for s in again:
                s.close()
        finally:
            for s in socks:
                s.close()
            await _close(uas, servers)

    asyncio.run(main())


@pytest.mark.slow
@pytest.mark.skipif(not sipp.SIPP, reason="sipp (sip-tester) is not installed")
def test_real_adapter_closes_50_idle_connections_and_keeps_a_tcp_call(tmp_path: Path) -> None:
    """`hotline sip` with a 2 s idle timeout: 50 connections that send nothing or half an INVITE are all closed,
    while a 5 s call over TCP (sipp -t t1: INVITE, ACK, 5 s of nothing on the connection, BYE) goes through."""
    a = start_adapter(tmp_path, HOTLINE_SIP_TCP_IDLE_S="2", HOTLINE_SIP_RTP_TIMEOUT_S="10")
    socks: list[socket.socket] = []
    try:
        socks = _connect(a.port, 50)
        for s in socks[25:]:
            s.send(HALF_INVITE)
        opened = time.monotonic()
        before = len(a.calls())
        run_ok(sipp.call_scenario(audio=CALLER_6S, seconds=5, caller="13700000042"), tmp_path, a, transport="t1")
        assert time.monotonic() - opened > 4  # the call outlived the idle timeout
        call = a.wait_calls(before + 1)[before]
        assert (call.status, call.end_reason, call.caller) == ("ended", "bye", "13700000042")
        still_open = [s for s in socks if not _closed_by_server(s)]
        waited = time.monotonic() - opened
        assert still_open == [], f"{len(still_open)} of 50 idle connections still open after {waited:.1f} s"
        assert a.log_text().count("idle for") >= 50
    finally:
        for s in socks:
            s.close()
        stop(a.proc)
        a.database.dispose()
