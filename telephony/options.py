"""Everything the adapter can be told, in one dataclass (built from ``app.config.Settings``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from telephony.recorder import KeyIssuer

BUNDLED_GREETING = Path(__file__).resolve().parent / "data" / "greeting.wav"  # 您好，这里是12351职工服务热线…
PRIVATE_NETWORKS = ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")


@dataclass(frozen=True)
class SipOptions:
    calls_dir: Path  # one folder per call in progress (see recorder)
    host: str = "127.0.0.1"
    port: int = 5060
    public_address: str = ""  # address put in SDP and Contact; default: the one the peer reached us on
    rtp_port_min: int = 20000
    rtp_port_max: int = 39999
    greeting: Path | None = None  # played to the caller on answer; None: no greeting
    answer_delay: float = 0.0  # seconds between 180 Ringing and 200 OK
    rtp_timeout: float = 30.0  # a leg with no RTP this long (and not on hold) ends the call with BYE
    max_message_bytes: int = 16384  # SIPREC INVITEs with metadata run to a few KB
    allowed_sources: tuple[str, ...] = PRIVATE_NETWORKS  # CIDRs that may send SIP; others get 403
    rate_limit: float = 200.0  # requests per second per source address (token bucket)
    rate_burst: float = 400.0
    max_calls: int = 2000
    # TCP (RFC 3261 §18, RFC 5626 practice): a connection with no message and no CRLF keep-alive for this long,
    # and no call on it, is closed; a connection carrying a call is kept, and a peer that vanished (half-open
    # connection) is found by TCP keep-alive probes: the first after ``tcp_keepalive`` s of silence, then every
    # third of that, three times, and the connection is closed when none is answered
    tcp_idle_timeout: float = 120.0
    tcp_keepalive: float = 30.0
    tcp_max_per_source: int = 100  # open TCP connections from one address; more are closed at once
    auth_user: str = ""  # digest authentication for INVITE when set
    auth_password: str = ""
    realm: str = "12351"
    agent_pattern: str = r"\d{3,6}"  # SIPREC: a participant whose user part matches is the agent
    keys: KeyIssuer | None = None  # each call's data key (legs sealed); None: legs recorded as WAVs in clear
