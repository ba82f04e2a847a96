"""WebSocket media streams: Twilio Media Streams, raw L16 (FreeSWITCH mod_audio_fork) and browser capture.

Each connection records into ``<calls_dir>/ws/<call uuid>/`` (``telephony.ws``), each leg sealed under the
call's data key as it is written unless encryption is off (``flows.key_issuer``). When it ends (normally,
with bad input, or cut off) the call is filed (mixed, put on record, queued for transcription) on a worker
thread, never on the event loop, and shielded from cancellation so a server shutting down still files it.
Peers (PBX, Twilio) present ``settings.media_secret``; browser capture presents the user's login token and
needs ``recording:upload``. A refused connection is closed with 1008 before any audio is read, and logged;
a wrong media token and a missing permission are also audited (``auth.denied``).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter, WebSocket
from starlette.concurrency import run_in_threadpool

from app.auth.permissions import Permission
from app.auth.ws import authenticate, client_host, close, deny, presented_token
from app.calls.flows import Filer, key_issuer
from app.config import Settings
from app.db import Database
from app.jobs import JobQueue
from app.recordings.models import CaseChannel
from app.users.models import User
from telephony.frames import FrameBus
from telephony.live_tap import LiveTap
from telephony.recorder import KeyIssuer
from telephony.ws import (
    FLUSH_EVERY,
    ROOM_RATE,
    CaptureParams,
    ForkCalls,
    ForkParams,
    MediaError,
    MediaSession,
    PcmSource,
    TwilioStart,
    TwilioStream,
    apply_metadata,
)

router = APIRouter(prefix="/api/v1/media", tags=["media"])
log = logging.getLogger("hotline.media")

Feed = Callable[[str | None, bytes | None], Awaitable[bool]]


@dataclass
class MediaStreams:
    """Per-app state of the media endpoints: the frame bus (live consumers subscribe to it) and the raw
    L16 calls whose legs come on separate connections."""

    bus: FrameBus = field(default_factory=FrameBus)
    forks: ForkCalls = field(default_factory=ForkCalls)


@dataclass
class _Context:
    settings: Settings
    database: Database
    queue: JobQueue
    streams: MediaStreams

    @property
    def calls_dir(self) -> Path:
        return self.settings.calls_dir / "ws"

    def filer(self) -> Filer:
        return Filer(self.settings, self.database, self.queue)

    @property
    def keys(self) -> KeyIssuer | None:
        """Each call's data key: its legs sealed as they are written (None with encryption off)."""
        return key_issuer(self.settings)


def media_streams(app: Any) -> MediaStreams:
    """The app's ``MediaStreams`` (``app.state.media_streams``), made on first use; with live transcription
    enabled its frames also go to the live process (``telephony.live_tap``: best effort, never waits)."""
    streams = getattr(app.state, "media_streams", None)
    if streams is None:
        streams = app.state.media_streams = MediaStreams()
        settings: Settings = app.state.settings
        if settings.live_enabled:
            streams.bus.subscribe(LiveTap(settings.live_audio_socket))
    return streams  # type: ignore[no-any-return]


def _context(websocket: WebSocket) -> _Context:
    state = websocket.app.state
    return _Context(state.settings, state.db, state.queue, media_streams(websocket.app))


# --- endpoints -------------------------------------------------------------------------------------------


@router.websocket("/twilio")
async def twilio(websocket: WebSocket) -> None:
    """Twilio Media Streams (``<Stream url="wss://HOST/api/v1/media/twilio?token=…">``, both tracks for
    a stereo call). The call starts with ``start`` and is filed at ``stop`` or when the connection ends.
    A bad message closes the stream with 1007 (1003 for a media format other than 8 kHz μ-law) and files
    what was recorded before it."""
    ctx = await _accept_peer(websocket)
    if ctx is None:
        return
    stream = TwilioStream(ctx.calls_dir, bus=ctx.streams.bus, keys=ctx.keys)

    async def feed(text: str | None, data: bytes | None) -> bool:
        event = stream.feed(text if text is not None else data or b"")
        if isinstance(event, TwilioStart) and stream.session is not None:
            await _started(ctx, stream.session)
        return stream.stopped

    reason = "disconnect"
    try:
        reason = await _pump(websocket, feed, stream.flush)
    finally:
        if stream.session is not None:
            await _file(ctx, stream.session, reason)


@router.websocket("/fork")
async def fork(websocket: WebSocket) -> None:
    """Raw L16 (mod_audio_fork): ``?token=…&call_id=…&channels=1|2&leg=caller|agent&rate=8000|16000
    &caller=…&called=…``. Binary frames are audio, text frames JSON metadata. Connections with the same
    ``call_id`` (one per leg) are one call, filed when the last of them ends. A parameter out of range is
    refused with 1003, a leg already streaming with 1008, bad metadata ends the stream with 1007."""
    ctx = await _accept_peer(websocket)
    if ctx is None:
        return
    try:
        params = ForkParams.parse(websocket.query_params)
        session, created = ctx.streams.forks.join(params.call_id, params.legs, lambda: MediaSession.start(
            ctx.calls_dir, source="fork", external_id=params.call_id, caller=params.caller, called=params.called,
            bus=ctx.streams.bus, keys=ctx.keys))
    except MediaError as e:
        await close(websocket, e.close_code, str(e))
        return
    source = PcmSource(session, params.legs, params.rate)
    reason = "disconnect"
    try:
        if created:
            await _started(ctx, session)
        reason = await _pump(websocket, _pcm_feed(source), source.flush)
    finally:
        try:
            source.finish()
        finally:
            last = ctx.streams.forks.leave(params.call_id, params.legs)
            if last is not None:
                await _file(ctx, last, reason)


