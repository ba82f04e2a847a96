"""Who may do what: the one permission matrix, enforced on every route through ``require``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from app.users.models import Role


class Permission(StrEnum):
    case_read = "case:read"
    recording_upload = "recording:upload"
    recording_play = "recording:play"
    recording_download = "recording:download"
    transcript_read = "transcript:read"
    search = "search"
    audit_read = "audit:read"
    user_admin = "user:admin"
    phone_unmasked = "phone:unmasked"  # callers' full numbers; without it they are shown as mask_phone()
    id_unmasked = "id:unmasked"  # full ID card numbers (身份证号) said in transcripts; else masked
    case_update = "case:update"  # confirm or change a case's fields, move it along the workflow
    # ... of any case, whoever holds it: take over, reassign, close. Without it, case:update reaches the cases
    # one holds (assignee) and those in the hotline's pool (受理, held by nobody): app/cases/access.py
    case_any = "case:any"
    case_escalate = "case:escalate"  # 督办: escalate a case, change its difficulty and deadlines
    case_hold = "case:hold"  # 保全: put a case in dispute on legal hold (retention keeps its recording) or lift it
    stats_read = "stats:read"  # statistics, warnings and reports for managers
    taxonomy_admin = "taxonomy:admin"  # edit the categories and the domain lexicon
    enterprise_read = "enterprise:read"  # the enterprise registry (企业库): search, detail, resolve names
    enterprise_admin = "enterprise:admin"  # import the enterprise registry
    enterprise_rate = "enterprise:rate"  # record objections (异议) to an enterprise's colour, override it
    warning_read = "warning:read"  # early warnings (预警中心): list, detail, the cases behind them
    warning_handle = "warning:handle"  # sign for, verify, act on, close and snooze a warning
    warning_admin = "warning:admin"  # edit the warning rules
    report_read = "report:read"  # the report archive (月报, 日报): list and download
    ledger_read = "ledger:read"  # clues (线索) and the ledgers (台账): read, page, export as XLSX
    # register (form, XLSX import), change and verify clues: office work of the rights department (managers),
    # not of agents, whose calls become cases by themselves and reach the arrears ledger without a clue
    clue_edit = "clue:edit"


_ALL = frozenset(Permission)
MATRIX: dict[Role, frozenset[Permission]] = {
    Role.agent: frozenset(
        {Permission.case_read, Permission.recording_upload, Permission.recording_play,
         Permission.transcript_read, Permission.search, Permission.phone_unmasked, Permission.case_update,
         Permission.enterprise_read}
    ),
    Role.mediator: frozenset(
        {Permission.case_read, Permission.recording_upload, Permission.recording_play,
         Permission.recording_download, Permission.transcript_read, Permission.search, Permission.phone_unmasked,
         Permission.id_unmasked, Permission.case_update, Permission.enterprise_read}
    ),
    Role.manager: frozenset(
        {Permission.case_read, Permission.recording_play, Permission.recording_download,
         Permission.transcript_read, Permission.search, Permission.audit_read, Permission.case_update,
         Permission.case_any, Permission.case_escalate, Permission.case_hold, Permission.stats_read,
         Permission.enterprise_read, Permission.enterprise_rate,
         Permission.warning_read, Permission.warning_handle, Permission.ledger_read, Permission.clue_edit,
         Permission.report_read}
    ),
    Role.admin: _ALL,
}


def allowed(role: str, permission: Permission) -> bool:
    try:
        return permission in MATRIX[Role(role)]
    except ValueError:
        return False


def mask_phone(number: str) -> str:
    """A phone number as users without ``phone:unmasked`` see it: the first 3 and the last 4 digits kept, the
    digits between them starred (13812345678 → 138****5678; other characters stay as they are). Numbers of
    up to 6 digits (extensions, 12351 itself) are not masked. China's country code stays in front of that
    (+8613812345678 → +86138****5678)."""
    for code in ("+86", "0086"):
        if number.startswith(code) and len(number) > len(code) + 6:
            return code + mask_phone(number[len(code):])
    digits = sum(c.isdigit() for c in number)
    if digits <= 6:
        return number
    out, seen = [], 0
    for c in number:
        if c.isdigit():
            seen += 1
            out.append(c if seen <= 3 or seen > digits - 4 else "*")
        else:
            out.append(c)
    return "".join(out)


# --- masking: what roles without phone:unmasked / id:unmasked see ---------------------------------------------

# Digits as they appear in transcripts and typed text: ASCII, full-width, and read out one by one (幺三八…).
_DIGITS = {**{str(d): str(d) for d in range(10)}, **{chr(0xFF10 + d): str(d) for d in range(10)},
           "零": "0", "〇": "0", "洞": "0", "幺": "1", "一": "1", "二": "2", "两": "2", "三": "3", "四": "4",
           "五": "5", "六": "6", "七": "7", "拐": "7", "八": "8", "九": "9", "勾": "9"}
_ID_CHECK = {"X": "X", "x": "X", "Ｘ": "X", "叉": "X"}  # the last character of an ID number may be X
# Between the digits of one number people (and ASR) put spaces, dashes, dots, commas (and say 杠 for a dash);
# search highlighting puts <mark>.
_SEP = r"(?:[ \t\u00a0\u3000\-－—–‐‑,，、.·杠]|</?mark>){0,3}"
_D = "[0-9]"
_EDGE_BEFORE = r"(?<![0-9])"  # a number stuck to more digits is some other number
_EDGE_AFTER = r"(?![0-9])(?![ \t]*(?:元|块钱))"  # …nor is one followed by 元: 13,800,000,000元 is an amount
_OPEN, _CLOSE = r"[(（]", r"[)）]"  # (0532)8888 6666, （0532）8888-6666, (+86)138…
_ID = re.compile(rf"{_EDGE_BEFORE}(?P<id>[1-9](?:{_SEP}{_D}){{16}}{_SEP}[0-9X]){_EDGE_AFTER}")
# China's country code before a number: +86, ＋86, 0086, (+86); it stays shown in front of a masked number.
_COUNTRY = rf"(?:{_OPEN}{_SEP})?(?:[+＋]|00){_SEP}8{_SEP}6(?:{_SEP}{_CLOSE})?{_SEP}"
_LOCAL = rf"{_D}(?:{_SEP}{_D}){{6,7}}"  # a landline's own 7 or 8 digits
_PHONE = re.compile(
    rf"{_EDGE_BEFORE}(?:{_COUNTRY})?(?P<mobile>1{_SEP}[3-9](?:{_SEP}{_D}){{9}}){_EDGE_AFTER}"
    # with its area code (3 or 4 digits with the 0), in brackets or not: 0532-88886666, (0532)8888 6666
    rf"|{_EDGE_BEFORE}(?P<landline>(?:{_OPEN}{_SEP})?0{_SEP}[1-9](?:{_SEP}{_D}){{1,2}}(?:{_SEP}{_CLOSE})?{_SEP}"
    rf"{_LOCAL}){_EDGE_AFTER}"
    # dialled from abroad, the area code without its 0: +86 532 8888 6666
    rf"|{_COUNTRY}(?P<abroad>[1-9](?:{_SEP}{_D}){{1,2}}(?:{_SEP}{_CLOSE})?{_SEP}{_LOCAL}){_EDGE_AFTER}"
)
PHONE_KEYS = frozenset({"caller", "caller_phone", "phone", "phone_number", "callback_phone"})
WORDS_KEY = "words"  # a segment's timed words, [[start, end, text], …]: masked as the text they make together
# Fields that hold digests and identifiers, never personal numbers: left as they are.
OPAQUE_KEYS = frozenset({"hash", "prev_hash", "sha256", "call_uuid", "call_id", "external_id", "access_token",
                         "head_hash", "expected_hash"})


_PLAIN = str.maketrans({**_DIGITS, **_ID_CHECK})
_DIGIT_LIKE = "[" + "".join(_DIGITS) + "]"
_ONE_DIGIT = re.compile(_DIGIT_LIKE)


def _plain(text: str) -> str:
    """``text`` with every digit-like character as its ASCII digit (X for an ID check character) and every
    other character kept, so positions line up one to one with ``text``."""
    return text.translate(_PLAIN)


def _star(text: str, plain: str, start: int, end: int, *, keep_head: int, keep_tail: int) -> list[str]:
    """The characters of text[start:end] with the digits (in ``plain``) starred, except the first
    ``keep_head`` and the last ``keep_tail`` of them; separators and markup stay."""
    tagged = "<" in plain[start:end]
    positions = [i for i in range(start, end)
                 if plain[i] in "0123456789X" and not (tagged and _in_tag(plain, i))]
    hidden = set(positions[keep_head:len(positions) - keep_tail])
    return ["*" if i in hidden else text[i] for i in range(start, end)]


def _in_tag(plain: str, i: int) -> bool:
    return plain.rfind("<", 0, i + 1) > plain.rfind(">", 0, i + 1)


def mask_id(number: str) -> str:
    """An ID card number (身份证号) as users without ``id:unmasked`` see it: the first 3 and the last 4
    characters kept (370***********123X), also when read out digit by digit (三七零…)."""
    plain = _plain(number)
    return "".join(_star(number, plain, 0, len(number), keep_head=3, keep_tail=4))


PHONE, ID = "phone", "id"  # the kinds of personal number masked


@dataclass(frozen=True)
class NumberSpan:
    """Where one phone or ID card number stands in a text: ``text[start:end]``, the part that is masked (a
    phone number's +86 in front is not), its digits as written (138 1234 5678) or read out (幺三八…)."""

    start: int
    end: int
    kind: str  # PHONE or ID


def number_spans(text: str) -> list[NumberSpan]:
    """The phone and ID card numbers in ``text``, in order: what masking hides from users who may not see them
    (``Masking.text``) and what search keeps their queries from matching (app/search/tokenize.py)."""
    if len(_ONE_DIGIT.findall(text)) < 10:  # a quick look: no phone or ID number has fewer digits
        return []
    plain = _plain(text)
    ids = [NumberSpan(*m.span(), ID) for m in _ID.finditer(plain)]  # first: an ID number is never a phone's
    phones = []
    for m in _PHONE.finditer(plain):
        start, end = m.span(next(g for g in ("mobile", "landline", "abroad") if m.group(g)))
        if not any(s.start < end and start < s.end for s in ids):
            phones.append(NumberSpan(start, end, PHONE))
    return sorted(ids + phones, key=lambda s: s.start)


@dataclass(frozen=True)
class Masking:
    """What one user must not see in full: phone numbers and/or ID card numbers."""

    phones: bool
    ids: bool

    @classmethod
    def for_role(cls, role: str) -> Masking:
        return cls(phones=not allowed(role, Permission.phone_unmasked), ids=not allowed(role, Permission.id_unmasked))

    @property
    def active(self) -> bool:
        return self.phones or self.ids

    def hides(self, kind: str) -> bool:
        """Whether this user sees numbers of ``kind`` (``NumberSpan.kind``) masked."""
        return self.phones if kind == PHONE else self.ids if kind == ID else False

    def text(self, text: str) -> str:
        """``text`` with the numbers this user may not see masked (same length: offsets stay valid)."""
        if not self.active or not text:
            return text
        spans = [s for s in number_spans(text) if self.hides(s.kind)]
        if not spans:
            return text
        plain = _plain(text)
        out = list(text)
        for s in spans:
            out[s.start:s.end] = _star(text, plain, s.start, s.end, keep_head=3, keep_tail=4)
        return "".join(out)

    def phone(self, number: str) -> str:
        """A field that holds a phone number (``caller_phone``): masked whatever its format."""
        return mask_phone(number) if self.phones else self.text(number)

    def payload(self, value: Any, key: str = "") -> Any:
        """A JSON-like value (dicts, lists, strings) with every string masked; fields named like a phone
        number (PHONE_KEYS) masked as one with ``mask_phone``; a segment's ``words`` masked together."""
        if not self.active:
            return value
        if isinstance(value, str):
            if key in OPAQUE_KEYS:
                return value
            return self.phone(value) if key in PHONE_KEYS else self.text(value)
        if isinstance(value, dict):
            return {k: self.payload(v, k) for k, v in value.items()}
        if isinstance(value, list):
            if key == WORDS_KEY and all(_is_timed_word(v) for v in value):
                return self.words(value)
            return [self.payload(v, key) for v in value]
        return value

    def words(self, words: list[list[Any]]) -> list[list[Any]]:
        """Timed words ([start, end, text], or with a 4th element, the probability) masked as the text they
        make together, so that a number said across several words (138 / 1234 / 5678) is found as one; each
        word keeps its time and length."""
        joined = self.text("".join(w[2] for w in words))
        out, pos = [], 0
        for start, end, text, *probability in words:  # the decoder's probability, where kept, stays
            out.append([start, end, joined[pos:pos + len(text)], *probability])
            pos += len(text)
        return out


def _is_timed_word(value: Any) -> bool:
    return isinstance(value, list) and len(value) in (3, 4) and isinstance(value[2], str)


UNMASKED = Masking(phones=False, ids=False)


def mask_text(text: str, role: str) -> str:
    """Free text (a transcript segment, a search hit, a summary) as ``role`` may see it: phone numbers
    masked without ``phone:unmasked``, ID card numbers without ``id:unmasked``, digits written or read out."""
    return Masking.for_role(role).text(text)
