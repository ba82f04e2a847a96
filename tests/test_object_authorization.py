"""Authorization on the object, beyond the route's permission: whose case it is (app/cases/access.py), playing
a recording without taking a copy (app/recordings/views.py), search that cannot probe masked numbers
(app/search/tokenize.py), and the written forms of phone numbers that masking knows (app/auth/permissions.py).
On SQLite and PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.audit.models import AuditEvent
from app.auth.permissions import MATRIX, Masking, Permission
from app.cases.models import Case
from app.db import Database
from app.recordings import views as recording_views
from app.search import service as search
from app.search.models import SearchEntry
from app.search.tokenize import HIDDEN, query_terms
from app.users.models import Role
from tests.conftest import CALL, add_user, login
from tests.helpers import file_transcript, read_case

WAGES = [("caller", "青岛宏远汽车配件有限公司拖欠工资三个月了"), ("agent", "好的，我们帮您登记")]


def _denials(database: Database, subject_type: str, subject_id: int) -> list[AuditEvent]:
    with database.session() as db:
        return list(db.execute(sa.select(AuditEvent).where(
            AuditEvent.action == "auth.denied", AuditEvent.subject_type == subject_type,
            AuditEvent.subject_id == str(subject_id)).order_by(AuditEvent.seq)).scalars())


# --- whose case it is ----------------------------------------------------------------------------------------


@pytest.fixture
def staff(client: TestClient, database: Database) -> dict[str, dict[str, str]]:
    """Two agents, two mediators, a manager and an admin, logged in."""
    people = {"zhang": Role.agent, "zhao": Role.agent, "li": Role.mediator, "sun": Role.mediator,
              "wang": Role.manager, "root": Role.admin}
    for name, role in people.items():
        add_user(database, name, role)
    return {name: login(client, name) for name in people}


def test_the_matrix_gives_case_any_to_managers_and_admins_only() -> None:
    holders = {role for role, granted in MATRIX.items() if Permission.case_any in granted}
    assert holders == {Role.manager, Role.admin}


def test_a_case_in_the_pool_is_anyones_then_only_its_assignees(
    client: TestClient, database: Database, staff: dict[str, dict[str, str]]
) -> None:
    case_id = file_transcript(database, WAGES)
    url = f"/api/v1/cases/{case_id}"
    # 受理, held by nobody: any agent may work it (confirm fields, give first feedback)
    assert client.get(url, headers=staff["zhao"]).json()["may_change"] is True
    assert client.patch(url, headers=staff["zhao"], json={"district": "城阳区"}).status_code == 200
    assert client.post(f"{url}/feedback", headers=staff["zhang"], json={"note": "已告知受理"}).status_code == 200
    # 转办 to a mediator: from now on it is li's
    r = client.post(f"{url}/transitions", headers=staff["zhang"],
                    json={"to": "转办", "unit": "城阳区劳动监察大队", "assignee": "li"})
    assert r.status_code == 200 and r.json()["assignee"] == "li"
    assert r.json()["may_change"] is False  # the agent who handed it on sees it read-only now
    before = read_case(database, case_id)
    refused = {
        "patch": client.patch(url, headers=staff["zhang"], json={"district": "崂山区"}),
        "reassign": client.post(f"{url}/transitions", headers=staff["zhao"],
                                json={"to": "转办", "unit": "市南区劳动监察大队", "assignee": "zhao"}),
        "work": client.post(f"{url}/transitions", headers=staff["zhang"], json={"to": "办理"}),
        "feedback": client.post(f"{url}/feedback", headers=staff["zhao"], json={"note": "x"}),
        "other mediator": client.post(f"{url}/transitions", headers=staff["sun"], json={"to": "办理"}),
        "enterprise": client.put(f"{url}/enterprise", headers=staff["zhang"], json={"enterprise_id": None}),
        "correction": client.patch(f"/api/v1/transcripts/{before.transcript_id}/segments/0", headers=staff["zhao"],
                                   json={"text": "改掉", "version": 0}),
    }
    for what, r in refused.items():
        assert r.status_code == 403, (what, r.text)
        assert r.json() == {"code": "forbidden", "detail": "该工单由「li」承办，只有承办人或管理人员可以办理"}, what
    after = read_case(database, case_id)
    assert (after.status, after.assignee, after.unit, after.district) == ("转办", "li", "城阳区劳动监察大队", "城阳区")
    denials = _denials(database, "case", case_id)
    assert len(denials) == len(refused)
    assert {e.actor for e in denials} == {"user:zhang", "user:zhao", "user:sun"}
    assert all(e.details["permission"] == "case:any" and e.details["assignee"] == "li" for e in denials)
    assert {e.details["path"] for e in denials} >= {url, f"{url}/transitions", f"{url}/enterprise"}
    # the refusals are part of the case's story
    timeline = client.get(f"{url}/timeline", headers=staff["wang"]).json()
    assert sum(e["action"] == "auth.denied" for e in timeline) == len(refused)
    # the assignee works it; the manager may do anything to it; so may an admin
    assert client.get(url, headers=staff["li"]).json()["may_change"] is True
    assert client.post(f"{url}/transitions", headers=staff["li"], json={"to": "办理"}).status_code == 200
    assert client.post(f"{url}/feedback", headers=staff["li"], json={"note": "已联系企业"}).status_code == 200
    r = client.post(f"{url}/transitions", headers=staff["wang"],
                    json={"to": "转办", "unit": "城阳区劳动监察大队", "assignee": "sun", "note": "改派"})
    assert r.status_code == 200 and r.json()["assignee"] == "sun" and r.json()["may_change"] is True
    assert client.post(f"{url}/transitions", headers=staff["li"], json={"to": "办理"}).status_code == 403  # no longer
    assert client.post(f"{url}/transitions", headers=staff["sun"], json={"to": "办理"}).status_code == 200
    assert client.post(f"{url}/transitions", headers=staff["root"], json={"to": "回访"}).status_code == 200
    assert client.post(f"{url}/transitions", headers=staff["sun"], json={"to": "办结"}).status_code == 200


def test_who_handles_a_case_from_the_pool_takes_it(
    client: TestClient, database: Database, staff: dict[str, dict[str, str]]
) -> None:
    case_id = file_transcript(database, WAGES)
    url = f"/api/v1/cases/{case_id}"
    r = client.post(f"{url}/transitions", headers=staff["zhao"], json={"to": "办理", "note": "热线直接答复"})
    assert r.status_code == 200 and r.json()["assignee"] == "zhao"
    assert client.post(f"{url}/feedback", headers=staff["zhang"], json={"note": "x"}).status_code == 403
    assert client.post(f"{url}/transitions", headers=staff["zhao"], json={"to": "回访"}).status_code == 200
    # taking it yourself notifies nobody ("已转交您办理" is for cases handed to someone)
    inbox = client.get("/api/v1/notifications", headers=staff["zhao"]).json()
    assert [n for n in inbox["items"] if n["kind"] == "assigned"] == []


def test_a_case_handed_to_a_unit_without_a_person_waits_for_a_manager(
    client: TestClient, database: Database, staff: dict[str, dict[str, str]]
) -> None:
    case_id = file_transcript(database, WAGES)
    url = f"/api/v1/cases/{case_id}/transitions"
    unit = "市北区劳动监察大队"
    assert client.post(url, headers=staff["zhang"], json={"to": "转办", "unit": unit}).status_code == 200
    r = client.post(url, headers=staff["zhang"], json={"to": "转办", "unit": unit, "assignee": "zhang"})
    assert r.status_code == 403
    assert r.json()["detail"] == "该工单已转办至「市北区劳动监察大队」，尚未指定承办人：请管理人员指定承办人后再办理"
    r = client.post(url, headers=staff["wang"], json={"to": "转办", "unit": unit, "assignee": "li"})
    assert r.status_code == 200 and r.json()["assignee"] == "li"
    assert client.post(url, headers=staff["li"], json={"to": "办理"}).status_code == 200
    # sent back (退回) by its assignee: in the pool again, for anyone
    with database.session() as db:
        case = db.get(Case, case_id)
        assert case is not None
        case.status = "转办"
    assert client.post(url, headers=staff["li"], json={"to": "受理", "note": "非本单位职责"}).status_code == 200
    assert client.post(url, headers=staff["zhao"], json={"to": "转办", "unit": "李沧区劳动监察大队",
                                                          "assignee": "sun"}).status_code == 200


# --- playing is not downloading ------------------------------------------------------------------------------


@pytest.fixture
def recording_id(client: TestClient, staff: dict[str, dict[str, str]]) -> int:
    r = client.post("/api/v1/recordings", headers=staff["root"],
                    files={"file": ("call.wav", CALL.read_bytes(), "audio/wav")})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _played(database: Database, recording_id: int) -> list[dict[str, Any]]:
    with database.session() as db:
        rows = db.execute(sa.select(AuditEvent).where(
            AuditEvent.action == "recording.played", AuditEvent.subject_id == str(recording_id))
            .order_by(AuditEvent.seq)).scalars()
        return [dict(e.details, actor=e.actor) for e in rows]


def test_an_agent_plays_in_ranges_and_is_refused_the_whole_file(
    client: TestClient, database: Database, staff: dict[str, dict[str, str]], recording_id: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chunk = 100_000
    monkeypatch.setattr(recording_views, "PLAY_CHUNK_BYTES", chunk)
    whole = CALL.read_bytes()
    url = f"/api/v1/recordings/{recording_id}/audio"
    agent = staff["zhang"]
    # no Range (save as, curl, a download manager): refused, on record, nothing played
    for headers in ({}, {"Range": "bytes=0-99,200-299"}, {"Range": "items=0-"}):
        r = client.get(url, headers={**agent, **headers})
        assert r.status_code == 403 and r.json()["code"] == "forbidden", r.text
        assert "没有下载录音的权限" in r.json()["detail"]
    denied = _denials(database, "recording", recording_id)
    assert len(denied) == 3 and all(e.details["permission"] == "recording:download" for e in denied)
    assert _played(database, recording_id) == []
    # as a player asks: bytes=0-, then on from where each short 206 ended; byte-exact, every piece audited
    got, offset, answers = b"", 0, 0
    while offset < len(whole):
        r = client.get(url, headers={**agent, "Range": f"bytes={offset}-"})
        assert r.status_code == 206 and len(r.content) <= chunk
        m = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", r.headers["content-range"])
        assert m and int(m[1]) == offset and int(m[3]) == len(whole)
        assert int(r.headers["content-length"]) == len(r.content) == int(m[2]) - offset + 1
        got += r.content
        offset, answers = int(m[2]) + 1, answers + 1
    assert got == whole and answers == -(-len(whole) // chunk)
    played = _played(database, recording_id)
    assert len(played) == answers and played[0] == {"range": "bytes=0-", "bytes": f"0-{chunk - 1}",
                                                    "size": len(whole), "actor": "user:zhang"}
    # seeking: a range in the middle, and the last bytes, as asked
    r = client.get(url, headers={**agent, "Range": "bytes=300000-300099"})
    assert r.status_code == 206 and r.content == whole[300_000:300_100]
    r = client.get(url, headers={**agent, "Range": "bytes=-10"})
    assert r.status_code == 206 and r.content == whole[-10:]
    assert client.get(f"/api/v1/recordings/{recording_id}/download", headers=agent).status_code == 403


@pytest.mark.parametrize("who", ["li", "wang", "root"])
def test_roles_that_may_download_get_what_they_ask_for(
    client: TestClient, staff: dict[str, dict[str, str]], recording_id: int, monkeypatch: pytest.MonkeyPatch,
    who: str,
) -> None:
    monkeypatch.setattr(recording_views, "PLAY_CHUNK_BYTES", 100_000)
    url = f"/api/v1/recordings/{recording_id}/audio"
    r = client.get(url, headers=staff[who])
    assert r.status_code == 200 and r.content == CALL.read_bytes()
    r = client.get(url, headers={**staff[who], "Range": "bytes=0-"})
    assert r.status_code == 206 and r.content == CALL.read_bytes()


# --- search cannot probe masked numbers ----------------------------------------------------------------------

# Twins: the same call but for the digits a masked role cannot see (138****5678 either way). If any query
# finds one twin and not the other, search has told a masked user something about the hidden digits.
PHONE_TWINS = {
    "plain": ("我的电话是13812345678，有事打我", "我的电话是13898765678，有事打我"),
    "grouped": ("手机 138 1234 5678，白天都在", "手机 138 9876 5678，白天都在"),
    "read out": ("号码是幺三八一二三四五六七八", "号码是幺三八九八七六五六七八"),
    "landline": ("座机（0532）8123-6666", "座机（0532）8987-6666"),
}
ID_TWINS = {"id": ("身份证号370202199001011234", "身份证号370202198512251234")}
ZH = "零幺二三四五六七八九"


def _probe() -> list[str]:
    """The attacker's 135 queries: the visible prefix grown by one digit (10), every pair of digits read out
    (100), and 25 guesses at the hidden groups, the whole numbers and the ID number's middle."""
    queries = [f"138{d}" for d in "0123456789"]
    queries += [a + b for a in ZH for b in ZH]
    queries += ["1234", "9876", "8123", "8987", "13812345678", "13898765678", "138 1234 5678", "一二三四",
                "九八七六", "05328123", "8123-6666", "88886666", "(0532)8123-6666", "+86 13812345678",
                "19900101", "19851225", "370202199001011234", "370202198512251234", "3702021990", "1990",
                "0101", "1234 5678", "幺三八一二", "一二三四五", "81236666"]
    assert len(queries) == 135
    return queries


