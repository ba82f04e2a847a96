"""WebSocket media frames (``telephony.ws``): Twilio Media Streams JSON, raw L16 metadata and audio, and the
query parameters of fork and capture connections, under random and mutated input.

``parse_twilio``, ``TwilioStream.feed`` and ``apply_metadata`` may raise only ``MediaError`` (its
subclasses included): the endpoint closes the stream with that error's close code and files what was
recorded, so the call must still close and its ``call.json`` read back afterwards. ``PcmSource.feed`` takes
any bytes. ``ForkParams.parse``/``CaptureParams.parse`` raise only ``UnsupportedMedia``.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from telephony.recorder import CallManifest, read_wav
from telephony.ws import (
    LEGS,
    CaptureParams,
    ForkParams,
    MediaError,
    MediaSession,
    PcmSource,
    TwilioMedia,
    TwilioStart,
    TwilioStream,
    UnsupportedMedia,
    apply_metadata,
    parse_twilio,
)
from tests.fuzz.strategies import encode_json, fuzz, json_values, mutated

FORMAT = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
MESSAGES: list[dict[str, Any]] = [
    {"event": "connected", "protocol": "Call", "version": "1.0.0"},
    {"event": "start", "sequenceNumber": "1", "streamSid": "MZ1",
     "start": {"streamSid": "MZ1", "callSid": "CA42", "tracks": ["inbound", "outbound"], "mediaFormat": FORMAT,
               "customParameters": {"caller": "+8613800138000", "To": "12351"}}},
    {"event": "media", "sequenceNumber": "3", "streamSid": "MZ1", "media": {
        "track": "inbound", "chunk": "2", "timestamp": "40", "payload": base64.b64encode(b"\xff" * 160).decode()}},
    {"event": "media", "media": {"track": "outbound_track", "chunk": 7, "timestamp": 1234, "payload": "AQI="}},
    {"event": "mark", "streamSid": "MZ1", "mark": {"name": "greeting"}},
    {"event": "dtmf", "streamSid": "MZ1", "dtmf": {"track": "inbound_track", "digit": "#"}},
    {"event": "stop", "streamSid": "MZ1", "stop": {"accountSid": "AC1", "callSid": "CA42"}},
]
SEEDS = [json.dumps(m).encode() for m in MESSAGES]
CLOCK = 1_700_000_000.0
_names = itertools.count()


@pytest.fixture(scope="module")  # Hypothesis refuses function-scoped fixtures (tmp_path) in a @given test
def calls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("fuzz-calls")


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value: the keys and indexes leading to it."""
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += paths(v, (*prefix, i))
    return out


@st.composite
def twilio_messages(draw: st.DrawFn) -> str | bytes:
    """A valid message with fields replaced by values of the wrong type (numbers huge, negative, floats,
    nested; strings that are base64 garbage or lone surrogates), removed or added, then sent as text or as
    bytes in any Unicode encoding; sometimes its serialized bytes are cut or flipped."""
    msg = json.loads(json.dumps(draw(st.sampled_from(MESSAGES))))
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.sampled_from(paths(msg)))
        if not where:
            msg = draw(json_values) if not draw(st.integers(0, 9)) else msg
            continue
        parent = msg
        for step in where[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "replace":
            parent[where[-1]] = draw(json_values)
        elif action == "delete":
            del parent[where[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=6))] = draw(json_values)
    if not isinstance(msg, dict | list) and not draw(st.integers(0, 4)):
        msg = {"event": msg}
    frame = encode_json(msg, draw)
    if draw(st.integers(0, 4)) == 0:
        raw = frame.encode("utf-8", "surrogatepass") if isinstance(frame, str) else frame
        return draw(mutated([raw], max_mutations=2))
    return frame


def check_event(message: str | bytes) -> None:
    try:
        event = parse_twilio(message)
    except MediaError:
        return
    if isinstance(event, TwilioMedia):
        assert event.role in LEGS and event.timestamp >= 0 and event.chunk >= 0
        assert isinstance(event.payload, bytes)
    if isinstance(event, TwilioStart):
        assert len(event.caller) <= 64 and len(event.called) <= 64


@fuzz(300)
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200)))
def test_parse_twilio_random_frames_raise_only_media_error(message: str | bytes) -> None:
    check_event(message)


@fuzz(300)
@given(twilio_messages())
# found by this test: nesting too deep (RecursionError), a 5000-digit number (ValueError), a track that is a
# list or an object (TypeError: unhashable); found by the fuzz-deep profile: a payload that is not ASCII
@example("[" * 100_000)
@example('{"event": "mark", "n": ' + "1" * 5000 + "}")
@example('{"event": "media", "media": {"track": ["inbound"], "payload": "", "timestamp": 0}}')
@example('{"event": "start", "start": {"mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000}, '
         '"tracks": [{}]}}')
