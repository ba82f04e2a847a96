"""Uploads refused before they cost anything: who may send one and how big it may be are decided before the body
is read, and the body is counted as it streams.

FastAPI parses a multipart body (into temporary files) before a route's dependencies run, so a route's own
``require(...)`` comes too late to keep an anonymous 400 MB upload off the disk. ``UploadGuard`` sits in front of
every multipart upload route of the app (found from the routes themselves: a ``File``/``UploadFile`` parameter,
or a ``multipart/form-data`` request body declared in ``openapi_extra`` by a route that reads its own stream):

1. the bearer token and the route's ``require(...)`` permissions are checked first, with the same functions and
   audit records as the route's own dependencies (401/403, ``Connection: close``, nothing read);
2. a ``Content-Length`` over the route's limit is refused at once with 413;
3. the body is counted as it arrives; once over the limit the route sees the client gone and the answer is 413.

``read_form`` reads a multipart body as it streams (no temporary copy): small text fields kept in memory, the file
part's bytes handed to a sink (the recordings upload writes them straight into its staged file).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.security.utils import get_authorization_scheme_param
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import deps
from app.auth.permissions import Permission
from app.config import Settings
from app.db import Database
from app.errors import ApiError, api_error_handler

FORM_SLACK = 64 * 1024  # multipart framing and the small form fields, on top of a route's file limit
UPLOAD_METHODS = frozenset({"POST", "PUT", "PATCH"})


def multipart_body(schema: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads its own multipart stream: the form described as FastAPI would,
    and the route recognised as an upload by ``UploadGuard``."""
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


@dataclass(frozen=True)
class UploadRoute:
    methods: frozenset[str]
    path: str
    path_regex: re.Pattern[str]
    authenticated: bool  # the route needs a logged-in user
    permissions: tuple[Permission, ...]  # every require(...) on it
    limit: Callable[[Settings], int]  # bytes of body allowed (the file's limit plus FORM_SLACK)

    def matches(self, scope: Scope) -> bool:
        return scope["method"] in self.methods and self.path_regex.match(_route_path(scope)) is not None


