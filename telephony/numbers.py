"""The calling number as signalling gives it, written one way whatever the way in.

SIP puts it in a URI (``"张三" <sip:+86 138-0013-8000@sbc.example;user=phone>``, ``<tel:+8613800138000>``),
Twilio and mod_audio_fork as a bare string. ``caller_id`` brings them all to the user part with visual
separators dropped (digits, a leading + kept): ``+8613800138000``. A withheld number (``anonymous``,
``Anonymous <sip:anonymous@anonymous.invalid>``, ``restricted``…) is no number: ''. A user part that is
not a number (``sip:alice@pbx``, a softphone account) is kept as it is: it names the caller, but it is
no phone number (``phone_number`` → None).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote

MAX_LENGTH = 64  # calls.caller
# User parts (and display names) that say the number is withheld, lower case.
WITHHELD = frozenset({"anonymous", "anonymous.invalid", "unknown", "restricted", "withheld", "private",
                      "unavailable", "invalid", "unknown-caller", "blocked", "null", "none", "-"})
_URI = re.compile(r"(?:sips?|tel):([^@;>?,]+)", re.IGNORECASE)
_VISUAL = re.compile(r"[\s\-.()\u00a0]")  # RFC 3966 visual separators, and spaces people type
_NUMBER = re.compile(r"\+?\d+")


def caller_id(value: str) -> str:
    """The caller as a short string: a number (digits, leading + kept), another user name as it is, or ''
    when it is withheld or absent. ``value``: a From/PAI header value, a URI, or a bare number."""
    text = (value or "").strip()
    if not text:
        return ""
    if value[:1] == " " and text[:1].isdigit():  # ?caller=+86… sent unencoded: the query made the + a space
        text = "+" + text
    m = _URI.search(text)
    if m:
        user = m.group(1)
    elif "<" in text or ">" in text:
        return ""  # a header with a URI of another scheme (or none): no caller id
    else:
        user = text.split("@", 1)[0]
    user = unquote(user).strip().strip('"').strip()
    if user.lower() in WITHHELD or user.lower().startswith("anonymous"):
        return ""
    compact = _VISUAL.sub("", user)
    if _NUMBER.fullmatch(compact):
        return compact[:MAX_LENGTH]
    return user[:MAX_LENGTH]


def phone_number(value: str | None) -> str | None:
    """``value`` as a phone number (``caller_id``) when it is one — digits with an optional leading +, at
    least 3 of them and at most 20 (E.164 is 15, with 0086 in front 17) — else None (withheld, a SIP account
    name, nothing)."""
    number = caller_id(value or "")
    return number if _NUMBER.fullmatch(number) and 3 <= len(number.lstrip("+")) <= 20 else None


def first_caller_id(values: Iterable[str]) -> str:
    """The first phone number among ``values`` (header values in order of trust), else the first other
    caller id, else ''."""
    ids = [caller_id(v) for v in values]
    return next((i for i in ids if phone_number(i)), next((i for i in ids if i), ""))


def variants(number: str) -> list[str]:
    """The ways one Chinese number is written in signalling and in speech, for matching earlier calls:
    +8613812345678, 008613812345678, 8613812345678, 13812345678 and 013812345678 (a mobile dialled from
    another area code) are one number; so are +8653288886666 and 053288886666. Other numbers: as they are."""
    rest = next((number[len(code):] for code in ("+86", "0086") if number.startswith(code)), None)
    if rest is None and re.fullmatch(r"861\d{10}", number):
        rest = number[2:]
    national = number if rest is None else rest if rest.startswith("1") else "0" + rest
    if re.fullmatch(r"01[3-9]\d{9}", national):
        national = national[1:]
    if not national.isdigit():
        return [number]
    out = {number, national}
    if len(national) == 11 and national.startswith("1"):
        out |= {f"+86{national}", f"0086{national}", f"86{national}", f"0{national}"}
    elif national.startswith("0") and len(national) >= 10:
        out |= {f"+86{national[1:]}", f"0086{national[1:]}"}
    return sorted(out)
