"""Case facts checked against the audio (app/cases/verify.py), through the real worker step, Whisper and a
registry: a registered name heard wrong is resolved and linked; nothing is pulled onto another enterprise;
unsure facts are marked 待核实, not filled in."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from app.audit.models import AuditEvent
from app.cases import verify
from app.cases.extract import Evidence, Said
from app.cases.models import Case
from app.config import Settings
from app.db import Database
from app.enterprises import service as enterprises
from app.recordings import service as recordings
from app.recordings.models import CaseChannel
from app.transcripts.flows import transcribe_recording
from app.transcripts.models import Transcript
from asr.types import Segment
from tests.conftest import CALL

REGISTRY_HEADER = "企业名称,统一社会信用代码,区市,地址,行业,企业类型\n"
DISTRACTORS = ["青岛海风水彩有限公司", "青岛联川物流有限公司", "青岛创联人力资源有限公司", "青岛金桥建材有限公司",
               "青岛宏远汽车配件有限公司", "青岛联发机械制造有限公司"]


def _file(settings: Settings, database: Database, names: Sequence[str]) -> Case:
    rows = "".join(f"{n},,,,,\n" for n in names)
    with database.session() as db:
        enterprises.import_file(db=db, path_or_bytes=(REGISTRY_HEADER + rows).encode(), actor="test",
                                filename="registry.csv")
    with CALL.open("rb") as f, recordings.staged(settings, f) as staged:
        rec = recordings.ingest(database=database, settings=settings, staged_file=staged, original_name=CALL.name,
                                layout="caller-left", channel=CaseChannel.call, actor="test").recording
    outcome = transcribe_recording(database=database, settings=settings, recording_id=rec.id)
    assert outcome.case_id is not None
    with database.session() as db:
        case = db.get(Case, outcome.case_id)
        assert case is not None
        db.expunge(case)
        return case


@pytest.mark.slow
def test_a_registered_name_heard_wrong_is_resolved_and_the_transcript_corrected(settings: Settings,
                                                                               database: Database) -> None:
    """D03's caller says 青岛联创人力资源有限公司 (Whisper base: 联串/联策…). Among sound-alike names on file, the
    audio picks the right entry; the case carries it (linked once staff confirm) and the transcript says it."""
    case = _file(settings, database, [*DISTRACTORS, "青岛联创人力资源有限公司"])
    found = case.extracted["enterprise"]
    assert case.enterprise == "青岛联创人力资源有限公司" and found.get("status", "") == ""
    with database.session() as db:
        linked = db.execute(enterprises.sa.select(enterprises.Enterprise.id).where(
            enterprises.Enterprise.name == "青岛联创人力资源有限公司")).scalar_one()
        assert found["enterprise_id"] == linked and case.enterprise_id is None  # linked when staff confirm
        transcript = db.get(Transcript, case.transcript_id)
        assert transcript is not None
        caller = "".join(s.text for s in transcript.segments if s.speaker == "caller")
        assert "青岛联创人力资源有限公司" in caller
        fixed = db.query(AuditEvent).filter(AuditEvent.action == "transcript.verified").all()
        assert fixed and all(e.details["before"] != e.details["after"] for e in fixed)
    assert case.district == "黄岛区"


@pytest.mark.slow
def test_nothing_is_pulled_onto_another_enterprise(settings: Settings, database: Database) -> None:
    """The registry holds names that share 青岛, the trade and 有限公司 but not D03's company: the case is not
    put on any of them, and the name as heard waits for the agent (待核实), not filled in."""
    case = _file(settings, database, DISTRACTORS)
    found = case.extracted["enterprise"]
    assert found["value"] not in DISTRACTORS and "enterprise_id" not in found
    assert found["status"] == verify.UNVERIFIED and case.enterprise is None


class Scores:
    """A test double beside the real scorer (tests above): each text scores by how many of ``liked`` it
    contains, so the choosing logic can be checked without the model."""

    def __init__(self, liked: Sequence[str]) -> None:
        self.liked = liked
        self.asked: list[list[str]] = []

    def score(self, speaker: str, start: float, end: float, texts: Sequence[str]) -> list[float]:
        self.asked.append(list(texts))
        return [-10.0 + 8.0 * sum(w in t for w in self.liked) for t in texts]


def _said(*texts: str, speaker: str = "caller") -> list[Said]:
    return [Said(i, Segment(float(i * 5), float(i * 5 + 4), speaker, t), t) for i, t in enumerate(texts)]


def test_a_place_heard_as_a_homophone_is_checked_among_the_districts() -> None:
    said = _said("我们在李汤区工地干活，老板一直不给钱。")
    fixes: list[verify.Fix] = []
    ev = verify.district(said, Scores(["李沧区"]), heard=None, fixes=fixes)
    assert ev is not None and ev.value == "李沧区" and ev.status == ""
    assert verify.apply_fixes(said[0].text, fixes) == "我们在李沧区工地干活，老板一直不给钱。"


def test_two_parties_naming_different_districts_is_unsure() -> None:
    votes = {"李沧区": [Evidence("李沧区", 0.6, 0, 0.0, 1.0, "caller", "")],
             "城阳区": [Evidence("城阳区", 0.6, 1, 2.0, 3.0, "agent", "")]}
    assert verify._tally(votes).status == verify.UNVERIFIED


def test_a_count_the_audio_says_otherwise_is_marked_unverified() -> None:
    said = _said("我们同十个人都没拿到工资")
    ev = said[0].evidence(10, 0.7)
    checked = verify.check_number(Scores(["30个人"]), ev, said)
    assert checked is not None and checked.value == 30 and checked.status == verify.UNVERIFIED


def test_a_number_read_back_by_the_agent_is_surer() -> None:
    said = [*_said("一共欠了42000元"), Said(1, Segment(6.0, 8.0, "agent", "42000元，对吧？"), "42000元，对吧？")]
    ev = said[0].evidence(42000, 0.7)
    checked = verify.check_number(None, ev, said)
    assert checked is not None and checked.confidence == pytest.approx(0.85)
