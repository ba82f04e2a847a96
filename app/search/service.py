"""Index a case's words and find cases by what was said and by their fields (SQLite FTS5 / PostgreSQL tsvector).

Which cases match, their rank and the exact total come from one full-text document per case
(``search_docs``); the segment shown for each case on the page is then picked, and highlighted, from that
case's entries (``search_entries``) in Python, the same way on both databases.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from app.auth.permissions import UNMASKED, Masking, number_spans
from app.cases.models import Case
from app.search.models import SearchDoc, SearchEntry, SearchFilters, SearchHit, SearchResults
from app.search.tokenize import (
    HIDDEN,
    QueryTerm,
    index_tokens,
    query_terms,
    variants,
    visible_spans,
    visible_tokens,
)
from app.transcripts.models import Segment

LOCAL_TZ = ZoneInfo("Asia/Shanghai")  # the calendar days date filters mean
# Case fields in the index, with the label shown in a hit on them. Only the values are tokenized.
INDEXED_FIELDS = (
    ("case_no", "工单"), ("category", "类别"), ("enterprise", "企业"), ("enterprise_type", "企业类型"),
    ("district", "区市"), ("occupation", "职业"), ("arrears_type", "欠薪类别"), ("unit", "承办单位"),
    ("summary", "摘要"),
)
# Relevance: a word in the case's fields counts twice a word said in the call.
BM25_WEIGHTS = (2.0, 1.0)  # FTS5 columns (fields, said)
TS_RANK_WEIGHTS = "{0.5,0.5,0.5,1.0}"  # tsvector weights D, C, B, A: said is D, fields are A
# Ranking every match costs time in proportion to the matches (bm25 / ts_rank read each one); a word said
# in more cases than this (工资, 公司) says little about relevance anyway, so such results come newest
# filed first (case id, straight from the index), and ``ranked`` is false. The total stays exact.
RANK_LIMIT = 10_000
_TS_MAX_POS = 16383  # PostgreSQL's largest word position
_TS_MAX_POSITIONS = 256  # and most positions kept per word


@dataclass(frozen=True)
class IndexedText:
    text: str
    tokens: list[str]


def fields_entry(case: Case) -> IndexedText:
    """The case's own fields as one labelled text (企业：…；区市：…); only the values are tokenized."""
    values = [(label, str(v)) for name, label in INDEXED_FIELDS if (v := getattr(case, name, None))]
    return IndexedText(text="；".join(f"{label}：{value}" for label, value in values),
                       tokens=[t for _, value in values for t in index_tokens(value)])


def _ts_lexeme(token: str) -> str:
    return "'" + token.replace("\\", "\\\\").replace("'", "''") + "'"


def tsvector_literal(fields: Sequence[str], said: Sequence[str]) -> str:
    """A tsvector in PostgreSQL's input syntax, word positions kept (for ts_rank) and fields weighted A.

    Built here rather than by to_tsvector so that PostgreSQL's text parser, which does not know Chinese,
    never splits the jieba tokens."""
    positions: dict[str, list[str]] = {}
    for pos, token in enumerate(fields, 1):
        positions.setdefault(token, []).append(f"{min(pos, _TS_MAX_POS)}A")
    for pos, token in enumerate(said, len(fields) + 1):
        positions.setdefault(token, []).append(str(min(pos, _TS_MAX_POS)))
    return " ".join(f"{_ts_lexeme(t)}:{','.join(dict.fromkeys(p[:_TS_MAX_POSITIONS]))}"
                    for t, p in positions.items())


def doc_insert(dialect: str) -> sa.TextClause:
    """INSERT of one case document; params from :func:`doc_params` (executemany-able for bulk loads)."""
    if dialect == "postgresql":
        return sa.text("INSERT INTO search_docs (case_id, fields, said, tsv)"
                       " VALUES (:case_id, :fields, :said, CAST(:tsv AS tsvector))")
    return sa.text("INSERT INTO search_docs (case_id, fields, said) VALUES (:case_id, :fields, :said)")


def doc_params(*, dialect: str, case_id: int, fields: Sequence[str], said: Sequence[str]) -> dict[str, Any]:
    params: dict[str, Any] = {"case_id": case_id, "fields": " ".join(fields), "said": " ".join(said)}
    if dialect == "postgresql":
        params["tsv"] = tsvector_literal(fields, said)
    return params


