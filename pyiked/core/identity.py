"""IKE identities (RFC 7296 §3.5): building ID payloads, reading them, matching them."""

from __future__ import annotations

import ipaddress

from pyiked.config.model import Identity

from .errors import InvalidSyntax
from .iana import IDType


def for_address(ip: str) -> Identity:
    """The identity a host uses when none is configured: its IP address."""
    addr = ipaddress.ip_address(ip)
    id_type = IDType.ID_IPV4_ADDR if addr.version == 4 else IDType.ID_IPV6_ADDR
    return Identity(id_type, addr.packed, str(addr))


def from_payload(id_type: int, data: bytes) -> Identity:
    """An Identity from a received IDi/IDr; the text form is for logs and `show sa`."""
    return Identity(id_type, bytes(data), describe(id_type, data))


def describe(id_type: int, data: bytes) -> str:
    try:
        if id_type == IDType.ID_IPV4_ADDR:
            if len(data) != 4:
                raise InvalidSyntax("ID_IPV4_ADDR must be 4 octets")
            return str(ipaddress.IPv4Address(data))
        if id_type == IDType.ID_IPV6_ADDR:
            if len(data) != 16:
                raise InvalidSyntax("ID_IPV6_ADDR must be 16 octets")
            return str(ipaddress.IPv6Address(data))
        if id_type in (IDType.ID_FQDN, IDType.ID_RFC822_ADDR):
            return data.decode("ascii", "backslashreplace")
        if id_type == IDType.ID_DER_ASN1_DN:
            return dn_text(data)
        if id_type == IDType.ID_KEY_ID:
            return "keyid:" + data.hex()
    except (ValueError, TypeError) as exc:
        raise InvalidSyntax(f"malformed identity of type {id_type}: {exc}") from None
    return f"id-type-{id_type}:{data.hex()}"


_DN_NAMES = {
    "2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O",
    "2.5.4.11": "OU", "2.5.4.5": "serialNumber", "0.9.2342.19200300.100.1.25": "DC",
    "1.2.840.113549.1.9.1": "E",
}


def _der_items(data: bytes, start: int, end: int):
    """(tag, content start, content end) of each DER element in data[start:end]."""
    pos = start
    while pos < end:
        if pos + 2 > end:
            raise ValueError("truncated DER")
        tag, length = data[pos], data[pos + 1]
        pos += 2
        if length & 0x80:
            n = length & 0x7F
            if n == 0 or n > 3 or pos + n > end:
                raise ValueError("bad DER length")
            length = int.from_bytes(data[pos:pos + n], "big")
            pos += n
        if pos + length > end:
            raise ValueError("DER element overruns its container")
        yield tag, pos, pos + length
        pos += length


def _oid_text(der: bytes) -> str:
    first, parts, value = der[0], [], 0
    parts += [str(min(first // 40, 2)), str(first - 40 * min(first // 40, 2))]
    for byte in der[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(str(value))
            value = 0
    return ".".join(parts)


def dn_text(der: bytes) -> str:
    """An X.501 Name in DER as "C=XX, O=pk-test, CN=host" (strongSwan's order and style)."""
    items = list(_der_items(der, 0, len(der)))
    if len(items) != 1 or items[0][0] != 0x30:
        raise ValueError("a DN is one SEQUENCE")
    rdns = []
    for tag, s, e in _der_items(der, items[0][1], items[0][2]):
        if tag != 0x31:
            raise ValueError("an RDN is a SET")
        for atag, a_s, a_e in _der_items(der, s, e):
            oid, value = list(_der_items(der, a_s, a_e))[:2]
            if atag != 0x30 or oid[0] != 0x06:
                raise ValueError("an attribute is SEQUENCE { OID, value }")
            name = _DN_NAMES.get(_oid_text(der[oid[1]:oid[2]]), _oid_text(der[oid[1]:oid[2]]))
            rdns.append(f"{name}={der[value[1]:value[2]].decode('utf-8', 'backslashreplace')}")
    return ", ".join(rdns)


def body(id_type: int, data: bytes) -> bytes:
    """RFC 7296 §2.15 IDx': the ID payload without its generic header."""
    return bytes((id_type, 0, 0, 0)) + data


def same(a: Identity | None, b: Identity | None) -> bool:
    return a is not None and b is not None and a.id_type == b.id_type and a.data == b.data
