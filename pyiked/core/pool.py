"""Address pools for the configuration payload (RFC 7296 §3.15): leases per IKE SA.

A policy's `config address 10.0.0.0/24` is a pool; `config address 10.0.0.5` a static
address (a pool of one, for a rule that matches one identity). As OpenIKED
(ikev2_cp_setaddr_pool), a lease starts its search at a random offset, so addresses do
not cluster and are not predictable, then takes the first free one. With
`set stickyaddress`, an identity gets back the address it had last, taking it from an
older SA of the same identity that still holds it.

Leases belong to an IKE SA (its our-SPI) and go with it. IPv4 pools skip the network
and broadcast addresses (prefixes up to /30), IPv6 pools the Subnet-Router anycast
address (RFC 4291 §2.6.1).
"""

from __future__ import annotations

import ipaddress


class AddressPool:
    __slots__ = ("network", "first", "size", "leases", "owners", "sticky")

    def __init__(self, network):
        network = ipaddress.ip_network(network)
        self.network = network
        first, size = int(network.network_address), network.num_addresses
        if network.version == 4 and network.prefixlen <= 30:
            first, size = first + 1, size - 2
        elif network.version == 6 and network.prefixlen <= 126:
            first, size = first + 1, size - 1
        self.first = first
        self.size = size
        self.leases: dict[int, bytes] = {}  # address (int) -> owner (an IKE SA's SPI)
        self.owners: dict[int, object] = {}  # address -> identity key of the holder
        self.sticky: dict[object, int] = {}  # identity key -> its last address

    @property
    def free(self) -> int:
        return self.size - len(self.leases)

    def _address(self, value: int):
        return (
            ipaddress.ip_address(value)
            if self.network.version == 4
            else ipaddress.IPv6Address(value)
        )

    def acquire(self, owner: bytes, identity, random, sticky: bool = False, steal=None):
        """An address for owner, or None when the pool is full.

        steal(previous_owner) is called when a sticky address moves from an older SA of
        the same identity to this one.
        """
        if sticky and identity in self.sticky:
            value = self.sticky[identity]
            holder = self.leases.get(value)
            if holder is None or (holder != owner and self.owners.get(value) == identity):
                if holder is not None and steal is not None:
                    steal(holder)
                return self._take(value, owner, identity)
        if self.free <= 0:
            return None
        start = int.from_bytes(random(8), "big") % self.size
        for step in range(self.size):  # at most len(leases) + 1 probes find a free one
            value = self.first + (start + step) % self.size
            if value not in self.leases:
                return self._take(value, owner, identity)
        return None

    def _take(self, value, owner, identity):
        self.leases[value] = owner
        self.owners[value] = identity
        self.sticky[identity] = value
        return self._address(value)

    def release(self, owner: bytes, address) -> bool:
        value = int(address)
        if self.leases.get(value) != owner:
            return False  # it moved to a newer SA (sticky) or was never ours
        del self.leases[value]
        self.owners.pop(value, None)
        return True


class Pools:
    """Every pool of the engine, keyed by (policy name, network): a reload that keeps a
    policy and its range keeps its leases."""

    def __init__(self):
        self._pools: dict[tuple, AddressPool] = {}

    def get(self, policy_name: str, network) -> AddressPool:
        network = ipaddress.ip_network(network)
        key = (policy_name, network)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = AddressPool(network)
        return pool

    def __iter__(self):
        return iter(self._pools.values())


__all__ = ["AddressPool", "Pools"]
