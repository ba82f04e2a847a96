"""`hotline cases refresh`: existing cases processed again with the lexicon and enterprises on file now;
fields people set stay, every change is audited as `refresh`; --retranscribe keeps segments people edited."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from app.audit.models import AuditEvent
from app.cases import service as cases
from app.cases.models import Case
from app.cli import app
from app.config import Settings
from app.db import Database, utcnow
from app.taxonomy import service as taxonomy
from app.taxonomy.models import TermKind
from app.transcripts import flows
from app.transcripts import service as transcripts
from tests.helpers import file_transcript, read_case
from tests.processes import env_for

WRONG = [
    ("agent", "您好，一二三五一热线，请问有什么可以帮您？"),
    ("caller", "我在黄岛的青岛连川电子有限公司上班，老板拖欠我们三个月工资了。"),
]


@pytest.fixture
def run(settings: Settings, database: Database) -> Callable[..., Result]:
    runner = CliRunner()
    env = env_for(settings)

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args), env=env)

    return invoke




def _events(database: Database, action: str) -> list[AuditEvent]:
    with database.session() as db:
        rows = list(db.execute(sa.select(AuditEvent).where(AuditEvent.action == action)).scalars())
        db.expunge_all()
        return rows


def _summary(result: Result) -> dict[str, Any]:
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_refresh_applies_the_lexicon_to_unlocked_fields_only(
    run: Callable[..., Result], database: Database
) -> None:
    free = file_transcript(database, WRONG, "a", timed=True)
    locked = file_transcript(database, WRONG, "b", timed=True)
    edited = file_transcript(database, WRONG, "c", timed=True)
    edited_tid = read_case(database, edited).transcript_id or 0
    with database.session() as db:
        for case_id in (free, locked, edited):  # filed before extraction knew 黄岛 (an older release)
            case = db.get(Case, case_id)
            assert case is not None and case.district == "黄岛区"
            case.district, case.extracted = None, {k: v for k, v in case.extracted.items() if k != "district"}
        case = db.get(Case, locked)
        assert case is not None
        cases.change(db=db, case=case, actor="user:li", district="城阳区")  # a person set it: locked
        taxonomy.add_term(db=db, term="青岛联创电子有限公司", kind=TermKind.enterprise, actor="user:admin")
        seg = transcripts.segment(db=db, transcript_id=edited_tid, idx=1)
        assert seg is not None
        transcripts.correct(db=db, seg=seg, text=WRONG[1][1].replace("老板", "经理"), version=0,
                            actor="user:li", username="li")

    result = run("cases", "refresh")
    assert result.exit_code == 0, result.output
    summary = _summary(result)
    assert summary["cases_seen"] == 3 and summary["failed"] == 0
    assert summary["segments_term_corrected"] == 2  # the edited segment is a person's text: left alone
    # the district not in the locked case; the name the lexicon now knows in all three (nobody set it)
    assert summary["by_field"] == {"district": 2, "enterprise": 3}

    assert read_case(database, free).district == "黄岛区" and read_case(database, edited).district == "黄岛区"
    assert read_case(database, locked).district == "城阳区"
    assert read_case(database, free).extracted["enterprise"]["value"] == "青岛联创电子有限公司"  # from the lexicon
    free_tid = read_case(database, free).transcript_id or 0
    with database.session() as db:
        seg = transcripts.segment(db=db, transcript_id=free_tid, idx=1)
        assert seg is not None and "青岛联创电子有限公司" in seg.text and seg.edited_by is None
        assert "".join(w[2] for w in seg.words or []) == seg.text
        mine = transcripts.segment(db=db, transcript_id=edited_tid, idx=1)
        assert mine is not None and "连川" in mine.text and mine.version == 1
    updates = [e for e in _events(database, "case.updated") if e.actor == "refresh"]
    assert sorted((e.subject_id, e.details["field"]) for e in updates) == sorted(
        [(str(free), "district"), (str(edited), "district"),
         *((str(c), "enterprise") for c in (free, locked, edited))])
    assert all(e.details["reason"] == "refresh" and e.details["after"] == {
        "district": "黄岛区", "enterprise": "青岛联创电子有限公司"}[e.details["field"]] for e in updates)
    assert {e.actor for e in _events(database, "transcript.term_corrected")} == {"refresh"}

    again = run("cases", "refresh")  # nothing left to change
    assert _summary(again)["fields_changed"] == 0 and _summary(again)["segments_term_corrected"] == 0


def test_refresh_since_a_day_skips_older_cases(run: Callable[..., Result], database: Database) -> None:
    old = file_transcript(database, WRONG, "old")
    file_transcript(database, WRONG, "new")
    with database.session() as db:
        case = db.get(Case, old)
        assert case is not None
        case.created_at = utcnow() - timedelta(days=10)
    since = (utcnow() + timedelta(hours=8) - timedelta(days=1)).date().isoformat()
    result = run("cases", "refresh", "--since", since)
    assert result.exit_code == 0, result.output
    assert _summary(result)["cases_seen"] == 1


@pytest.mark.slow
def test_retranscribe_replaces_machine_segments_and_keeps_edited_ones(
    settings: Settings, database: Database
) -> None:
    from tests.test_corrections import _file_d03

    case_id, tid = _file_d03(settings, database)
    mine = "三十个人，派遣公司说没有别的岗位，让我们自己辞职（已核对）。"
    with database.session() as db:
        seg = transcripts.segment(db=db, transcript_id=tid, idx=3)
        assert seg is not None and seg.speaker == "caller"
        transcripts.correct(db=db, seg=seg, text=mine, version=0, actor="user:li", username="li")

    done = flows.refresh_case(database=database, settings=settings, case_id=case_id, retranscribe=True)
    assert done.replaced is not None and done.replaced.kept == 1 and done.replaced.removed == 4
    with database.session() as db:
        transcript = transcripts.get(db=db, transcript_id=tid)
        assert transcript is not None and transcript.engine == "faster-whisper"
        segs = transcript.segments
        assert [s.idx for s in segs] == list(range(len(segs)))
        assert [s.start for s in segs] == sorted(s.start for s in segs)
        kept = [s for s in segs if s.edited_by]
        assert [s.text for s in kept] == [mine]
        overlapping = [s for s in segs if s.speaker == "caller" and s is not kept[0]
                       and s.start < kept[0].end and kept[0].start < s.end]
        assert overlapping == []
        assert any("黄岛" in s.text for s in segs if s.speaker == "caller")
    [event] = _events(database, "transcript.retranscribed")
    assert event.actor == "refresh" and event.details["kept_edited"] == 1
