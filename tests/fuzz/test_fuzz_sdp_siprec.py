"""SDP offers and SIPREC bodies (multipart split, RFC 7865 metadata) under random and mutated input.

``sdp.parse`` may raise only ``SdpError``, ``siprec.split_multipart`` and ``siprec.parse_metadata`` only
``SiprecError``: the UAS answers those with 400 (and treats a body that is not UTF-8 the same way). What
they return must carry the UAS through choosing codecs, mapping streams to parties and writing the answer.
"""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from telephony.sip import sdp, siprec
from tests.fuzz.strategies import fuzz, mutated, mutated_text

OFFER = ("v=0\r\no=- 1 1 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\n"
         "m=audio 40000 RTP/AVP 18 8 0 101\r\na=rtpmap:18 G729/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
         "a=fmtp:101 0-16\r\na=sendonly\r\nm=video 40002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n")
SIPREC_SDP = ("v=0\no=src 1 1 IN IP4 10.0.0.9\ns=-\nc=IN IP4 10.0.0.9/127\nt=0 0\na=recvonly\n"
              "m=audio 4000/2 RTP/AVP 0\na=rtpmap:0 PCMU/8000\na=label:1\na=sendonly\n"
              "m=audio 4002 RTP/SAVP 0 101\nc=IN IP6 ::1\na=rtpmap:101 telephone-event/8000\na=label:2\n")
HOLD = "v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 5004 RTP/AVP 8\r\na=inactive\r\n"
SDP_SEEDS = [OFFER, SIPREC_SDP, HOLD]

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
# RFC 7865 allows the other spelling of the ids, tel: AORs, a participant with no nameID, one sending nothing
METADATA_ODD = b"""<recording xmlns='urn:ietf:params:xml:ns:recording:1'>
  <participant id="a"><nameID aor="tel:+8613800138000"/></participant><participant id="b"/>
  <participant participant_id="c"><nameID><name/></nameID></participant>
  <stream id="x"><label> 7 </label></stream><stream stream_id="y"><label/></stream>
  <participantstreamassoc participant_id="a"><send>x</send><send/><send>nowhere</send></participantstreamassoc>
  <participantstreamassoc><send>y</send></participantstreamassoc>
</recording>"""
AGENT = r"\d{3,6}"


def multipart(boundary: bytes, parts: list[tuple[bytes, bytes]], eol: bytes = b"\r\n") -> bytes:
    out = b""
    for ctype, content in parts:
        out += b"--" + boundary + eol + b"Content-Type: " + ctype + eol + eol + content + eol
    return out + b"--" + boundary + b"--" + eol


BODY = multipart(b"foobar", [(b"application/sdp", SIPREC_SDP.encode()), (b"application/rs-metadata+xml", METADATA)])
# a part that is itself multipart, with another boundary (and one that is a prefix of the outer one)
NESTED = multipart(b"outer", [(b"multipart/mixed;boundary=out", multipart(b"out", [
    (b"application/sdp", OFFER.encode()), (b"application/rs-metadata+xml", METADATA_ODD)])),
    (b"application/sdp", HOLD.encode())], eol=b"\n")
BODIES = [BODY, NESTED]
CONTENT_TYPES = ['multipart/mixed;boundary=foobar', 'multipart/mixed; boundary="outer"', "multipart/mixed",
                 'multipart/mixed;boundary=""', "multipart/mixed;boundary=out", "multipart/mixed;boundary=-",
                 "multipart/mixed;boundary=" + "x" * 5000, "multipart/mixed;boundary=\u4e2d;charset=utf-8"]


def answer_like_the_uas(offer: sdp.SessionDescription) -> None:
    """Choose a codec for every offered stream and write the answer, as the UAS does; it parses back."""
    streams = []
    for m in offer.media:
        assert 0 <= m.port <= 65535 and m.direction in sdp.DIRECTIONS
        choice = sdp.choose(m)
        if choice is not None:
            assert choice.codec in m.formats and choice.name in sdp.SUPPORTED
        streams.append(sdp.AnswerStream(30000 if choice else 0, choice, sdp.ANSWER_DIRECTION[m.direction],
                                        m.label, tuple(m.formats)))
    body = sdp.answer(streams, address="10.0.0.5", kinds=[m.kind for m in offer.media]).decode()
    assert len(sdp.parse(body).media) == len(offer.media)


