"""The calling number from signalling onto the case: SIP From / P-Asserted-Identity (a real sipp call), SIPREC
participants, Twilio ``customParameters``, mod_audio_fork ``caller=`` and metadata; signalling beats a number
read out in the call; masked per role in the case API and the screen pop; the screen pop finds the number's
earlier cases however the number is written."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.auth.permissions import Masking
from app.calls.models import Call
from app.cases import service as cases
from app.cases.models import Case
from app.config import Settings
from app.db import Database, utcnow
from app.jobs import JobQueue
from app.live.service import ScreenPops, Viewer, previous_cases
from app.recordings.models import Recording
from app.transcripts import service as transcripts
from app.users.models import Role
from asr import types as asr
from telephony.numbers import caller_id, phone_number, variants
from telephony.sip import siprec
from telephony.sip.message import parse
from telephony.sip.server import calling_party
from telephony.ws import ForkParams, MediaSession, TwilioStart, parse_twilio
from tests.conftest import DATA, add_user, login
from tests.helpers import file_transcript
from tests.processes import stop
from tests.telephony import sipp
from tests.telephony.conftest import Adapter, start_adapter
from tests.telephony.test_ws import Heard, fork_url, tw, tw_media, tw_start, twilio_url

CALLER_6S = DATA / "d03_caller_6s.ulaw"
NUMBER = "+8613812345678"


# --- one way of writing a number -------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ('"张三" <sip:+8613800138000@sbc.example;user=phone>;tag=1', "+8613800138000"),
    ("<tel:+86-138-0013-8000>", "+8613800138000"),
    ("sip:13800138000@10.0.0.1:5060", "13800138000"),
    ("13800138000", "13800138000"),
    ("%2B8613800138000", "+8613800138000"),
    (" 8613800138000", "+8613800138000"),  # ?caller=+86… unencoded: the + arrives as a space
    ('"Anonymous" <sip:anonymous@anonymous.invalid>;tag=9', ""),
    ("restricted", ""),
    ("Withheld", ""),
    ("", ""),
    ("<mailto:a@b>", ""),
    ("sip:alice@pbx.example", "alice"),  # a softphone account: named, but no phone number
])
def test_caller_id_keeps_digits_and_a_leading_plus_and_drops_withheld(value: str, expected: str) -> None:
    assert caller_id(value) == expected
    assert phone_number(value) == (expected or None if expected != "alice" else None)


def test_variants_make_one_chinese_number_of_its_spellings() -> None:
    mobile = {"+8613812345678", "008613812345678", "8613812345678", "13812345678", "013812345678"}
    for spelling in mobile:
        assert set(variants(spelling)) == mobile
    assert set(variants("+8653288886666")) == set(variants("053288886666")) == \
        {"+8653288886666", "008653288886666", "053288886666"}
    assert variants("1001") == ["1001"]


# --- SIP and SIPREC ----------------------------------------------------------------------------------------


def invite(*headers: str) -> Any:
    lines = ["INVITE sip:12351@hotline.example SIP/2.0", "Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK1",
             "To: <sip:12351@hotline.example>", "Call-ID: c1@x", "CSeq: 1 INVITE", "Max-Forwards: 70",
             *headers, "Content-Length: 0"]
    return parse(("\r\n".join(lines) + "\r\n\r\n").encode())


@pytest.mark.parametrize(("headers", "expected"), [
    (['From: "A" <sip:13800138000@10.0.0.9>;tag=1'], "13800138000"),
    (['From: "A" <sip:13800138000@10.0.0.9>;tag=1', "P-Asserted-Identity: <sip:+8613900001111@carrier;user=phone>"],
     "+8613900001111"),  # the network's assertion beats what the caller's device put in From
    (["From: <sip:anonymous@anonymous.invalid>;tag=1", "Privacy: id",
      'P-Asserted-Identity: "139" <sip:+8613900002222@carrier>, <tel:+8613900002222>'], "+8613900002222"),
    (["From: <sip:anonymous@anonymous.invalid>;tag=1"], ""),  # withheld, nothing asserted: no number
    (["From: <sip:anonymous@anonymous.invalid>;tag=1", "Remote-Party-ID: <sip:053288886666@pbx>;party=calling"],
     "053288886666"),
    (["From: <sip:alice@pbx>;tag=1", "P-Asserted-Identity: <sip:+8613900003333@pbx>"], "+8613900003333"),
])
def test_the_sip_calling_party_is_pai_first_then_from(headers: list[str], expected: str) -> None:
    assert calling_party(invite(*headers)) == expected


METADATA = """<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns="urn:ietf:params:xml:ns:recording:1">
  <participant participant_id="p1"><nameID aor="sip:8001@pbx.example"/></participant>
  <participant participant_id="p2"><nameID aor="{caller}"/></participant>
  <stream stream_id="s1"><label>1</label></stream>
  <participantstreamassoc participant_id="p1"><send>s1</send></participantstreamassoc>
