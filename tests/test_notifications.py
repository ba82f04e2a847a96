"""SLA reminders: the sweep with fixed clocks (idempotent), recipients, the API, and a real webhook server."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.cases import workflow
from app.cases.models import Case
from app.cli import app as cli
from app.config import Settings
from app.db import Database
from app.jobs import JobQueue
from app.notifications import service as notifications
from app.notifications.models import Notification
from app.users.models import Role
from tests.conftest import add_user, login
from tests.helpers import file_transcript
from tests.processes import env_for

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
POLICY = workflow.SlaPolicy(feedback_hours=24, days={"一般": 5, "疑难": 15, "特别复杂": 30}, due_soon_hours=24,
                            feedback_due_soon_hours=4)
WAGES = [("caller", "青岛宏远汽车配件有限公司拖欠工资三个月了")]


def _new_case(database: Database, name: str = "call", **values: Any) -> int:
    case_id = file_transcript(database, WAGES, name=name)
    with database.session() as db:
        case = db.get(Case, case_id)
        assert case is not None
        case.created_by, case.accepted_at, case.feedback_due_at, case.due_at = "user:zhang", T0, None, None
        for k, v in values.items():
            setattr(case, k, v)
    return case_id


def _sweep(database: Database, after: timedelta) -> dict[str, int]:
    with database.session() as db:
        return notifications.sla_sweep(db=db, now=T0 + after, policy=POLICY).created


def _sent(database: Database) -> list[tuple[str, str]]:
    with database.session() as db:
        rows = db.execute(sa.select(Notification.kind, Notification.username).order_by(Notification.id)).all()
        return [(r.kind, r.username) for r in rows]


@pytest.fixture
def staff(database: Database) -> None:
    add_user(database, "zhang", Role.agent)
    add_user(database, "li", Role.mediator)
    add_user(database, "wang", Role.manager)
    add_user(database, "zhao", Role.manager)


@pytest.mark.usefixtures("staff")
def test_sweep_makes_each_reminder_once_when_due(database: Database) -> None:
    case_id = _new_case(database)
    with database.session() as db:  # filed without deadlines: the sweep stores them from 受理
        assert notifications.sla_sweep(db=db, now=T0 + timedelta(hours=1), policy=POLICY).clocks_started == 1
        case = db.get(Case, case_id)
        assert case is not None
        assert (case.feedback_due_at, case.due_at) == (T0 + timedelta(hours=24), T0 + timedelta(days=5))
    assert _sent(database) == []
    everyone = ["zhang", "wang", "zhao"]  # unassigned: the creator, and the managers
    assert _sweep(database, timedelta(hours=21)) == {"feedback_due_soon": 3}
    assert _sweep(database, timedelta(hours=21, minutes=1)) == {}  # idempotent
    assert _sweep(database, timedelta(hours=25)) == {"feedback_overdue": 3}
    assert _sweep(database, timedelta(hours=26)) == {}
    assert _sweep(database, timedelta(days=4, hours=1)) == {"due_soon": 3}
    assert _sweep(database, timedelta(days=5, minutes=1)) == {"overdue": 3}
    for minutes in range(3):
        assert _sweep(database, timedelta(days=6, minutes=minutes)) == {}
    kinds = ["feedback_due_soon", "feedback_overdue", "due_soon", "overdue"]
    assert _sent(database) == [(k, u) for k in kinds for u in everyone]
    with database.session() as db:
        text = db.execute(sa.select(Notification.message).where(Notification.kind == "overdue")).scalars().first()
    assert text is not None and "已超期" in text and "03月07日 09:00" in text  # the deadline in Beijing time


@pytest.mark.usefixtures("staff")
def test_sweep_skips_what_is_settled(database: Database) -> None:
    _new_case(database, "a", first_feedback_at=T0 + timedelta(hours=1))  # feedback given: no feedback reminders
    _new_case(database, "b", status="办结", closed_at=T0 + timedelta(days=1), first_feedback_at=T0)  # closed
    assert _sweep(database, timedelta(hours=25)) == {}
    assert _sweep(database, timedelta(days=7)) == {"overdue": 3}  # case a, still open


@pytest.mark.usefixtures("staff")
def test_assigned_and_escalated_go_to_the_assignee(database: Database) -> None:
    case_id = _new_case(database, assignee="li", escalated=True, status="转办")
    assert _sweep(database, timedelta(hours=1)) == {"escalated": 3, "assigned": 1}
    assert set(_sent(database)) == {("escalated", "li"), ("escalated", "wang"), ("escalated", "zhao"),
                                    ("assigned", "li")}
    with database.session() as db:  # handed to someone else: the new person is told too
        case = db.get(Case, case_id)
        assert case is not None
        case.assignee = "zhang"
    assert _sweep(database, timedelta(hours=2)) == {"assigned": 1}
    assert _sweep(database, timedelta(hours=3)) == {}


@pytest.mark.usefixtures("staff")
def test_deactivated_users_are_not_told(database: Database) -> None:
    from app.users.models import User

    with database.session() as db:
        db.execute(sa.update(User).where(User.username == "zhao").values(active=False))
    _new_case(database)
    assert _sweep(database, timedelta(hours=25)) == {"feedback_overdue": 2}


def test_api_lists_mine_newest_first_and_marks_read(client: TestClient, database: Database) -> None:
    add_user(database, "zhang", Role.agent)
    add_user(database, "li", Role.mediator)
    add_user(database, "wang", Role.manager)
    zhang, li, wang = (login(client, n) for n in ("zhang", "li", "wang"))
    case_id = file_transcript(database, WAGES)
    url = f"/api/v1/cases/{case_id}"
    assert client.post(f"{url}/transitions", headers=zhang, json={"to": "转办", "unit": "市南区劳动监察大队",
                                                                  "assignee": "li"}).status_code == 200
    assert client.post(f"{url}/escalate", headers=wang, json={"note": "请加快"}).status_code == 200
    mine = client.get("/api/v1/notifications", headers=li).json()
    assert mine["unread"] == 2 and mine["total"] == 2
    assert [n["kind"] for n in mine["items"]] == ["escalated", "assigned"]  # newest first
    assert mine["items"][1]["case_no"].startswith("12351-") and "已转交您办理" in mine["items"][1]["message"]
    first = mine["items"][0]["id"]
    assert client.post(f"/api/v1/notifications/{first}/read", headers=wang).status_code == 404  # not wang's
    r = client.post(f"/api/v1/notifications/{first}/read", headers=li)
    assert r.status_code == 200 and r.json()["read_at"] is not None
    mine = client.get("/api/v1/notifications", headers=li).json()
    assert mine["unread"] == 1
    assert [n["kind"] for n in client.get("/api/v1/notifications?unread_only=true", headers=li).json()["items"]] \
        == ["assigned"]
    assert client.get("/api/v1/notifications", headers=wang).json()["unread"] == 1  # escalated, for managers
    assert client.get("/api/v1/notifications", headers=zhang).json()["total"] == 0
    assert client.get("/api/v1/notifications").status_code == 401


# --- the webhook, against a real HTTP server ----------------------------------------------------------------

class Gateway:
    """A local HTTP server standing in for an SMS gateway: records each POST, fails the first ``fail``."""

    def __init__(self, fail: int = 0) -> None:
        self.received: list[dict[str, Any]] = []
        self.fail = fail
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if gateway.fail > 0:
                    gateway.fail -= 1
                    self.send_response(503)
                else:
                    gateway.received.append(json.loads(body))
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sms"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    g = Gateway(fail=1)
    yield g
    g.close()


@pytest.mark.usefixtures("staff")
def test_webhook_gets_each_notification_once_and_failures_are_retried(database: Database, settings: Settings,
                                                                      gateway: Gateway) -> None:
    settings = settings.model_copy(update={"sla_webhook_url": gateway.url, "sla_webhook_timeout_s": 2.0})
    case_id = _new_case(database)
    now = datetime.now(UTC)
    with database.session() as db:
        case = db.get(Case, case_id)
        assert case is not None
        case.accepted_at = now - timedelta(hours=30)  # first feedback overdue now
    first = notifications.run_sweep(database=database, settings=settings, now=now)
    assert first.sweep.created == {"feedback_overdue": 3}
    assert first.delivery is not None and (first.delivery.delivered, first.delivery.failed) == (2, 1)
    assert "503" in first.delivery.errors[0]
    second = notifications.run_sweep(database=database, settings=settings, now=now + timedelta(minutes=1))
    assert second.delivery is not None and (second.delivery.delivered, second.delivery.failed) == (1, 0)
    third = notifications.run_sweep(database=database, settings=settings, now=now + timedelta(minutes=2))
    assert third.delivery is not None and third.delivery.delivered == third.delivery.failed == 0
    assert sorted(p["username"] for p in gateway.received) == ["wang", "zhang", "zhao"]
    payload = gateway.received[0]
    assert payload["kind"] == "feedback_overdue" and payload["case_id"] == case_id
    assert payload["case_no"].startswith("12351-") and "首次反馈已超时" in payload["message"]
    with database.session() as db:
        rows = db.execute(sa.select(Notification)).scalars().all()
        assert all(n.delivered_at is not None for n in rows)
        assert sorted(n.attempts for n in rows) == [1, 1, 2]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.usefixtures("staff")
def test_unreachable_webhook_never_crashes_the_sweep(database: Database, settings: Settings) -> None:
    settings = settings.model_copy(update={"sla_webhook_url": f"http://127.0.0.1:{_closed_port()}/x",
                                           "sla_webhook_timeout_s": 1.0})
    _new_case(database, escalated=True)
    report = notifications.run_sweep(database=database, settings=settings, now=T0 + timedelta(hours=1))
    assert report.sweep.created == {"escalated": 3}
    assert report.delivery is not None and report.delivery.failed == 3 and report.delivery.delivered == 0
    report = notifications.run_sweep(database=database, settings=settings, now=T0 + timedelta(hours=1, minutes=1))
    assert report.sweep.total == 0 and report.delivery is not None and report.delivery.failed == 3
    with database.session() as db:
        rows = db.execute(sa.select(Notification)).scalars().all()
        assert all(n.attempts == 2 and n.delivered_at is None and "ConnectError" in (n.last_error or "")
                   for n in rows)


@pytest.mark.usefixtures("staff")
def test_cli_sla_sweep(database: Database, settings: Settings) -> None:
    _new_case(database, escalated=True, accepted_at=datetime.now(UTC))  # the command sweeps at the real now
    r = CliRunner().invoke(cli, ["sla", "sweep"], env=env_for(settings))
    assert r.exit_code == 0, r.output
    assert "notifications: 3 (escalated 3)" in r.output
    r = CliRunner().invoke(cli, ["sla", "sweep"], env=env_for(settings))
    assert "notifications: 0 (none due)" in r.output


@pytest.mark.usefixtures("staff")
def test_worker_runs_the_sweep_every_minute(database: Database, settings: Settings) -> None:
    queue = JobQueue(settings, database=database)
    task = next(t for t in queue.huey._registry._periodic_tasks if t.__name__ == "sla_sweep")
    assert task().validate_datetime(datetime(2026, 3, 2, 9, 17))  # crontab(minute="*")
    _new_case(database, escalated=True, accepted_at=datetime.now(UTC))
    assert task().execute() == 3
    assert task().execute() == 0
