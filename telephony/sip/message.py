"""SIP messages: parsing (UDP datagrams and TCP streams), building responses, header helpers.

Parsing is strict about what a UAS needs and lenient about the rest: a message whose start line cannot
be read raises ``Unparseable`` (it is dropped: there is nobody to answer); a request that can be read
but lacks a mandatory header or has a bad value raises ``BadRequest`` carrying the request, so the
caller can answer 400 with the reason.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

COMPACT = {"i": "call-id", "f": "from", "t": "to", "v": "via", "m": "contact", "l": "content-length",
           "c": "content-type", "k": "supported", "s": "subject", "e": "content-encoding"}
MANDATORY = ("via", "from", "to", "call-id", "cseq")
CANONICAL = {"call-id": "Call-ID", "cseq": "CSeq", "www-authenticate": "WWW-Authenticate"}
_REQUEST_LINE = re.compile(r"^([A-Za-z]+) (\S+) SIP/2\.0$")
_STATUS_LINE = re.compile(r"^SIP/2\.0 (\d{3}) ?(.*)$")
_NUMBER = re.compile(r"[0-9]{1,10}")  # CSeq (< 2**31, RFC 3261 §8.1.1.5), Content-Length: ASCII digits only
REASONS = {100: "Trying", 180: "Ringing", 200: "OK", 400: "Bad Request", 401: "Unauthorized",
           403: "Forbidden", 405: "Method Not Allowed", 415: "Unsupported Media Type", 481:
           "Call/Transaction Does Not Exist", 486: "Busy Here", 487: "Request Terminated",
           488: "Not Acceptable Here", 500: "Server Internal Error", 503: "Service Unavailable",
           513: "Message Too Large"}


class Unparseable(ValueError):
    """Not a SIP message at all; dropped."""


class BadRequest(ValueError):
    """A SIP request we can answer, but must refuse with 400."""

    def __init__(self, reason: str, message: SipMessage) -> None:
        super().__init__(reason)
        self.message = message


def canonical(name: str) -> str:
    name = COMPACT.get(name.lower(), name.lower())
    return CANONICAL.get(name) or "-".join(p.capitalize() for p in name.split("-"))


@dataclass
class SipMessage:
    method: str = ""  # requests
    uri: str = ""
    status: int = 0  # responses
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)  # canonical names, in order
    body: bytes = b""

    @property
    def is_request(self) -> bool:
        return bool(self.method)

    def get(self, name: str, default: str = "") -> str:
        key = canonical(name)
        return next((v for k, v in self.headers if k == key), default)

    def get_all(self, name: str) -> list[str]:
        key = canonical(name)
        return [v for k, v in self.headers if k == key]

    def set(self, name: str, value: str) -> None:
        key = canonical(name)
        self.headers = [(k, v) for k, v in self.headers if k != key] + [(key, value)]

    @property
    def call_id(self) -> str:
        return self.get("call-id")

    @property
    def cseq(self) -> tuple[int, str]:
        num, _, method = self.get("cseq").partition(" ")
        return int(num), method.strip()

    @property
    def branch(self) -> str:
        return param(self.get("via"), "branch")

    @property
    def from_tag(self) -> str:
        return param(self.get("from"), "tag")

    @property
    def to_tag(self) -> str:
        return param(self.get("to"), "tag")

    def encode(self) -> bytes:
        start = f"{self.method} {self.uri} SIP/2.0" if self.method else f"SIP/2.0 {self.status} {self.reason}"
        lines = [start] + [f"{k}: {v}" for k, v in self.headers if k != "Content-Length"]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


def param(header: str, name: str) -> str:
    """A ``;name=value`` parameter of a header value (outside its <uri>), '' if absent."""
    tail = header.rsplit(">", 1)[-1] if "<" in header else header
    for part in tail.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == name:
            return value.strip().strip('"')
    return ""


def uri_user(header: str) -> str:
    """The user part of the URI in a From/To/P-Asserted-Identity value: '"A" <sip:1380013@x>' → '1380013'."""
    m = re.search(r"<?(?:sips?|tel):([^@;>]+)", header)
    return m.group(1) if m else ""


def parse(data: bytes) -> SipMessage:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Unparseable("headers are not UTF-8") from e
    lines = text.replace("\r\n", "\n").split("\n")
    while lines and not lines[0].strip():  # keep-alive CRLFs before a message
        lines.pop(0)
    if not lines:
        raise Unparseable("empty")
    msg = SipMessage()
    if m := _REQUEST_LINE.match(lines[0].strip()):
        msg.method, msg.uri = m.group(1).upper(), m.group(2)
    elif m := _STATUS_LINE.match(lines[0].strip()):
        msg.status, msg.reason = int(m.group(1)), m.group(2)
    else:
        raise Unparseable(f"not a SIP start line: {lines[0][:80]!r}")
    problem = _read_headers(msg, lines[1:])
    msg.body = body
    if not msg.is_request:
        if problem:
            raise Unparseable(problem)
        return msg
    problem = problem or _check_request(msg, len(body))
    if problem:
        if not msg.get("via"):
            raise Unparseable(problem)  # nowhere to send a 400
        raise BadRequest(problem, msg)
    declared = msg.get("content-length")
    if declared:
        msg.body = body[: int(declared)]
    return msg


def _read_headers(msg: SipMessage, lines: list[str]) -> str:
    problem = ""
    for line in lines:
        if line[:1] in (" ", "\t") and msg.headers:  # folded continuation
            k, v = msg.headers[-1]
            msg.headers[-1] = (k, f"{v} {line.strip()}".strip())  # a blank one adds nothing
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip() or " " in name.strip():
            problem = problem or f"malformed header line: {line[:60]!r}"
            continue
        key = canonical(name.strip())
        for v in _split_multi(key, value.strip()):
            msg.headers.append((key, v))
    return problem


def _split_multi(key: str, value: str) -> list[str]:
    """``Via: a, b`` is two Via headers (needed to copy them into responses one per line)."""
    if key != "Via":
        return [value]
    return [v.strip() for v in value.split(",") if v.strip()]


def _check_request(msg: SipMessage, body_len: int) -> str:
    missing = [h for h in MANDATORY if not msg.get(h)]
    if missing:
        return "missing " + ", ".join(canonical(h) for h in missing)
    num, method = msg.get("cseq").partition(" ")[::2]
    if not _NUMBER.fullmatch(num.strip()) or method.strip().upper() != msg.method:
        return f"bad CSeq: {msg.get('cseq')!r}"
    declared = msg.get("content-length")
    if declared and (not _NUMBER.fullmatch(declared) or int(declared) > body_len):
        return f"bad Content-Length: {declared!r}"
    return ""


def new_tag() -> str:
    return secrets.token_hex(6)


def response(req: SipMessage, status: int, *, to_tag: str = "", reason: str = "",
             headers: list[tuple[str, str]] | None = None, body: bytes = b"", content_type: str = "") -> SipMessage:
    """A response to ``req`` (RFC 3261 §8.2.6): Via, From, Call-ID, CSeq copied; To gets our tag."""
    out = SipMessage(status=status, reason=reason or REASONS.get(status, ""))
    out.headers = [("Via", v) for v in req.get_all("via")]
    to = req.get("to")
    if to_tag and not param(to, "tag") and status > 100:
        to = f"{to};tag={to_tag}"
    out.headers += [("From", req.get("from")), ("To", to), ("Call-ID", req.call_id), ("CSeq", req.get("cseq"))]
    out.headers += [("Server", "12351-hotline")] + (headers or [])
    if body:
        out.headers.append(("Content-Type", content_type or "application/sdp"))
    out.body = body
    return out


class StreamFramer:
    """Splits a TCP byte stream into SIP messages by Content-Length (RFC 3261 §18.3)."""

    def __init__(self, max_size: int) -> None:
        self.buffer = bytearray()
        self.max_size = max_size
        self.pings = 0  # RFC 5626 keep-alive pings (CRLF CRLF between messages) seen in the last ``feed``
        self._crlf = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Complete messages so far; Unparseable if a message's headers exceed the size limit or its
        Content-Length is missing or not a number (the connection must then be closed)."""
        self.buffer += data
        self.pings = 0
        out: list[bytes] = []
        while True:
            crlfs, self._crlf = self._crlf, 0
            while self.buffer[:2] == b"\r\n":  # keep-alives
                del self.buffer[:2]
                crlfs += 1
            self.pings += crlfs // 2
            if not self.buffer:  # a ping split across reads: its second CRLF comes with the next one
                self._crlf = crlfs % 2
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > self.max_size:
                    raise Unparseable("headers exceed the size limit")
                return out
            head = bytes(self.buffer[:end]).decode("utf-8", "replace")
            m = re.search(r"^(?:content-length|l)[ \t]*:[ \t]*(\d+)[ \t]*$", head, re.I | re.M)
            if not m:
                raise Unparseable("no Content-Length on a stream transport")
            total = end + 4 + (int(m.group(1)) if len(m.group(1)) <= 18 else self.max_size)  # no 5000-digit int()
            if total > self.max_size:
                raise Unparseable("message exceeds the size limit")
            if len(self.buffer) < total:
                return out
            out.append(bytes(self.buffer[:total]))
            del self.buffer[:total]