</recording>"""


def test_the_siprec_caller_is_the_participant_who_is_not_the_agent_even_without_a_stream() -> None:
    meta = siprec.parse_metadata(METADATA.format(caller="sip:+8613912345678@sbc.example").encode())
    parties = meta.parties(r"\d{3,6}")
    assert caller_id(parties["caller"].aor) == "+8613912345678" and parties["agent"].user == "8001"
    anonymous = siprec.parse_metadata(METADATA.format(caller="sip:anonymous@anonymous.invalid").encode())
    assert caller_id(anonymous.parties(r"\d{3,6}")["caller"].aor) == ""


@pytest.fixture(scope="module")
def adapter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Adapter]:
    tmp = tmp_path_factory.mktemp("sip-number")
    a = start_adapter(tmp, HOTLINE_SIP_ANSWER_DELAY_MS="0", HOTLINE_SIP_RTP_TIMEOUT_S="3")
    yield a
    stop(a.proc)
    a.database.dispose()


def file_call(database: Database, recording_id: int, turns: list[tuple[str, str]]) -> dict[str, Any]:
    """The case of a call's recording, transcribed as ``turns`` (5 s apart): what the case holds."""
    segments = [asr.Segment(5.0 * i, 5.0 * i + 4, who, text) for i, (who, text) in enumerate(turns)]
    result = asr.Transcript(duration=5.0 * len(turns), language="zh", engine="hand-written", model="-",
                            processing_s=0.0, segments=segments)
    with database.session() as db:
        rec = db.get(Recording, recording_id)
        assert rec is not None
        transcript = transcripts.store(db=db, recording_id=rec.id, result=result)
        case = cases.file_case(db=db, recording=rec, transcript=transcript, actor="test")
        return {"id": case.id, "caller_phone": case.caller_phone, "extracted": case.extracted,
                "suggested": case.suggested}


def test_a_sip_call_files_its_case_with_the_asserted_number_over_from_and_over_what_was_said(
    adapter: Adapter, tmp_path: Path
) -> None:
    pai = "P-Asserted-Identity: <sip:+8613912340001@carrier.example;user=phone>"
    for caller, extra in (("13800138000", pai), ("anonymous", "")):
        r = sipp.run(sipp.call_scenario(audio=CALLER_6S, seconds=1.5, caller=caller, extra_headers=extra),
                     tmp_path, adapter.port)
        assert r.returncode == 0, r.stdout[-2000:] + adapter.log_text()[-2000:]
    asserted, withheld = adapter.wait_calls(2)[:2]
    assert (asserted.caller, withheld.caller) == ("+8613912340001", "")
    assert asserted.recording_id and withheld.recording_id

    said = [("caller", "公司拖欠我工资，我电话是13700001234，你们打这个。"), ("agent", "好的，记下了。")]
    case = file_call(adapter.database, asserted.recording_id, said)
    assert case["caller_phone"] == "+8613912340001"
    assert case["extracted"]["caller_phone"] == {"value": "+8613912340001", "confidence": 1.0,
                                                 "source": "signalling"}
    callback = case["extracted"]["callback_phone"]  # the number read out stays, as evidence, with its second
    assert (callback["value"], callback["segment"], callback["start"]) == ("13700001234", 0, 0.0)
    assert case["suggested"]["caller_phone"]["source"] == "signalling"

    case = file_call(adapter.database, withheld.recording_id, said)  # no number from signalling
    assert case["caller_phone"] == "13700001234" and "callback_phone" not in case["extracted"]
    assert "source" not in case["extracted"]["caller_phone"]


