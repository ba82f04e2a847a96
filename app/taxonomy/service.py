"""Taxonomy and lexicon: read for categorization and ASR correction, edited by admins, every change audited."""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.cases.categorize import CategoryRule
from app.cases.models import Case
from app.taxonomy.models import LexiconTerm, TaxonomyCategory, TaxonomyUpdate, TermKind
from asr.lexicon import load_terms

_TEXT = re.compile(r"[\u3400-\u9fffA-Za-z]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class TaxonomyError(Exception):
    status: int
    code: str
    message: str

    def __str__(self) -> str:
        return self.message


# --- categories -----------------------------------------------------------------------------------------


def categories(*, db: Session, active_only: bool = False) -> list[TaxonomyCategory]:
    stmt = sa.select(TaxonomyCategory).order_by(TaxonomyCategory.position, TaxonomyCategory.id)
    if active_only:
        stmt = stmt.where(TaxonomyCategory.active.is_(True))
    return list(db.execute(stmt).scalars())


def rules(*, db: Session) -> list[CategoryRule] | None:
    """The active categories for the categorizer; None while the table is empty (built-in defaults apply)."""
    rows = categories(db=db, active_only=True)
    return [CategoryRule(r.name, tuple(r.terms or ()), r.description) for r in rows] or None


def _snapshot(row: TaxonomyCategory) -> dict[str, object]:
    return {"description": row.description, "terms": list(row.terms or []), "position": row.position,
            "active": row.active}


def update(*, db: Session, data: TaxonomyUpdate, actor: str) -> list[TaxonomyCategory]:
    """Replace the taxonomy with ``data`` (its order is the display order), auditing what changed."""
    names = [c.name for c in data.categories]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise TaxonomyError(422, "duplicate_category", f"分类名称重复：{'、'.join(dupes)}")
    if not any(c.active for c in data.categories):
        raise TaxonomyError(422, "no_active_category", "至少需要保留一个启用的分类")
    existing = {r.name: r for r in categories(db=db)}
    added, changed = [], {}
    for position, item in enumerate(data.categories):
        row = existing.pop(item.name, None)
        values = {"description": item.description, "terms": list(item.terms), "position": position,
                  "active": item.active}
        if row is None:
            db.add(TaxonomyCategory(name=item.name, **values))
            added.append(item.name)
            continue
        before = _snapshot(row)
        diff = {k: {"before": before[k], "after": v} for k, v in values.items() if before[k] != v}
        if diff:
            for k, v in values.items():
                setattr(row, k, v)
            changed[item.name] = diff
    removed = sorted(existing)
    for row in existing.values():
        db.delete(row)
    db.flush()
    if added or removed or changed:
        audit.record(db=db, actor=actor, action="taxonomy.updated", subject_type="taxonomy", subject_id="-",
                     details={"added": added, "removed": removed, "changed": changed})
    return categories(db=db)


# --- lexicon --------------------------------------------------------------------------------------------


def lexicon(*, db: Session, kind: str | None = None, q: str | None = None, limit: int = 200,
            offset: int = 0) -> tuple[int, list[LexiconTerm]]:
    stmt = sa.select(LexiconTerm)
    if kind:
        stmt = stmt.where(LexiconTerm.kind == kind)
    if q:
        stmt = stmt.where(LexiconTerm.term.contains(q, autoescape=True))
    total = db.execute(sa.select(sa.func.count()).select_from(stmt.subquery())).scalar_one()
    rows = db.execute(stmt.order_by(LexiconTerm.kind, LexiconTerm.term).limit(limit).offset(offset)).scalars()
    return int(total), list(rows)


def add_term(*, db: Session, term: str, kind: TermKind, actor: str) -> LexiconTerm:
    term = term.strip()
    if _CONTROL.search(term) or not _TEXT.search(term):
        raise TaxonomyError(422, "invalid_term", "词条须为中文或字母，不能包含换行等控制字符")
    if db.execute(sa.select(LexiconTerm.id).where(LexiconTerm.term == term)).first():
        raise TaxonomyError(409, "term_exists", f"词条已存在：{term}")
    if term in set(load_terms()):
        raise TaxonomyError(409, "term_builtin", f"内置词表已包含：{term}")
    row = LexiconTerm(term=term, kind=kind.value, added_by=actor)
    db.add(row)
    db.flush()
    audit.record(db=db, actor=actor, action="lexicon.added", subject_type="lexicon", subject_id=row.id,
                 details={"term": term, "kind": kind.value})
    return row


def remove_term(*, db: Session, term_id: int, actor: str) -> None:
    row = db.get(LexiconTerm, term_id)
    if row is None:
        raise TaxonomyError(404, "not_found", "词条不存在")
    audit.record(db=db, actor=actor, action="lexicon.removed", subject_type="lexicon", subject_id=row.id,
                 details={"term": row.term, "kind": row.kind})
    db.delete(row)
    db.flush()


def enterprises_on_file(*, db: Session, limit: int = 5000) -> list[str]:
    """Distinct enterprise names of cases a person confirmed or linked to the registry, most recent first
    (they feed the corrector and extraction). A name the machine heard and nobody confirmed is never on
    file: a misheard name would otherwise pull later calls about other companies onto it."""
    latest = sa.func.max(Case.id)
    stmt = (sa.select(Case.enterprise).where(Case.enterprise.is_not(None), Case.enterprise != "",
                                             sa.or_(Case.confirmed_by.is_not(None), Case.enterprise_id.is_not(None)))
            .group_by(Case.enterprise).order_by(latest.desc()).limit(limit))
    return [str(e) for e in db.execute(stmt).scalars()]


def known_enterprises(*, db: Session) -> list[str]:
    """Names that near-miss enterprise names are corrected to: lexicon enterprise terms and names on file."""
    terms = db.execute(sa.select(LexiconTerm.term).where(LexiconTerm.kind == TermKind.enterprise.value)).scalars()
    return list(dict.fromkeys([*terms, *enterprises_on_file(db=db)]))


def asr_terms(*, db: Session) -> tuple[str, ...]:
    """Extra terms for the ASR corrector (AsrOptions.extra_terms): the lexicon table and names on file."""
    terms = db.execute(sa.select(LexiconTerm.term).order_by(LexiconTerm.term)).scalars()
    return tuple(dict.fromkeys([*terms, *enterprises_on_file(db=db)]))


def category_names(*, db: Session) -> list[str]:
    """The names a case may be filed under: the active categories, or the built-in taxonomy while empty."""
    from app.cases.categorize import DEFAULT_TAXONOMY

    return [r.name for r in rules(db=db) or DEFAULT_TAXONOMY]
