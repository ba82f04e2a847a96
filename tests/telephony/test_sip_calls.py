"""Real calls into a real `hotline sip`: sipp as the caller, recordings compared sample for sample."""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from app.recordings.models import Recording
from telephony import g711
from telephony.media import Greeting, load_greeting
from tests.processes import stop
from tests.telephony import sipp
from tests.telephony.conftest import Adapter, start_adapter

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sipp.SIPP, reason="sipp (sip-tester) is not installed")]
DATA = Path(__file__).resolve().parent.parent / "data"
CALLER_6S = DATA / "d03_caller_6s.ulaw"  # dev-corpus call D03, caller leg, first 6 s (raw μ-law)


def decoded(path: Path, law: int = g711.PCMU) -> np.ndarray:
    return np.frombuffer(g711.decode(path.read_bytes(), law), "<i2")


def aligned(channel: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """``channel`` from where ``expected`` starts in it (the leg's offset into the call)."""
    lead = int(np.flatnonzero(channel)[0] - np.flatnonzero(expected)[0])
    assert lead >= 0
    return channel[lead:]


def run_ok(scenario: str, tmp: Path, adapter: Adapter, **kw: object) -> None:
    r = sipp.run(scenario, tmp, adapter.port, **kw)  # type: ignore[arg-type]
    errors = (tmp / "sipp-errors.log").read_text() if (tmp / "sipp-errors.log").exists() else ""
    log = adapter.log_text()[-3000:]
    assert r.returncode == 0, f"sipp failed ({r.returncode}):\n{r.stdout[-3000:]}\n{errors[-3000:]}\n{log}"


INFO_DTMF = """
  <send>
    <![CDATA[
      INFO sip:12351@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Caller" <sip:13800138000@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:12351@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 INFO
      Max-Forwards: 70
      Content-Type: application/dtmf-relay
      Content-Length: [len]

      Signal=5
      Duration=160
    ]]>
  </send>
  <recv response="200"/>
"""


def test_call_is_recorded_sample_exact_with_greeting_and_filed(adapter: Adapter, tmp_path: Path) -> None:
    before = len(adapter.calls())
    run_ok(sipp.call_scenario(audio=CALLER_6S, seconds=6.5, middle=INFO_DTMF), tmp_path, adapter)
    call = adapter.wait_calls(before + 1)[before]
    assert (call.source, call.caller, call.called, call.status, call.end_reason) == (
        "sip", "13800138000", "12351", "ended", "bye")
    assert call.answered_at and call.ended_at and call.recording_id
    assert [d["digit"] for d in call.dtmf] == ["5"]
    legs = next(e["legs"] for e in call.events if e["event"] == "rtp")
    assert legs["caller"]["lost"] == 0 and legs["caller"]["received"] == 300
    audio = adapter.audio(call.recording_id)
    # left = caller: every sample sipp sent, in order, nothing added inside
    sent = decoded(CALLER_6S)
    assert np.array_equal(aligned(audio[:, 0], sent)[: len(sent)], sent)
    # right = agent side: the greeting exactly as the caller heard it (μ-law), until the caller hung up
    greeting = load_greeting(str(adapter.settings.greeting_path))
    assert isinstance(greeting, Greeting)
    heard = np.frombuffer(g711.decode(b"".join(greeting.frames[g711.PCMU]), g711.PCMU), "<i2")
    right = aligned(audio[:, 1], heard)
    n = min(len(right), len(heard))
    assert n > 5 * 8000 and np.array_equal(right[:n], heard[:n])


CANCEL = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="cancel before answer">
  <send retrans="500">{invite}
  </send>
  <recv response="100" optional="true"/>
  <recv response="180"/>
  <send>
    <![CDATA[
      CANCEL sip:12351@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-3]
      From: "Caller" <sip:13700000001@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:12351@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 CANCEL
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
  <recv response="487"/>
  <send>
    <![CDATA[
      ACK sip:12351@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-6]
      From: "Caller" <sip:13700000001@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:12351@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
</scenario>
"""


def test_cancel_before_answer_gets_487_and_no_recording(adapter: Adapter, tmp_path: Path) -> None:
    before = len(adapter.calls())
    invite = sipp.INVITE.format(caller="13700000001", formats="0", extra="")
    run_ok(CANCEL.format(invite=invite), tmp_path, adapter)
    call = adapter.wait_calls(before + 1)[before]
    assert (call.status, call.end_reason, call.recording_id, call.answered_at) == ("cancelled", "cancel", None, None)


BYE_TWICE = """
  <send>
    <![CDATA[
      BYE sip:12351@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=z9hG4bK-bye-[call_id]
      From: "Caller" <sip:13700000002@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:12351@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 9 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
"""


def test_bye_retransmissions_are_answered_from_the_transaction(adapter: Adapter, tmp_path: Path) -> None:
    before = len(adapter.calls())
    scenario = sipp.call_scenario(audio=CALLER_6S, seconds=1, caller="13700000002")
    head, _, _ = scenario.rpartition("<send retrans=\"500\">\n    <![CDATA[\n      BYE")
    trace = tmp_path / "messages.log"
    first = BYE_TWICE + '<recv response="200"/>'
    # sipp takes the second 200 for a retransmission and does not hand it to the scenario: the trace counts it
    again = BYE_TWICE + '<recv response="200" timeout="2000" ontimeout="1"/><label id="1"/>'
    again += '<pause milliseconds="10"/></scenario>'
    run_ok(head + first + again, tmp_path, adapter, extra=["-trace_msg", "-message_file", str(trace)])
    calls = adapter.wait_calls(before + 1)
    time.sleep(1)
    received = trace.read_text().split("message received")[1:]
    answers = [m for m in received if "SIP/2.0 200 OK" in m.split("CSeq")[0] and "CSeq: 9 BYE" in m]
    assert len(answers) >= 2  # every retransmission of the BYE was answered again
    assert len(adapter.calls()) == before + 1  # and the call filed once
    assert calls[before].status == "ended" and calls[before].end_reason == "bye"


REINVITE = """
  <pause milliseconds="1000"/>
  <send retrans="500">
    <![CDATA[
      INVITE sip:12351@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Caller" <sip:13700000003@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:12351@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {cseq} INVITE
      Contact: <sip:13700000003@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=caller 53655765 {version} IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
      a={direction}
    ]]>
  </send>
  <recv response="200">
    <action><ereg regexp="a={expect}" search_in="body" check_it="true" assign_to="dir"/></action>
  </recv>
  <send>
    <![CDATA[
      ACK sip:12351@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Caller" <sip:13700000003@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:12351@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {cseq} ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
"""


def test_reinvite_hold_and_resume(adapter: Adapter, tmp_path: Path) -> None:
    before = len(adapter.calls())
    middle = (REINVITE.format(cseq=2, version=2, direction="sendonly", expect="recvonly")
              + REINVITE.format(cseq=3, version=3, direction="sendrecv", expect="sendrecv"))
    run_ok(sipp.call_scenario(audio=CALLER_6S, seconds=3, caller="13700000003", middle=middle), tmp_path, adapter)
    call = adapter.wait_calls(before + 1)[before]
    assert [e["event"] for e in call.events if e["event"] != "rtp"] == ["hold", "resume"]
    assert call.status == "ended" and call.recording_id


def test_tcp_call(adapter: Adapter, tmp_path: Path) -> None:
    before = len(adapter.calls())
    run_ok(sipp.call_scenario(audio=CALLER_6S, seconds=2, caller="13700000004"), tmp_path, adapter, transport="t1")
    call = adapter.wait_calls(before + 1)[before]
    assert call.status == "ended" and call.caller == "13700000004"


SILENT_CALLER = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="caller who sends no audio and never hangs up">
  <send retrans="500">{invite}
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200"/>
{ack}
  <recv request="BYE" timeout="15000"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
</scenario>
"""


def test_rtp_inactivity_ends_the_call_with_bye(adapter: Adapter, tmp_path: Path) -> None:
    before = len(adapter.calls())
    invite = sipp.INVITE.format(caller="13700000005", formats="0", extra="")
    run_ok(SILENT_CALLER.format(invite=invite, ack=sipp.ACK.format(caller="13700000005", cseq=1)), tmp_path, adapter)
    call = adapter.wait_calls(before + 1)[before]
    assert call.end_reason == "rtp-timeout"
    assert call.status == "ended"  # the greeting we played is on file (agent channel)


def test_no_common_codec_gets_488(adapter: Adapter, tmp_path: Path) -> None:
    scenario = f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="G.729 only">
  <send retrans="500">{sipp.INVITE.format(caller="13700000006", formats="18", extra="")}
  </send>
  <recv response="100" optional="true"/>
  <recv response="488"/>
{sipp.ACK.format(caller="13700000006", cseq=1)}
</scenario>
"""
    run_ok(scenario, tmp_path, adapter)


def sip_request(port: int, raw: str, *, timeout: float = 2.0) -> list[str]:
    """Send one datagram; the status lines of the responses that come back within ``timeout``."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(timeout)
        local = s.getsockname()[1]
        s.sendto(raw.replace("LOCALPORT", str(local)).encode(), ("127.0.0.1", port))
        out = []
        try:
            while True:
                out.append(s.recv(65535).decode().split("\r\n", 1)[0])
                s.settimeout(0.5)
        except TimeoutError:
            return out


def request(method: str, *, call_id: str = "", headers: str = "", drop: str = "") -> str:
    lines = [f"{method} sip:12351@127.0.0.1 SIP/2.0",
             f"Via: SIP/2.0/UDP 127.0.0.1:LOCALPORT;branch=z9hG4bK{uuid.uuid4().hex}",
             "From: <sip:13700000009@127.0.0.1>;tag=t1", "To: <sip:12351@127.0.0.1>",
             f"Call-ID: {call_id or uuid.uuid4().hex}", f"CSeq: 1 {method}", "Max-Forwards: 70"]
    lines = [ln for ln in lines if not (drop and ln.startswith(drop))]
    return "\r\n".join(lines) + "\r\n" + headers + "Content-Length: 0\r\n\r\n"


def test_malformed_and_stray_messages_do_not_disturb_a_call(adapter: Adapter, tmp_path: Path) -> None:
    """While a call is being recorded: garbage is dropped, a request missing Call-ID gets 400, BYE and
    INVITE re-tries for unknown dialogs get 481, OPTIONS 200, REGISTER 405, an oversized one 513; the
    call's recording is still exact."""
    import threading

    before = len(adapter.calls())
    result: dict[str, object] = {}
    sipp_thread = threading.Thread(target=lambda: result.update(r=sipp.run(
        sipp.call_scenario(audio=CALLER_6S, seconds=6.5, caller="13700000007"), tmp_path, adapter.port)))
    sipp_thread.start()
    time.sleep(2.5)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for junk in (b"\x00\x01garbage", b"NOT SIP AT ALL\r\n\r\n", b"\xff" * 3000):
            s.sendto(junk, ("127.0.0.1", adapter.port))
    assert sip_request(adapter.port, request("OPTIONS", drop="Call-ID"))[0].startswith("SIP/2.0 400 Bad Request")
    assert sip_request(adapter.port, request("BYE")) == ["SIP/2.0 481 Call/Transaction Does Not Exist"]
    assert sip_request(adapter.port, request("INVITE", headers="To: <sip:x@y>;tag=nope\r\n").replace(
        "To: <sip:12351@127.0.0.1>\r\n", ""))[-1] == "SIP/2.0 481 Call/Transaction Does Not Exist"
    assert sip_request(adapter.port, request("OPTIONS")) == ["SIP/2.0 200 OK"]
    assert sip_request(adapter.port, request("REGISTER")) == ["SIP/2.0 405 Method Not Allowed"]
    huge = request("OPTIONS", headers=f"X-Padding: {'a' * 20000}\r\n")
    assert sip_request(adapter.port, huge) == ["SIP/2.0 513 Message Too Large"]
    sipp_thread.join(60)
    assert result["r"].returncode == 0  # type: ignore[attr-defined]
    call = adapter.wait_calls(before + 1)[before]
    sent = decoded(CALLER_6S)
    assert np.array_equal(aligned(adapter.audio(call.recording_id)[:, 0], sent)[: len(sent)], sent)  # type: ignore[arg-type]


def test_with_encryption_off_the_legs_are_wavs_and_the_call_is_filed_in_clear(tmp_path: Path) -> None:
    """HOTLINE_ENCRYPT_RECORDINGS=false: no data key, the legs recorded as WAVs (filing refuses a sealed leg
    in a call without a key), the recording stored in clear; the default adapter above seals both."""
    clear = start_adapter(tmp_path, HOTLINE_ENCRYPT_RECORDINGS="false")
    try:
        run_ok(sipp.call_scenario(audio=CALLER_6S, seconds=3, caller="13700000009"), tmp_path, clear)
        call = clear.wait_calls(1)[0]
        assert (call.status, call.caller) == ("ended", "13700000009") and call.recording_id, call.error
        with clear.database.session() as db:
            rec = db.get(Recording, call.recording_id)
            assert rec is not None and not rec.encrypted
        sent = decoded(CALLER_6S)
        got = aligned(clear.audio(call.recording_id)[:, 0], sent)
        assert len(got) > 2 * 8000 and np.array_equal(got, sent[: len(got)])
    finally:
        stop(clear.proc)
        clear.database.dispose()
