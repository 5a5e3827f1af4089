"""IKE identities (RFC 7296 §3.5) as written in iked.conf `srcid` / `dstid`.

How text becomes an ID type. OpenIKED (parse.y get_id_type) decides by shape: a leading
`/` is a DN, an IPv4 or IPv6 literal is an address, anything with `@` is an RFC 822 address,
the rest is an FQDN. strongSwan (docs "Identity Parsing") adds prefixes: `@name` forces an
FQDN, `@@user@host` an RFC 822 address, `@#hex` a KEY_ID, and `type:value` forms such as
`keyid:`, and it accepts DNs written with commas ("C=CH, O=Org, CN=host"). pyiked accepts
both, checked in this order:

  1. `keyid:#<hex>` or `@#<hex>`: ID_KEY_ID with those bytes; `keyid:<text>`: ID_KEY_ID with
     the text's UTF-8 bytes. Also `fqdn:`, `email:`/`rfc822:`/`ufqdn:`, `ipv4:`, `ipv6:`,
     `asn1dn:`/`dn:` force the type.
  2. `/C=DE/O=Org/CN=host` (OpenIKED) or `C=DE, O=Org, CN=host` (anything with `=`):
     ID_DER_ASN1_DN. The RDNs are DER-encoded in the order written, as both OpenIKED
     and strongSwan do, using cryptography.x509.Name.
  3. An IPv4 / IPv6 literal: ID_IPV4_ADDR / ID_IPV6_ADDR (the packed address).
  4. `@@x`: ID_RFC822_ADDR x. `@x`: ID_FQDN x.
  5. Contains `@`: ID_RFC822_ADDR. Otherwise: ID_FQDN.

Matching a received ID against a configured one (`identity_matches`) compares the type
and the data; FQDNs compare case-insensitively (DNS names do, RFC 4343) and DNs compare
attribute by attribute, ignoring case and the ASN.1 string type (RFC 5280 §7.1), because
peers encode the same DN with PrintableString or UTF8String.
"""

from __future__ import annotations

import ipaddress

from cryptography import x509
from cryptography.x509.oid import NameOID

from pyiked.core.iana import IDType

from .model import Identity

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

_PREFIXES = {
    "fqdn:": IDType.ID_FQDN,
    "email:": IDType.ID_RFC822_ADDR,
    "rfc822:": IDType.ID_RFC822_ADDR,
    "ufqdn:": IDType.ID_RFC822_ADDR,
    "userfqdn:": IDType.ID_RFC822_ADDR,
    "ipv4:": IDType.ID_IPV4_ADDR,
    "ipv6:": IDType.ID_IPV6_ADDR,
    "asn1dn:": IDType.ID_DER_ASN1_DN,
    "dn:": IDType.ID_DER_ASN1_DN,
    "keyid:": IDType.ID_KEY_ID,
}


def parse_identity(text: str) -> Identity:
    """The Identity for an iked.conf ID string; ValueError says what is wrong."""
    if not text:
        raise ValueError("empty identity")
    lowered = text.lower()
    for prefix, id_type in _PREFIXES.items():
        if lowered.startswith(prefix):
            return _typed(id_type, text[len(prefix) :], text)
    if text.startswith("@#"):
        return Identity(IDType.ID_KEY_ID, _hex(text[2:]), text)
    if "=" in text:
        return Identity(IDType.ID_DER_ASN1_DN, dn_der(text), text)
    address = _address(text)
    if address is not None:
        return _ip_identity(address, text)
    if text.startswith("@@"):
        return _typed(IDType.ID_RFC822_ADDR, text[2:], text)
    if text.startswith("@"):
        return _typed(IDType.ID_FQDN, text[1:], text)
    if "@" in text:
        return _typed(IDType.ID_RFC822_ADDR, text, text)
    return _typed(IDType.ID_FQDN, text, text)


def _typed(id_type: IDType, value: str, text: str) -> Identity:
    if not value:
        raise ValueError(f"empty identity after the prefix in {text!r}")
    if id_type == IDType.ID_KEY_ID:
        data = _hex(value[1:]) if value.startswith("#") else value.encode()
        return Identity(id_type, data, text)
    if id_type == IDType.ID_DER_ASN1_DN:
        return Identity(id_type, dn_der(value), text)
    if id_type in (IDType.ID_IPV4_ADDR, IDType.ID_IPV6_ADDR):
        address = _address(value)
        want = 4 if id_type == IDType.ID_IPV4_ADDR else 6
        if address is None or address.version != want:
            raise ValueError(f"{value!r} is not an IPv{want} address")
        return _ip_identity(address, text)
    if any(ord(c) < 0x21 or c == "\x7f" for c in value):
        # RFC 7296 §3.5: the string MUST NOT contain terminators or control characters.
        raise ValueError(f"identity {text!r} contains a space or a control character")
    return Identity(id_type, value.encode(), text)


def _ip_identity(address, text: str) -> Identity:
    id_type = IDType.ID_IPV4_ADDR if address.version == 4 else IDType.ID_IPV6_ADDR
    return Identity(id_type, address.packed, text)


def _address(text: str):
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _hex(text: str) -> bytes:
    try:
        data = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an even number of hex digits") from None
    if not data:
        raise ValueError("empty key ID")
    return data


# -- distinguished names -----------------------------------------------------------------


def _split_unescaped(text: str, seps: str) -> list[str]:
    parts, cur, i = [], [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            cur.append(text[i + 1])
            i += 2
            continue
        if c in seps:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


def dn_der(text: str) -> bytes:
    """DER of a DN written `/C=DE/O=x/CN=y` or `C=DE, O=x, CN=y`, RDNs in written order.

    A `+` joins attributes into one multi-valued RDN, as in RFC 4514.
    """
    if text.startswith("/"):
        rdn_texts = _split_unescaped(text[1:], "/")
    else:
        rdn_texts = _split_unescaped(text, ",")
    rdns = []
    for rdn_text in rdn_texts:
        rdn_text = rdn_text.strip()
        if not rdn_text:
            continue
        attributes = []
        for ava in rdn_text.split("+"):
            key, sep, value = ava.partition("=")
            key, value = key.strip(), value.strip()
            if not sep or not key or not value:
                raise ValueError(f"{ava!r} in DN {text!r} is not ATTRIBUTE=value")
            oid = _DN_ATTRIBUTES.get(key.upper())
            if oid is None:
                raise ValueError(f"unknown DN attribute {key!r} in {text!r}")
            try:
                attributes.append(x509.NameAttribute(oid, value))
            except ValueError as exc:
                raise ValueError(f"DN {text!r}: {exc}") from None
        rdns.append(x509.RelativeDistinguishedName(attributes))
    if not rdns:
        raise ValueError(f"DN {text!r} has no attributes")
    return x509.Name(rdns).public_bytes()


def _der_item(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the DER TLV at pos."""
    if pos + 2 > len(data):
        raise ValueError("truncated DER")
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise ValueError("truncated DER")
    return tag, pos, pos + length


def _der_children(data: bytes, start: int, end: int):
    pos = start
    while pos < end:
        tag, cstart, cend = _der_item(data, pos)
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
        tag, start, end = _der_item(der, 0)
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


def identity_from_payload(id_type: int, data: bytes) -> Identity:
    """An Identity for a received ID payload, with a printable text for logs."""
    try:
        id_type = IDType(id_type)
    except ValueError:
        return Identity(id_type, data, f"type{id_type}/{data.hex()}")
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
    tag, start, end = _der_item(der, 0)
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
