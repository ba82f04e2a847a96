"""One error type for the API: a status, a stable machine code and a message for people (Chinese UI)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: object) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra  # more fields for clients, e.g. ``allowed`` moves beside a refused one


async def api_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
    if "retry_after" in exc.extra:  # 503/429: when to try again, in seconds
        headers["Retry-After"] = str(exc.extra["retry_after"])
    return JSONResponse({**exc.extra, "code": exc.code, "detail": exc.message}, status_code=exc.status,
                        headers=headers)
