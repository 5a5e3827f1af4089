"""dispatch.cookie_gate: the stateless cookie check of RFC 7296 §2.6 on raw bytes.

Inputs are strongSwan's real IKE_SA_INIT requests (tests/data/strongswan); the expected
cookies are computed here with hashlib's BLAKE2s, independently of the code under test.
Both twins are checked, and a hypothesis test feeds them the same mutated requests.
"""

import hashlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyiked._fast import wire
from pyiked.core.iana import NotifyType
from tests.helpers import both_impls, fast_impls
from tests.unit.wire_data import CAPTURES, ike_messages

SECRET, PREV = b"S" * 32, b"P" * 32
IP = b"10.231.0.1"


def requests():
    """strongSwan's first IKE_SA_INIT request of each capture (no cookie in it)."""
    out = []
    for capture in CAPTURES:
        for d, raw in ike_messages(capture):
            if raw[18] == 34 and not raw[19] & 0x20:
                out.append(raw)
                break
    return out


def nonce_of(raw):
    return next(p.data for p in wire.decode(raw).payloads if p.payload_type == 40)


def expected_cookie(raw, version=3, key=SECRET, ip=IP):
    return bytes((version,)) + hashlib.blake2s(nonce_of(raw) + raw[:8] + ip, key=key, digest_size=16).digest()


def with_cookie(raw, cookie, notify_type=16390):
    notify = struct.pack("!BBHBBH", raw[16], 0, 8 + len(cookie), 0, 0, notify_type) + cookie
    body = notify + raw[28:]
    return raw[:16] + b"\x29" + raw[17:24] + struct.pack("!I", 28 + len(body)) + body


IMPLS = fast_impls("dispatch")


@pytest.fixture(params=[name for name, _ in IMPLS])
def gate(request):
    module = dict(IMPLS)[request.param]
    return lambda data, off=0, ip=IP, version=3, secret=SECRET, pv=2, ps=PREV: \
        module.cookie_gate(data, off, ip, version, secret, pv, ps)


@pytest.mark.parametrize("raw", requests())
def test_no_cookie_gets_the_cookie_response(gate, raw):
    reply = gate(raw)
    msg = wire.decode(reply)  # a well-formed IKE message
    assert msg.spi_i == raw[:8] and msg.spi_r == b"\0" * 8
    assert msg.exchange_type == 34 and msg.is_response and not msg.is_initiator and msg.message_id == 0
    (n,) = msg.payloads
    assert n.type == NotifyType.COOKIE and n.protocol_id == 0 and n.spi == b""
    assert n.data == expected_cookie(raw)


@pytest.mark.parametrize("raw", requests())
def test_valid_cookies_current_and_previous(gate, raw):
    assert gate(with_cookie(raw, expected_cookie(raw))) is None
    assert gate(with_cookie(raw, expected_cookie(raw, 2, PREV))) is None  # the previous secret
    # with the marker offset (port 4500)
    assert gate(b"\0\0\0\0" + with_cookie(raw, expected_cookie(raw)), 4) is None


@pytest.mark.parametrize("raw", requests())
@pytest.mark.parametrize("cookie", [
    lambda raw: expected_cookie(raw, 1, SECRET),  # unknown version
    lambda raw: expected_cookie(raw, 2, SECRET),  # previous version, current secret
    lambda raw: expected_cookie(raw, ip=b"10.231.0.9"),  # another address
    lambda raw: expected_cookie(raw)[:-1],  # short
    lambda raw: expected_cookie(raw) + b"x",  # long
    lambda raw: b"",
])
def test_bad_cookies_get_a_fresh_one(gate, raw, cookie):
    reply = gate(with_cookie(raw, cookie(raw)))
    assert wire.decode(reply).payloads[0].data == expected_cookie(raw)


def test_cookie_must_be_the_first_payload(gate):
    raw = requests()[0]
    msg = wire.decode(raw)
    payloads = list(msg.payloads)
    payloads.insert(1, wire.Notify(NotifyType.COOKIE, expected_cookie(raw)))
    second = wire.encode(wire.Message(msg.spi_i, msg.spi_r, 34, msg.flags, 0, payloads))
    assert gate(second) == gate(raw)  # ignored: a cookie response
    # another notify type in front is no cookie either
    assert gate(with_cookie(raw, expected_cookie(raw), notify_type=16388)) is not None


def test_junk_is_dropped(gate):
    raw = requests()[0]
    no_nonce = wire.encode(wire.Message(raw[:8], b"\0" * 8, 34, 0x08, 0,
                                        [p for p in wire.decode(raw).payloads if p.payload_type != 40]))
    payloads = [wire.Nonce(b"n" * 15) if p.payload_type == 40 else p for p in wire.decode(raw).payloads]
    short_nonce = wire.encode(wire.Message(raw[:8], b"\0" * 8, 34, 0x08, 0, payloads))  # §2.10: >= 16
    assert gate(no_nonce) == b""
    assert gate(raw[:28]) == b""  # header only
    assert gate(raw[:30]) == b""  # payload header cut
    assert gate(raw[:16] + b"\x21\x30" + raw[18:]) == b""  # major version 3
    bad_len = bytearray(raw)
    bad_len[30:32] = b"\xff\xff"
    assert gate(bytes(bad_len)) == b""
    bad_len[30:32] = b"\x00\x02"
    assert gate(bytes(bad_len)) == b""
    assert gate(short_nonce) == b""
    assert gate(b"") == b"" and gate(b"\0" * 3, 4) == b""


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_twins_agree_on_mutated_requests(data):
    py, c = both_impls("dispatch")
    raw = data.draw(st.sampled_from(requests()))
    if data.draw(st.booleans()):
        raw = with_cookie(raw, data.draw(st.sampled_from([expected_cookie(raw), b"\x03" * 17, b"x"])))
    raw = bytearray(raw)
    for _ in range(data.draw(st.integers(0, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    blob = bytes(raw[:cut])
    off = data.draw(st.sampled_from([0, 0, 4, 30]))
    args = (blob, off, IP, 3, SECRET, 2, PREV)
    assert py.cookie_gate(*args) == c.cookie_gate(*args)


def test_accepts_bytearray_and_memoryview(gate):
    raw = with_cookie(requests()[0], expected_cookie(requests()[0]))
    assert gate(bytearray(raw)) is None and gate(memoryview(raw)) is None
