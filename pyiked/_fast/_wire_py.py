"""IKEv2 message codec: header and payload chain, decode and encode (RFC 7296 §3).

This one source is the pure-Python twin and, compiled with `_wire_c.pxd`, the compiled
module. It must not import cython: the .pxd types it (cdef classes, typed locals, a
pointer over the input), the .py stays plain Python.

decode(data) -> Message         one message (the UDP payload after any non-ESP marker)
decode_payloads(data, first)    the payload chain of a decrypted SK body
encode(message) -> bytes        header + chain; Next Payload and Length are derived
encode_payloads(payloads)       a chain for an SK body (Next Payload comes from payloads[0])
encode_header(message, length)  the 28-octet header, for the SK sealer

Decoding is strict (every length, every count) and raises only IkeError subclasses with
the RFC reaction: InvalidSyntax, UnsupportedCriticalPayload (data = the payload type),
InvalidMajorVersion, or SilentDrop. RESERVED fields are sent as zero and ignored on
receipt (§3.2), so `encode(decode(b)) == b` holds for every canonical message.
Numbers stay plain ints (IntEnum compares equal); Notification Data stays opaque until
the engine asks for its typed value (`Notify.value`, table in `notifydata`).
"""

from ..core.errors import (
    InvalidMajorVersion,
    InvalidSyntax,
    SilentDrop,
    UnsupportedCriticalPayload,
)
from ..core.iana import (
    AuthMethod,
    CertEncoding,
    CfgType,
    ExchangeType,
    HeaderFlag,
    IDType,
    KeId,
    NotifyType,
    PayloadType,
    ProtocolId,
    TSType,
)
from . import notifydata, wireutil

# Payload type numbers as plain module ints: C ints once compiled (see the .pxd).
_SA = 33
_KE = 34
_IDI = 35
_IDR = 36
_CERT = 37
_CERTREQ = 38
_AUTH = 39
_NONCE = 40
_N = 41
_D = 42
_V = 43
_TSI = 44
_TSR = 45
_SK = 46
_CP = 47
_EAP = 48
_SKF = 53

_HEADER_LEN = 28
_FLAG_MASK = 0x28  # Initiator | Response; Version and the rest are ignored (§3.1)
_RESPONSE = 0x20
_INITIATOR = 0x08  # an int: HeaderFlag's enum operators cost a microsecond a test
_CRITICAL = 0x80
_ZERO_SPI = bytes(8)
# True when this source runs as the compiled twin (setup.py builds it as `_wire_c`):
# _put_bytes then copies with a C loop (slice assignment costs a slice object and a
# buffer export per call in compiled code) and encode writes into its result directly.
_COMPILED = __name__.endswith("_c")

# Limits against hostile input; far above anything a real peer sends.
MAX_PAYLOADS = 128  # per chain
MAX_PROPOSALS = 64  # per SA payload
MAX_ATTRIBUTES = 16  # per transform (only Key Length is defined)
MAX_CP_ATTRIBUTES = 128  # per CP payload
# C copies for the compiled twin (module constants typed in the .pxd leave its namespace)
_MAX_PAYLOADS = MAX_PAYLOADS
_MAX_PROPOSALS = MAX_PROPOSALS
_MAX_ATTRIBUTES = MAX_ATTRIBUTES
_MAX_CP_ATTRIBUTES = MAX_CP_ATTRIBUTES


class _Record:
    """Value equality over `_fields` and a readable repr (no secrets: see wireutil)."""

    __slots__ = ()
    _fields = ()

    def __eq__(self, other):
        if type(self) is not type(other):
            return NotImplemented
        for name in self._fields:
            if getattr(self, name) != getattr(other, name):
                return False
        return True

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    __hash__ = None

    def __repr__(self):
        return wireutil.fields_repr(self)


class Transform(_Record):
    """§3.3.2. key_length is the TV Key Length attribute (14); other attributes are kept
    in order as (type, int) for TV and (type, bytes) for TLV, in a tuple (the shared
    empty tuple when there are none: most transforms have none)."""

    __slots__ = ("type", "id", "key_length", "attributes")
    _fields = ("type", "id", "key_length", "attributes")

    def __init__(self, type, id, key_length=None, attributes=None):
        self.type = type
        self.id = id
        self.key_length = key_length
        self.attributes = tuple(attributes) if attributes else ()

    def __repr__(self):
        return wireutil.transform_repr(self)


class Proposal(_Record):
    """§3.3.1. spi: b"" (initial IKE SA), 8 octets (IKE SA rekey) or 4 (AH/ESP)."""

    __slots__ = ("num", "protocol_id", "spi", "transforms")
    _fields = ("num", "protocol_id", "spi", "transforms")
    _enums = {"protocol_id": ProtocolId}

    def __init__(self, num, protocol_id, spi, transforms):
        self.num = num
        self.protocol_id = protocol_id
        self.spi = spi
        self.transforms = transforms


class SA(_Record):
    __slots__ = ("proposals",)
    _fields = ("proposals",)
    payload_type = PayloadType.SA

    def __init__(self, proposals):
        self.proposals = proposals


class KE(_Record):
    __slots__ = ("group", "data")
    _fields = ("group", "data")
    _enums = {"group": KeId}
    payload_type = PayloadType.KE

    def __init__(self, group, data):
        self.group = group
        self.data = data


