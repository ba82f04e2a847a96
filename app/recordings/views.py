from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Annotated, Any, get_args

import anyio
from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import TypeAdapter, ValidationError
from starlette.requests import ClientDisconnect

from app.audit import service as audit
from app.auth.permissions import Permission, allowed
from app.deps import AppSettings, CurrentDatabase, DbSession, Queue, require
from app.errors import ApiError
from app.hardening import DISK_FULL, disk_full
from app.recordings import crypto, files, ranges, retention, service, storage
from app.recordings.models import CaseChannel, Recording, RecordingCreated, RecordingRead
from app.uploads import FORM_SLACK, FormError, StreamedForm, multipart_body, read_form
from app.users.models import User
from asr.audio import AudioError
from asr.types import Layout

log = logging.getLogger("hotline.recordings")
router = APIRouter(prefix="/api/v1/recordings", tags=["recordings"])
Uploader = Annotated[User, Depends(require(Permission.recording_upload))]
Reader = Annotated[User, Depends(require(Permission.case_read))]
Player = Annotated[User, Depends(require(Permission.recording_play))]
Downloader = Annotated[User, Depends(require(Permission.recording_download))]
# The most bytes one answer of /audio carries to a user who may play but not download: about a minute of a
# call recording (8 kHz μ-law stereo, 16 kB/s). Players ask for the rest as they need it.
PLAY_CHUNK_BYTES = 1 << 20


_UPLOAD_FORM = multipart_body({
    "type": "object", "required": ["file"], "title": "RecordingUpload",
    "properties": {
        "file": {"type": "string", "format": "binary", "title": "File",
                 "description": "音频文件（WAV/MP3/…；通话录音为双声道）"},
        "layout": {"anyOf": [{"type": "string", "enum": list(get_args(Layout))}, {"type": "null"}],
                   "title": "Layout", "description": "双声道排列：caller-left（默认）/agent-left/mono"},
        "channel": {"type": "string", "enum": [c.value for c in CaseChannel], "default": CaseChannel.upload.value,
                    "title": "Channel", "description": "来源：来电/来访/调解/开庭/上传"},
    },
})
_LAYOUT: TypeAdapter[Layout | None] = TypeAdapter(Layout | None)
_CHANNEL = TypeAdapter(CaseChannel)


@router.post("", status_code=201, openapi_extra=_UPLOAD_FORM, responses={
    200: {"description": "The same audio was already on file"}, 413: {"description": "文件超过上传上限"},
    503: {"description": "录音存储暂不可用（未保存，请重试）"}, 507: {"description": "服务器存储空间已满（未保存）"}})
