"""Traffic selectors (RFC 7296 §3.13.1) as the engine and the kernel backends see them.

The wire codec keeps addresses as packed bytes for speed; the engine converts them to `TS`
once per negotiation. Narrowing (§2.9) lives here too.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from .iana import TSType

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
ANY_PROTOCOL = 0


@dataclass(frozen=True, slots=True, order=True)
class TS:
    """One traffic selector: an address range, an IP protocol (0 = any) and a port range."""

    start_addr: IPAddress
    end_addr: IPAddress
    ip_protocol: int = ANY_PROTOCOL
    start_port: int = 0
    end_port: int = 65535

    @property
    def ts_type(self) -> TSType:
        if self.start_addr.version == 4:
            return TSType.TS_IPV4_ADDR_RANGE
        return TSType.TS_IPV6_ADDR_RANGE

    @property
    def version(self) -> int:
        return self.start_addr.version

    @classmethod
    def from_network(cls, network, ip_protocol=ANY_PROTOCOL, start_port=0, end_port=65535):
        net = ipaddress.ip_network(network, strict=False)
        return cls(net.network_address, net.broadcast_address, ip_protocol, start_port, end_port)

    @classmethod
    def host(cls, address, ip_protocol=ANY_PROTOCOL, start_port=0, end_port=65535):
        addr = ipaddress.ip_address(address)
        return cls(addr, addr, ip_protocol, start_port, end_port)

    def networks(self):
        """The CIDR blocks that cover exactly this address range (for kernel policies)."""
        return list(ipaddress.summarize_address_range(self.start_addr, self.end_addr))

    def is_network(self) -> bool:
        return len(self.networks()) == 1

    def contains(self, other: TS) -> bool:
        return (
            self.version == other.version
            and self.start_addr <= other.start_addr
            and other.end_addr <= self.end_addr
            and self.ip_protocol in (ANY_PROTOCOL, other.ip_protocol)
            and self.start_port <= other.start_port
            and other.end_port <= self.end_port
        )

    def intersect(self, other: TS) -> TS | None:
        """The largest selector inside both, or None (RFC 7296 §2.9 narrowing)."""
        if self.version != other.version:
            return None
        if self.ip_protocol == ANY_PROTOCOL:
            proto = other.ip_protocol
        elif other.ip_protocol in (ANY_PROTOCOL, self.ip_protocol):
            proto = self.ip_protocol
        else:
            return None
        start, end = max(self.start_addr, other.start_addr), min(self.end_addr, other.end_addr)
        sport, eport = max(self.start_port, other.start_port), min(self.end_port, other.end_port)
        if start > end or sport > eport:
            return None
        return TS(start, end, proto, sport, eport)

    def __str__(self):
        nets = self.networks()
        addr = str(nets[0]) if len(nets) == 1 else f"{self.start_addr}-{self.end_addr}"
        proto = "" if self.ip_protocol == ANY_PROTOCOL else f" proto {self.ip_protocol}"
        if (self.start_port, self.end_port) == (0, 65535):
            port = ""
        elif self.start_port == self.end_port:
            port = f" port {self.start_port}"
        else:
            port = f" port {self.start_port}-{self.end_port}"
        return f"{addr}{proto}{port}"


def narrow(proposed: list[TS], allowed: list[TS]) -> list[TS]:
    """RFC 7296 §2.9: the subset of `proposed` that policy `allowed` permits.

    Every proposed selector is intersected with every allowed one; an empty result means
    TS_UNACCEPTABLE. Duplicates are removed, order is kept.
    """
    result: list[TS] = []
    for p in proposed:
        for a in allowed:
            ts = p.intersect(a)
            if ts is not None and ts not in result:
                result.append(ts)
    return result