class _ID(_Record):
    """§3.5. data is the Identification Data as sent; `value` types it."""

    __slots__ = ("id_type", "data")
    _fields = ("id_type", "data")
    _enums = {"id_type": IDType}

    def __init__(self, id_type, data):
        self.id_type = id_type
        self.data = data

    @property
    def value(self):
        """IPv4Address/IPv6Address, str (FQDN, RFC822), None (ID_NULL) or bytes (DER,
        KEY_ID, ...); InvalidSyntax when the data does not fit the type."""
        return wireutil.id_value(self.id_type, self.data)


class IDi(_ID):
    __slots__ = ()
    payload_type = PayloadType.IDi


class IDr(_ID):
    __slots__ = ()
    payload_type = PayloadType.IDr


class _Cert(_Record):
    __slots__ = ("encoding", "data")
    _fields = ("encoding", "data")
    _enums = {"encoding": CertEncoding}

    def __init__(self, encoding, data):
        self.encoding = encoding
        self.data = data


class CERT(_Cert):
    """§3.6."""

    __slots__ = ()
    payload_type = PayloadType.CERT


class CERTREQ(_Cert):
    """§3.7. data is the concatenated SHA-1 hashes of trusted CA public keys (X.509)."""

    __slots__ = ()
    payload_type = PayloadType.CERTREQ


class AUTH(_Record):
    __slots__ = ("method", "data")
    _fields = ("method", "data")
    _enums = {"method": AuthMethod}
    payload_type = PayloadType.AUTH

    def __init__(self, method, data):
        self.method = method
        self.data = data


class Nonce(_Record):
    __slots__ = ("data",)
    _fields = ("data",)
    payload_type = PayloadType.NONCE

    def __init__(self, data):
        self.data = data


class Notify(_Record):
    """§3.10. protocol_id and spi name an SA (REKEY_SA, CHILD_SA_NOT_FOUND,
    INVALID_SELECTORS); protocol_id is 0 whenever spi is empty (ignored on receipt)."""

    __slots__ = ("type", "data", "protocol_id", "spi")
    _fields = ("type", "data", "protocol_id", "spi")
    _enums = {"type": NotifyType, "protocol_id": ProtocolId}
    payload_type = PayloadType.N

    def __init__(self, type, data=b"", protocol_id=0, spi=b""):
        self.type = type
        self.data = data
        self.protocol_id = protocol_id
        self.spi = spi

    @property
    def value(self):
        """The typed Notification Data (see notifydata.CODECS); InvalidSyntax if malformed."""
        return notifydata.parse(self.type, self.data)

    @property
    def child_sa(self):
        """(protocol_id, spi) of the Child SA this notify names; InvalidSyntax if none."""
        return notifydata.child_sa(self.type, self.protocol_id, self.spi)

    @classmethod
    def build(cls, notify_type, value=None, protocol_id=0, spi=b""):
        """A Notify whose data is `value` encoded per notifydata.CODECS."""
        return cls(notify_type, notifydata.build(notify_type, value), protocol_id, spi)


class Delete(_Record):
    """§3.11. spis is empty for the IKE SA, else 4-octet AH/ESP SPIs."""

    __slots__ = ("protocol_id", "spis")
    _fields = ("protocol_id", "spis")
    _enums = {"protocol_id": ProtocolId}
    payload_type = PayloadType.D

    def __init__(self, protocol_id, spis):
        self.protocol_id = protocol_id
        self.spis = spis


class VendorID(_Record):
    __slots__ = ("data",)
    _fields = ("data",)
    payload_type = PayloadType.V

    def __init__(self, data):
        self.data = data


class TrafficSelector(_Record):
    """§3.13.1 TS_IPV4_ADDR_RANGE / TS_IPV6_ADDR_RANGE; addresses packed (4 or 16 octets)."""

    __slots__ = ("ts_type", "ip_protocol", "start_port", "end_port", "start_addr", "end_addr")
    _fields = ("ts_type", "ip_protocol", "start_port", "end_port", "start_addr", "end_addr")
    _enums = {"ts_type": TSType}

    def __init__(self, ts_type, ip_protocol, start_port, end_port, start_addr, end_addr):
        self.ts_type = ts_type
        self.ip_protocol = ip_protocol
        self.start_port = start_port
        self.end_port = end_port
        self.start_addr = start_addr
        self.end_addr = end_addr


class RawSelector(_Record):
    """A selector of another TS type (FC, security label): its octets after the 4-octet
    selector header, kept so the engine can answer TS_UNACCEPTABLE or skip it."""

    __slots__ = ("ts_type", "data")
    _fields = ("ts_type", "data")
    _enums = {"ts_type": TSType}

    def __init__(self, ts_type, data):
        self.ts_type = ts_type
        self.data = data


class _TS(_Record):
    __slots__ = ("selectors",)
    _fields = ("selectors",)

    def __init__(self, selectors):
        self.selectors = selectors


class TSi(_TS):
    __slots__ = ()
    payload_type = PayloadType.TSi


class TSr(_TS):
    __slots__ = ()
    payload_type = PayloadType.TSr


class SK(_Record):
    """§3.14. body = IV | ciphertext | ICV, opaque here. next_payload is the type of the
    first inner payload. offset (set by decode, not compared) is where the SK payload's
    generic header starts in the message: the integrity check covers message[:end-ICV]."""

    __slots__ = ("next_payload", "body", "offset")
    _fields = ("next_payload", "body")
    _enums = {"next_payload": PayloadType}
    payload_type = PayloadType.SK

    def __init__(self, next_payload, body, offset=-1):
        self.next_payload = next_payload
        self.body = body
        self.offset = offset


