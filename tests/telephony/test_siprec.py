"""A SIPREC session (RFC 7866) from sipp: a multipart INVITE with two labelled streams and recording
metadata. sipp streams the first m-line; the test sends the second (sipp streams only one), with
RFC 4733 DTMF in it. Each party must land on its own channel, sample for sample."""

from __future__ import annotations

import re
import socket
import struct
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from telephony import rtp
from tests.processes import wait_for
from tests.telephony import sipp
from tests.telephony.conftest import Adapter
from tests.telephony.test_sip_calls import aligned, decoded

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sipp.SIPP, reason="sipp (sip-tester) is not installed")]
DATA = Path(__file__).resolve().parent.parent / "data"
AGENT_6S = DATA / "d03_agent_6s.ulaw"
CALLER_6S = DATA / "d03_caller_6s.ulaw"

SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="SIPREC recording client">
  <send retrans="500">
    <![CDATA[
      INVITE sip:srs@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:src@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:srs@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:src@[local_ip]:[local_port]>;+sip.src
      Require: siprec
      Max-Forwards: 70
      Content-Type: multipart/mixed;boundary=foobar
      Content-Length: [len]

      --foobar
      Content-Type: application/sdp

      v=0
      o=src 1 1 IN IP4 [local_ip]
      s=-
      c=IN IP4 [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
      a=label:1
      a=sendonly
      m=audio [media_port+2] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=label:2
      a=sendonly

      --foobar
      Content-Type: application/rs-metadata+xml
      Content-Disposition: recording-session

      <?xml version="1.0" encoding="UTF-8"?>
      <recording xmlns="urn:ietf:params:xml:ns:recording:1">
        <datamode>complete</datamode>
        <session session_id="s1"><sipSessionID>orig-call-1</sipSessionID></session>
        <participant participant_id="p1"><nameID aor="sip:8001@pbx.local"><name>Agent 8001</name></nameID></participant>
        <participant participant_id="p2"><nameID aor="sip:13912345678@carrier.net"/></participant>
        <stream stream_id="st1" session_id="s1"><label>1</label></stream>
        <stream stream_id="st2" session_id="s1"><label>2</label></stream>
        <participantstreamassoc participant_id="p1"><send>st1</send><recv>st2</recv></participantstreamassoc>
        <participantstreamassoc participant_id="p2"><send>st2</send><recv>st1</recv></participantstreamassoc>
      </recording>
      --foobar--
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200"/>
  <send>
    <![CDATA[
      ACK sip:srs@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:src@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:srs@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <nop><action><exec rtp_stream="{audio},1,0"/></action></nop>
  <pause milliseconds="7500"/>
  <send retrans="500">
    <![CDATA[
      BYE sip:srs@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:src@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:srs@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
</scenario>
"""


def answered_ports(trace: Path) -> list[int] | None:
    text = trace.read_text() if trace.exists() else ""
    m = re.search(r"SIP/2\.0 200 OK.*?(m=audio.*?)(?:\n\n|-{5,}|$)", text, re.S)
    if not m or "CSeq: 1 INVITE" not in text[m.start():m.start() + 2000]:
        return None
    return [int(p) for p in re.findall(r"m=audio (\d+)", text[m.start():m.start() + 2000])]


def send_stream(port: int, audio: bytes, dtmf_at: int) -> None:
    """20 ms μ-law packets in real time, and digit 7 (RFC 4733: three end packets) after ``dtmf_at`` frames."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        start = time.monotonic()
        for i in range(len(audio) // 160):
            s.sendto(rtp.build(payload_type=0, seq=i, timestamp=i * 160, ssrc=77, payload=audio[i * 160:(i + 1) * 160]),
                     ("127.0.0.1", port))
            if i == dtmf_at:
                for n in range(3):
                    event = struct.pack("!BBH", 7, 0x80 | 10, 800)
                    s.sendto(rtp.build(payload_type=101, seq=i, timestamp=i * 160, ssrc=77, payload=event,
                                       marker=n == 0), ("127.0.0.1", port))
            time.sleep(max(0.0, start + (i + 1) * 0.02 - time.monotonic()))


def test_siprec_streams_land_on_their_parties_channels(adapter: Adapter, tmp_path: Path) -> None:
    before = len(adapter.calls())
    trace = tmp_path / "messages.log"
    scenario = tmp_path / "siprec.xml"
    scenario.write_text(SCENARIO.replace("{audio}", str(AGENT_6S)))
    assert sipp.SIPP
    proc = subprocess.Popen([sipp.SIPP, f"127.0.0.1:{adapter.port}", "-sf", str(scenario), "-m", "1", "-t", "t1",
                             "-i", "127.0.0.1", "-p", "0", "-mi", "127.0.0.1", "-mp", str(sipp.free_media_port()),
                             "-nostdin", "-trace_msg", "-message_file", str(trace), "-timeout", "60s"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        ports = wait_for(lambda: answered_ports(trace), 20, "the SIPREC 200 OK", adapter.log)
        assert isinstance(ports, list) and len(ports) == 2 and all(ports)
        send_stream(ports[1], CALLER_6S.read_bytes(), dtmf_at=100)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-3000:]
    assert "a=recvonly" in trace.read_text()
    call = adapter.wait_calls(before + 1)[before]
    assert (call.source, call.status, call.caller, call.called) == ("siprec", "ended", "13912345678", "8001")
    assert [d["digit"] for d in call.dtmf] == ["7"]
    assert call.recording_id
    audio = adapter.audio(call.recording_id)
    caller, agent = decoded(CALLER_6S), decoded(AGENT_6S)
    assert np.array_equal(aligned(audio[:, 0], caller)[: len(caller)], caller)  # label 2: the 139… caller
    assert np.array_equal(aligned(audio[:, 1], agent)[: len(agent)], agent)  # label 1: agent 8001
