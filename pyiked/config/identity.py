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

from pyiked.core.iana import IDType
from pyiked.core.identity import (  # noqa: F401  (re-exported: matching lives with the engine)
    _DN_ATTRIBUTES,
    dn_attributes,
    identity_from_payload,
    identity_matches,
)

from .model import Identity

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
