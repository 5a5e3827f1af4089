"""dispatch.classify: every datagram of the real captures, the RFC 3948 framing rules,
drops that never raise, and the two twins agreeing."""

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from pyiked._fast import dispatch, wire
from tests.helpers import both_impls
from tests.unit.wire_data import CAPTURES, datagrams, decrypt_sk

SPI_I, SPI_R = b"\x01" * 8, b"\x02" * 8


def ike(first=0, exchange=34, flags=0x08, mid=0, version=0x20, body=b"", spi_i=SPI_I):
    """An IKE header (RFC 7296 §3.1) with a correct Length, plus body."""
    return spi_i + SPI_R + struct.pack("!BBBBII", first, version, exchange, flags, mid,
                                       28 + len(body)) + body


def child_spis(capture):
    """The ESP SPIs each side chose, from the decrypted IKE_AUTH SA payloads."""
    spis = {}
    for d in datagrams(capture):
        if d.dport == 4500 and d.payload[:4] == b"\0\0\0\0":
            raw = d.payload[4:]
            m = wire.decode(raw)
            if m.exchange_type == 35:
                sk = m.payloads[0]
                inner = wire.decode_payloads(
                    decrypt_sk(capture, raw, sk.offset, m.is_initiator), sk.next_payload)
                sa = next(p for p in inner if type(p) is wire.SA)
                spis[d.src] = sa.proposals[0].spi
    return spis


def test_every_datagram_of_the_captures():
    for capture in CAPTURES:
        chosen = child_spis(capture)
        kinds = []
        for d in datagrams(capture):
            kind, offset, spi_i, spi_r, exchange, flags, mid = dispatch.classify(d.payload, d.dport)
            kinds.append(kind)
            if kind == dispatch.IKE:
                assert offset == (0 if d.dport == 500 else 4)
                m = wire.decode(d.payload[offset:])
                assert (spi_i, spi_r, exchange, flags, mid) == (
                    m.spi_i, m.spi_r, m.exchange_type, m.flags, m.message_id)
            else:
                # ESP-in-UDP: sent to the SPI the *other* side chose for its inbound SA
                assert kind == dispatch.ESP and d.dport == 4500
                peer = "10.231.0.2" if d.src == "10.231.0.1" else "10.231.0.1"
                assert (offset, spi_i) == (0, chosen[peer])
                assert spi_i == d.payload[:4]
        # IKE_SA_INIT on 500, IKE_AUTH on 4500, 2+2 ESP packets, 3 INFORMATIONAL pairs
        assert kinds.count(dispatch.IKE) == 10 and kinds.count(dispatch.ESP) == 4, capture
        ports = [d.dport for d in datagrams(capture)]
        assert ports[:2] == [500, 500] and set(ports[2:]) == {4500}


def test_port_500_has_no_marker():
    raw = ike(exchange=34, flags=0x08, mid=0)
    assert dispatch.classify(raw, 500) == (dispatch.IKE, 0, SPI_I, SPI_R, 34, 0x08, 0)
    # on 4500 the same octets are not behind a marker: their first four octets are the
    # SPI of an ESP packet (RFC 3948 §2.2)
    assert dispatch.classify(raw, 4500) == (dispatch.ESP, 0, SPI_I[:4], b"", 0, 0, 0)
    assert dispatch.classify(b"\0\0\0\0" + raw, 4500) == (
        dispatch.IKE, 4, SPI_I, SPI_R, 34, 0x08, 0)
    # on 500, four zero octets are the start of an SPI_i, not a marker: the header read
    # there is junk (its version octet is an SPI_R octet)
    assert dispatch.classify(b"\0\0\0\0" + raw, 500)[0] == dispatch.DROP_VERSION


def test_header_fields():
    raw = b"\0\0\0\0" + ike(exchange=37, flags=0x20 | 0x10 | 0x07, mid=0xFFFFFFFE)
    # flags keep Initiator/Response only, as wire.decode does (§3.1)
    assert dispatch.classify(raw, 4500) == (dispatch.IKE, 4, SPI_I, SPI_R, 37, 0x20, 0xFFFFFFFE)
    assert dispatch.classify(bytearray(raw), 4500) == dispatch.classify(raw, 4500)
    assert dispatch.classify(memoryview(raw), 4500) == dispatch.classify(raw, 4500)


