from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile
from fastapi.responses import FileResponse

from app.audit import service as audit
from app.auth.permissions import Permission
from app.deps import AppSettings, CurrentDatabase, DbSession, Queue, require
from app.errors import ApiError
from app.recordings import service
from app.recordings.models import CaseChannel, Recording, RecordingCreated, RecordingRead
from app.users.models import User
from asr.audio import AudioError
from asr.types import Layout

router = APIRouter(prefix="/api/v1/recordings", tags=["recordings"])
Uploader = Annotated[User, Depends(require(Permission.recording_upload))]
Reader = Annotated[User, Depends(require(Permission.case_read))]
Player = Annotated[User, Depends(require(Permission.recording_play))]
Downloader = Annotated[User, Depends(require(Permission.recording_download))]


@router.post("", status_code=201, responses={200: {"description": "The same audio was already on file"}})
def upload(
    request: Request,
    response: Response,
    settings: AppSettings,
    database: CurrentDatabase,
    queue: Queue,
    user: Uploader,
    file: Annotated[UploadFile, File(description="音频文件（WAV/MP3/…；通话录音为双声道）")],
    layout: Annotated[Layout | None, Form(description="双声道排列：caller-left（默认）/agent-left/mono")] = None,
    channel: Annotated[CaseChannel, Form(description="来源：来电/来访/调解/开庭/上传")] = CaseChannel.upload,
) -> RecordingCreated:
    """Upload a recording; it is stored once per content (sha256) and queued for transcription."""
    declared = int(request.headers.get("content-length") or 0)
    if declared > settings.max_upload_bytes + 1024 * 1024:
        raise ApiError(413, "too_large", f"文件超过上传上限 {settings.max_upload_mb} MB")
    try:
        with service.staged(settings, file.file) as staged:
            result = service.ingest(
                database=database, settings=settings, staged_file=staged, original_name=file.filename or "upload",
                layout=layout or settings.default_layout, channel=channel, actor=f"user:{user.username}",
            )
    except service.UploadTooLarge as e:
        raise ApiError(413, "too_large", str(e)) from e
    except AudioError as e:
        raise ApiError(422, e.code, str(e)) from e
    if result.duplicate:
        response.status_code = 200
    else:
        queue.enqueue_transcription(result.recording.id)
    read = RecordingRead.model_validate(result.recording).model_dump()
    return RecordingCreated.model_validate({**read, "duplicate": result.duplicate})


def _recording(db: DbSession, recording_id: int) -> Recording:
    rec = service.get(db=db, recording_id=recording_id)
    if rec is None:
        raise ApiError(404, "not_found", "录音不存在")
    return rec


@router.get("/{recording_id}")
def read(recording_id: int, db: DbSession, user: Reader) -> RecordingRead:
    rec = _recording(db, recording_id)
    audit.record(db=db, actor=f"user:{user.username}", action="recording.read", subject_type="recording",
                 subject_id=rec.id)
    return RecordingRead.model_validate(rec)


def _audio_response(
    request: Request, db: DbSession, settings: AppSettings, username: str, recording_id: int, *, download: bool
) -> FileResponse:
    rec = _recording(db, recording_id)
    path = service.file_path(settings, rec)
    if not path.exists():
        raise ApiError(410, "audio_missing", "录音文件缺失，请联系管理员")
    audit.record(
        db=db, actor=f"user:{username}", action="recording.downloaded" if download else "recording.played",
        subject_type="recording", subject_id=rec.id, details={"range": request.headers.get("range")},
    )
    db.commit()  # the read is on record before a byte is sent
    media = {"wav": "audio/wav", "mp3": "audio/mpeg", "ogg": "audio/ogg", "flac": "audio/flac"}
    filename = f"recording-{rec.id}{path.suffix}" if download else None
    return FileResponse(path, media_type=media.get(rec.format, "application/octet-stream"), filename=filename)


@router.get("/{recording_id}/audio", response_class=FileResponse)
def audio(
    recording_id: int, request: Request, db: DbSession, settings: AppSettings,
    user: Player,
) -> FileResponse:
    """The audio, for players: HTTP Range requests are answered with 206 so a player can seek."""
    return _audio_response(request, db, settings, user.username, recording_id, download=False)


@router.get("/{recording_id}/download", response_class=FileResponse)
def download(
    recording_id: int, request: Request, db: DbSession, settings: AppSettings,
    user: Downloader,
) -> FileResponse:
    """The original file as an attachment (audited)."""
    return _audio_response(request, db, settings, user.username, recording_id, download=True)
