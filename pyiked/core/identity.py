"""IKE identities (RFC 7296 §3.5) as they arrive in ID payloads: text for logs, matching.

Matching a received ID against a configured one (`identity_matches`) compares the type
and the data; FQDNs compare case-insensitively (DNS names do, RFC 4343) and DNs compare
attribute by attribute, ignoring case and the ASN.1 string type (RFC 5280 §7.1), because
peers encode the same DN with PrintableString or UTF8String. How iked.conf text becomes an
Identity is pyiked.config.identity.
"""

from __future__ import annotations

import ipaddress

from cryptography import x509
from cryptography.x509.oid import NameOID

from .der import der_item
from .iana import IDType

_DN_ATTRIBUTES = {
    "C": NameOID.COUNTRY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "L": NameOID.LOCALITY_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "CN": NameOID.COMMON_NAME,
    "E": NameOID.EMAIL_ADDRESS,
    "EMAIL": NameOID.EMAIL_ADDRESS,
    "EMAILADDRESS": NameOID.EMAIL_ADDRESS,
    "DC": NameOID.DOMAIN_COMPONENT,
    "SN": NameOID.SURNAME,
    "SERIALNUMBER": NameOID.SERIAL_NUMBER,
    "GN": NameOID.GIVEN_NAME,
    "GIVENNAME": NameOID.GIVEN_NAME,
    "T": NameOID.TITLE,
    "TITLE": NameOID.TITLE,
    "UID": NameOID.USER_ID,
    "STREET": NameOID.STREET_ADDRESS,
    "POSTALCODE": NameOID.POSTAL_CODE,
    "PSEUDONYM": NameOID.PSEUDONYM,
    "INITIALS": NameOID.INITIALS,
    "DNQUALIFIER": NameOID.DN_QUALIFIER,
    "GENERATIONQUALIFIER": NameOID.GENERATION_QUALIFIER,
}

def _der_children(data: bytes, start: int, end: int):
    pos = start
    while pos < end:
        tag, cstart, cend = der_item(data, pos)
        if cend > end:
            raise ValueError("DER item overruns its parent")
        yield tag, cstart, cend
        pos = cend


_STRING_TAGS = {0x0C: "utf-8", 0x13: "ascii", 0x16: "ascii", 0x14: "latin-1", 0x1E: "utf-16-be"}


def dn_attributes(der: bytes) -> tuple | None:
    """A DN as ((frozenset of (oid bytes, normalised value)), ...) per RDN; None if malformed.

    Name ::= SEQUENCE OF SET OF SEQUENCE { type OID, value ANY } (RFC 5280 §4.1.2.4).
    """
    try:
        tag, start, end = der_item(der, 0)
        if tag != 0x30 or end != len(der):
            return None
        rdns = []
        for set_tag, sstart, send in _der_children(der, start, end):
            if set_tag != 0x31:
                return None
            avas = []
            for seq_tag, astart, aend in _der_children(der, sstart, send):
                children = list(_der_children(der, astart, aend))
                if seq_tag != 0x30 or len(children) != 2 or children[0][0] != 0x06:
                    return None
                oid = der[children[0][1] : children[0][2]]
                vtag, vstart, vend = children[1]
                encoding = _STRING_TAGS.get(vtag)
                raw = der[vstart:vend]
                value = raw.decode(encoding) if encoding else raw.hex()
                avas.append((oid, " ".join(value.split()).casefold()))
            rdns.append(frozenset(avas))
        return tuple(rdns)
    except (ValueError, UnicodeDecodeError):
        return None


def identity_matches(configured: Identity, received: Identity) -> bool:
    """Whether a peer's ID payload satisfies a configured srcid/dstid."""
    if configured.id_type != received.id_type:
        return False
    if configured.id_type == IDType.ID_FQDN:
        return configured.data.lower() == received.data.lower()
    if configured.id_type == IDType.ID_DER_ASN1_DN:
        if configured.data == received.data:
            return True
        mine = dn_attributes(configured.data)
        return mine is not None and mine == dn_attributes(received.data)
    return configured.data == received.data


_ID_TYPES = {int(t): t for t in IDType}


def identity_from_payload(id_type: int, data: bytes) -> Identity:
    """An Identity for a received ID payload, with a printable text for logs."""
    known = _ID_TYPES.get(id_type)  # a dict, not IDType(): the enum call is slow
    if known is None:
        return Identity(id_type, data, f"type{id_type}/{data.hex()}")
    id_type = known
    if id_type in (IDType.ID_IPV4_ADDR, IDType.ID_IPV6_ADDR) and len(data) in (4, 16):
        text = str(ipaddress.ip_address(data))
    elif id_type in (IDType.ID_FQDN, IDType.ID_RFC822_ADDR):
        text = data.decode("utf-8", "backslashreplace")
    elif id_type == IDType.ID_KEY_ID:
        text = "keyid:#" + data.hex()
    elif id_type == IDType.ID_DER_ASN1_DN:
        try:
            text = _dn_text(data)
        except ValueError:
            text = "dn:#" + data.hex()
    else:
        text = f"{id_type.name}/{data.hex()}"
    return Identity(id_type, data, text)


_OID_SHORT = {oid.dotted_string: short for short, oid in reversed(_DN_ATTRIBUTES.items())}


def _dn_text(der: bytes) -> str:
    """Written-order, comma-separated text of a DER DN (for logs)."""
    tag, start, end = der_item(der, 0)
    if tag != 0x30 or end != len(der):
        raise ValueError("not a DN")
    parts = []
    for _, sstart, send in _der_children(der, start, end):
        avas = []
        for _, astart, aend in _der_children(der, sstart, send):
            (_, ostart, oend), (vtag, vstart, vend) = list(_der_children(der, astart, aend))
            oid = x509.ObjectIdentifier(_oid_text(der[ostart:oend]))
            name = _OID_SHORT.get(oid.dotted_string, oid.dotted_string)
            encoding = _STRING_TAGS.get(vtag)
            raw = der[vstart:vend]
            avas.append(f"{name}={raw.decode(encoding) if encoding else '#' + raw.hex()}")
        parts.append("+".join(avas))
    return ", ".join(parts)


def _oid_text(body: bytes) -> str:
    if not body:
        raise ValueError("empty OID")
    arcs, value = [], 0
    for b in body:
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(value)
            value = 0
    if not arcs or body[-1] & 0x80:
        raise ValueError("truncated OID")
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]])


def for_address(ip: str) -> Identity:
    """The identity a host uses when none is configured: its IP address."""
    addr = ipaddress.ip_address(ip)
    id_type = IDType.ID_IPV4_ADDR if addr.version == 4 else IDType.ID_IPV6_ADDR
    return Identity(id_type, addr.packed, str(addr))


def body(id_type: int, data: bytes) -> bytes:
    """RFC 7296 §2.15 IDx': the ID payload without its generic header."""
    return bytes((id_type, 0, 0, 0)) + data


# Last, so that importing this module first works: pyiked.config imports the names above.
from pyiked.config.model import Identity  # noqa: E402