def test_keepalive_and_esp():
    # RFC 3948 §2.3: a single 0xFF octet, on the NAT-T port only
    assert dispatch.classify(b"\xff", 4500)[0] == dispatch.KEEPALIVE
    assert dispatch.classify(b"\xff", 500)[0] == dispatch.DROP_SHORT
    assert dispatch.classify(b"\xfe", 4500)[0] == dispatch.DROP_SHORT
    esp = b"\x00\x00\x10\x01" + b"\x00\x00\x00\x07" + bytes(40)
    assert dispatch.classify(esp, 4500) == (dispatch.ESP, 0, b"\x00\x00\x10\x01", b"", 0, 0, 0)
    assert dispatch.classify(esp[:8], 4500)[0] == dispatch.ESP
    assert dispatch.classify(esp[:7], 4500)[0] == dispatch.DROP_SHORT


def test_drops():
    cases = [
        (b"", 500, dispatch.DROP_SHORT),
        (b"", 4500, dispatch.DROP_SHORT),
        (b"\0\0\0", 4500, dispatch.DROP_SHORT),
        (b"\0\0\0\0", 4500, dispatch.DROP_SHORT),
        (ike()[:27], 500, dispatch.DROP_SHORT),
        (b"\0\0\0\0" + ike()[:27], 4500, dispatch.DROP_SHORT),
        (ike() + b"x", 500, dispatch.DROP_LENGTH),
        (ike()[:24] + struct.pack("!I", 27), 500, dispatch.DROP_LENGTH),
        (ike()[:24] + struct.pack("!I", 0xFFFFFFFF), 500, dispatch.DROP_LENGTH),
        (ike(version=0x10), 500, dispatch.DROP_VERSION),  # IKEv1: RFC 7296 §2.5
        (b"\0\0\0\0" + ike(version=0x10), 4500, dispatch.DROP_VERSION),
        (ike(version=0x00), 500, dispatch.DROP_VERSION),
        (ike(spi_i=bytes(8)), 500, dispatch.DROP_ZERO_SPI),
    ]
    for data, port, kind in cases:
        result = dispatch.classify(data, port)
        assert result[0] == kind and result[1:] == (0, b"", b"", 0, 0, 0), (data, port)
        assert dispatch.KIND_NAMES[kind].startswith("DROP")


def test_higher_major_version_goes_to_the_engine():
    # decode answers it with INVALID_MAJOR_VERSION (§2.5), whatever its Length says
    raw = ike(version=0x30)[:24] + b"\xff\xff\xff\xff"
    kind, offset, spi_i, *_ = dispatch.classify(raw, 500)
    assert (kind, offset, spi_i) == (dispatch.IKE, 0, SPI_I)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=80), st.sampled_from([500, 4500, 4501]))
def test_never_raises_and_twins_agree(data, port):
    py, c = both_impls("dispatch")
    result = py.classify(data, port)
    assert c.classify(data, port) == result
    kind, offset = result[:2]
    assert kind in py.KIND_NAMES
    if kind == py.IKE:
        assert len(data) - offset >= 28


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 0xFFFFFFFF), st.integers(0, 255), st.integers(0, 255), st.booleans())
def test_ike_headers_agree_with_decode(mid, exchange, flags, natt):
    raw = ike(exchange=exchange, flags=flags, mid=mid)
    datagram = b"\0\0\0\0" + raw if natt else raw
    kind, offset, spi_i, spi_r, ex, fl, mi = dispatch.classify(datagram, 4500 if natt else 500)
    m = wire.decode(datagram[offset:])
    assert kind == dispatch.IKE
    assert (spi_i, spi_r, ex, fl, mi) == (m.spi_i, m.spi_r, m.exchange_type, m.flags, m.message_id)