def upload(
    request: Request,
    response: Response,
    settings: AppSettings,
    database: CurrentDatabase,
    queue: Queue,
    user: Uploader,
) -> RecordingCreated:
    """Upload a recording (multipart form: ``file``, optional ``layout`` and ``channel``); it is stored once per
    content (sha256) and queued for transcription.

    The login and the permission are checked before any of the body is read, and a body over
    HOTLINE_MAX_UPLOAD_MB is refused as it streams (app/uploads.py); the file goes straight from the request
    into its staged file (no other copy on disk). A full disk gives 507, nothing half-stored."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.max_upload_bytes + FORM_SLACK:
        raise ApiError(413, "too_large", f"文件超过上传上限 {settings.max_upload_mb} MB")
    try:
        with service.stage(settings) as into:
            form = read_form(request.headers.get("content-type", ""), _body(request), file_field="file",
                             sink=into.write)
            layout, channel = _form_values(form)
            staged = into.finish()
            result = service.ingest(
                database=database, settings=settings, staged_file=staged, original_name=form.filename or "upload",
                layout=layout or settings.default_layout, channel=channel, actor=f"user:{user.username}",
            )
    except FormError as e:
        raise ApiError(400, "bad_form", str(e)) from e
    except ClientDisconnect as e:  # the client went away mid-way (or was cut off at the limit: 413, app/uploads.py)
        raise ApiError(400, "upload_interrupted", "上传中断，未保存，请重试") from e
    except service.UploadTooLarge as e:
        raise ApiError(413, "too_large", str(e)) from e
    except AudioError as e:
        raise ApiError(422, e.code, str(e)) from e
    except service.DeletedByRetention as e:
        raise ApiError(409, "deleted_by_retention", str(e)) from e
    except storage.StorageUnavailable as e:  # nothing was put on record: the client sends it again later
        raise ApiError(503, "storage_unavailable", f"录音存储暂时无法访问，本次上传未保存，请稍后重试（{e}）",
                       retry_after=30) from e
    except Exception as e:  # staging, sealing, storing or the row: a full disk is said as such
        if not disk_full(e):
            raise
        log.error("upload by %s refused: disk full (%s)", user.username, e)
        raise ApiError(507, "insufficient_storage", DISK_FULL) from e
    if result.duplicate:
        response.status_code = 200
        if service.never_sent(result.recording):  # sent again after the queue was down: queue its job now
            queue.enqueue_transcription(result.recording.id)  # (claim() makes a second message harmless)
    else:
        queue.enqueue_transcription(result.recording.id)
    read = RecordingRead.model_validate(result.recording).model_dump()
    return RecordingCreated.model_validate({**read, "duplicate": result.duplicate})


def _body(request: Request) -> Iterator[bytes]:
    """The request body as it arrives, read from this worker thread (the route is sync: staging, probing and
    storing block). A client that goes away ends it with ``ClientDisconnect``."""
    stream = request.stream()

    async def next_chunk() -> bytes | None:
        try:
            return await anext(stream)
        except StopAsyncIteration:
            return None

    while (chunk := anyio.from_thread.run(next_chunk)) is not None:
        if chunk:
            yield chunk


def _form_values(form: StreamedForm) -> tuple[Layout | None, CaseChannel]:
    """``layout`` and ``channel`` checked as FastAPI would (422 ``invalid`` naming the field), the file required."""
    errors: list[dict[str, Any]] = []
    if form.filename is None:
        errors.append({"type": "missing", "loc": ("body", "file"), "msg": "Field required"})
    values: dict[str, Any] = {}
    for name, adapter, default in (("layout", _LAYOUT, None), ("channel", _CHANNEL, CaseChannel.upload)):
        raw = form.fields.get(name)
        if raw in (None, ""):  # left out (or sent empty, which FastAPI's forms take as left out)
            values[name] = default
            continue
        try:
            values[name] = adapter.validate_python(raw)
        except ValidationError as e:
            errors.extend({**err, "loc": ("body", name, *err["loc"])} for err in e.errors(include_input=False))
    if errors:
        raise RequestValidationError(errors)
    return values["layout"], values["channel"]


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
    request: Request, db: DbSession, settings: AppSettings, username: str, recording_id: int, *, download: bool,
    pieces_only: bool = False,
) -> StreamingResponse:
    """The audio streamed through the API, decrypted on the way, with HTTP Range (206) for seeking.

    Streamed rather than redirected to a presigned URL: the store holds only ciphertext, and every read is
    audited under the user who made it (a presigned URL is a bearer link nobody can audit or take back).
    ``pieces_only`` (a user who may play but not download): a request for the whole file is refused (403,
    audited as ``auth.denied``), and a range is answered with at most PLAY_CHUNK_BYTES of it."""
    rec = _recording(db, recording_id)
    if rec.deleted_at is not None:  # a tombstone (app/recordings/retention.py): the audio is gone for good
        raise ApiError(410, "deleted_by_retention", retention.deleted_message(rec.deleted_at))
    asked = request.headers.get("range")
    span = ranges.parse(asked, rec.size_bytes)
    if span is not None and pieces_only and not span.partial:  # no Range (or not one byte range): the file
        audit.record(db=db, actor=f"user:{username}", action="auth.denied", subject_type="recording",
                     subject_id=rec.id, details={"method": request.method, "path": request.url.path[:128],
                                                 "permission": Permission.recording_download.value,
                                                 "range": asked})
        db.commit()  # on record, though the error rolls the request back
        raise ApiError(403, "forbidden", "您没有下载录音的权限：录音只能在播放器中按段播放（每次请求须带 Range）")
    if span is None:
        raise ApiError(416, "range_not_satisfiable", f"请求的范围超出录音大小（{rec.size_bytes} 字节）",
                       size=rec.size_bytes)
    if pieces_only and span.end - span.start > PLAY_CHUNK_BYTES:  # a short 206: the player asks again
        span = ranges.Span(span.start, span.start + PLAY_CHUNK_BYTES, True)
    try:
        pieces = files.read(settings, rec, span.start, span.end)
        first = next(pieces, b"")  # a missing, unreachable or tampered object fails here, before any header
    except storage.ObjectMissing as e:
        raise ApiError(410, "audio_missing", "录音文件缺失，请联系管理员") from e
    except storage.StorageUnavailable as e:
        raise ApiError(503, "storage_unavailable", f"录音存储暂时无法访问，请稍后重试（{e}）", retry_after=30) from e
    except crypto.CryptoError as e:
        _integrity_failed(db, rec, username, str(e))
        raise ApiError(409, "audio_tampered",
                       "录音文件校验失败（可能被篡改或损坏），已停止播放并记录，请联系管理员") from e
    audit.record(
        db=db, actor=f"user:{username}", action="recording.downloaded" if download else "recording.played",
        subject_type="recording", subject_id=rec.id,
        details={"range": asked, "bytes": f"{span.start}-{span.end - 1}", "size": rec.size_bytes},
    )
    db.commit()  # the read is on record before a byte is sent
    media = {"wav": "audio/wav", "mp3": "audio/mpeg", "ogg": "audio/ogg", "flac": "audio/flac"}
    headers = {"Accept-Ranges": "bytes", "Content-Length": str(span.end - span.start)}
    if span.partial:
        headers["Content-Range"] = f"bytes {span.start}-{span.end - 1}/{rec.size_bytes}"
    if download:
        headers["Content-Disposition"] = f'attachment; filename="recording-{rec.id}{files.suffix(rec)}"'
    return StreamingResponse(_rest(first, pieces, rec.id), status_code=206 if span.partial else 200,
                             media_type=media.get(rec.format, "application/octet-stream"), headers=headers)


def _rest(first: bytes, pieces: Iterator[bytes], recording_id: int) -> Iterator[bytes]:
    """The stream after its first piece; a chunk failing authentication mid-way ends the response short
    (the client sees a cut-off transfer, never the tampered bytes)."""
    yield first
    try:
        yield from pieces
    except (crypto.CryptoError, storage.StorageError) as e:
        log.error("recording %s: stream stopped: %s", recording_id, e)


def _integrity_failed(db: DbSession, rec: Recording, username: str, why: str) -> None:
    audit.record(db=db, actor=f"user:{username}", action="recording.integrity_failed", subject_type="recording",
                 subject_id=rec.id, details={"error": why[:500]})
    db.commit()
    log.error("recording %s failed its integrity check when read by %s: %s", rec.id, username, why)


@router.get("/{recording_id}/audio", response_class=StreamingResponse,
            responses={206: {"description": "部分内容（Range）"}, 410: {"description": "录音文件缺失"},
                       416: {"description": "范围无效"}, 503: {"description": "录音存储暂不可用"}})
def audio(
    recording_id: int, request: Request, db: DbSession, settings: AppSettings,
    user: Player,
) -> StreamingResponse:
    """The audio, for players: HTTP Range requests are answered with 206 so a player can seek.

    Playing is not downloading. A user without ``recording:download`` (agents) is answered only ranges, each
    at most PLAY_CHUNK_BYTES (a short 206 with its Content-Range, which players accept and ask on from:
    browsers' <audio> asks ``Range: bytes=0-`` first, then the next range as it plays or seeks; the web page's
    player reads the file range by range the same way). A request without a Range (what "save as", curl or
    a download manager sends) is refused with 403 and audited as ``auth.denied`` rather than served and
    called a download: the user may not have a copy, so none is handed out as one file. Each range served is
    audited as ``recording.played`` with its bytes, so a copy put together piece by piece by a script is on
    record, range by range, under its user. (What someone can play they can also record from their speakers:
    this keeps the file from being handed out and puts every byte read on record; it is no DRM.) Users
    with ``recording:download`` get whatever they ask for, as before; ``/download`` is their attachment."""
    return _audio_response(request, db, settings, user.username, recording_id, download=False,
                           pieces_only=not allowed(user.role, Permission.recording_download))


@router.get("/{recording_id}/download", response_class=StreamingResponse,
            responses={410: {"description": "录音文件缺失"}, 503: {"description": "录音存储暂不可用"}})
def download(
    recording_id: int, request: Request, db: DbSession, settings: AppSettings,
    user: Downloader,
) -> StreamingResponse:
    """The original file as an attachment (audited)."""
    return _audio_response(request, db, settings, user.username, recording_id, download=True)
