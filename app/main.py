"""create_app(): settings, database, job queue, error handlers, routers and the web app."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import health
from app.audit import views as audit_views
from app.auth import views as auth_views
from app.auth.masking import MaskingMiddleware
from app.calls import media_views
from app.calls import views as call_views
from app.cases import views as case_views
from app.clues import views as clue_views
from app.config import Settings
from app.db import Database
from app.enterprises import views as enterprise_views
from app.errors import ERROR_RESPONSES, ApiError, api_error_handler
from app.exports import views as export_views
from app.hardening import SecurityHeaders, disk_full, disk_full_response, offline_docs
from app.jobs import JobQueue
from app.live import ingest as live_ingest
from app.live import views as live_views
from app.live.hub import make_hub
from app.notifications import views as notification_views
from app.recordings import views as recording_views
from app.reports import views as report_views
from app.search import views as search_views
from app.stats import views as stats_views
from app.taxonomy import views as taxonomy_views
from app.transcripts import views as transcript_views
from app.uploads import UploadGuard
from app.users import views as user_views
from app.warnings import service as warning_service
from app.warnings import views as warning_views

log = logging.getLogger(__name__)
WEB_DIR = Path(__file__).resolve().parent.parent / "web"


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    if disk_full(exc):  # said as such (507), not as a crash; what is already on file is untouched
        log.error("disk full on %s %s: %s", request.method, request.url.path, exc)
        return disk_full_response()
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"code": "internal", "detail": "服务器内部错误，请稍后重试"}, status_code=500)


async def _invalid(_request: Request, exc: Exception) -> JSONResponse:
    """422 naming the fields that are wrong and why; what was sent is not echoed back (``input``: it may be a
    password, an ID number, or a whole body)."""
    assert isinstance(exc, RequestValidationError)
    fields = [".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]) for e in exc.errors()]
    # a validator's own ValueError sits in ``ctx`` as an exception object: said as text, not serialized
    errors = [{**{k: v for k, v in e.items() if k not in ("input", "url")},
               **({"ctx": {k: str(v) for k, v in e["ctx"].items()}} if "ctx" in e else {})} for e in exc.errors()]
    return JSONResponse({"code": "invalid", "detail": f"请求参数有误：{', '.join(fields)}",
                         "errors": jsonable_encoder(errors)}, status_code=422)


_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large",
               415: "unsupported_media_type"}


async def _http_error(_request: Request, exc: Exception) -> Response:
    """Starlette's and FastAPI's own refusals (an unparsable form or multipart body, an unknown route, a wrong
    method) in the shape of every other error: ``code`` and ``detail``, as the OpenAPI schema declares."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code in (204, 304):  # no body allowed
        return Response(status_code=exc.status_code, headers=exc.headers)
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    return JSONResponse({"code": code, "detail": exc.detail}, status_code=exc.status_code,
                        headers=dict(exc.headers or {}))


async def _out_of_range(request: Request, exc: Exception) -> JSONResponse:
    """422 for a value that passed validation but that Python or the database cannot hold: an integer beyond 64
    bits (SQLite's driver raises OverflowError, PostgreSQL a DataError), a date whose UTC form falls outside
    years 1-9999, text with a lone surrogate (no UTF-8 for it). The cause is what the client sent: said so, not
    logged as a crash; the value is not echoed back."""
    log.info("out-of-range input on %s %s: %s: %s", request.method, request.url.path, type(exc).__name__,
             str(exc)[:200])
    return JSONResponse({"code": "invalid", "detail": "请求参数超出允许范围或含有无效字符"}, status_code=422)


def create_app(settings: Settings | None = None, *, queue: JobQueue | None = None,
               database: Database | None = None) -> FastAPI:
    settings = settings or Settings()
    settings.ensure_dirs()
    owned = database is None
    db = database or Database(settings.sqlalchemy_url)
    db.upgrade()
    with db.session() as session:  # a new site starts with the default early-warning rules
        warning_service.seed_rules(db=session)
    live_hub = make_hub(settings)  # live transcripts: through Redis when configured, else in this process

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with live_ingest.running(settings, live_hub):
            yield
        if owned:
            db.dispose()

    app = FastAPI(title="12351 Hotline", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url="/openapi.json" if settings.api_docs else None,
                  description="职工服务热线：通话录音 → 转写 → 工单 → 检索 → 审计")
    offline_docs(app, public=settings.api_docs)
    app.state.settings = settings
    app.state.db = db
    app.state.queue = queue or JobQueue(settings, database=db)
    app.state.live_hub = live_hub
    app.add_exception_handler(ApiError, api_error_handler)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    # handled before the catch-all: a full disk (ENOSPC, "database or disk is full") answers 507, not a crash
    app.add_exception_handler(OSError, _unexpected)
    app.add_exception_handler(OperationalError, _unexpected)
    # values the client sent that the database cannot store or compare (see _out_of_range): 422, not 500
    for error in (OverflowError, DataError, UnicodeEncodeError):
        app.add_exception_handler(error, _out_of_range)
    app.add_middleware(MaskingMiddleware)  # phone and ID numbers masked per role in every JSON response
    # uploads: who may send one and how big, decided before the body is read (app/uploads.py)
    app.add_middleware(UploadGuard, limits={clue_views.import_clues: clue_views.MAX_IMPORT_BYTES,
                                            enterprise_views.import_enterprises: enterprise_views.MAX_IMPORT_BYTES})
    app.add_middleware(SecurityHeaders, hsts=settings.tls)  # outermost of ours: on every answer, refusals too
    for module in (auth_views, live_views, call_views, media_views, recording_views, case_views, search_views,
                   audit_views, notification_views, user_views, stats_views, taxonomy_views, transcript_views,
                   enterprise_views, warning_views, export_views, clue_views, report_views):
        app.include_router(module.router, responses=ERROR_RESPONSES)

    app.include_router(health.router)  # public: each part up/down (app/health.py)

    web = WEB_DIR / "dist" if (WEB_DIR / "dist" / "index.html").exists() else WEB_DIR / "static"
    if (web / "index.html").exists():
        app.mount("/", StaticFiles(directory=web, html=True), name="web")
    return app
