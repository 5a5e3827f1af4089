"""PolicyStore: which policy governs a peer, an identity and a set of traffic selectors.

iked.conf semantics (iked.conf(5) "policy order"): rules are evaluated in file order, the
last matching rule wins, a matching `quick` rule stops the evaluation, and a `default` rule
matches whatever nothing else did. `skip` rules are never used to answer a peer.

The engine asks twice: at IKE_SA_INIT it knows only addresses (`candidates`), at IKE_AUTH it
also knows the peer's identity and proposed selectors (`select`). A reload replaces the
whole store object.
"""

from __future__ import annotations

import ipaddress

from .model import Config, Identity, Policy


def _addr_in(addr, network) -> bool:
    if network is None:
        return True
    ip = ipaddress.ip_address(addr)
    return ip.version == network.version and ip in network


class PolicyStore:
    def __init__(self, config: Config):
        self.config = config
        self.settings = config.settings
        self.policies = config.policies
        self.users = {u.name: u for u in config.users}
        self.by_name = {p.name: p for p in config.policies}

    def _address_match(self, policy: Policy, local_ip, remote_ip) -> bool:
        if policy.skip:
            return False
        if policy.af and ipaddress.ip_address(remote_ip).version != policy.af:
            return False
        return _addr_in(local_ip, policy.local) and _addr_in(remote_ip, policy.peer)

    def _evaluate(self, predicate) -> list[Policy]:
        """Matching policies, best first: last match wins, `quick` stops, `default` last."""
        matched: list[Policy] = []
        defaults: list[Policy] = []
        for policy in self.policies:
            if not predicate(policy):
                continue
            if policy.default:
                defaults.append(policy)
                continue
            matched.append(policy)
            if policy.quick:
                return [policy] + [p for p in reversed(matched[:-1])] + defaults
        return list(reversed(matched)) + defaults

    def candidates(self, local_ip, remote_ip) -> list[Policy]:
        """Policies an IKE_SA_INIT from remote_ip to local_ip may fall under, best first."""
        return self._evaluate(lambda p: self._address_match(p, local_ip, remote_ip))

    def select(self, local_ip, remote_ip, peer_id: Identity | None) -> Policy | None:
        """The policy for an authenticated peer: addresses plus its identity (dstid)."""

        def match(p: Policy) -> bool:
            if not self._address_match(p, local_ip, remote_ip):
                return False
            return p.dstid is None or peer_id is None or _same_identity(p.dstid, peer_id)

        found = self._evaluate(match)
        return found[0] if found else None

    def active(self) -> list[Policy]:
        """Policies this host initiates on start (`active`) when the global mode allows."""
        if not self.settings.active:
            return []
        return [p for p in self.policies if p.active and not p.skip]


def _same_identity(a: Identity, b: Identity) -> bool:
    return a.id_type == b.id_type and a.data == b.data
