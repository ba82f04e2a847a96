"""Who may open a WebSocket: the same login token as the REST API (``?token=`` or ``Authorization: Bearer``),
the same permission matrix. Refusals are closed with 1008 before anything else is read or sent, and logged;
a missing permission (and a wrong peer credential) is also audited as ``auth.denied``, like an HTTP 403, and a
refused token (forged, expired, deactivated account) as ``auth.token_rejected``, like an HTTP 401."""

from __future__ import annotations

import contextlib
import logging

from fastapi import WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from app.audit import service as audit
from app.auth.permissions import Permission, allowed
from app.config import Settings
from app.db import Database
from app.deps import audit_rejected_token, get_current_user
from app.errors import ApiError
from app.users.models import User

log = logging.getLogger("hotline.auth")

POLICY_VIOLATION = 1008


def presented_token(websocket: WebSocket) -> str:
    """``?token=`` or else ``Authorization: Bearer``; empty when neither is there."""
    if token := websocket.query_params.get("token"):
        return token
    scheme, _, value = websocket.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def client_host(websocket: WebSocket) -> str:
    return websocket.client.host if websocket.client else "unknown"


async def close(websocket: WebSocket, code: int, reason: str) -> None:
    """Close with ``code`` and ``reason`` (cut to the 123 bytes a close frame holds); a peer already gone
    is not an error."""
    with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
        await websocket.close(code, reason.encode()[:123].decode(errors="ignore"))


async def authenticate(websocket: WebSocket, *, settings: Settings, database: Database,
                       permission: Permission) -> User | None:
    """The logged-in user (the REST API's own token check, on a worker thread) if their role has
    ``permission``; otherwise the (accepted) connection is refused with 1008 and None returned."""
    token = presented_token(websocket)
    try:
        user = await run_in_threadpool(get_current_user, settings, database, token or None)
    except ApiError as e:
        log.warning("%s from %s refused: %s", websocket.url.path, client_host(websocket), e.message)
        if token:  # a refused token is audited, as on the REST API (app/deps.py)
            with contextlib.suppress(Exception):
                await run_in_threadpool(audit_rejected_token, database, token=token, path=websocket.url.path,
                                        method="WEBSOCKET", client=client_host(websocket), reason=e.message)
        await close(websocket, POLICY_VIOLATION, e.message)
        return None
    if not allowed(user.role, permission):
        await deny(websocket, database, f"user:{user.username}", "没有权限执行此操作", permission=permission.value)
        return None
    return user


async def deny(websocket: WebSocket, database: Database, actor: str, why: str, **details: str) -> None:
    """Refuse the connection: logged, audited (``auth.denied``), closed with 1008 and ``why``."""
    log.warning("%s from %s (%s) refused: %s", websocket.url.path, client_host(websocket), actor, why)
    try:
        await run_in_threadpool(_audit_denied, database, actor, websocket.url.path, why, details)
    except Exception:
        log.exception("could not audit a refused WebSocket")
    await close(websocket, POLICY_VIOLATION, why)


def _audit_denied(database: Database, actor: str, path: str, why: str, details: dict[str, str]) -> None:
    with database.session() as db:
        audit.record(db=db, actor=actor[:128], action="auth.denied", subject_type="route", subject_id=path[:64],
                     details={"method": "WEBSOCKET", "reason": why, **details})
