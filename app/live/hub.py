"""The live event hub: carries transcript events from the live process to every subscriber (browsers' WebSockets).

Two implementations of one protocol:

- ``LocalHub``: in this process (the embedded default; events come in over the Unix socket, ``ingest.py``).
- ``RedisHub``: through Redis (``HOTLINE_REDIS_URL``), so every API process sees every event. Publishing is one
  Lua script (``PUBLISH_LUA``), shared with the live process's publisher (``publish.py``): it numbers the event
  (``INCR``), appends it to the call's history list and publishes it on the call's channel (and, for
  call_started/call_ended, on the feed channel), atomically, so history and channels are in ``seq`` order
  even with several publishers.

Every subscriber has a bounded queue: one that falls ``max_pending`` events behind is cut off (its iteration
raises ``SubscriptionLost``; a browser reconnects and replays the history). Publishers never wait for
subscribers. History is kept per call, capped at ``MAX_HISTORY`` events, and dropped ``ENDED_TTL`` seconds
after call_ended (``ACTIVE_TTL`` after the last event of a call that never ended).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from app.config import Settings
from app.live.models import FEED_TYPES, dumps, parse_event, to_wire

log = logging.getLogger("hotline.live")

ENDED_TTL = 600  # seconds a call's history stays after call_ended
ACTIVE_TTL = 6 * 3600  # … after the last event of a call that never ended (the live process died)
MAX_HISTORY = 20_000  # events kept per call (the oldest go first)
MAX_PENDING = 1_000  # events a subscriber may fall behind before it is cut off
REDIS_PREFIX = "hotline:live"
SUBSCRIBE_TIMEOUT = 5.0
Event = dict[str, Any]


class HubError(Exception):
    """The hub cannot be reached (Redis is down): nothing was published, subscribed or read."""


class SubscriptionLost(HubError):
    """The subscription was cut off (too slow, or the hub's connection failed): events may be missing."""


class EventHub(Protocol):
    async def publish(self, event: Event) -> Event:
        """Validate and number ``event`` (adds ``seq``), keep it in the call's history and hand it to the
        subscribers; returns the event as stored. Raises ``ValueError`` for an invalid event, ``HubError``
        when the hub cannot be reached."""
        ...

    def subscribe(self, call_id: str | None) -> AbstractAsyncContextManager[Subscription]:
        """``async with hub.subscribe(call_id) as events: async for event in events: …`` — the events
        published from now on for one call, or with None the feed: call_started/call_ended of every call.
        ``HubError`` on entering when the hub cannot be reached; ``SubscriptionLost`` while iterating."""
        ...

    async def history(self, call_id: str) -> list[Event]:
        """Everything published for the call so far (kept until ``ENDED_TTL`` after call_ended)."""
        ...

    async def aclose(self) -> None:
        """End every subscription (their iteration stops) and release connections."""
        ...


def ttl_for(event: Event) -> int:
    return ENDED_TTL if event["type"] == "call_ended" else ACTIVE_TTL


def normalized(event: Event) -> Event:
    """The event validated and as published (``seq`` removed): ``ValueError`` if it is not a live event."""
    return to_wire(parse_event(event))


# --- subscriptions ---------------------------------------------------------------------------------------


class Subscription:
    """One subscriber's events, in order, from a bounded queue. Made inside the subscriber's event loop;
    ``offer`` may be called from any thread and never blocks."""

    _END = object()

    def __init__(self, call_id: str | None, limit: int) -> None:
        self.call_id = call_id
        self.lost: str | None = None  # why it was cut off
        self._limit = limit
        self._ended = False
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Any] = asyncio.Queue()

    def offer(self, event: Event) -> None:
        self._call(self._put, event)

    def end(self, lost: str | None = None) -> None:
        """No more events; with ``lost``, iteration raises ``SubscriptionLost(lost)`` after what is queued."""
        self._call(self._finish, lost)

    def _call(self, fn: Callable[..., None], arg: Any) -> None:
        try:
            same = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            same = False
        if same:
            fn(arg)
        else:
            with contextlib.suppress(RuntimeError):  # its loop is closed: nobody is listening any more
                self._loop.call_soon_threadsafe(fn, arg)

    def _put(self, event: Event) -> None:
        if self._ended:
            return
        if self._queue.qsize() >= self._limit:
            self._finish(f"fell {self._limit} events behind")
        else:
            self._queue.put_nowait(event)

    def _finish(self, lost: str | None) -> None:
        if not self._ended:
            self._ended, self.lost = True, lost
            self._queue.put_nowait(self._END)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        item = await self._queue.get()
        if item is self._END:
            self._queue.put_nowait(item)  # iterating again ends again
            if self.lost:
                raise SubscriptionLost(self.lost)
            raise StopAsyncIteration
        return item  # type: ignore[no-any-return]