class CP(_Record):
    """§3.15. attributes: [(attr_type, value bytes)], the reserved R bit dropped."""

    __slots__ = ("cfg_type", "attributes")
    _fields = ("cfg_type", "attributes")
    _enums = {"cfg_type": CfgType}
    payload_type = PayloadType.CP

    def __init__(self, cfg_type, attributes):
        self.cfg_type = cfg_type
        self.attributes = attributes


class EAP(_Record):
    """§3.16. data is the whole EAP message (RFC 3748 §4); its properties validate it
    (InvalidSyntax) and never show type data in a repr: it may hold credentials."""

    __slots__ = ("data",)
    _fields = ("data",)
    payload_type = PayloadType.EAP

    def __init__(self, data):
        self.data = data

    @property
    def code(self):
        return wireutil.eap_fields(self.data)[0]

    @property
    def identifier(self):
        return wireutil.eap_fields(self.data)[1]

    @property
    def eap_type(self):
        """The Type of a Request/Response; None for Success/Failure."""
        return wireutil.eap_fields(self.data)[2]

    @property
    def type_data(self):
        return wireutil.eap_fields(self.data)[3]

    @classmethod
    def build(cls, code, identifier, eap_type=None, type_data=b""):
        return cls(wireutil.eap_message(code, identifier, eap_type, type_data))


class SKF(_Record):
    """RFC 7383 §2.5. next_payload is the first inner payload type in fragment 1, else 0."""

    __slots__ = ("next_payload", "fragment_number", "total_fragments", "body", "offset")
    _fields = ("next_payload", "fragment_number", "total_fragments", "body")
    _enums = {"next_payload": PayloadType}
    payload_type = PayloadType.SKF

    def __init__(self, next_payload, fragment_number, total_fragments, body, offset=-1):
        self.next_payload = next_payload
        self.fragment_number = fragment_number
        self.total_fragments = total_fragments
        self.body = body
        self.offset = offset


class Unknown(_Record):
    """A payload of a type this codec does not parse, kept as it was (§3.2)."""

    __slots__ = ("payload_type", "critical", "data")
    _fields = ("payload_type", "critical", "data")

    def __init__(self, payload_type, critical, data):
        self.payload_type = payload_type
        self.critical = critical
        self.data = data


class Message(_Record):
    """§3.1 header fields and the ordered payload list. The header's Next Payload and
    Length are derived on encode and checked on decode; flags keep only I and R."""

    __slots__ = ("spi_i", "spi_r", "exchange_type", "flags", "message_id", "payloads", "version")
    _fields = ("spi_i", "spi_r", "exchange_type", "flags", "message_id", "version", "payloads")
    _enums = {"exchange_type": ExchangeType, "flags": HeaderFlag}

    def __init__(self, spi_i, spi_r, exchange_type, flags, message_id, payloads, version=0x20):
        self.spi_i = spi_i
        self.spi_r = spi_r
        self.exchange_type = exchange_type
        self.flags = flags
        self.message_id = message_id
        self.payloads = payloads
        self.version = version

    @property
    def is_response(self):
        return bool(self.flags & _RESPONSE)

    @property
    def is_initiator(self):
        return bool(self.flags & _INITIATOR)

    def get(self, cls):
        """The first payload of class `cls`, or None."""
        for p in self.payloads:
            if type(p) is cls:
                return p
        return None

    def get_all(self, cls):
        return [p for p in self.payloads if type(p) is cls]

    def notify(self, notify_type):
        """The first Notify of `notify_type`, or None."""
        for p in self.payloads:
            if type(p) is Notify and p.type == notify_type:
                return p
        return None


# ---------------------------------------------------------------- decode


def _u32(p, o):
    v = p[o]
    return (v << 24) | (p[o + 1] << 16) | (p[o + 2] << 8) | p[o + 3]


def decode(data):
    """Decode one IKE message; raises only IkeError subclasses on malformed input."""
    if type(data) is not bytes:
        data = bytes(memoryview(data))
    p = data
    n = len(data)
    if n < _HEADER_LEN:
        raise SilentDrop(f"{n} octets, shorter than the IKE header", 0)
    version = p[17]
    flags = p[19]
    major = version >> 4
    if major != 2:
        # §2.5: a higher major version gets INVALID_MAJOR_VERSION, never in reply to a
        # response; IKEv1 (and anything lower) is not ours: drop.
        if major > 2 and not flags & _RESPONSE:
            raise InvalidMajorVersion(f"major version {major}", 17)
        raise SilentDrop(f"major version {major}", 17)
    length = _u32(p, 24)
    if length != n:
        raise InvalidSyntax(f"header Length {length}, message of {n} octets", 24)
    spi_i = p[0:8]
    if spi_i == _ZERO_SPI:  # §3.1: SPI_i MUST NOT be zero
        raise SilentDrop("SPI_i is zero", 0)
    m = Message.__new__(Message)
    m.spi_i = spi_i
    m.spi_r = p[8:16]
    m.exchange_type = p[18]
    m.flags = flags & _FLAG_MASK
    m.message_id = _u32(p, 20)
    m.version = version
    m.payloads = _chain(data, _HEADER_LEN, n, p[16], True)
    return m


def decode_payloads(data, first_payload_type):
    """Decode the payload chain of a decrypted SK body (no header, no SK inside)."""
    if type(data) is not bytes:
        data = bytes(memoryview(data))
    if not 0 <= first_payload_type <= 255:
        raise InvalidSyntax(f"first payload type {first_payload_type}", 0)
    return _chain(data, 0, len(data), first_payload_type, False)


