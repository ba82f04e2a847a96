"""Full-text search over what was said, on SQLite FTS5 and PostgreSQL."""

from __future__ import annotations

import pytest

from app.db import Database
from app.search import service as search
from app.search.tokenize import index_tokens, query_terms
from tests.helpers import file_transcript

HAIFENG = [
    ("agent", "您好，这里是一二三五一职工服务热线，请问有什么可以帮您？"),
    ("caller", "我是崂山区一家水产加工厂的冷库叉车工，公司拖欠我们工资两个多月了。"),
    ("caller", "青岛海丰水产有限公司，冷库一共十五个人。"),
]
HONGYUAN = [
    ("caller", "我在城阳区的青岛宏远汽车配件有限公司上班，搬货的时候把腰扭伤了。"),
    ("agent", "公司有没有给您申请工伤认定？"),
]


def test_tokens_include_the_words_inside_names() -> None:
    tokens = index_tokens("青岛海丰水产有限公司")
    assert {"青岛", "海丰", "水产", "有限公司", "公司"} <= set(tokens)
    assert [t.word for t in query_terms("海丰水产")] == ["海丰", "水产"]


def _search(database: Database, q: str) -> search.SearchResults:
    with database.session() as db:
        return search.search(db=db, q=q)


@pytest.mark.parametrize("query", ["海丰", "海丰水产", "青岛海丰水产有限公司", "叉车工", "拖欠工资"])
def test_finds_the_case_by_words_said(database: Database, query: str) -> None:
    haifeng = file_transcript(database, HAIFENG, "a")
    file_transcript(database, HONGYUAN, "b")
    r = _search(database, query)
    assert [h.case_id for h in r.items] == [haifeng] and r.total == 1
    hit = r.items[0]
    assert hit.speaker == "caller" and hit.start in (5.0, 10.0)  # the second it was said
    assert any(t in hit.text for t in r.tokens)


def test_all_words_must_occur_somewhere_in_the_case(database: Database) -> None:
    file_transcript(database, HAIFENG, "a")
    hongyuan = file_transcript(database, HONGYUAN, "b")
    assert [h.case_id for h in _search(database, "宏远 工伤认定").items] == [hongyuan]
    assert _search(database, "宏远 冷库").total == 0


def test_case_fields_are_searchable(database: Database) -> None:
    case_id = file_transcript(database, HONGYUAN, "b")
    r = _search(database, "城阳区")
    assert [h.case_id for h in r.items] == [case_id]


ODD_QUERIES = ["", "，。！", "不存在的词", "\"quoted\" OR 'x' AND -y", "海丰'; DROP TABLE cases;--", "NEAR(a b)"]


@pytest.mark.parametrize("query", ODD_QUERIES)
def test_odd_queries_return_nothing_and_no_error(database: Database, query: str) -> None:
    file_transcript(database, HAIFENG, "a")
    assert _search(database, query).total == 0


def test_pagination_newest_first(database: Database) -> None:
    ids = [file_transcript(database, HAIFENG, f"n{i}") for i in range(5)]
    with database.session() as db:
        page1 = search.search(db=db, q="海丰", limit=2)
        page3 = search.search(db=db, q="海丰", limit=2, offset=4)
    assert page1.total == 5 and [h.case_id for h in page1.items] == ids[:-3:-1]
    assert [h.case_id for h in page3.items] == [ids[0]]
