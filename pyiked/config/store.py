"""PolicyStore: which policy governs a peer, an identity and a set of traffic selectors.

iked.conf semantics (iked.conf(5) "AUTOMATIC KEYING POLICIES", OpenIKED policy.c):
- Rules are evaluated in file order and the last matching rule wins; a matching `quick`
  rule ends the evaluation. `skip` rules are never matched against incoming peers (they
  can still be initiated).
- When nothing matches, the `default` rule (the last one written) answers, whatever the
  addresses: OpenIKED's sc_defaultcon.
- A rule matches an incoming peer by its `peer` and `local` (networks; `any` matches
  everything; host names are resolved when the store is built) and `inet`/`inet6`.
  Once the peer's identity and proposed selectors are known, `dstid` must match the
  peer's IDi, `srcid` the IDr it asked for, a transport-mode request needs a transport
  rule, and the proposed traffic selectors must overlap the rule's flows.

The engine asks twice: at IKE_SA_INIT it knows only addresses (`candidates`), at IKE_AUTH
also identities and selectors (`select`). Both accept an `accept(policy)` predicate (for
example "its proposals are compatible") applied during evaluation, as policy_test does.
A reload builds a new store and swaps it in one assignment.
"""

from __future__ import annotations

import functools
import heapq
import ipaddress
import logging
from collections.abc import Callable, Iterable

from pyiked.core.ts import TS, narrow

from .identity import identity_matches
from .model import Config, Flow, Identity, Policy, User

log = logging.getLogger("pyiked.config")

Accept = Callable[[Policy], bool] | None
_FULL = {4: ipaddress.ip_network("0.0.0.0/0"), 6: ipaddress.ip_network("::/0")}


def _ip(value):
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return value
    if isinstance(value, tuple):  # a socket address (host, port[, ...])
        value = value[0]
    if isinstance(value, str):
        value = value.split("%", 1)[0]
    return ipaddress.ip_address(value)


def _key(ip) -> tuple[int, int]:
    return (ip.version, int(ip))


@functools.lru_cache(maxsize=4096)
def _text_key(text: str) -> tuple[int, int]:
    return _key(_ip(text))


def _addr_key(value) -> tuple[int, int]:
    """_key(_ip(value)); address strings (what the engine passes, per datagram) are
    parsed once: ipaddress spends microseconds on each."""
    if isinstance(value, str):
        return _text_key(value)
    return _key(_ip(value))


class _Side:
    """One end (peer or local) of a rule as integers: any, a network, or a set of hosts."""

    __slots__ = ("version", "net", "mask", "hosts")

    def __init__(self, network, addresses):
        self.version = self.net = self.mask = 0
        self.hosts = None
        if addresses is not None:  # a resolved host or interface name
            self.hosts = frozenset(_key(a) for a in addresses)
        elif network is not None:
            self.version = network.version
            self.net = int(network.network_address)
            self.mask = int(network.netmask)

    def match(self, key: tuple[int, int]) -> bool:
        if self.hosts is not None:
            return key in self.hosts
        if not self.version:
            return True
        return key[0] == self.version and key[1] & self.mask == self.net

    def exact_hosts(self):
        """The addresses this side matches if it is a finite set of hosts, else None."""
        if self.hosts is not None:
            return self.hosts
        if self.version and self.mask == (1 << (32 if self.version == 4 else 128)) - 1:
            return {(self.version, self.net)}
        return None


class _Entry:
    """A policy with what address matching needs, computed once per store."""

    __slots__ = ("index", "policy", "peer", "local")

    def __init__(self, index: int, policy: Policy, resolve):
        self.index = index
        self.policy = policy
        peer_addrs = resolve(policy.peer_host) if policy.peer_host else None
        local_addrs = resolve(policy.local_host) if policy.local_host else None
        self.peer = _Side(policy.peer, peer_addrs)
        self.local = _Side(policy.local, local_addrs)

    def address_match(self, local_key, remote_key) -> bool:
        af = self.policy.af
        if af and remote_key[0] != af:
            return False
        return self.peer.match(remote_key) and self.local.match(local_key)


def _index(entry) -> int:
    return entry.index


