"""Every payload type: hand-built octets laid out as the RFC 7296 §3 figures (and RFC 7383
§2.5 for SKF) decode to the expected objects and encode back to the same octets;
hypothesis checks decode(encode(m)) == m and encode(decode(b)) == b."""

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from pyiked._fast import wire
from pyiked.core.iana import (
    CfgAttr,
    CfgType,
    EncrId,
    IntegId,
    KeId,
    PrfId,
    ProtocolId,
    NotifyType as NT,
    TransformType as TT,
)
from tests.unit.wire_data import chain_strategy, message_strategy, payload_strategies

SPI_I = bytes.fromhex("0102030405060708")
SPI_R = bytes.fromhex("1112131415161718")


def generic(next_payload, body, flags=0):
    """§3.2 generic payload header + body."""
    return struct.pack("!BBH", next_payload, flags, 4 + len(body)) + body


def header(first, length, exchange=34, flags=0x08, mid=0, version=0x20):
    """§3.1 IKE header."""
    return SPI_I + SPI_R + struct.pack("!BBBBII", first, version, exchange, flags, mid, length)


def message(chain, first, **kw):
    return header(first, 28 + len(chain), **kw) + chain


def chain(*items):
    """(type, body[, flags]) items -> the payload chain with Next Payload fields filled."""
    out = b""
    for i, item in enumerate(items):
        nxt = items[i + 1][0] if i + 1 < len(items) else 0
        out += generic(nxt, item[1], *item[2:])
    return out


def transform(ttype, tid, attrs=b"", last=False):
    body = struct.pack("!BBH", ttype, 0, tid) + attrs
    return struct.pack("!BBH", 0 if last else 3, 0, 4 + len(body)) + body


def proposal(num, protocol, spi, transforms, last=True):
    body = struct.pack("!BBBB", num, protocol, len(spi), len(transforms)) + spi
    body += b"".join(transforms)
    return struct.pack("!BBH", 0 if last else 2, 0, 4 + len(body)) + body


KEY_LENGTH_256 = bytes.fromhex("800e0100")  # §3.3.5: AF=1, type 14, value 256

SA_BODY = proposal(1, 1, b"", [
    transform(TT.ENCR, EncrId.AES_CBC, KEY_LENGTH_256),
    transform(TT.INTEG, IntegId.HMAC_SHA2_256_128),
    transform(TT.PRF, PrfId.HMAC_SHA2_256),
    transform(TT.KE, KeId.ECP256, last=True)], last=False) + proposal(2, 1, b"", [
    transform(TT.ENCR, EncrId.AES_GCM_16, KEY_LENGTH_256
              + bytes.fromhex("0001 0003 abcdef") + bytes.fromhex("8002 0007")),
    transform(TT.PRF, PrfId.HMAC_SHA2_512),
    transform(TT.KE, KeId.CURVE25519, last=True)])
SA_OBJ = wire.SA([
    wire.Proposal(1, ProtocolId.IKE, b"", [
        wire.Transform(TT.ENCR, EncrId.AES_CBC, 256),
        wire.Transform(TT.INTEG, IntegId.HMAC_SHA2_256_128),
        wire.Transform(TT.PRF, PrfId.HMAC_SHA2_256),
        wire.Transform(TT.KE, KeId.ECP256)]),
    wire.Proposal(2, ProtocolId.IKE, b"", [
        wire.Transform(TT.ENCR, EncrId.AES_GCM_16, 256, [(1, b"\xab\xcd\xef"), (2, 7)]),
        wire.Transform(TT.PRF, PrfId.HMAC_SHA2_512),
        wire.Transform(TT.KE, KeId.CURVE25519)]),
])
KE_DATA = bytes(range(64))
NONCE = bytes(range(100, 132))
V4 = (b"\x0a\x00\x00\x00", b"\x0a\x00\x00\xff")
V6 = (bytes.fromhex("20010db8" + "00" * 12), bytes.fromhex("20010db8" + "ff" * 12))
EAP_IDENTITY = bytes.fromhex("0201000a01") + b"alice"  # RFC 3748 §5.1 Response/Identity

