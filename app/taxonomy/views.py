from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from app.auth.permissions import Permission
from app.deps import DbSession, require
from app.errors import ApiError
from app.taxonomy import service
from app.taxonomy.models import (
    CategoryRead,
    LexiconList,
    LexiconTermCreate,
    LexiconTermRead,
    TaxonomyRead,
    TaxonomyUpdate,
    TermKind,
)
from app.users.models import User

router = APIRouter(prefix="/api/v1", tags=["taxonomy"])
Reader = Annotated[User, Depends(require(Permission.case_read))]
Admin = Annotated[User, Depends(require(Permission.taxonomy_admin))]


def _error(e: service.TaxonomyError) -> ApiError:
    return ApiError(e.status, e.code, e.message)


@router.get("/taxonomy")
def read_taxonomy(db: DbSession, _user: Reader) -> TaxonomyRead:
    """The case categories in display order, each with its rule terms."""
    return TaxonomyRead(categories=[CategoryRead.model_validate(c) for c in service.categories(db=db)])


@router.put("/taxonomy")
def update_taxonomy(data: TaxonomyUpdate, db: DbSession, user: Admin) -> TaxonomyRead:
    """Replace the taxonomy (admins): categories in order; ones left out are removed, cases keep their name."""
    try:
        rows = service.update(db=db, data=data, actor=f"user:{user.username}")
    except service.TaxonomyError as e:
        raise _error(e) from e
    return TaxonomyRead(categories=[CategoryRead.model_validate(c) for c in rows])


@router.get("/lexicon")
def read_lexicon(
    db: DbSession,
    _user: Reader,
    kind: TermKind | None = None,
    q: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> LexiconList:
    """Domain terms added for speech recognition (law terms, places, enterprises), and enterprises on file."""
    total, rows = service.lexicon(db=db, kind=kind.value if kind else None, q=q, limit=limit, offset=offset)
    return LexiconList.build(total, rows, service.enterprises_on_file(db=db))


@router.post("/lexicon", status_code=201)
def add_lexicon_term(data: LexiconTermCreate, db: DbSession, user: Admin) -> LexiconTermRead:
    try:
        row = service.add_term(db=db, term=data.term, kind=data.kind, actor=f"user:{user.username}")
    except service.TaxonomyError as e:
        raise _error(e) from e
    return LexiconTermRead.model_validate(row)


@router.delete("/lexicon/{term_id}", status_code=204)
def remove_lexicon_term(term_id: int, db: DbSession, user: Admin) -> Response:
    try:
        service.remove_term(db=db, term_id=term_id, actor=f"user:{user.username}")
    except service.TaxonomyError as e:
        raise _error(e) from e
    return Response(status_code=204)
