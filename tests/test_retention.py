"""Retention: recordings of closed cases past their channel's period are deleted by the sweep (audited, a
tombstone left, the audio endpoint answers 410), never those of cases on legal hold or not closed; WORM-locked
objects are skipped and reported; the transcript stays or goes by HOTLINE_RETENTION_KEEP_TRANSCRIPT."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pydantic
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.audit import service as audit
from app.audit.models import AuditEvent
from app.calls.models import Call
from app.cases import service as cases
from app.cases.models import Case, CaseStatus
from app.cli import app as cli
from app.config import Settings
from app.db import Database
from app.jobs import JobQueue
from app.main import create_app
from app.recordings import files, moves, retention
from app.recordings.models import Recording
from app.recordings.storage import ensure_bucket
from app.search import service as search
from app.search.models import SearchEntry
from app.transcripts import service as transcripts
from app.transcripts.models import Segment, Transcript
from app.users.models import Role
from asr import types as asr
from tests.conftest import CALL, add_user, login
from tests.processes import env_for

SAID = [("caller", "公司拖欠工资三个月，一共八千六百元"), ("agent", "好的，我们帮您转给劳动监察")]
PERIOD = {"上传": 30, "来电": 365}


def _file(client: TestClient, database: Database, auth: dict[str, str], n: int, *, channel: str = "上传") -> int:
    """A real upload (encrypted at rest) with its transcript and case; returns the case id."""
    r = client.post("/api/v1/recordings", headers=auth, data={"channel": channel},
                    files={"file": (f"c{n}.wav", CALL.read_bytes() + bytes([n + 1]) * 3, "audio/wav")})
    assert r.status_code == 201, r.text
    segments = [asr.Segment(5.0 * i, 5.0 * i + 4, who, text) for i, (who, text) in enumerate(SAID)]
    result = asr.Transcript(duration=10.0, language="zh", engine="hand-written", model="-", processing_s=0.0,
                            segments=segments)
    with database.session() as db:
        rec = db.get(Recording, r.json()["id"])
        assert rec is not None
        rec.status = "done"
        transcript = transcripts.store(db=db, recording_id=rec.id, result=result)
        case = cases.file_case(db=db, recording=rec, transcript=transcript, actor="test")
        search.index_case(db=db, case=case, segments=transcript.segments)
        return case.id


def _age(database: Database, case_id: int, *, filed_days: int, status: str = CaseStatus.closed.value,
         closed_days: int | None = None, hold: bool = False) -> int:
    """Move a case and its recording back in time; returns the recording id."""
    now = datetime.now(UTC)
    with database.session() as db:
        case = db.get(Case, case_id)
        assert case is not None
        rec = db.get(Recording, case.recording_id)
        assert rec is not None
        rec.created_at = case.created_at = now - timedelta(days=filed_days)
        case.status = status
        if status == CaseStatus.closed.value:
            case.closed_at = now - timedelta(days=filed_days if closed_days is None else closed_days)
        case.legal_hold = hold
        return rec.id


def _row(database: Database, recording_id: int) -> Recording:
    with database.session() as db:
        rec = db.get(Recording, recording_id)
        assert rec is not None
        return rec


def _events(database: Database, action: str) -> list[AuditEvent]:
    with database.session() as db:
        return list(db.execute(sa.select(AuditEvent).where(AuditEvent.action == action)
                               .order_by(AuditEvent.seq)).scalars())


@pytest.fixture
def kept(settings: Settings) -> Settings:
    return settings.model_copy(update={"retention_days": PERIOD})


@pytest.fixture
def agent_auth(client: TestClient, database: Database) -> dict[str, str]:
    add_user(database, "zhang", Role.agent)
    return login(client, "zhang")


def test_the_sweep_deletes_only_old_closed_unheld_recordings_and_leaves_a_tombstone(
    client: TestClient, database: Database, kept: Settings, agent_auth: dict[str, str]
) -> None:
    ids = [_file(client, database, agent_auth, n) for n in range(6)]
    old = _age(database, ids[0], filed_days=400)  # closed long ago: goes
    held = _age(database, ids[1], filed_days=400, hold=True)  # in dispute: stays
    open_ = _age(database, ids[2], filed_days=400, status=CaseStatus.follow_up.value)  # 回访 is not closed: stays
    late = _age(database, ids[3], filed_days=400, closed_days=10)  # closed 10 days ago: a full period after that
    young = _age(database, ids[4], filed_days=10)  # closed, but filed 10 days ago
    mid = _age(database, ids[5], filed_days=100)  # 上传 keeps 30 days: 100 days after closing, it goes
    stored = {i: files.store(kept, "local").path(_row(database, i).path) for i in (old, held, mid)}

    dry = retention.sweep(database=database, settings=kept, dry_run=True)
    assert sorted(d.recording_id for d in dry.deleted) == sorted([old, mid])
    assert (dry.held, dry.open, dry.no_case) == (1, 2, 0)
    assert all(p.is_file() for p in stored.values()) and _events(database, retention.ACTION) == []
    assert _row(database, old).deleted_at is None

    done = retention.sweep(database=database, settings=kept, actor="test")
    assert sorted(d.recording_id for d in done.deleted) == sorted([old, mid]) and done.skipped == {}
    assert not stored[old].exists() and not stored[mid].exists() and stored[held].is_file()
    tomb = _row(database, old)
    assert tomb.deleted_at is not None and tomb.wrapped_key is None and tomb.key_id is None
    assert len(tomb.sha256) == 64 and tomb.size_bytes == CALL.stat().st_size + 3
    for keep in (held, open_, late, young):
        assert _row(database, keep).deleted_at is None
        files.verify(kept, _row(database, keep))
    events = {e.subject_id: e for e in _events(database, retention.ACTION)}
    assert set(events) == {str(old), str(mid)}
    details = events[str(old)].details
    with database.session() as db:
        case = db.get(Case, ids[0])
        assert case is not None
        assert (details["sha256"], details["size"], details["channel"], details["case_no"]) == \
            (tomb.sha256, tomb.size_bytes, "上传", case.case_no)
        assert details["transcript"] == "kept" and details["retention_days"] == 30
        assert case.status == "办结"  # the case stays, with its transcript
        transcript = db.execute(sa.select(Transcript).where(Transcript.recording_id == old)).scalar_one()
        assert [s.text for s in transcript.segments] == [text for _, text in SAID]
        assert audit.verify(db=db).ok
    swept = _events(database, "retention.swept")
    assert len(swept) == 1 and swept[0].details["deleted"] == 2 and swept[0].details["held"] == 1
    # a second sweep finds nothing more; `storage verify` skips the tombstones
    assert retention.sweep(database=database, settings=kept).deleted == []
    assert moves.verify_all(database=database, settings=kept, actor="test").total == 4


def test_the_audio_of_a_deleted_recording_answers_410(
    client: TestClient, database: Database, kept: Settings, agent_auth: dict[str, str]
) -> None:
    gone = _age(database, _file(client, database, agent_auth, 0), filed_days=400)
    there = _age(database, _file(client, database, agent_auth, 1), filed_days=400, hold=True)
    retention.sweep(database=database, settings=kept)
    day = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d")
    r = client.get(f"/api/v1/recordings/{gone}/audio", headers=agent_auth)
    assert r.status_code == 410 and r.json()["code"] == "deleted_by_retention"
    assert r.json()["detail"] == f"录音已按保存期限删除（{day}）"
    kept_audio = client.get(f"/api/v1/recordings/{there}/audio", headers={**agent_auth, "Range": "bytes=0-"})
    assert kept_audio.status_code == 206
    meta = client.get(f"/api/v1/recordings/{gone}", headers=agent_auth).json()
    assert meta["deleted_at"] is not None and meta["sha256"] == _row(database, gone).sha256


def test_the_transcript_text_goes_too_when_not_kept(
    client: TestClient, database: Database, kept: Settings, agent_auth: dict[str, str]
) -> None:
    case_id = _file(client, database, agent_auth, 0)
    rec_id = _age(database, case_id, filed_days=400)
    with database.session() as db:  # the call it came from, with its live transcript
        db.add(Call(call_uuid=uuid.uuid4().hex, source="sip", external_id="x@pbx", caller="13812345678",
                    called="12351", channel="来电", status="ended", started_at=datetime.now(UTC), recording_id=rec_id,
                    live_segments=[{"start": 0.0, "end": 4.0, "speaker": "caller", "text": SAID[0][1]}]))
    settings = kept.model_copy(update={"retention_keep_transcript": False})
    done = retention.sweep(database=database, settings=settings)
    assert [d.recording_id for d in done.deleted] == [rec_id] and done.transcripts_emptied == 1
    with database.session() as db:
        segments = list(db.execute(sa.select(Segment).join(Transcript).where(Transcript.recording_id == rec_id))
                        .scalars())
        assert len(segments) == len(SAID)
        assert {(s.text, s.words, s.machine_text) for s in segments} == {("", None, None)}
        said = db.execute(sa.select(sa.func.count()).select_from(SearchEntry).where(
            SearchEntry.case_id == case_id, SearchEntry.segment_id.is_not(None))).scalar_one()
        assert said == 0  # nothing said is searchable any more; the case's own fields still are
        case = db.get(Case, case_id)
        assert case is not None and case.status == "办结" and case.summary is not None
        assert search.search(db=db, q=case.case_no).total == 1
        assert db.execute(sa.select(Call.live_segments).where(Call.recording_id == rec_id)).scalar_one() is None
    assert _events(database, retention.ACTION)[0].details["transcript"] == "removed"
    r = client.get(f"/api/v1/cases/{case_id}", headers=agent_auth)
    assert r.status_code == 200 and [s["text"] for s in r.json()["transcript"]["segments"]] == ["", ""]


def test_legal_hold_is_set_and_lifted_by_managers_and_audited(
    client: TestClient, database: Database, kept: Settings, agent_auth: dict[str, str]
) -> None:
    case_id = _file(client, database, agent_auth, 0)
    rec_id = _age(database, case_id, filed_days=400)
    add_user(database, "wang", Role.manager)
    manager = login(client, "wang")
    url = f"/api/v1/cases/{case_id}/legal-hold"
    assert client.put(url, json={"hold": True, "reason": "仲裁中"}, headers=agent_auth).status_code == 403
    r = client.put(url, json={"hold": True}, headers=manager)
    assert r.status_code == 422 and "原因" in r.json()["detail"]
    r = client.put(url, json={"hold": True, "reason": "劳动争议仲裁中（青劳人仲案字〔2026〕第12号）"}, headers=manager)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["legal_hold"] is True and body["legal_hold_by"] == "wang" and body["legal_hold_at"]
    assert body["legal_hold_reason"].startswith("劳动争议仲裁中")
    assert retention.sweep(database=database, settings=kept).deleted == []  # held: kept though old and closed
    r = client.put(url, json={"hold": False, "reason": "仲裁已结案"}, headers=manager)
    assert r.status_code == 200 and r.json()["legal_hold"] is False
    changes = [(e.details["field"], e.details["after"]) for e in _events(database, "case.updated")
               if e.details["field"].startswith("legal_hold")]
    assert changes == [("legal_hold", True), ("legal_hold_reason", "劳动争议仲裁中（青劳人仲案字〔2026〕第12号）"),
                       ("legal_hold", False), ("legal_hold_reason", "仲裁已结案")]
    assert all(e.actor == "user:wang" for e in _events(database, "case.updated"))
    assert [d.recording_id for d in retention.sweep(database=database, settings=kept).deleted] == [rec_id]


def test_a_hold_set_after_the_list_was_made_wins(
    client: TestClient, database: Database, kept: Settings, agent_auth: dict[str, str], monkeypatch: Any
) -> None:
    case_id = _file(client, database, agent_auth, 0)
    rec_id = _age(database, case_id, filed_days=400)
    listed = retention.due

    def then_held(**kwargs: Any) -> retention.Swept:
        found = listed(**kwargs)
        with database.session() as db:  # a manager puts it on hold while the sweep is under way
            case = db.get(Case, case_id)
            assert case is not None
            cases.set_legal_hold(db=db, case=case, actor="user:wang", username="wang", hold=True, reason="诉讼中")
        return found

    monkeypatch.setattr(retention, "due", then_held)
    assert retention.sweep(database=database, settings=kept).deleted == []
    assert _row(database, rec_id).deleted_at is None
    files.verify(kept, _row(database, rec_id))


@pytest.fixture
def sqlite_only(db_url: str) -> None:
    """First among a test's fixtures: skipped before anything is set up."""
    if not db_url.startswith("sqlite"):
        pytest.skip("the store's refusal does not depend on the database")