# (type, RFC-layout body, expected object) for every payload type
VECTORS = [
    (33, SA_BODY, SA_OBJ),
    (34, struct.pack("!HH", 19, 0) + KE_DATA, wire.KE(KeId.ECP256, KE_DATA)),
    (35, bytes.fromhex("02000000") + b"a.pk.test", wire.IDi(2, b"a.pk.test")),
    (36, bytes.fromhex("01000000") + bytes([192, 0, 2, 1]), wire.IDr(1, bytes([192, 0, 2, 1]))),
    (37, b"\x04" + b"DER-cert", wire.CERT(4, b"DER-cert")),
    (38, b"\x04" + bytes(20), wire.CERTREQ(4, bytes(20))),
    (39, bytes.fromhex("02000000") + bytes(32), wire.AUTH(2, bytes(32))),
    (40, NONCE, wire.Nonce(NONCE)),
    (41, struct.pack("!BBH", 0, 0, NT.COOKIE) + b"c" * 32, wire.Notify(NT.COOKIE, b"c" * 32)),
    (41, struct.pack("!BBH", 3, 4, NT.REKEY_SA) + b"\xde\xad\xbe\xef",
     wire.Notify(NT.REKEY_SA, b"", ProtocolId.ESP, b"\xde\xad\xbe\xef")),
    (42, struct.pack("!BBH", 3, 4, 2) + b"\x00\x00\x10\x01\x00\x00\x10\x02",
     wire.Delete(ProtocolId.ESP, [b"\x00\x00\x10\x01", b"\x00\x00\x10\x02"])),
    (42, struct.pack("!BBH", 1, 0, 0), wire.Delete(ProtocolId.IKE, [])),
    (43, b"strongSwan", wire.VendorID(b"strongSwan")),
    (44, bytes.fromhex("02000000")
     + struct.pack("!BBHHH", 7, 6, 16, 0, 65535) + V4[0] + V4[1]
     + struct.pack("!BBHHH", 8, 17, 40, 500, 500) + V6[0] + V6[1],
     wire.TSi([wire.TrafficSelector(7, 6, 0, 65535, *V4),
               wire.TrafficSelector(8, 17, 500, 500, *V6)])),
    (45, bytes.fromhex("01000000") + struct.pack("!BBH", 10, 0, 8) + b"lbl\x00",
     wire.TSr([wire.RawSelector(10, b"lbl\x00")])),
    (47, bytes.fromhex("01000000") + bytes.fromhex("00010000 00030000 0019000b") + b"example.com",
     wire.CP(CfgType.CFG_REQUEST, [(CfgAttr.INTERNAL_IP4_ADDRESS, b""),
                                   (CfgAttr.INTERNAL_IP4_DNS, b""),
                                   (CfgAttr.INTERNAL_DNS_DOMAIN, b"example.com")])),
    (48, EAP_IDENTITY, wire.EAP(EAP_IDENTITY)),
    (49, b"opaque", wire.Unknown(49, False, b"opaque")),
]


def test_each_payload_alone():
    for ptype, body, obj in VECTORS:
        raw = message(generic(0, body), ptype)
        m = wire.decode(raw)
        assert m.payloads == [obj], ptype
        assert m.payloads[0].payload_type == ptype
        assert wire.encode(m) == raw, ptype
        assert wire.decode_payloads(generic(0, body), ptype) == [obj]
        assert wire.encode_payloads([obj]) == generic(0, body)


def test_all_payloads_in_one_chain():
    raw_chain = chain(*[(t, b) for t, b, _ in VECTORS])
    raw = message(raw_chain, VECTORS[0][0], exchange=35, flags=0x20, mid=7)
    m = wire.decode(raw)
    assert m == wire.Message(SPI_I, SPI_R, 35, 0x20, 7, [o for _, _, o in VECTORS])
    assert (m.is_response, m.is_initiator) == (True, False)
    assert wire.encode(m) == raw
    assert wire.encode_header(m, len(raw)) == raw[:28]


def test_sk_is_opaque_and_records_its_offset():
    body = bytes(range(48))  # IV | ciphertext | ICV
    raw = message(chain((41, struct.pack("!BBH", 0, 0, NT.COOKIE) + b"x" * 8),
                        (46, body)), 41)
    # the SK payload's Next Payload is the first inner payload (IDi here)
    raw = raw[:28 + 16] + bytes([35]) + raw[28 + 17:]
    m = wire.decode(raw)
    sk = m.payloads[1]
    assert sk == wire.SK(35, body) and sk.offset == 28 + 16
    assert wire.encode(m) == raw
    assert wire.SK(35, body, offset=99) == sk  # offset is not compared


def test_skf():
    body = bytes(range(40))
    raw = message(generic(35, struct.pack("!HH", 1, 3) + body), 53)
    m = wire.decode(raw)
    assert m.payloads == [wire.SKF(35, 1, 3, body)] and m.payloads[0].offset == 28
    assert wire.encode(m) == raw


def test_header_fields_and_encode_header():
    m = wire.Message(SPI_I, SPI_R, 37, 0x28, 0xFFFFFFFF, [])
    raw = wire.encode(m)
    assert raw == header(0, 28, exchange=37, flags=0x28, mid=0xFFFFFFFF)
    assert wire.decode(raw) == m
    hdr = wire.encode_header(wire.Message(SPI_I, SPI_R, 35, 8, 1, [wire.SK(35, b"")]), 400)
    assert hdr == header(46, 400, exchange=35, mid=1)


