"""Index a case's words and find cases by words said in the call (SQLite FTS5 / PostgreSQL tsvector)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.cases.models import Case
from app.search.models import SearchEntry, SearchHit, SearchResults
from app.search.tokenize import QueryTerm, index_tokens, query_terms
from app.transcripts.models import Segment


def index_case(*, db: Session, case: Case, segments: Iterable[Segment]) -> None:
    """(Re)build a case's entries: one per transcript segment, one for the case's own fields."""
    db.execute(sa.delete(SearchEntry).where(SearchEntry.case_id == case.id))
    fields = " ".join(v for v in (case.case_no, case.category, case.enterprise, case.district) if v)
    entries = [SearchEntry(case_id=case.id, segment_id=None, start=None, text=fields)]
    entries += [SearchEntry(case_id=case.id, segment_id=s.id, start=s.start, text=s.text) for s in segments]
    for entry in entries:
        entry.tokens = " ".join(index_tokens(entry.text))
    db.add_all(entries)
    db.flush()


def _fts5_phrase(token: str) -> str:
    return '"' + token.replace('"', '""') + '"'


def _ts_lexeme(token: str) -> str:
    return "'" + token.replace("\\", "\\\\").replace("'", "''") + "'"


def _fts5(term: QueryTerm) -> str:
    """FTS5 query for one term: the word, or all its parts."""
    word, parts = _fts5_phrase(term.word), [_fts5_phrase(p) for p in term.parts]
    return word if not parts else f"({word} OR ({' AND '.join(parts)}))"


def _tsquery(term: QueryTerm) -> str:
    """tsquery for one term, built from quoted lexemes so no text-search parser is involved."""
    word, parts = _ts_lexeme(term.word), [_ts_lexeme(p) for p in term.parts]
    return word if not parts else f"({word} | ({' & '.join(parts)}))"


def _entries_matching(dialect: str, param: str) -> str:
    """SQL selecting the ids of entries whose tokens match the query bound to ``param``."""
    if dialect == "sqlite":
        return f"SELECT rowid FROM search_fts WHERE search_fts MATCH :{param}"
    return (f"SELECT id FROM search_entries WHERE array_to_tsvector(string_to_array(tokens, ' '))"
            f" @@ CAST(:{param} AS tsquery)")


def search(*, db: Session, q: str, limit: int = 20, offset: int = 0) -> SearchResults:
    """Cases in which every word of ``q`` was said (or is in the case's fields), newest first, each with
    the first matching segment and the second of audio it starts at."""
    terms = query_terms(q)
    tokens = list(dict.fromkeys(w for t in terms for w in (t.word, *t.parts)))  # what to highlight
    if not terms:
        return SearchResults(query=q, tokens=[], total=0, items=[])
    dialect = db.get_bind().dialect.name
    render = _fts5 if dialect == "sqlite" else _tsquery
    params: dict[str, Any] = {f"q{i}": render(t) for i, t in enumerate(terms)}
    where = " AND ".join(
        f"c.id IN (SELECT case_id FROM search_entries WHERE id IN ({_entries_matching(dialect, f'q{i}')}))"
        for i in range(len(terms))
    )
    total = db.execute(sa.text(f"SELECT count(*) FROM cases c WHERE {where}"), params).scalar_one()
    ids = list(db.execute(
        sa.text(f"SELECT c.id FROM cases c WHERE {where} ORDER BY c.created_at DESC, c.id DESC"
                " LIMIT :limit OFFSET :offset"), {**params, "limit": limit, "offset": offset},
    ).scalars())
    if not ids:
        return SearchResults(query=q, tokens=tokens, total=total, items=[])
    any_term = " UNION ".join(_entries_matching(dialect, f"q{i}") for i in range(len(terms)))
    matching = sa.text(any_term).bindparams(**params).columns(sa.column("id"))
    entries = db.execute(
        sa.select(SearchEntry, Segment.speaker)
        .outerjoin(Segment, Segment.id == SearchEntry.segment_id)
        .where(SearchEntry.case_id.in_(ids), SearchEntry.id.in_(matching))
    ).all()
    first: dict[int, tuple[SearchEntry, str | None]] = {}
    for row in sorted(entries, key=lambda r: (r[0].start is None, r[0].start or 0.0)):
        first.setdefault(row[0].case_id, (row[0], row[1]))
    cases = {c.id: c for c in db.execute(sa.select(Case).where(Case.id.in_(ids))).scalars()}
    items = []
    for case_id in ids:
        entry, speaker = first[case_id]
        case = cases[case_id]
        items.append(SearchHit(
            case_id=case_id, case_no=case.case_no, category=case.category, status=case.status,
            enterprise=case.enterprise, segment_id=entry.segment_id, start=entry.start, speaker=speaker,
            text=entry.text,
        ))
    return SearchResults(query=q, tokens=tokens, total=total, items=items)