def test_worm_locked_recordings_are_skipped_and_reported(
    sqlite_only: None, settings: Settings, database: Database, seaweed: Any
) -> None:
    bucket = f"worm-{uuid.uuid4().hex[:8]}"
    s3 = seaweed.settings_for(settings, bucket, s3_object_lock_days=1, retention_days=PERIOD)
    ensure_bucket(files.store(s3, s3.storage_url), object_lock=True)
    add_user(database, "zhang", Role.agent)
    with TestClient(create_app(s3, database=database, queue=JobQueue(s3, database=database))) as client:
        rec_id = _age(database, _file(client, database, login(client, "zhang"), 0), filed_days=400)
    done = retention.sweep(database=database, settings=s3)
    assert done.deleted == [] and list(done.skipped) == [rec_id] and "合规保留" in done.skipped[rec_id]
    assert _row(database, rec_id).deleted_at is None and _events(database, retention.ACTION) == []
    files.verify(s3, _row(database, rec_id))  # still there, still readable
    assert _events(database, "retention.swept")[0].details["skipped"][str(rec_id)]
    env = {**env_for(settings), **seaweed.env_for(bucket), "HOTLINE_RETENTION_DAYS": '{"上传": 30}'}
    r = CliRunner().invoke(cli, ["retention", "sweep"], env=env)
    assert r.exit_code == 1 and f"跳过 录音 #{rec_id}" in r.output and "合规保留" in r.output


