"""Calls and captured sessions that arrive over WebSocket: the protocols and the recording, no web framework.

Three sources share one recorder (``MediaSession``), which writes the same call folder the SIP adapter
writes (``call.json``, ``LEG.sealed`` or ``LEG.wav``, and ``LEG.offset``; see ``telephony.recorder``), so a
finished or cut-off call is filed the same way:

* Twilio Media Streams: JSON text messages (``connected``, ``start``, ``media``, ``mark``, ``dtmf``,
  ``stop``); 8 kHz μ-law, base64, each ``media`` message stamped in ms since the stream started, so audio
  is placed by time (a gap becomes silence). ``TwilioStream`` parses and records them.
* Raw L16 (FreeSWITCH mod_audio_fork and the like): binary frames of 16-bit little-endian PCM, one leg per
  connection or both interleaved (left = caller), at 8 or 16 kHz (16 kHz is brought down to the call's
  8 kHz); text frames carry JSON metadata. ``PcmSource`` records them; ``ForkCalls`` puts the connections
  that share a peer's call id into one call.
* Browser capture (walk-in visit, mediation, hearing): one microphone as 16-bit mono PCM at 16 or 48 kHz,
  kept at 16 kHz as the ``room`` leg of a mono call. ``PcmSource`` again.

Bad input raises ``MediaError`` (or a subclass) with a message fit for the peer; audio recorded before it
stays on disk, and the caller decides whether to end the stream (the web endpoints do, and file the call).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from scipy.signal import firwin, lfilter

from telephony import g711
from telephony.frames import AudioChunk, CallEnded, CallStarted, FrameBus, Role
from telephony.numbers import caller_id
from telephony.recorder import LEGS, CallManifest, KeyIssuer, LegWriter, open_leg, process_owner

CALL_RATE = 8000  # telephone calls (Twilio, fork) are recorded at 8 kHz
ROOM_RATE = 16000  # a browser microphone is recorded at 16 kHz
FLUSH_EVERY = 1.0  # seconds between leg flushes: a kill -9 loses at most this much audio
MAX_LEAD = 60.0  # seconds a timestamp may run ahead of the wall clock before it is refused
MAX_METADATA = 8192  # characters in one metadata text frame
CAPTURE_KINDS = ("visit", "mediation", "hearing")

Clock = Callable[[], float]


class MediaError(ValueError):
    """Input a media stream may not carry (bad JSON, unknown event, bad base64…). ``close_code`` is the
    WebSocket close code that tells the peer so (1007: invalid payload data)."""

    close_code: ClassVar[int] = 1007


class UnsupportedMedia(MediaError):
    """A format or connection parameter this adapter does not take (1003: unsupported data)."""

    close_code: ClassVar[int] = 1003


class StreamConflict(MediaError):
    """A second connection for a leg that is already streaming (1008: policy violation)."""

    close_code: ClassVar[int] = 1008


# --- recording -------------------------------------------------------------------------------------------


@dataclass
class _Leg:
    writer: LegWriter
    origin: int  # samples after the call started at which the leg's first sample was heard


class MediaSession:
    """One call (or captured session) being recorded into ``calls_dir/<call uuid>/``.

    Legs are created on their first audio: ``caller``/``agent`` for a stereo call, ``room`` for a mono
    one; sealed under the call's data key (``LEG.sealed``), or WAVs in clear without one (see ``recorder``).
    Audio is placed by sample position since the call started. The legs are flushed (a sealed record
    appended; a WAV's header rewritten) by a write ``FLUSH_EVERY`` seconds after the last time, and by
    ``flush``, which the connection's owner calls every ``FLUSH_EVERY`` seconds so that a stalled stream is
    on disk too: the audio is in clear only in memory, for a second at most. Every chunk written is
    published as an ``AudioChunk`` on the bus."""

    def __init__(self, folder: Path, manifest: CallManifest, *, bus: FrameBus | None = None,
                 clock: Clock = time.time, data_key: bytes | None = None) -> None:
        """Create the folder (FileExistsError if it exists: one folder per call) and save ``call.json``.
        ``data_key``: the key the legs are sealed with (its wrap already in ``manifest``); None: in clear."""
        folder.mkdir(parents=True)
        self.folder = folder
        self.manifest = manifest
        self.data_key = data_key
        self.bus = bus or FrameBus()
        self.clock = clock
        self.closed = False
        self._legs: dict[str, _Leg] = {}
        self._flushed = clock()
        manifest.save(folder)
        self.bus.publish(CallStarted(manifest.call_id, manifest.source, manifest.caller, manifest.called))

    @classmethod
    def start(cls, calls_dir: Path, *, source: str, external_id: str = "", caller: str = "", called: str = "",
              channel: str = "来电", layout: str = "caller-left", sample_rate: int = CALL_RATE,
              actor: str = "telephony", bus: FrameBus | None = None, clock: Clock = time.time,
              keys: KeyIssuer | None = None) -> MediaSession:
        """A new call starting now (a stream is answered as soon as it exists: ``answered_at`` = now). ``caller``
        as signalling gave it (a number, a sip: URI, ``anonymous``…): kept as ``numbers.caller_id`` writes it.
        ``keys`` makes the call's data key (its legs sealed); None: the legs are WAVs in clear."""
        now = clock()
        manifest = CallManifest(call_id=uuid.uuid4().hex, source=source, external_id=external_id,
                                caller=caller_id(caller),
                                called=called, channel=channel, started_at=now, answered_at=now, layout=layout,
                                sample_rate=sample_rate, actor=actor, owner=process_owner())
        data_key = keys(manifest) if keys else None
        return cls(calls_dir / manifest.call_id, manifest, bus=bus, clock=clock, data_key=data_key)

    @property
    def rate(self) -> int:
        return self.manifest.sample_rate

    @property
    def roles(self) -> tuple[str, ...]:
        return ("room",) if self.manifest.layout == "mono" else LEGS

    def elapsed(self) -> float:
        return max(0.0, self.clock() - self.manifest.started_at)

    def elapsed_samples(self) -> int:
        return round(self.elapsed() * self.rate)

    def write(self, role: Role, pcm: bytes, at: int | None = None) -> None:
        """Record ``pcm`` (16-bit little-endian mono at the call's rate) on ``role``'s leg, starting ``at``
        samples after the call started; None: right after the leg's last sample (a new leg: now).

        A gap before ``at`` becomes silence. Samples the leg already holds are never written twice: the
        part of the chunk that overlaps them is dropped (all of it if it lies before the leg's start).
        ValueError for a role this call's layout has no leg for, an odd byte count or a closed call;
        MediaError for an ``at`` more than ``MAX_LEAD`` seconds ahead of the wall clock."""
        if self.closed or role not in self.roles or len(pcm) % 2:
            raise ValueError(f"cannot write {len(pcm)} bytes to leg {role!r} of call {self.manifest.call_id}")
        if at is not None and at > (self.elapsed() + MAX_LEAD) * self.rate:
            raise MediaError(f"timestamp {at / self.rate:.3f} s is too far ahead of the call's clock")
        leg = self._legs.get(role) or self._open_leg(role, self.elapsed_samples() if at is None else at)
        if at is not None:
            position = at - leg.origin
            if position > leg.writer.samples:
                leg.writer.pad_to(position)
            elif position < leg.writer.samples:
                pcm = pcm[2 * (leg.writer.samples - position):]
        if pcm:
            start = leg.writer.samples
            leg.writer.write(pcm)
            if self.bus.active:
                at_call = (leg.origin + start) / self.rate  # frames count from the call's start
                self.bus.publish(AudioChunk(self.manifest.call_id, role, at_call, self.rate, pcm))
        self.tick()

    def _open_leg(self, role: str, origin: int) -> _Leg:
        (self.folder / f"{role}.offset").write_text(f"{origin / self.rate:.6f}")
        writer = open_leg(self.folder, role, call_id=self.manifest.call_id, data_key=self.data_key,
                          sample_rate=self.rate)
        leg = self._legs[role] = _Leg(writer, origin)
        return leg

    def dtmf(self, digit: str, **details: Any) -> None:
        """Note a key press (kept in ``call.json`` at once). MediaError for anything but one of 0-9*#A-D."""
        if len(digit) != 1 or digit not in "0123456789*#ABCD":
            raise MediaError(f"bad DTMF digit {digit!r}")
        self.manifest.dtmf.append({"digit": digit, "at": round(self.elapsed(), 3), "via": self.manifest.source,
                                   **details})
        self.manifest.save(self.folder)

    def note(self, event: str, **details: Any) -> None:
        """Add an event (mark, metadata…) to the call's record, kept in ``call.json`` at once."""
        self.manifest.events.append({"event": event, "at": round(self.elapsed(), 3), **details})
        self.manifest.save(self.folder)

    def tick(self) -> None:
        """Flush the legs if the last time was ``FLUSH_EVERY`` seconds ago or more."""
        if self.clock() - self._flushed >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        """Flush every leg (a closed call: nothing to do)."""
        if self.closed:
            return
        for leg in self._legs.values():
            leg.writer.flush()
        self._flushed = self.clock()

    def close(self, reason: str) -> tuple[Path, CallManifest]:
        """End the call: close the legs, stamp the end, save ``call.json``. Returns what filing needs; a
        second close returns the same without changing anything."""
        if not self.closed:
            self.closed = True
            for leg in self._legs.values():
                leg.writer.close()
            self.manifest.ended_at = self.clock()
            self.manifest.end_reason = reason[:32]
            self.manifest.save(self.folder)
            self.bus.publish(CallEnded(self.manifest.call_id, reason))
        return self.folder, self.manifest


# --- raw PCM (mod_audio_fork, browser capture) ----------------------------------------------------------


class Downsampler:
    """Integer-factor decimation of a stream that arrives in pieces: a windowed-sinc low-pass (the filter
    ``scipy.signal.resample_poly`` designs) whose state carries over between chunks, then every
    ``factor``-th sample. The filter's delay is removed, so the output lines up with the input and, once
    ``flush``-ed, holds ceil(n / factor) samples for n in."""

    def __init__(self, factor: int) -> None:
        if factor < 2:
            raise ValueError("a Downsampler needs a factor of 2 or more")
        self.factor = factor
        self.taps = firwin(20 * factor + 1, 1 / factor, window=("kaiser", 5.0))
        self.delay = 10 * factor
        self._state = np.zeros(len(self.taps) - 1)
        self._skip = self.delay  # filtered samples still to drop (the delay)
        self._phase = 0  # index in the next filtered block of the next sample to keep

    def process(self, samples: NDArray[np.int16]) -> NDArray[np.int16]:
        if not len(samples):
            return np.zeros(0, dtype="<i2")
        filtered, self._state = lfilter(self.taps, 1.0, samples.astype(np.float64), zi=self._state)
        drop = min(self._skip, len(filtered))
        filtered = filtered[drop:]
        self._skip -= drop
        kept = filtered[self._phase::self.factor]
        self._phase = (self._phase - len(filtered)) % self.factor
        return np.clip(np.round(kept), -32768, 32767).astype("<i2")

    def flush(self) -> NDArray[np.int16]:
        """The tail still inside the filter (call once, at the end)."""
        return self.process(np.zeros(self.delay, dtype=np.int16))


class PcmSource:
    """Binary frames of 16-bit little-endian PCM from one connection: mono (one leg) or interleaved (one
    channel per leg, in ``legs`` order), at ``rate`` Hz, recorded on ``session``.

    Frames need not hold whole samples: the rest waits for the next frame (a trailing odd byte at the end
    is dropped). The connection's audio is contiguous from its first frame, which is placed when it
    arrives; interleaved legs share that origin, so they stay sample-aligned."""

    def __init__(self, session: MediaSession, legs: tuple[Role, ...], rate: int) -> None:
        """UnsupportedMedia if ``rate`` is not the call's rate or a whole multiple of it."""
        if rate < session.rate or rate % session.rate:
            raise UnsupportedMedia(f"sample rate {rate} cannot be recorded at {session.rate} Hz")
        factor = rate // session.rate
        self.session = session
        self.legs = legs
        self.rate = rate
        self._down = [Downsampler(factor) for _ in legs] if factor > 1 else []
        self._carry = b""
        self._origin: int | None = None
        self._written = 0

    def feed(self, data: bytes) -> None:
        data = self._carry + data
        usable = len(data) - len(data) % (2 * len(self.legs))
        self._carry = data[usable:]
        if usable:
            frames = np.frombuffer(data[:usable], dtype="<i2").reshape(-1, len(self.legs))
            channels = [frames[:, i] for i in range(len(self.legs))]
            self._record([d.process(c) for d, c in zip(self._down, channels, strict=True)] if self._down
                         else channels)

    def _record(self, channels: list[NDArray[np.int16]]) -> None:
        if self._origin is None:
            self._origin = self.session.elapsed_samples()
        at = self._origin + self._written
        for role, samples in zip(self.legs, channels, strict=True):
            self.session.write(role, samples.astype("<i2").tobytes(), at=at)
        self._written += len(channels[0])

    def finish(self) -> None:
        """Write what the resampling filter still holds. Call once, when the connection ends."""
        if self._down and self._origin is not None and not self.session.closed:
            self._record([d.flush() for d in self._down])

    def flush(self) -> None:
        self.session.flush()


def apply_metadata(session: MediaSession, text: str) -> dict[str, Any]:
    """A text frame on a raw PCM connection: a JSON object of metadata. ``caller``/``from`` and
    ``called``/``to`` fill the call's numbers if they are still empty; every key is kept as a ``metadata``
    event. MediaError if it is not a JSON object or longer than ``MAX_METADATA`` characters."""
    if len(text) > MAX_METADATA:
        raise MediaError(f"metadata longer than {MAX_METADATA} characters")
    meta = _json_object(text, "metadata")
    for attr, keys in (("caller", ("caller", "from")), ("called", ("called", "to"))):
        value = _first_str(meta, keys)
        value = caller_id(value) if attr == "caller" else value
        if value and not getattr(session.manifest, attr):
            setattr(session.manifest, attr, value)
    session.note("metadata", data=meta)
    return meta


_LEG_ROLES: dict[str, Role] = {"caller": "caller", "agent": "agent"}


@dataclass(frozen=True, slots=True)
class ForkParams:
    """The query of a raw L16 connection: ``call_id`` (connections sharing it are one call), ``channels``
    1|2, ``leg`` caller|agent (mono), ``rate`` 8000|16000, ``caller``, ``called``."""

    call_id: str
    legs: tuple[Role, ...]
    rate: int
    caller: str = ""
    called: str = ""

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> ForkParams:
        """UnsupportedMedia naming the parameter for any value outside those listed."""
        channels = _choice(query, "channels", ("1", "2"), "1")
        leg = _choice(query, "leg", LEGS, "caller")
        rate = int(_choice(query, "rate", ("8000", "16000"), "8000"))
        call_id = query.get("call_id", "")[:128] or uuid.uuid4().hex
        legs: tuple[Role, ...] = ("caller", "agent") if channels == "2" else (_LEG_ROLES[leg],)
        return cls(call_id, legs, rate, query.get("caller", "")[:64], query.get("called", "")[:64])


@dataclass(frozen=True, slots=True)
class CaptureParams:
    """The query of a browser capture: ``kind`` visit|mediation|hearing, ``rate`` 16000|48000."""

    kind: str
    rate: int

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> CaptureParams:
        """UnsupportedMedia naming the parameter for a missing kind or any value outside those listed."""
        kind = _choice(query, "kind", CAPTURE_KINDS, None)
        return cls(kind, int(_choice(query, "rate", ("16000", "48000"), "16000")))


def _choice(query: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str | None) -> str:
    value = query.get(name, default)
    if value not in allowed:
        raise UnsupportedMedia(f"{name} must be one of {'|'.join(allowed)}, not {value!r}")
    return value


@dataclass
class _Shared:
    session: MediaSession
    legs: set[str] = field(default_factory=set)
    connections: int = 0


class ForkCalls:
    """Raw L16 connections by the peer's call id: the legs of one call may come on separate connections
    (one per leg) and are recorded as one call, which ends when its last connection does. A connection
    for the same id after that starts a new call."""

    def __init__(self) -> None:
        self._calls: dict[str, _Shared] = {}

    def join(self, call_id: str, legs: tuple[Role, ...], start: Callable[[], MediaSession]) -> tuple[
            MediaSession, bool]:
        """The call's session (made with ``start`` if this is its first connection) and whether it was just
        made. StreamConflict if one of ``legs`` is already streaming on another connection."""
        shared = self._calls.get(call_id)
        created = shared is None
        if shared is None:
            shared = self._calls[call_id] = _Shared(start())
        busy = shared.legs.intersection(legs)
        if busy:
            raise StreamConflict(f"call {call_id}: leg {', '.join(sorted(busy))} is already streaming")
        shared.legs.update(legs)
        shared.connections += 1
        return shared.session, created

    def leave(self, call_id: str, legs: tuple[Role, ...]) -> MediaSession | None:
        """A connection ended: the call's session if it was the last one (to be closed and filed), else None."""
        shared = self._calls[call_id]
        shared.legs.difference_update(legs)
        shared.connections -= 1
        if shared.connections:
            return None
        del self._calls[call_id]
        return shared.session

    def __len__(self) -> int:
        return len(self._calls)


# --- Twilio Media Streams --------------------------------------------------------------------------------

TWILIO_TRACKS: dict[str, Role] = {"inbound": "caller", "inbound_track": "caller", "outbound": "agent",
                                  "outbound_track": "agent"}


@dataclass(frozen=True, slots=True)
class TwilioConnected:
    protocol: str
    version: str


@dataclass(frozen=True, slots=True)
class TwilioStart:
    stream_sid: str
    call_sid: str
    tracks: tuple[str, ...]
    caller: str
    called: str
    parameters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TwilioMedia:
    role: Role
    chunk: int
    timestamp: int  # ms since the stream started
    payload: bytes  # μ-law


@dataclass(frozen=True, slots=True)
class TwilioMark:
    name: str


@dataclass(frozen=True, slots=True)
class TwilioDtmf:
    digit: str
    track: str


@dataclass(frozen=True, slots=True)
class TwilioStop:
    call_sid: str


TwilioEvent = TwilioConnected | TwilioStart | TwilioMedia | TwilioMark | TwilioDtmf | TwilioStop


def parse_twilio(message: str | bytes) -> TwilioEvent:
    """One Twilio Media Streams message. MediaError for text that is not a JSON object, a missing or
    unknown ``event``, a field of the wrong type, an unknown track or a payload that is not base64;
    UnsupportedMedia for a ``start`` whose media format is not 8 kHz mono μ-law."""
    msg = _json_object(message, "message")
    event = msg.get("event")
    if not isinstance(event, str):
        raise MediaError(f"message without an event name: {str(msg)[:60]}")
    parser = _TWILIO_PARSERS.get(event)
    if parser is None:
        raise MediaError(f"unknown event {event[:40]!r}")
    body = msg.get(event, {})
    if not isinstance(body, dict):
        raise MediaError(f"{event}: field {event!r} must be an object")
    return parser(msg, body)


def _connected(msg: dict[str, Any], _body: dict[str, Any]) -> TwilioEvent:
    return TwilioConnected(str(msg.get("protocol", "")), str(msg.get("version", "")))


def _start(msg: dict[str, Any], body: dict[str, Any]) -> TwilioEvent:
    fmt = body.get("mediaFormat")
    if not isinstance(fmt, dict) or (fmt.get("encoding"), str(fmt.get("sampleRate")),
                                     str(fmt.get("channels", 1))) != ("audio/x-mulaw", "8000", "1"):
        raise UnsupportedMedia(f"start: media format must be audio/x-mulaw 8000 Hz mono, not {fmt!r}")
    params = body.get("customParameters") or {}
    tracks = body.get("tracks", ["inbound"])
    if not isinstance(params, dict) or not isinstance(tracks, list):
        raise MediaError("start: customParameters must be an object and tracks a list")
    unknown = [t for t in tracks if not isinstance(t, str) or t not in TWILIO_TRACKS]
    if unknown:
        raise MediaError(f"start: unknown track {unknown[0]!r}")
    return TwilioStart(str(body.get("streamSid") or msg.get("streamSid", "")), str(body.get("callSid", "")),
                       tuple(tracks), _first_str(params, ("caller", "from"))[:64],
                       _first_str(params, ("called", "to"))[:64], params)


def _media(_msg: dict[str, Any], body: dict[str, Any]) -> TwilioEvent:
    track = body.get("track", "inbound")
    if not isinstance(track, str) or track not in TWILIO_TRACKS:  # a list or object is unhashable
        raise MediaError(f"media: unknown track {track!r}")
    payload = body.get("payload")
    if not isinstance(payload, str):
        raise MediaError("media: payload must be a base64 string")
    try:
        audio = base64.b64decode(payload, validate=True)
    except ValueError as e:  # binascii.Error, or a string that is not ASCII
        raise MediaError(f"media: payload is not valid base64 ({e})") from e
    return TwilioMedia(TWILIO_TRACKS[track], _int(body.get("chunk", 0), "chunk"),
                       _int(body.get("timestamp"), "timestamp"), audio)


def _mark(_msg: dict[str, Any], body: dict[str, Any]) -> TwilioEvent:
    return TwilioMark(str(body.get("name", "")))


def _dtmf(_msg: dict[str, Any], body: dict[str, Any]) -> TwilioEvent:
    digit = body.get("digit")
    if not isinstance(digit, str):
        raise MediaError("dtmf: digit must be a string")
    return TwilioDtmf(digit, str(body.get("track", "")))


def _stop(_msg: dict[str, Any], body: dict[str, Any]) -> TwilioEvent:
    return TwilioStop(str(body.get("callSid", "")))


_TWILIO_PARSERS: dict[str, Callable[[dict[str, Any], dict[str, Any]], TwilioEvent]] = {
    "connected": _connected, "start": _start, "media": _media, "mark": _mark, "dtmf": _dtmf, "stop": _stop}


class TwilioStream:
    """One Twilio Media Streams connection: the call starts (``session``) with its ``start`` message and
    ends with ``stop`` (or when the connection does; the caller closes the session either way)."""

    def __init__(self, calls_dir: Path, *, bus: FrameBus | None = None, clock: Clock = time.time,
                 keys: KeyIssuer | None = None) -> None:
        self.calls_dir = calls_dir
        self.bus = bus
        self.clock = clock
        self.keys = keys
        self.session: MediaSession | None = None
        self.stopped = False

    def feed(self, message: str | bytes) -> TwilioEvent:
        """Parse and record one message. MediaError as ``parse_twilio`` says, and for a second ``start``,
        or ``media``/``dtmf`` before ``start``; nothing recorded before is lost."""
        event = parse_twilio(message)
        if isinstance(event, TwilioStart):
            self._start(event)
        elif isinstance(event, TwilioMedia | TwilioDtmf | TwilioMark):
            self._during_call(event)
        elif isinstance(event, TwilioStop):
            self.stopped = True
        return event

    def _start(self, event: TwilioStart) -> None:
        if self.session is not None:
            raise MediaError("a second start event on one stream")
        self.session = MediaSession.start(self.calls_dir, source="twilio", external_id=event.call_sid or
                                          event.stream_sid, caller=event.caller, called=event.called,
                                          bus=self.bus, clock=self.clock, keys=self.keys)
        self.session.note("stream", stream_sid=event.stream_sid, tracks=list(event.tracks))

    def _during_call(self, event: TwilioMedia | TwilioDtmf | TwilioMark) -> None:
        session = self.session
        if session is None:
            if isinstance(event, TwilioMark):
                return
            raise MediaError(f"{'media' if isinstance(event, TwilioMedia) else 'dtmf'} before the start event")
        if isinstance(event, TwilioMedia):
            session.write(event.role, g711.decode(event.payload, g711.PCMU),
                          at=event.timestamp * session.rate // 1000)
        elif isinstance(event, TwilioDtmf):
            session.dtmf(event.digit, track=event.track)
        else:
            session.note("mark", name=event.name)

    def flush(self) -> None:
        if self.session is not None:
            self.session.flush()


# --- helpers ---------------------------------------------------------------------------------------------


def _json_object(text: str | bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
        json.dumps(value, ensure_ascii=False).encode()  # a lone surrogate ("\ud800") could never be saved
    except (ValueError, RecursionError) as e:  # also: an int of over 4300 digits, nesting too deep
        raise MediaError(f"{what} is not valid JSON ({e})") from e
    if not isinstance(value, dict):
        raise MediaError(f"{what} must be a JSON object, not {type(value).__name__}")
    return value


def _int(value: Any, name: str) -> int:
    """A non-negative integer below 2**53 given as a number or a string of digits (Twilio sends strings)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20 and int(value) < 2**53:
        return int(value)
    raise MediaError(f"{name} must be a non-negative integer, not {value!r}")


def _first_str(data: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    """The first of ``keys`` with a non-empty string or number, matched exactly, else whatever its case
    (Twilio TwiML often names parameters ``From``/``Caller``)."""
    folded = {str(k).lower(): v for k, v in reversed(list(data.items()))}
    for key in keys:
        value = data.get(key, folded.get(key.lower()))
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    return ""
