"""Typed access to what payloads carry: Notification Data per type (notifydata table),
the Child SA a notify names, EAP header fields, Identification Data."""

import ipaddress
import struct

import pytest

from pyiked._fast import notifydata, wire
from pyiked._fast.notifydata import (
    IPCompSupported,
    MessageIdSync,
    NoNatsAllowed,
    Puzzle,
    Redirect,
)
from pyiked.core.errors import InvalidSyntax
from pyiked.core.iana import (
    EapCode,
    EapType,
    GatewayIdType,
    HashAlgorithm,
    IDType,
    IPCompId,
    KeId,
    PayloadType,
    ProtocolId,
    NotifyType as NT,
)

IP4 = ipaddress.IPv4Address("192.0.2.10")
IP6 = ipaddress.IPv6Address("2001:db8::10")

# (type, Notification Data as the RFC lays it out, typed value)
GOOD = [
    (NT.INVALID_KE_PAYLOAD, b"\x00\x13", KeId.ECP256),  # RFC 7296 §3.10.1
    (NT.UNSUPPORTED_CRITICAL_PAYLOAD, b"\x31", 49),
    (NT.INVALID_MESSAGE_ID, b"\x00\x00\x01\x00", 256),
    (NT.COOKIE, b"\x01", b"\x01"),
    (NT.COOKIE, b"c" * 64, b"c" * 64),
    (NT.NAT_DETECTION_SOURCE_IP, bytes(range(20)), bytes(range(20))),
    (NT.NAT_DETECTION_DESTINATION_IP, bytes(20), bytes(20)),
    (NT.SIGNATURE_HASH_ALGORITHMS, bytes.fromhex("0002000300040005"),  # RFC 7427 §4
     [HashAlgorithm.SHA2_256, HashAlgorithm.SHA2_384, HashAlgorithm.SHA2_512,
      HashAlgorithm.IDENTITY]),
    (NT.SECURE_PASSWORD_METHODS, bytes.fromhex("00010002"), [1, 2]),
    (NT.SET_WINDOW_SIZE, b"\x00\x00\x00\x05", 5),
    (NT.AUTH_LIFETIME, struct.pack("!I", 86400), 86400),  # RFC 4478
    (NT.IPCOMP_SUPPORTED, b"\x12\x34\x02", IPCompSupported(0x1234, IPCompId.IPCOMP_DEFLATE)),
    (NT.ADDITIONAL_IP4_ADDRESS, IP4.packed, IP4),
    (NT.ADDITIONAL_IP6_ADDRESS, IP6.packed, IP6),
    (NT.COOKIE2, b"8octets!", b"8octets!"),
    (NT.NO_NATS_ALLOWED, IP4.packed + bytes([198, 51, 100, 1]) + b"\x11\x94\x11\x94",
     NoNatsAllowed(IP4, ipaddress.IPv4Address("198.51.100.1"), 4500, 4500)),
    # RFC 5685: GW Ident Type, GW Ident Len, identity, then Ni in IKE_SA_INIT
    (NT.REDIRECT, b"\x01\x04" + IP4.packed + b"N" * 32,
     Redirect(GatewayIdType.IPV4, IP4.packed, b"N" * 32)),
    (NT.REDIRECT, b"\x03\x0agw.example", Redirect(GatewayIdType.FQDN, b"gw.example", b"")),
    (NT.REDIRECTED_FROM, b"\x02\x10" + IP6.packed, Redirect(GatewayIdType.IPV6, IP6.packed)),
    (NT.IKEV2_MESSAGE_ID_SYNC, struct.pack("!III", 7, 10, 20), MessageIdSync(7, 10, 20)),
    (NT.PUZZLE, b"\x00\x05\x14", Puzzle(5, 20)),
    (NT.ADDITIONAL_KEY_EXCHANGE, b"link", b"link"),
    (NT.INITIAL_CONTACT, b"", None),
    (NT.IKEV2_FRAGMENTATION_SUPPORTED, b"", None),
    (NT.REKEY_SA, b"", None),
    (NT.NO_PROPOSAL_CHOSEN, b"", None),
    (16500, b"private", b"private"),  # not in the table: opaque
    (NT.HTTP_CERT_LOOKUP_SUPPORTED, b"", None),
]

