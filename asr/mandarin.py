"""Mandarin clean-up of raw Whisper text: simplified script, full-width punctuation, known hallucinations,
repetition loops, numbers in one form (asr/numbers.py). Domain-term correction is asr/lexicon.py.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from functools import lru_cache

from opencc import OpenCC

from asr.numbers import normalize_numbers
from asr.types import DEFAULT_PROMPT

# Text Whisper produces on silence or noise (subtitle credits and the like), never said on a hotline.
HALLUCINATIONS = (
    "字幕由Amara.org社群提供",
    "字幕由Amara.org社區提供",
    "请不吝点赞 订阅 转发 打赏支持明镜与点点栏目",
    "请不吝点赞订阅转发打赏",
    "明镜与点点栏目",
    "谢谢观看",
    "感谢观看",
    "中文字幕",
    "字幕志愿者",
    "优优独播剧场",
)

_PUNCT = str.maketrans({",": "，", "?": "？", "!": "！", ":": "：", ";": "；"})
# Full-width digits (４) become ASCII, so numbers are written one way; U+FFFD is what a Chinese character
# becomes when Whisper emits only some of its byte tokens: nothing was said there that can be shown.
_DIGITS_AND_BROKEN = str.maketrans({**{chr(0xFF10 + d): str(d) for d in range(10)}, "\ufffd": None})
_CJK = r"[\u3400-\u9fff]"


@lru_cache(maxsize=1)
def _t2s() -> OpenCC:
    return OpenCC("t2s")


def to_simplified(text: str) -> str:
    return str(_t2s().convert(text))


def _full_width(text: str) -> str:
    # ASCII punctuation next to Chinese becomes full width; "3.5" and "10,000" keep theirs.
    text = re.sub(rf"(?<={_CJK})\.(?!\d)|(?<!\d)\.(?={_CJK})|(?<={_CJK})\.$", "。", text)
    return re.sub(r"(?<!\d),|,(?!\d)|[?!:;]", lambda m: m.group(0).translate(_PUNCT), text)


def is_hallucination(text: str) -> bool:
    squashed = re.sub(r"\s+", "", text)
    return any(h.replace(" ", "") in squashed for h in HALLUCINATIONS)


_SAID = re.compile(r"\w")


def strip_prompt(text: str, prompt: str = DEFAULT_PROMPT) -> str:
    """Text with the decoding prompt taken out: Whisper sometimes says its prompt back, whole or in part
    (「以下是普通话的句子，」, 「以下是普通话录音，内容涉及工资」), mostly on silence or a recorded greeting.

    A leak is a stretch of three characters or more matching the prompt's start (以下是…), or eight or more
    matching anywhere in it; shorter shared words (职工服务热线, 工资) are what people say and stay. A
    segment that is then mostly prompt (60% of its characters in stretches shared with it) is dropped
    whole (''); otherwise only the leaked stretches are cut out."""
    said = [(k, ch) for k, ch in enumerate(text) if _SAID.match(ch)]
    wanted = "".join(_SAID.findall(prompt))
    if not said or not wanted:
        return text
    spoken = "".join(ch for _, ch in said)
    blocks = [b for b in SequenceMatcher(None, spoken, wanted, autojunk=False).get_matching_blocks() if b.size]
    leaks = [b for b in blocks if (b.b == 0 and b.size >= 3) or b.size >= 8]
    if not leaks:
        return text
    if sum(b.size for b in blocks if b.size >= 2) >= 0.6 * len(spoken):
        return ""
    cut = {said[i][0] for b in leaks for i in range(b.a, b.a + b.size)}
    kept = "".join(ch for k, ch in enumerate(text) if k not in cut)
    return re.sub(r"^[，。、；：？！,.;:?!\s]+", "", kept)


_LONG_LOOP = re.compile(r"(.{13,80}?)\1+")
_CUT_COPY = re.compile(r"(.{13,80}?)\1+(.{2,80})$")


def collapse_repeats(text: str) -> str:
    """Undo Whisper's repetition loops: a phrase said three times or more in a row (a character four
    times) is kept once (a character twice, as in 谢谢); ordinary reduplication (看看, 哈哈哈) stays. A whole
    clause (13 characters or more) said twice in a row is a loop too (nobody repeats a sentence word for
    word without a pause), and so is the start of it trailing after the loop where the output was cut."""
    text = re.sub(r"(\D)\1{3,}", r"\1\1", text)  # digits repeat in real numbers (0532-8888 6666): kept
    text = re.sub(r"(.{2,12}?)\1{2,}", lambda m: m.group(0) if m.group(1).isdigit() else m.group(1), text)
    cut = _CUT_COPY.search(text)
    if cut and cut.group(1).startswith(cut.group(2)):
        text = text[: cut.start(2)]
    return _LONG_LOOP.sub(r"\1", text)


def clean(text: str, prompt: str = DEFAULT_PROMPT) -> str:
    """Simplified, trimmed, full-width punctuation, no repetition loops, numbers in one form; '' for
    known hallucinations and for what is mostly the decoding ``prompt`` said back (see strip_prompt)."""
    text = strip_prompt(to_simplified(text.translate(_DIGITS_AND_BROKEN).strip()), prompt)
    if not text or is_hallucination(text):
        return ""
    text = re.sub(rf"(?<={_CJK})\s+(?={_CJK})", "", text)
    return normalize_numbers(collapse_repeats(_full_width(text)))