def _chain(data, off, end, np, outer):
    """§3.2: walk the generic payload headers from `off` to `end`."""
    p = data
    payloads = []
    count = 0
    while np != 0:
        if count == _MAX_PAYLOADS:
            raise InvalidSyntax(f"more than {_MAX_PAYLOADS} payloads", off)
        count += 1
        if end - off < 4:
            raise InvalidSyntax(f"payload {np} truncated in its generic header", off)
        nxt = p[off]
        plen = (p[off + 2] << 8) | p[off + 3]
        if plen < 4 or plen > end - off:
            raise InvalidSyntax(
                f"payload {np} Payload Length {plen}, {end - off} octets left", off + 2)
        pend = off + plen
        # §3.2: the critical bit of a type we understand is ignored.
        if np == _N:
            obj = _d_notify(data, off, pend)
        elif np == _SA:
            obj = _d_sa(data, off, pend)
        elif np == _KE:
            obj = _d_ke(data, off, pend)
        elif np == _NONCE:
            obj = _d_nonce(data, off, pend)
        elif np == _SK or np == _SKF:
            if not outer:
                raise InvalidSyntax("SK payload inside an SK payload", off)
            if pend != end:  # §3.14 (RFC 7383 §2.5): it MUST be the last payload
                raise InvalidSyntax("payloads after the SK payload", pend)
            if np == _SK:
                obj = _d_sk(data, off, pend, nxt)
            else:
                obj = _d_skf(data, off, pend, nxt)
            payloads.append(obj)
            return payloads
        elif np == _IDI or np == _IDR:
            obj = _d_id(data, off, pend, np)
        elif np == _AUTH:
            obj = _d_auth(data, off, pend)
        elif np == _TSI or np == _TSR:
            obj = _d_ts(data, off, pend, np)
        elif np == _CERT or np == _CERTREQ:
            obj = _d_cert(data, off, pend, np)
        elif np == _D:
            obj = _d_delete(data, off, pend)
        elif np == _V:
            obj = VendorID.__new__(VendorID)
            obj.data = p[off + 4:pend]
        elif np == _CP:
            obj = _d_cp(data, off, pend)
        elif np == _EAP:
            obj = _d_eap(data, off, pend)
        else:
            # §3.2: an unknown critical payload rejects the message, with its type as
            # the notify data; an unknown non-critical one is skipped (kept as is).
            if p[off + 1] & _CRITICAL:
                raise UnsupportedCriticalPayload(
                    f"payload type {np} is critical and not supported", off, bytes((np,))
                )
            obj = Unknown.__new__(Unknown)
            obj.payload_type = np
            obj.critical = False
            obj.data = p[off + 4:pend]
        payloads.append(obj)
        off = pend
        np = nxt
    if off != end:
        raise InvalidSyntax(f"{end - off} octets after the last payload", off)
    return payloads


def _short(name, off):
    return InvalidSyntax(f"{name} payload shorter than its fixed fields", off)


def _d_sa(data, off, end):
    p = data
    o = off + 4
    proposals = []
    more = 2
    while o < end:
        if more != 2:  # §3.3.1: 0 means the previous proposal was the last
            raise InvalidSyntax("data after the last proposal", o)
        if len(proposals) == _MAX_PROPOSALS:
            raise InvalidSyntax(f"more than {_MAX_PROPOSALS} proposals", o)
        if end - o < 8:
            raise InvalidSyntax("proposal truncated", o)
        more = p[o]
        if more != 0 and more != 2:
            raise InvalidSyntax(f"proposal Last Substruc {more}", o)
        plen = (p[o + 2] << 8) | p[o + 3]
        if plen < 8 or plen > end - o:
            raise InvalidSyntax(f"Proposal Length {plen}, {end - o} octets left", o + 2)
        proposals.append(_d_proposal(data, o, o + plen))
        o += plen
    if not proposals:
        raise InvalidSyntax("SA payload without a proposal", off)
    if more != 0:
        raise InvalidSyntax("SA payload ends before its last proposal", o)
    sa = SA.__new__(SA)
    sa.proposals = proposals
    return sa


def _d_proposal(data, o, end):
    p = data
    protocol_id = p[o + 5]
    spi_size = p[o + 6]
    count = p[o + 7]
    # §3.3.1 SPI Size: 0 for the initial IKE SA, 8 for an IKE SA rekey, 4 for AH/ESP
    if protocol_id == 1:
        bad = spi_size != 0 and spi_size != 8
    elif protocol_id == 2 or protocol_id == 3:
        bad = spi_size != 4
    else:
        bad = False
    if bad:
        raise InvalidSyntax(f"SPI Size {spi_size} for protocol {protocol_id}", o + 6)
    t = o + 8 + spi_size
    if t > end:
        raise InvalidSyntax(f"SPI Size {spi_size} exceeds the proposal", o + 6)
    prop = Proposal.__new__(Proposal)
    prop.num = p[o + 4]
    prop.protocol_id = protocol_id
    prop.spi = p[o + 8:t]
    transforms = []
    more = 3
    while t < end:
        if more != 3:  # §3.3.2: 0 means the previous transform was the last
            raise InvalidSyntax("data after the last transform", t)
        if end - t < 8:
            raise InvalidSyntax("transform truncated", t)
        more = p[t]
        if more != 0 and more != 3:
            raise InvalidSyntax(f"transform Last Substruc {more}", t)
        tlen = (p[t + 2] << 8) | p[t + 3]
        if tlen < 8 or tlen > end - t:
            raise InvalidSyntax(f"Transform Length {tlen}, {end - t} octets left", t + 2)
        transforms.append(_d_transform(data, t, t + tlen))
        t += tlen
    if len(transforms) != count:
        raise InvalidSyntax(f"{len(transforms)} transforms, Num Transforms {count}", o + 7)
    if count and more != 0:
        raise InvalidSyntax("proposal ends before its last transform", t)
    prop.transforms = transforms
    return prop


