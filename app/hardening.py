"""HTTP hygiene for every response (security headers, no ``server`` banner), the API docs behind a setting, and
a full disk said as such (507) rather than as a crash (500).

The Content-Security-Policy allows scripts from the site only: the web app is built by Vite into module scripts
in files (web/dist/index.html has no inline script) and Swagger UI's start-up code is served as a file too.
``style-src`` keeps ``'unsafe-inline'``: Element Plus and ECharts position popovers, tooltips and charts with
inline ``style`` attributes and injected ``<style>``; CSS cannot run script, and everything else stays closed.
``blob:`` is allowed for audio (recordings are fetched with the token and played from a blob URL) and for the
PDF preview frame; ``connect-src`` allows the API and the WebSockets of the address the page came from.
"""

from __future__ import annotations

import errno
import json

from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HSTS = "max-age=31536000"  # one year; no includeSubDomains: other hosts of an intranet domain may not have TLS


def content_security_policy(host: str) -> str:
    sockets = f" ws://{host} wss://{host}" if host and _plain_host(host) else ""
    return "; ".join((
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "font-src 'self' data:",
        "frame-src 'self' blob:",
        "worker-src 'self' blob:",
        f"connect-src 'self'{sockets}",
        "object-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "form-action 'self'",
    ))


def _plain_host(host: str) -> bool:
    """A Host header fit to be written into the policy (no spaces, quotes or separators)."""
    return all(c.isalnum() or c in ".-:[]_" for c in host)


class SecurityHeaders:
    """Pure ASGI middleware: the security headers on every HTTP response (a route's own are left alone). The
    ``server`` header is uvicorn's, switched off where it is started (``hotline serve``)."""

    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = ""
        for name, value in scope.get("headers", []):
            if name == b"host":
                host = value.decode("latin-1").strip()
                break

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                defaults = {
                    "Content-Security-Policy": content_security_policy(host),
                    "X-Content-Type-Options": "nosniff",
                    "X-Frame-Options": "DENY",
                    "Referrer-Policy": "no-referrer",
                    "Cross-Origin-Opener-Policy": "same-origin",
                    "Permissions-Policy": "microphone=(self), camera=(), geolocation=(), payment=()",
                }
                if self.hsts:
                    defaults["Strict-Transport-Security"] = HSTS
                for name, value in defaults.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, with_headers)


# --- API docs ------------------------------------------------------------------------------------------------

_SWAGGER_INIT = """window.ui = SwaggerUIBundle({
  url: %s, dom_id: '#swagger-ui', layout: 'BaseLayout', deepLinking: true, showExtensions: true,
  showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
"""


def offline_docs(app: FastAPI, *, public: bool) -> None:
    """``GET /api/v1/openapi.json`` for admins (their token), always. With ``public`` (HOTLINE_API_DOCS=true)
    also Swagger UI at /docs and /openapi.json for anyone: from files shipped in a Python package (the intranet
    has no CDN), its start-up script a file too, so the page keeps to the Content-Security-Policy."""
    from app.auth.permissions import Permission
    from app.deps import require

    @app.get("/api/v1/openapi.json", include_in_schema=False, dependencies=[Depends(require(Permission.user_admin))])
    def admin_openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    if not public:
        return
    import swagger_ui_bundle

    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")

    @app.get("/docs-init.js", include_in_schema=False)
    def docs_init() -> Response:
        return Response(_SWAGGER_INIT % json.dumps(app.openapi_url), media_type="text/javascript")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        body = get_swagger_ui_html(
            openapi_url=app.openapi_url or "", title="12351 Hotline API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js", swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        ).body
        page = bytes(body).decode()
        # FastAPI's page starts Swagger UI with an inline script, which the policy refuses: a file instead
        start, end = page.index("<script>"), page.rindex("</script>") + len("</script>")
        return HTMLResponse(page[:start] + '<script src="/docs-init.js"></script>' + page[end:])


# --- a full disk ---------------------------------------------------------------------------------------------

DISK_FULL = "服务器存储空间已满，本次操作未保存（已保存的数据不受影响）；请联系管理员清理磁盘后重试"


def disk_full(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) says the disk or the quota is full: ``ENOSPC``/``EDQUOT``, SQLite's
    "database or disk is full", PostgreSQL's DiskFull (53100)."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "database or disk is full" in str(e) or type(e).__name__ == "DiskFull" or \
                getattr(e, "sqlstate", None) == "53100":
            return True
        e = e.__cause__ or e.__context__
    return False


def disk_full_response() -> JSONResponse:
    return JSONResponse({"code": "insufficient_storage", "detail": DISK_FULL}, status_code=507)
