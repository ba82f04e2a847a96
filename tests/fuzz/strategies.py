"""Shared Hypothesis strategies: valid inputs taken apart (truncation, byte flips, duplicated lines, lying
numbers, bad UTF-8, CRLF variations, very long lines) and values of the wrong kind."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st

Draw = Callable[..., Any]


def fuzz(n: int) -> settings:
    """A fuzz test's settings: the profile ``HOTLINE_FUZZ_PROFILE`` names (``fuzz``, the CI one, by default;
    see conftest) with ``n`` examples, ten times as many under ``fuzz-deep``."""
    name = os.environ.get("HOTLINE_FUZZ_PROFILE", "fuzz")
    return settings(settings.get_profile(name), max_examples=n if name == "fuzz" else n * 10)


# Numbers a parser reading a length, a port or a sequence number must survive: negative, overflowing
# 16/32/64 bits, over Python's 4300-digit int() limit, digits int() refuses (², ௫) or takes (٣), signs,
# floats, hex, NUL.
NASTY_NUMBERS = [b"0", b"-1", b"-0", b"+4", b" 4", b"4 ", b"65536", b"4294967296", b"18446744073709551616",
                 b"9" * 5000, b"0" * 30 + b"1", "²".encode(), "٣".encode(), "௫".encode(), b"1e9", b"0x10",
                 b"1_000", b"NaN", b"\x00", b"", b"4\x00", b"99999999999"]
BAD_UTF8 = [b"\xff", b"\xfe\xff", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\xe2\x82"]
LINE_ENDINGS = [b"\n", b"\r", b"\r\r\n", b"\n\r", b"\r\n\r\n", b""]


def _index(draw: Draw, data: bytearray) -> int:
    return int(draw(st.integers(0, len(data))))


def _truncate(draw: Draw, data: bytearray) -> bytearray:
    return data[: _index(draw, data)]


def _flip(draw: Draw, data: bytearray) -> bytearray:
    if data:
        i = draw(st.integers(0, len(data) - 1))
        data[i] ^= 1 << draw(st.integers(0, 7))
    return data


def _set_byte(draw: Draw, data: bytearray) -> bytearray:
    if data:
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return data


def _insert(draw: Draw, data: bytearray) -> bytearray:
    piece = draw(st.one_of(st.binary(max_size=16), st.sampled_from(NASTY_NUMBERS + BAD_UTF8 + LINE_ENDINGS)))
    i = _index(draw, data)
    return data[:i] + piece + data[i:]


def _delete(draw: Draw, data: bytearray) -> bytearray:
    i = _index(draw, data)
    return data[:i] + data[i + draw(st.integers(1, 64)):]


def _lines(data: bytearray) -> list[bytes]:
    return bytes(data).split(b"\n")


def _duplicate_line(draw: Draw, data: bytearray) -> bytearray:
    lines = _lines(data)
    line = draw(st.sampled_from(lines))
    lines.insert(draw(st.integers(0, len(lines))), line)
    return bytearray(b"\n".join(lines))


def _swap_lines(draw: Draw, data: bytearray) -> bytearray:
    lines = _lines(data)
    i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
    lines[i], lines[j] = lines[j], lines[i]
    return bytearray(b"\n".join(lines))


def _replace_value(draw: Draw, data: bytearray) -> bytearray:
    """A header's (``Name: value``), an SDP line's (``x=value``) or an attribute's value, or one word of
    it, replaced by a nasty number or random bytes."""
    lines = _lines(data)
    i = draw(st.integers(0, len(lines) - 1))
    line = lines[i]
    cut = max(line.find(b":"), line.find(b"="))
    words = line[cut + 1:].split(b" ")
    new = draw(st.one_of(st.sampled_from(NASTY_NUMBERS), st.binary(max_size=12)))
    if draw(st.booleans()):
        words[draw(st.integers(0, len(words) - 1))] = new
    else:
        words = [b" " + new if cut >= 0 and line[cut:cut + 1] == b":" else new]
    lines[i] = line[: cut + 1] + b" ".join(words) + (b"\r" if line.endswith(b"\r") else b"")
    return bytearray(b"\n".join(lines))


def _line_endings(draw: Draw, data: bytearray) -> bytearray:
    old = draw(st.sampled_from([b"\r\n", b"\n"]))
    new = draw(st.sampled_from(LINE_ENDINGS))
    if draw(st.booleans()):
        return bytearray(bytes(data).replace(old, new))
    return bytearray(bytes(data).replace(old, new, 1))


def _long_line(draw: Draw, data: bytearray) -> bytearray:
    n = draw(st.sampled_from([200, 1024, 8192, 70_000]))
    fill = draw(st.sampled_from([b"a", b" ", b"\t", b",", b";", b"9", b"\xe4\xb8\xad"]))
    i = _index(draw, data)
    return data[:i] + draw(st.sampled_from([b"X-Long: ", b"a=", b""])) + fill * n + data[i:]


def _repeat(draw: Draw, data: bytearray) -> bytearray:
    """A slice repeated many times (header floods, nesting, Via lists)."""
    i = _index(draw, data)
    j = min(len(data), i + draw(st.integers(1, 80)))
    return data[:i] + data[i:j] * draw(st.integers(2, 300)) + data[j:]


MUTATIONS = [_truncate, _flip, _set_byte, _insert, _delete, _duplicate_line, _swap_lines, _replace_value,
             _line_endings, _long_line, _repeat]


# for binary formats, and for inputs that vary between runs (the random salt of a sealed file): where these
# cut and write does not depend on the content
BYTE_MUTATIONS = [_truncate, _flip, _set_byte, _insert, _delete, _repeat]


@st.composite
def mutated(draw: Draw, seeds: Sequence[bytes], max_mutations: int = 4, *, binary: bool = False) -> bytes:
    """One of ``seeds`` (valid inputs) with up to ``max_mutations`` random mutations applied; ``binary``:
    only those that ignore lines and content."""
    data = bytearray(draw(st.sampled_from(list(seeds))))
    for _ in range(draw(st.integers(0, max_mutations))):
        data = draw(st.sampled_from(BYTE_MUTATIONS if binary else MUTATIONS))(draw, data)
    return bytes(data)


def mutated_text(seeds: Sequence[str], max_mutations: int = 4) -> st.SearchStrategy[str]:
    """Mutated ``seeds`` as text, the way a caller that decodes bytes leniently would see them."""
    return mutated([s.encode() for s in seeds], max_mutations).map(lambda b: b.decode("utf-8", "replace"))


# JSON values of every kind, for fields of the wrong type: huge and negative numbers, floats, nesting,
# strings that are not what they claim (base64 garbage, lone surrogates, control characters).
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.sampled_from([-1, 2**53, 2**63, 10**400, 10**4200]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(["", "0", "-20", "9" * 5000, "\ud800", "\udfff\ud800", "!!not base64!!", "AAA", "AA==A",
                     "=", "A" * 4 + "\n", "AAA\x80", "中文", "inbound", "outbound", "both", "²", "\x00"]))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)


def encode_json(value: Any, draw: Draw) -> str | bytes:
    """``value`` as a WebSocket text frame (str) or binary one (bytes in UTF-8, -16 or -32)."""
    text = json.dumps(value, ensure_ascii=draw(st.booleans()))
    if draw(st.booleans()):
        return text
    codec = draw(st.sampled_from(["utf-8", "utf-16", "utf-32", "utf-16-le"]))
    return text.encode(codec, "surrogatepass")
