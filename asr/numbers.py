"""Numbers written one way in transcripts (after GB/T 15835): Arabic digits for exact quantities.

Whisper writes the same amount as 八千六百元, 8,600元 or 8600元. Case extraction, search and reports need
one form, so exact multi-character numbers before a unit become digits (八千六百元 → 8600元,
二十四小时 → 24小时, 百分之八十 → 80%), digit-by-digit readings of five or more digits become digit
strings (一二三五一 → 12351, a hotline or phone number), and thousands separators go (8,600 → 8600).
Single-character numbers (一个, 两个多月, 六个月) and approximate ones (十几个, 二十多个) stay as words.
"""

from __future__ import annotations

import re

_DIGIT = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_UNIT = {"十": 10, "百": 100, "千": 1000}
_BIG = {"万": 10_000, "亿": 100_000_000}
_NUMERAL = "零〇一二三四五六七八九两十百千万亿"
_MEASURES = ("元", "块", "个", "名", "人", "位", "天", "日", "周", "月", "年", "岁", "小时", "分钟", "次", "号",
             "楼", "米", "公斤", "斤", "平方", "万元")
_QUANTITY = re.compile(rf"(?<![{_NUMERAL}几])([{_NUMERAL}]{{2,}})(?=({'|'.join(_MEASURES)}))")
_READOUT = re.compile(r"[零〇一二三四五六七八九幺]{5,}")
_PERCENT = re.compile(rf"百分之([{_NUMERAL}]+)")
_THOUSANDS = re.compile(r"(?<![\d.])(\d{1,3}(?:,\d{3})+)(?![\d,])")
# Digits with Chinese place words, as Whisper writes some amounts: 1万2千元, 3千5百块, 1万2元 (口语 12000).
_MIXED = re.compile(rf"(?<![\d.])((?:\d[万千百十])+\d?)(?=({'|'.join(_MEASURES)}))")
_ZH_DIGITS = str.maketrans("0123456789", "零一二三四五六七八九")


def chinese_to_int(text: str) -> int | None:
    """二十四 → 24, 四万二千 → 42000, 一万二千三百五十一 → 12351; None if it is not a plain number."""
    total = section = digit = 0
    seen = False
    for i, ch in enumerate(text):
        if ch in _DIGIT:
            if i and text[i - 1] in _DIGIT and text[i - 1] not in "零〇":
                return None  # 五六个人 is a range, not a number
            digit = _DIGIT[ch]
            seen = True
        elif ch in _UNIT:
            section += (digit or (1 if not seen or digit == 0 else digit)) * _UNIT[ch]
            digit = 0
            seen = True
        elif ch in _BIG:
            total = (total + section + digit) * _BIG[ch] if ch == "亿" else total + (section + digit) * _BIG[ch]
            section = digit = 0
        else:
            return None
    value = total + section + digit
    return value if seen or text in _BIG else None


def _quantity(m: re.Match[str]) -> str:
    words = m.group(1)
    if words[-1] in "零〇":  # "二零" is not a quantity anyone says
        return words
    value = chinese_to_int(words)
    if value is None or (m.group(2) == "万元" and words[-1] in _BIG):
        return words
    return str(value)


def _mixed(m: re.Match[str]) -> str:
    words = m.group(1).translate(_ZH_DIGITS)
    value = chinese_to_int(words)
    if value is None:
        return m.group(1)
    if words[-1] in _DIGIT and len(words) >= 3 and words[-2] in "万千百":  # 1万2 is 12000, not 10002
        place = {"万": 10_000, "千": 1000, "百": 100}[words[-2]]
        value += _DIGIT[words[-1]] * (place // 10 - 1)
    return str(value)


# A number read out digit by digit that Whisper wrote in dashed groups (123-5-1 for 幺二三五幺, 0532-8888-6666):
# three or more groups are one number; two (3-5天) are a range and stay, and so does a date (2026-12-03).
_DASHED = re.compile(r"(?<![\d\-])\d+(?:-\d+){2,}(?![\d\-])")
_DATE = re.compile(r"\d{4}-(?:0?[1-9]|1[0-2])-(?:0?[1-9]|[12]\d|3[01])")


def normalize_numbers(text: str) -> str:
    text = _DASHED.sub(lambda m: m.group(0) if _DATE.fullmatch(m.group(0)) else m.group(0).replace("-", ""), text)
    text = _THOUSANDS.sub(lambda m: m.group(1).replace(",", ""), text)
    text = _MIXED.sub(_mixed, text)
    text = _PERCENT.sub(lambda m: f"{v}%" if (v := chinese_to_int(m.group(1))) is not None else m.group(0), text)
    text = _READOUT.sub(lambda m: "".join(str(_DIGIT.get(c, 1)) for c in m.group(0)), text)
    return _QUANTITY.sub(_quantity, text)
