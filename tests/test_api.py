"""The HTTP API without the model: authentication, permissions, uploads and their bad inputs, audio."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.audit.models import AuditEvent
from app.config import Settings
from app.db import Database
from app.jobs import JobQueue
from app.recordings import files
from app.recordings.models import Recording
from app.transcripts.models import Segment
from tests.conftest import CALL, PASSWORD
from tests.helpers import file_transcript


def _actions(database: Database) -> list[str]:
    with database.session() as db:
        return list(db.execute(sa.select(AuditEvent.action).order_by(AuditEvent.seq)).scalars())


def _upload(client: TestClient, headers: dict[str, str], content: bytes, name: str = "call.wav", **form: str):
    return client.post("/api/v1/recordings", headers=headers, files={"file": (name, content, "audio/wav")},
                       data=form)


def _nothing_stored(settings: Settings, database: Database) -> None:
    with database.session() as db:
        assert db.execute(sa.select(sa.func.count()).select_from(Recording)).scalar_one() == 0
    assert [p for p in settings.recordings_dir.rglob("*") if p.is_file()] == []
    assert list((settings.data_dir / "tmp").iterdir()) == []


@pytest.mark.parametrize("path", ["/api/v1/cases", "/api/v1/cases/1", "/api/v1/search?q=工资",
                                  "/api/v1/recordings/1/audio", "/api/v1/auth/me"])
def test_unauthenticated_requests_get_401(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 401 and r.json()["code"] == "not_authenticated"
    assert r.headers["www-authenticate"] == "Bearer"


def test_bad_token_gets_401(client: TestClient) -> None:
    r = client.get("/api/v1/cases", headers={"Authorization": "Bearer not.a.token"})
    assert r.status_code == 401 and r.json()["code"] == "invalid_token"


def test_login_and_failed_login_are_audited(client: TestClient, database: Database, agent: dict) -> None:
    r = client.post("/api/v1/auth/token", data={"username": "zhang", "password": "wrong-password"})
    assert r.status_code == 401 and r.json()["detail"] == "用户名或密码错误"
    assert client.get("/api/v1/auth/me", headers=agent).json()["role"] == "agent"
    assert _actions(database)[-2:] == ["auth.login", "auth.login_failed"]


def test_upload_stores_once_and_queues_one_job(
    client: TestClient, settings: Settings, database: Database, queue: JobQueue, agent: dict
) -> None:
    first = _upload(client, agent, CALL.read_bytes(), channel="来电")
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["duplicate"], body["status"], body["channels"], body["layout"], body["channel"]) == \
        (False, "queued", 2, "caller-left", "来电")
    with database.session() as db:
        rec = db.get(Recording, body["id"])
        assert rec is not None and rec.encrypted and rec.storage == "local"
    # encrypted at rest: nothing of the audio in clear in the data dir; read back it is the upload, byte for byte
    stored = settings.recordings_dir / rec.path
    assert stored.name.startswith(f"{body['sha256']}.wav.") and stored.suffix == ".enc"
    assert CALL.read_bytes()[1000:1064] not in stored.read_bytes()
    assert b"".join(files.read(settings, rec)) == CALL.read_bytes()
    again = _upload(client, agent, CALL.read_bytes(), name="same-call-renamed.wav")
    assert again.status_code == 200 and again.json()["duplicate"] is True and again.json()["id"] == body["id"]
    assert queue.huey.pending_count() == 1
    with database.session() as db:
        assert db.execute(sa.select(sa.func.count()).select_from(Recording)).scalar_one() == 1
    assert "recording.received" in _actions(database) and "recording.duplicate" in _actions(database)


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "empty"),
        (b"RIFF not really a wav file at all" * 10, "not_audio"),
        (CALL.read_bytes()[:60_000], "truncated"),
    ],
)
def test_bad_uploads_get_422_and_store_nothing(
    client: TestClient, settings: Settings, database: Database, queue: JobQueue, agent: dict, content: bytes,
    code: str,
) -> None:
    r = _upload(client, agent, content)
    assert r.status_code == 422 and r.json()["code"] == code and r.json()["detail"]
    _nothing_stored(settings, database)
    assert queue.huey.pending_count() == 0


def test_too_large_upload_gets_413(client: TestClient, settings: Settings, database: Database, agent: dict) -> None:
    r = _upload(client, agent, b"\0" * (settings.max_upload_bytes + 10))
    assert r.status_code == 413 and r.json()["code"] == "too_large"
    _nothing_stored(settings, database)


def test_bad_form_values_get_422(client: TestClient, agent: dict) -> None:
    r = _upload(client, agent, CALL.read_bytes(), layout="upside-down")
    assert r.status_code == 422 and r.json()["code"] == "invalid"


def test_audio_supports_range_and_reads_are_audited(client: TestClient, database: Database, mediator: dict) -> None:
    rec_id = _upload(client, mediator, CALL.read_bytes()).json()["id"]
    r = client.get(f"/api/v1/recordings/{rec_id}/audio", headers={**mediator, "Range": "bytes=100-199"})
    assert r.status_code == 206 and r.content == CALL.read_bytes()[100:200]
    assert r.headers["content-range"] == f"bytes 100-199/{CALL.stat().st_size}"
    d = client.get(f"/api/v1/recordings/{rec_id}/download", headers=mediator)
    assert d.status_code == 200 and d.content == CALL.read_bytes()
    assert "attachment" in d.headers["content-disposition"]
    assert _actions(database)[-2:] == ["recording.played", "recording.downloaded"]


def test_denied_requests_are_refused_and_audited(client: TestClient, database: Database, agent: dict) -> None:
    rec_id = _upload(client, agent, CALL.read_bytes()).json()["id"]
    r = client.get(f"/api/v1/recordings/{rec_id}/download", headers=agent)  # agents may play, not download
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    assert client.get("/api/v1/audit/verify", headers=agent).status_code == 403
    assert _actions(database)[-2:] == ["auth.denied", "auth.denied"]


def test_missing_things_get_404(client: TestClient, agent: dict) -> None:
    assert client.get("/api/v1/cases/999", headers=agent).status_code == 404
    assert client.get("/api/v1/recordings/999/audio", headers=agent).json()["code"] == "not_found"


def test_case_list_read_and_timeline(client: TestClient, database: Database, agent: dict) -> None:
    case_id = file_transcript(database, [("caller", "青岛宏远汽车配件有限公司拖欠工资三个月了")])
    listing = client.get("/api/v1/cases", headers=agent).json()
    assert listing["total"] == 1 and listing["items"][0]["case_no"].startswith("12351-")
    case = client.get(f"/api/v1/cases/{case_id}", headers=agent).json()
    assert case["status"] == "受理" and case["category"] == "欠薪"
    assert case["enterprise"] == "青岛宏远汽车配件有限公司"
    assert case["transcript"]["segments"][0]["speaker"] == "caller"
    timeline = client.get(f"/api/v1/cases/{case_id}/timeline", headers=agent).json()
    assert [e["action"] for e in timeline] == ["case.created", "case.read"]
    assert client.get("/api/v1/cases?status=办结", headers=agent).json()["total"] == 0


def test_a_transcript_is_read_with_its_words_and_old_segments_without(
    client: TestClient, database: Database, agent: dict
) -> None:
    said = "我在黄岛一家电子厂上班，工资三个月没发了。"
    case_id = file_transcript(database, [("agent", "您好，12351热线。"), ("caller", said)], timed=True)
    segments = client.get(f"/api/v1/cases/{case_id}", headers=agent).json()["transcript"]["segments"]
    caller = segments[1]
    assert caller["text"] == said and "".join(w[2] for w in caller["words"]) == said
    assert [w[:2] for w in caller["words"]] == sorted(w[:2] for w in caller["words"])
    assert caller["start"] <= caller["words"][0][0] and caller["words"][-1][1] <= caller["end"]
    assert any(w[2].startswith("黄岛") for w in caller["words"])
    with database.session() as db:  # a segment stored before word timings (migration 0008): NULL
        db.execute(sa.update(Segment).values(words=None))
    segments = client.get(f"/api/v1/cases/{case_id}", headers=agent).json()["transcript"]["segments"]
    assert [s["words"] for s in segments] == [[], []]


def test_case_numbers_count_up_per_year(database: Database) -> None:
    a = file_transcript(database, [("caller", "一")], "a")
    b = file_transcript(database, [("caller", "二")], "b")
    from app.cases.models import Case

    with database.session() as db:
        numbers = [db.get(Case, i).case_no for i in (a, b)]  # type: ignore[union-attr]
    assert numbers[0][-6:] == "000001" and numbers[1][-6:] == "000002"


def test_errors_never_leak_internals(client: TestClient, agent: dict, tmp_path: Path) -> None:
    r = _upload(client, agent, b"\x00\x01garbage" * 100)
    assert str(tmp_path) not in r.text and "Traceback" not in r.text


def test_password_is_never_stored_plain(database: Database, agent: dict) -> None:
    from app.users.models import User

    with database.session() as db:
        stored = db.execute(sa.select(User.password_hash)).scalar_one()
    assert PASSWORD not in stored and stored.startswith("$argon2id$")


def test_docs_and_web_page_need_no_internet(settings: Settings, database: Database, queue: JobQueue) -> None:
    import re

    from app.main import create_app

    client = TestClient(create_app(settings.model_copy(update={"api_docs": True}), queue=queue, database=database))
    html = client.get("/docs").text
    assert "<script>" not in html  # Swagger UI starts from a file: the Content-Security-Policy has no inline script
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(a.startswith("/") for a in assets)
    assert all(client.get(a).status_code == 200 for a in assets)
    page = client.get("/")
    assert page.status_code == 200 and "12351" in page.text and "//" not in re.sub(r"<!--.*?-->", "", page.text)
    assert client.get("/openapi.json").json()["info"]["title"] == "12351 Hotline"