def _d_transform(data, o, end):
    p = data
    key_length = None
    attributes = None
    a = o + 8
    count = 0
    while a < end:
        if count == _MAX_ATTRIBUTES:
            raise InvalidSyntax(f"more than {_MAX_ATTRIBUTES} transform attributes", a)
        count += 1
        if end - a < 4:
            raise InvalidSyntax("transform attribute truncated", a)
        attr = (p[a] << 8) | p[a + 1]
        if attr & 0x8000:  # §3.3.5 AF=1: TV, a 2-octet value
            value = (p[a + 2] << 8) | p[a + 3]
            if attr == 0x800E:  # Key Length
                if key_length is not None:
                    raise InvalidSyntax("two Key Length attributes", a)
                key_length = value
            else:
                if attributes is None:
                    attributes = []
                attributes.append((attr & 0x7FFF, value))
            a += 4
        else:
            alen = (p[a + 2] << 8) | p[a + 3]
            if alen > end - a - 4:
                raise InvalidSyntax(f"attribute Length {alen}, {end - a - 4} octets left", a + 2)
            if attr == 14:  # §3.3.5: Key Length is TV only
                raise InvalidSyntax("Key Length attribute in TLV format", a)
            if attributes is None:
                attributes = []
            attributes.append((attr, p[a + 4:a + 4 + alen]))
            a += 4 + alen
    tr = Transform.__new__(Transform)
    tr.type = p[o + 4]
    tr.id = (p[o + 6] << 8) | p[o + 7]
    tr.key_length = key_length
    tr.attributes = () if attributes is None else tuple(attributes)
    return tr


def _d_ke(data, off, end):
    p = data
    if end - off < 8:
        raise _short("KE", off)
    ke = KE.__new__(KE)
    ke.group = (p[off + 4] << 8) | p[off + 5]
    ke.data = p[off + 8:end]
    return ke


def _d_id(data, off, end, np):
    p = data
    if end - off < 8:
        raise _short("ID", off)
    if np == _IDI:
        ident = IDi.__new__(IDi)
    else:
        ident = IDr.__new__(IDr)
    ident.id_type = p[off + 4]
    ident.data = p[off + 8:end]
    return ident


def _d_cert(data, off, end, np):
    p = data
    if end - off < 5:
        raise _short("CERT", off)
    if np == _CERT:
        cert = CERT.__new__(CERT)
    else:
        cert = CERTREQ.__new__(CERTREQ)
    cert.encoding = p[off + 4]
    cert.data = p[off + 5:end]
    return cert


def _d_auth(data, off, end):
    p = data
    if end - off < 8:
        raise _short("AUTH", off)
    auth = AUTH.__new__(AUTH)
    auth.method = p[off + 4]
    auth.data = p[off + 8:end]
    return auth


def _d_nonce(data, off, end):
    p = data
    size = end - off - 4
    if size < 16 or size > 256:  # §3.9: between 16 and 256 octets inclusive
        raise InvalidSyntax(f"nonce of {size} octets", off)
    nonce = Nonce.__new__(Nonce)
    nonce.data = p[off + 4:end]
    return nonce


def _d_notify(data, off, end):
    p = data
    if end - off < 8:
        raise _short("Notify", off)
    spi_size = p[off + 5]
    d = off + 8 + spi_size
    if d > end:
        raise InvalidSyntax(f"SPI Size {spi_size} exceeds the Notify payload", off + 5)
    n = Notify.__new__(Notify)
    n.type = (p[off + 6] << 8) | p[off + 7]
    # §3.10: with an empty SPI the Protocol ID is sent as zero and ignored on receipt.
    n.protocol_id = p[off + 4] if spi_size else 0
    n.spi = p[off + 8:d]
    n.data = p[d:end]
    return n


def _d_delete(data, off, end):
    p = data
    if end - off < 8:
        raise _short("Delete", off)
    protocol_id = p[off + 4]
    spi_size = p[off + 5]
    count = (p[off + 6] << 8) | p[off + 7]
    # §3.11: SPI Size is zero for IKE (no SPIs: they are in the header), four for AH/ESP
    if protocol_id == 1:
        bad = spi_size != 0 or count != 0
    elif protocol_id == 2 or protocol_id == 3:
        bad = spi_size != 4
    else:
        bad = spi_size == 0 and count != 0
    if bad:
        raise InvalidSyntax(f"Delete of protocol {protocol_id} with SPI Size {spi_size}", off + 5)
    if end - off - 8 != spi_size * count:
        raise InvalidSyntax(
            f"Delete payload does not hold {count} SPIs of {spi_size} octets", off + 6)
    spis = []
    s = off + 8
    for i in range(count):
        spis.append(p[s:s + spi_size])
        s += spi_size
    d = Delete.__new__(Delete)
    d.protocol_id = protocol_id
    d.spis = spis
    return d


