"""WebSocket media streams against the real app (SQLite and PostgreSQL): Twilio Media Streams, raw L16
(mod_audio_fork) and browser capture, each filed as a recording asserted sample-exact; plus the Twilio
parser, the recorder's placement by time and the streaming downsampler on their own."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import threading
import time
import wave
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from scipy.signal import resample_poly
from starlette.testclient import WebSocketTestSession

from app.audit.models import AuditEvent
from app.calls.flows import leg_key
from app.calls.media_views import media_streams
from app.calls.models import Call
from app.config import Settings
from app.db import Database
from app.jobs import JobQueue
from app.main import create_app
from app.recordings import files
from app.recordings.models import Recording
from app.users.models import Role
from telephony import g711, sealed
from telephony.frames import AudioChunk, Frame
from telephony.recorder import CallManifest
from telephony.ws import (
    Downsampler,
    ForkParams,
    MediaError,
    MediaSession,
    TwilioDtmf,
    TwilioMedia,
    TwilioStart,
    TwilioStream,
    UnsupportedMedia,
    apply_metadata,
    parse_twilio,
)
from tests.conftest import DATA, add_user, login

CALLER_ULAW = (DATA / "d03_caller_6s.ulaw").read_bytes()
AGENT_ULAW = (DATA / "d03_agent_6s.ulaw").read_bytes()
CHUNK = 160  # 20 ms of 8 kHz μ-law, as Twilio sends it


# --- helpers ---------------------------------------------------------------------------------------------


class Heard:
    """Audio the app published on its frame bus, per role: tests wait on it rather than sleep, so every
    frame sent has been recorded before the connection is cut."""

    def __init__(self, app: FastAPI) -> None:
        self.samples: Counter[str] = Counter()
        self.cond = threading.Condition()
        self.unsubscribe = media_streams(app).bus.subscribe(self._on)

    def _on(self, frame: Frame) -> None:
        if isinstance(frame, AudioChunk):
            with self.cond:
                self.samples[frame.role] += len(frame.pcm) // 2
                self.cond.notify_all()

    def wait(self, **want: int) -> None:
        with self.cond:
            ok = self.cond.wait_for(lambda: all(self.samples[r] >= n for r, n in want.items()), timeout=10)
        assert ok, f"heard {dict(self.samples)}, waited for {want}"


@pytest.fixture
def heard(client: TestClient) -> Iterator[Heard]:
    h = Heard(client.app)  # type: ignore[arg-type]
    yield h
    h.unsubscribe()


def _calls(database: Database) -> list[Call]:
    with database.session() as db:
        rows = list(db.execute(sa.select(Call).order_by(Call.id)).scalars())
        db.expunge_all()
        return rows


def _filed(settings: Settings, database: Database) -> tuple[Call, np.ndarray, int]:
    """The one call there is, its recording as (samples, channels) int16, and the recording's rate."""
    calls = _calls(database)
    assert len(calls) == 1, calls
    call = calls[0]
    assert call.recording_id is not None, (call.status, call.error)
    with database.session() as db:
        rec = db.get(Recording, call.recording_id)
        assert rec is not None
    with files.local_copy(settings, rec) as path, wave.open(str(path)) as w:  # decrypted, sha256 checked
        audio = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, w.getnchannels())
        rate = w.getframerate()
    assert list((settings.calls_dir / "ws").iterdir()) == [], "the call's folder is removed once filed"
    return call, audio, rate


def _closed(ws: WebSocketTestSession) -> tuple[int, str]:
    message = ws.receive()
    assert message["type"] == "websocket.close", message
    return int(message["code"]), str(message.get("reason", ""))


def _ulaw_pcm(ulaw: bytes) -> np.ndarray:
    return np.frombuffer(g711.decode(ulaw, g711.PCMU), "<i2")


def _tone(n: int, freq: float, level: int, rate: int = 8000) -> np.ndarray:
    """A tone riding on a DC level, so no sample is zero (the tests find a leg's start by its first sample)."""
    return (level + 2000 * np.sin(2 * np.pi * freq * np.arange(n) / rate)).astype("<i2")