def index_case(*, db: Session, case: Case, segments: Iterable[Segment] | None = None) -> None:
    """(Re)index a case: its fields entry always, its transcript segments when given (else those already
    indexed stay), then its whole document. Call it again whenever the case's fields change."""
    fields = fields_entry(case)
    stale = sa.delete(SearchEntry).where(SearchEntry.case_id == case.id)
    if segments is None:
        stale = stale.where(SearchEntry.segment_id.is_(None))
    db.execute(stale)
    entries = [SearchEntry(case_id=case.id, segment_id=None, start=None, text=fields.text,
                           tokens=" ".join(fields.tokens))]
    entries += [SearchEntry(case_id=case.id, segment_id=s.id, start=s.start, text=s.text,
                            tokens=" ".join(index_tokens(s.text))) for s in segments or ()]
    db.add_all(entries)
    db.flush()
    said_rows = db.execute(
        sa.select(SearchEntry.tokens)
        .where(SearchEntry.case_id == case.id, SearchEntry.segment_id.is_not(None))
        .order_by(SearchEntry.start, SearchEntry.id)
    ).scalars()
    said = [t for row in said_rows for t in row.split()]
    dialect = db.get_bind().dialect.name
    db.execute(sa.delete(SearchDoc).where(SearchDoc.case_id == case.id))
    db.execute(doc_insert(dialect), doc_params(dialect=dialect, case_id=case.id, fields=fields.tokens, said=said))


def mark_numbers(*, db: Session) -> int:
    """Index again the cases indexed before the tokens of phone and ID card numbers were marked
    (app/search/tokenize.py), so that nobody can match digits they see masked there; returns how many cases.
    For existing data, once (a data migration or an admin command); running it again changes nothing."""
    stale: set[int] = set()
    rows = db.execute(sa.select(SearchEntry).where(SearchEntry.segment_id.is_not(None))).scalars()
    for entry in rows:
        if number_spans(entry.text) and (tokens := " ".join(index_tokens(entry.text))) != entry.tokens:
            entry.tokens = tokens
            stale.add(entry.case_id)
    fields = db.execute(sa.select(SearchEntry.case_id, SearchEntry.text, SearchEntry.tokens)
                        .where(SearchEntry.segment_id.is_(None))).all()
    stale |= {case_id for case_id, text, tokens in fields if number_spans(text) and HIDDEN not in tokens}
    for case_id in sorted(stale):
        case = db.get(Case, case_id)
        if case is not None:
            index_case(db=db, case=case)  # the fields entry again, and the document from the entries
    return len(stale)


# ---- querying ---------------------------------------------------------------------------------------


def _fts5_phrase(token: str) -> str:
    return '"' + token.replace('"', '""') + '"'


def _fts5(term: QueryTerm, masking: Masking) -> str:
    """FTS5 query for one term: the word, or all its parts, each as any of its ``variants`` for the user.
    Every token is a quoted phrase, so nothing a user types (quotes, *, AND/OR/NEAR, parentheses) is FTS5
    syntax."""
    def one(token: str) -> str:
        return "(" + " OR ".join(_fts5_phrase(v) for v in variants(token, masking)) + ")"
    word, parts = one(term.word), [one(p) for p in term.parts]
    return word if not parts else f"({word} OR ({' AND '.join(parts)}))"


def _tsquery(term: QueryTerm, masking: Masking) -> str:
    """tsquery for one term, built from quoted lexemes so no text-search parser is involved."""
    def one(token: str) -> str:
        return "(" + " | ".join(_ts_lexeme(v) for v in variants(token, masking)) + ")"
    word, parts = one(term.word), [one(p) for p in term.parts]
    return word if not parts else f"({word} | ({' & '.join(parts)}))"


@dataclass(frozen=True)
class _Match:
    """The full-text side of a search: the index to join, its case id, the match condition and the score
    (lower ranks higher). The score is evaluated only for rows that pass the filters too."""

    source: sa.FromClause
    case_id: sa.ColumnElement[int]
    condition: sa.ColumnElement[bool]
    score: sa.ColumnElement[float]