BAD = [
    (NT.INVALID_KE_PAYLOAD, b"\x13"),
    (NT.INVALID_KE_PAYLOAD, b"\x00\x13\x00"),
    (NT.COOKIE, b""),
    (NT.COOKIE, b"c" * 65),
    (NT.NAT_DETECTION_SOURCE_IP, bytes(19)),
    (NT.NAT_DETECTION_DESTINATION_IP, bytes(21)),
    (NT.SIGNATURE_HASH_ALGORITHMS, b"\x00\x02\x00"),
    (NT.SET_WINDOW_SIZE, b"\x00\x05"),
    (NT.UNSUPPORTED_CRITICAL_PAYLOAD, b""),
    (NT.IPCOMP_SUPPORTED, b"\x12\x34"),
    (NT.ADDITIONAL_IP4_ADDRESS, IP6.packed),
    (NT.ADDITIONAL_IP6_ADDRESS, IP4.packed),
    (NT.COOKIE2, b"7octets"),
    (NT.NO_NATS_ALLOWED, bytes(13)),
    (NT.REDIRECT, b"\x01"),
    (NT.REDIRECT, b"\x01\x05" + IP4.packed + b"x"),  # IPv4 identity of 5 octets
    (NT.REDIRECT, b"\x03\x00"),
    (NT.REDIRECT, b"\x03\x09gw.exampl"[:-1]),  # length beyond the data
    (NT.REDIRECT, b"\x01\x04" + IP4.packed + b"short"),  # nonce < 16 octets
    (NT.REDIRECTED_FROM, b"\x01\x04" + IP4.packed + b"N" * 16),  # no nonce allowed
    (NT.IKEV2_MESSAGE_ID_SYNC, bytes(11)),
    (NT.PUZZLE, bytes(4)),
    (NT.ADDITIONAL_KEY_EXCHANGE, b""),
    (NT.INITIAL_CONTACT, b"x"),
    (NT.AUTH_LIFETIME, bytes(3)),
]


@pytest.mark.parametrize("ntype,data,value", GOOD)
def test_notify_value_and_build(ntype, data, value):
    n = wire.Notify(ntype, data)
    assert n.value == value
    assert wire.Notify.build(ntype, value) == n
    # decoding never looks at the data; the value comes from the table on request
    raw = wire.encode_payloads([n])
    assert wire.decode_payloads(raw, PayloadType.N) == [n]


@pytest.mark.parametrize("ntype,data", BAD)
def test_bad_notify_data_fails_only_when_asked(ntype, data):
    n = wire.decode_payloads(wire.encode_payloads([wire.Notify(ntype, data)]), PayloadType.N)[0]
    assert n.data == data
    with pytest.raises(InvalidSyntax) as info:
        _ = n.value
    assert NT(ntype).name in info.value.reason


def test_notify_value_table_covers_the_issue_list():
    for ntype in (NT.INVALID_KE_PAYLOAD, NT.COOKIE, NT.NAT_DETECTION_SOURCE_IP,
                  NT.NAT_DETECTION_DESTINATION_IP, NT.SIGNATURE_HASH_ALGORITHMS,
                  NT.SET_WINDOW_SIZE, NT.REDIRECT, NT.REDIRECTED_FROM,
                  NT.UNSUPPORTED_CRITICAL_PAYLOAD, NT.IPCOMP_SUPPORTED,
                  NT.ADDITIONAL_IP4_ADDRESS, NT.ADDITIONAL_IP6_ADDRESS, NT.AUTH_LIFETIME,
                  NT.REKEY_SA, NT.ADDITIONAL_KEY_EXCHANGE, NT.INITIAL_CONTACT):
        assert ntype in notifydata.CODECS, ntype.name


