"""sipp (Debian's sip-tester) as the far end of real calls: scenarios are written per test from these
templates, so the audio file, duration and headers can vary."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
from pathlib import Path

SIPP = shutil.which("sipp")

INVITE = """
    <![CDATA[
      INVITE sip:12351@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Caller" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:12351@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:{caller}@[local_ip]:[local_port]>
      Max-Forwards: 70
      {extra}Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=caller 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP {formats}
      a=rtpmap:0 PCMU/8000
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
      a=sendrecv
    ]]>"""

ACK = """
  <send>
    <![CDATA[
      ACK sip:12351@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Caller" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:12351@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {cseq} ACK
      Contact: <sip:{caller}@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>"""

BYE = """
  <send retrans="500">
    <![CDATA[
      BYE sip:12351@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Caller" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:12351@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {cseq} BYE
      Contact: <sip:{caller}@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"/>"""


def call_scenario(*, audio: Path | None, seconds: float, caller: str = "13800138000", formats: str = "0 101",
                  payload_type: int = 0, extra_headers: str = "", middle: str = "") -> str:
    """A caller that dials, waits for 200, ACKs, streams ``audio`` (raw G.711), waits ``seconds`` and hangs
    up. ``middle`` is scenario XML inserted after the stream starts (DTMF, re-INVITE …)."""
    stream = f'<nop><action><exec rtp_stream="{audio},1,{payload_type}"/></action></nop>' if audio else ""
    extra = "".join(f"{h}\n      " for h in extra_headers.splitlines() if h.strip())
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="hotline caller">
  <send retrans="500">{INVITE.format(caller=caller, formats=formats, extra=extra)}
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rtd="true"/>
{ACK.format(caller=caller, cseq=1)}
  {stream}
{middle}
  <pause milliseconds="{int(seconds * 1000)}"/>
{BYE.format(caller=caller, cseq=10)}
</scenario>
"""


def free_media_port() -> int:
    """An even UDP port with the next two free too (sipp binds its media port and port + 2)."""
    for _ in range(200):
        port = random.randrange(16000, 19990, 2)
        socks = []
        try:
            for p in (port, port + 1, port + 2, port + 3):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free media port for sipp")


def run(scenario: str, tmp: Path, port: int, *, calls: int = 1, rate: float = 10, extra: list[str] | None = None,
        timeout: float = 60, transport: str = "u1", media_port: int | None = None) -> subprocess.CompletedProcess[str]:
    assert SIPP, "sipp is not installed (Debian package sip-tester; `make test` installs it)"
    path = tmp / f"scenario-{abs(hash(scenario)) % 10**8}.xml"
    path.write_text(scenario)
    cmd = [SIPP, f"127.0.0.1:{port}", "-sf", str(path), "-m", str(calls), "-r", str(rate), "-i", "127.0.0.1",
           "-p", "0", "-mi", "127.0.0.1", "-mp", str(media_port or free_media_port()), "-t", transport, "-nostdin",
           "-trace_err",
           "-error_file", str(tmp / "sipp-errors.log"), "-timeout", f"{int(timeout)}s", *(extra or [])]
    return subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=timeout + 30)