def test_the_command_and_the_daily_task(
    client: TestClient, database: Database, settings: Settings, agent_auth: dict[str, str]
) -> None:
    rec_id = _age(database, _file(client, database, agent_auth, 0), filed_days=400)
    r = CliRunner().invoke(cli, ["retention", "sweep", "--dry-run"], env=env_for(settings))
    assert r.exit_code == 0 and "未设置保存期限" in r.output
    env = {**env_for(settings), "HOTLINE_RETENTION_DAYS": '{"上传": 30}'}
    r = CliRunner().invoke(cli, ["retention", "sweep", "--dry-run"], env=env)
    assert r.exit_code == 0, r.output
    assert f"将删除 录音 #{rec_id}（上传" in r.output and "试运行：将删除 1 份" in r.output
    assert _row(database, rec_id).deleted_at is None
    queue = JobQueue(settings.model_copy(update={"retention_days": PERIOD}), database=database)
    task = next(t for t in queue.huey._registry._periodic_tasks if t.__name__ == "retention_sweep")
    assert task().validate_datetime(datetime(2026, 3, 2, 18, 30))  # 02:30 Beijing
    assert not task().validate_datetime(datetime(2026, 3, 2, 18, 31))
    assert task().execute() == 1
    assert _row(database, rec_id).deleted_at is not None
    assert _events(database, retention.ACTION)[0].actor == "system:retention"


@pytest.mark.parametrize("value", ['{"电话": 30}', '{"来电": 0}'])
def test_bad_retention_settings_are_refused(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_RETENTION_DAYS", value)
    with pytest.raises(pydantic.ValidationError, match="HOTLINE_RETENTION_DAYS"):
        Settings()


def test_the_same_audio_uploaded_again_after_deletion_is_refused(
    client: TestClient, database: Database, kept: Settings, agent_auth: dict[str, str]
) -> None:
    gone = _age(database, _file(client, database, agent_auth, 0), filed_days=400)
    retention.sweep(database=database, settings=kept)
    data = CALL.read_bytes() + bytes([1]) * 3  # what _file(…, 0) uploaded
    r = client.post("/api/v1/recordings", headers=agent_auth, files={"file": ("again.wav", data, "audio/wav")})
    assert r.status_code == 409 and r.json()["code"] == "deleted_by_retention", r.text
    assert f"录音 #{gone}" in r.json()["detail"]
