"""NAT detection (RFC 7296 §2.23) and the NAT-T port float (RFC 3948)."""

from __future__ import annotations

import hashlib
import socket

from .iana import NotifyType


def nat_hash(spi_i: bytes, spi_r: bytes, ip: str, port: int) -> bytes:
    """RFC 7296 §2.23: SHA-1(SPIi | SPIr | IP | Port). SPIr is zero in the request."""
    packed = socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)
    return hashlib.sha1(spi_i + spi_r + packed + port.to_bytes(2, "big")).digest()


def detection_notifies(wire, spi_i, spi_r, local_addr, remote_addr, fake_source=b""):
    """NAT_DETECTION_SOURCE_IP (our address) and _DESTINATION_IP (theirs).

    fake_source: a random 20 bytes to send instead of our real source hash, which makes
    the peer believe we are behind a NAT and so use UDP encapsulation. A userspace ESP
    data plane needs that (as strongSwan's kernel-libipsec does): it only sees ESP in UDP.
    """
    source = fake_source or nat_hash(spi_i, spi_r, *local_addr)
    return [
        wire.Notify(NotifyType.NAT_DETECTION_SOURCE_IP, source),
        wire.Notify(NotifyType.NAT_DETECTION_DESTINATION_IP, nat_hash(spi_i, spi_r, *remote_addr)),
    ]


def detect(notifies, spi_i, spi_r, local_addr, remote_addr) -> tuple[bool, bool] | None:
    """From the peer's NAT_DETECTION_* notifies: (we are behind a NAT, the peer is).

    Returns None when the peer sent no NAT detection (it does not support NAT-T).
    The peer may send several source hashes, one per address it has (§2.23).
    """
    sources = [n.data for n in notifies if n.type == NotifyType.NAT_DETECTION_SOURCE_IP]
    dests = [n.data for n in notifies if n.type == NotifyType.NAT_DETECTION_DESTINATION_IP]
    if not sources and not dests:
        return None
    remote_hash = nat_hash(spi_i, spi_r, *remote_addr)
    local_hash = nat_hash(spi_i, spi_r, *local_addr)
    peer_natted = bool(sources) and remote_hash not in sources
    local_natted = bool(dests) and local_hash not in dests
    return local_natted, peer_natted
