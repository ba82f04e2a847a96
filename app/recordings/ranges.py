"""HTTP Range (RFC 9110 §14) for the audio endpoint: one byte range per request, as players ask."""

from __future__ import annotations

import re
from dataclasses import dataclass

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")


@dataclass(frozen=True)
class Span:
    start: int
    end: int  # exclusive
    partial: bool  # answered with 206 and Content-Range


def parse(header: str | None, size: int) -> Span | None:
    """The bytes to send for a ``Range`` header on a file of ``size`` bytes; None when unsatisfiable (416).
    No header, one that is not a single byte range, or several ranges: the whole file (200), which RFC 9110
    allows a server to answer instead of a range it does not support."""
    m = _RANGE.match(header or "")
    if m is None or (not m.group(1) and not m.group(2)):
        return Span(0, size, False)
    first, last = m.group(1), m.group(2)
    if not first:  # the last N bytes
        n = int(last)
        return Span(max(size - n, 0), size, True) if n > 0 and size > 0 else None
    start = int(first)
    end = min(int(last) + 1, size) if last else size
    if start >= size or (last and int(last) < start):
        return None
    return Span(start, end, True)
