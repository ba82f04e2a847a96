"""SIP message parsing and building, SDP offer/answer and SIPREC metadata, from hand-written messages."""

from __future__ import annotations

import pytest

from telephony.sip import sdp, siprec
from telephony.sip.message import BadRequest, StreamFramer, Unparseable, param, parse, response, uri_user

INVITE = (
    "INVITE sip:12351@10.0.0.5 SIP/2.0\r\n"
    "v: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK-1;rport, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-0\r\n"
    "f: \"张三\" <sip:13800138000@10.0.0.9>;tag=abc\r\n"
    "t: <sip:12351@10.0.0.5>\r\n"
    "i: call-1@10.0.0.9\r\n"
    "CSeq: 1 INVITE\r\n"
    "Subject: a folded\r\n  header\r\n"
    "c: application/sdp\r\n"
    "l: 4\r\n"
    "\r\n"
    "v=0\r\nEXTRA"
)


def test_parse_compact_folded_and_multi_value_headers() -> None:
    m = parse(INVITE.encode())
    assert (m.method, m.uri, m.call_id, m.cseq, m.branch, m.from_tag) == (
        "INVITE", "sip:12351@10.0.0.5", "call-1@10.0.0.9", (1, "INVITE"), "z9hG4bK-1", "abc")
    assert m.get_all("via") == ["SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK-1;rport",
                                "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-0"]
    assert m.get("subject") == "a folded header"
    assert m.body == b"v=0\r"  # Content-Length wins over trailing bytes
    assert uri_user(m.get("from")) == "13800138000"


def test_response_copies_dialog_headers_and_adds_our_tag() -> None:
    req = parse(INVITE.encode())
    r = parse(response(req, 180, to_tag="xyz").encode())
    assert (r.status, r.reason, r.to_tag, r.from_tag, r.call_id) == (180, "Ringing", "xyz", "abc", "call-1@10.0.0.9")
    assert r.get_all("via") == req.get_all("via")
    assert parse(response(req, 100, to_tag="xyz").encode()).to_tag == ""  # 100 carries no tag


@pytest.mark.parametrize(("raw", "reason"), [
    (INVITE.replace("i: call-1@10.0.0.9\r\n", ""), "missing Call-ID"),
    (INVITE.replace("CSeq: 1 INVITE", "CSeq: one INVITE"), "bad CSeq"),
    (INVITE.replace("CSeq: 1 INVITE", "CSeq: 1 BYE"), "bad CSeq"),
    (INVITE.replace("l: 4", "l: 400"), "bad Content-Length"),
    (INVITE.replace("Subject: a folded", "Sub ject a folded"), "malformed header line"),
])
def test_bad_requests_are_answerable_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(BadRequest, match=reason) as e:
        parse(raw.encode())
    assert e.value.message.method == "INVITE"


@pytest.mark.parametrize("raw", [b"", b"\r\n\r\n", b"hello world\r\n\r\n", b"\xff\xfe\x00garbage",
                                 INVITE.replace("v: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK-1;rport, SIP/2.0/UDP "
                                                "10.0.0.1;branch=z9hG4bK-0\r\n", "").replace("i: call-1@10.0.0.9\r\n",
                                                                                               "").encode()])
def test_unparseable_or_unanswerable_messages_are_dropped(raw: bytes) -> None:
    with pytest.raises(Unparseable):
        parse(raw)


def test_param_ignores_uri_parameters() -> None:
    assert param("<sip:a@b;tag=inuri>;tag=real", "tag") == "real"
    assert param("<sip:a@b;transport=tcp>", "transport") == ""


def test_stream_framer_splits_by_content_length_and_rejects_oversize() -> None:
    f = StreamFramer(max_size=4096)
    exact = INVITE.replace("l: 4", "l: 10")
    one, two = exact.encode(), exact.replace("call-1", "call-2").encode()
    data = b"\r\n\r\n" + one + two  # keep-alives first
    assert f.feed(data[:50]) == []
    out = f.feed(data[50:])
    assert [parse(m).call_id for m in out] == ["call-1@10.0.0.9", "call-2@10.0.0.9"]
    with pytest.raises(Unparseable, match="size limit"):
        StreamFramer(max_size=100).feed(b"X" * 200)
    with pytest.raises(Unparseable, match="Content-Length"):
        StreamFramer(max_size=4096).feed(b"OPTIONS sip:a SIP/2.0\r\nVia: x\r\n\r\n")


OFFER = """v=0
o=- 1 1 IN IP4 10.0.0.9
s=-
c=IN IP4 10.0.0.9
t=0 0
m=audio 40000 RTP/AVP 18 8 0 101
a=rtpmap:18 G729/8000
a=rtpmap:101 telephone-event/8000
a=sendonly
m=video 40002 RTP/AVP 96
"""