def _pad(samples: np.ndarray, length: int) -> np.ndarray:
    return np.concatenate([samples, np.zeros(length - len(samples), "<i2")])


def _lead(channel: np.ndarray) -> int:
    return int(np.flatnonzero(channel)[0])


def _actions(database: Database) -> list[str]:
    with database.session() as db:
        return list(db.execute(sa.select(AuditEvent.action).order_by(AuditEvent.seq)).scalars())


# --- Twilio messages -------------------------------------------------------------------------------------


def tw_start(params: dict[str, str], tracks: tuple[str, ...] = ("inbound", "outbound"), **fmt: Any) -> str:
    media_format = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1, **fmt}
    return json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": "MZ1", "start": {
        "accountSid": "AC1", "streamSid": "MZ1", "callSid": "CA42", "tracks": list(tracks),
        "customParameters": params, "mediaFormat": media_format}})


def tw_media(track: str, timestamp: int, ulaw: bytes, chunk: int = 1) -> str:
    return json.dumps({"event": "media", "sequenceNumber": str(chunk + 1), "streamSid": "MZ1", "media": {
        "track": track, "chunk": str(chunk), "timestamp": str(timestamp),
        "payload": base64.b64encode(ulaw).decode()}})


def tw(event: str, **body: Any) -> str:
    return json.dumps({"event": event, "streamSid": "MZ1", event: body})


def twilio_url(token: str) -> str:
    return f"/api/v1/media/twilio?token={token}"


# --- Twilio Media Streams through the app ----------------------------------------------------------------