def _d_ts(data, off, end, np):
    p = data
    if end - off < 8:
        raise _short("TS", off)
    count = p[off + 4]
    selectors = []
    o = off + 8
    for i in range(count):
        if end - o < 4:
            raise InvalidSyntax("traffic selector truncated", o)
        ts_type = p[o]
        slen = (p[o + 2] << 8) | p[o + 3]
        if slen < 4 or slen > end - o:
            raise InvalidSyntax(f"Selector Length {slen}, {end - o} octets left", o + 2)
        if ts_type == 7 or ts_type == 8:  # §3.13.1
            size = 4 if ts_type == 7 else 16
            if slen != 8 + 2 * size:
                raise InvalidSyntax(f"Selector Length {slen} for TS type {ts_type}", o + 2)
            ts = TrafficSelector.__new__(TrafficSelector)
            ts.ts_type = ts_type
            ts.ip_protocol = p[o + 1]
            ts.start_port = (p[o + 4] << 8) | p[o + 5]
            ts.end_port = (p[o + 6] << 8) | p[o + 7]
            ts.start_addr = p[o + 8:o + 8 + size]
            ts.end_addr = p[o + 8 + size:o + slen]
            selectors.append(ts)
        else:
            raw = RawSelector.__new__(RawSelector)
            raw.ts_type = ts_type
            raw.data = p[o + 4:o + slen]
            selectors.append(raw)
        o += slen
    if o != end:
        raise InvalidSyntax(f"{end - o} octets after {count} traffic selectors", o)
    if np == _TSI:
        tsp = TSi.__new__(TSi)
    else:
        tsp = TSr.__new__(TSr)
    tsp.selectors = selectors
    return tsp


def _d_sk(data, off, end, nxt):
    p = data
    sk = SK.__new__(SK)
    sk.next_payload = nxt
    sk.body = p[off + 4:end]
    sk.offset = off
    return sk


def _d_skf(data, off, end, nxt):
    p = data
    if end - off < 8:
        raise _short("SKF", off)
    number = (p[off + 4] << 8) | p[off + 5]
    total = (p[off + 6] << 8) | p[off + 7]
    # RFC 7383 §2.5: both nonzero and Fragment Number <= Total Fragments; an invalid
    # fragment is discarded.
    if number == 0 or total == 0 or number > total:
        raise SilentDrop(f"fragment {number} of {total}", off + 4)
    skf = SKF.__new__(SKF)
    skf.next_payload = nxt
    skf.fragment_number = number
    skf.total_fragments = total
    skf.body = p[off + 8:end]
    skf.offset = off
    return skf


def _d_cp(data, off, end):
    p = data
    if end - off < 8:
        raise _short("CP", off)
    attributes = []
    a = off + 8
    while a < end:
        if len(attributes) == _MAX_CP_ATTRIBUTES:
            raise InvalidSyntax(f"more than {_MAX_CP_ATTRIBUTES} configuration attributes", a)
        if end - a < 4:
            raise InvalidSyntax("configuration attribute truncated", a)
        attr = ((p[a] << 8) | p[a + 1]) & 0x7FFF  # §3.15.1: the R bit is reserved
        alen = (p[a + 2] << 8) | p[a + 3]
        if alen > end - a - 4:
            raise InvalidSyntax(f"attribute Length {alen}, {end - a - 4} octets left", a + 2)
        attributes.append((attr, p[a + 4:a + 4 + alen]))
        a += 4 + alen
    cp = CP.__new__(CP)
    cp.cfg_type = p[off + 4]
    cp.attributes = attributes
    return cp


def _d_eap(data, off, end):
    p = data
    if end - off < 8:  # §3.16: at least the 4-octet EAP header
        raise _short("EAP", off)
    eap = EAP.__new__(EAP)
    eap.data = p[off + 4:end]
    return eap


# ---------------------------------------------------------------- encode
# Two passes: _size() gives the exact length (and checks what the wire can hold), then
# _put_*() write into one preallocated buffer and back-patch each Payload Length.


def encode(message):
    """The message's octets: header (Next Payload, Length derived) and payload chain."""
    payloads = message.payloads
    size = _HEADER_LEN + _chain_size(payloads, True)
    out = _buffer(size)
    _put_header(out, message, size)
    _put_chain(out, _HEADER_LEN, payloads)
    return _result(out)


def encode_payloads(payloads):
    """An inner payload chain (an SK body before encryption)."""
    out = _buffer(_chain_size(payloads, False))
    _put_chain(out, 0, payloads)
    return _result(out)


def encode_header(message, length):
    """The 28-octet header with Next Payload from message.payloads[0] and this Length."""
    out = _buffer(_HEADER_LEN)
    _put_header(out, message, length)
    return _result(out)


def _buffer(size):
    """A zeroed output buffer (RESERVED fields stay zero). Compiled, it is the bytes object
    returned: written through a pointer while nobody else holds it, which saves the
    bytearray and the copy (an empty result is the shared b"", never written)."""
    if _COMPILED:
        return bytes(size)
    return bytearray(size)


def _result(out):
    if _COMPILED:
        return out
    return bytes(out)


def _check(value, limit, what):
    if value < 0 or value > limit:
        raise ValueError(f"{what} {value} does not fit its field")
    return value


def _put_header(out, message, length):
    w = out
    spi_i = message.spi_i
    spi_r = message.spi_r
    if len(spi_i) != 8 or len(spi_r) != 8:
        raise ValueError("IKE SPIs are 8 octets")
    payloads = message.payloads
    _put_bytes(out, 0, spi_i)
    _put_bytes(out, 8, spi_r)
    w[16] = _ptype(payloads[0]) if payloads else 0
    w[17] = _check(message.version, 255, "version")
    w[18] = _check(message.exchange_type, 255, "exchange type")
    w[19] = _check(message.flags, 255, "flags") & _FLAG_MASK  # §3.1: others sent as zero
    _put32(w, 20, _check(message.message_id, 0xFFFFFFFF, "message ID"))
    _put32(w, 24, _check(length, 0xFFFFFFFF, "length"))


