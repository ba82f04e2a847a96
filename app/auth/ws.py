"""Who may open a WebSocket: the same login token as the REST API (``?token=`` or ``Authorization: Bearer``),
the same permission matrix. Refusals are closed with 1008 before anything else is read or sent, and logged;
a missing permission (and a wrong peer credential) is also audited as ``auth.denied``, like an HTTP 403, and a
refused token (forged, expired, deactivated account) as ``auth.token_rejected``, like an HTTP 401.

Staff WebSockets (``authenticate``) are for the web app's own pages: a browser says which page opens one
(``Origin``), and one from a page at another address is refused (1008, audited) before the token is looked at,
so another site cannot use a staff member's browser against the live feeds. The site's own address is the
``Host`` the request came to; HOTLINE_ALLOWED_ORIGINS adds more (a reverse proxy that changes the Host). A
connection without ``Origin`` is not from a browser page (a script, a wallboard client) and needs its token
like any other; machine peers (PBX media streams) never send one and are not checked here."""

from __future__ import annotations

import contextlib
import logging
from urllib.parse import urlsplit

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


_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _origin_key(url: str) -> tuple[str, int] | None:
    """(host, port) of an origin (``https://host[:port]``), None when it is not one (``null``, junk)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    return parts.hostname.lower().rstrip("."), port


def origin_allowed(websocket: WebSocket, settings: Settings) -> bool:
    """No ``Origin`` (not a browser page), or one at the address the connection came to (the ``Host``, either
    scheme: TLS may end at a proxy) or in HOTLINE_ALLOWED_ORIGINS."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    key = _origin_key(origin)
    if key is None:
        return False
    if any(_origin_key(allowed) == key for allowed in settings.allowed_origins):
        return True
    host = websocket.headers.get("host", "")
    scheme = urlsplit(origin.strip()).scheme.lower()
    return bool(host) and _origin_key(f"{scheme}://{host}") == key


async def authenticate(websocket: WebSocket, *, settings: Settings, database: Database,
                       permission: Permission) -> User | None:
    """The logged-in user (the REST API's own token check, on a worker thread) if the page opening the
    connection is the site's own (``origin_allowed``) and their role has ``permission``; otherwise the
    (accepted) connection is refused with 1008 and None returned."""
    if not origin_allowed(websocket, settings):
        origin = websocket.headers.get("origin", "")[:200]
        await deny(websocket, database, f"anonymous:{client_host(websocket)}", "不允许从其他网站的页面连接",
                   origin=origin)
        return None
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
