"""Typed frames the adapter publishes while calls are in progress (consumed by live transcription).

Every source (SIP/RTP, SIPREC, WebSocket media, browser capture) emits the same three frames, so a
consumer never needs to know how a call arrived."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Role = Literal["caller", "agent", "room"]  # room: a single microphone (visit, mediation, hearing)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CallStarted:
    call_id: str
    source: str  # sip | siprec | twilio | fork | browser
    caller: str
    called: str


@dataclass(frozen=True, slots=True)
class AudioChunk:
    call_id: str
    role: Role
    start: float  # seconds since the call started
    sample_rate: int
    pcm: bytes  # 16-bit little-endian mono


@dataclass(frozen=True, slots=True)
class CallEnded:
    call_id: str
    reason: str


Frame = CallStarted | AudioChunk | CallEnded
Subscriber = Callable[[Frame], None]


class FrameBus:
    """In-process publish/subscribe. A subscriber that raises is logged and kept; it never stops the
    recording, which is what matters most."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        self._subscribers.append(fn)
        return lambda: self._subscribers.remove(fn)

    def publish(self, frame: Frame) -> None:
        for fn in list(self._subscribers):
            try:
                fn(frame)
            except Exception:
                log.exception("frame subscriber failed on %s", type(frame).__name__)

    @property
    def active(self) -> bool:
        return bool(self._subscribers)
