"""Typed Notification Data: one table, keyed by NotifyType.

RFC 7296 §3.10.1 and the RFCs that add notify types define what the Notification Data (and,
for a few types, the Protocol ID and SPI fields) of each type carries. Decoding a Notify
never looks at this table: a peer's odd data for a type the engine does not ask about must
not fail the message. `parse` runs when the engine asks (`Notify.value`) and raises
InvalidSyntax when the data does not match; `build` makes the data for an outgoing notify.

Types missing from the table carry opaque data: `parse` returns it as is.
This module is not a hot path; both `wire` twins import it.
"""

from __future__ import annotations

import ipaddress
from typing import NamedTuple

from ..core.errors import InvalidSyntax
from ..core.iana import GatewayIdType, NotifyType, ProtocolId

N = NotifyType


class Redirect(NamedTuple):
    """RFC 5685 REDIRECT / REDIRECTED_FROM data."""

    gw_id_type: int  # GatewayIdType
    gw_id: bytes  # packed IPv4/IPv6 address or FQDN octets
    nonce: bytes = b""  # REDIRECT in an IKE_SA_INIT response echoes Ni


class IPCompSupported(NamedTuple):
    """RFC 7296 §3.10.1 IPCOMP_SUPPORTED: CPI, Transform ID, optional attributes."""

    cpi: int
    transform_id: int  # IPCompId
    attributes: bytes = b""


class NoNatsAllowed(NamedTuple):
    """RFC 4555 NO_NATS_ALLOWED: the addresses and ports the packet used."""

    src_addr: ipaddress.IPv4Address | ipaddress.IPv6Address
    dst_addr: ipaddress.IPv4Address | ipaddress.IPv6Address
    src_port: int
    dst_port: int


class MessageIdSync(NamedTuple):
    """RFC 6311 IKEV2_MESSAGE_ID_SYNC data."""

    nonce: int
    expected_send_req_message_id: int
    expected_recv_req_message_id: int


class Puzzle(NamedTuple):
    """RFC 8019 PUZZLE data: PRF transform ID and difficulty."""

    prf: int
    difficulty: int


def _bad(notify_type, why):
    name = _name(notify_type)
    return InvalidSyntax(f"{name} notify: {why}")


def _name(notify_type):
    try:
        return NotifyType(notify_type).name
    except ValueError:
        return str(notify_type)


def _check_len(t, data, lo, hi):
    if not lo <= len(data) <= hi:
        want = str(lo) if lo == hi else f"{lo}..{hi}"
        raise _bad(t, f"data is {len(data)} octets, expected {want}")


class _Codec:
    """parse(type, data) -> value and build(type, value) -> data for one data format."""

    __slots__ = ()

    def parse(self, t, data):
        return data

    def build(self, t, value):
        return bytes(value)


class _Empty(_Codec):
    """Status or error types that carry no data: the value is None."""

    __slots__ = ()

    def parse(self, t, data):
        _check_len(t, data, 0, 0)

    def build(self, t, value):
        if value not in (None, b""):
            raise ValueError(f"{_name(t)} carries no data")
        return b""


class _Octets(_Codec):
    __slots__ = ("lo", "hi")

    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi

    def parse(self, t, data):
        _check_len(t, data, self.lo, self.hi)
        return data

    def build(self, t, value):
        value = bytes(value)
        if not self.lo <= len(value) <= self.hi:
            raise ValueError(f"{_name(t)} data must be {self.lo}..{self.hi} octets")
        return value


class _Uint(_Codec):
    __slots__ = ("size",)

    def __init__(self, size):
        self.size = size

    def parse(self, t, data):
        _check_len(t, data, self.size, self.size)
        return int.from_bytes(data, "big")

    def build(self, t, value):
        return int(value).to_bytes(self.size, "big")


class _Uint16List(_Codec):
    """A list of 16-bit identifiers (RFC 7427 hash algorithms, RFC 6467 methods)."""

    __slots__ = ()

    def parse(self, t, data):
        if len(data) % 2:
            raise _bad(t, f"data is {len(data)} octets, not a list of 16-bit values")
        return [(data[i] << 8) | data[i + 1] for i in range(0, len(data), 2)]

    def build(self, t, value):
        return b"".join(int(v).to_bytes(2, "big") for v in value)


class _Address(_Codec):
    __slots__ = ("size", "cls")

    def __init__(self, cls):
        self.cls = cls
        self.size = 4 if cls is ipaddress.IPv4Address else 16

    def parse(self, t, data):
        _check_len(t, data, self.size, self.size)
        return self.cls(data)

    def build(self, t, value):
        return self.cls(value).packed


