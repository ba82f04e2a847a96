"""SIPREC (RFC 7866 session, RFC 7865 metadata): split the multipart INVITE body and map the offered
audio streams to the call's participants, so each party lands on its own channel.

Which participant is the caller: metadata names participants and the streams each one sends, but not who
phoned whom. We take the participant whose address looks like an agent (``agent_pattern``, by default an
internal extension of 3–6 digits) as the agent; failing that, the first participant listed is the caller
(the order Cisco CUBE, Avaya SBCE and FreeSWITCH use).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from telephony.sip.message import param

NS = "{urn:ietf:params:xml:ns:recording:1}"
METADATA_TYPE = "application/rs-metadata+xml"


class SiprecError(ValueError):
    pass


@dataclass(frozen=True)
class Participant:
    participant_id: str
    aor: str  # sip:1380013@example.com
    name: str = ""

    @property
    def user(self) -> str:
        m = re.match(r"(?:sips?|tel):([^@;]+)", self.aor)
        return m.group(1) if m else self.aor


@dataclass
class Metadata:
    participants: list[Participant] = field(default_factory=list)
    stream_labels: dict[str, str] = field(default_factory=dict)  # stream_id → SDP label
    sends: dict[str, str] = field(default_factory=dict)  # stream_id → participant_id

    def agent(self, agent_pattern: str) -> Participant | None:
        """The participant on our side: the first whose user part matches ``agent_pattern`` (when not all
        do), else the second one listed."""
        agents = [p for p in self.participants if re.fullmatch(agent_pattern, p.user)]
        return agents[0] if agents and len(agents) < len(self.participants) else (
            self.participants[1] if len(self.participants) > 1 else None)

    def parties(self, agent_pattern: str) -> dict[str, Participant]:
        """caller → the participant who phoned in, agent → ours: those sending the streams first, else
        any other participant the metadata names (a recording of one party still knows both numbers)."""
        out: dict[str, Participant] = {}
        for role, who in self.roles_by_label(agent_pattern).values():
            out.setdefault(role, who)
        agent = self.agent(agent_pattern)
        for who in self.participants:
            out.setdefault("agent" if who == agent else "caller", who)
        return out

    def roles_by_label(self, agent_pattern: str) -> dict[str, tuple[str, Participant]]:
        """SDP label → (caller|agent, participant) for every stream a participant sends."""
        agent = self.agent(agent_pattern)
        out = {}
        by_id = {p.participant_id: p for p in self.participants}
        for stream_id, pid in self.sends.items():
            label = self.stream_labels.get(stream_id)
            who = by_id.get(pid)
            if label and who:
                out[label] = ("agent" if who == agent else "caller", who)
        return out


def split_multipart(content_type: str, body: bytes) -> dict[str, bytes]:
    """Parts of a multipart/mixed body by their Content-Type (lower case, parameters dropped)."""
    boundary = param(content_type, "boundary")
    if not boundary:
        raise SiprecError("multipart body without a boundary")
    parts: dict[str, bytes] = {}
    for chunk in body.split(b"--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk.lstrip(b"\r\n")
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            head, sep, content = chunk.partition(b"\n\n")
        ctype = ""
        for line in head.decode("utf-8", "replace").splitlines():
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-type":
                ctype = value.split(";")[0].strip().lower()
        parts[ctype] = content.rstrip(b"\r\n")
    return parts


def parse_metadata(xml: bytes) -> Metadata:
    try:
        root = ET.fromstring(xml)
    except (ET.ParseError, ValueError, LookupError) as e:  # expat: multi-byte or unknown encoding declared
        raise SiprecError(f"metadata is not XML: {e}") from e
    meta = Metadata()
    for p in root.iter(f"{NS}participant"):
        pid = p.get("participant_id") or p.get("id") or ""
        name_id = p.find(f"{NS}nameID")
        aor = name_id.get("aor", "") if name_id is not None else ""
        name_el = name_id.find(f"{NS}name") if name_id is not None else None
        meta.participants.append(Participant(pid, aor, (name_el.text or "") if name_el is not None else ""))
    for s in root.iter(f"{NS}stream"):
        label = s.find(f"{NS}label")
        if label is not None and label.text:
            meta.stream_labels[s.get("stream_id") or s.get("id") or ""] = label.text.strip()
    for assoc in root.iter(f"{NS}participantstreamassoc"):
        pid = assoc.get("participant_id") or ""
        for send in assoc.findall(f"{NS}send"):
            if send.text:
                meta.sends[send.text.strip()] = pid
    if not meta.participants:
        raise SiprecError("metadata names no participants")
    return meta
