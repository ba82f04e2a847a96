"""Masking at the API boundary: every JSON response to a user whose role may not see phone numbers or ID card
numbers goes through ``Masking.payload`` on its way out, whatever route produced it (cases, transcripts, calls,
search hits, audit details, routes added later). ``require()`` (app/deps.py) says who the user is by putting
their ``Masking`` on the request (``request.state.masking``); responses to requests without one (log in,
health) and responses that are not JSON (audio) pass untouched. WebSocket events are masked where they are
sent (app/live/service.py ``Viewer.present``)."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth.permissions import Masking

STATE_KEY = "masking"


def set_for(request: Request, masking: Masking) -> None:
    """Mark the request's response for masking (called once the user is known)."""
    setattr(request.state, STATE_KEY, masking)


def _masking(scope: Scope) -> Masking | None:
    state = scope.get("state")
    masking = state.get(STATE_KEY) if isinstance(state, dict) else None
    return masking if isinstance(masking, Masking) and masking.active else None


def _is_json(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name.lower() == b"content-type":
            kind = value.split(b";")[0].strip().lower()
            return kind == b"application/json" or kind.endswith(b"+json")
    return False


class MaskingMiddleware:
    """Pure ASGI (streams nothing it does not have to): JSON bodies of masked users are collected, masked
    and sent with their new length; everything else goes straight through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})  # shared with the request objects down the stack, which fill it in
        start: Message | None = None
        chunks: list[bytes] = []

        async def masked_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                masking = _masking(scope)
                if masking is None or not _is_json(list(message.get("headers", []))):
                    await send(message)
                    return
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            masking = _masking(scope)
            body = _mask_body(b"".join(chunks), masking) if masking else b"".join(chunks)
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body, "more_body": False})

        await self.app(scope, receive, masked_send)


def _mask_body(body: bytes, masking: Masking) -> bytes:
    try:
        doc: Any = json.loads(body)
    except ValueError:  # not JSON after all: mask it as text rather than let it out
        return masking.text(body.decode(errors="replace")).encode()
    return json.dumps(masking.payload(doc), ensure_ascii=False, separators=(",", ":")).encode()