def check_sdp(text: str) -> None:
    try:
        offer = sdp.parse(text)
    except sdp.SdpError:
        return
    assert offer.audio
    answer_like_the_uas(offer)


@fuzz(400)
@given(st.text(max_size=400))
def test_sdp_random_text_raises_only_sdp_error(text: str) -> None:
    check_sdp(text)


@fuzz(200)
@given(st.lists(st.tuples(st.sampled_from("vocstmab=xz"), st.text(max_size=40)), max_size=20))
def test_sdp_random_lines_raise_only_sdp_error(lines: list[tuple[str, str]]) -> None:
    check_sdp("\r\n".join(f"{k}={v}" for k, v in lines))


@fuzz(600)
@given(mutated_text(SDP_SEEDS))
# found by this test: ports and payload types in digits int() refuses or over its 4300-digit limit
@example(OFFER.replace("40000", "²"))
@example(OFFER.replace("40000", "9" * 5000))
@example(OFFER.replace("rtpmap:18", "rtpmap:²"))
@example(OFFER.replace("rtpmap:18", "rtpmap:" + "9" * 5000))
@example(OFFER.replace("40000", "99999"))  # no such UDP port: the media engine could not send to it
def test_sdp_mutated_offers_raise_only_sdp_error(text: str) -> None:
    check_sdp(text)


def check_metadata(xml: bytes) -> None:
    try:
        meta = siprec.parse_metadata(xml)
    except siprec.SiprecError:
        return
    assert meta.participants
    roles = meta.roles_by_label(AGENT)
    assert all(role in ("caller", "agent") for role, _ in roles.values())
    assert set(meta.parties(AGENT)) <= {"caller", "agent"}
    _ = [p.user for p in meta.participants]


@fuzz(300)
@given(st.binary(max_size=600))
def test_metadata_random_bytes_raise_only_siprec_error(xml: bytes) -> None:
    check_metadata(xml)


@fuzz(500)
@given(mutated([METADATA, METADATA_ODD]))
# found by this test: an XML declaration naming a multi-byte or unknown encoding (ValueError, LookupError)
@example(METADATA.replace(b"UTF-8", b"Shift_JIS"))
@example(METADATA.replace(b"UTF-8", b"EUC-JP"))
@example(METADATA.replace(b"UTF-8", b"bogus"))
@example(METADATA.replace(b"UTF-8", b"UTF-16"))
# entity expansion ("billion laughs") is refused by expat, not expanded
@example(b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "' + b"a" * 100 + b'">' + b"".join(
    b'<!ENTITY %c "%s">' % (98 + i, (b"&%c;" % (97 + i)) * 10) for i in range(8)) + b']><r>&i;</r>')
def test_metadata_mutated_raises_only_siprec_error(xml: bytes) -> None:
    check_metadata(xml)


def offer_like_the_uas(content_type: str, body: bytes) -> None:
    """``SipUas._offer`` for a multipart body: split, metadata, then the SDP part as UTF-8 text."""
    try:
        parts = siprec.split_multipart(content_type, body)
        assert all(p in body for p in parts.values())
        if siprec.METADATA_TYPE in parts:
            check_metadata(parts[siprec.METADATA_TYPE])
        if "application/sdp" in parts:
            check_sdp(parts["application/sdp"].decode())
    except (siprec.SiprecError, UnicodeDecodeError):
        return


@fuzz(500)
@given(st.sampled_from(CONTENT_TYPES), mutated(BODIES))
def test_multipart_mutated_raises_only_siprec_error(content_type: str, body: bytes) -> None:
    offer_like_the_uas(content_type, body)


@fuzz(200)
@given(st.text(max_size=80), st.binary(max_size=400))
def test_multipart_random_raises_only_siprec_error(content_type: str, body: bytes) -> None:
    offer_like_the_uas(content_type, body)
