"""Report periods: a Beijing-time month (YYYY-MM) or day (YYYY-MM-DD) as an interval of UTC instants."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from app.db import as_utc
from app.stats.service import TZ, local_midnight

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class PeriodError(ValueError):
    """A period that is malformed or has not begun."""


@dataclass(frozen=True)
class Window:
    """[start, end) in UTC; ``first``/``last``: the Beijing days it covers."""

    start: datetime
    end: datetime
    first: date
    last: date

    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]


def days(first: date, last: date) -> Window:
    return Window(local_midnight(first), local_midnight(last + timedelta(days=1)), first, last)


def month(text: str) -> Window:
    m = _MONTH.match(text)
    if m is None:
        raise PeriodError(f"月份格式应为 YYYY-MM：{text}")
    first = date(int(m[1]), int(m[2]), 1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return days(first, following - timedelta(days=1))


def day(text: str) -> Window:
    try:
        d = date.fromisoformat(text)
    except ValueError as e:
        raise PeriodError(f"日期格式应为 YYYY-MM-DD：{text}") from e
    if len(text) != 10:
        raise PeriodError(f"日期格式应为 YYYY-MM-DD：{text}")
    return days(d, d)


def shift_months(text: str, months: int) -> str:
    index = int(text[:4]) * 12 + int(text[5:7]) - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def local_day(at: datetime) -> date:
    return as_utc(at).astimezone(TZ).date()


def today(now: datetime | None = None) -> date:
    return local_day(now or datetime.now(UTC))


def month_of(at: datetime) -> str:
    return as_utc(at).astimezone(TZ).strftime("%Y-%m")


def cn_date(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def cn_month(text: str) -> str:
    return f"{int(text[:4])}年{int(text[5:7])}月"