def test_child_sa_named_by_a_notify():
    # RFC 7296 §3.10: REKEY_SA carries the SA in Protocol ID and SPI
    n = wire.Notify.build(NT.REKEY_SA, None, ProtocolId.ESP, b"\xc0\xff\xee\x01")
    assert n.child_sa == (ProtocolId.ESP, b"\xc0\xff\xee\x01") and n.data == b""
    raw = wire.encode_payloads([n])
    assert raw[4:8] == bytes([3, 4]) + struct.pack("!H", NT.REKEY_SA)
    assert wire.decode_payloads(raw, PayloadType.N)[0].child_sa == n.child_sa
    for bad in (wire.Notify(NT.REKEY_SA), wire.Notify(NT.REKEY_SA, b"", 1, b"\x01" * 8),
                wire.Notify(NT.CHILD_SA_NOT_FOUND, b"", 3, b"\x01\x02")):
        with pytest.raises(InvalidSyntax):
            _ = bad.child_sa


def test_build_rejects_values_that_do_not_fit():
    for ntype, value in ((NT.COOKIE, b""), (NT.INITIAL_CONTACT, b"x"),
                         (NT.REDIRECTED_FROM, Redirect(1, IP4.packed, b"n" * 16)),
                         (NT.INVALID_KE_PAYLOAD, 1 << 16)):
        with pytest.raises((ValueError, OverflowError)):
            wire.Notify.build(ntype, value)


def test_eap_fields():
    # RFC 3748 §4: Code, Identifier, Length, Type, Type-Data
    req = wire.EAP(bytes.fromhex("0107000a01") + b"hello")
    assert (req.code, req.identifier, req.eap_type, req.type_data) == (
        EapCode.REQUEST, 7, EapType.IDENTITY, b"hello")
    padded = wire.EAP(bytes.fromhex("0207000601") + b"x" + b"\0\0")  # octets past Length ignored
    assert padded.type_data == b"x"
    success = wire.EAP(bytes.fromhex("03080004"))
    assert (success.code, success.identifier, success.eap_type, success.type_data) == (
        EapCode.SUCCESS, 8, None, b"")
    assert wire.EAP.build(EapCode.REQUEST, 7, EapType.IDENTITY, b"hello") == req
    assert wire.EAP.build(EapCode.SUCCESS, 8) == success
    for bad in (b"\x01\x01\x00", bytes.fromhex("01010004"), bytes.fromhex("03010005ff"),
                bytes.fromhex("0101000c01ab"), bytes.fromhex("05010004"),
                bytes.fromhex("01010003")):
        with pytest.raises(InvalidSyntax):
            _ = wire.EAP(bad).code


def test_identification_values():
    assert wire.IDi(IDType.ID_IPV4_ADDR, IP4.packed).value == IP4
    assert wire.IDr(IDType.ID_IPV6_ADDR, IP6.packed).value == IP6
    assert wire.IDi(IDType.ID_FQDN, b"vpn.example.org").value == "vpn.example.org"
    assert wire.IDi(IDType.ID_RFC822_ADDR, b"user@example.org").value == "user@example.org"
    assert wire.IDi(IDType.ID_NULL, b"").value is None
    assert wire.IDi(IDType.ID_KEY_ID, b"\x00\x01key").value == b"\x00\x01key"
    assert wire.IDi(IDType.ID_DER_ASN1_DN, b"\x30\x00").value == b"\x30\x00"
    for bad in (wire.IDi(IDType.ID_IPV4_ADDR, b"\x01\x02\x03"),
                wire.IDi(IDType.ID_IPV6_ADDR, IP4.packed),
                wire.IDi(IDType.ID_FQDN, b"bad\x00name"), wire.IDi(IDType.ID_FQDN, b""),
                wire.IDr(IDType.ID_RFC822_ADDR, b"a b@example")):
        with pytest.raises(InvalidSyntax):
            _ = bad.value


def test_message_lookups():
    m = wire.Message(b"\x01" * 8, bytes(8), 34, 8, 0, [
        wire.Notify(NT.COOKIE, b"c"), wire.Nonce(bytes(16)),
        wire.Notify(NT.NAT_DETECTION_SOURCE_IP, bytes(20)),
        wire.Notify(NT.NAT_DETECTION_SOURCE_IP, b"\x01" * 20)])
    assert m.get(wire.Nonce) == wire.Nonce(bytes(16)) and m.get(wire.KE) is None
    assert m.notify(NT.NAT_DETECTION_SOURCE_IP).data == bytes(20)
    assert m.notify(NT.REKEY_SA) is None
    assert len(m.get_all(wire.Notify)) == 3