class PolicyStore:
    def __init__(self, config: Config, resolver: Callable[[str], list] | None = None):
        self.config = config
        self.settings = config.settings
        self.policies = config.policies
        self.users: dict[str, User] = {u.name: u for u in config.users}
        self.by_name: dict[str, Policy] = {p.name: p for p in config.policies}
        self._resolver = resolver
        self._resolved: dict[str, frozenset] = {}
        entries = [_Entry(i, p, self._resolve) for i, p in enumerate(config.policies)]
        self._entries = [e for e in entries if not e.policy.skip]
        # Index rules by their peer: a host (or a resolved name) by its address, a network
        # by its prefix, in one table per (family, prefix length). A lookup then tests the
        # rules of that address, of the few prefixes that hold it, and those with `any`,
        # not every rule. Each list keeps file order.
        self._by_peer: dict[tuple[int, int], list[_Entry]] = {}
        self._by_net: dict[int, list[tuple[int, dict[int, list[_Entry]]]]] = {}
        self._wide: list[_Entry] = []
        nets: dict[tuple[int, int], dict[int, list[_Entry]]] = {}
        for entry in self._entries:
            hosts = entry.peer.exact_hosts()
            if hosts is not None:
                for key in hosts:
                    self._by_peer.setdefault(key, []).append(entry)
            elif entry.peer.version:
                side = entry.peer
                nets.setdefault((side.version, side.mask), {}).setdefault(side.net, []).append(entry)
            else:
                self._wide.append(entry)
        for (version, mask), table in nets.items():
            self._by_net.setdefault(version, []).append((mask, table))
        defaults = [p for p in config.policies if p.default]
        self.default: Policy | None = defaults[-1] if defaults else None

    # -- names -------------------------------------------------------------------------

    def _resolve(self, name: str) -> frozenset:
        if name not in self._resolved:
            if self._resolver is not None:
                resolver = self._resolver
            else:
                from .resolve import resolve_name as resolver
            try:
                found = frozenset(_ip(a) for a in resolver(name))
            except (OSError, ValueError):
                found = frozenset()
            if not found:
                log.warning("host name %s has no address: its rules match no peer", name)
            self._resolved[name] = found
        return self._resolved[name]

    def peer_addresses(self, policy: Policy) -> list:
        """Where to send an initiation for `policy` (its peer address or resolved name)."""
        return self._addresses(policy.peer_host, policy.peer)

    def local_addresses(self, policy: Policy) -> list:
        """Where to send it from: the `local` address or resolved name."""
        return self._addresses(policy.local_host, policy.local)

    def _addresses(self, host, network) -> list:
        if host:
            return sorted(self._resolve(host), key=lambda a: (a.version, a))
        if network is not None and network.prefixlen == network.max_prefixlen:
            return [network.network_address]
        return []

    def get(self, name: str) -> Policy | None:
        return self.by_name.get(name)

    def user(self, name: str) -> User | None:
        return self.users.get(name)

    # -- evaluation --------------------------------------------------------------------

    def _in_order(self, remote_key) -> Iterable[_Entry]:
        """The rules that may match remote_key, in file order."""
        version, value = remote_key
        found = []
        exact = self._by_peer.get(remote_key)
        if exact:
            found.append(exact)
        for mask, table in self._by_net.get(version, ()):
            entries = table.get(value & mask)
            if entries:
                found.append(entries)
        if not found:
            return self._wide
        if len(found) == 1 and not self._wide:
            return found[0]
        return heapq.merge(*found, self._wide, key=_index)

    def _evaluate(self, remote_key, match: Callable[[_Entry], bool]) -> list[Policy]:
        """Matching policies, best first: the last match, or the first matching quick."""
        matched: list[Policy] = []
        for entry in self._in_order(remote_key):
            if not match(entry):
                continue
            matched.append(entry.policy)
            if entry.policy.quick:
                return [matched[-1], *reversed(matched[:-1])]
        matched.reverse()
        return matched

    def candidates(self, local_ip, remote_ip, accept: Accept = None) -> list[Policy]:
        """Policies an IKE_SA_INIT from remote_ip to local_ip may fall under, best first.

        The `default` rule comes last when it is not already in the list.
        """
        local_key, remote_key = _addr_key(local_ip), _addr_key(remote_ip)

        def match(entry: _Entry) -> bool:
            return entry.address_match(local_key, remote_key) and (
                accept is None or accept(entry.policy)
            )

        found = self._evaluate(remote_key, match)
        if self.default is not None and self.default not in found:
            if accept is None or accept(self.default):
                found.append(self.default)
        return found

    def select(
        self,
        local_ip,
        remote_ip,
        peer_id: Identity | None,
        *,
        local_id: Identity | None = None,
        ts_local: Iterable[TS] | None = None,
        ts_remote: Iterable[TS] | None = None,
        transport: bool = False,
        accept: Accept = None,
    ) -> Policy | None:
        """The policy for an authenticating peer, or None.

        peer_id is the peer's ID (our dstid), local_id the ID it expects us to have (our
        srcid, from its IDr); ts_local / ts_remote are its proposed selectors for our side
        and its side (as responder: TSr and TSi). None skips a check.
        """
        local_key, remote_key = _addr_key(local_ip), _addr_key(remote_ip)
        ts_local = list(ts_local) if ts_local is not None else None
        ts_remote = list(ts_remote) if ts_remote is not None else None
        checks = (peer_id, local_id, ts_local, ts_remote, transport, accept)
        # _evaluate's rule (last match wins, a matching quick one ends it) without lists:
        # only the winner is wanted
        best = None
        for entry in self._in_order(remote_key):
            if entry.address_match(local_key, remote_key) and _fits(entry.policy, *checks):
                best = entry.policy
                if best.quick:
                    break
        if best is not None:
            return best
        if self.default is not None and _fits(self.default, *checks):
            return self.default
        return None

    def active(self) -> list[Policy]:
        """Policies to initiate at start (`active`), unless the global mode is passive.

        `skip` only keeps a rule from answering incoming peers, so it is included.
        """
        if not self.settings.active:
            return []
        return [p for p in self.policies if p.active]

    def flow_selectors(self, policy: Policy, dynamic=None) -> tuple[list[TS], list[TS]]:
        return flow_selectors(policy, dynamic)


