"""Scoring transcripts fairly: character error rate after normalizing both sides the same way.

Normalization (as the corpus README prescribes): NFKC, traditional → simplified, Arabic numerals read out
in Chinese, punctuation and spaces removed. A number can be read two ways (12351 as 一二三五一 or as
一万二千三百五十一); each number is read the way the reference reads it when the reference contains
one of the readings, else as a cardinal.
"""

from __future__ import annotations

import re
import unicodedata

from asr.mandarin import to_simplified

_DIGITS = "零一二三四五六七八九"
_NUMBER = re.compile(r"(\d[\d,]*(?:\.\d+)?)(%?)")


def _below_10k(n: int) -> str:
    out = ""
    zero = False
    for value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        d = n // value % 10
        if d == 0:
            zero = bool(out)
            continue
        if zero:
            out += "零"
            zero = False
        out += _DIGITS[d] + unit
    return out


def cardinal(n: int) -> str:
    """Chinese reading of a non-negative integer: 8600 → 八千六百, 42000 → 四万二千, 15 → 十五."""
    if n == 0:
        return "零"
    parts: list[str] = []
    for unit, size in (("亿", 10**8), ("万", 10**4), ("", 1)):
        chunk = n // size % 10**4 if size < 10**8 else n // size
        if chunk:
            text = cardinal(chunk) if chunk >= 10**4 else _below_10k(chunk)
            if parts and chunk < 1000:
                text = "零" + text
            parts.append(text + unit)
        n %= size
    out = "".join(parts)
    return out[1:] if out.startswith("一十") else out


def readings(number: str, percent: str = "") -> list[str]:
    """The ways a written number is read: cardinal first, then digit by digit."""
    whole, _, frac = number.replace(",", "").partition(".")
    tail = ("点" + "".join(_DIGITS[int(d)] for d in frac)) if frac else ""
    prefix = "百分之" if percent else ""
    out = [prefix + cardinal(int(whole)) + tail]
    if len(whole) > 1 and not percent:
        out.append("".join(_DIGITS[int(d)] for d in whole) + tail)
    return out


def normalize(text: str, reference: str = "") -> str:
    """Text reduced to the characters CER counts."""
    text = to_simplified(unicodedata.normalize("NFKC", text))

    def read(m: re.Match[str]) -> str:
        options = readings(m.group(1), m.group(2))
        return next((o for o in options if o in reference), options[0])

    text = _NUMBER.sub(read, text)
    return "".join(ch for ch in text if unicodedata.category(ch)[0] in "LN").lower()


def edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def char_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edit distance, reference length) after normalizing both; CER = sum of the first / sum of the second."""
    ref = normalize(reference)
    return edit_distance(ref, normalize(hypothesis, ref)), len(ref)