# --- WebSocket media ---------------------------------------------------------------------------------------


@pytest.fixture
def heard(client: TestClient) -> Iterator[Heard]:
    h = Heard(client.app)  # type: ignore[arg-type]
    yield h
    h.unsubscribe()


def only_call(database: Database) -> Call:
    with database.session() as db:
        [call] = db.query(Call).all()
        db.expunge(call)
        return call


def test_twilio_custom_parameters_give_the_number_whatever_their_case(
    client: TestClient, settings: Settings, database: Database, queue: JobQueue, heard: Heard
) -> None:
    start = parse_twilio(tw_start({"From": "sip:+8613800000009@x.twilio.com"}))
    assert isinstance(start, TwilioStart)
    assert start.caller == "sip:+8613800000009@x.twilio.com"  # as sent; the call keeps it one way
    ulaw = CALLER_6S.read_bytes()[:1600]
    with client.websocket_connect(twilio_url(settings.media_secret)) as ws:
        ws.send_text(tw_start({"From": "sip:+8613800000009@x.twilio.com", "To": "12351"}, tracks=("inbound",)))
        for i in range(10):
            ws.send_text(tw_media("inbound", 20 * i, ulaw[160 * i:160 * (i + 1)], i))
        heard.wait(caller=1600)
        ws.send_text(tw("stop", accountSid="AC1", callSid="CA42"))
    call = only_call(database)
    assert (call.caller, call.called, call.recording_id is not None) == ("+8613800000009", "12351", True)
    assert call.recording_id is not None
    case = file_call(database, call.recording_id, [("caller", "我电话是13800000009，公司不给交社保。")])
    assert case["caller_phone"] == "+8613800000009"  # the same number said: no callback number
    assert "callback_phone" not in case["extracted"]


def _pcm(n: int) -> bytes:
    return (3000 + 2000 * np.sin(np.arange(n) / 5)).astype("<i2").tobytes()


def test_fork_caller_query_parameter_gives_the_number(
    client: TestClient, settings: Settings, database: Database, queue: JobQueue, heard: Heard
) -> None:
    assert ForkParams.parse({"caller": "sip:13900000077@fs.example"}).caller == "sip:13900000077@fs.example"
    url = fork_url(settings.media_secret, call_id="fs-1", leg="caller", caller="sip:13900000077@fs.example")
    with client.websocket_connect(url) as ws:
        ws.send_bytes(_pcm(1600))
        heard.wait(caller=1600)
    call = only_call(database)
    assert call.caller == "13900000077" and call.recording_id is not None
    assert file_call(database, call.recording_id, [("caller", "公司拖欠工资。")])["caller_phone"] == "13900000077"


def test_fork_metadata_sent_after_the_start_still_gives_the_number(
    client: TestClient, settings: Settings, database: Database, queue: JobQueue, heard: Heard
) -> None:
    with client.websocket_connect(fork_url(settings.media_secret, call_id="fs-2", leg="caller")) as ws:
        ws.send_bytes(_pcm(800))
        heard.wait(caller=800)
        ws.send_text(json.dumps({"from": "<sip:+86 139-0000-0088@fs>"}))
        ws.send_bytes(_pcm(800))
        heard.wait(caller=1600)
    call = only_call(database)
    assert call.caller == "+8613900000088"
    assert call.recording_id is not None
    assert file_call(database, call.recording_id, [("caller", "公司拖欠工资。")])["caller_phone"] == "+8613900000088"


def test_a_media_session_keeps_the_number_one_way(tmp_path: Path) -> None:
    session = MediaSession.start(tmp_path, source="fork", caller="<sip:anonymous@anonymous.invalid>")
    assert session.manifest.caller == ""
    assert MediaSession.start(tmp_path, source="twilio", caller="tel:+86-139-0000-0001").manifest.caller == \
        "+8613900000001"


# --- masked per role; the screen pop -------------------------------------------------------------------------