def test_reserved_fields_and_critical_bit_of_known_types_are_ignored():
    # §3.2: RESERVED ignored on receipt; the critical bit of a known type ignored
    ke = generic(0, struct.pack("!HH", 31, 0xFFFF) + bytes(32), flags=0x80 | 0x7F)
    raw = message(ke, 34, flags=0x08 | 0x10 | 0x07)  # Version bit and reserved flags
    m = wire.decode(raw)
    assert m.payloads == [wire.KE(31, bytes(32))] and m.flags == 0x08
    canonical = message(generic(0, struct.pack("!HH", 31, 0) + bytes(32)), 34)
    assert wire.encode(m) == canonical
    # §3.10: with no SPI, the Protocol ID is ignored on receipt
    n = message(generic(0, struct.pack("!BBH", 1, 0, NT.INITIAL_CONTACT)), 41)
    assert wire.decode(n).payloads == [wire.Notify(NT.INITIAL_CONTACT)]


def test_minor_version_is_kept_and_accepted():
    raw = message(b"", 0, version=0x2F)
    assert wire.decode(raw).version == 0x2F


def test_equality_and_repr():
    a = wire.Notify(NT.COOKIE, b"x")
    assert a == wire.Notify(NT.COOKIE, b"x") and a != wire.Notify(NT.COOKIE, b"y")
    assert a != wire.VendorID(b"x") and a != "Notify"
    assert wire.Transform(1, 12, 128) == wire.Transform(1, 12, 128, [])
    assert wire.Transform(1, 12, 128) != wire.Transform(1, 12, 256)
    assert "COOKIE" in repr(a) and "AES_CBC" in repr(wire.Transform(1, 12, 128))
    assert "ECP256" in repr(wire.KE(19, b""))
    # EAP type data may be a credential (EAP-GTC): never in a repr
    gtc = wire.EAP.build(2, 5, 6, b"secret-password")
    assert b"secret" not in repr(gtc).encode() and "secret" not in repr(gtc)
    assert "secret" not in repr(wire.Message(SPI_I, SPI_R, 35, 8, 1, [gtc]))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_decode_encode_round_trip(data):
    m = data.draw(message_strategy(wire))
    raw = wire.encode(m)
    back = wire.decode(raw)
    assert back == m
    assert wire.encode(back) == raw


@settings(max_examples=150, deadline=None)
@given(chain_strategy(wire))
def test_inner_chain_round_trip(payloads):
    raw = wire.encode_payloads(payloads)
    first = payloads[0].payload_type if payloads else 0
    assert wire.decode_payloads(raw, first) == payloads
    assert wire.encode_payloads(wire.decode_payloads(raw, first)) == raw


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_every_payload_type_round_trips_alone(data):
    for name, strategy in payload_strategies(wire).items():
        p = data.draw(strategy, label=name)
        m = wire.Message(SPI_I, SPI_R, 34, 8, 0, [p])
        assert wire.decode(wire.encode(m)) == m, name


def test_encode_rejects_what_the_wire_cannot_hold():
    import pytest

    bad = [
        [wire.KE(70000, b"")],
        [wire.Notify(-1)],
        [wire.SK(0, b""), wire.Nonce(bytes(16))],  # SK must be last (§3.14)
        [wire.Nonce(bytes(70000))],
        [wire.Delete(ProtocolId.ESP, [b"abc"])],
        [wire.TSi([wire.TrafficSelector(7, 0, 0, 65535, bytes(16), bytes(16))])],
        [wire.TSr([wire.TrafficSelector(9, 0, 0, 65535, bytes(16), bytes(16))])],
    ]
    for payloads in bad:
        with pytest.raises((ValueError, OverflowError)):
            wire.encode(wire.Message(SPI_I, SPI_R, 34, 8, 0, payloads))
    with pytest.raises(ValueError):
        wire.encode(wire.Message(b"short", SPI_R, 34, 8, 0, []))
    with pytest.raises(ValueError):
        wire.encode_payloads([wire.SK(0, b"")])
    with pytest.raises(TypeError):
        wire.encode_payloads([object()])


def test_encode_returns_fresh_immutable_bytes():
    # compiled, encode writes into the bytes object it returns (wire._buffer)
    m = wire.Message(SPI_I, SPI_R, 34, 8, 0, [wire.Nonce(bytes(range(16)))])
    a, b = wire.encode(m), wire.encode(m)
    assert type(a) is bytes and a == b and a is not b
    assert hash(a) == hash(bytes(bytearray(a)))
    assert wire.encode_payloads([]) == b""
    one = wire.encode_payloads([wire.VendorID(b"")])
    assert one == bytes([0, 0, 0, 4]) and wire.encode_payloads([wire.VendorID(b"")]) is not one
