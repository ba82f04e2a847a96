"""Full-text search over what was said and the case fields, with filters, on SQLite FTS5 and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.audit.models import AuditEvent
from app.cases.models import Case
from app.db import Database
from app.search import service as search
from app.search.models import SearchDoc, SearchEntry, SearchFilters, SearchResults
from app.search.tokenize import index_tokens, query_terms
from tests.helpers import file_transcript, timed_words

HAIFENG = [
    ("agent", "您好，这里是一二三五一职工服务热线，请问有什么可以帮您？"),
    ("caller", "我是崂山区一家水产加工厂的冷库叉车工，公司拖欠我们工资两个多月了。"),
    ("caller", "青岛海丰水产有限公司，冷库一共十五个人。"),
]
HONGYUAN = [
    ("caller", "我在城阳区的青岛宏远汽车配件有限公司上班，搬货的时候把腰扭伤了。"),
    ("agent", "公司有没有给您申请工伤认定？"),
]
SCRIPT = [
    ("caller", "我在黄岛区的青岛金海物流有限公司开货车，工资条上写着<script>alert('欠薪')</script>& 扣款。"),
]


def test_tokens_include_the_words_inside_names() -> None:
    tokens = index_tokens("青岛海丰水产有限公司")
    assert {"青岛", "海丰", "水产", "有限公司", "公司"} <= set(tokens)
    assert [t.word for t in query_terms("海丰水产")] == ["海丰", "水产"]


def _search(database: Database, q: str, limit: int = 20, offset: int = 0, **filters: Any) -> SearchResults:
    with database.session() as db:
        return search.search(db=db, q=q, filters=SearchFilters(**filters), limit=limit, offset=offset)


def _ids(results: SearchResults) -> list[int]:
    return [h.case_id for h in results.items]


def _update_case(database: Database, case_id: int, reindex: bool = False, **values: Any) -> None:
    with database.session() as db:
        case = db.get(Case, case_id)
        assert case is not None
        for name, value in values.items():
            setattr(case, name, value)
        db.flush()
        if reindex:
            search.index_case(db=db, case=case)


@pytest.mark.parametrize("query", ["海丰", "海丰水产", "青岛海丰水产有限公司", "叉车工", "拖欠工资"])
def test_finds_the_case_by_words_said(database: Database, query: str) -> None:
    haifeng = file_transcript(database, HAIFENG, "a")
    file_transcript(database, HONGYUAN, "b")
    r = _search(database, query)
    assert _ids(r) == [haifeng] and r.total == 1
    hit = r.items[0]
    assert hit.speaker == "caller" and hit.start in (5.0, 10.0)  # the second it was said
    assert hit.segment_id is not None and "<mark>" in hit.highlighted
    assert any(t in hit.text for t in r.tokens)


def test_hit_is_the_segment_where_the_words_were_said(database: Database) -> None:
    haifeng = file_transcript(database, HAIFENG, "a")
    hit = _search(database, "海丰").items[0]
    assert (hit.case_id, hit.start, hit.speaker) == (haifeng, 10.0, "caller")
    assert hit.text == HAIFENG[2][1]
    assert hit.highlighted == "青岛<mark>海丰</mark>水产有限公司，冷库一共十五个人。"
    assert (hit.category, hit.status, hit.district) == ("欠薪", "受理", "崂山区")
    # two words said in different segments: the segment with more of them is shown
    hit = _search(database, "叉车工 工资").items[0]
    assert hit.start == 5.0
    assert hit.highlighted.count("<mark>") == 2


def test_a_hit_with_word_timings_opens_at_the_word_not_the_segment(database: Database) -> None:
    haifeng = file_transcript(database, HAIFENG, "a", timed=True)
    hit = _search(database, "海丰").items[0]
    assert hit.text == HAIFENG[2][1] and hit.text.startswith("青岛海丰")
    words = timed_words(hit.text, 10.0, 14.0)  # as stored: 青岛 / 海丰 / 水产 …
    assert words[1].text == "海丰" and hit.case_id == haifeng and hit.start == words[1].start > 10.0
    assert search.said_at("青岛海丰水产", [[1.0, 1.5, "青岛"], [1.5, 2.0, "海丰"], [2.0, 2.4, "水产"]],
                          ["海丰"]) == 1.5
    assert search.said_at("青岛海丰水产", [[1.0, 2.0, "青岛海丰"]], ["水产"]) is None  # words not its text
    assert search.said_at("青岛海丰水产", None, ["海丰"]) is None


def test_a_word_said_and_also_in_the_fields_opens_where_it_was_said(database: Database) -> None:
    # staff wrote the word into the summary too (and the district 崂山区 holds 崂山): the hit still carries
    # the second it was said, so a click plays it
    case_id = file_transcript(database, HAIFENG, "a")
    _update_case(database, case_id, reindex=True, summary="海丰水产冷库叉车工反映欠薪，海丰拖欠两个月")
    hit = _search(database, "海丰").items[0]
    assert (hit.case_id, hit.start, hit.speaker) == (case_id, 10.0, "caller")


def test_all_words_must_occur_somewhere_in_the_case(database: Database) -> None:
    file_transcript(database, HAIFENG, "a")
    hongyuan = file_transcript(database, HONGYUAN, "b")
    assert _ids(_search(database, "宏远 工伤认定")) == [hongyuan]
    assert _search(database, "宏远 冷库").total == 0


def test_case_fields_are_searchable(database: Database) -> None:
    case_id = file_transcript(database, HONGYUAN, "b")
    _update_case(database, case_id, reindex=True, occupation="搬运工", unit="城阳区总工会")
    for query in ("城阳区", "搬运工", "城阳区总工会"):
        r = _search(database, query)
        assert _ids(r) == [case_id], query
    hit = _search(database, "搬运工").items[0]  # said nowhere: the hit is the case's fields
    assert hit.segment_id is None and hit.start is None and hit.speaker is None
    assert "职业：<mark>搬运工</mark>" in hit.highlighted


def test_highlight_escapes_html_in_what_was_said(database: Database) -> None:
    case_id = file_transcript(database, SCRIPT, "s")
    for query in ("金海", "script", "<script>"):
        r = _search(database, query)
        assert _ids(r) == [case_id], query
        highlighted = r.items[0].highlighted
        assert "<script>" not in highlighted and "&lt;script&gt;" in highlighted.replace("<mark>", "").replace(
            "</mark>", "")
        assert "&amp;" in highlighted and "&#x27;" in highlighted
    assert "&lt;<mark>script</mark>&gt;" in _search(database, "script").items[0].highlighted


def test_highlight_marks_whole_words_and_ignores_case() -> None:
    assert search.highlight("青岛海丰水产", ["海丰", "水产"]) == "青岛<mark>海丰水产</mark>"
    assert search.highlight("加工厂的叉车工", ["叉车", "工"]) == "加工厂的<mark>叉车工</mark>"
    assert search.highlight("崂山区", ["崂山", "山区"]) == "<mark>崂山区</mark>"
    assert search.highlight("Java & java", ["java"]) == "<mark>Java</mark> &amp; <mark>java</mark>"
    assert search.highlight("a<b", []) == "a&lt;b"


# Operators are words like any other (a query holding AND/OR/NEAR asks for those words too); quotes,
# brackets, stars and other symbols are not words at all.
NOTHING = ["，。！", "不存在的词", "\"quoted\" OR 'x' AND -y", "海丰'; DROP TABLE cases;--", "NEAR(a b)", "海丰 AND",
           "OR 海丰", "海丰 NOT 冷库", "fields:海丰", "\\", "'", "_", "''''", "NEAR/2", "海丰 NEAR/2 冷库"]
HAIFENG_ONLY = ['"海丰"', '"海丰', "海丰*", "(海丰", "海丰)", "(海丰)", "海丰）", "《海丰》", "海丰!!", "^海丰",
                "海丰 + - : ^ { }", "海丰 -", "'海丰'", "海丰\\"]


def test_fts_syntax_in_queries_is_plain_words(database: Database) -> None:
    case_id = file_transcript(database, HAIFENG, "a")
    for query in NOTHING:
        r = _search(database, query)
        assert r.total == 0 and r.items == [], query
    for query in HAIFENG_ONLY:
        assert _ids(_search(database, query)) == [case_id], query


def test_pagination_and_exact_total(database: Database) -> None:
    ids = [file_transcript(database, HAIFENG, f"n{i}") for i in range(5)]
    page1 = _search(database, "海丰", limit=2)
    page3 = _search(database, "海丰", limit=2, offset=4)
    beyond = _search(database, "海丰", limit=2, offset=10)
    assert page1.total == page3.total == beyond.total == 5
    assert _ids(page1) == ids[:-3:-1]  # same relevance: newest first
    assert _ids(page3) == [ids[0]] and beyond.items == []
    every = _ids(_search(database, "海丰", limit=2)) + _ids(_search(database, "海丰", limit=2, offset=2)) + _ids(page3)
    assert sorted(every) == sorted(ids)


def test_best_match_first(database: Database) -> None:
    once = file_transcript(database, [("caller", "公司不给申请工伤认定，我在车间受伤了。"), ("agent", "好的。")], "a")
    often = file_transcript(database, [("caller", "我要申请工伤认定，工伤认定要多久。"),
                                       ("caller", "工伤认定以后能拿多少钱。")], "b")
    newer = file_transcript(database, [("caller", "公司让我在车间加班，天天加班。"), ("agent", "好的。")], "c")
    assert _ids(_search(database, "工伤认定")) == [often, once]
    assert newer not in _ids(_search(database, "工伤认定"))


def test_past_the_rank_limit_newest_filed_first_and_total_exact(database: Database,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    often = file_transcript(database, [("caller", "工伤认定，工伤认定，工伤认定。")], "a")
    once = file_transcript(database, [("caller", "我想问工伤认定的事。"), ("agent", "请讲。")], "b")
    assert _ids(_search(database, "工伤认定")) == [often, once] and _search(database, "工伤认定").ranked
    monkeypatch.setattr(search, "RANK_LIMIT", 1)
    r = _search(database, "工伤认定")
    assert (_ids(r), r.total, r.ranked) == ([once, often], 2, False)
    assert _ids(_search(database, "工伤认定", limit=1, offset=1)) == [often]


def _filed(database: Database) -> dict[str, int]:
    haifeng = file_transcript(database, HAIFENG, "a")
    hongyuan = file_transcript(database, HONGYUAN, "b")
    jinhai = file_transcript(database, SCRIPT, "s")
    _update_case(database, haifeng, status="办理", assignee="wang", created_by="zhang",
                 created_at=datetime(2025, 3, 1, 15, 59, tzinfo=UTC))  # 23:59 on 1 March in Qingdao
    _update_case(database, hongyuan, status="转办", assignee="li", created_by="wang",
                 created_at=datetime(2025, 3, 1, 16, 0, tzinfo=UTC))  # 00:00 on 2 March in Qingdao
    _update_case(database, jinhai, created_by="li", category="工时休假",
                 created_at=datetime(2025, 4, 10, 2, 0, tzinfo=UTC))
    return {"haifeng": haifeng, "hongyuan": hongyuan, "jinhai": jinhai}


FILTERS: list[tuple[dict[str, Any], list[str]]] = [
    ({"category": "欠薪"}, ["haifeng"]),
    ({"category": "工伤"}, ["hongyuan"]),
    ({"district": "城阳区"}, ["hongyuan"]),
    ({"district": "黄岛区"}, ["jinhai"]),
    ({"status": "办理"}, ["haifeng"]),
    ({"status": "受理"}, ["jinhai"]),
    ({"enterprise": "宏远汽车"}, ["hongyuan"]),
    ({"enterprise": "有限公司"}, ["jinhai", "hongyuan", "haifeng"]),
    ({"enterprise": "%"}, []),  # LIKE wildcards are plain characters
    ({"staff": "wang"}, ["hongyuan", "haifeng"]),  # filed one, handles the other
    ({"staff": "li"}, ["jinhai", "hongyuan"]),
    ({"staff": "nobody"}, []),
    ({"date_from": date(2025, 3, 2)}, ["jinhai", "hongyuan"]),  # days in Asia/Shanghai
    ({"date_to": date(2025, 3, 1)}, ["haifeng"]),
    ({"date_from": date(2025, 3, 1), "date_to": date(2025, 3, 1)}, ["haifeng"]),
    ({"date_from": date(2025, 3, 2), "date_to": date(2025, 3, 31)}, ["hongyuan"]),
    ({"district": "城阳区", "status": "转办", "staff": "li"}, ["hongyuan"]),
    ({"district": "城阳区", "status": "办理"}, []),
]


def test_filters_without_words_list_cases_newest_first(database: Database) -> None:
    cases = _filed(database)
    for filters, expected in FILTERS:
        r = _search(database, "", **filters)
        assert (_ids(r), r.total) == ([cases[name] for name in expected], len(expected)), filters
        assert all(h.segment_id is None and h.text for h in r.items)
    assert _ids(_search(database, "")) == [cases["jinhai"], cases["hongyuan"], cases["haifeng"]]


def test_filters_narrow_a_word_search(database: Database) -> None:
    cases = _filed(database)
    for filters, expected in FILTERS:
        r = _search(database, "公司", **filters)  # said in all three calls
        assert (sorted(_ids(r)), r.total) == (sorted(cases[name] for name in expected), len(expected)), filters
    assert _ids(_search(database, "海丰", category="工伤")) == []


def test_reindex_after_the_case_changes(database: Database) -> None:
    case_id = file_transcript(database, HONGYUAN, "b")
    _update_case(database, case_id, reindex=True, enterprise="青岛瑞德精密机械有限公司", category="劳动合同")
    assert _ids(_search(database, "瑞德精密")) == [case_id]
    assert _ids(_search(database, "劳动合同")) == [case_id]
    assert _ids(_search(database, "工伤认定")) == [case_id]  # the transcript stays indexed
    assert _ids(_search(database, "宏远")) == [case_id]  # still said in the call
    _update_case(database, case_id, reindex=True, enterprise="青岛瑞德机械有限公司")
    assert _search(database, "精密").total == 0  # the old value is gone
    with database.session() as db:
        entries = db.execute(sa.select(SearchEntry).where(SearchEntry.case_id == case_id)).scalars().all()
        docs = db.execute(sa.select(SearchDoc).where(SearchDoc.case_id == case_id)).scalars().all()
    assert len([e for e in entries if e.segment_id is None]) == 1 and len(entries) == 1 + len(HONGYUAN)
    assert len(docs) == 1 and "瑞德" in docs[0].fields.split() and "宏远" in docs[0].said.split()


def test_reindex_with_new_segments_replaces_them(database: Database) -> None:
    case_id = file_transcript(database, HAIFENG, "a")
    other = file_transcript(database, HONGYUAN, "b")
    with database.session() as db:
        case = db.get(Case, case_id)
        donor = db.get(Case, other)
        assert case is not None and donor is not None and donor.transcript_id is not None
        from app.transcripts.models import Segment

        segments = db.execute(sa.select(Segment).where(Segment.transcript_id == donor.transcript_id)).scalars()
        search.index_case(db=db, case=case, segments=list(segments))
    assert _search(database, "热线").total == 0  # said only by the agent of the old transcript
    assert _ids(_search(database, "叉车工")) == [case_id]  # still in the case's fields (occupation, summary)
    assert sorted(_ids(_search(database, "宏远"))) == sorted([case_id, other])


def test_tsvector_literal_keeps_positions_weights_and_quotes() -> None:
    literal = search.tsvector_literal(["海丰", "it's"], ["海丰", "a\\b", "海丰"])
    assert literal == "'海丰':1A,3,5 'it''s':2A 'a\\\\b':4"


def test_odd_tokens_reach_the_index_intact(database: Database) -> None:
    case_id = file_transcript(database, [("caller", "C++ 和 9.5% 的 a_b、x-y 都写进合同了")], "t")
    for query in ("c++", "9.5%", "a_b", "x-y", "C++ 合同"):
        assert _ids(_search(database, query)) == [case_id], query


# ---- the API ----------------------------------------------------------------------------------------


def test_api_contract_and_audit(client: TestClient, database: Database, agent: dict[str, str]) -> None:
    cases = _filed(database)
    r = client.get("/api/v1/search", params={"q": "海丰 冷库", "status": "办理", "staff": "wang",
                                             "date_from": "2025-03-01", "date_to": "2025-03-01"}, headers=agent)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"query", "tokens", "total", "ranked", "items"} and body["total"] == 1 and body["ranked"]
    item = body["items"][0]
    assert set(item) == {"case_id", "case_no", "category", "status", "enterprise", "district", "segment_id",
                         "start", "speaker", "text", "highlighted"}
    assert item["case_id"] == cases["haifeng"] and item["start"] == 10.0 and item["speaker"] == "caller"
    assert item["highlighted"] == "青岛<mark>海丰</mark>水产有限公司，<mark>冷库</mark>一共十五个人。"
    listed = client.get("/api/v1/search", params={"district": "城阳区"}, headers=agent).json()
    assert [h["case_id"] for h in listed["items"]] == [cases["hongyuan"]]
    with database.session() as db:
        events = db.execute(sa.select(AuditEvent).where(AuditEvent.action == "search")
                            .order_by(AuditEvent.seq)).scalars().all()
    assert [e.details["q"] for e in events] == ["海丰 冷库", ""]
    assert events[0].actor == "user:zhang" and events[0].details["hits"] == 1
    assert events[0].details["filters"] == {"status": "办理", "staff": "wang", "date_from": "2025-03-01",
                                            "date_to": "2025-03-01"}


def test_api_never_fails_on_fts_syntax(client: TestClient, database: Database, agent: dict[str, str]) -> None:
    file_transcript(database, HAIFENG, "a")
    for query in ['"', '"海丰', "海丰 OR", "NEAR(", "*", "(", ")", "AND", "海丰 -冷库", "'", "<script>", "%",
                  "海丰\\", "   ", *NOTHING, *HAIFENG_ONLY]:
        r = client.get("/api/v1/search", params={"q": query}, headers=agent)
        assert r.status_code == 200, (query, r.text)
        assert r.json()["query"] == query


def test_api_rejects_bad_filters_in_chinese(client: TestClient, agent: dict[str, str]) -> None:
    for params, code in [
        ({"date_from": "2025-3-1"}, "invalid_date"), ({"date_to": "2025-02-30"}, "invalid_date"),
        ({"date_from": "yesterday"}, "invalid_date"),
        ({"date_from": "2025-03-02", "date_to": "2025-03-01"}, "invalid_date_range"),
        ({"status": "closed"}, "invalid_status"),
    ]:
        r = client.get("/api/v1/search", params={"q": "工资", **params}, headers=agent)
        assert (r.status_code, r.json()["code"]) == (422, code), params
        assert any("\u4e00" <= ch <= "\u9fff" for ch in r.json()["detail"])


def test_api_needs_login(client: TestClient) -> None:
    assert client.get("/api/v1/search", params={"q": "工资"}).status_code == 401
