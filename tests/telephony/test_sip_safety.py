"""Who may talk to the adapter: allowed source networks, digest authentication, per-source rate limit."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

import pytest

from tests.processes import stop
from tests.telephony import sipp
from tests.telephony.conftest import start_adapter
from tests.telephony.test_sip_calls import CALLER_6S, request, sip_request

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sipp.SIPP, reason="sipp (sip-tester) is not installed")]


def test_sources_outside_the_allowed_networks_get_403(tmp_path: Path) -> None:
    a = start_adapter(tmp_path, HOTLINE_SIP_ALLOWED_SOURCES='["10.0.0.0/8"]')
    try:
        assert sip_request(a.port, request("OPTIONS")) == ["SIP/2.0 403 Source Not Allowed"]
        assert sip_request(a.port, request("INVITE")) == ["SIP/2.0 403 Source Not Allowed"]
        assert a.calls() == []
        assert "refused: source not allowed" in a.log_text()
    finally:
        stop(a.proc)
        a.database.dispose()


AUTH_CALL = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="authenticating trunk">
  <send retrans="500">{invite}
  </send>
  <recv response="100" optional="true"/>
  <recv response="401" auth="true"/>
  <send>
    <![CDATA[
      ACK sip:12351@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-3]
      From: "Caller" <sip:13500000001@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:12351@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <send retrans="500">{invite_auth}
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200"/>
{ack}
  <nop><action><exec rtp_stream="{audio},1,0"/></action></nop>
  <pause milliseconds="1500"/>
{bye}
</scenario>
"""


def test_digest_authentication_and_rate_limit(tmp_path: Path) -> None:
    a = start_adapter(tmp_path, HOTLINE_SIP_AUTH_USER="trunk", HOTLINE_SIP_AUTH_PASSWORD="s3cret",
                      HOTLINE_SIP_RATE_LIMIT="10")
    try:
        # no credentials: challenged, nothing recorded
        assert sip_request(a.port, request("INVITE"))[-1] == "SIP/2.0 401 Unauthorized"
        invite = sipp.INVITE.format(caller="13500000001", formats="0", extra="")
        invite_auth = sipp.INVITE.format(caller="13500000001", formats="0", extra="[authentication]\n      ").replace(
            "CSeq: 1 INVITE", "CSeq: 2 INVITE")
        scenario = AUTH_CALL.format(invite=invite, invite_auth=invite_auth, audio=CALLER_6S,
                                    ack=sipp.ACK.format(caller="13500000001", cseq=2),
                                    bye=sipp.BYE.format(caller="13500000001", cseq=3))
        r = sipp.run(scenario, tmp_path, a.port, extra=["-au", "trunk", "-ap", "s3cret"])
        assert r.returncode == 0, r.stdout[-2000:] + a.log_text()[-2000:]
        call = a.wait_calls(1)[0]
        assert call.status == "ended" and call.caller == "13500000001"
        # made-up credentials: challenged again, never answered
        forged = 'Authorization: Digest username="trunk", realm="12351", nonce="1:abc", uri="sip:x", response="0"\r\n'
        assert sip_request(a.port, request("INVITE", headers=forged))[-1] == "SIP/2.0 401 Unauthorized"
        assert len(a.calls()) == 1
        # a flood from one source: beyond the burst (2 × 10/s), requests are dropped and INVITEs get 503
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            local = s.getsockname()[1]
            for _ in range(60):
                s.sendto(request("OPTIONS").replace("LOCALPORT", str(local)).encode(), ("127.0.0.1", a.port))
            s.sendto(request("INVITE").replace("LOCALPORT", str(local)).encode(), ("127.0.0.1", a.port))
            s.settimeout(1.0)
            answers = []
            with contextlib.suppress(TimeoutError):
                while True:
                    answers.append(s.recv(65535).decode().split("\r\n", 1)[0])
        assert 20 <= answers.count("SIP/2.0 200 OK") < 30
        assert answers[-1] == "SIP/2.0 503 Service Unavailable"
    finally:
        stop(a.proc)
        a.database.dispose()
