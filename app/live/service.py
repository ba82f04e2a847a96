"""Following a call live (history, then new events, in order) and presenting events to one user: the caller's
number masked unless their role may see it, and the screen pop (the caller's earlier cases) on call_started."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.auth.permissions import UNMASKED, Masking, Permission, allowed, mask_phone
from app.calls.models import Call
from app.cases.models import Case
from app.db import Database
from app.live.hub import EventHub
from app.live.models import PreviousCase
from app.users.models import User
from telephony.numbers import phone_number, variants

log = logging.getLogger("hotline.live")
Event = dict[str, Any]
SCREEN_POP_CASES = 10
SCREEN_POP_TTL = 10.0  # seconds one caller's earlier cases are reused for other users' screens


# --- following a call ------------------------------------------------------------------------------------


@asynccontextmanager
async def following(hub: EventHub, call_id: str) -> AsyncIterator[AsyncIterator[Event]]:
    """The call's events: first its history (``replayable``), then each new one as it comes, each once and
    in ``seq`` order. Subscribed before the history is read, so nothing falls between the two."""
    async with hub.subscribe(call_id) as live:
        past = await hub.history(call_id)
        yield _replay(past, live)


async def _replay(past: list[Event], live: AsyncIterator[Event]) -> AsyncIterator[Event]:
    for event in replayable(past):
        yield event
    last = max((e["seq"] for e in past), default=0)
    async for event in live:
        if event["seq"] > last:
            last = event["seq"]
            yield event


def replayable(history: list[Event]) -> list[Event]:
    """The history without partials that a later partial or final of the same utterance replaced: what a
    browser joining mid-call needs to show what was said."""
    latest: dict[tuple[str, int], int] = {}
    for i, event in enumerate(history):
        if event["type"] in ("partial", "final"):
            latest[(event["role"], event["utterance"])] = i
    return [e for i, e in enumerate(history)
            if e["type"] != "partial" or latest[(e["role"], e["utterance"])] == i]


# --- presenting events to a user -------------------------------------------------------------------------


def previous_cases(*, db: Session, caller: str, limit: int = SCREEN_POP_CASES) -> list[PreviousCase]:
    """The caller number's cases, newest first: cases whose ``caller_phone`` is that number however written
    (+86…, 0…; for a call it is the number signalling gave), and the cases of calls from that caller."""
    match: sa.ColumnElement[bool] = Case.recording_id.in_(
        sa.select(Call.recording_id).where(Call.caller == caller, Call.recording_id.is_not(None)))
    number = phone_number(caller)
    if number:
        match = sa.or_(Case.caller_phone.in_(variants(number)), match)
    rows = db.execute(
        sa.select(Case).where(match).order_by(Case.created_at.desc(), Case.id.desc()).limit(limit)
    ).scalars()
    return [PreviousCase(id=c.id, case_no=c.case_no, category=c.category, status=c.status,
                         created_at=c.created_at, summary=c.summary[:80]) for c in rows]


@dataclass
class ScreenPops:
    """Earlier cases per caller number, looked up on a worker thread and kept ``ttl`` seconds, so a call
    announced to many browsers costs one query."""

    database: Database
    ttl: float = SCREEN_POP_TTL
    _kept: dict[str, tuple[float, list[PreviousCase]]] = field(default_factory=dict)

    async def lookup(self, caller: str) -> list[PreviousCase]:
        if not caller.strip():
            return []
        now = time.monotonic()
        kept = self._kept.get(caller)
        if kept and kept[0] > now:
            return kept[1]
        try:
            cases = await run_in_threadpool(self._query, caller)
        except Exception:
            log.exception("screen pop: could not look up the earlier cases of a caller")
            return []
        if len(self._kept) > 1000:
            self._kept = {k: v for k, v in self._kept.items() if v[0] > now}
        self._kept[caller] = (now + self.ttl, cases)
        return cases

    def _query(self, caller: str) -> list[PreviousCase]:
        with self.database.session() as db:
            return previous_cases(db=db, caller=caller)


@dataclass(frozen=True)
class Viewer:
    """Who an event is presented to."""

    username: str
    unmasked: bool  # may see callers' full numbers
    sees_cases: bool  # may see cases (the screen pop)
    masking: Masking = UNMASKED  # phone and ID numbers this user may not see, in any event's text

    @classmethod
    def of(cls, user: User) -> Viewer:
        return cls(user.username, allowed(user.role, Permission.phone_unmasked),
                   allowed(user.role, Permission.case_read), Masking.for_role(user.role))

    async def present(self, event: Event, pops: ScreenPops) -> Event:
        """The event as this user receives it: call_started with ``previous_cases`` (looked up by the full
        number; empty for roles that may not read cases) and the caller masked unless the user may see it."""
        if event["type"] != "call_started":
            return self.masking.payload(event)
        caller = event.get("caller", "")
        cases = await pops.lookup(caller) if self.sees_cases else []
        return self.masking.payload({
            **event, "caller": caller if self.unmasked else mask_phone(caller),
            "previous_cases": [c.model_dump(mode="json") for c in cases]})