def _file_twins(database: Database, twins: dict[str, tuple[str, str]]) -> dict[str, tuple[int, int]]:
    return {name: (file_transcript(database, [("caller", a), ("agent", "好的")], name=f"{name}-a"),
                   file_transcript(database, [("caller", b), ("agent", "好的")], name=f"{name}-b"))
            for name, (a, b) in twins.items()}


def _found(client: TestClient, headers: dict[str, str], q: str) -> set[int]:
    r = client.get("/api/v1/search", params={"q": q, "limit": 100}, headers=headers)
    assert r.status_code == 200, r.text
    return {hit["case_id"] for hit in r.json()["items"]}


def _telling(client: TestClient, headers: dict[str, str], pairs: dict[str, tuple[int, int]]) -> list[str]:
    """The probe's queries that find one twin of a pair and not the other."""
    out = []
    for q in _probe():
        found = _found(client, headers, q)
        out += [f"{name}: {q}" for name, (a, b) in pairs.items() if (a in found) != (b in found)]
    return out


def test_the_135_query_probe_learns_nothing_about_masked_numbers(
    client: TestClient, database: Database, staff: dict[str, dict[str, str]]
) -> None:
    phones, ids = _file_twins(database, PHONE_TWINS), _file_twins(database, ID_TWINS)
    # a manager sees phone and ID numbers masked; an agent, ID numbers
    assert _telling(client, staff["wang"], {**phones, **ids}) == []
    assert _telling(client, staff["zhang"], ids) == []
    # those who see the numbers find them by them, as before
    for who in ("li", "root"):
        assert _found(client, staff[who], "13812345678") == {phones["plain"][0]}
        assert _found(client, staff[who], "1234") == {phones["grouped"][0]}
        assert _found(client, staff[who], "370202199001011234") == {ids["id"][0]}
    assert _found(client, staff["zhang"], "13898765678") == {phones["plain"][1]}  # agents see phone numbers
    assert _found(client, staff["zhang"], "370202199001011234") == set()
    # the rest of what was said is searchable for everyone
    assert _found(client, staff["wang"], "电话") >= {phones["plain"][0], phones["plain"][1]}


