from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from app.audit import service as audit
from app.auth.permissions import Permission
from app.cases import access
from app.cases.models import Case
from app.deps import CurrentDatabase, DbSession, require
from app.enterprises import integrity, service
from app.enterprises.models import (
    AliasRead,
    Candidate,
    CaseEnterpriseLink,
    Colour,
    DistributionRead,
    EnterpriseBase,
    EnterpriseCase,
    EnterpriseListItem,
    EnterprisePagination,
    EnterpriseRead,
    ImportResult,
    ObjectionDecisionIn,
    ObjectionIn,
    ObjectionRead,
    OverrideIn,
    RatingRead,
    ResolveRead,
    RulesetIn,
    RulesetRead,
)
from app.errors import ApiError
from app.users.models import User

router = APIRouter(prefix="/api/v1", tags=["enterprises"])
Reader = Annotated[User, Depends(require(Permission.enterprise_read))]
Admin = Annotated[User, Depends(require(Permission.enterprise_admin))]
Editor = Annotated[User, Depends(require(Permission.case_update))]
Rater = Annotated[User, Depends(require(Permission.enterprise_rate))]
StatsReader = Annotated[User, Depends(require(Permission.stats_read))]
MAX_IMPORT_BYTES = 200 * 2**20  # a 350,000-row registry as CSV is ~60 MB
MAX_ERRORS_SHOWN = 1000


def _error(e: service.EnterpriseError) -> ApiError:
    return ApiError(e.status, e.code, e.message)


