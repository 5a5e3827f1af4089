"""Events the engine emits (`Engine.next_event()`) and notices it accepts from the kernel.

Each event carries everything a kernel backend or the daemon needs to act on it, so a
backend never has to reach back into the engine. Keys are bytes and never appear in a
repr (`repr=False`): events get logged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .ts import TS, IPAddress


@dataclass(frozen=True, slots=True)
class Lifetime:
    """Soft limits trigger a rekey, hard limits a delete. 0 means no limit."""

    soft_seconds: int = 0
    hard_seconds: int = 0
    soft_bytes: int = 0
    hard_bytes: int = 0
    soft_packets: int = 0
    hard_packets: int = 0


@dataclass(frozen=True, slots=True)
class SAKeys:
    """One direction of an ESP/AH SA (RFC 7296 §2.17 KEYMAT split).

    encr_key includes the 4-octet salt for AEAD ciphers (RFC 4106 §8.1, RFC 7634 §2);
    integ_key is empty for AEAD. Likewise AES-CTR's key ends in its 4-octet nonce
    (RFC 3686 §5.1) and AES-CCM's in a 3-octet salt (RFC 4309 §7.1): the KEYMAT split
    takes those octets with the key.
    """

    spi: int
    encr_id: int
    encr_key_bits: int  # key length without the salt, 0 for fixed-length ciphers
    integ_id: int
    encr_key: bytes = field(repr=False)
    integ_key: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Encapsulation:
    """UDP encapsulation of ESP (RFC 3948): ports as seen from this host."""

    local_port: int
    remote_port: int


@dataclass(frozen=True, slots=True)
class ChildSAInstall:
    """Install a CHILD_SA pair (inbound + outbound) and, for a new flow, its policies."""

    ike_sa: bytes  # spi_i + spi_r of the owning IKE SA
    child_id: int  # engine-unique, stable across the SA's life
    reqid: int  # shared by the SAs of one flow, old and rekeyed alike
    protocol: int  # ProtocolId.ESP / AH
    mode: str  # "tunnel" or "transport"
    local_addr: IPAddress
    remote_addr: IPAddress
    inbound: SAKeys
    outbound: SAKeys
    ts_local: tuple[TS, ...]
    ts_remote: tuple[TS, ...]
    esn: bool
    replay_window: int
    lifetime: Lifetime
    encap: Encapsulation | None = None
    rekey_of: int | None = None  # child_id this SA replaces (policies stay installed)
    initiator: bool = False  # whether this host initiated the CHILD_SA


@dataclass(frozen=True, slots=True)
class ChildSARemove:
    ike_sa: bytes
    child_id: int
    reqid: int
    protocol: int
    local_addr: IPAddress
    remote_addr: IPAddress
    inbound_spi: int
    outbound_spi: int
    ts_local: tuple[TS, ...]
    ts_remote: tuple[TS, ...]
    remove_policies: bool  # False when a rekeyed SA takes over the flow
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ChildSAUpdate:
    """The peer's address or port changed (NAT mapping, RFC 7296 §2.23)."""

    ike_sa: bytes
    child_id: int
    local_addr: IPAddress
    remote_addr: IPAddress
    encap: Encapsulation | None


@dataclass(frozen=True, slots=True)
class IkeSAUp:
    ike_sa: bytes
    initiator: bool
    local_addr: tuple[str, int]
    remote_addr: tuple[str, int]
    local_id: str
    remote_id: str
    policy: str
    algorithms: dict  # {"encr": ..., "prf": ..., "integ": ..., "ke": ...}
    nat_local: bool
    nat_remote: bool


@dataclass(frozen=True, slots=True)
class IkeSADown:
    ike_sa: bytes
    reason: str
    remote_addr: tuple[str, int] | None = None


@dataclass(frozen=True, slots=True)
class IkeSARekeyed:
    old_ike_sa: bytes
    new_ike_sa: bytes


@dataclass(frozen=True, slots=True)
class AddressLease:
    ike_sa: bytes
    remote_id: str
    address: IPAddress
    released: bool = False


@dataclass(frozen=True, slots=True)
class HandshakeFailed:
    """A negotiation ended without an SA: for logs and metrics (reason = notify name)."""

    remote_addr: tuple[str, int]
    reason: str
    initiator: bool


# Notices from the kernel back to the engine (Engine.kernel_notice)


@dataclass(frozen=True, slots=True)
class KernelExpire:
    """XFRM_MSG_EXPIRE or the userspace data plane's counters: soft -> rekey, hard -> delete."""

    protocol: int
    spi: int  # inbound or outbound SPI of the CHILD_SA
    dst: IPAddress
    hard: bool


@dataclass(frozen=True, slots=True)
class KernelActivity:
    """Inbound CHILD SAs (by SPI) that received authenticated ESP since the last such
    notice: the peer is alive, so no liveness check is due (RFC 7296 §2.4)."""

    spis: frozenset


@dataclass(frozen=True, slots=True)
class KernelAcquire:
    """XFRM_MSG_ACQUIRE: traffic hit an active policy with no SA."""

    reqid: int
    ts_local: TS
    ts_remote: TS
