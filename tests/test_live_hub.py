"""The live event hub, in this process and through a real Redis (HOTLINE_TEST_REDIS_URL): order, seq, history,
slow subscribers; the live process's publishers (Redis, Unix socket) and the API's ingest socket."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from app.auth.permissions import mask_phone
from app.config import Settings
from app.live import ingest
from app.live.hub import ENDED_TTL, EventHub, LocalHub, RedisHub, Subscription, SubscriptionLost
from app.live.models import dumps
from app.live.publish import BackgroundPublisher, RedisSink, SocketSink, make_publisher, socket_path, unix_address
from app.live.service import following, replayable
from tests.conftest import REDIS_URL

Event = dict[str, Any]
MakeHub = Callable[..., EventHub]


# --- events ----------------------------------------------------------------------------------------------


def started(call_id: str, caller: str = "13812345678") -> Event:
    return {"type": "call_started", "call_id": call_id, "caller": caller, "called": "12351", "source": "sip",
            "at": 1_700_000_000.5}


def partial(call_id: str, utterance: int, text: str, role: str = "caller") -> Event:
    return {"type": "partial", "call_id": call_id, "role": role, "utterance": utterance, "start": 1.0,
            "end": 1.5 + len(text) / 4, "stable": text[:-1], "text": text}


def final(call_id: str, utterance: int, text: str, role: str = "caller") -> Event:
    return {"type": "final", "call_id": call_id, "role": role, "utterance": utterance, "start": 1.0,
            "end": 1.5 + len(text) / 4, "text": text}


def ended(call_id: str) -> Event:
    return {"type": "call_ended", "call_id": call_id, "reason": "bye", "at": 1_700_000_060.0}


def a_call(call_id: str) -> list[Event]:
    return [started(call_id), partial(call_id, 0, "我要"), partial(call_id, 0, "我要投诉"),
            final(call_id, 0, "我要投诉。"), partial(call_id, 1, "好的", role="agent"),
            final(call_id, 1, "好的，请讲。", role="agent"), ended(call_id)]


def new_id() -> str:
    return uuid.uuid4().hex


def without_seq(events: list[Event]) -> list[Event]:
    return [{k: v for k, v in e.items() if k != "seq"} for e in events]


async def take(events: Subscription | Any, n: int) -> list[Event]:
    out: list[Event] = []
    async with asyncio.timeout(5):
        async for event in events:
            out.append(event)
            if len(out) == n:
                break
    return out


async def until(check: Callable[[], object]) -> None:
    """Wait (up to 3 s) until ``check()`` holds."""
    for _ in range(300):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("waited 3 s in vain")


# --- hubs ------------------------------------------------------------------------------------------------


@pytest.fixture(params=["local", "redis"])
def make_hub(request: pytest.FixtureRequest) -> Iterator[MakeHub]:
    """Makes hubs inside the running event loop. Redis hubs share a prefix of this test's own (so they see
    each other), whose keys are removed afterwards."""
    if request.param == "local":
        yield LocalHub
        return
    if not REDIS_URL:
        pytest.skip("HOTLINE_TEST_REDIS_URL is not set (.ci/run sets it)")
    prefix = f"test:live:{uuid.uuid4().hex[:12]}"
    yield lambda **kw: RedisHub(REDIS_URL, prefix=prefix, **kw)
    _drop_keys(prefix)


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    if not REDIS_URL:
        pytest.skip("HOTLINE_TEST_REDIS_URL is not set (.ci/run sets it)")
    prefix = f"test:live:{uuid.uuid4().hex[:12]}"
    yield prefix
    _drop_keys(prefix)


def _drop_keys(prefix: str) -> None:
    assert REDIS_URL
    with redis.Redis.from_url(REDIS_URL) as r:  # an unreachable server fails the test here
        keys = list(r.scan_iter(match=f"{prefix}:*"))
        if keys:
            r.delete(*keys)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())


def test_subscribers_get_each_event_in_order_numbered_and_history_keeps_them(make_hub: MakeHub) -> None:
    async def scenario() -> None:
        hub = make_hub()
        call, other = new_id(), new_id()
        try:
            async with hub.subscribe(call) as events, hub.subscribe(None) as feed:
                stored = [await hub.publish(e) for e in a_call(call)]
                await hub.publish(started(other))
                got = await take(events, 7)
                announced = await take(feed, 3)
            assert [e["seq"] for e in stored] == [1, 2, 3, 4, 5, 6, 7]
            assert without_seq(stored) == a_call(call)
            assert got == stored
            assert [(e["type"], e["call_id"]) for e in announced] == \
                [("call_started", call), ("call_ended", call), ("call_started", other)]
            assert await hub.history(call) == stored
            assert await hub.history(other) == [{"seq": 1, **started(other)}]
            assert await hub.history(new_id()) == []
        finally:
            await hub.aclose()

    run(scenario)


def test_joining_mid_call_replays_what_was_said_then_follows(make_hub: MakeHub) -> None:
    async def scenario() -> None:
        hub = make_hub()
        call = new_id()
        events = a_call(call)
        try:
            for e in events[:4]:  # started, two partials and the final of utterance 0
                await hub.publish(e)
            async with following(hub, call) as followed:
                for e in events[4:]:
                    await hub.publish(e)
                got = await take(followed, 5)
            # the replaced partials are not replayed; after that nothing is missed and nothing comes twice
            assert [(e["seq"], e["type"]) for e in got] == \
                [(1, "call_started"), (4, "final"), (5, "partial"), (6, "final"), (7, "call_ended")]
        finally:
            await hub.aclose()

    run(scenario)


def test_a_slow_subscriber_is_cut_off_and_never_holds_up_publishers(make_hub: MakeHub) -> None:
    async def scenario() -> None:
        hub = make_hub(max_pending=5)
        call = new_id()
        try:
            async with hub.subscribe(call) as slow, hub.subscribe(call) as fast:
                async with asyncio.timeout(5):  # nobody reads `slow`: publishing goes on regardless
                    for i in range(50):
                        await hub.publish(partial(call, i, f"第{i}句"))
                        assert len(await take(fast, 1)) == 1
                await until(lambda: slow.lost is not None)
                got = []
                with pytest.raises(SubscriptionLost, match="behind"):
                    async for event in slow:
                        got.append(event["seq"])
                assert got == [1, 2, 3, 4, 5]
        finally:
            await hub.aclose()

    run(scenario)


def test_invalid_events_are_refused() -> None:
    async def scenario() -> None:
        hub = LocalHub()
        for bad in [{}, {"type": "partial", "call_id": "c1"}, {**started("c1"), "type": "call_paused"},
                    {**started("c1"), "call_id": "../etc"}, {**final("c1", 0, "好"), "role": "boss"}]:
            with pytest.raises(ValueError):
                await hub.publish(bad)
        assert await hub.history("c1") == []
        stored = await hub.publish({**final("c1", 0, "好"), "seq": 99, "extra": "x"})
        assert stored == {"seq": 1, **final("c1", 0, "好")}  # seq is the hub's; unknown fields dropped

    run(scenario)


def test_local_history_is_dropped_ten_minutes_after_the_call_ended() -> None:
    now = [1000.0]

    async def scenario() -> None:
        hub = LocalHub(clock=lambda: now[0])
        call = new_id()
        for e in a_call(call):
            await hub.publish(e)
        now[0] += ENDED_TTL - 1
        assert len(await hub.history(call)) == 7
        now[0] += 2
        assert await hub.history(call) == []
        stored = await hub.publish(started(call))  # the same id again starts afresh
        assert stored["seq"] == 1

    run(scenario)


def test_two_redis_hubs_see_each_others_events(redis_prefix: str) -> None:
    """Two API processes on one Redis: events published through one reach subscribers of the other, and
    both number them from one counter."""
    assert REDIS_URL

    async def scenario() -> None:
        a, b = RedisHub(REDIS_URL, prefix=redis_prefix), RedisHub(REDIS_URL, prefix=redis_prefix)
        call = new_id()
        try:
            async with b.subscribe(call) as events, b.subscribe(None) as feed:
                await a.publish(started(call))
                await b.publish(final(call, 0, "喂，你好。"))
                await a.publish(ended(call))
                got = await take(events, 3)
                announced = await take(feed, 2)
            assert [(e["seq"], e["type"]) for e in got] == [(1, "call_started"), (2, "final"), (3, "call_ended")]
            assert [e["seq"] for e in announced] == [1, 3]
            assert await a.history(call) == await b.history(call) == got
        finally:
            await a.aclose()
            await b.aclose()

    run(scenario)


def test_replayable_keeps_finals_and_the_latest_partial_of_open_utterances() -> None:
    history = [{"seq": i + 1, **e} for i, e in enumerate(
        [started("c"), partial("c", 0, "我"), partial("c", 1, "喂", role="agent"), partial("c", 0, "我要"),
         final("c", 0, "我要投诉。"), partial("c", 2, "公司"), partial("c", 2, "公司欠")])]
    assert [e["seq"] for e in replayable(history)] == [1, 3, 5, 7]


@pytest.mark.parametrize(("number", "masked"), [
    ("13812345678", "138****5678"), ("+8613812345678", "+86138****5678"), ("008613812345678", "0086138****5678"),
    ("010-62345678", "010-****5678"), ("+1 415 555 0100", "+1 41* *** 0100"), ("12345678", "123*5678"),
    ("1234567", "1234567"), ("123456", "123456"), ("12351", "12351"), ("8001", "8001"), ("", ""),
    ("anonymous", "anonymous"),
])
def test_mask_phone(number: str, masked: str) -> None:
    assert mask_phone(number) == masked


# --- publishers ------------------------------------------------------------------------------------------


def test_the_redis_publisher_writes_what_redis_hubs_read(redis_prefix: str) -> None:
    assert REDIS_URL

    async def scenario() -> None:
        hub = RedisHub(REDIS_URL, prefix=redis_prefix)
        call = new_id()
        publisher = BackgroundPublisher(RedisSink(REDIS_URL, prefix=redis_prefix))
        try:
            await until(lambda: publisher.connected)
            async with hub.subscribe(call) as events:
                for e in a_call(call):
                    publisher.publish(e)
                publisher.publish({"type": "final", "call_id": call})  # invalid: logged, not sent
                got = await take(events, 7)
            assert without_seq(got) == a_call(call)
            assert [e["seq"] for e in got] == list(range(1, 8))
            assert await hub.history(call) == got
        finally:
            publisher.close()
            await hub.aclose()
        with redis.Redis.from_url(REDIS_URL) as r:
            assert 0 < r.ttl(hub.layout.history_key(call)) <= ENDED_TTL  # kept 10 minutes after call_ended

    run(scenario)


def test_make_publisher_picks_redis_or_the_socket(tmp_path: Path) -> None:
    for url, kind in [(None, SocketSink), ("redis://127.0.0.1:1/0", RedisSink)]:
        publisher = make_publisher(Settings(data_dir=tmp_path, redis_url=url))
        try:
            assert isinstance(publisher, BackgroundPublisher) and isinstance(publisher.sink, kind)
        finally:
            publisher.close()


def test_the_socket_publisher_drops_events_until_the_api_is_up_then_delivers(tmp_path: Path) -> None:
    """No API yet: publish returns at once, events are dropped, the thread retries; once the ingest socket
    is served the publisher connects by itself and events arrive, in order. A deep data dir (socket path over
    the 107-byte limit) works too."""
    settings = Settings(data_dir=tmp_path / ("d" * 120) / "var", redis_url=None)
    settings.data_dir.mkdir(parents=True)
    assert len(str(socket_path(settings))) > 107

    async def scenario() -> None:
        hub = LocalHub()
        call = new_id()
        publisher = BackgroundPublisher(SocketSink(socket_path(settings)))
        server = None
        try:
            began = time.monotonic()
            for _ in range(3000):
                publisher.publish(started(call))
            assert time.monotonic() - began < 1, "publishing never blocks"
            await until(lambda: publisher.dropped == 3000)
            assert not publisher.connected
            server = await ingest.start(settings, hub)
            assert server is not None
            await until(lambda: publisher.connected)
            async with hub.subscribe(call) as events:
                for e in a_call(call):
                    publisher.publish(e)
                got = await take(events, 7)
            assert without_seq(got) == a_call(call)
            assert await hub.history(call) == got
        finally:
            publisher.close()
            if server is not None:
                await server.stop()

    run(scenario)
    assert not socket_path(settings).exists(), "the socket file is removed when the API stops"


def test_the_socket_publisher_reconnects_when_the_api_restarts(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, redis_url=None)

    async def scenario() -> None:
        hub = LocalHub()
        server = await ingest.start(settings, hub)
        assert server is not None
        with BackgroundPublisher(SocketSink(socket_path(settings))) as publisher:
            first, second = new_id(), new_id()
            await until(lambda: publisher.connected)
            async with hub.subscribe(first) as events:
                publisher.publish(started(first))
                await take(events, 1)
            await server.stop()
            server = await ingest.start(settings, hub)  # the API again (a new process would be alike)
            assert server is not None
            for _ in range(300):  # what is sent before the publisher notices is dropped; then it reconnects
                publisher.publish(started(second))
                await asyncio.sleep(0.01)
                if await hub.history(second):
                    break
            assert await hub.history(second), "the publisher never got through again"
            assert publisher.dropped >= 1
            await server.stop()

    run(scenario)


def test_one_ingest_per_data_dir_and_a_stale_socket_is_replaced(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, redis_url=None)
    path = socket_path(settings)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with unix_address(path) as address:
        stale.bind(address)  # a socket file left by a process that died
    stale.close()
    assert path.exists()

    async def scenario() -> None:
        first = await ingest.start(settings, LocalHub())
        assert first is not None, "the stale socket is replaced"
        try:
            assert await ingest.start(settings, LocalHub()) is None, "a second API process serves none"
            reader, writer = await asyncio.open_unix_connection(str(path))
            writer.close()
            await writer.wait_closed()
        finally:
            await first.stop()
        again = await ingest.start(settings, LocalHub())  # the lock went with the first server
        assert again is not None
        await again.stop()

    run(scenario)


def test_bad_lines_are_skipped_and_the_connection_kept(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, redis_url=None)

    async def scenario() -> None:
        hub = LocalHub()
        server = await ingest.start(settings, hub)
        assert server is not None
        call = new_id()
        try:
            async with hub.subscribe(call) as events:
                _, writer = await asyncio.open_unix_connection(str(socket_path(settings)))
                writer.write(b"not json\n[1, 2]\n" + dumps({"type": "final", "call_id": call}).encode() + b"\n"
                             + b"\xff\xfe\n" + b"x" * (ingest.MAX_LINE + 10) + b"\n\n"
                             + "".join(dumps(e) + "\n" for e in a_call(call)).encode())
                await writer.drain()
                got = await take(events, 7)
                writer.close()
                await writer.wait_closed()
            assert without_seq(got) == a_call(call)
        finally:
            await server.stop()

    run(scenario)