def test_hits_never_mark_or_point_into_a_masked_number(
    client: TestClient, database: Database, staff: dict[str, dict[str, str]]
) -> None:
    case_id = file_transcript(database, [("caller", "我电话138 1234 5678，公司欠我1234元工资")], timed=True)
    for who, marked in (("wang", "138 **** 5678，公司欠我<mark>1234</mark>元工资"),
                        ("root", "138 <mark>1234</mark> 5678，公司欠我<mark>1234</mark>元工资")):
        r = client.get("/api/v1/search", params={"q": "1234"}, headers=staff[who]).json()
        assert [h["case_id"] for h in r["items"]] == [case_id]
        assert r["items"][0]["highlighted"].endswith(marked), (who, r["items"][0]["highlighted"])
    # the second a masked user's hit points at is where the amount was said, not the phone number
    manager_hit = client.get("/api/v1/search", params={"q": "1234"}, headers=staff["wang"]).json()["items"][0]
    admin_hit = client.get("/api/v1/search", params={"q": "1234"}, headers=staff["root"]).json()["items"][0]
    assert manager_hit["start"] > admin_hit["start"]


def test_a_typed_mark_is_no_way_in(client: TestClient, database: Database, staff: dict[str, dict[str, str]]) -> None:
    case_id = file_transcript(database, [("caller", "我的电话是13812345678")])
    assert query_terms(f"{HIDDEN}p13812345678") == query_terms("p13812345678")
    for q in (f"{HIDDEN}p13812345678", f"{HIDDEN}13812345678", "p13812345678"):
        assert case_id not in _found(client, staff["wang"], q)


