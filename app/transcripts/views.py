"""Transcript corrections: people fix what the machine heard, one segment at a time."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from app.auth.permissions import Permission
from app.cases import access
from app.deps import AppSettings, CurrentDatabase, require
from app.errors import ApiError
from app.transcripts import flows
from app.transcripts import service as transcripts
from app.transcripts.models import CorrectionResult, SegmentCorrection
from app.users.models import User

router = APIRouter(prefix="/api/v1/transcripts", tags=["transcripts"])
Editor = Annotated[User, Depends(require(Permission.case_update))]  # whoever may edit cases corrects transcripts


@router.patch("/{transcript_id}/segments/{idx}", response_model=CorrectionResult, responses={
    409: {"description": "改动基于旧版本：current 为此段当前内容（谁改的、改成什么），原改动未写入"},
    422: {"description": "校对内容为空、过长或不是文字"}})
def correct_segment(transcript_id: int, idx: int, body: SegmentCorrection, request: Request,
                    database: CurrentDatabase, user: Editor, settings: AppSettings) -> CorrectionResult | JSONResponse:
    """Correct one segment's text ({text, version}: the version it was read at). The machine's text is kept,
    the version bumped and the change audited (transcript.corrected {segment, before, after, version}); the
    words are timed again on the audio, corrected terms join the lexicon, and the case's suggested fields
    are extracted again, leaving the ones people set. A stale version is 409 with the segment as it is now.
    Only for those who may change the case (its assignee, anyone while it is in the pool, managers)."""
    access.check_transcript(database=database, request=request, user=user, transcript_id=transcript_id)
    try:
        return flows.correct_segment(database=database, settings=settings, transcript_id=transcript_id, idx=idx,
                                     text=body.text, version=body.version, username=user.username, role=user.role)
    except flows.SegmentNotFound as e:
        raise ApiError(404, "not_found", "转写段落不存在") from e
    except flows.HiddenNumbers as e:
        raise ApiError(403, "masked_segment", "此段含有对您隐藏的号码，不能校对（请由有权查看号码的人员修改）") from e
    except transcripts.InvalidCorrection as e:
        raise ApiError(422, "invalid", str(e)) from e
    except flows.Conflict as e:
        return JSONResponse(status_code=409, content={
            "code": "version_conflict", "detail": e.message, "current": e.current.model_dump(mode="json")})