def _route_path(scope: Scope) -> str:
    """The path the routes see (without a ``root_path`` the app is mounted under)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root + "/") else path


def _is_upload(dependant: Dependant, openapi_extra: dict[str, Any] | None) -> bool:
    if any(isinstance(p.field_info, params.File) for p in dependant.body_params):
        return True
    content = ((openapi_extra or {}).get("requestBody") or {}).get("content") or {}
    return "multipart/form-data" in content


def _walk(dependant: Dependant) -> Iterable[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _walk(sub)


def upload_routes(routes: Sequence[Any], limits: Mapping[Callable[..., Any], int]) -> list[UploadRoute]:
    """The app's multipart upload routes (routers included), each with who may call it and its size limit
    (``limits`` by endpoint; default ``HOTLINE_MAX_UPLOAD_MB``)."""
    out = []
    for context in iter_route_contexts(routes):
        dependant = getattr(context, "dependant", None)
        methods = frozenset(context.methods or ()) & UPLOAD_METHODS
        if not isinstance(context.original_route, APIRoute) or dependant is None or not methods or \
                not _is_upload(dependant, context.openapi_extra):
            continue
        calls = list(_walk(dependant))
        permissions = tuple(c.permission for c in calls if isinstance(c, deps.Require))
        authenticated = bool(permissions) or any(
            c in (deps.current_session, deps.current_user, deps.get_current_user) for c in calls)
        fixed = limits.get(context.endpoint) if context.endpoint else None

        def limit(settings: Settings, fixed: int | None = fixed) -> int:
            return (fixed if fixed is not None else settings.max_upload_bytes) + FORM_SLACK

        out.append(UploadRoute(methods, context.path or "", context.path_regex, authenticated, permissions, limit))
    return out


def _authorize(request: Request, settings: Settings, database: Database, spec: UploadRoute) -> None:
    """The route's own checks, in the same order and with the same audit records (``auth.token_rejected``,
    ``auth.denied``): ApiError(401/403) when refused."""
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    bearer = token if scheme.lower() == "bearer" and token else None
    user = deps.current_session(request, settings, database, bearer).user
    for permission in spec.permissions:
        deps.Require(permission)(request, user, database)


class UploadGuard:
    """Pure ASGI middleware: see the module's docstring. ``limits``: the file size limit of routes whose limit is
    not ``HOTLINE_MAX_UPLOAD_MB``, by endpoint function."""

    def __init__(self, app: ASGIApp, limits: Mapping[Callable[..., Any], int] | None = None) -> None:
        self.app = app
        self.limits = dict(limits or {})
        self._routes: list[UploadRoute] | None = None

    def _match(self, scope: Scope) -> UploadRoute | None:
        if self._routes is None:  # the routes are all there by the first request
            self._routes = upload_routes(scope["app"].routes, self.limits)
        return next((spec for spec in self._routes if spec.matches(scope)), None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in UPLOAD_METHODS or (spec := self._match(scope)) is None:
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})
        request = Request(scope)
        state = scope["app"].state
        settings: Settings = state.settings
        limit = spec.limit(settings)
        try:
            if spec.authenticated:
                await run_in_threadpool(_authorize, request, settings, state.db, spec)
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise _too_large(limit)
        except ApiError as e:  # refused before a byte of the body is read: the connection is closed after it
            await _refuse(request, e, scope, receive, send)
            return
        await self._counted(scope, receive, send, request, limit)

    async def _counted(self, scope: Scope, receive: Receive, send: Send, request: Request, limit: int) -> None:
        received = 0
        over = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # the route sees the client gone; the answer is 413 (below)
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over:  # whatever the route answered to the cut-off body, the client gets 413
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _refuse(request, _too_large(limit), scope, receive, send)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not over:
                raise
            if not started:
                await _refuse(request, _too_large(limit), scope, receive, send)


def _too_large(limit: int) -> ApiError:
    mb = max(1, (limit - FORM_SLACK) // (1024 * 1024))
    return ApiError(413, "too_large", f"文件超过上传上限 {mb} MB")


async def _refuse(request: Request, error: ApiError, scope: Scope, receive: Receive, send: Send) -> None:
    response = await api_error_handler(request, error)
    response.headers["Connection"] = "close"  # the rest of the body is never read
    await response(scope, receive, send)


# --- reading a multipart body as it streams ------------------------------------------------------------------


class FormError(ValueError):
    """The body is not a well-formed multipart form."""


@dataclass
class StreamedForm:
    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None  # the file part's name as sent; None: no file part came
    file_type: str | None = None


def read_form(content_type: str, chunks: Iterable[bytes], *, file_field: str, sink: Callable[[bytes], None],
              field_limit: int = 16 * 1024, max_fields: int = 20) -> StreamedForm:
    """Parse ``multipart/form-data`` from ``chunks`` as they come: the first part named ``file_field`` with a
    filename goes to ``sink`` piece by piece (nothing else is kept of it), other parts are text fields of at most
    ``field_limit`` bytes (``max_fields`` of them). FormError on anything else; what ``sink`` raises (the size
    limit, a full disk) goes through."""
    kind, options = parse_options_header(content_type)
    if kind != b"multipart/form-data" or b"boundary" not in options:
        raise FormError("请求应为 multipart/form-data 表单")
    charset = options.get(b"charset", b"utf-8").decode("latin-1")
    try:
        charset = codecs.lookup(charset).name
    except LookupError:
        charset = "utf-8"
    form = StreamedForm()
    part: dict[str, Any] = {}
    header = [b"", b""]
    ended = False

    def decode(raw: bytes) -> str:
        return raw.decode(charset, errors="replace")

    def on_part_begin() -> None:
        part.clear()
        part.update(disposition=b"", type=None, to_file=False, skip=False, data=bytearray())

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header[0] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header[1] += data[start:end]

    def on_header_end() -> None:
        name = header[0].strip().lower()
        if name == b"content-disposition":
            part["disposition"] = header[1]
        elif name == b"content-type":
            part["type"] = decode(header[1]).strip()
        header[0], header[1] = b"", b""

    def on_headers_finished() -> None:
        _, opts = parse_options_header(part["disposition"])
        if b"name" not in opts:
            raise FormError('表单的每一部分都需要 Content-Disposition 的 name')
        part["name"] = decode(opts[b"name"])
        if b"filename" in opts:  # a file: the first one under ``file_field`` goes to the sink, others are skipped
            if part["name"] == file_field and form.filename is None:
                form.filename, form.file_type, part["to_file"] = decode(opts[b"filename"]), part["type"], True
            else:
                part["skip"] = True
        elif len(form.fields) >= max_fields:
            raise FormError("表单字段过多")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if part["to_file"]:
            sink(data[start:end])
        elif not part["skip"]:
            if len(part["data"]) + end - start > field_limit:
                raise FormError(f"表单字段 {part['name']} 过长")
            part["data"] += data[start:end]

    def on_part_end() -> None:
        if not part["to_file"] and not part["skip"]:
            form.fields.setdefault(part["name"], decode(bytes(part["data"])))

    def on_end() -> None:
        nonlocal ended
        ended = True

    parser = MultipartParser(options[b"boundary"], {
        "on_part_begin": on_part_begin, "on_part_data": on_part_data, "on_part_end": on_part_end,
        "on_header_field": on_header_field, "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished, "on_end": on_end})
    try:
        for chunk in chunks:
            parser.write(chunk)
        parser.finalize()
    except FormParserError as e:
        raise FormError("上传表单格式有误") from e
    if not ended:
        raise FormError("上传表单不完整")
    return form