def test_sdp_choice_and_answer_mirror_the_offer() -> None:
    offer = sdp.parse(OFFER)
    audio = offer.audio[0]
    assert (audio.connection, audio.port, audio.on_hold) == ("10.0.0.9", 40000, True)
    choice = sdp.choose(audio)
    assert choice == sdp.Choice(8, "PCMA", 101)  # the offerer's first G.711
    body = sdp.answer([sdp.AnswerStream(30000, choice, sdp.ANSWER_DIRECTION[audio.direction]),
                       sdp.AnswerStream(0, None, "inactive", offered_formats=(96,))],
                      address="10.0.0.5", kinds=["audio", "video"]).decode()
    assert "m=audio 30000 RTP/AVP 8 101\r\n" in body and "a=rtpmap:8 PCMA/8000" in body
    assert "a=recvonly" in body and "m=video 0 RTP/AVP 96" in body and "c=IN IP4 10.0.0.5" in body


def test_sdp_without_g711_or_audio() -> None:
    assert sdp.choose(sdp.parse(OFFER.replace(" 8 0 101", " 101")).audio[0]) is None
    with pytest.raises(sdp.SdpError):
        sdp.parse("v=0\r\nc=IN IP4 1.2.3.4\r\nm=video 5 RTP/AVP 96\r\n")
    with pytest.raises(sdp.SdpError):
        sdp.parse("v=0\r\nm=audio x RTP/AVP 0\r\n")
    held = sdp.parse(OFFER.replace("c=IN IP4 10.0.0.9", "c=IN IP4 0.0.0.0").replace("a=sendonly", "a=sendrecv"))
    assert held.audio[0].on_hold  # RFC 2543 hold


METADATA = b"""<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns="urn:ietf:params:xml:ns:recording:1">
  <datamode>complete</datamode>
  <session session_id="s1"><sipSessionID>abc</sipSessionID></session>
  <participant participant_id="p1"><nameID aor="sip:8001@pbx.local"><name>Agent</name></nameID></participant>
  <participant participant_id="p2"><nameID aor="sip:13800138000@carrier"/></participant>
  <stream stream_id="st1" session_id="s1"><label>1</label></stream>
  <stream stream_id="st2" session_id="s1"><label>2</label></stream>
  <participantstreamassoc participant_id="p1"><send>st1</send><recv>st2</recv></participantstreamassoc>
  <participantstreamassoc participant_id="p2"><send>st2</send><recv>st1</recv></participantstreamassoc>
</recording>"""


def test_siprec_metadata_maps_labels_to_caller_and_agent() -> None:
    meta = siprec.parse_metadata(METADATA)
    roles = meta.roles_by_label(r"\d{3,6}")
    assert {label: (role, p.user) for label, (role, p) in roles.items()} == {
        "1": ("agent", "8001"), "2": ("caller", "13800138000")}
    # no participant looks like an extension: the first listed is the caller
    plain = siprec.parse_metadata(METADATA.replace(b"8001", b"13900139000"))
    assert {k: v[0] for k, v in plain.roles_by_label(r"\d{3,6}").items()} == {"1": "caller", "2": "agent"}


def test_siprec_multipart_split_and_bad_metadata() -> None:
    body = (b"--XX\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n\r\n--XX\r\n"
            b"Content-Type: application/rs-metadata+xml\r\nContent-Disposition: recording-session\r\n\r\n"
            b"<x/>\r\n--XX--\r\n")
    parts = siprec.split_multipart('multipart/mixed;boundary="XX"', body)
    assert parts == {"application/sdp": b"v=0", "application/rs-metadata+xml": b"<x/>"}
    with pytest.raises(siprec.SiprecError):
        siprec.parse_metadata(b"<recording")
    with pytest.raises(siprec.SiprecError):
        siprec.split_multipart("multipart/mixed", body)


@pytest.mark.parametrize("line", [
    "c=IN IP4 example.org",  # a host name: not resolved, refused
    "c=IN IP4 2001:db8::1",  # the family and the address disagree
    "c=IN IP6 192.0.2.1",
    "c=IN IP4 224.2.1.1/127",  # multicast
    "c=IN IP4",  # too short
    "c=XX IP4 192.0.2.1",  # not the Internet network type
    "c=IN IP4 192.0.2.1 extra",
])
def test_sdp_with_an_unusable_connection_address_is_refused(line: str) -> None:
    with pytest.raises(sdp.SdpError, match="c="):
        sdp.parse(f"v=0\r\n{line}\r\nm=audio 4000 RTP/AVP 0\r\n")


def test_sdp_connection_addresses_of_both_families_are_read() -> None:
    assert sdp.parse("v=0\r\nc=IN IP4 192.0.2.10\r\nm=audio 4000 RTP/AVP 0\r\n").audio[0].connection == "192.0.2.10"
    six = sdp.parse("v=0\r\nc=IN IP6 2001:DB8::1\r\nm=audio 4000 RTP/AVP 0\r\n")
    assert six.audio[0].connection == "2001:db8::1"
    held = sdp.parse("v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 4000 RTP/AVP 0\r\n")  # RFC 2543 hold stays legal
    assert held.audio[0].on_hold