def _fits(policy: Policy, peer_id, local_id, ts_local, ts_remote, transport, accept) -> bool:
    """Whether an authenticating peer may fall under `policy` (see PolicyStore.select)."""
    if peer_id is not None and policy.dstid is not None:
        if not identity_matches(policy.dstid, peer_id):
            return False
    if local_id is not None and policy.srcid is not None:
        if not identity_matches(policy.srcid, local_id):
            return False
    if transport and not policy.transport:
        return False
    if ts_local is not None or ts_remote is not None:
        mine_local, mine_remote = own_selectors(policy)
        if ts_local is not None and not _overlap(ts_local, mine_local):
            return False
        if ts_remote is not None and not _overlap(ts_remote, mine_remote):
            return False
    return accept is None or accept(policy)


def _overlap(proposed, allowed) -> bool:
    """narrow(proposed, allowed) is not empty (RFC 7296 §2.9), without building it."""
    for p in proposed:
        for a in allowed:
            if p.intersect(a) is not None:
                return True
    return False


# -- traffic selectors -----------------------------------------------------------------


def _port_range(port: int) -> tuple[int, int]:
    return (port, port) if port else (0, 65535)


def _families(flow: Flow, leases: dict) -> tuple[int, ...]:
    for network in (flow.src, flow.dst):
        if network is not None:
            return (network.version,)
    if (flow.src_dynamic or flow.dst_dynamic) and leases:
        return tuple(sorted(leases))
    return (4, 6)


def _side_ts(network, dynamic: bool, version: int, leases: dict, proto: int, port: int):
    start, end = _port_range(port)
    if network is not None:
        return TS.from_network(network, proto, start, end)
    if dynamic and version in leases:
        return TS.host(leases[version], proto, start, end)
    # `any`, or `dynamic` before an address is assigned: the whole family, as a remote
    # access client proposes it (RFC 7296 §2.19).
    return TS.from_network(_FULL[version], proto, start, end)


# id(policy) -> (policy, local, remote): a policy's own selectors, computed once. The
# entry holds the policy, so its id cannot be reused while the entry exists.
_SELECTORS: dict[int, tuple] = {}


def flow_selectors(policy: Policy, dynamic=None) -> tuple[list[TS], list[TS]]:
    """(local selectors, remote selectors) of a policy: `from` is local, `to` remote.

    dynamic: the address (or addresses, one per family) assigned through the
    configuration payload; it replaces `dynamic` in the flows. Duplicates are dropped,
    order is kept.
    """
    if dynamic is None:
        local, remote = own_selectors(policy)
        return list(local), list(remote)
    return _flow_selectors(policy, dynamic)


def own_selectors(policy: Policy) -> tuple[tuple, tuple]:
    """flow_selectors(policy) as shared tuples, for readers: asked at every IKE_AUTH, often
    twice, and policies are immutable."""
    hit = _SELECTORS.get(id(policy))
    if hit is None or hit[0] is not policy:
        if len(_SELECTORS) >= 4096:
            _SELECTORS.clear()
        local, remote = _flow_selectors(policy, None)
        hit = _SELECTORS[id(policy)] = (policy, tuple(local), tuple(remote))
    return hit[1], hit[2]


def _flow_selectors(policy: Policy, dynamic) -> tuple[list[TS], list[TS]]:
    leases = {}
    if dynamic is not None:
        for address in (dynamic if isinstance(dynamic, (list, tuple, set)) else [dynamic]):
            address = _ip(address)
            leases.setdefault(address.version, address)
    local: list[TS] = []
    remote: list[TS] = []
    for flow in policy.flows:
        for version in _families(flow, leases):
            src = _side_ts(flow.src, flow.src_dynamic, version, leases, flow.proto, flow.src_port)
            dst = _side_ts(flow.dst, flow.dst_dynamic, version, leases, flow.proto, flow.dst_port)
            if src not in local:
                local.append(src)
            if dst not in remote:
                remote.append(dst)
    return local, remote
