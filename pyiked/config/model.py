"""The configuration as data: what parsing iked.conf yields and what the engine reads.

Everything here is frozen. A reload builds a new `Config` and swaps the `PolicyStore` in
one assignment, so the engine never sees a half-updated policy set.

Defaults are OpenIKED's (parse.y, iked.h), minus the legacy algorithms (3DES, SHA-1,
MODP below 2048), and with AES-GCM in the CHILD proposals (OpenIKED only drops it on Linux
because of PF_KEY). A config re-enables legacy algorithms by naming them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from pyiked.core.iana import (
    AuthMethod,
    EncrId,
    EsnId,
    IDType,
    IntegId,
    KeId,
    PrfId,
    ProtocolId,
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class ProposalSpec:
    """One `ikesa` or `childsa` line: every algorithm listed is acceptable, in order.

    encr holds (EncrId, key length in bits or 0 for fixed-length ciphers). For a CHILD
    proposal, ke == () means no PFS; esn lists the acceptable ESN transforms.
    """

    protocol: ProtocolId
    encr: tuple[tuple[int, int], ...]
    prf: tuple[int, ...] = ()
    integ: tuple[int, ...] = ()
    ke: tuple[int, ...] = ()
    esn: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Identity:
    """An IKE identity as configured (srcid/dstid) and as sent on the wire."""

    id_type: IDType
    data: bytes  # the Identification Data as on the wire
    text: str  # as written, for logs and `show sa`

    def __str__(self):
        return self.text


@dataclass(frozen=True, slots=True)
class Flow:
    """One `from SRC [port p] to DST [port p]` pair, after `{a, b}` expansion.

    src/dst None means `any`; dst_dynamic is `to dynamic` (the address the
    configuration payload assigns). Ports 0 mean any. proto 0 means any.
    """

    src: Network | None
    dst: Network | None
    src_port: int = 0
    dst_port: int = 0
    proto: int = 0
    src_nat: Network | None = None
    dst_dynamic: bool = False
    src_dynamic: bool = False


@dataclass(frozen=True, slots=True)
class Auth:
    """How this host authenticates and how it expects the peer to.

    method is the iked.conf keyword: "psk", "rsa", "ecdsa256", "ecdsa384", "ecdsa521",
    "rfc7427", "signature" (any signature, OpenIKED's default) or "eap".
    """

    method: str = "signature"
    psk: bytes | None = field(default=None, repr=False)
    eap: str | None = None  # "mschap-v2"
    psk_file: str | None = None  # `psk file F`: the absolute path the key was read from

    @property
    def auth_method(self) -> AuthMethod:
        return {
            "psk": AuthMethod.SHARED_KEY_MIC,
            "rsa": AuthMethod.RSA_SIG,
            "ecdsa256": AuthMethod.ECDSA_SHA256_P256,
            "ecdsa384": AuthMethod.ECDSA_SHA384_P384,
            "ecdsa521": AuthMethod.ECDSA_SHA512_P521,
            "rfc7427": AuthMethod.DIGITAL_SIGNATURE,
            "signature": AuthMethod.DIGITAL_SIGNATURE,
            "eap": AuthMethod.DIGITAL_SIGNATURE,
        }[self.method]


@dataclass(frozen=True, slots=True)
class CfgOption:
    """`config OPT ADDR` (responder gives) or `request OPT ADDR` (initiator asks)."""

    option: str  # address, netmask, name-server, netbios-server, dhcp-server, access-server
    value: Network | ipaddress.IPv4Address | ipaddress.IPv6Address | None


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    source: str = ""  # "file:line" of the rule, for errors and logs
    quick: bool = False
    skip: bool = False
    default: bool = False
    active: bool = False  # passive is OpenIKED's per-rule default
    ipcomp: bool = False
    transport: bool = False  # tunnel is the default
    natt: bool = False  # force UDP encapsulation
    protocol: ProtocolId = ProtocolId.ESP
    af: int = 0  # 0 both, 4 inet, 6 inet6
    rdomain: int | None = None
    flows: tuple[Flow, ...] = ()
    local: Network | None = None  # None = any
    peer: Network | None = None  # None = any
    peer_host: str | None = None  # `peer NAME` given as a host name
    ike_proposals: tuple[ProposalSpec, ...] = ()
    child_proposals: tuple[ProposalSpec, ...] = ()
    srcid: Identity | None = None
    dstid: Identity | None = None
    ikelifetime: int = 0  # seconds; 0: no active IKE SA rekey (OpenIKED)
    lifetime_seconds: int = 10800
    lifetime_bytes: int = 4 * 1024**3
    auth: Auth = Auth()
    config: tuple[CfgOption, ...] = ()
    request: tuple[CfgOption, ...] = ()
    iface: str | None = None
    tag: str | None = None
    tap: str | None = None
    local_host: str | None = None  # `local NAME` given as a host or interface name

    @property
    def ike_proposals_or_default(self):
        return self.ike_proposals or DEFAULT_IKE_PROPOSALS

    @property
    def child_proposals_or_default(self):
        return self.child_proposals or DEFAULT_CHILD_PROPOSALS


@dataclass(frozen=True, slots=True)
class User:
    name: str
    password: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Settings:
    """Global `set` options. The DoS thresholds are pyiked's own `set` options."""

    active: bool = True  # global mode: OpenIKED starts active
    couple: bool = True
    fragmentation: bool = False  # OpenIKED: off by default
    mobike: bool = True
    vendorid: bool = True
    enforcesingleikesa: bool = False
    stickyaddress: bool = False
    cert_partial_chain: bool = False
    ocsp: str | None = None
    ocsp_tolerate: int = 0  # seconds; `set ocsp URL tolerate T`
    ocsp_maxage: int = -1  # seconds; -1: no limit (`maxage T`)
    dpd_check_interval: int = 60
    # DoS resistance (pyiked): cookies above these half-open counts, hard caps beyond
    cookie_threshold: int = 100
    cookie_threshold_ip: int = 5
    halfopen_limit: int = 20000
    halfopen_limit_ip: int = 20
    halfopen_timeout: int = 60
    cookie_secret_lifetime: int = 60  # seconds a cookie secret is used (then one more accepted)
    cookie_hold: int = 10  # seconds cookie mode stays on after the load falls (hysteresis)
    invalid_spi_rate: int = 10  # INVALID_IKE_SPI notifies per second at most (burst: twice)
    # road warriors (pyiked): the largest IP datagram of an IKE fragment (0: 576 over IPv4,
    # 1280 over IPv6, OpenIKED's sizes), and RSASSA-PSS for RFC 7427 RSA signatures
    fragment_size: int = 0
    rsa_pss: bool = False
    # retransmissions of our requests (pyiked; OpenIKED's fixed values): the first after
    # retransmit_timeout seconds, then doubling, at most retransmit_tries times
    retransmit_timeout: int = 2
    retransmit_tries: int = 5


@dataclass(frozen=True, slots=True)
class Config:
    settings: Settings = Settings()
    policies: tuple[Policy, ...] = ()
    users: tuple[User, ...] = ()
    files: tuple[str, ...] = ()


def _proposal(protocol, encr, prf=(), integ=(), ke=(), esn=()):
    return ProposalSpec(protocol, tuple(encr), tuple(prf), tuple(integ), tuple(ke), tuple(esn))


_DEFAULT_PRF = (PrfId.HMAC_SHA2_256, PrfId.HMAC_SHA2_384, PrfId.HMAC_SHA2_512)
_DEFAULT_GROUPS = (
    KeId.CURVE25519,
    KeId.ECP521,
    KeId.ECP384,
    KeId.ECP256,
    KeId.MODP4096,
    KeId.MODP3072,
    KeId.MODP2048,
)
_DEFAULT_INTEG = (IntegId.HMAC_SHA2_256_128, IntegId.HMAC_SHA2_384_192, IntegId.HMAC_SHA2_512_256)
_GCM = ((EncrId.AES_GCM_16, 256), (EncrId.AES_GCM_16, 128))
_CBC = ((EncrId.AES_CBC, 256), (EncrId.AES_CBC, 192), (EncrId.AES_CBC, 128))

DEFAULT_IKE_PROPOSALS = (
    _proposal(ProtocolId.IKE, _GCM, _DEFAULT_PRF, (), _DEFAULT_GROUPS),
    _proposal(ProtocolId.IKE, _CBC, _DEFAULT_PRF, _DEFAULT_INTEG, _DEFAULT_GROUPS),
)
DEFAULT_CHILD_PROPOSALS = (
    _proposal(ProtocolId.ESP, _GCM, esn=(EsnId.ESN, EsnId.NO_ESN)),
    _proposal(ProtocolId.ESP, _CBC, integ=_DEFAULT_INTEG, esn=(EsnId.ESN, EsnId.NO_ESN)),
)
