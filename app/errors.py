"""One error type for the API: a status, a stable machine code and a message for people (Chinese UI)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict


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


class ErrorOut(BaseModel):
    """Every error answer: a machine code and a message for people; some add fields (``errors`` on a 422)."""

    model_config = ConfigDict(extra="allow")

    code: str
    detail: str


# Declared on every API route (create_app): the refusals any of them may answer, in the shape they really have.
# The 422 replaces FastAPI's default HTTPValidationError schema, which is not what _invalid in app/main.py sends.
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorOut, "description": text} for status, text in (
        (400, "请求有误"), (401, "未登录或登录已失效"), (403, "无权进行此操作"), (404, "对象不存在"),
        (409, "与当前状态冲突"), (413, "请求体过大"), (415, "不支持的内容类型"), (422, "请求参数有误"),
        (429, "请求过于频繁"), (503, "服务暂不可用"), (507, "磁盘空间不足"))
}
