"""`hotline` commands against a real database (both backends)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from app.cli import app
from app.config import Settings
from app.db import Database
from app.jobs import JobQueue
from app.recordings.models import Recording
from app.users import service as users
from tests.conftest import CALL
from tests.processes import env_for


@pytest.fixture
def run(settings: Settings, database: Database):
    runner = CliRunner()
    env = env_for(settings)

    def invoke(*args: str, stdin: str | None = None):
        return runner.invoke(app, list(args), env=env, input=stdin)

    return invoke


def test_users_add_reads_the_password_from_stdin(run, database: Database) -> None:
    r = run("users", "add", "chen", "--role", "manager", "--password-stdin", stdin="s3cret-pass\n")
    assert r.exit_code == 0, r.output
    with database.session() as db:
        user = users.authenticate(db=db, username="chen", password="s3cret-pass")
        assert user is not None and user.role == "manager"


@pytest.mark.parametrize(
    ("name", "password", "message"),
    [("chen", "short", "至少 10 位"), ("chen", "chen-2024!!", "用户名"), ("", "long-enough", "不能为空")]
)
def test_users_add_refuses_bad_input(run, name: str, password: str, message: str) -> None:
    r = run("users", "add", name, "--role", "agent", "--password-stdin", stdin=password + "\n")
    assert r.exit_code == 1 and message in r.output


def test_users_add_refuses_an_unknown_role(run) -> None:
    r = run("users", "add", "chen", "--role", "boss", "--password-stdin", stdin="long-enough\n")
    assert r.exit_code == 2


def test_import_stores_queues_and_dedupes(run, settings: Settings, database: Database, tmp_path: Path) -> None:
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    r = run("import", str(CALL), str(bad))
    assert r.exit_code == 1  # one file failed; the good one is still imported
    assert "已排队转写" in r.output and "notes.wav" in r.output and "无法识别为音频文件" in r.output
    r = run("import", str(CALL))
    assert r.exit_code == 0 and "已存在" in r.output
    with database.session() as db:
        rows = db.execute(sa.select(Recording.status, Recording.channel)).all()
    assert [tuple(r) for r in rows] == [("queued", "上传")]
    assert JobQueue(settings, database=database).huey.pending_count() == 1


def test_audit_verify_exit_codes(run, database: Database) -> None:
    run("users", "add", "chen", "--role", "agent", "--password-stdin", stdin="long-enough\n")
    r = run("audit", "verify")
    assert r.exit_code == 0 and "OK: 1 audit events" in r.output
    with database.engine.begin() as conn:
        if database.dialect == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER audit_events_no_update")
        else:
            conn.exec_driver_sql("DROP TRIGGER audit_events_no_change ON audit_events")
        conn.exec_driver_sql("UPDATE audit_events SET actor = 'cli-forged'")
    r = run("audit", "verify")
    assert r.exit_code == 1 and "seq=1" in r.output and "edited" in r.output


def test_help_reads_well(run) -> None:
    r = run("--help")
    assert r.exit_code == 0
    for command in ("serve", "worker", "import", "transcribe", "users", "audit", "bench"):
        assert command in r.output


def test_search_mark_numbers_runs_and_says_how_many(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("HOTLINE_DATABASE_URL", raising=False)
    result = CliRunner().invoke(app, ["search", "mark-numbers"])
    assert result.exit_code == 0, result.output
    assert "重新标记 0 个工单" in result.output
