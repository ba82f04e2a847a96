"""People correct transcript segments: versioned and audited, searchable and re-extracted at once, fields
people set left alone, corrected terms learned; word timings aligned on the audio (slow: the real model)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.audit.models import AuditEvent
from app.cases.models import Case
from app.config import Settings
from app.db import Database
from app.recordings.models import Recording
from app.taxonomy.models import LexiconTerm
from app.transcripts import corrections
from app.transcripts import service as transcripts
from app.transcripts.models import Segment, Transcript
from asr import types as asr
from tests.conftest import CALL, DATA
from tests.helpers import file_transcript, read_case

CALL_TURNS = [
    ("agent", "您好，一二三五一热线，请问有什么可以帮您？"),
    ("caller", "我在黄岛的青岛连川电子有限公司上班，老板拖欠我们三个月工资了。"),
    ("caller", "我们车间一共五个人。"),
]
WRONG, RIGHT = CALL_TURNS[1][1], CALL_TURNS[1][1].replace("连川", "联创")




def _transcript_id(database: Database, case_id: int) -> int:
    transcript_id = read_case(database, case_id).transcript_id
    assert transcript_id is not None
    return transcript_id


def _patch(client: TestClient, headers: dict[str, str], transcript_id: int, idx: int, text: Any,
           version: int) -> Any:
    return client.patch(f"/api/v1/transcripts/{transcript_id}/segments/{idx}", headers=headers,
                        json={"text": text, "version": version})


def _events(database: Database, action: str) -> list[AuditEvent]:
    with database.session() as db:
        rows = list(db.execute(sa.select(AuditEvent).where(AuditEvent.action == action)
                               .order_by(AuditEvent.seq)).scalars())
        db.expunge_all()
        return rows


def test_a_correction_is_kept_versioned_audited_and_searchable(
    client: TestClient, database: Database, mediator: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    case_id = file_transcript(database, CALL_TURNS, timed=True)
    tid = _transcript_id(database, case_id)
    assert read_case(database, case_id).extracted["enterprise"]["value"] == "青岛连川电子有限公司"
    caplog.set_level(logging.INFO, logger="app.transcripts.flows")

    r = _patch(client, mediator, tid, 1, f"  {RIGHT} ", 0)
    assert r.status_code == 200, r.text
    body = r.json()
    seg = body["segment"]
    assert seg["text"] == RIGHT and seg["machine_text"] == WRONG and seg["version"] == 1
    assert seg["edited_by"] == "li" and seg["edited_at"]
    assert "".join(w[2] for w in seg["words"]) == RIGHT  # words re-cut to the new text, inside the segment
    assert all(5.0 <= w[0] <= w[1] <= 9.0 for w in seg["words"])
    assert body["aligned"] is False  # no recording file here: timings carried over from the old words
    print(f"correction searchable and re-extracted in {body['applied_ms']:.0f} ms")  # noqa: T201

    [event] = _events(database, "transcript.corrected")
    assert event.actor == "user:li" and event.subject_id == str(tid)
    assert event.details == {"segment": 1, "segment_id": seg["id"], "before": WRONG, "after": RIGHT, "version": 1}
    assert any("searchable and re-extracted in" in m for m in caplog.messages)

    hits = client.get("/api/v1/search", params={"q": "联创"}, headers=mediator).json()["items"]
    assert [h["case_id"] for h in hits] == [case_id]
    stale = client.get("/api/v1/search", params={"q": "连川"}, headers=mediator).json()["items"]
    assert all(h["segment_id"] is None for h in stale)  # no longer said in the transcript (the summary may keep it)

    # a second edit on the new version keeps the machine's first text
    r = _patch(client, mediator, tid, 1, RIGHT.replace("五", "六"), 1)
    assert r.status_code == 200 and r.json()["segment"]["machine_text"] == WRONG
    assert r.json()["segment"]["version"] == 2

    case = client.get(f"/api/v1/cases/{case_id}", headers=mediator).json()
    assert case["transcript"]["segments"][1]["version"] == 2


def test_a_stale_version_gets_409_with_the_current_text_and_overwrites_nothing(
    client: TestClient, database: Database, mediator: dict[str, str], agent: dict[str, str]
) -> None:
    case_id = file_transcript(database, CALL_TURNS, timed=True)
    tid = _transcript_id(database, case_id)
    assert _patch(client, agent, tid, 1, RIGHT, 0).status_code == 200  # zhang saves first

    r = _patch(client, mediator, tid, 1, WRONG.replace("连川", "莲川"), 0)  # li worked on version 0
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["code"] == "version_conflict" and "zhang" in body["detail"]
    assert body["current"]["text"] == RIGHT and body["current"]["version"] == 1
    assert body["current"]["edited_by"] == "zhang"
    with database.session() as db:
        seg = transcripts.segment(db=db, transcript_id=tid, idx=1)
        assert seg is not None and seg.text == RIGHT and seg.version == 1
    assert len(_events(database, "transcript.corrected")) == 1


@pytest.mark.parametrize(("text", "why"), [("", "不能为空"), ("   ", "不能为空"), (123, "须为文字"),
                                           (["联创"], "须为文字"), ("联" * 2001, "不能超过2000个字"),
                                           ("一行\n两行", "换行"), ("，。", "须包含文字")])
def test_text_that_cannot_be_taken_is_422_in_chinese(
    client: TestClient, database: Database, agent: dict[str, str], text: Any, why: str
) -> None:
    case_id = file_transcript(database, CALL_TURNS)
    tid = _transcript_id(database, case_id)
    r = _patch(client, agent, tid, 1, text, 0)
    assert r.status_code == 422, r.text
    assert why in r.json()["detail"]
    assert _events(database, "transcript.corrected") == []


def test_missing_segment_is_404_and_a_manager_cannot_save_over_numbers_hidden_from_them(
    client: TestClient, database: Database, agent: dict[str, str]
) -> None:
    from app.users.models import Role
    from tests.conftest import add_user, login

    case_id = file_transcript(database, [("caller", "我的电话是13812345678，公司欠我工资。")])
    tid = _transcript_id(database, case_id)
    assert _patch(client, agent, tid, 5, "好", 0).status_code == 404
    assert _patch(client, agent, tid + 100, 0, "好", 0).status_code == 404
    add_user(database, "wang", Role.manager)
    manager = login(client, "wang")
    r = _patch(client, manager, tid, 0, "我的电话是138****5678，公司欠我工资。", 0)
    assert r.status_code == 403 and r.json()["code"] == "masked_segment"


def test_re_extraction_changes_unlocked_fields_and_leaves_the_ones_people_set(
    client: TestClient, database: Database, agent: dict[str, str]
) -> None:
    turns = [*CALL_TURNS[:2], ("caller", "我们一共五个人。")]
    case_id = file_transcript(database, turns, timed=True)
    tid = _transcript_id(database, case_id)
    before = read_case(database, case_id)
    assert (before.extracted["enterprise"]["value"], before.district, before.workers) == ("青岛连川电子有限公司",
                                                                                          "黄岛区", 5)
    r = client.patch(f"/api/v1/cases/{case_id}", headers=agent, json={"workers": 6})  # a person sets workers
    assert r.status_code == 200 and r.json()["locked_fields"] == ["workers"]

    assert _patch(client, agent, tid, 1, RIGHT.replace("黄岛", "城阳"), 0).status_code == 200
    r = _patch(client, agent, tid, 2, "我们一共十二个人。", 0)
    assert r.status_code == 200
    assert r.json()["changed_fields"] == []  # workers is locked: the new headcount is not applied

    after = read_case(database, case_id)
    assert after.district == "城阳区" and after.workers == 6 and after.group_case is False
    # no registry to check the name against: as heard when filed; re-extracted from the corrected segment
    assert before.enterprise == "青岛连川电子有限公司" and after.enterprise == "青岛联创电子有限公司"
    assert after.extracted["enterprise"]["value"] == "青岛联创电子有限公司"
    assert after.extracted["enterprise"].get("status", "") == ""
    assert after.extracted["district"]["text"] == RIGHT.replace("黄岛", "城阳")
    changes = {e.details["field"]: e.details for e in _events(database, "case.updated") if e.details.get("reason")}
    assert changes["district"] == {"field": "district", "before": "黄岛区", "after": "城阳区",
                                   "reason": "transcript.corrected"}
    assert "workers" not in changes
    hits = client.get("/api/v1/search", params={"q": "联创", "district": "城阳区"}, headers=agent).json()["items"]
    assert [h["case_id"] for h in hits] == [case_id]


def test_confirming_locks_every_editable_field(client: TestClient, database: Database, agent: dict[str, str]) -> None:
    case_id = file_transcript(database, CALL_TURNS)
    r = client.patch(f"/api/v1/cases/{case_id}", headers=agent, json={"confirm": True})
    assert r.status_code == 200
    assert {"enterprise", "district", "category", "workers"} <= set(r.json()["locked_fields"])
    tid = _transcript_id(database, case_id)
    r = _patch(client, agent, tid, 1, RIGHT.replace("黄岛", "城阳"), 0)
    assert r.status_code == 200 and r.json()["changed_fields"] == []
    case = read_case(database, case_id)
    assert case.district == "黄岛区"


def test_corrected_terms_join_the_lexicon(client: TestClient, database: Database, agent: dict[str, str]) -> None:
    case_id = file_transcript(database, CALL_TURNS)
    tid = _transcript_id(database, case_id)
    r = _patch(client, agent, tid, 1, RIGHT, 0)
    assert r.json()["learned_terms"] == ["联创"]
    with database.session() as db:
        row = db.execute(sa.select(LexiconTerm).where(LexiconTerm.term == "联创")).scalar_one()
        assert row.added_by == "correction:user:zhang" and row.kind == "other"
    [added] = _events(database, "lexicon.added")
    assert added.actor == "correction:user:zhang" and added.details["term"] == "联创"
    # the same correction again teaches nothing new; a different name said is not a mishearing
    assert _patch(client, agent, tid, 1, RIGHT.replace("老板", "经理"), 1).json()["learned_terms"] == []


def test_learned_terms_are_misheard_terms_only() -> None:
    assert corrections.learned_terms(WRONG, RIGHT) == ["联创"]
    assert corrections.learned_terms("要去劳动重才委员会", "要去劳动仲裁委员会") == ["仲裁"]
    assert corrections.learned_terms("我叫张三", "我叫李四") == []  # not a mishearing: a different name
    assert corrections.learned_terms("在海风水产", "在海丰水产") == []  # one character: too little to learn
    assert corrections.learned_terms("工资三千", "工资3000") == []  # not Chinese characters


def test_words_of_old_rows_and_rows_with_probabilities_are_both_read() -> None:
    assert transcripts.timed([[0.0, 0.5, "我们"], [0.5, 1.0, "公司", 0.42]]) == [
        asr.Word(0.0, 0.5, "我们"), asr.Word(0.5, 1.0, "公司", 0.42)]
    assert transcripts.word_rows([asr.Word(0.5, 1.0, "公司", 0.42)]) == [[0.5, 1.0, "公司", 0.42]]
    assert transcripts.word_rows([asr.Word(0.5, 1.0, "公司", 0.42)], probabilities=False) == [[0.5, 1.0, "公司"]]
    words = transcripts.even_words("我们公司，欠薪。", 2.0, 4.0)
    assert "".join(w.text for w in words) == "我们公司，欠薪。"
    assert words[0].start == 2.0 and words[-1].end == 4.0


# --- word timings aligned on the recording (the real Whisper model) ------------------------------------


def _file_d03(settings: Settings, database: Database) -> tuple[int, int]:
    """The D03 call on file (its real audio) with the truth's turns as its transcript, the second one
    (the caller) as the machine heard it wrong; returns (case id, transcript id)."""
    from app.cases import service as cases
    from app.recordings import service as recordings
    from app.recordings.models import CaseChannel
    from app.search import service as search

    truth = json.loads((DATA / "call_d03.json").read_text())
    with CALL.open("rb") as f, recordings.staged(settings, f) as staged:
        rec_id = recordings.ingest(database=database, settings=settings, staged_file=staged,
                                   original_name=CALL.name, layout="caller-left", channel=CaseChannel.call,
                                   actor="test").recording.id
    segments = [asr.Segment(t["start"], t["end"], t["role"], t["text"].replace("联创", "连川"))
                for t in truth["turns"]]
    result = asr.Transcript(duration=truth["duration"], language="zh", engine="hand-written", model="-",
                            processing_s=0.0, segments=segments)
    with database.session() as db:
        rec = db.get(Recording, rec_id)
        assert rec is not None
        transcript = transcripts.store(db=db, recording_id=rec_id, result=result)
        case = cases.file_case(db=db, recording=rec, transcript=transcript, actor="test", settings=settings)
        search.index_case(db=db, case=case, segments=transcript.segments)
        return case.id, transcript.id


@pytest.mark.slow
def test_corrected_words_are_aligned_on_the_speakers_audio(
    client: TestClient, settings: Settings, database: Database, mediator: dict[str, str]
) -> None:
    case_id, tid = _file_d03(settings, database)
    truth = json.loads((DATA / "call_d03.json").read_text())
    right = truth["turns"][1]["text"]
    r = _patch(client, mediator, tid, 1, right, 0)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["aligned"] is True
    words = body["segment"]["words"]
    start, end = truth["turns"][1]["start"], truth["turns"][1]["end"]
    assert "".join(w[2] for w in words) == right
    assert all(start <= w[0] <= w[1] <= end for w in words)
    assert [w[0] for w in words] == sorted(w[0] for w in words)
    # aligned, not spread evenly: the words follow the speech (联创, the 9th syllable, is said about a second in)
    even = transcripts.even_words(right, start, end)
    assert [(w.start, w.end) for w in even] != [(w[0], w[1]) for w in words]
    said = next(w for w in words if "联创" in w[2])
    assert start + 0.5 < said[0] < start + 2.0, words
    print(f"aligned correction: searchable and re-extracted in {body['applied_ms']:.0f} ms")  # noqa: T201
    case = client.get(f"/api/v1/cases/{case_id}", headers=mediator).json()
    assert case["enterprise"] == "青岛联创人力资源有限公司"


def test_transcript_model_has_the_edit_columns(database: Database) -> None:
    with database.session() as db:
        cols = {c["name"] for c in sa.inspect(db.get_bind()).get_columns("segments")}
        assert {"machine_text", "edited_by", "edited_at", "version"} <= cols
        assert "locked_fields" in {c["name"] for c in sa.inspect(db.get_bind()).get_columns("cases")}
        assert db.execute(sa.select(sa.func.count()).select_from(Transcript)).scalar_one() == 0
        assert db.execute(sa.select(sa.func.count()).select_from(Segment)).scalar_one() == 0


def test_bench_from_corrections_scores_the_machine_against_people(
    client: TestClient, database: Database, agent: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from app.bench import asr as bench

    case_id = file_transcript(database, CALL_TURNS)
    file_transcript(database, CALL_TURNS[:1], "other")  # nothing corrected in this one
    tid = _transcript_id(database, case_id)
    assert _patch(client, agent, tid, 1, RIGHT, 0).status_code == 200
    assert _patch(client, agent, tid, 0, "您好，一二三五一热线，请问有什么能帮您？", 0).status_code == 200
    report = bench.from_corrections(database, as_json=True, latency_rounds=2)
    assert report["segments"] == 4 and report["corrected_segments"] == 2 and report["corrected_cases"] == 1
    assert report["by_role"]["caller"]["errors"] == 2 and report["by_role"]["agent"]["errors"] == 2  # 可以→能
    assert report["errors"] == 4 and 0 < report["cer"] < 0.1
    assert report["correction_latency_ms"]["rounds"] == 2
    print(f"correction latency: {report['correction_latency_ms']}")  # noqa: T201
    assert '"corrected_segments": 2' in capsys.readouterr().out


def test_a_corrected_enterprise_name_becomes_an_alias_of_the_linked_enterprise(
    client: TestClient, database: Database, agent: dict[str, str]
) -> None:
    from app.enterprises import service as enterprises
    from app.enterprises.models import Enterprise, EnterpriseAlias

    case_id = file_transcript(database, CALL_TURNS)
    tid = _transcript_id(database, case_id)
    with database.session() as db:
        registered = Enterprise(name="青岛联创电子科技有限公司", district="黄岛区")
        db.add(registered)
        db.flush()
        case = db.get(Case, case_id)
        assert case is not None
        enterprises.link_case(db=db, case=case, enterprise_id=registered.id, actor="user:zhang")
    r = _patch(client, agent, tid, 1, RIGHT, 0)
    assert r.status_code == 200 and r.json()["learned_terms"] == ["联创"]
    with database.session() as db:
        aliases = {a.alias: a.source for a in db.execute(sa.select(EnterpriseAlias)).scalars()}
    assert aliases["青岛联创电子有限公司"] == "correction"
    assert read_case(database, case_id).enterprise == "青岛联创电子科技有限公司"  # linked: the registry's name stays
    [event] = _events(database, "enterprise.alias_added")
    assert event.details == {"alias": "青岛联创电子有限公司", "source": "correction", "case_id": case_id}


def test_migration_locks_the_fields_people_already_set(database: Database) -> None:
    import importlib.util

    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    from app.cases import service as cases
    from app.db import MIGRATIONS_DIR

    changed, confirmed, untouched = (file_transcript(database, CALL_TURNS, n) for n in ("a", "b", "c"))
    with database.session() as db:
        for case_id in (changed, confirmed):
            case = db.get(Case, case_id)
            assert case is not None
            if case_id == changed:
                cases.change(db=db, case=case, actor="user:li", district="城阳区", workers=7)
            else:
                cases.confirm(db=db, case=case, actor="user:li", username="li")
        db.execute(sa.update(Case).values(locked_fields=None))  # as before revision 0010
    spec = importlib.util.spec_from_file_location("m0010", MIGRATIONS_DIR / "versions" / "0010_transcript_edits.py")
    assert spec and spec.loader
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    with database.engine.begin() as conn, Operations.context(MigrationContext.configure(conn)):
        migration._lock_what_people_set()
    assert read_case(database, changed).locked_fields == ["district", "workers"]
    assert set(read_case(database, confirmed).locked_fields or []) == set(migration._EDITABLE)
    assert read_case(database, untouched).locked_fields is None
