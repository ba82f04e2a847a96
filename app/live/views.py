"""Live transcripts for staff browsers: WebSockets that carry the hub's events, authenticated like the REST API.

- ``WS /api/v1/calls/live?token=<login token>`` (``case:read``): the feed, call_started and call_ended of every
  call from the moment of connecting. Only events: calls already in progress are in ``GET /api/v1/calls``.
- ``WS /api/v1/calls/{call_uuid}/live?token=…`` (``transcript:read``): one call. First its history (partials
  that were later replaced left out), then each new event as it comes; closed with 1000 after call_ended (at
  once, if the history already ends with it). A call with no history yet (not announced yet, unknown, or
  ended more than 10 minutes ago) is waited for ``WAIT_FOR_CALL`` seconds; if no event comes it is closed with
  1000 and reason "未收到该通话的实时转写".

Every event is a JSON text frame: the hub's event with its ``seq``. call_started also carries the screen pop,
``previous_cases`` (the caller number's earlier cases, newest first, at most 10), and its ``caller`` is masked
(138****5678) for roles without ``phone:unmasked``. Messages from the browser are ignored.

Refusals: no or a bad token, or a role without the permission: 1008 (a missing permission audited as
``auth.denied``); a malformed call id: 1003. Each accepted subscription is audited as ``call.live_viewed``.
A browser that falls too far behind, or whose hub (Redis) cannot be reached or is lost, is closed with 1013:
reconnect (the call's history is replayed). Server shutdown: 1001.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from app.audit import service as audit
from app.auth.permissions import Permission
from app.auth.ws import authenticate, client_host, close
from app.db import Database
from app.live.hub import EventHub, HubError, SubscriptionLost
from app.live.models import CALL_ID_PATTERN
from app.live.service import ScreenPops, Viewer, following

router = APIRouter(prefix="/api/v1/calls", tags=["calls"])
log = logging.getLogger("hotline.live")

WAIT_FOR_CALL = 60.0  # seconds a call with no history is waited for
TRY_AGAIN = 1013
AGAIN = "实时推送中断，请重新连接"
UNSUPPORTED = 1003
CALL_ID = re.compile(CALL_ID_PATTERN)
Event = dict[str, Any]
Outcome = tuple[int, str] | None  # how to close; None: the browser is gone


def live_hub(app: Any) -> EventHub:
    return app.state.live_hub  # type: ignore[no-any-return]


def screen_pops(app: Any) -> ScreenPops:
    """The app's ``ScreenPops`` (``app.state.live_pops``), made on first use."""
    pops = getattr(app.state, "live_pops", None)
    if pops is None:
        pops = app.state.live_pops = ScreenPops(app.state.db)
    return pops  # type: ignore[no-any-return]


@router.websocket("/live")
async def live_feed(websocket: WebSocket) -> None:
    """call_started (with the screen pop) and call_ended of every call, as they happen."""
    viewer = await _admit(websocket, Permission.case_read)
    if viewer is None:
        return
    try:
        async with live_hub(websocket.app).subscribe(None) as events:
            if await _audited(websocket, viewer, "feed"):
                await _serve(websocket, viewer, events, until_ended=False)
    except HubError as e:
        await _unavailable(websocket, e)


@router.websocket("/{call_uuid}/live")
async def live_call(websocket: WebSocket, call_uuid: str) -> None:
    """One call's transcript as it is spoken: its history, then new events, until call_ended."""
    viewer = await _admit(websocket, Permission.transcript_read)
    if viewer is None:
        return
    if not CALL_ID.match(call_uuid):
        await close(websocket, UNSUPPORTED, "通话编号无效")
        return
    try:
        async with following(live_hub(websocket.app), call_uuid) as events:
            if await _audited(websocket, viewer, call_uuid):
                await _serve(websocket, viewer, _first_within(events, WAIT_FOR_CALL), until_ended=True)
    except HubError as e:
        await _unavailable(websocket, e)


# --- admission -------------------------------------------------------------------------------------------


async def _admit(websocket: WebSocket, permission: Permission) -> Viewer | None:
    await websocket.accept()
    state = websocket.app.state
    user = await authenticate(websocket, settings=state.settings, database=state.db, permission=permission)
    return None if user is None else Viewer.of(user)


async def _audited(websocket: WebSocket, viewer: Viewer, subject: str) -> bool:
    """Audit the subscription as a read; if that fails, it is closed (1011) and False returned."""
    try:
        await run_in_threadpool(_audit_viewed, websocket.app.state.db, viewer.username, subject,
                                client_host(websocket))
    except Exception:
        log.exception("could not audit a live subscription to %s", subject)
        await close(websocket, 1011, "服务器内部错误，请稍后重试")
        return False
    return True


def _audit_viewed(database: Database, username: str, subject: str, client: str) -> None:
    with database.session() as db:
        audit.record(db=db, actor=f"user:{username}", action="call.live_viewed", subject_type="call",
                     subject_id=subject, details={"client": client})


# --- delivery --------------------------------------------------------------------------------------------


async def _serve(websocket: WebSocket, viewer: Viewer, events: AsyncIterator[Event], *, until_ended: bool) -> None:
    """Send the events until they end (then close) or the browser goes away (then just stop)."""
    outcome: Outcome = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(_until_disconnected, websocket, tg.cancel_scope)
        outcome = await _forward(websocket, viewer, events, until_ended=until_ended)
        tg.cancel_scope.cancel()
    if outcome is not None:
        await close(websocket, *outcome)


async def _forward(websocket: WebSocket, viewer: Viewer, events: AsyncIterator[Event], *,
                   until_ended: bool) -> Outcome:
    pops = screen_pops(websocket.app)
    try:
        async for event in events:
            await websocket.send_json(await viewer.present(event, pops))
            if until_ended and event["type"] == "call_ended":
                return 1000, "通话已结束"
    except SubscriptionLost as e:
        log.warning("%s for %s cut off: %s", websocket.url.path, viewer.username, e)
        return TRY_AGAIN, AGAIN
    except TimeoutError:
        return 1000, "未收到该通话的实时转写"
    except (WebSocketDisconnect, RuntimeError, OSError):
        return None
    return 1001, "服务正在停止"


async def _unavailable(websocket: WebSocket, e: HubError) -> None:
    log.error("%s: live events unavailable: %s", websocket.url.path, e)
    await close(websocket, TRY_AGAIN, AGAIN)


async def _until_disconnected(websocket: WebSocket, scope: anyio.CancelScope) -> None:
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass
    scope.cancel()


async def _first_within(events: AsyncIterator[Event], seconds: float) -> AsyncIterator[Event]:
    """The events, ``TimeoutError`` if the first does not come within ``seconds``."""
    it = aiter(events)
    try:
        with anyio.fail_after(seconds):
            first = await anext(it)
    except StopAsyncIteration:
        return
    yield first
    async for event in it:
        yield event