@router.websocket("/capture")
async def capture(websocket: WebSocket) -> None:
    """Browser microphone for a walk-in visit, a mediation or a hearing: ``?token=<login token>
    &kind=visit|mediation|hearing&rate=16000|48000``; binary frames of 16-bit little-endian mono PCM,
    recorded at 16 kHz as a mono session on the user's name. No or a bad token, or a role without
    ``recording:upload``: closed with 1008; a bad kind or rate: 1003. Once recording, the server sends one
    text frame ``{"event": "started", "call_id": "<call uuid>"}`` so the page can follow its own live
    transcript (``/api/v1/calls/<call uuid>/live``) and find its case afterwards."""
    await websocket.accept()
    ctx = _context(websocket)
    user = await _capture_user(websocket, ctx)
    if user is None:
        return
    try:
        params = CaptureParams.parse(websocket.query_params)
    except MediaError as e:
        await close(websocket, e.close_code, str(e))
        return
    session = MediaSession.start(ctx.calls_dir, source="browser", channel=CaseChannel[params.kind].value,
                                 layout="mono", sample_rate=ROOM_RATE, actor=f"user:{user.username}",
                                 bus=ctx.streams.bus, keys=ctx.keys)
    source = PcmSource(session, ("room",), params.rate)
    reason = "disconnect"
    try:
        await _started(ctx, session)
        await websocket.send_json({"event": "started", "call_id": session.manifest.call_id})
        reason = await _pump(websocket, _pcm_feed(source), source.flush)
    finally:
        try:
            source.finish()
        finally:
            await _file(ctx, session, reason)


# --- the receive loop ------------------------------------------------------------------------------------


def _pcm_feed(source: PcmSource) -> Feed:
    async def feed(text: str | None, data: bytes | None) -> bool:
        if data is not None:
            source.feed(data)
        elif text is not None:
            apply_metadata(source.session, text)
        return False

    return feed


async def _pump(websocket: WebSocket, feed: Feed, flush: Callable[[], None]) -> str:
    """Hand every frame to ``feed`` until it says the stream has stopped ("stop": closed with 1000), the
    peer closes ("closed" for 1000/1001, else "disconnect"), or a frame is bad ("error": closed with the
    error's code and message). Meanwhile the recording is flushed every ``FLUSH_EVERY`` seconds."""
    ticker = asyncio.create_task(_flush_every(flush))
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return "closed" if message.get("code", 1000) in (1000, 1001) else "disconnect"
            if await feed(message.get("text"), message.get("bytes")):
                await close(websocket, 1000, "stop")
                return "stop"
    except MediaError as e:
        log.warning("%s from %s: %s", websocket.url.path, client_host(websocket), e)
        await close(websocket, e.close_code, str(e))
        return "error"
    finally:
        ticker.cancel()


async def _flush_every(flush: Callable[[], None]) -> None:
    while True:
        await asyncio.sleep(FLUSH_EVERY)
        flush()


# --- filing ----------------------------------------------------------------------------------------------


async def _started(ctx: _Context, session: MediaSession) -> None:
    """The call's row, on a worker thread. A failure is logged: filing adds the row later anyway."""
    try:
        await run_in_threadpool(ctx.filer().started, session.manifest)
    except Exception:
        log.exception("call %s: could not record its start", session.manifest.call_id)


async def _file(ctx: _Context, session: MediaSession, reason: str) -> None:
    """Close the session and file the call on a worker thread, shielded from cancellation. A failure is
    logged and the call's folder stays for recovery."""
    folder, manifest = session.close(reason)
    with anyio.CancelScope(shield=True):
        try:
            await run_in_threadpool(ctx.filer().finished, folder, manifest)
        except Exception:
            log.exception("call %s could not be filed; its audio stays in %s", manifest.call_id, folder)


# --- who may stream --------------------------------------------------------------------------------------


async def _accept_peer(websocket: WebSocket) -> _Context | None:
    """Accept the connection, then check the media token: a wrong or missing one is refused (1008),
    audited and logged, and None returned."""
    await websocket.accept()
    ctx = _context(websocket)
    token = presented_token(websocket).encode()
    if token and hmac.compare_digest(token, ctx.settings.media_secret.encode()):
        return ctx
    why = "wrong media token" if token else "no media token"
    await deny(websocket, ctx.database, f"peer:{client_host(websocket)}", why)
    return None


async def _capture_user(websocket: WebSocket, ctx: _Context) -> User | None:
    """The logged-in user if their role may upload recordings; otherwise the connection is refused (1008)
    and None returned. A missing permission is audited like an HTTP 403."""
    return await authenticate(websocket, settings=ctx.settings, database=ctx.database,
                              permission=Permission.recording_upload)
