"""Live transcripts in staff browsers, against the real app (SQLite and PostgreSQL): the live process's publisher
→ the API's Unix socket → the hub → WebSockets; login and permissions, masking, screen pop, history on joining
mid-call, closing after call_ended."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession

from app.audit.models import AuditEvent
from app.auth.permissions import MATRIX, Permission
from app.calls.models import Call
from app.cases.models import Case
from app.config import Settings
from app.db import Database
from app.jobs import JobQueue
from app.live import views
from app.live.hub import LocalHub, RedisLayout
from app.live.publish import BackgroundPublisher, RedisSink, connect_unix, make_publisher, socket_path
from app.main import create_app
from app.users.models import Role
from tests.conftest import REDIS_URL, add_user, login
from tests.helpers import file_transcript
from tests.test_live_hub import a_call, ended, final, new_id, partial, started, without_seq

CALLER = "13812345678"
Event = dict[str, Any]


# --- helpers ---------------------------------------------------------------------------------------------


def token(client: TestClient, name: str) -> str:
    return login(client, name)["Authorization"].removeprefix("Bearer ")


def live_url(tok: str | None, call_id: str | None = None) -> str:
    path = "/api/v1/calls/live" if call_id is None else f"/api/v1/calls/{call_id}/live"
    return path + (f"?token={tok}" if tok is not None else "")


def publish(client: TestClient, *events: Event) -> None:
    """Into the app's hub, on the app's event loop (what the ingest socket does)."""
    hub = client.app.state.live_hub  # type: ignore[attr-defined]
    for event in events:
        assert client.portal is not None
        client.portal.call(hub.publish, event)


def closed(ws: WebSocketTestSession) -> tuple[int, str]:
    message = ws.receive()
    assert message["type"] == "websocket.close", message
    return int(message["code"]), str(message.get("reason", ""))


def audits(database: Database, action: str | None = None) -> list[AuditEvent]:
    with database.session() as db:
        q = sa.select(AuditEvent).order_by(AuditEvent.seq)
        rows = list(db.execute(q.where(AuditEvent.action == action) if action else q).scalars())
        db.expunge_all()
        return rows


def wait_for(check: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + 3
    while not check():
        assert time.monotonic() < deadline, f"waited 3 s for {what}"
        time.sleep(0.01)


def watching(database: Database, n: int) -> None:
    """Until ``n`` live subscriptions were accepted (audited once subscribed: later events reach them)."""
    wait_for(lambda: len(audits(database, "call.live_viewed")) >= n, f"{n} live subscriptions")


def earlier_call(database: Database, caller: str, text: str) -> Case:
    """A case from an earlier call of ``caller``."""
    case_id = file_transcript(database, [("caller", text), ("agent", "好的，我们记录下来了。")], name=new_id())
    with database.session() as db:
        case = db.get(Case, case_id)
        assert case is not None
        db.add(Call(call_uuid=new_id(), source="sip", external_id=new_id(), caller=caller, called="12351",
                    channel="来电", status="ended", started_at=datetime.now(UTC), recording_id=case.recording_id,
                    dtmf=[], events=[]))
        db.expunge(case)
        return case


# --- the whole way: live process → socket → hub → browser ------------------------------------------------


def test_events_from_the_live_process_reach_a_browser_even_if_it_started_first(
    settings: Settings, database: Database, queue: JobQueue, caplog: pytest.LogCaptureFixture
) -> None:
    call = new_id()
    publisher = make_publisher(settings)  # the live process is up before the API
    assert isinstance(publisher, BackgroundPublisher)
    try:
        publisher.publish(started(call))  # nobody serves the socket yet: dropped, no error
        wait_for(lambda: publisher.dropped == 1, "the event to be dropped")
        with TestClient(create_app(settings, queue=queue, database=database)) as client:
            wait_for(lambda: publisher.connected, "the publisher to connect")
            add_user(database, "zhang", Role.agent)
            with client.websocket_connect(live_url(token(client, "zhang"), call)) as ws, \
                    caplog.at_level(logging.WARNING, logger="hotline.live"):
                watching(database, 1)
                with connect_unix(socket_path(settings)) as raw:  # a bad line, then a good one: both read
                    raw.sendall(b'{"type": "partial", broken\n{"type":"call_started","call_id":"' + call.encode()
                                + b'","caller":"' + CALLER.encode() + b'","at":1.5}\n')
                    first = ws.receive_json()
                assert (first["seq"], first["type"], first["caller"]) == (1, "call_started", CALLER)
                assert "bad event skipped" in caplog.text
                for event in a_call(call)[1:]:
                    publisher.publish(event)
                rest = [ws.receive_json() for _ in a_call(call)[1:]]
                assert closed(ws) == (1000, "通话已结束")
            assert without_seq(rest) == a_call(call)[1:]
            assert [e["seq"] for e in rest] == [2, 3, 4, 5, 6, 7]
        assert not socket_path(settings).exists()
    finally:
        publisher.close()


# --- who may watch ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("call_id", [None, "a" * 32])
@pytest.mark.parametrize("tok", [None, "not.a.token"])
def test_without_a_valid_login_it_is_refused(client: TestClient, tok: str | None, call_id: str | None) -> None:
    with client.websocket_connect(live_url(tok, call_id)) as ws:
        code, reason = closed(ws)
    assert code == 1008 and reason in ("请先登录", "无效的登录凭证")


def test_a_role_without_the_permission_is_refused_and_audited(
    client: TestClient, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_user(database, "wang", Role.manager)
    monkeypatch.setitem(MATRIX, Role.manager, MATRIX[Role.manager] - {Permission.case_read})
    with client.websocket_connect(live_url(token(client, "wang"))) as ws:
        assert closed(ws)[0] == 1008
    denied = audits(database)[-1]
    assert (denied.action, denied.actor, denied.subject_id) == ("auth.denied", "user:wang", "/api/v1/calls/live")
    assert denied.details["permission"] == "case:read"
    assert audits(database, "call.live_viewed") == []


def test_a_malformed_call_id_is_refused(client: TestClient, database: Database, agent: dict) -> None:
    with client.websocket_connect(live_url(agent["Authorization"][7:], "bad%20id")) as ws:
        assert closed(ws)[0] == 1003


# --- the feed and the screen pop -------------------------------------------------------------------------


def test_the_feed_announces_calls_with_screen_pop_masked_unless_allowed(client: TestClient,
                                                                        database: Database) -> None:
    older = earlier_call(database, CALLER, "公司拖欠我三个月工资，一直不给。" * 8)
    with database.session() as db:  # a long summary (staff wrote it out): the screen pop shows its first 80
        row = db.get(Case, older.id)
        assert row is not None
        row.summary = older.summary = "公司拖欠来电人三个月工资，一直不给。" * 8
    newer = earlier_call(database, CALLER, "上次说的欠薪问题还没解决，我想问问进展。")
    earlier_call(database, "13900000000", "别人的事情。")  # another caller's: not shown
    add_user(database, "zhang", Role.agent)
    add_user(database, "wang", Role.manager)
    call = new_id()
    with client.websocket_connect(live_url(token(client, "zhang"))) as agent_ws, \
            client.websocket_connect(live_url(token(client, "wang"))) as manager_ws:
        watching(database, 2)
        publish(client, started(call, CALLER), partial(call, 0, "喂"), final(call, 0, "喂，你好。"), ended(call))
        agent_sees = [agent_ws.receive_json(), agent_ws.receive_json()]
        manager_sees = [manager_ws.receive_json(), manager_ws.receive_json()]

    assert [e["type"] for e in agent_sees] == [e["type"] for e in manager_sees] == ["call_started", "call_ended"]
    assert [e["seq"] for e in agent_sees] == [1, 4]
    assert agent_sees[0]["caller"] == CALLER
    assert manager_sees[0]["caller"] == "138****5678"
    pop = agent_sees[0]["previous_cases"]
    assert pop == manager_sees[0]["previous_cases"]
    assert [c["id"] for c in pop] == [newer.id, older.id]  # newest first
    assert pop[1] == {"id": older.id, "case_no": older.case_no, "category": older.category,
                      "status": older.status, "summary": older.summary[:80],
                      "created_at": pop[1]["created_at"]}
    assert len(older.summary) > 80
    assert datetime.fromisoformat(pop[1]["created_at"]) == older.created_at
    viewed = audits(database, "call.live_viewed")
    assert {(a.actor, a.subject_type, a.subject_id) for a in viewed} == \
        {("user:zhang", "call", "feed"), ("user:wang", "call", "feed")}


def test_a_caller_with_no_earlier_cases_gets_an_empty_screen_pop(client: TestClient, database: Database,
                                                                 agent: dict) -> None:
    call = new_id()
    publish(client, started(call, "02161234567"))
    with client.websocket_connect(live_url(agent["Authorization"][7:], call)) as ws:
        event = ws.receive_json()
    assert (event["caller"], event["previous_cases"]) == ("02161234567", [])


# --- one call --------------------------------------------------------------------------------------------


def test_joining_mid_call_gets_what_was_said_then_the_rest_then_is_closed(
    client: TestClient, database: Database
) -> None:
    earlier = earlier_call(database, CALLER, "我要投诉公司不交社保。")
    add_user(database, "wang", Role.manager)
    call = new_id()
    events = a_call(call)
    publish(client, *events[:3])  # started, two partials of utterance 0
    with client.websocket_connect(live_url(token(client, "wang"), call)) as ws:
        replayed = [ws.receive_json(), ws.receive_json()]
        publish(client, *events[3:])
        rest = [ws.receive_json() for _ in events[3:]]
        assert closed(ws) == (1000, "通话已结束")
    assert [(e["seq"], e["type"]) for e in replayed] == [(1, "call_started"), (3, "partial")]  # 2 was replaced
    assert replayed[0]["caller"] == "138****5678"
    assert [c["case_no"] for c in replayed[0]["previous_cases"]] == [earlier.case_no]
    assert replayed[1]["text"] == "我要投诉"
    assert without_seq(rest) == events[3:]
    viewed = audits(database, "call.live_viewed")[-1]
    assert (viewed.actor, viewed.subject_type, viewed.subject_id) == ("user:wang", "call", call)


def test_a_call_that_already_ended_is_replayed_and_closed(client: TestClient, agent: dict) -> None:
    call = new_id()
    publish(client, *a_call(call))
    with client.websocket_connect(live_url(agent["Authorization"][7:], call)) as ws:
        got = [ws.receive_json() for _ in range(4)]  # the partials that finals replaced are left out
        assert closed(ws) == (1000, "通话已结束")
    assert [e["seq"] for e in got] == [1, 4, 6, 7]
    assert got[0]["caller"] == CALLER  # agents see the full number


def test_a_call_not_announced_yet_is_waited_for(client: TestClient, agent: dict,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(views, "WAIT_FOR_CALL", 2.0)
    call = new_id()
    with client.websocket_connect(live_url(agent["Authorization"][7:], call)) as ws:
        publish(client, started(call))
        assert ws.receive_json()["type"] == "call_started"


def test_an_unknown_call_is_closed_after_waiting(client: TestClient, agent: dict,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(views, "WAIT_FOR_CALL", 0.2)
    with client.websocket_connect(live_url(agent["Authorization"][7:], uuid.uuid4().hex)) as ws:
        assert closed(ws) == (1000, "未收到该通话的实时转写")


def test_a_browser_that_falls_behind_is_told_to_reconnect(client: TestClient, database: Database,
                                                          agent: dict) -> None:
    client.app.state.live_hub = LocalHub(max_pending=0)  # type: ignore[attr-defined]  # behind at once
    call = new_id()
    with client.websocket_connect(live_url(agent["Authorization"][7:], call)) as ws:
        watching(database, 1)
        publish(client, started(call))
        assert closed(ws) == (1013, "实时推送中断，请重新连接")


# --- several API processes, through Redis ----------------------------------------------------------------


def test_with_redis_every_api_process_sees_the_live_process_events(
    settings: Settings, database: Database, queue: JobQueue
) -> None:
    if not REDIS_URL:
        pytest.skip("HOTLINE_TEST_REDIS_URL is not set (.ci/run sets it)")
    with_redis = Settings(**{**settings.model_dump(), "redis_url": REDIS_URL})
    call = new_id()
    add_user(database, "zhang", Role.agent)
    with TestClient(create_app(with_redis, queue=queue, database=database)) as one, \
            TestClient(create_app(with_redis, queue=queue, database=database)) as two, \
            BackgroundPublisher(RedisSink(REDIS_URL)) as publisher:
        assert not socket_path(settings).exists(), "no ingest socket with Redis"
        wait_for(lambda: publisher.connected, "the publisher to reach Redis")
        with one.websocket_connect(live_url(token(one, "zhang"), call)) as ws1, \
                two.websocket_connect(live_url(token(two, "zhang"), call)) as ws2:
            watching(database, 2)
            for event in a_call(call):
                publisher.publish(event)
            got = [[ws.receive_json() for _ in a_call(call)] for ws in (ws1, ws2)]
            assert closed(ws1) == closed(ws2) == (1000, "通话已结束")
    with redis.Redis.from_url(REDIS_URL) as r:
        r.delete(RedisLayout().seq_key(call), RedisLayout().history_key(call))
    assert got[0] == got[1]
    assert [e["seq"] for e in got[0]] == list(range(1, 8))
    assert without_seq(got[0])[1:] == a_call(call)[1:]
    assert got[0][0]["previous_cases"] == []


@pytest.mark.parametrize("call_id", [None, "a" * 32])
def test_when_redis_cannot_be_reached_browsers_are_told_to_reconnect(
    settings: Settings, database: Database, queue: JobQueue, call_id: str | None
) -> None:
    no_redis = Settings(**{**settings.model_dump(), "redis_url": "redis://127.0.0.1:1/0"})
    add_user(database, "zhang", Role.agent)
    with TestClient(create_app(no_redis, queue=queue, database=database)) as client, \
            client.websocket_connect(live_url(token(client, "zhang"), call_id)) as ws:
        assert closed(ws) == (1013, "实时推送中断，请重新连接")