def _matching(dialect: str, terms: list[QueryTerm], masking: Masking) -> _Match:
    """Cases whose document holds every term, as the user may match it (no digits of a number they see
    masked: app/search/tokenize.py)."""
    if dialect == "sqlite":
        fts = sa.table("search_docs_fts", sa.column("rowid", sa.Integer))
        whole: sa.ColumnElement[str] = sa.literal_column("search_docs_fts")
        expr = " AND ".join(_fts5(t, masking) for t in terms)
        return _Match(fts, fts.c.rowid, whole.op("MATCH", is_comparison=True)(sa.bindparam("match", expr)),
                      sa.func.bm25(whole, *BM25_WEIGHTS, type_=sa.Float))
    docs = sa.table("search_docs", sa.column("case_id", sa.Integer), sa.column("tsv", postgresql.TSVECTOR))
    query = sa.cast(sa.bindparam("match", " & ".join(_tsquery(t, masking) for t in terms)), postgresql.TSQUERY)
    rank = sa.func.ts_rank(sa.literal_column(f"'{TS_RANK_WEIGHTS}'"), docs.c.tsv, query, type_=sa.Float)
    return _Match(docs, docs.c.case_id, docs.c.tsv.op("@@", is_comparison=True)(query), -rank)


def day_start(day: date) -> datetime:
    """The first instant (UTC) of a calendar day in Asia/Shanghai."""
    return datetime.combine(day, time(), tzinfo=LOCAL_TZ).astimezone(UTC)


def _conditions(filters: SearchFilters) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    for column, value in ((Case.category, filters.category), (Case.district, filters.district),
                          (Case.status, filters.status)):
        if value:
            conditions.append(column == value)
    if filters.enterprise:
        conditions.append(Case.enterprise.icontains(filters.enterprise, autoescape=True))
    if filters.staff:
        conditions.append(sa.or_(Case.created_by == filters.staff, Case.assignee == filters.staff))
    if filters.date_from:
        conditions.append(Case.created_at >= day_start(filters.date_from))
    if filters.date_to:
        conditions.append(Case.created_at < day_start(filters.date_to + timedelta(days=1)))
    return conditions


def highlight(text: str, tokens: Iterable[str], masking: Masking = UNMASKED) -> str:
    """``text`` HTML-escaped, with the words of it that are query tokens wrapped in <mark>…</mark>.

    Words as jieba reads ``text`` (the same reading the index has), so 工 of a query is not marked inside
    加工厂; touching or overlapping marks become one (叉车 + 工 → <mark>叉车工</mark>). Never inside a number
    ``masking`` hides: a mark there would say which digits the stars stand for."""
    wanted = {t.lower() for t in tokens}
    spans: list[list[int]] = []
    for _, start, end in sorted((s for s in visible_spans(text, masking) if s[0] in wanted), key=lambda s: s[1:]):
        if spans and start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    out: list[str] = []
    pos = 0
    for start, end in spans:
        out += [html.escape(text[pos:start]), "<mark>", html.escape(text[start:end]), "</mark>"]
        pos = end
    out.append(html.escape(text[pos:]))
    return "".join(out)


@dataclass(frozen=True)
class _Shown:
    entry: SearchEntry
    speaker: str | None
    words: list[list[Any]] | None  # the segment's timed words, [[start, end, text], …]


def _best_entries(db: Session, case_ids: list[int], terms: list[QueryTerm], tokens: list[str],
                  masking: Masking) -> dict[int, _Shown]:
    """For each case, the entry to show: the most query terms in it, then a transcript segment before the
    case's fields (a hit should open the audio where it was said), then the most query words, the earliest
    second."""
    rows = db.execute(
        sa.select(SearchEntry, Segment.speaker, Segment.words)
        .outerjoin(Segment, Segment.id == SearchEntry.segment_id)
        .where(SearchEntry.case_id.in_(case_ids))
    ).all()

    def score(entry: SearchEntry) -> tuple[int, bool, int, float, int]:
        have = visible_tokens(entry.tokens, masking)
        terms_in = sum(1 for t in terms if t.word in have or (t.parts and set(t.parts) <= have))
        return (terms_in, entry.segment_id is not None, sum(1 for t in tokens if t in have),
                -(entry.start or 0.0), -entry.id)

    best: dict[int, tuple[tuple[int, bool, int, float, int], _Shown]] = {}
    for entry, speaker, words in rows:
        s = score(entry)
        if entry.case_id not in best or s > best[entry.case_id][0]:
            best[entry.case_id] = (s, _Shown(entry, speaker, words))
    return {case_id: shown for case_id, (_, shown) in best.items()}