_GW_ID_LEN = {GatewayIdType.IPV4: 4, GatewayIdType.IPV6: 16}


class _Redirect(_Codec):
    """RFC 5685: GW Ident Type, GW Ident Len, New Responder GW Identity[, Nonce]."""

    __slots__ = ("with_nonce",)

    def __init__(self, with_nonce):
        self.with_nonce = with_nonce

    def parse(self, t, data):
        if len(data) < 2:
            raise _bad(t, "data shorter than the gateway identity header")
        gw_type, gw_len = data[0], data[1]
        if gw_len == 0 or 2 + gw_len > len(data):
            raise _bad(t, f"gateway identity length {gw_len} does not fit")
        want = _GW_ID_LEN.get(gw_type)
        if want is not None and gw_len != want:
            raise _bad(t, f"gateway identity type {gw_type} needs {want} octets, got {gw_len}")
        nonce = data[2 + gw_len:]
        if nonce and not self.with_nonce:
            raise _bad(t, "REDIRECTED_FROM carries no nonce")
        if nonce and not 16 <= len(nonce) <= 256:  # RFC 7296 §3.9 nonce size
            raise _bad(t, f"nonce of {len(nonce)} octets")
        return Redirect(gw_type, data[2:2 + gw_len], nonce)

    def build(self, t, value):
        gw_type, gw_id, nonce = Redirect(*value)
        if nonce and not self.with_nonce:
            raise ValueError("REDIRECTED_FROM carries no nonce")
        if not 1 <= len(gw_id) <= 255:
            raise ValueError("gateway identity must be 1..255 octets")
        return bytes((gw_type, len(gw_id))) + bytes(gw_id) + bytes(nonce)


class _IPComp(_Codec):
    __slots__ = ()

    def parse(self, t, data):
        if len(data) < 3:
            raise _bad(t, f"data is {len(data)} octets, expected at least 3")
        return IPCompSupported((data[0] << 8) | data[1], data[2], data[3:])

    def build(self, t, value):
        cpi, transform_id, attributes = IPCompSupported(*value)
        return cpi.to_bytes(2, "big") + bytes((transform_id,)) + bytes(attributes)


class _NoNats(_Codec):
    __slots__ = ()

    def parse(self, t, data):
        if len(data) == 12:
            cls, size = ipaddress.IPv4Address, 4
        elif len(data) == 36:
            cls, size = ipaddress.IPv6Address, 16
        else:
            raise _bad(t, f"data is {len(data)} octets, expected 12 or 36")
        ports = data[2 * size:]
        return NoNatsAllowed(
            cls(data[:size]), cls(data[size:2 * size]),
            (ports[0] << 8) | ports[1], (ports[2] << 8) | ports[3],
        )

    def build(self, t, value):
        src, dst, sport, dport = NoNatsAllowed(*value)
        src, dst = ipaddress.ip_address(src), ipaddress.ip_address(dst)
        if src.version != dst.version:
            raise ValueError("NO_NATS_ALLOWED addresses of different families")
        return src.packed + dst.packed + sport.to_bytes(2, "big") + dport.to_bytes(2, "big")


class _Struct(_Codec):
    """Fixed-size data split into big-endian integers (sizes in octets)."""

    __slots__ = ("cls", "sizes")

    def __init__(self, cls, sizes):
        self.cls, self.sizes = cls, sizes

    def parse(self, t, data):
        total = sum(self.sizes)
        _check_len(t, data, total, total)
        values, pos = [], 0
        for size in self.sizes:
            values.append(int.from_bytes(data[pos:pos + size], "big"))
            pos += size
        return self.cls(*values)

    def build(self, t, value):
        value = self.cls(*value)
        return b"".join(int(v).to_bytes(s, "big") for v, s in zip(value, self.sizes))


_EMPTY = _Empty()
_U16_LIST = _Uint16List()