# --- in this process -------------------------------------------------------------------------------------


@dataclass
class _Call:
    seq: int = 0
    events: deque[Event] = field(default_factory=lambda: deque(maxlen=MAX_HISTORY))
    expires: float = 0.0


class LocalHub:
    """The hub inside one process. Thread-safe: events may be published from any thread or event loop."""

    def __init__(self, *, max_pending: int = MAX_PENDING, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_pending = max_pending
        self._clock = clock
        self._lock = threading.Lock()
        self._calls: dict[str, _Call] = {}
        self._subscribers: dict[str | None, set[Subscription]] = {}

    async def publish(self, event: Event) -> Event:
        event = normalized(event)
        call_id = event["call_id"]
        with self._lock:
            now = self._clock()
            self._expire(now)
            call = self._calls.setdefault(call_id, _Call())
            call.seq += 1
            stored = {"seq": call.seq, **event}
            call.events.append(stored)
            call.expires = now + ttl_for(stored)
            for sub in self._subscribers.get(call_id, ()):
                sub.offer(stored)
            if stored["type"] in FEED_TYPES:
                for sub in self._subscribers.get(None, ()):
                    sub.offer(stored)
        return stored

    @asynccontextmanager
    async def subscribe(self, call_id: str | None) -> AsyncIterator[Subscription]:
        sub = Subscription(call_id, self._max_pending)
        with self._lock:
            self._subscribers.setdefault(call_id, set()).add(sub)
        try:
            yield sub
        finally:
            with self._lock:
                subs = self._subscribers.get(call_id, set())
                subs.discard(sub)
                if not subs:
                    self._subscribers.pop(call_id, None)

    async def history(self, call_id: str) -> list[Event]:
        with self._lock:
            self._expire(self._clock())
            call = self._calls.get(call_id)
            return list(call.events) if call else []

    async def aclose(self) -> None:
        with self._lock:
            subs = [s for group in self._subscribers.values() for s in group]
        for sub in subs:
            sub.end()

    def _expire(self, now: float) -> None:
        for call_id in [c for c, call in self._calls.items() if call.expires <= now]:
            del self._calls[call_id]


# --- through Redis ---------------------------------------------------------------------------------------

# KEYS: seq counter, history list, call channel, feed channel. ARGV: the event's JSON without seq, whether it
# goes on the feed ("1"/"0"), TTL seconds, history cap. Returns the stored event's JSON (seq first).
PUBLISH_LUA = """
local seq = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
local body = '{"seq":' .. seq .. ',' .. string.sub(ARGV[1], 2)
redis.call('RPUSH', KEYS[2], body)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[4]), -1)
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('PUBLISH', KEYS[3], body)
if ARGV[2] == '1' then
  redis.call('PUBLISH', KEYS[4], body)
end
return body
"""


@dataclass(frozen=True)
class RedisLayout:
    """Where live events live in Redis. The call id in braces keeps one call's keys in one cluster slot."""

    prefix: str = REDIS_PREFIX

    def seq_key(self, call_id: str) -> str:
        return f"{self.prefix}:{{{call_id}}}:seq"

    def history_key(self, call_id: str) -> str:
        return f"{self.prefix}:{{{call_id}}}:history"

    def channel(self, call_id: str | None) -> str:
        return f"{self.prefix}:feed" if call_id is None else f"{self.prefix}:{{{call_id}}}:events"

    def script_args(self, event: Event) -> tuple[list[str], list[str | int]]:
        """KEYS and ARGV of ``PUBLISH_LUA`` for a normalized event (see ``normalized``)."""
        call_id = event["call_id"]
        keys = [self.seq_key(call_id), self.history_key(call_id), self.channel(call_id), self.channel(None)]
        return keys, [dumps(event), "1" if event["type"] in FEED_TYPES else "0", ttl_for(event), MAX_HISTORY]


class RedisHub:
    """The hub through Redis: every API process (and the live process's publisher) shares it. Each
    subscription holds its own pub/sub connection, read by a task into the subscription's bounded queue;
    a lost connection ends the subscription (``SubscriptionLost``)."""

    def __init__(self, url: str, *, prefix: str = REDIS_PREFIX, max_pending: int = MAX_PENDING) -> None:
        self.layout = RedisLayout(prefix)
        self._redis = aioredis.Redis.from_url(url, socket_connect_timeout=5)
        self._script = self._redis.register_script(PUBLISH_LUA)
        self._max_pending = max_pending
        self._subscriptions: set[Subscription] = set()

    async def publish(self, event: Event) -> Event:
        keys, args = self.layout.script_args(normalized(event))
        with _unreachable_as_hub_error():
            body = await self._script(keys=keys, args=args)
        return json.loads(body)  # type: ignore[no-any-return]

    @asynccontextmanager
    async def subscribe(self, call_id: str | None) -> AsyncIterator[Subscription]:
        sub = Subscription(call_id, self._max_pending)
        pubsub = self._redis.pubsub()
        try:
            with _unreachable_as_hub_error():
                await _subscribed(pubsub, self.layout.channel(call_id))
            reader = asyncio.create_task(_read(pubsub, sub))
            self._subscriptions.add(sub)
            try:
                yield sub
            finally:
                self._subscriptions.discard(sub)
                reader.cancel()
                await asyncio.wait([reader])  # a cancellation of this task itself still propagates
        finally:
            await pubsub.aclose()

    async def history(self, call_id: str) -> list[Event]:
        with _unreachable_as_hub_error():
            bodies = await self._redis.lrange(self.layout.history_key(call_id), 0, -1)
        return [json.loads(body) for body in bodies]

    async def aclose(self) -> None:
        for sub in list(self._subscriptions):
            sub.end()
        await self._redis.aclose()


@contextlib.contextmanager
def _unreachable_as_hub_error() -> Iterator[None]:
    try:
        yield
    except (RedisError, OSError, TimeoutError) as e:
        raise HubError(f"redis: {e or type(e).__name__}") from e


async def _subscribed(pubsub: Any, channel: str) -> None:
    """Subscribe and wait for Redis to confirm it: events published after this returns are received."""
    await pubsub.subscribe(channel)
    async with asyncio.timeout(SUBSCRIBE_TIMEOUT):
        while True:
            message = await pubsub.get_message(timeout=SUBSCRIBE_TIMEOUT)
            if message and message["type"] == "subscribe":
                return


async def _read(pubsub: Any, sub: Subscription) -> None:
    try:
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
            if message and message["type"] == "message":
                sub.offer(json.loads(message["data"]))
    except Exception as e:  # the connection failed (or a foreign message): cut off rather than hang
        log.warning("live subscription to %s lost: %s", sub.call_id or "the feed", e)
        sub.end(f"redis: {e or type(e).__name__}")


def make_hub(settings: Settings) -> EventHub:
    """``RedisHub`` when ``HOTLINE_REDIS_URL`` is set (several API processes), else ``LocalHub``."""
    return RedisHub(settings.redis_url) if settings.redis_url else LocalHub()
