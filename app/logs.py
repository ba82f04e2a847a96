"""Logging for every `hotline` process: one handler on the root logger whose filter keeps secrets and personal
numbers out of the log, whatever logger a line comes from (ours, uvicorn's access and error logs, huey,
starlette, tracebacks included).

- query strings lose their values (``/api/v1/calls/live?token=…``, ``/api/v1/search?q=…``): login tokens
  travel in WebSocket URLs, and searches are for phone and ID numbers;
- login tokens (JWTs) and ``Bearer …`` anywhere in a line, and the values of ``password``/``token``/``secret``
  fields (``password=…``, ``"password": "…"``) and of validation errors' ``input``;
- phone and ID card numbers masked as for roles without ``phone:unmasked``/``id:unmasked``
  (app/auth/permissions.py: 138****5678).

Request bodies are never logged: the 422 handler does not even echo them back (app/main.py).
"""

from __future__ import annotations

import logging
import os
import re

from app.auth.permissions import Masking

REDACTED = "…"
_MASK = Masking(phones=True, ids=True)
# a path with a query string, as in a request line or a URL: the values go, the names stay
_QUERY = re.compile(r"(?P<path>(?:[a-z][a-z0-9+.-]*://[^\s/?\"'#]*)?/[^\s?\"'#]*)\?(?P<query>[^\s\"'#]*)", re.I)
_PARAM = re.compile(r"(?P<name>[^&=;]*)=[^&;]*")
_JWT = re.compile(r"\beyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[\w\-.~+/]+=*")
_SECRET_FIELD = re.compile(
    r"(?i)(?P<key>[\"']?\b(?:password|passwd|new_password|old_password|secret|secret_key|token|access_token|"
    r"refresh_token|media_token|master_key|authorization)[\"']?\s*[:=]\s*)"
    r"(?P<value>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[^\s,;&}\]\"']+)")
_INPUT = re.compile(r"(?P<key>['\"]?input(?:_value)?['\"]?\s*[:=]\s*)(?P<value>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\""
                    r"|\{.*?\}(?=, ['\"]?\w+['\"]?\s*[:=]|\}|$)|[^\s,}\]]+)", re.M)


def _query(m: re.Match[str]) -> str:
    redacted = _PARAM.sub(lambda p: f"{p.group('name')}={REDACTED}", m.group("query"))
    return f"{m.group('path')}?{redacted}"


def redact(text: str) -> str:
    """``text`` with query values, tokens, secrets and inputs taken out and personal numbers masked."""
    if not text:
        return text
    text = _QUERY.sub(_query, text)
    text = _JWT.sub("[token]", text)
    text = _BEARER.sub(r"\1 [token]", text)
    text = _SECRET_FIELD.sub(lambda m: m.group("key") + REDACTED, text)
    text = _INPUT.sub(lambda m: m.group("key") + REDACTED, text)
    return _MASK.text(text)


class RedactingFilter(logging.Filter):
    """Applies ``redact`` to each record's message (its arguments merged in) and to its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: left to the formatter to report
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup(level: str | None = None) -> logging.Handler:
    """The root logger's one handler (stderr), with the redacting filter; uvicorn is started without its own
    logging config (``log_config=None``) so that its access and error logs go through it too."""
    root = logging.getLogger()
    for handler in root.handlers:
        if any(isinstance(f, RedactingFilter) for f in handler.filters):
            return handler
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RedactingFilter())
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel((level or os.environ.get("HOTLINE_LOG_LEVEL", "INFO")).upper())
    return handler
