"""The spine end to end with the real model: upload → transcript → case → search, audited, once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.audit import service as audit
from app.audit.models import AuditEvent
from app.cases.models import Case
from app.config import Settings
from app.db import Database
from app.enterprises import service as enterprises
from app.jobs import JobQueue
from app.main import create_app
from app.recordings.models import Recording
from app.transcripts import flows
from app.transcripts.models import Transcript
from app.users.models import Role
from tests.conftest import CALL, add_user, login

pytestmark = pytest.mark.slow


@pytest.fixture
def live(settings: Settings, database: Database) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """The app with jobs run as they are queued (Huey immediate mode), and a mediator logged in."""
    queue = JobQueue(settings, immediate=True, database=database)
    with TestClient(create_app(settings, queue=queue, database=database)) as client:
        add_user(database, "wang", Role.mediator)
        yield client, login(client, "wang")


def test_uploaded_call_becomes_a_searchable_audited_case(
    live: tuple[TestClient, dict[str, str]], settings: Settings, database: Database
) -> None:
    client, auth = live
    with database.session() as db:  # the site's enterprise registry: the caller's employer among others
        enterprises.import_file(db=db, actor="test", filename="registry.csv", path_or_bytes=(
            "企业名称,区市\n青岛联创人力资源有限公司,黄岛区\n青岛联川物流有限公司,城阳区\n青岛海丰水产有限公司,崂山区\n"
        ).encode())
    up = client.post("/api/v1/recordings", headers=auth, data={"channel": "来电"},
                     files={"file": ("d03.wav", CALL.read_bytes(), "audio/wav")})
    assert up.status_code == 201, up.text
    rec = client.get(f"/api/v1/recordings/{up.json()['id']}", headers=auth).json()
    assert (rec["status"], rec["attempts"], rec["error"]) == ("done", 1, None)

    hits = client.get("/api/v1/search", headers=auth, params={"q": "联创"}).json()
    assert hits["total"] == 1
    hit = hits["items"][0]
    assert hit["speaker"] == "caller" and 3 <= hit["start"] <= 5 and "联创" in hit["text"]

    case = client.get(f"/api/v1/cases/{hit['case_id']}", headers=auth).json()
    assert case["case_no"].startswith("12351-") and case["status"] == "受理" and case["channel"] == "来电"
    # Whisper base hears 联串/联策; the registry's name, checked against the audio, is the case's and the
    # transcript's (which is why 联创 is found above)
    assert case["district"] == "黄岛区" and case["enterprise"] == "青岛联创人力资源有限公司"
    assert case["category"] in {"劳务派遣", "劳动合同"} and case["category_evidence"]
    segments = case["transcript"]["segments"]
    assert {s["speaker"] for s in segments} == {"caller", "agent"} and len(segments) >= 4
    for s in segments:  # each with its timed words, spelling its text
        assert s["words"] and "".join(w[2] for w in s["words"]) == s["text"]
        assert s["start"] - 0.05 <= s["words"][0][0] and s["words"][-1][1] <= s["end"] + 0.05
    said = next(s for s in segments if s["id"] == hit["segment_id"])
    pos = said["text"].index("联创")  # the hit opens where the word was said, inside its segment
    word = next(w for w, upto in zip(said["words"], _ends(said["words"]), strict=True) if pos < upto)
    assert hit["start"] == word[0] and said["start"] <= hit["start"] < said["end"]

    with database.session() as db:
        actions = list(db.execute(sa.select(AuditEvent.action).order_by(AuditEvent.seq)).scalars())
        assert audit.verify(db=db).ok
    steps = ["recording.received", "transcription.started", "transcript.created", "case.created", "search",
             "case.read"]
    assert [a for a in actions if a in steps] == steps


def _ends(words: list[list]) -> list[int]:
    """Where each word ends in its segment's text (character offsets)."""
    ends, pos = [], 0
    for w in words:
        pos += len(w[2])
        ends.append(pos)
    return ends


def test_running_the_job_again_changes_nothing(
    live: tuple[TestClient, dict[str, str]], settings: Settings, database: Database
) -> None:
    client, auth = live
    rec_id = client.post("/api/v1/recordings", headers=auth,
                         files={"file": ("d03.wav", CALL.read_bytes(), "audio/wav")}).json()["id"]
    again = flows.transcribe_recording(database=database, settings=settings, recording_id=rec_id)
    assert again.case_id is None and again.skipped
    with database.session() as db:
        assert db.execute(sa.select(sa.func.count()).select_from(Transcript)).scalar_one() == 1
        assert db.execute(sa.select(sa.func.count()).select_from(Case)).scalar_one() == 1


def test_a_recording_whose_file_is_gone_fails_clearly_once(
    settings: Settings, database: Database, live: tuple[TestClient, dict[str, str]]
) -> None:
    client, auth = live
    queue = JobQueue(settings, database=database)
    client.app.state.queue = queue  # type: ignore[attr-defined]  # queued, not run at upload
    body = client.post("/api/v1/recordings", headers=auth,
                       files={"file": ("d03.wav", CALL.read_bytes(), "audio/wav")}).json()
    with database.session() as db:
        stored = db.get(Recording, body["id"])
        assert stored is not None and stored.encrypted
        (settings.recordings_dir / stored.path).unlink()
    JobQueue(settings, immediate=True, database=database).enqueue_transcription(body["id"])  # the real task
    rec = client.get(f"/api/v1/recordings/{body['id']}", headers=auth).json()
    assert rec["status"] == "failed" and body["sha256"] in rec["error"]
    assert client.get("/api/v1/cases", headers=auth).json()["total"] == 0
    # Not retried, and not picked up again by a sweep: a failed job waits for a person to look at it.
    assert rec["attempts"] == 1 and queue.sweep() == 0