def test_cases_indexed_before_numbers_were_marked_are_marked_again(
    client: TestClient, database: Database, staff: dict[str, dict[str, str]]
) -> None:
    case_id = file_transcript(database, [("caller", "我的电话是13812345678"), ("agent", "好的")])
    with database.session() as db:  # as an older version indexed it: the number as a plain token
        for entry in db.execute(sa.select(SearchEntry).where(SearchEntry.case_id == case_id)).scalars():
            entry.tokens = entry.tokens.replace(f"{HIDDEN}p", "")
        case = db.get(Case, case_id)
        assert case is not None
        search.index_case(db=db, case=case)
    assert _found(client, staff["wang"], "13812345678") == {case_id}  # the leak
    with database.session() as db:
        assert search.mark_numbers(db=db) == 1
    with database.session() as db:
        assert search.mark_numbers(db=db) == 0  # once is enough
    assert _found(client, staff["wang"], "13812345678") == set()
    assert _found(client, staff["root"], "13812345678") == {case_id}


# --- masking: the ways Chinese phone numbers are written -----------------------------------------------------

MASKED = [
    ("(0532)88886666", "(053*)****6666"),
    ("（0532）88886666", "（053*）****6666"),
    ("（0532）8888-6666", "（053*）****-6666"),
    ("(0532) 8888 6666", "(053*) **** 6666"),
    ("０５３２－８８８８６６６６", "０５３*－****６６６６"),
    ("0532-88886666", "053*-****6666"),
    ("0532 8888666", "053* ***8666"),
    ("010-12345678", "010-****5678"),
    ("021 1234 5678", "021 **** 5678"),
    ("138 1234 5678", "138 **** 5678"),
    ("138-1234-5678", "138-****-5678"),
    ("138.1234.5678", "138.****.5678"),
    ("13812345678", "138****5678"),
    ("１３８１２３４５６７８", "１３８****５６７８"),
    ("+86 138 1234 5678", "+86 138 **** 5678"),
    ("+8613812345678", "+86138****5678"),
    ("＋86-138-1234-5678", "＋86-138-****-5678"),
    ("0086 13812345678", "0086 138****5678"),
    ("(+86)13812345678", "(+86)138****5678"),
    ("+86 532 8888 6666", "+86 532 **** 6666"),
    ("幺三八 幺二三四 五六七八", "幺三八 **** 五六七八"),
    ("零五三二杠八八八八六六六六", "零五三*杠****六六六六"),
    ("电话138 1234 5678。", "电话138 **** 5678。"),
    ("370202199001011234", "370***********1234"),
    ("37020219900101123X", "370***********123X"),
    ("37020219900101123x", "370***********123x"),
    ("370202 19900101 123X", "370*** ******** 123X"),
    ("三七零二零二一九九零零一零一一二三叉", "三七零***********一二三叉"),
]
NOT_NUMBERS = [
    "2026-03-02", "2026年3月2日", "20260302", "2026-03-02 10:00", "2025年12月至2026年3月", "12000元",
    "拖欠工资120000元", "共计186,000元", "13,800,000,000元", "工资 13800 元", "13800000000元",
    "12351-2026-000123", "12351-2026-013812", "QD-2026-000123", "拨打12351", "12351热线", "一二三五一",
    "订单 1381234567890123", "工号 0001234", "8888 6666", "400-123-4567", "第138号", "分机 8012",
]


@pytest.mark.parametrize(("text", "masked"), MASKED)
def test_written_forms_of_numbers_are_masked(text: str, masked: str) -> None:
    everything = Masking(phones=True, ids=True)
    assert everything.text(text) == masked
    assert everything.text(f"来电人说：{text}，请回电") == f"来电人说：{masked}，请回电"
    assert len(masked) == len(text)


@pytest.mark.parametrize("text", NOT_NUMBERS)
def test_dates_amounts_case_numbers_and_the_hotline_are_left_alone(text: str) -> None:
    assert Masking(phones=True, ids=True).text(text) == text
    assert Masking(phones=True, ids=True).text(f"说明：{text}。") == f"说明：{text}。"
