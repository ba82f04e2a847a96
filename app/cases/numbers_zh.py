"""Numbers as callers say them: Arabic or Chinese numerals, 万/千 with the colloquial short forms
(四万二 = 42000, 八千六 = 8600), and approximate counts (三十多, 二十几, 十几 → their floor).

Builds on asr.numbers.chinese_to_int (the transcript normalizer's reader) rather than re-implementing it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from asr.numbers import chinese_to_int

ZH_NUMERAL = "零〇一二三四五六七八九两十百千万亿"
_UNIT_VALUE = {"十": 10, "百": 100, "千": 1000, "万": 10_000}
# A number as said: Arabic (with a decimal point, "4.2万") or a run of Chinese numerals, then an
# optional 万/千 multiplier and an optional "about/more than" word.
NUMBER = rf"(?:\d+(?:\.\d+)?|[{ZH_NUMERAL}]+)"
APPROX = "多|几|余|来"


@dataclass(frozen=True)
class Number:
    value: int
    approximate: bool  # "三十多", "二十几", "左右"


def zh_to_int(words: str) -> int | None:
    """四万二千 → 42000, with the colloquial forms: 四万二 → 42000, 八千六 → 8600, 三千五 → 3500."""
    value = chinese_to_int(words)
    if value is None:
        return None
    # A trailing lone digit after 万/千/百 is the next place down (口语: 八千六 is 8600, not 8006).
    if len(words) >= 3 and words[-1] in "一二三四五六七八九两" and words[-2] in _UNIT_VALUE and words[-2] != "十":
        digit = chinese_to_int(words[-1]) or 0
        return value - digit + digit * _UNIT_VALUE[words[-2]] // 10
    return value


def parse(number: str, multiplier: str = "", approx: str = "") -> Number | None:
    """The value of a matched number: "42000", "4.2"+"万", "四万二千", "三十"+approx "多"."""
    scale = {"": 1, "万": 10_000, "千": 1000, "百": 100, "十": 10}.get(multiplier, 1)
    if re.fullmatch(r"\d+(?:\.\d+)?", number):
        value = round(float(number) * scale)
    else:
        words = number
        if words.endswith("十") and approx and len(words) == 1:
            words = "十"  # 十几 / 十多 → 10+
        base = zh_to_int(words)
        if base is None:
            return None
        value = base * scale
    return Number(value, bool(approx))