def test_twilio_call_is_filed_stereo_sample_exact_with_gap_as_silence(
    client: TestClient, settings: Settings, database: Database, queue: JobQueue, heard: Heard
) -> None:
    inbound = [CALLER_ULAW[i * CHUNK:(i + 1) * CHUNK] for i in range(40)]
    outbound = [AGENT_ULAW[i * CHUNK:(i + 1) * CHUNK] for i in range(45)]
    # the caller's stream skips 100 ms after its 10th chunk; the agent's starts 40 ms in
    messages = [(20 * i + (100 if i >= 10 else 0), tw_media("inbound", 20 * i + (100 if i >= 10 else 0), c, i))
                for i, c in enumerate(inbound)]
    messages += [(40 + 20 * i, tw_media("outbound", 40 + 20 * i, c, i)) for i, c in enumerate(outbound)]
    messages.sort(key=lambda m: m[0])
    with client.websocket_connect(twilio_url(settings.media_secret)) as ws:
        ws.send_text(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        ws.send_text(tw_start({"from": "+8613800000001", "to": "12351"}))
        for i, (_ts, message) in enumerate(messages):
            ws.send_text(message)
            if i == 30:
                ws.send_text(tw("dtmf", track="inbound_track", digit="5"))
                ws.send_text(tw("mark", name="greeting-done"))
        ws.send_text(tw("stop", accountSid="AC1", callSid="CA42"))
        assert _closed(ws) == (1000, "stop")
    call, audio, rate = _filed(settings, database)

    left = np.concatenate([_ulaw_pcm(b"".join(inbound[:10])), np.zeros(800, "<i2"), _ulaw_pcm(b"".join(inbound[10:]))])
    right = np.concatenate([np.zeros(320, "<i2"), _ulaw_pcm(b"".join(outbound))])
    length = max(len(left), len(right))
    assert (rate, audio.shape) == (8000, (length, 2))
    assert audio[:, 0].tobytes() == _pad(left, length).tobytes()
    assert audio[:, 1].tobytes() == _pad(right, length).tobytes()
    assert (call.source, call.external_id, call.caller, call.called, call.channel, call.status, call.end_reason) == \
        ("twilio", "CA42", "+8613800000001", "12351", "来电", "ended", "stop")
    assert [d["digit"] for d in call.dtmf] == ["5"]
    assert [e["event"] for e in call.events] == ["stream", "mark"]
    assert call.answered_at is not None and call.ended_at is not None
    assert queue.huey.pending_count() == 1
    assert heard.samples == Counter(caller=40 * CHUNK, agent=45 * CHUNK)


@pytest.mark.parametrize("credentials", [{}, {"token": "wrong"}, {"header": "Bearer wrong"}])
def test_twilio_without_the_media_token_is_refused(
    client: TestClient, settings: Settings, database: Database, credentials: dict[str, str]
) -> None:
    url = f"/api/v1/media/twilio?token={credentials['token']}" if "token" in credentials else "/api/v1/media/twilio"
    headers = {"Authorization": credentials["header"]} if "header" in credentials else {}
    with client.websocket_connect(url, headers=headers) as ws:
        code, reason = _closed(ws)
    assert code == 1008 and "media token" in reason
    assert _calls(database) == []
    assert _actions(database)[-1] == "auth.denied"


def test_twilio_token_in_authorization_header_is_accepted(
    client: TestClient, settings: Settings, database: Database
) -> None:
    headers = {"Authorization": f"Bearer {settings.media_secret}"}
    with client.websocket_connect("/api/v1/media/twilio", headers=headers) as ws:
        ws.send_text(tw_start({"caller": "13900000002", "called": "12351"}, tracks=("inbound",)))
        ws.send_text(tw_media("inbound", 0, CALLER_ULAW[:CHUNK * 5]))
        ws.send_text(tw("stop"))
        assert _closed(ws)[0] == 1000
    call, audio, _rate = _filed(settings, database)
    assert (call.caller, call.called) == ("13900000002", "12351")
    assert audio[:, 0].tobytes() == _ulaw_pcm(CALLER_ULAW[:CHUNK * 5]).tobytes()
    assert not audio[:, 1].any()


def test_malformed_message_closes_with_1007_and_audio_before_it_is_filed(
    client: TestClient, settings: Settings, database: Database, queue: JobQueue
) -> None:
    with client.websocket_connect(twilio_url(settings.media_secret)) as ws:
        ws.send_text(tw_start({"caller": "13900000003"}))
        for i in range(10):
            ws.send_text(tw_media("inbound", 20 * i, CALLER_ULAW[i * CHUNK:(i + 1) * CHUNK], i))
        ws.send_text('{"event": "media", "media": {"payload": ')
        code, reason = _closed(ws)
    assert code == 1007 and "not valid JSON" in reason
    call, audio, _rate = _filed(settings, database)
    assert (call.status, call.end_reason) == ("ended", "error")
    assert audio[:, 0].tobytes() == _ulaw_pcm(CALLER_ULAW[:10 * CHUNK]).tobytes()
    assert queue.huey.pending_count() == 1


def test_abrupt_disconnect_without_stop_still_files_the_call(
    client: TestClient, settings: Settings, database: Database, queue: JobQueue, heard: Heard
) -> None:
    with client.websocket_connect(twilio_url(settings.media_secret)) as ws:
        ws.send_text(tw_start({"caller": "13900000004"}))
        for i in range(25):
            ws.send_text(tw_media("inbound", 20 * i, CALLER_ULAW[i * CHUNK:(i + 1) * CHUNK], i))
            ws.send_text(tw_media("outbound", 20 * i, AGENT_ULAW[i * CHUNK:(i + 1) * CHUNK], i))
        heard.wait(caller=25 * CHUNK, agent=25 * CHUNK)
        ws.close(1006)  # the connection is lost: no stop, no close handshake
    call, audio, _rate = _filed(settings, database)
    assert (call.status, call.end_reason, call.caller) == ("ended", "disconnect", "13900000004")
    assert audio[:, 0].tobytes() == _ulaw_pcm(CALLER_ULAW[:25 * CHUNK]).tobytes()
    assert audio[:, 1].tobytes() == _ulaw_pcm(AGENT_ULAW[:25 * CHUNK]).tobytes()
    assert queue.huey.pending_count() == 1


def _call_folder(settings: Settings) -> Path:
    folders = list((settings.calls_dir / "ws").iterdir())
    assert len(folders) == 1, folders
    return folders[0]


def test_legs_are_sealed_on_disk_while_the_call_is_in_progress(
    client: TestClient, settings: Settings, database: Database, heard: Heard
) -> None:
    """Encryption at rest is on by default: while the call runs, each leg's file holds ciphertext only, and
    what was flushed reads back with the key wrapped in call.json (as recovery after a crash would)."""
    caller, agent = CALLER_ULAW[:50 * CHUNK], AGENT_ULAW[:30 * CHUNK]
    pcm = _ulaw_pcm(caller).tobytes()
    with client.websocket_connect(twilio_url(settings.media_secret)) as ws:
        ws.send_text(tw_start({"caller": "13900000009"}))
        for i in range(50):
            ws.send_text(tw_media("inbound", 20 * i, caller[i * CHUNK:(i + 1) * CHUNK], i))
            if i < 30:
                ws.send_text(tw_media("outbound", 20 * i, agent[i * CHUNK:(i + 1) * CHUNK], i))
        heard.wait(caller=50 * CHUNK, agent=30 * CHUNK)
        folder = _call_folder(settings)
        manifest = CallManifest.load(folder)
        assert manifest.key_id == files.keyring(settings).current_id and manifest.wrapped_key
        key = leg_key(settings, manifest)
        assert key is not None and base64.b64encode(key).decode() not in (folder / "call.json").read_text()

        def flushed() -> bool:  # the connection's ticker flushes the legs once a second
            got = sealed.read(folder / "caller.sealed", data_key=key, call_id=manifest.call_id, leg="caller")
            return got.pcm == pcm

        deadline = time.monotonic() + 10
        while not flushed():
            assert time.monotonic() < deadline, "the caller's leg was not flushed within 10 s"
            time.sleep(0.1)
        assert sorted(p.name for p in folder.iterdir()) == [
            "agent.offset", "agent.sealed", "call.json", "caller.offset", "caller.sealed"]
        for leg, sent in (("caller", pcm), ("agent", _ulaw_pcm(agent).tobytes())):
            on_disk = (folder / f"{leg}.sealed").read_bytes()
            assert not any(sent[i:i + 32] in on_disk for i in range(0, len(sent), 32)), f"{leg} in clear"
        ws.send_text(tw("stop"))
        assert _closed(ws)[0] == 1000
    call, audio, _rate = _filed(settings, database)
    assert audio[:, 0].tobytes() == pcm
    assert audio[:len(agent), 1].tobytes() == _ulaw_pcm(agent).tobytes()
    assert not list((settings.data_dir / "tmp").glob("upload-*")), "the staged mix is removed once filed"
    with database.session() as db:
        rec = db.get(Recording, call.recording_id)
        assert rec is not None and rec.encrypted


def test_with_encryption_off_legs_are_wavs_and_the_recording_is_in_clear(
    settings: Settings, database: Database, queue: JobQueue
) -> None:
    clear = settings.model_copy(update={"encrypt_recordings": False})
    caller = CALLER_ULAW[:20 * CHUNK]
    with TestClient(create_app(clear, queue=queue, database=database)) as c, \
            c.websocket_connect(twilio_url(clear.media_secret)) as ws:
        ws.send_text(tw_start({"caller": "13900000010"}, tracks=("inbound",)))
        for i in range(20):
            ws.send_text(tw_media("inbound", 20 * i, caller[i * CHUNK:(i + 1) * CHUNK], i))
        deadline = time.monotonic() + 10
        while not list((clear.calls_dir / "ws").glob("*/caller.wav")):
            assert time.monotonic() < deadline, "no caller.wav"
            time.sleep(0.05)
        folder = _call_folder(clear)
        assert CallManifest.load(folder).wrapped_key is None and not list(folder.glob("*.sealed"))
        ws.send_text(tw("stop"))
        assert _closed(ws)[0] == 1000
    call, audio, _rate = _filed(clear, database)
    assert audio[:, 0].tobytes() == _ulaw_pcm(caller).tobytes()
    with database.session() as db:
        rec = db.get(Recording, call.recording_id)
        assert rec is not None and not rec.encrypted


def test_twilio_media_format_other_than_mulaw_8k_is_refused(client: TestClient, settings: Settings,
                                                            database: Database) -> None:
    with client.websocket_connect(twilio_url(settings.media_secret)) as ws:
        ws.send_text(tw_start({}, encoding="audio/x-l16", sampleRate=16000))
        code, reason = _closed(ws)
    assert code == 1003 and "audio/x-mulaw" in reason
    assert _calls(database) == []


# --- raw L16 (mod_audio_fork) ----------------------------------------------------------------------------


def fork_url(token: str, **query: str) -> str:
    return "/api/v1/media/fork?" + "&".join(f"{k}={v}" for k, v in {"token": token, **query}.items())


def _send_pcm(ws: WebSocketTestSession, samples: np.ndarray, frame_bytes: int = 640) -> None:
    """In frames of ``frame_bytes`` (odd sizes split samples across frames, as a peer may)."""
    data = samples.astype("<i2").tobytes()
    for i in range(0, len(data), frame_bytes):
        ws.send_bytes(data[i:i + frame_bytes])


def test_fork_two_mono_connections_with_one_call_id_make_one_stereo_recording(
    client: TestClient, settings: Settings, database: Database, queue: JobQueue, heard: Heard
) -> None:
    caller, agent = _tone(6000, 440, 5000), _tone(7000, 300, -6000)
    common = {"call_id": "fs-uuid-1", "caller": "13900000005", "called": "12351"}
    with client.websocket_connect(fork_url(settings.media_secret, leg="caller", **common)) as a:
        a.send_text(json.dumps({"note": "unknown keys are kept, not refused"}))
        _send_pcm(a, caller[:3000], frame_bytes=333)
        heard.wait(caller=3000)
        with client.websocket_connect(fork_url(settings.media_secret, leg="agent", **common)) as b:
            _send_pcm(b, agent)
            _send_pcm(a, caller[3000:])
            heard.wait(caller=6000, agent=7000)
        assert _calls(database)[0].status == "active"  # the caller's connection is still open
    call, audio, rate = _filed(settings, database)
    assert (rate, call.source, call.external_id, call.caller, call.called, call.status) == \
        (8000, "fork", "fs-uuid-1", "13900000005", "12351", "ended")
    for channel, sent in ((0, caller), (1, agent)):
        lead = _lead(audio[:, channel])
        assert audio[lead:lead + len(sent), channel].tobytes() == sent.tobytes()
        assert not audio[lead + len(sent):, channel].any()
    assert _lead(audio[:, 0]) <= _lead(audio[:, 1])  # the agent joined later
    assert [e["event"] for e in call.events] == ["metadata"]
    assert queue.huey.pending_count() == 1


@pytest.mark.parametrize("rate", [8000, 16000])
def test_fork_stereo_interleaved_keeps_legs_aligned(
    client: TestClient, settings: Settings, database: Database, heard: Heard, rate: int
) -> None:
    n = rate // 2
    caller, agent = _tone(n, 440, 5000, rate), _tone(n, 250, -7000, rate)
    interleaved = np.column_stack([caller, agent]).reshape(-1)
    headers = {"Authorization": f"Bearer {settings.media_secret}"}
    with client.websocket_connect(f"/api/v1/media/fork?channels=2&rate={rate}", headers=headers) as ws:
        _send_pcm(ws, interleaved, frame_bytes=1282)
        kept = len(range(0, n - 20, 2)) if rate == 16000 else n  # before the filter's tail, at the end
        heard.wait(caller=kept, agent=kept)
    _call, audio, out_rate = _filed(settings, database)
    expected = [caller, agent] if rate == 8000 else \
        [np.clip(np.round(resample_poly(x.astype(float), 1, 2)), -32768, 32767).astype("<i2") for x in (caller, agent)]
    lead = _lead(audio[:, 0])
    assert out_rate == 8000 and audio.shape == (lead + len(expected[0]), 2)
    assert audio[lead:, 0].tobytes() == expected[0].tobytes()
    assert audio[lead:, 1].tobytes() == expected[1].tobytes()


def test_fork_second_connection_for_a_streaming_leg_is_refused(
    client: TestClient, settings: Settings, database: Database, heard: Heard
) -> None:
    url = fork_url(settings.media_secret, call_id="dup", leg="agent")
    with client.websocket_connect(url) as a:
        _send_pcm(a, _tone(800, 300, 4000))
        heard.wait(agent=800)
        with client.websocket_connect(url) as b:
            assert _closed(b)[0] == 1008
    assert len(_calls(database)) == 1


@pytest.mark.parametrize("query", [{"rate": "44100"}, {"channels": "3"}, {"leg": "room"}])
def test_fork_bad_parameters_are_refused_with_1003(client: TestClient, settings: Settings, database: Database,
                                                   query: dict[str, str]) -> None:
    with client.websocket_connect(fork_url(settings.media_secret, **query)) as ws:
        code, reason = _closed(ws)
    assert code == 1003 and next(iter(query)) in reason
    assert _calls(database) == []


# --- browser capture -------------------------------------------------------------------------------------


def _capture_url(headers: dict[str, str], **query: str) -> str:
    token = headers["Authorization"].removeprefix("Bearer ")
    return "/api/v1/media/capture?" + "&".join(f"{k}={v}" for k, v in {"token": token, **query}.items())


def test_browser_capture_by_an_agent_is_a_mono_16k_visit(
    client: TestClient, settings: Settings, database: Database, queue: JobQueue, heard: Heard, agent: dict
) -> None:
    room = _tone(16000, 200, 3000, 16000)
    with client.websocket_connect(_capture_url(agent, kind="visit")) as ws:
        started = ws.receive_json()  # the page learns its own call id, to follow its live transcript
        _send_pcm(ws, room, frame_bytes=4096)
        heard.wait(room=16000)
    call, audio, rate = _filed(settings, database)
    assert started == {"event": "started", "call_id": call.call_uuid}
    assert (rate, audio.shape) == (16000, (16000, 1))
    assert audio[:, 0].tobytes() == room.tobytes()
    assert (call.source, call.channel, call.status, call.caller) == ("browser", "来访", "ended", "")
    with database.session() as db:
        rec = db.get(Recording, call.recording_id)
        assert rec is not None
        assert (rec.layout, rec.channel, rec.uploaded_by, rec.sample_rate) == ("mono", "来访", "user:zhang", 16000)
    assert queue.huey.pending_count() == 1


def test_browser_capture_at_48k_is_downsampled_to_16k(
    client: TestClient, settings: Settings, database: Database, heard: Heard, mediator: dict
) -> None:
    room = _tone(24000, 300, 2000, 48000)
    with client.websocket_connect(_capture_url(mediator, kind="mediation", rate="48000")) as ws:
        _send_pcm(ws, room, frame_bytes=3000)
        heard.wait(room=len(range(0, 24000 - 30, 3)))
    call, audio, rate = _filed(settings, database)
    expected = np.clip(np.round(resample_poly(room.astype(float), 1, 3)), -32768, 32767).astype("<i2")
    assert (rate, call.channel) == (16000, "调解")
    assert audio[:, 0].tobytes() == expected.tobytes()


@pytest.mark.parametrize("token", [None, "not.a.token"])
def test_browser_capture_without_a_valid_login_is_refused(client: TestClient, database: Database,
                                                          token: str | None) -> None:
    url = "/api/v1/media/capture?kind=visit" + (f"&token={token}" if token else "")
    with client.websocket_connect(url) as ws:
        code, reason = _closed(ws)
    assert code == 1008 and reason in ("请先登录", "无效的登录凭证")
    assert _calls(database) == []


def test_browser_capture_needs_recording_upload_permission(client: TestClient, database: Database) -> None:
    add_user(database, "wang", Role.manager)  # managers read and play, they do not record
    with client.websocket_connect(_capture_url(login(client, "wang"), kind="hearing")) as ws:
        assert _closed(ws)[0] == 1008
    assert _calls(database) == []
    assert _actions(database)[-1] == "auth.denied"


def test_browser_capture_with_an_unknown_kind_is_refused(client: TestClient, database: Database,
                                                         agent: dict) -> None:
    with client.websocket_connect(_capture_url(agent, kind="party")) as ws:
        code, reason = _closed(ws)
    assert code == 1003 and "kind" in reason
    assert _calls(database) == []


# --- the Twilio parser on its own ------------------------------------------------------------------------


@pytest.mark.parametrize(("message", "error"), [
    ("not json", "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ("{}", "without an event"),
    ('{"event": "hangup"}', "unknown event"),
    ('{"event": "media", "media": "x"}', "must be an object"),
    (tw("media", track="inbound", timestamp="0", payload="!!not base64!!"), "not valid base64"),
    (tw("media", track="inbound", timestamp="0", payload=5), "base64 string"),
    (tw("media", track="inbound", timestamp="-20", payload=""), "timestamp"),
    (tw("media", track="inbound", timestamp=None, payload=""), "timestamp"),
    (tw("media", track="sideways", timestamp="0", payload=""), "unknown track"),
    (tw("dtmf", digit=5), "digit"),
    (tw("start", mediaFormat={"encoding": "audio/x-mulaw", "sampleRate": 8000}, tracks="inbound"), "tracks"),
    (tw("start", mediaFormat={"encoding": "audio/x-mulaw", "sampleRate": 8000}, tracks=["both"]), "unknown track"),
])
def test_parse_twilio_rejects_bad_messages(message: str | bytes, error: str) -> None:
    with pytest.raises(MediaError, match=error):
        parse_twilio(message)


@pytest.mark.parametrize("fmt", [{"encoding": "audio/x-alaw", "sampleRate": 8000},
                                 {"encoding": "audio/x-mulaw", "sampleRate": 16000},
                                 {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 2}, {}])
def test_parse_twilio_start_needs_mulaw_8k_mono(fmt: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedMedia, match="audio/x-mulaw 8000"):
        parse_twilio(tw("start", mediaFormat=fmt))


def test_parse_twilio_good_messages() -> None:
    start = parse_twilio(tw_start({"caller": "139", "to": "12351", "extra": "x"}))
    assert start == TwilioStart("MZ1", "CA42", ("inbound", "outbound"), "139", "12351",
                                {"caller": "139", "to": "12351", "extra": "x"})
    assert parse_twilio(tw_media("outbound", 1234, b"\x01\x02", 7)) == TwilioMedia("agent", 7, 1234, b"\x01\x02")
    assert parse_twilio(tw("dtmf", track="inbound_track", digit="#")) == TwilioDtmf("#", "inbound_track")


def test_twilio_stream_refuses_media_before_start_and_a_second_start(tmp_path: Path) -> None:
    stream = TwilioStream(tmp_path)
    with pytest.raises(MediaError, match="media before the start"):
        stream.feed(tw_media("inbound", 0, b"\xff" * CHUNK))
    stream.feed(tw("mark", name="early"))  # ignored before the call exists
    stream.feed(tw_start({}))
    with pytest.raises(MediaError, match="second start"):
        stream.feed(tw_start({}))
    with pytest.raises(MediaError, match="DTMF digit"):
        stream.feed(tw("dtmf", digit="55"))
    assert stream.session is not None
    folder, manifest = stream.session.close("test")
    assert manifest.owner == f"{socket.gethostname()}:{os.getpid()}"
    assert json.loads((folder / "call.json").read_text())["end_reason"] == "test"


# --- the recorder on its own -----------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _pcm(value: int, n: int) -> bytes:
    return np.full(n, value, "<i2").tobytes()


def test_session_places_by_time_never_overlapping(tmp_path: Path) -> None:
    clock = FakeClock()
    s = MediaSession.start(tmp_path, source="twilio", clock=clock)
    s.write("caller", _pcm(1, 160), at=800)  # the leg starts 0.1 s in
    s.write("caller", _pcm(2, 160), at=800)  # the same time again: nothing new
    s.write("caller", _pcm(3, 160), at=880)  # half overlaps: only its second half is new
    s.write("caller", _pcm(4, 80), at=1200)  # after a 160-sample gap (the leg holds 800..1040)
    s.write("caller", _pcm(5, 80), at=0)  # before the leg's start: dropped
    with pytest.raises(MediaError, match="too far ahead"):
        s.write("caller", _pcm(6, 80), at=8000 * 61)
    with pytest.raises(ValueError, match="leg 'room'"):
        s.write("room", _pcm(7, 80))
    folder, _manifest = s.close("stop")
    assert (folder / "caller.offset").read_text() == "0.100000"
    data = (folder / "caller.wav").read_bytes()[44:]
    assert data == _pcm(1, 160) + _pcm(3, 80) + _pcm(0, 160) + _pcm(4, 80)


def test_session_rewrites_the_wav_header_once_a_second(tmp_path: Path) -> None:
    clock = FakeClock()
    s = MediaSession.start(tmp_path, source="fork", clock=clock)
    s.write("agent", _pcm(9, 400))
    wav = s.folder / "agent.wav"

    def header_bytes() -> int:
        return int(struct.unpack_from("<I", wav.read_bytes(), 40)[0])

    assert header_bytes() == 0
    clock.now += 0.5
    s.write("agent", _pcm(9, 400))
    assert header_bytes() == 0
    clock.now += 0.5
    s.write("agent", _pcm(9, 400))
    assert header_bytes() == 2400 and wav.stat().st_size == 44 + 2400  # a kill -9 now loses nothing
    s.write("agent", _pcm(9, 400))
    s.flush()  # what the connection's ticker does when the stream stalls
    assert header_bytes() == 3200
    s.close("closed")
    assert (s.folder / "agent.offset").read_text() == "0.000000"


def test_metadata_fills_empty_numbers_and_must_be_an_object(tmp_path: Path) -> None:
    s = MediaSession.start(tmp_path, source="fork", caller="139")
    assert apply_metadata(s, '{"from": "138", "to": "12351", "x": [1]}') == {"from": "138", "to": "12351", "x": [1]}
    assert (s.manifest.caller, s.manifest.called) == ("139", "12351")  # a number given already is kept
    for bad in ('"just a string"', "{oops", "{}" + " " * 9000):
        with pytest.raises(MediaError):
            apply_metadata(s, bad)
    s.close("closed")


def test_fork_params() -> None:
    p = ForkParams.parse({"call_id": "x", "channels": "1", "leg": "agent", "rate": "16000", "caller": "1" * 99})
    assert (p.call_id, p.legs, p.rate, p.caller) == ("x", ("agent",), 16000, "1" * 64)
    assert ForkParams.parse({"channels": "2"}).legs == ("caller", "agent")
    assert len(ForkParams.parse({}).call_id) == 32  # none given: a call of its own


@pytest.mark.parametrize("factor", [2, 3])
def test_downsampler_streamed_in_pieces_equals_resample_poly(factor: int) -> None:
    rng = np.random.default_rng(factor)
    x = (8000 * np.sin(np.arange(9001) * 0.05) + rng.normal(0, 800, 9001)).astype("<i2")
    d = Downsampler(factor)
    out, i = [], 0
    while i < len(x):
        n = int(rng.integers(0, 900))
        out.append(d.process(x[i:i + n]))
        i += n
    out.append(d.flush())
    expected = np.clip(np.round(resample_poly(x.astype(float), 1, factor)), -32768, 32767).astype("<i2")
    assert np.concatenate(out).tobytes() == expected.tobytes()
