"""Downloads of a case (工单) and of a transcript as files: whoever may read one may export it, with the numbers
their role may not see masked in the file itself, and every export audited (app/exports/service.py)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from app.auth.permissions import Masking, Permission
from app.deps import CurrentDatabase, require
from app.errors import ApiError
from app.exports import service
from app.exports.service import CaseFormat, TranscriptFormat
from app.users.models import User

router = APIRouter(prefix="/api/v1", tags=["exports"])
CaseReader = Annotated[User, Depends(require(Permission.case_read))]  # as GET /cases/{id}
TranscriptReader = Annotated[User, Depends(require(Permission.transcript_read))]


def content_disposition(filename: str, ascii_filename: str) -> str:
    """``attachment`` with an ASCII ``filename`` for old clients and the real (Chinese) name as RFC 5987
    ``filename*``: a raw Chinese header value cannot be sent (HTTP headers are latin-1)."""
    return f"attachment; filename=\"{ascii_filename}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _download(out: service.Exported) -> Response:
    return Response(content=out.content, media_type=out.media_type, headers={
        "Content-Disposition": content_disposition(out.filename, out.ascii_filename),
        "X-Content-SHA256": out.sha256, "Cache-Control": "no-store"})


_FILE: dict[int | str, dict[str, Any]] = {
    200: {"description": "文件（Content-Disposition 带 RFC 5987 filename*），导出已记入审计",
          "content": {t: {} for t in service.MEDIA_TYPES.values()}},
    404: {"description": "工单或转写不存在"},
}


@router.get("/cases/{case_id}/export", response_class=Response, responses=_FILE)
def export_case(
    case_id: int, database: CurrentDatabase, user: CaseReader,
    fmt: Annotated[CaseFormat, Query(alias="format", description="pdf 或 docx")] = CaseFormat.pdf,
) -> Response:
    """The case as a PDF or DOCX to print and sign: fields, times (Beijing), caller (masked per role),
    summary, the facts and where they were said, the workflow history and a signature block. Audited as
    ``case.exported`` {format, sha256}."""
    try:
        out = service.export_case(database=database, case_id=case_id, fmt=fmt, masking=Masking.for_role(user.role),
                                  username=user.username)
    except service.NotFound as e:
        raise ApiError(404, "not_found", "工单不存在") from e
    return _download(out)


@router.get("/transcripts/{transcript_id}/export", response_class=Response, responses=_FILE)
def export_transcript(
    transcript_id: int, database: CurrentDatabase, user: TranscriptReader,
    fmt: Annotated[TranscriptFormat, Query(alias="format", description="docx、pdf、srt 或 txt")] = (
        TranscriptFormat.docx),
) -> Response:
    """The transcript (corrected text where staff corrected it) with speaker labels and times, and the
    recording's file name and sha256 to check the audio against. Audited as ``transcript.exported``."""
    try:
        out = service.export_transcript(database=database, transcript_id=transcript_id, fmt=fmt,
                                        masking=Masking.for_role(user.role), username=user.username)
    except service.NotFound as e:
        raise ApiError(404, "not_found", "转写记录不存在") from e
    return _download(out)