def said_at(text: str, words: Sequence[Sequence[Any]] | None, tokens: Iterable[str],
            masking: Masking = UNMASKED) -> float | None:
    """The second the first query word in ``text`` (a segment's) was said: the start of the segment's word
    it falls in. None when the segment has no word timings (or they do not spell its text) or no query
    word is in it."""
    if not words or "".join(str(w[2]) for w in words) != text:
        return None
    wanted = {t.lower() for t in tokens}
    first = min((start for token, start, _ in visible_spans(text, masking) if token in wanted), default=None)
    if first is None:
        return None
    pos = 0
    for start, _end, word, *_probability in words:  # [start, end, text], or with the decoder's probability
        pos += len(word)
        if first < pos:
            return float(start)
    return None


def _hit(case: Case, shown: _Shown | None, tokens: list[str], masking: Masking = UNMASKED) -> SearchHit:
    text = shown.entry.text if shown else case.summary
    start = shown.entry.start if shown else None
    if shown and start is not None:  # a segment: open the audio where the word was said, not where it began
        word_start = said_at(text, shown.words, tokens, masking)
        start = start if word_start is None else word_start
    return SearchHit(
        case_id=case.id, case_no=case.case_no, category=case.category, status=case.status,
        enterprise=case.enterprise, district=case.district,
        segment_id=shown.entry.segment_id if shown else None, start=start,
        speaker=shown.speaker if shown else None, text=text, highlighted=highlight(text, tokens, masking),
    )


def _listing(db: Session, q: str, conditions: list[sa.ColumnElement[bool]], limit: int, offset: int) -> SearchResults:
    """No words asked for: the cases the filters leave, newest first."""
    total = db.execute(sa.select(sa.func.count()).select_from(Case).where(*conditions)).scalar_one()
    page = db.execute(sa.select(Case).where(*conditions).order_by(Case.created_at.desc(), Case.id.desc())
                      .limit(limit).offset(offset)).scalars()
    return SearchResults(query=q, tokens=[], total=total, ranked=False, items=[_hit(c, None, []) for c in page])


def search(*, db: Session, q: str, filters: SearchFilters | None = None, limit: int = 20,
           offset: int = 0, masking: Masking = UNMASKED) -> SearchResults:
    """Cases in which every word of ``q`` was said or is in the case's fields, narrowed by ``filters``,
    best first (bm25 / ts_rank, then newest; newest filed first past RANK_LIMIT matches), each with the
    segment that matches best and the second it starts at. A blank ``q`` lists the filtered cases newest first.

    ``masking``: what the searching user sees masked. The digits of a phone or ID card number they see
    masked are never matched, marked or pointed at (whatever a query holds, its results are the same as if
    those digits were other digits), so a search cannot be used to find out what the stars stand for."""
    conditions = _conditions(filters or SearchFilters())
    if not q.strip():
        return _listing(db, q, conditions, limit, offset)
    terms = query_terms(q)
    tokens = list(dict.fromkeys(w for t in terms for w in (t.word, *t.parts)))  # what to highlight
    if not terms:  # only punctuation or symbols: nothing can match
        return SearchResults(query=q, tokens=[], total=0, items=[])
    dialect = db.get_bind().dialect.name
    match = _matching(dialect, terms, masking)
    count = sa.select(sa.func.count()).select_from(match.source)
    if conditions:
        count = count.join(Case, Case.id == match.case_id)
    total = db.execute(count.where(match.condition, *conditions)).scalar_one()
    ranked = total <= RANK_LIMIT
    if total <= offset:
        return SearchResults(query=q, tokens=tokens, total=total, ranked=ranked, items=[])
    order = (match.score, Case.created_at.desc(), Case.id.desc()) if ranked else (match.case_id.desc(),)
    page = list(db.execute(
        sa.select(Case).select_from(match.source).join(Case, Case.id == match.case_id)
        .where(match.condition, *conditions).order_by(*order).limit(limit).offset(offset)
    ).scalars())
    shown = _best_entries(db, [c.id for c in page], terms, tokens, masking)
    return SearchResults(query=q, tokens=tokens, total=total, ranked=ranked,
                         items=[_hit(c, shown.get(c.id), tokens, masking) for c in page])