def call_case(database: Database, caller: str, turns: list[tuple[str, str]], name: str) -> int:
    """A case filed from a SIP call from ``caller`` (the call row exists before the case is filed, as
    app/calls/flows.py makes it)."""
    segments = [asr.Segment(5.0 * i, 5.0 * i + 4, who, text) for i, (who, text) in enumerate(turns)]
    result = asr.Transcript(duration=5.0 * len(turns), language="zh", engine="hand-written", model="-",
                            processing_s=0.0, segments=segments)
    with database.session() as db:
        rec = Recording(sha256=hashlib.sha256(name.encode()).hexdigest(), path=f"{name}.wav",
                        original_name=f"{name}.wav", size_bytes=1, format="wav", codec="pcm_mulaw",
                        sample_rate=8000, channels=2, duration=result.duration, layout="caller-left",
                        channel="来电", status="done", uploaded_by="test")
        db.add(rec)
        db.flush()
        db.add(Call(call_uuid=uuid.uuid4().hex, source="sip", external_id=f"{name}@pbx", caller=caller,
                    called="12351", channel="来电", status="ended", started_at=utcnow(), recording_id=rec.id,
                    dtmf=[], events=[]))
        db.flush()
        transcript = transcripts.store(db=db, recording_id=rec.id, result=result)
        return cases.file_case(db=db, recording=rec, transcript=transcript, actor="test").id


def test_the_case_api_masks_the_calling_number_for_roles_without_phone_unmasked(
    client: TestClient, database: Database
) -> None:
    case_id = call_case(database, NUMBER, [("caller", "我的电话是13700001234，公司拖欠工资。")], "masked")
    add_user(database, "zhang", Role.agent)
    add_user(database, "wang", Role.manager)
    agent = client.get(f"/api/v1/cases/{case_id}", headers=login(client, "zhang")).json()
    manager = client.get(f"/api/v1/cases/{case_id}", headers=login(client, "wang")).json()
    assert agent["caller_phone"] == NUMBER  # agents take calls back: they see it (phone:unmasked), as before
    assert agent["extracted"]["caller_phone"]["value"] == NUMBER
    assert agent["extracted"]["callback_phone"]["value"] == "13700001234"
    assert manager["caller_phone"] == "+86138****5678"
    assert manager["extracted"]["caller_phone"]["value"] == "+86138****5678"
    assert manager["extracted"]["callback_phone"]["value"] == "137****1234"
    assert "13700001234" not in json.dumps(manager, ensure_ascii=False)
    assert "12345678" not in json.dumps(manager, ensure_ascii=False)


def test_the_screen_pop_finds_the_numbers_cases_however_it_was_written_and_masks_it(database: Database) -> None:
    by_call = call_case(database, NUMBER, [("caller", "公司拖欠工资三个月。")], "sip")
    # an uploaded recording: the number was only read out ("13812345678")
    uploaded = file_transcript(database, [("caller", "我电话13812345678，公司不给交社保。")], "upload")
    call_case(database, "+8613900000000", [("caller", "别人的事情，公司拖欠工资。")], "other")
    with database.session() as db:
        found = [c.id for c in previous_cases(db=db, caller="013812345678")]
    assert found == [uploaded, by_call]  # newest first

    event = {"type": "call_started", "call_id": "c1", "caller": NUMBER, "called": "12351", "seq": 1}
    pops = ScreenPops(database)
    manager = Viewer("wang", False, True, Masking.for_role(Role.manager))
    agent = Viewer("zhang", True, True, Masking.for_role(Role.agent))
    seen_by_manager = asyncio.run(manager.present(event, pops))
    seen_by_agent = asyncio.run(agent.present(event, pops))
    assert seen_by_manager["caller"] == "+86138****5678" and seen_by_agent["caller"] == NUMBER
    assert [c["id"] for c in seen_by_manager["previous_cases"]] == [uploaded, by_call]
    assert "13812345678" not in json.dumps(seen_by_manager, ensure_ascii=False)


def test_re_extraction_keeps_the_number_from_signalling(database: Database) -> None:
    case_id = call_case(database, NUMBER, [("caller", "我的电话是13700001234，公司拖欠工资。")], "refresh")
    with database.session() as db:
        case = db.get(Case, case_id)
        assert case is not None
        cases.refresh_case(db=db, case=case, actor="test")
        assert case.caller_phone == NUMBER and case.extracted["caller_phone"]["source"] == "signalling"
        assert case.extracted["callback_phone"]["value"] == "13700001234"
