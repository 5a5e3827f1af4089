"""Traffic selectors (RFC 7296 §3.13.1) as the engine and the kernel backends see them.

A TS is a tuple of integers, (version, start, end, ip_protocol, start_port, end_port):
the addresses are the range's first and last address as ints, so comparing, hashing,
narrowing and the wire conversion run on ints and tuples in C, not on ipaddress objects
(each IKE_AUTH narrows a few selectors against the policy's). `start_addr`, `end_addr`
and `networks()` give ipaddress objects where text or a kernel message needs them.
Narrowing (§2.9) lives here too.
"""

from __future__ import annotations

import ipaddress
from operator import itemgetter

from .iana import TSType

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
ANY_PROTOCOL = 0
_ADDRESS = {4: ipaddress.IPv4Address, 6: ipaddress.IPv6Address}
_TS_TYPE = {4: TSType.TS_IPV4_ADDR_RANGE, 6: TSType.TS_IPV6_ADDR_RANGE}
_new = tuple.__new__


class TS(tuple):
    """One traffic selector: an address range of one IP version, an IP protocol (0 = any)
    and a port range. Immutable, hashable, ordered (by version, then range, ...)."""

    __slots__ = ()

    def __new__(cls, version: int, start: int, end: int, ip_protocol: int = ANY_PROTOCOL,
                start_port: int = 0, end_port: int = 65535):
        return _new(cls, (version, start, end, ip_protocol, start_port, end_port))

    version = property(itemgetter(0))
    start = property(itemgetter(1))  # the first address, as an int
    end = property(itemgetter(2))  # the last address, as an int
    ip_protocol = property(itemgetter(3))
    start_port = property(itemgetter(4))
    end_port = property(itemgetter(5))

    @property
    def start_addr(self) -> IPAddress:
        return _ADDRESS[self[0]](self[1])

    @property
    def end_addr(self) -> IPAddress:
        return _ADDRESS[self[0]](self[2])

    @property
    def ts_type(self) -> TSType:
        return _TS_TYPE[self[0]]

    @classmethod
    def range(cls, start_addr, end_addr, ip_protocol=ANY_PROTOCOL, start_port=0, end_port=65535):
        """From two addresses (ipaddress objects or text) of the same version."""
        start, end = ipaddress.ip_address(start_addr), ipaddress.ip_address(end_addr)
        if start.version != end.version:
            raise ValueError("a traffic selector's addresses must be of one IP version")
        return cls(start.version, int(start), int(end), ip_protocol, start_port, end_port)

    @classmethod
    def from_network(cls, network, ip_protocol=ANY_PROTOCOL, start_port=0, end_port=65535):
        net = ipaddress.ip_network(network, strict=False)
        return cls(net.version, int(net.network_address), int(net.broadcast_address), ip_protocol,
                   start_port, end_port)

    @classmethod
    def host(cls, address, ip_protocol=ANY_PROTOCOL, start_port=0, end_port=65535):
        addr = ipaddress.ip_address(address)
        return cls(addr.version, int(addr), int(addr), ip_protocol, start_port, end_port)

    def networks(self):
        """The CIDR blocks that cover exactly this address range (for kernel policies)."""
        return list(ipaddress.summarize_address_range(self.start_addr, self.end_addr))

    def is_network(self) -> bool:
        return len(self.networks()) == 1

    def contains(self, other: TS) -> bool:
        v, start, end, proto, sport, eport = self
        return (
            v == other[0]
            and start <= other[1]
            and other[2] <= end
            and (proto == ANY_PROTOCOL or proto == other[3])
            and sport <= other[4]
            and other[5] <= eport
        )

    def intersect(self, other: TS) -> TS | None:
        """The largest selector inside both, or None (RFC 7296 §2.9 narrowing).

        When one contains the other, that one is returned itself (no new object): most
        narrowing keeps a peer's selector or a policy's whole.
        """
        v, start, end, proto, sport, eport = self
        ov, ostart, oend, oproto, osport, oeport = other
        if v != ov:
            return None
        if proto == ANY_PROTOCOL:
            proto = oproto
        elif oproto != ANY_PROTOCOL and oproto != proto:
            return None
        if ostart > start:
            start = ostart
        if oend < end:
            end = oend
        if osport > sport:
            sport = osport
        if oeport < eport:
            eport = oeport
        if start > end or sport > eport:
            return None
        result = (v, start, end, proto, sport, eport)
        if result == other:
            return other
        if result == self:
            return self
        return _new(TS, result)

    def __repr__(self):
        return f"TS({self})"

    def __str__(self):
        nets = self.networks()
        addr = str(nets[0]) if len(nets) == 1 else f"{self.start_addr}-{self.end_addr}"
        proto = "" if self[3] == ANY_PROTOCOL else f" proto {self[3]}"
        if (self[4], self[5]) == (0, 65535):
            port = ""
        elif self[4] == self[5]:
            port = f" port {self[4]}"
        else:
            port = f" port {self[4]}-{self[5]}"
        return f"{addr}{proto}{port}"

    def __reduce__(self):
        return (TS, tuple(self))


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