@router.get("/enterprises")
def list_enterprises(
    db: DbSession,
    _user: Reader,
    q: Annotated[str | None, Query(max_length=128)] = None,
    district: Annotated[str | None, Query(max_length=16)] = None,
    colour: Colour | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> EnterprisePagination:
    """Registered enterprises: name, alias or 统一社会信用代码 containing ``q``; by district; by the colour shown
    (an override if any, else the computed one; 绿 when never rated), with that colour and the score."""
    total, rows = integrity.search(db=db, q=q, district=district, colour=colour, limit=limit, offset=offset)
    return EnterprisePagination(total=total, items=[
        EnterpriseListItem.model_validate({**EnterpriseBase.model_validate(e).model_dump(), "cases": n,
                                           "colour": shown, "score": value})
        for e, n, shown, value in rows])


@router.get("/enterprises/resolve")
def resolve_enterprise(
    db: DbSession,
    _user: Reader,
    name: Annotated[str, Query(min_length=1, max_length=128)],
    limit: Annotated[int, Query(ge=1, le=20)] = 5,
) -> ResolveRead:
    """Registered enterprises a heard or typed name may be, best first with a score; none when none is close."""
    found = service.resolver(db=db).resolve(name, limit=limit) or []
    districts = {}
    if found:
        districts = {e.id: e.district for e in (service.get(db=db, enterprise_id=m.enterprise_id) for m in found)
                     if e is not None}
    return ResolveRead(heard=name, candidates=[
        Candidate(enterprise_id=m.enterprise_id, name=m.name, matched=m.matched, score=m.score,
                  district=districts.get(m.enterprise_id)) for m in found])


@router.post("/enterprises/import", response_model=None)
async def import_enterprises(file: UploadFile, database: CurrentDatabase, user: Admin) -> ImportResult | JSONResponse:
    """Import a registry file (CSV in UTF-8 or GBK, or XLSX), all rows or none; 422 lists every bad row."""
    data = await file.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise ApiError(413, "too_large", f"文件过大（最多 {MAX_IMPORT_BYTES // 2**20} MB）")

    def work() -> ImportResult:
        with database.session() as db:
            return service.import_file(db=db, path_or_bytes=data, actor=f"user:{user.username}",
                                       filename=file.filename)

    try:
        return await run_in_threadpool(work)
    except service.ImportFailed as e:
        return JSONResponse(status_code=422, content={
            "code": "import_failed", "detail": str(e), "total_errors": len(e.errors),
            "errors": [err.model_dump() for err in e.errors[:MAX_ERRORS_SHOWN]]})


@router.get("/enterprises/{enterprise_id}")
def read_enterprise(enterprise_id: int, db: DbSession, user: Reader) -> EnterpriseRead:
    """One enterprise with its aliases and its cases: by month, by category, amounts and workers; its integrity
    colour and score with the deductions behind them, the override, the monthly history with what changed
    (为何变色) and the objections. Audited as a read of the cases it lists (``enterprise.read``)."""
    e = service.get(db=db, enterprise_id=enterprise_id)
    if e is None:
        raise ApiError(404, "not_found", "企业不存在")
    cases = service.cases_of(db=db, enterprise_id=e.id)
    audit.record(db=db, actor=f"user:{user.username}", action="enterprise.read", subject_type="enterprise",
                 subject_id=e.id, details={"cases": [c.id for c in cases]})
    rated = integrity.rating(db=db, enterprise_id=e.id)
    return EnterpriseRead.model_validate({
        **EnterpriseBase.model_validate(e).model_dump(), "created_at": e.created_at, "updated_at": e.updated_at,
        "aliases": [AliasRead.model_validate(a) for a in service.aliases(db=db, enterprise_id=e.id)],
        "stats": service.stats(db=db, enterprise_id=e.id),
        "recent_cases": [EnterpriseCase.model_validate(c) for c in cases],
        **rated.model_dump(include={"colour", "score", "computed_colour", "ruleset_version", "computed_at",
                                    "deductions", "override"}),
        "history": integrity.history(db=db, enterprise_id=e.id),
        "objections": [ObjectionRead.model_validate(o) for o in integrity.objections(db=db, enterprise_id=e.id)],
    })


@router.put("/cases/{case_id}/enterprise")
def link_case(case_id: int, data: CaseEnterpriseLink, request: Request, db: DbSession,
              user: Editor) -> dict[str, int | str | None]:
    """Link a case to a registered enterprise (or unlink it); the heard name is kept as an alias. Only for
    those who may change the case (app/cases/access.py)."""
    case = db.get(Case, case_id, with_for_update=True)
    if case is None:
        raise ApiError(404, "not_found", "工单不存在")
    access.check(db=db, request=request, user=user, case=case)
    try:
        service.link_case(db=db, case=case, enterprise_id=data.enterprise_id, actor=f"user:{user.username}",
                          heard_name=data.heard_name)
    except service.EnterpriseError as e:
        raise _error(e) from e
    return {"case_id": case.id, "enterprise_id": case.enterprise_id, "enterprise": case.enterprise}


# --- integrity (企业诚信): objections, overrides, the rule set, the distribution ---------------------------


@router.post("/enterprises/{enterprise_id}/objections", status_code=201)
def raise_objection(enterprise_id: int, data: ObjectionIn, db: DbSession, user: Rater) -> ObjectionRead:
    """Record an objection (异议) to the enterprise's colour; it stays 待处理 until decided."""
    try:
        row = integrity.create_objection(db=db, enterprise_id=enterprise_id, reason=data.reason,
                                         actor=f"user:{user.username}")
    except service.EnterpriseError as e:
        raise _error(e) from e
    return ObjectionRead.model_validate(row)


@router.post("/enterprises/{enterprise_id}/objections/{objection_id}/decision")
def decide_objection(enterprise_id: int, objection_id: int, data: ObjectionDecisionIn, db: DbSession,
                     user: Rater) -> ObjectionRead:
    """Decide a pending objection: 成立 or 不成立, with the outcome; 409 when it was already decided."""
    try:
        row = integrity.decide_objection(db=db, enterprise_id=enterprise_id, objection_id=objection_id,
                                         status=data.status, outcome=data.outcome, actor=f"user:{user.username}")
    except service.EnterpriseError as e:
        raise _error(e) from e
    return ObjectionRead.model_validate(row)


@router.put("/enterprises/{enterprise_id}/colour-override")
def override_colour(enterprise_id: int, data: OverrideIn, db: DbSession, user: Rater) -> RatingRead:
    """Set the colour shown for the enterprise by hand (null: back to the computed one); a reason is required."""
    try:
        integrity.override(db=db, enterprise_id=enterprise_id, colour=data.colour, reason=data.reason,
                           actor=f"user:{user.username}")
    except service.EnterpriseError as e:
        raise _error(e) from e
    return integrity.rating(db=db, enterprise_id=enterprise_id)


@router.get("/integrity/ruleset")
def read_ruleset(db: DbSession, _user: Reader) -> RulesetRead:
    """The scoring rules in force (deductions, bonuses, colour bands, vetoes) and their version."""
    return RulesetRead.model_validate(integrity.ensure_default(db=db))


@router.post("/integrity/ruleset", status_code=201)
def publish_ruleset(data: RulesetIn, db: DbSession, user: Admin) -> RulesetRead:
    """Publish a new version of the rules and rescore every rated enterprise with it (monthly snapshots
    already kept stay as they were computed)."""
    actor = f"user:{user.username}"
    try:
        row = integrity.publish(db=db, rules=data.rules, actor=actor, note=data.note)
    except service.EnterpriseError as e:
        raise _error(e) from e
    integrity.rescore_all(db=db, actor=actor)
    return RulesetRead.model_validate(row)


@router.get("/integrity/distribution")
def colour_distribution(
    db: DbSession,
    _user: StatsReader,
    district: Annotated[str | None, Query(max_length=16)] = None,
) -> DistributionRead:
    """How many registered enterprises show each colour (红 橙 黄 蓝 绿), optionally in one district."""
    return integrity.distribution(db=db, district=district)
