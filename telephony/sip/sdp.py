"""SDP (RFC 4566) offer/answer (RFC 3264) for audio: G.711 (PCMU, PCMA) and telephone-event (RFC 4733)."""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field

STATIC = {0: "PCMU", 8: "PCMA"}
SUPPORTED = ("PCMU", "PCMA")
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
ANSWER_DIRECTION = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}


class SdpError(ValueError):
    pass


@dataclass
class Media:
    kind: str
    port: int
    proto: str
    formats: list[int]
    rtpmap: dict[int, str] = field(default_factory=dict)  # pt → "PCMU/8000"
    connection: str = ""  # address from the media's own c= line, else the session's
    direction: str = "sendrecv"
    label: str = ""

    def codec_name(self, pt: int) -> str:
        return (self.rtpmap.get(pt, "").split("/")[0] or STATIC.get(pt, "")).upper()

    @property
    def on_hold(self) -> bool:
        """RFC 3264 §8.4 (sendonly/inactive) and the older RFC 2543 way (c=0.0.0.0)."""
        return self.direction in ("sendonly", "inactive") or self.connection == "0.0.0.0"


@dataclass
class SessionDescription:
    connection: str = ""
    media: list[Media] = field(default_factory=list)

    @property
    def audio(self) -> list[Media]:
        return [m for m in self.media if m.kind == "audio"]


def _number(text: str, top: int) -> bool:
    """ASCII digits (``str.isdigit`` also takes ² and other digits ``int`` refuses) worth at most ``top``."""
    return text.isascii() and text.isdigit() and len(text) <= 10 and int(text) <= top


def _connection_address(value: str) -> str:
    """The address of a c= line (RFC 4566 §5.7: ``IN IP4 192.0.2.10``), checked: network type IN, address type
    IP4 or IP6 with an address of that family. A host name is refused (resolving it would need a DNS a
    government LAN may not have, and would let a caller point our RTP anywhere by name), as is a multicast
    address; either refuses the offer at once (SdpError: 400 to an INVITE, 488 to a re-INVITE) instead of
    failing later."""
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpError(f"bad c= line: {value!r}")
    try:
        addr = ipaddress.ip_address(parts[2].split("/")[0])
    except ValueError as e:
        raise SdpError(f"c= address is not an IP address: {value!r}") from e
    if addr.version != (4 if parts[1] == "IP4" else 6) or addr.is_multicast:
        raise SdpError(f"c= address not usable for a call: {value!r}")
    return str(addr)


def parse(text: str) -> SessionDescription:
    sd = SessionDescription()
    current: Media | None = None
    session_direction = "sendrecv"
    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        kind, value = line[0], line[2:]
        if kind == "c":
            addr = _connection_address(value)
            if current:
                current.connection = addr
            else:
                sd.connection = addr
        elif kind == "m":
            parts = value.split()
            if len(parts) < 4 or not _number(parts[1].split("/")[0], 65535):
                raise SdpError(f"bad m= line: {value!r}")
            try:
                fmts = [int(f) for f in parts[3:]]
            except ValueError as e:
                raise SdpError(f"bad payload types in m= line: {value!r}") from e
            current = Media(parts[0], int(parts[1].split("/")[0]), parts[2], fmts, direction=session_direction)
            sd.media.append(current)
        elif kind == "a":
            name, _, arg = value.partition(":")
            if name in DIRECTIONS:
                if current:
                    current.direction = name
                else:
                    session_direction = name
            elif current and name == "rtpmap":
                pt, _, enc = arg.partition(" ")
                if _number(pt, 127):
                    current.rtpmap[int(pt)] = enc.strip()
            elif current and name == "label":
                current.label = arg.strip()
    for m in sd.media:
        m.connection = m.connection or sd.connection
    if not sd.audio:
        raise SdpError("no audio stream offered")
    return sd


@dataclass(frozen=True)
class Choice:
    """What we accept for one offered audio stream."""

    codec: int  # payload type
    name: str  # PCMU or PCMA
    dtmf: int | None  # telephone-event payload type, if offered


def choose(media: Media) -> Choice | None:
    """Our codec for an offered stream: the first G.711 in the offerer's order; None if there is none."""
    codec = next((pt for pt in media.formats if media.codec_name(pt) in SUPPORTED), None)
    if codec is None or media.port == 0:
        return None
    dtmf = next((pt for pt in media.formats if media.codec_name(pt) == "TELEPHONE-EVENT"), None)
    return Choice(codec, media.codec_name(codec), dtmf)


@dataclass(frozen=True)
class AnswerStream:
    port: int  # 0: stream refused
    choice: Choice | None
    direction: str
    label: str = ""
    offered_formats: tuple[int, ...] = ()


def answer(streams: list[AnswerStream], *, address: str, session_id: int | None = None,
           version: int = 1, kinds: list[str] | None = None) -> bytes:
    """The answer: one m= line per offered stream, in order (RFC 3264 §6)."""
    sid = session_id or int(time.time())
    lines = ["v=0", f"o=hotline {sid} {version} IN IP4 {address}", "s=12351", f"c=IN IP4 {address}", "t=0 0"]
    for i, s in enumerate(streams):
        kind = (kinds or [])[i] if kinds and i < len(kinds) else "audio"
        if s.choice is None or s.port == 0:
            fmt = s.offered_formats[0] if s.offered_formats else 0
            lines.append(f"m={kind} 0 RTP/AVP {fmt}")
            continue
        pts = [s.choice.codec] + ([s.choice.dtmf] if s.choice.dtmf is not None else [])
        lines.append(f"m=audio {s.port} RTP/AVP {' '.join(map(str, pts))}")
        lines.append(f"a=rtpmap:{s.choice.codec} {s.choice.name}/8000")
        if s.choice.dtmf is not None:
            lines += [f"a=rtpmap:{s.choice.dtmf} telephone-event/8000", f"a=fmtp:{s.choice.dtmf} 0-16"]
        if s.label:
            lines.append(f"a=label:{s.label}")
        lines += ["a=ptime:20", f"a={s.direction}"]
    return ("\r\n".join(lines) + "\r\n").encode()
