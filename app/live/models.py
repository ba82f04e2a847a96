"""Live transcript events: what the live process says about a call in progress, typed at every boundary.

On the wire (Unix socket lines, Redis, WebSocket) they are plain JSON objects told apart by ``type``.
``call_id`` is the call's ``call_uuid``; ``start``/``end`` are seconds since the call started; ``seq`` is added
by the hub (1, 2, 3… per call) and is absent from what publishers send.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

CALL_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"  # a call_uuid (32 hex digits) or the live process's own id
CallId = Annotated[str, Field(pattern=CALL_ID_PATTERN)]
Role = Literal["caller", "agent", "room"]
FEED_TYPES = frozenset({"call_started", "call_ended"})  # what the all-calls feed carries


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    call_id: CallId
    seq: int | None = None  # set by the hub


class CallStarted(_Event):
    type: Literal["call_started"] = "call_started"
    caller: str = Field(default="", max_length=64)
    called: str = Field(default="", max_length=64)
    source: str = Field(default="", max_length=16)  # sip | siprec | twilio | fork | browser
    at: float  # unix time


class Partial(_Event):
    """The recogniser's current hypothesis for an utterance still being spoken: ``stable`` is the prefix that
    will not change any more, ``text`` the whole hypothesis. A later partial or the final replaces it."""

    type: Literal["partial"] = "partial"
    role: Role
    utterance: int = Field(ge=0)
    start: float
    end: float
    stable: str = ""
    text: str


class Final(_Event):
    type: Literal["final"] = "final"
    role: Role
    utterance: int = Field(ge=0)
    start: float
    end: float
    text: str


class CallEnded(_Event):
    type: Literal["call_ended"] = "call_ended"
    reason: str = Field(default="", max_length=32)  # bye | cancel | …
    at: float


LiveEvent = Annotated[CallStarted | Partial | Final | CallEnded, Field(discriminator="type")]
_EVENT: TypeAdapter[LiveEvent] = TypeAdapter(LiveEvent)


def parse_event(data: dict[str, Any] | str | bytes) -> LiveEvent:
    """A dict or a JSON text as a typed event; ``pydantic.ValidationError`` (a ``ValueError``) if it is not one."""
    if isinstance(data, dict):
        return _EVENT.validate_python(data)
    return _EVENT.validate_json(data)


def to_wire(event: LiveEvent) -> dict[str, Any]:
    """The event as published: JSON-able, without ``seq`` (the hub numbers it)."""
    return event.model_dump(mode="json", exclude={"seq"})


def dumps(event: dict[str, Any]) -> str:
    """One event as compact JSON (Chinese kept as is): one line on the socket, one Redis value."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


class PreviousCase(BaseModel):
    """One of the caller's earlier cases, shown when their call comes in (screen pop)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    case_no: str
    category: str
    status: str
    created_at: datetime
    summary: str = Field(max_length=80)