@example('{"event": "media", "media": {"payload": "", "timestamp": "' + "9" * 5000 + '"}}')
@example('{"event": "media", "media": {"payload": "\x80", "timestamp": 0}}')  # ValueError: not ASCII
def test_parse_twilio_mutated_messages_raise_only_media_error(message: str | bytes) -> None:
    check_event(message)


def closes_cleanly(session: MediaSession | None) -> None:
    """After whatever the stream sent, the call still closes and its call.json reads back."""
    if session is None:
        return
    folder, manifest = session.close("fuzz")
    assert CallManifest.load(folder) == manifest
    for leg in session.roles:
        samples, _ = read_wav(folder / f"{leg}.wav")
        assert len(samples) <= manifest.sample_rate * 120  # placed within MAX_LEAD of the clock, not beyond


@fuzz(80)
@given(st.lists(twilio_messages(), max_size=6))
# found by this test: a lone surrogate ("\ud800", JSON-escaped) in a mark's name or a caller number made
# call.json unsavable: that message, and every later save (the call's close included), raised
# UnicodeEncodeError; a timestamp of 400 digits overflowed a float (OverflowError)
@example(['{"event": "mark", "mark": {"name": "\\ud800"}}'])
@example(['{"event": "start", "start": {"mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000}, '
          '"customParameters": {"caller": "\\udfff"}}}'])
@example(['{"event": "media", "media": {"payload": "AAAA", "timestamp": "' + "9" * 400 + '"}}'])
def test_twilio_stream_raises_only_media_error_and_the_call_still_closes(calls: Path, messages: list[str | bytes],
                                                                         ) -> None:
    stream = TwilioStream(calls, clock=lambda: CLOCK)
    stream.feed(json.dumps(MESSAGES[1]))
    for message in messages:
        with contextlib.suppress(MediaError):
            stream.feed(message)
    closes_cleanly(stream.session)


def session(calls: Path, layout: str = "caller-left", rate: int = 8000) -> MediaSession:
    return MediaSession.start(calls, source="fork", layout=layout, sample_rate=rate, clock=lambda: CLOCK)


@fuzz(150)
@given(st.one_of(st.text(max_size=100), json_values.map(lambda v: json.dumps(v, ensure_ascii=False)),
                 st.dictionaries(st.sampled_from(["caller", "from", "called", "to", "From", "x"]), json_values,
                                 max_size=3).map(json.dumps)))
@example('{"caller": "\\ud800"}')
@example("{" * 50_000)
@example('{"x": "' + "a" * 9000 + '"}')
def test_metadata_raises_only_media_error_and_the_call_still_closes(calls: Path, text: str) -> None:
    s = session(calls)
    with contextlib.suppress(MediaError):
        apply_metadata(s, text)
    closes_cleanly(s)


@fuzz(100)
@given(st.lists(st.binary(max_size=700), max_size=8), st.sampled_from([
    (("caller",), 8000, 8000, "caller-left"), (("caller", "agent"), 8000, 8000, "caller-left"),
    (("agent",), 16000, 8000, "caller-left"), (("room",), 48000, 16000, "mono"), (("room",), 16000, 16000, "mono")]))
def test_pcm_source_takes_any_frames_and_keeps_every_whole_sample(
        calls: Path, frames: list[bytes], setup: tuple[tuple[str, ...], int, int, str]) -> None:
    legs, rate, call_rate, layout = setup
    s = session(calls, layout, call_rate)
    source = PcmSource(s, legs, rate)  # type: ignore[arg-type]
    for frame in frames:
        source.feed(frame)
    source.finish()
    folder, _ = s.close("fuzz")
    whole = sum(map(len, frames)) // (2 * len(legs))  # samples per leg; a trailing partial frame is dropped
    for leg in legs:
        samples, _ = read_wav(folder / f"{leg}.wav")
        assert len(samples) == (math.ceil(whole * call_rate / rate) if whole else 0)


@fuzz(200)
@given(st.dictionaries(st.sampled_from(["call_id", "channels", "leg", "rate", "caller", "called", "kind", "x"]),
                       st.one_of(st.sampled_from(["1", "2", "caller", "agent", "room", "8000", "16000", "48000",
                                                  "visit", "hearing", "", "08000", "²", "9" * 5000]),
                                 st.text(max_size=200)), max_size=6))
def test_connection_parameters_raise_only_unsupported_media(query: dict[str, str]) -> None:
    try:
        fork = ForkParams.parse(query)
        assert fork.rate in (8000, 16000) and set(fork.legs) <= set(LEGS) and len(fork.call_id) <= 128
        assert len(fork.caller) <= 64 and len(fork.called) <= 64
    except UnsupportedMedia:
        pass
    try:
        capture = CaptureParams.parse(query)
        assert capture.rate in (16000, 48000) and capture.kind in ("visit", "mediation", "hearing")
    except UnsupportedMedia:
        pass
