"""`hotline sip`: the SIP/SIPREC adapter process (and its media engine child), wired to the platform."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from app.calls.flows import Filer, key_issuer, recover
from app.config import Settings
from app.db import Database
from app.jobs import JobQueue
from app.supervisor import ChildSpec, Supervisor, exit_with_parent
from telephony.media_client import MediaClient
from telephony.options import SipOptions
from telephony.recorder import CallManifest
from telephony.sip.server import serve

log = logging.getLogger("hotline.sip")


def sip_options(settings: Settings) -> SipOptions:
    return SipOptions(
        calls_dir=settings.calls_dir / "sip", host=settings.sip_host, port=settings.sip_port,
        public_address=settings.sip_public_address, rtp_port_min=settings.rtp_port_min,
        rtp_port_max=settings.rtp_port_max, greeting=settings.greeting_path,
        answer_delay=settings.sip_answer_delay_ms / 1000, rtp_timeout=settings.sip_rtp_timeout_s,
        allowed_sources=tuple(settings.sip_allowed_sources), rate_limit=settings.sip_rate_limit,
        rate_burst=2 * settings.sip_rate_limit, max_calls=settings.sip_max_calls,
        tcp_idle_timeout=settings.sip_tcp_idle_s, tcp_keepalive=settings.sip_tcp_keepalive_s,
        tcp_max_per_source=settings.sip_tcp_max_per_source,
        auth_user=settings.sip_auth_user, auth_password=settings.sip_auth_password,
        agent_pattern=settings.sip_agent_pattern, keys=key_issuer(settings))


_filer: Filer | None = None


def _init_filer(parent_pid: int) -> None:
    global _filer
    exit_with_parent(parent_pid)  # not left behind when the SIP process is killed (it is then started again)
    settings = Settings()
    database = Database(settings.sqlalchemy_url)
    _filer = Filer(settings, database, JobQueue(settings, database=database))


def _started(manifest: CallManifest) -> None:
    assert _filer is not None
    _filer.started(manifest)


def _finished(folder: Path, manifest: CallManifest) -> None:
    assert _filer is not None
    _filer.finished(folder, manifest)


class ProcessSink:
    """The Filer in a child process of its own: mixing, hashing, probing and database writes then never
    hold the SIP process's GIL (measured: with filing on a thread, INVITE p99 rose several-fold at 500 calls).
    Calls still arrive one at a time, in order, from the SIP server's filing thread."""

    def __init__(self) -> None:
        self.pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_init_filer,
                                        initargs=(os.getpid(),))
        self.pool.submit(int).result()  # start it now, so the first call does not wait for its imports

    def started(self, manifest: CallManifest) -> None:
        self.pool.submit(_started, manifest).result()

    def finished(self, folder: Path, manifest: CallManifest) -> None:
        self.pool.submit(_finished, folder, manifest).result()

    def close(self) -> None:
        self.pool.shutdown()


def _start_live(settings: Settings) -> Supervisor | None:
    """The live-transcription process, a child of this one (it exits with it), started again if it dies (the
    media engine reconnects to it by itself)."""
    if not settings.live_enabled:
        return None
    supervisor = Supervisor([ChildSpec("live", [sys.executable, "-m", "app.cli", "live", "--parent-pid",
                                                str(os.getpid())])])
    supervisor.start()
    return supervisor


async def run(settings: Settings, database: Database) -> None:
    """Recover calls cut off by a crash, then answer calls until SIGTERM/SIGINT; on the way out every
    call in progress is ended (BYE) and filed."""
    opts = sip_options(settings)
    opts.calls_dir.mkdir(parents=True, exist_ok=True)
    filer = Filer(settings, database, JobQueue(settings, database=database))
    recovered = await asyncio.to_thread(recover, filer, opts.calls_dir)
    if recovered:
        log.warning("filed %d call(s) cut off by the previous run", recovered)
    live = _start_live(settings)
    media = MediaClient(opts.greeting, settings.live_audio_socket if live else None)
    media.start()
    stop = asyncio.Event()
    media.on_exit = stop.set
    sink = await asyncio.to_thread(ProcessSink)
    uas, servers = await serve(opts, media, sink)
    loop = asyncio.get_running_loop()

    def stopping() -> None:
        if live:
            live.halt()  # a Ctrl-C reaches the live process too: not a crash to restart it after
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping)
    log.info("SIP adapter on %s:%d (UDP and TCP), RTP ports %d–%d", opts.host, opts.port, opts.rtp_port_min,
             opts.rtp_port_max)
    try:
        await stop.wait()
    finally:
        log.info("stopping: ending %d call(s) in progress", len(uas.calls))
        await uas.shutdown()
        sink.close()
        media.stop()
        if live:
            await asyncio.to_thread(live.stop, 30)
        for s in servers:
            s.close()
