"""`hotline live`: live transcripts of calls in progress (started by `hotline sip`, or by `hotline serve`
when SIP is off).

Audio frames arrive from the media engine (``telephony.live_tap``) on a Unix socket; each leg is followed by
an ``asr.stream.LiveLeg``; one ``LiveDecoder`` (a thread per core) decodes for all of them; the events go
to the API through ``app.live.publish`` (Redis, or the API's Unix socket) and on to staff browsers. When a
call ends, its live finals are kept on the call's row (``calls.live_segments``) for comparison with the
post-call transcript, which is the record.

Beyond ``HOTLINE_LIVE_MAX_CALLS`` calls at once, further calls get no live text (they are still recorded and
transcribed after the call): a box that can decode two calls live cannot decode twenty.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from app.calls.models import Call
from app.config import Settings
from app.db import Database
from app.live.publish import Publisher, make_publisher
from app.transcripts.flows import asr_options
from asr.engines.faster_whisper import FasterWhisperEngine
from asr.lexicon import default_corrector
from asr.models import resolve_model_dir
from asr.stream import LiveDecoder, LiveLeg, LiveText, StreamOptions
from telephony.frames import AudioChunk, CallEnded, CallStarted
from telephony.live_tap import decode

log = logging.getLogger("hotline.live")


# Silence after a final's clip, as post-call decoding pads each utterance: with only the 0.3 s partials get,
# Whisper base ends sentences badly (live CER on the dev calls 22.7% → 19.8%, for about 0.05 s more).
FINAL_TAIL_S = 1.0
STALE_S = 120.0  # a call with no audio this long is taken as ended (its "ended" frame was lost)


@dataclass
class LiveCall:
    call_id: str
    legs: dict[str, LiveLeg] = field(default_factory=dict)
    finals: list[dict[str, Any]] = field(default_factory=list)
    last_audio: float = field(default_factory=time.monotonic)


class LiveService:
    def __init__(self, settings: Settings, database: Database, publisher: Publisher) -> None:
        self.settings = settings
        self.database = database
        self.publisher = publisher
        cores = os.cpu_count() or 1
        options = asr_options(settings, "caller-left")
        engine = FasterWhisperEngine(resolve_model_dir(options.model_dir, settings.models_dir), options,
                                     workers=cores)
        partial_beam, final_beam = settings.live_beam_size, settings.live_final_beam_size
        self.decoder = LiveDecoder(lambda clips: engine.decode_clips(clips, partial_beam), self.emit,
                                   decode_finals=lambda clips: engine.decode_clips(clips, final_beam, FINAL_TAIL_S),
                                   corrector=default_corrector(), threads=cores)
        self.calls: dict[str, LiveCall] = {}
        self.finishing: dict[str, LiveCall] = {}  # ended, last finals still being decoded
        self.options = StreamOptions()
        self.lock = threading.Lock()

    # --- frames in -----------------------------------------------------------------------------------

    def on_frame(self, data: bytes) -> None:
        try:
            frame = decode(data)
        except (ValueError, KeyError) as e:
            log.warning("bad frame from the media engine: %s", e)
            return
        if isinstance(frame, AudioChunk):
            call = self.calls.get(frame.call_id)
            if call is None:
                return  # over the limit, or its start was missed
            leg = call.legs.get(frame.role)
            if leg is None:
                leg = call.legs[frame.role] = LiveLeg(frame.call_id, frame.role, frame.sample_rate, self.decoder,
                                                      self.options)
            leg.feed(frame.pcm, frame.start)
            call.last_audio = time.monotonic()
        elif isinstance(frame, CallStarted):
            self.started(frame)
        elif isinstance(frame, CallEnded):
            self.ended(frame)

    def started(self, frame: CallStarted) -> None:
        if len(self.calls) >= self.settings.live_max_calls:
            log.warning("call %s: %d calls already live; no live text for this one", frame.call_id, len(self.calls))
            return
        self.calls[frame.call_id] = LiveCall(frame.call_id)
        log.info("call %s: live (%d in progress)", frame.call_id, len(self.calls))
        self.publisher.publish({"type": "call_started", "call_id": frame.call_id, "caller": frame.caller,
                                "called": frame.called, "source": frame.source, "at": time.time()})

    def expire(self) -> None:
        """End calls that have had no audio for ``STALE_S`` (a lost "ended" frame must not hold a slot)."""
        now = time.monotonic()
        for call in [c for c in self.calls.values() if now - c.last_audio > STALE_S]:
            log.warning("call %s: no audio for %.0f s; taken as ended", call.call_id, STALE_S)
            self.ended(CallEnded(call.call_id, "stale"))

    def ended(self, frame: CallEnded) -> None:
        with self.lock:
            call = self.calls.pop(frame.call_id, None)
            if call is None:
                return
            self.finishing[call.call_id] = call
        log.info("call %s ended (%s): last finals being decoded", frame.call_id, frame.reason)
        for leg in call.legs.values():
            leg.flush()
        threading.Thread(target=self._finish, args=(call, frame.reason), daemon=True).start()

    # --- events out ----------------------------------------------------------------------------------

    def emit(self, text: LiveText) -> None:
        event: dict[str, Any] = {"type": text.kind, "call_id": text.call_id, "role": text.role,
                                 "utterance": text.utterance, "start": text.start, "end": text.end,
                                 "text": text.text}
        if text.kind == "partial":
            event["stable"] = text.stable
        else:
            with self.lock:
                target = self.calls.get(text.call_id) or self.finishing.get(text.call_id)
                if target is not None:
                    target.finals.append({k: event[k] for k in ("role", "start", "end", "text")})
        self.publisher.publish(event)

    def _finish(self, call: LiveCall, reason: str) -> None:
        """After the call: wait for its last finals, announce the end, keep its live transcript."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(leg.pending_finals() for leg in call.legs.values()):
            time.sleep(0.05)
        with self.lock:
            self.finishing.pop(call.call_id, None)
        self.publisher.publish({"type": "call_ended", "call_id": call.call_id, "reason": reason, "at": time.time()})
        self._store(call)

    def _store(self, call: LiveCall) -> None:
        import sqlalchemy as sa

        segments = sorted(call.finals, key=lambda s: s["start"])
        for _ in range(60):  # the filing process writes the call's row; it may not be there yet
            with self.database.session() as db:
                row = db.execute(sa.select(Call).where(Call.call_uuid == call.call_id)).scalar_one_or_none()
                if row is not None:
                    row.live_segments = segments
                    return
            time.sleep(0.5)
        log.warning("call %s: no call record to keep the live transcript on", call.call_id)


def serve(settings: Settings, database: Database, stop: threading.Event) -> None:
    """Listen for the media engine and follow its calls until ``stop`` is set."""
    path = settings.live_audio_socket
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(str(path))
    listener.listen(4)
    listener.setblocking(False)
    publisher = make_publisher(settings)
    service = LiveService(settings, database, publisher)
    log.info("live transcription listening on %s", path)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    try:
        while not stop.is_set():
            service.expire()
            for key, _ in sel.select(timeout=0.5):
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                if sock is listener:
                    conn, _ = listener.accept()
                    conn.setblocking(False)
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
                    sel.register(conn, selectors.EVENT_READ)
                    continue
                _drain(sock, sel, service)
    finally:
        service.decoder.close()
        publisher.close()
        listener.close()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _drain(sock: socket.socket, sel: selectors.BaseSelector, service: LiveService) -> None:
    while True:
        try:
            data = sock.recv(1 << 20)
        except BlockingIOError:
            return
        if not data:
            sel.unregister(sock)
            sock.close()
            return
        service.on_frame(data)
