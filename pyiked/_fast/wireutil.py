"""What the wire codec's payload classes need off the hot path: readable reprs, typed
Identification Data, EAP header checks. Pure Python, imported by both `wire` twins.

Reprs name IANA values and shorten long octet strings; EAP type data never appears in
a repr (an EAP-GTC or EAP-MD5 exchange may carry a credential).
"""

from __future__ import annotations

import ipaddress

from ..core.errors import InvalidSyntax
from ..core.iana import (
    EapCode,
    EncrId,
    EsnId,
    IDType,
    IntegId,
    KeId,
    PrfId,
    TransformType,
)

_SHOW_OCTETS = 24


def _octets(value):
    if not value:
        return "b''"
    if len(value) <= _SHOW_OCTETS:
        return value.hex()
    return f"{value[:_SHOW_OCTETS].hex()}...({len(value)} octets)"


def _named(enum, value):
    if enum is not None:
        try:
            name = enum(value).name
        except (ValueError, TypeError):
            name = None
        if name:
            return f"{name}({int(value)})"
    return repr(value)


def show(value, enum=None):
    if isinstance(value, (bytes, bytearray)):
        return _octets(bytes(value))
    if isinstance(value, list):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(show(v) for v in value) + ")"
    if isinstance(value, int) and not isinstance(value, bool):
        return _named(enum, value)
    return repr(value)


def fields_repr(obj):
    enums = getattr(obj, "_enums", {})
    if type(obj).__name__ == "EAP":
        return _eap_repr(obj.data)
    body = ", ".join(f"{name}={show(getattr(obj, name), enums.get(name))}" for name in obj._fields)
    return f"{type(obj).__name__}({body})"


_TRANSFORM_IDS = {
    TransformType.ENCR: EncrId,
    TransformType.PRF: PrfId,
    TransformType.INTEG: IntegId,
    TransformType.KE: KeId,
    TransformType.ESN: EsnId,
}


def transform_repr(tr):
    ids = _TRANSFORM_IDS.get(tr.type, KeId if 6 <= tr.type <= 12 else None)
    parts = [_named(TransformType, tr.type), _named(ids, tr.id)]
    if tr.key_length is not None:
        parts.append(f"key_length={tr.key_length}")
    if tr.attributes:
        parts.append(f"attributes={show(tr.attributes)}")
    return f"Transform({', '.join(parts)})"


def _eap_repr(data):
    try:
        code, identifier, eap_type, type_data = eap_fields(data)
    except InvalidSyntax:
        return f"EAP(<malformed, {len(data)} octets>)"
    what = _named(EapCode, code)
    if eap_type is not None:
        what += f", type={eap_type}, {len(type_data)} octets of type data"
    return f"EAP({what}, identifier={identifier})"


def eap_fields(data):
    """(code, identifier, eap_type or None, type_data) of an EAP message (RFC 3748 §4)."""
    if len(data) < 4:
        raise InvalidSyntax("EAP message shorter than its header")
    code = data[0]
    length = (data[2] << 8) | data[3]
    # RFC 3748 §4.1: a Length beyond the octets received means discard; octets beyond
    # Length are padding and ignored.
    if length < 4 or length > len(data):
        raise InvalidSyntax(f"EAP Length {length} with {len(data)} octets")
    if code == EapCode.REQUEST or code == EapCode.RESPONSE:
        if length < 5:
            raise InvalidSyntax("EAP Request/Response without a Type")
        return code, data[1], data[4], data[5:length]
    if code == EapCode.SUCCESS or code == EapCode.FAILURE:
        if length != 4:  # RFC 3748 §4.2
            raise InvalidSyntax("EAP Success/Failure with data")
        return code, data[1], None, b""
    raise InvalidSyntax(f"EAP Code {code}")


def eap_message(code, identifier, eap_type=None, type_data=b""):
    body = b"" if eap_type is None else bytes((eap_type,)) + bytes(type_data)
    length = 4 + len(body)
    if length > 0xFFFF:
        raise ValueError("EAP message too long")
    return bytes((code, identifier, length >> 8, length & 0xFF)) + body


def id_value(id_type, data):
    """RFC 7296 §3.5 Identification Data, typed."""
    if id_type == IDType.ID_IPV4_ADDR or id_type == IDType.ID_IPV6_ADDR:
        size = 4 if id_type == IDType.ID_IPV4_ADDR else 16
        if len(data) != size:
            raise InvalidSyntax(f"ID type {id_type} with {len(data)} octets")
        return ipaddress.ip_address(data)
    if id_type == IDType.ID_FQDN or id_type == IDType.ID_RFC822_ADDR:
        # §3.5: an ASCII string without terminators (NUL, CR, ...)
        if not data or any(b < 0x21 or b > 0x7E for b in data):
            raise InvalidSyntax(f"ID type {id_type} is not a printable ASCII string")
        return data.decode("ascii")
    if id_type == IDType.ID_NULL:  # RFC 7619: the data is ignored
        return None
    return data
