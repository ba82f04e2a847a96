"""A finished call becomes a recording (and then, through the job queue, a transcript and a case).

``Filer`` is the telephony adapter's ``CallSink``: it is called on a worker thread, never on the SIP or
WebSocket event loop. Filing is safe to repeat: the stereo file is content-addressed, so a call filed
twice (a crash between filing and removing its folder) is stored once.

Encryption at rest (``HOTLINE_ENCRYPT_RECORDINGS``, on by default): ``key_issuer`` gives each call a data
key when it starts, wrapped by the master key into its ``call.json`` and bound to the call's id; the
recorders seal every leg under it as it is written (``telephony.sealed``), so while the call is in progress
and after a crash its folder holds no audio in clear. Filing unwraps the key, reads the legs back and mixes
them in memory into the staged upload, which ``ingest`` seals at once into the store: the only clear copy of
the call on disk is that staged file in ``<data dir>/tmp``, for the seconds ``ingest`` takes to probe, hash
and seal it, removed whatever happens (``recordings.staged``; a ``kill -9`` in those seconds leaves it).
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import shutil
import threading
from pathlib import Path

from app.calls import service as calls
from app.calls.models import CallStatus
from app.config import Settings
from app.db import Database
from app.jobs import PRIORITY_CALL, JobQueue
from app.recordings import crypto, files
from app.recordings import service as recordings
from app.recordings.models import CaseChannel
from app.recordings.storage import StorageUnavailable
from asr.audio import AudioError
from telephony.recorder import CallManifest, KeyIssuer, leg_files, mix
from telephony.sealed import SealedError

log = logging.getLogger("hotline.calls")


def _key_context(call_id: str) -> bytes:
    """What a call's wrapped key is bound to: copied into another call's ``call.json`` it does not unwrap."""
    return b"hotline-call-legs:" + call_id.encode()


def key_issuer(settings: Settings) -> KeyIssuer | None:
    """What the recorders call when a call starts (``SipOptions.keys``, ``MediaSession.start``): a new data
    key, wrapped by the current master key into the manifest. None when encryption is off (legs in clear).
    The keyring is loaded here (``master.key`` made if none is configured), so a broken one stops the
    adapter at its start rather than at its first call."""
    if not settings.encrypt_recordings:
        return None
    ring = files.keyring(settings)  # it picks up a key file rotated meanwhile by itself (``Keyring._refresh``)

    def issue(manifest: CallManifest) -> bytes:
        data_key, wrapped = ring.new_data_key(_key_context(manifest.call_id))
        manifest.key_id, manifest.wrapped_key = wrapped.key_id, base64.b64encode(wrapped.blob).decode()
        return data_key

    return issue


def leg_key(settings: Settings, manifest: CallManifest) -> bytes | None:
    """The call's data key unwrapped from its manifest (None: its legs are in clear). CryptoError if it does
    not unwrap (another call's key, tampered, or its master key no longer in the keyring)."""
    if manifest.wrapped_key is None:
        return None
    try:
        blob = base64.b64decode(manifest.wrapped_key, validate=True)
    except (binascii.Error, ValueError):
        raise crypto.CryptoError(f"通话 {manifest.call_id} 的录音密钥格式无效（call.json 被篡改或损坏）") from None
    wrapped = crypto.WrappedKey(manifest.key_id or "", blob)
    return files.keyring(settings).unwrap(wrapped, _key_context(manifest.call_id))


class Filer:
    def __init__(self, settings: Settings, database: Database, queue: JobQueue) -> None:
        self.settings = settings
        self.database = database
        self.queue = queue
        self.retry_delays: dict[str, float] = {}  # call id → seconds before the next try while the store is down
        self.first_retry_s = 15.0  # doubled at each failed try, up to 5 minutes

    def started(self, manifest: CallManifest) -> None:
        with self.database.session() as db:
            calls.started(db=db, manifest=manifest)

    def finished(self, folder: Path, manifest: CallManifest) -> None:
        """Mix the legs (unsealed with the call's key, in memory) into the staged upload, put it on record
        (sealed), queue its transcription, close the call's row, and remove the folder. On failure the row
        says so and the folder stays for the next recovery."""
        never_answered = manifest.answered_at is None and manifest.source in ("sip", "siprec")
        if manifest.end_reason == "cancel" or never_answered:
            self._close(manifest, CallStatus.cancelled, None)
            shutil.rmtree(folder, ignore_errors=True)
            return
        try:
            out = io.BytesIO()  # the mix in clear: in memory, then only in the staged file
            duration = mix(folder, manifest, out, data_key=leg_key(self.settings, manifest))
            if duration <= 0:
                self._close(manifest, CallStatus.no_audio, None)
                shutil.rmtree(folder, ignore_errors=True)
                return
            out.seek(0)
            with out, recordings.staged(self.settings, out) as staged:
                result = recordings.ingest(
                    database=self.database, settings=self.settings, staged_file=staged,
                    original_name=f"{manifest.source}-{manifest.caller or 'unknown'}-{manifest.call_id[:8]}.wav",
                    layout="mono" if manifest.layout == "mono" else "caller-left",
                    channel=CaseChannel(manifest.channel), actor=manifest.actor)
        except StorageUnavailable as e:  # the shared store is down: the call waits in its folder, and is
            # filed again after a pause (or by the next start's recovery, should this process die first)
            delay = self.retry_delays.get(manifest.call_id, self.first_retry_s)
            self.retry_delays[manifest.call_id] = min(delay * 2, 300.0)
            log.error("call %s could not be filed: %s; trying again in %.0f s (audio kept in %s)",
                      manifest.call_id, e, delay, folder)
            self._close(manifest, CallStatus.failed, None, error=f"{e}（{delay:.0f} 秒后重试）")
            timer = threading.Timer(delay, self.finished, args=(folder, manifest))
            timer.daemon = True
            timer.start()
            return
        except (AudioError, recordings.UploadTooLarge, OSError, SealedError, crypto.CryptoError) as e:
            log.error("call %s could not be filed: %s (audio kept in %s)", manifest.call_id, e, folder)
            self._close(manifest, CallStatus.failed, None, error=str(e))
            return
        # the call row names its recording before the transcription is queued: the case filed from it takes
        # the calling number from the call (app/cases/service.file_case)
        self._close(manifest, CallStatus.ended, result.recording.id)
        self.retry_delays.pop(manifest.call_id, None)
        if not result.duplicate:
            self.queue.enqueue_transcription(result.recording.id, priority=PRIORITY_CALL)
        shutil.rmtree(folder, ignore_errors=True)
        log.info("call %s from %s filed as recording #%s (%.1f s)", manifest.call_id, manifest.caller or "?",
                 result.recording.id, duration)

    def _close(self, manifest: CallManifest, status: CallStatus, recording_id: int | None,
               error: str | None = None) -> None:
        with self.database.session() as db:
            calls.finished(db=db, manifest=manifest, status=status, recording_id=recording_id, error=error)


def recover(filer: Filer, calls_dir: Path) -> int:
    """File every call whose recording process died mid-call (after a crash or ``kill -9``): its legs are
    on disk up to their last flush. Returns how many were filed."""
    if not calls_dir.exists():
        return 0
    count = 0
    for folder in sorted(p for p in calls_dir.iterdir() if (p / "call.json").exists()):
        manifest = CallManifest.load(folder)
        if manifest.owner and not recordings.owner_is_dead(manifest.owner):
            continue
        if manifest.ended_at is None:
            legs = [p.stat().st_mtime for p in leg_files(folder)]
            manifest.ended_at = max(legs, default=manifest.started_at)
            manifest.end_reason = "recovered"
            if manifest.answered_at is None and legs:
                manifest.answered_at = manifest.started_at
        log.warning("recovering call %s (%s) cut off at %s", manifest.call_id, manifest.caller, manifest.end_reason)
        filer.started(manifest)
        filer.finished(folder, manifest)
        count += 1
    return count