def _put32(w, o, v):
    w[o] = v >> 24
    w[o + 1] = (v >> 16) & 0xFF
    w[o + 2] = (v >> 8) & 0xFF
    w[o + 3] = v & 0xFF


def _put16(w, o, v):
    w[o] = v >> 8
    w[o + 1] = v & 0xFF


def _chain_size(payloads, outer):
    size = 0
    n = len(payloads)
    for i in range(n):
        p = payloads[i]
        t = type(p)
        if t is SK or t is SKF:
            if not outer:
                raise ValueError("an SK payload cannot be inside an SK payload")
            if i != n - 1:
                raise ValueError("the SK payload must be the last payload")  # §3.14
        plen = _size(p)
        if plen > 0xFFFF:
            raise ValueError(f"{t.__name__} payload of {plen} octets")
        size += plen
    return size


def _size(p):
    """The payload's length with its generic header."""
    t = type(p)
    if t is Notify:
        n = p
        return 8 + len(n.spi) + len(n.data)
    if t is SA:
        sa = p
        size = 4
        for prop in sa.proposals:
            size += _proposal_size(prop)
        return size
    if t is KE:
        ke = p
        return 8 + len(ke.data)
    if t is Nonce:
        nonce = p
        return 4 + len(nonce.data)
    if t is SK:
        sk = p
        return 4 + len(sk.body)
    if t is IDi or t is IDr:
        ident = p
        return 8 + len(ident.data)
    if t is AUTH:
        auth = p
        return 8 + len(auth.data)
    if t is TSi or t is TSr:
        size = 8
        for ts in p.selectors:
            if type(ts) is TrafficSelector:
                size += 8 + len(ts.start_addr) + len(ts.end_addr)
            else:
                size += 4 + len(ts.data)
        return size
    if t is CERT or t is CERTREQ:
        return 5 + len(p.data)
    if t is VendorID or t is EAP or t is Unknown:
        return 4 + len(p.data)
    if t is Delete:
        size = 8
        for spi in p.spis:
            size += len(spi)
        return size
    if t is CP:
        size = 8
        for attr in p.attributes:
            size += 4 + len(attr[1])
        return size
    if t is SKF:
        return 8 + len(p.body)
    raise TypeError(f"not a payload: {t.__name__}")


def _proposal_size(prop):
    size = 8 + len(prop.spi)
    for tr in prop.transforms:
        size += 8 if tr.key_length is None else 12
        for attr in tr.attributes:
            value = attr[1]
            size += 4 if type(value) is int else 4 + len(value)
    if size > 0xFFFF:
        raise ValueError(f"proposal of {size} octets")
    return size


def _ptype(p):
    """p.payload_type; compiled, the type tests avoid an attribute lookup in the type."""
    if _COMPILED:
        t = type(p)
        if t is Notify:
            return _N
        if t is SA:
            return _SA
        if t is KE:
            return _KE
        if t is Nonce:
            return _NONCE
        if t is SK:
            return _SK
    return _check(p.payload_type, 255, "payload type")


def _put_chain(out, pos, payloads):
    n = len(payloads)
    for i in range(n):
        p = payloads[i]
        if i + 1 < n:
            nxt = _ptype(payloads[i + 1])
        else:
            nxt = 0
        pos = _put_payload(out, pos, p, nxt)
    return pos


def _put_bytes(out, pos, blob):
    k = len(blob)
    if _COMPILED:
        w = out
        b = blob
        for i in range(k):
            w[pos + i] = b[i]
    else:
        out[pos:pos + k] = blob
    return pos + k


def _put_payload(out, pos, p, nxt):
    """Write one payload at pos (the buffer is zeroed: RESERVED fields stay 0)."""
    w = out
    start = pos
    w[pos] = nxt
    pos += 4
    t = type(p)
    if t is Notify:
        n = p
        spi = n.spi
        w[pos] = _check(n.protocol_id, 255, "protocol ID") if len(spi) else 0
        w[pos + 1] = _check(len(spi), 255, "SPI size")
        _put16(w, pos + 2, _check(n.type, 0xFFFF, "notify type"))
        pos = _put_bytes(out, pos + 4, spi)
        pos = _put_bytes(out, pos, n.data)
    elif t is SA:
        sa = p
        proposals = sa.proposals
        last = len(proposals) - 1
        for i in range(last + 1):
            pos = _put_proposal(out, pos, proposals[i], i == last)
    elif t is KE:
        ke = p
        _put16(w, pos, _check(ke.group, 0xFFFF, "KE group"))
        pos = _put_bytes(out, pos + 4, ke.data)
    elif t is Nonce:
        nonce = p
        pos = _put_bytes(out, pos, nonce.data)
    elif t is SK:
        sk = p
        w[start] = _check(sk.next_payload, 255, "SK next payload")
        pos = _put_bytes(out, pos, sk.body)
    elif t is IDi or t is IDr:
        ident = p
        w[pos] = _check(ident.id_type, 255, "ID type")
        pos = _put_bytes(out, pos + 4, ident.data)
    elif t is AUTH:
        auth = p
        w[pos] = _check(auth.method, 255, "auth method")
        pos = _put_bytes(out, pos + 4, auth.data)
    elif t is TSi or t is TSr:
        pos = _put_ts(out, pos, p)
    elif t is CERT or t is CERTREQ:
        cert = p
        w[pos] = _check(cert.encoding, 255, "certificate encoding")
        pos = _put_bytes(out, pos + 1, cert.data)
    elif t is Delete:
        pos = _put_delete(out, pos, p)
    elif t is VendorID:
        vid = p
        pos = _put_bytes(out, pos, vid.data)
    elif t is CP:
        pos = _put_cp(out, pos, p)
    elif t is EAP:
        eap = p
        pos = _put_bytes(out, pos, eap.data)
    elif t is SKF:
        skf = p
        w[start] = _check(skf.next_payload, 255, "SKF next payload")
        _put16(w, pos, _check(skf.fragment_number, 0xFFFF, "fragment number"))
        _put16(w, pos + 2, _check(skf.total_fragments, 0xFFFF, "total fragments"))
        pos = _put_bytes(out, pos + 4, skf.body)
    else:
        unknown = p
        if unknown.critical:
            w[start + 1] = _CRITICAL
        pos = _put_bytes(out, pos, unknown.data)
    _put16(w, start + 2, pos - start)
    return pos


