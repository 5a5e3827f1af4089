"""Identities (RFC 7296 §3.5): iked.conf text -> ID type and data, and ID matching."""

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyiked.config.identity import (
    dn_attributes,
    identity_from_payload,
    identity_matches,
    parse_identity,
)
from pyiked.config.model import Identity
from pyiked.core.iana import IDType

# DER of the DN C=DE, CN=x worked out by hand from X.690 / RFC 5280 §4.1.2.4:
# Name ::= SEQUENCE OF RelativeDistinguishedName (SET OF AttributeTypeAndValue).
#   SET { SEQ { OID 2.5.4.6 (countryName), PrintableString "DE" } }
#   SET { SEQ { OID 2.5.4.3 (commonName),  UTF8String "x" } }
DN_C_DE_CN_X = bytes.fromhex(
    "3019"
    "310b" "3009" "0603550406" "13024445"
    "310a" "3008" "0603550403" "0c0178"
)
# The same DN with CN as a PrintableString (how some peers encode it).
DN_C_DE_CN_X_PRINTABLE = bytes.fromhex(
    "3019" "310b" "3009" "0603550406" "13024445" "310a" "3008" "0603550403" "130178"
)


@pytest.mark.parametrize(
    "text, id_type, data",
    [
        ("192.168.0.254", IDType.ID_IPV4_ADDR, bytes([192, 168, 0, 254])),
        ("2001:db8::1", IDType.ID_IPV6_ADDR, ipaddress.ip_address("2001:db8::1").packed),
        ("host.example.com", IDType.ID_FQDN, b"host.example.com"),
        ("reyk@example.com", IDType.ID_RFC822_ADDR, b"reyk@example.com"),
        ("@host.example.com", IDType.ID_FQDN, b"host.example.com"),
        ("@@user@example.com", IDType.ID_RFC822_ADDR, b"user@example.com"),
        ("@#0a0b", IDType.ID_KEY_ID, b"\x0a\x0b"),
        ("keyid:#00FF", IDType.ID_KEY_ID, b"\x00\xff"),
        ("keyid:opaque", IDType.ID_KEY_ID, b"opaque"),
        ("fqdn:1.2.3.4", IDType.ID_FQDN, b"1.2.3.4"),
        ("email:a@b", IDType.ID_RFC822_ADDR, b"a@b"),
        ("ufqdn:a@b", IDType.ID_RFC822_ADDR, b"a@b"),
        ("ipv4:10.0.0.1", IDType.ID_IPV4_ADDR, bytes([10, 0, 0, 1])),
        ("ipv6:::1", IDType.ID_IPV6_ADDR, bytes(15) + b"\x01"),
        ("/C=DE/CN=x", IDType.ID_DER_ASN1_DN, DN_C_DE_CN_X),
        ("C=DE, CN=x", IDType.ID_DER_ASN1_DN, DN_C_DE_CN_X),
        ("asn1dn:C=DE,CN=x", IDType.ID_DER_ASN1_DN, DN_C_DE_CN_X),
    ],
)
def test_parse_identity(text, id_type, data):
    ident = parse_identity(text)
    assert (ident.id_type, ident.data, ident.text, str(ident)) == (id_type, data, text, text)


def test_dn_attribute_names_and_multi_valued_rdns():
    ident = parse_identity("/C=DE/O=pk-test/OU=a+CN=b/emailAddress=reyk@example.com")
    attrs = dn_attributes(ident.data)
    assert len(attrs) == 4
    assert len(attrs[2]) == 2  # OU=a+CN=b is one RDN
    # emailAddress is 1.2.840.113549.1.9.1 (PKCS #9).
    assert (bytes.fromhex("2a864886f70d010901"), "reyk@example.com") in attrs[3]


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty identity"),
        ("keyid:#xyz", "'xyz' is not an even number of hex digits"),
        ("ipv4:2001:db8::1", "'2001:db8::1' is not an IPv4 address"),
        ("/C=DE/bogus", "'bogus' in DN '/C=DE/bogus' is not ATTRIBUTE=value"),
        ("Q=1", "unknown DN attribute 'Q' in 'Q=1'"),
        ("fqdn:", "empty identity after the prefix in 'fqdn:'"),
        ("a b.example", "identity 'a b.example' contains a space or a control character"),
    ],
)
def test_bad_identities(text, message):
    with pytest.raises(ValueError) as exc:
        parse_identity(text)
    assert str(exc.value) == message


def test_matching():
    fqdn = parse_identity("Peer.Example.com")
    assert identity_matches(fqdn, Identity(IDType.ID_FQDN, b"peer.example.COM", ""))
    assert not identity_matches(fqdn, Identity(IDType.ID_RFC822_ADDR, b"peer.example.com", ""))
    ip = parse_identity("10.0.0.1")
    assert identity_matches(ip, Identity(IDType.ID_IPV4_ADDR, bytes([10, 0, 0, 1]), ""))
    assert not identity_matches(ip, Identity(IDType.ID_IPV4_ADDR, bytes([10, 0, 0, 2]), ""))
    mail = parse_identity("u@example.com")
    assert not identity_matches(mail, Identity(IDType.ID_RFC822_ADDR, b"U@example.com", ""))


def test_dn_matching_ignores_string_type_and_case_but_not_order():
    dn = parse_identity("C=DE, CN=x")
    assert identity_matches(dn, Identity(IDType.ID_DER_ASN1_DN, DN_C_DE_CN_X_PRINTABLE, ""))
    upper = parse_identity("C=de, CN=X")
    assert identity_matches(upper, Identity(IDType.ID_DER_ASN1_DN, DN_C_DE_CN_X, ""))
    reversed_dn = parse_identity("CN=x, C=DE")
    assert not identity_matches(reversed_dn, Identity(IDType.ID_DER_ASN1_DN, DN_C_DE_CN_X, ""))
    broken = Identity(IDType.ID_DER_ASN1_DN, DN_C_DE_CN_X[:-1], "")
    assert not identity_matches(dn, broken)
    assert dn_attributes(DN_C_DE_CN_X[:-1]) is None


def test_identity_from_payload_texts():
    assert identity_from_payload(1, bytes([10, 0, 0, 1])).text == "10.0.0.1"
    assert identity_from_payload(2, b"a.pk.test").text == "a.pk.test"
    assert identity_from_payload(11, b"\x01\x02").text == "keyid:#0102"
    assert identity_from_payload(9, DN_C_DE_CN_X).text == "C=DE, CN=x"
    assert identity_from_payload(9, b"\x30\x05junk").text == "dn:#30056a756e6b"
    truncated_oid = bytes.fromhex("3009310730050601800c00")
    assert identity_from_payload(9, truncated_oid).text == "dn:#" + truncated_oid.hex()
    odd = identity_from_payload(200, b"\xff")
    assert (odd.id_type, odd.text) == (200, "type200/ff")


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 255), st.binary(max_size=64))
def test_hostile_payloads_never_raise(id_type, data):
    received = identity_from_payload(id_type, data)
    for configured in (parse_identity("C=DE, CN=x"), parse_identity("a.example")):
        assert identity_matches(configured, received) in (True, False)
    assert dn_attributes(data) is None or isinstance(dn_attributes(data), tuple)