# The table. Types not listed carry opaque data (the value is the data itself).
CODECS: dict[int, _Codec] = {
    # RFC 7296 §3.10.1 error types with data
    N.UNSUPPORTED_CRITICAL_PAYLOAD: _Uint(1),  # the one-octet payload type
    N.INVALID_MESSAGE_ID: _Uint(4),  # the four-octet invalid message ID
    N.INVALID_KE_PAYLOAD: _Uint(2),  # the accepted KE method (group)
    # RFC 7296 §3.10.1 status types with data
    N.SET_WINDOW_SIZE: _Uint(4),
    N.IPCOMP_SUPPORTED: _IPComp(),
    N.NAT_DETECTION_SOURCE_IP: _Octets(20, 20),  # SHA-1 digest, §2.23
    N.NAT_DETECTION_DESTINATION_IP: _Octets(20, 20),
    N.COOKIE: _Octets(1, 64),  # §2.6
    # RFC 4555 (MOBIKE)
    N.ADDITIONAL_IP4_ADDRESS: _Address(ipaddress.IPv4Address),
    N.ADDITIONAL_IP6_ADDRESS: _Address(ipaddress.IPv6Address),
    N.COOKIE2: _Octets(8, 64),
    N.NO_NATS_ALLOWED: _NoNats(),
    # RFC 4478
    N.AUTH_LIFETIME: _Uint(4),
    # RFC 5685
    N.REDIRECT: _Redirect(with_nonce=True),
    N.REDIRECTED_FROM: _Redirect(with_nonce=False),
    # RFC 6311
    N.IKEV2_MESSAGE_ID_SYNC: _Struct(MessageIdSync, (4, 4, 4)),
    # RFC 6467, RFC 7427
    N.SECURE_PASSWORD_METHODS: _U16_LIST,
    N.SIGNATURE_HASH_ALGORITHMS: _U16_LIST,
    # RFC 8019
    N.PUZZLE: _Struct(Puzzle, (2, 1)),
    # RFC 9370: opaque link data the peer echoes
    N.ADDITIONAL_KEY_EXCHANGE: _Octets(1, 65535),
}

_NO_DATA = (
    # RFC 7296 §3.10.1 errors without data
    N.INVALID_SYNTAX, N.NO_PROPOSAL_CHOSEN, N.AUTHENTICATION_FAILED, N.SINGLE_PAIR_REQUIRED,
    N.NO_ADDITIONAL_SAS, N.INTERNAL_ADDRESS_FAILURE, N.FAILED_CP_REQUIRED, N.TS_UNACCEPTABLE,
    N.TEMPORARY_FAILURE, N.CHILD_SA_NOT_FOUND,
    # RFC 7296 status flags
    N.INITIAL_CONTACT, N.ADDITIONAL_TS_POSSIBLE, N.USE_TRANSPORT_MODE,
    N.HTTP_CERT_LOOKUP_SUPPORTED, N.REKEY_SA, N.ESP_TFC_PADDING_NOT_SUPPORTED,
    N.NON_FIRST_FRAGMENTS_ALSO,
    # RFC 4555, 4739, 5685, 5723, 5998, 6023, 6311, 7383, 7791, 8784, 9242, 8983
    N.MOBIKE_SUPPORTED, N.NO_ADDITIONAL_ADDRESSES, N.UPDATE_SA_ADDRESSES,
    N.UNACCEPTABLE_ADDRESSES, N.UNEXPECTED_NAT_DETECTED,
    N.MULTIPLE_AUTH_SUPPORTED, N.ANOTHER_AUTH_FOLLOWS, N.REDIRECT_SUPPORTED,
    N.TICKET_REQUEST, N.TICKET_NACK, N.EAP_ONLY_AUTHENTICATION, N.CHILDLESS_IKEV2_SUPPORTED,
    N.IKEV2_MESSAGE_ID_SYNC_SUPPORTED, N.IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED,
    N.IKEV2_FRAGMENTATION_SUPPORTED, N.CLONE_IKE_SA_SUPPORTED, N.USE_PPK,
    N.INTERMEDIATE_EXCHANGE_SUPPORTED, N.IP4_ALLOWED, N.IP6_ALLOWED,
)
CODECS.update((t, _EMPTY) for t in _NO_DATA)

# RFC 7296 §3.10: only these types name a Child SA in the Protocol ID and SPI fields.
CHILD_SA_TYPES = frozenset((N.INVALID_SELECTORS, N.REKEY_SA, N.CHILD_SA_NOT_FOUND))

_OPAQUE = _Codec()


def parse(notify_type, data):
    """The typed value of a notify's data; InvalidSyntax when it does not match the table."""
    return CODECS.get(notify_type, _OPAQUE).parse(notify_type, data)


def build(notify_type, value):
    """The Notification Data for `value` (ValueError/TypeError when it cannot be encoded)."""
    return CODECS.get(notify_type, _OPAQUE).build(notify_type, value)


def child_sa(notify_type, protocol_id, spi):
    """(protocol_id, spi) of the Child SA a REKEY_SA/CHILD_SA_NOT_FOUND/INVALID_SELECTORS names.

    RFC 7296 §3.10: Protocol ID is AH or ESP and the SPI is the 4-octet SPI of that SA.
    """
    if protocol_id not in (ProtocolId.AH, ProtocolId.ESP):
        raise _bad(notify_type, f"protocol ID {protocol_id} does not name a Child SA")
    if len(spi) != 4:
        raise _bad(notify_type, f"SPI of {len(spi)} octets, expected 4")
    return protocol_id, spi