def _put_proposal(out, pos, prop, last):
    w = out
    start = pos
    spi = prop.spi
    transforms = prop.transforms
    w[pos] = 0 if last else 2  # §3.3.1 Last Substruc
    w[pos + 4] = _check(prop.num, 255, "proposal number")
    w[pos + 5] = _check(prop.protocol_id, 255, "protocol ID")
    w[pos + 6] = _check(len(spi), 255, "SPI size")
    w[pos + 7] = _check(len(transforms), 255, "transform count")
    pos = _put_bytes(out, pos + 8, spi)
    last_t = len(transforms) - 1
    for i in range(last_t + 1):
        tr = transforms[i]
        tstart = pos
        w[pos] = 0 if i == last_t else 3  # §3.3.2 Last Substruc
        w[pos + 4] = _check(tr.type, 255, "transform type")
        _put16(w, pos + 6, _check(tr.id, 0xFFFF, "transform ID"))
        pos += 8
        if tr.key_length is not None:
            _put16(w, pos, 0x800E)  # §3.3.5 Key Length, TV
            _put16(w, pos + 2, _check(tr.key_length, 0xFFFF, "key length"))
            pos += 4
        for attr in tr.attributes:
            atype = _check(attr[0], 0x7FFF, "attribute type")
            value = attr[1]
            if type(value) is int:
                _put16(w, pos, atype | 0x8000)
                _put16(w, pos + 2, _check(value, 0xFFFF, "attribute value"))
                pos += 4
            else:
                _put16(w, pos, atype)
                _put16(w, pos + 2, len(value))
                pos = _put_bytes(out, pos + 4, value)
        _put16(w, tstart + 2, pos - tstart)
    _put16(w, start + 2, pos - start)
    return pos


def _put_ts(out, pos, p):
    w = out
    selectors = p.selectors
    w[pos] = _check(len(selectors), 255, "TS count")
    pos += 4
    for sel in selectors:
        if type(sel) is TrafficSelector:
            ts = sel
            start_addr = ts.start_addr
            end_addr = ts.end_addr
            if ts.ts_type != 7 and ts.ts_type != 8:
                raise ValueError(f"TrafficSelector of TS type {ts.ts_type}: use RawSelector")
            size = 4 if ts.ts_type == 7 else 16
            if len(start_addr) != size or len(end_addr) != size:
                raise ValueError(f"TS type {ts.ts_type} with addresses of the wrong size")
            w[pos] = ts.ts_type
            w[pos + 1] = _check(ts.ip_protocol, 255, "IP protocol")
            _put16(w, pos + 2, 8 + 2 * size)
            _put16(w, pos + 4, _check(ts.start_port, 0xFFFF, "port"))
            _put16(w, pos + 6, _check(ts.end_port, 0xFFFF, "port"))
            pos = _put_bytes(out, pos + 8, start_addr)
            pos = _put_bytes(out, pos, end_addr)
        else:
            raw = sel
            w[pos] = _check(raw.ts_type, 255, "TS type")
            _put16(w, pos + 2, 4 + len(raw.data))
            pos = _put_bytes(out, pos + 4, raw.data)
    return pos


def _put_delete(out, pos, d):
    w = out
    spis = d.spis
    protocol_id = d.protocol_id
    if protocol_id == 1:
        spi_size = 0
    elif protocol_id == 2 or protocol_id == 3:
        spi_size = 4
    else:
        spi_size = len(spis[0]) if spis else 0
    w[pos] = _check(protocol_id, 255, "protocol ID")
    w[pos + 1] = spi_size
    _put16(w, pos + 2, _check(len(spis), 0xFFFF, "SPI count"))
    pos += 4
    for spi in spis:
        if len(spi) != spi_size:
            raise ValueError(f"Delete of protocol {protocol_id} with a {len(spi)}-octet SPI")
        pos = _put_bytes(out, pos, spi)
    return pos


def _put_cp(out, pos, cp):
    w = out
    w[pos] = _check(cp.cfg_type, 255, "CFG type")
    pos += 4
    for attr in cp.attributes:
        value = attr[1]
        _put16(w, pos, _check(attr[0], 0x7FFF, "attribute type"))
        _put16(w, pos + 2, len(value))
        pos = _put_bytes(out, pos + 4, value)
    return pos
