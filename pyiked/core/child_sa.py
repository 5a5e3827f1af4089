"""CHILD SAs: negotiation shared by IKE_AUTH and CREATE_CHILD_SA, keys, and events.

A CHILD SA is a pair of ESP (or AH) SAs, one per direction, with the traffic selectors
both ends agreed on (RFC 7296 §1.3, §2.9, §2.17).

States (pyiked/core/rekey.py moves them for CREATE_CHILD_SA):

    state       entered when                                       leaves to
    INSTALLED   keys are in the kernel (ChildSAInstall emitted)    REKEYING | REKEYED | DELETING
    REKEYING    we sent a CREATE_CHILD_SA with REKEY_SA for it     INSTALLED (failed) | REKEYED |
                (§2.8)                                             DELETING (we won, §2.8.1)
    REKEYED     a new SA took over; the old one waits for the      DELETING (fallback timer)
                peer's Delete (we answered its rekey, or lost a
                collision, §2.8.1)
    DELETING    we sent its Delete (§1.4.1)                        removed

A removed CHILD SA leaves `IkeSA.children` and emits ChildSARemove; policies stay when a
sibling of the same reqid (its replacement) is still installed.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import logging

from pyiked._fast import wire

from dataclasses import replace

from . import keys, proposals
from .errors import FailedCpRequired, InvalidKePayload, InvalidSyntax, NoProposalChosen, TsUnacceptable
from .events import ChildSAInstall, ChildSARemove, Encapsulation, Lifetime, SAKeys
from .iana import NotifyType, ProtocolId, TransformType, TSType
from .ke import KeyExchange
from .ts import TS, narrow

from pyiked.config.store import flow_selectors, own_selectors

log = logging.getLogger("pyiked.engine")

REPLAY_WINDOW = 64  # RFC 4303 §3.4.3: at least 32, 64 recommended

_NO_KE = object()  # respond(): IKE_AUTH, where KE transforms are ignored (§1.2)
# An event carries address objects; parsing a peer's address string costs microseconds
# and the same peers come back (ip_address objects are immutable, so sharing is safe).
_address = functools.lru_cache(maxsize=4096)(ipaddress.ip_address)


class ChildState(enum.Enum):
    INSTALLED = "INSTALLED"
    REKEYING = "REKEYING"
    REKEYED = "REKEYED"
    DELETING = "DELETING"


class ChildSA:
    __slots__ = (
        "child_id", "reqid", "protocol", "spi_in", "spi_out", "transport", "suite",
        "ts_local", "ts_remote", "state", "created", "initiator", "rekey_at", "expire_at",
        "policy_name", "lifetime", "rekey", "ike_sa",
    )

    def __init__(self, child_id, reqid, protocol, spi_in, spi_out, transport, suite,
                 ts_local, ts_remote, initiator, now, lifetime, policy_name):
        self.child_id = child_id
        self.reqid = reqid
        self.protocol = protocol
        self.spi_in = spi_in  # int: the SPI the peer puts on packets to us
        self.spi_out = spi_out  # int: the SPI we put on packets to the peer
        self.transport = transport
        self.suite = suite
        self.ts_local = tuple(ts_local)
        self.ts_remote = tuple(ts_remote)
        self.state = ChildState.INSTALLED
        self.created = now
        self.initiator = initiator  # we initiated the exchange that created it
        self.lifetime = lifetime
        self.rekey_at = now + lifetime.soft_seconds if lifetime.soft_seconds else None
        self.expire_at = now + lifetime.hard_seconds if lifetime.hard_seconds else None
        self.policy_name = policy_name
        self.rekey = None  # rekey.ChildRekey while we rekey it (CREATE_CHILD_SA in flight)
        self.ike_sa = None  # the IKE SA that carries it (Engine.add_child, an IKE SA rekey)

    def deadlines(self):
        return [t for t in (self.rekey_at, self.expire_at) if t is not None]

    def __repr__(self):
        return (f"<ChildSA #{self.child_id} {self.state.value} in {self.spi_in:08x} "
                f"out {self.spi_out:08x}>")


def policy_selectors(policy, local_ip=None, remote_ip=None,
                     dynamic=None) -> tuple[list[TS], list[TS]]:
    """The local and remote selectors of a policy's flows (`from` is local, `to` remote).

    A transport-mode policy without flows protects the two IKE endpoints (host-to-host).
    dynamic: the addresses the configuration payload gave the peer (§2.19), which fill
    the policy's `dynamic` ends.
    """
    if not policy.flows and local_ip and remote_ip:
        return [TS.host(local_ip)], [TS.host(remote_ip)]
    if dynamic:
        return flow_selectors(policy, list(dynamic))
    return own_selectors(policy)  # shared tuples: callers only read them


# -- wire <-> TS --------------------------------------------------------------------------

def ts_from_wire(selectors) -> list[TS]:
    out = []
    for s in selectors:
        ts_type = s.ts_type
        if ts_type == _TS_IPV4:  # the codec checked the address lengths (§3.13.1)
            version = 4
        elif ts_type == _TS_IPV6:
            version = 6
        else:
            continue  # §3.13.1: unknown selector types are skipped
        start, end = s.start_addr, s.end_addr
        if len(start) != len(end) or len(start) != (4 if version == 4 else 16):
            raise InvalidSyntax("traffic selector address of the wrong length")
        first = _from_bytes(start, "big")
        last = first if start == end else _from_bytes(end, "big")  # a host: one int object
        out.append(TS(version, first, last, s.ip_protocol, s.start_port, s.end_port))
    return out


def ts_to_wire(selectors) -> list:
    out = []
    for version, start, end, proto, sport, eport in selectors:
        size = 4 if version == 4 else 16
        out.append(wire.TrafficSelector(_TS_IPV4 if version == 4 else _TS_IPV6, proto, sport, eport,
                                        start.to_bytes(size, "big"), end.to_bytes(size, "big")))
    return out


_TS_IPV4, _TS_IPV6 = int(TSType.TS_IPV4_ADDR_RANGE), int(TSType.TS_IPV6_ADDR_RANGE)
_from_bytes = int.from_bytes


# -- negotiation --------------------------------------------------------------------------

def wants_transport(notifies) -> bool:
    for n in notifies:
        if n.type == _USE_TRANSPORT_MODE:
            return True
    return False


_USE_TRANSPORT_MODE = int(NotifyType.USE_TRANSPORT_MODE)


def respond(ike_sa, policy, sa_payload, tsi, tsr, notifies, now, shared=None, nonces=None,
            rekey_of=None, ke=_NO_KE, selectors=None):
    """Responder side of a CHILD SA (IKE_AUTH or CREATE_CHILD_SA).

    Returns (child, response payloads, install event). Raises NoProposalChosen,
    TsUnacceptable (§2.9) for the caller to turn into the notify.

    ke is the request's KE payload (or None) in CREATE_CHILD_SA, where a proposal with a
    KE method means PFS (§1.3.1); IKE_AUTH leaves it out and ignores KE transforms (§1.2).
    With PFS the response payloads include our KEr, right after the SA payload.
    selectors: (TSi, TSr) already converted with ts_from_wire, when the caller has them.
    """
    engine = ike_sa.engine
    transport = wants_transport(notifies)
    if transport and not policy.transport:
        transport = False  # §1.3.1: we answer without USE_TRANSPORT_MODE: tunnel mode
    if policy.transport and not transport:
        raise NoProposalChosen("policy requires transport mode, the peer asked for tunnel")
    if transport and not engine.backend_supports_transport:
        raise NoProposalChosen("the data plane cannot carry transport mode")
    pfs = ke is not _NO_KE
    # §1.2: the CHILD SA of IKE_AUTH has no KE of its own: a PFS policy still matches a
    # peer that (rightly) offers no KE method there, and offered ones are ignored
    suite, peer_spi = proposals.choose(sa_payload, engine.child_specs(policy), policy.protocol,
                                       allow_legacy=True, ke_hint=ke.group if pfs and ke is not None else None,
                                       ignore_ke=not pfs)
    ker = None
    if pfs and suite.ke_id:
        # §1.3: a proposal with another KE method than KEi's is refused, naming ours
        if ke is None or ke.group != suite.ke_id:
            raise InvalidKePayload(f"PFS group {ke.group if ke else None}, we want {suite.ke_id}",
                                   data=suite.ke_id.to_bytes(2, "big"))
    if any(f.dst_dynamic for f in policy.flows) and not ike_sa.virtual_ips:
        # §2.19: `to dynamic` is only the address we assigned; without one, nothing fits
        raise FailedCpRequired("`to dynamic` needs an address assigned by a CFG_REQUEST")
    local_allowed, remote_allowed = policy_selectors(policy, ike_sa.local_addr[0], ike_sa.remote_addr[0],
                                                     ike_sa.virtual_ips)
    # §2.9: TSi describes the initiator's side (our remote), TSr ours
    ts_i, ts_r = selectors if selectors is not None else (ts_from_wire(tsi), ts_from_wire(tsr))
    ts_remote = narrow(ts_i, remote_allowed)
    ts_local = narrow(ts_r, local_allowed)
    if not ts_remote or not ts_local:
        raise TsUnacceptable("proposed traffic selectors are outside the policy")
    if len(peer_spi) != 4:
        raise InvalidSyntax("ESP/AH proposal SPI must be 4 octets")
    spi_out = int.from_bytes(peer_spi, "big")
    if pfs and suite.ke_id:
        exchange = KeyExchange(suite.ke_id, random=engine.random)
        shared = exchange.respond(ke.data)  # InvalidSyntax on a bad public value
        ker = wire.KE(suite.ke_id, exchange.public_value())
    spi_in = engine.allocate_spi(policy.protocol, ike_sa)
    nonce_i, nonce_r = nonces or (ike_sa.nonce_i, ike_sa.nonce_r)
    child = _make_child(ike_sa, policy, suite, spi_in, spi_out, transport, ts_local, ts_remote,
                        initiator=False, now=now, rekey_of=rekey_of)
    event = derive_and_event(ike_sa, child, nonce_i, nonce_r, shared, rekey_of)
    payloads = [suite.sa_payload(spi_in.to_bytes(4, "big"))]
    if ker is not None:
        payloads.append(ker)
    payloads += [wire.TSi(ts_to_wire(ts_remote)), wire.TSr(ts_to_wire(ts_local))]
    if transport:
        payloads.append(wire.Notify(NotifyType.USE_TRANSPORT_MODE))
    return child, payloads, event


class Proposal:
    """Initiator side: what we offered, kept until the answer arrives."""

    __slots__ = ("policy", "spi_in", "offered", "ts_local", "ts_remote", "transport", "rekey_of", "ke")

    def __init__(self, policy, spi_in, offered, ts_local, ts_remote, transport, rekey_of=None, ke=None):
        self.policy = policy
        self.spi_in = spi_in
        self.offered = offered
        self.ts_local = ts_local
        self.ts_remote = ts_remote
        self.transport = transport
        self.rekey_of = rekey_of
        self.ke = ke


def propose(ike_sa, policy, ts_local=None, ts_remote=None, rekey_of=None, pfs_group=None,
            transport=None):
    """Initiator side: our SA, TSi, TSr (and USE_TRANSPORT_MODE) payloads.

    With pfs_group (CREATE_CHILD_SA) the proposals offer the policy's KE methods with that
    one first, and Proposal.ke holds our key exchange: the caller sends its KEi.
    """
    engine = ike_sa.engine
    if ts_local is None:
        ts_local, ts_remote = policy_selectors(policy, ike_sa.local_addr[0], ike_sa.remote_addr[0])
    spi_in = engine.allocate_spi(policy.protocol, ike_sa)
    specs = _offered_specs(engine.child_specs(policy), policy.protocol, pfs_group is not None)
    offered = proposals.offer(specs, spi_in.to_bytes(4, "big"), ke_first=pfs_group)
    payloads = [offered, wire.TSi(ts_to_wire(ts_local)), wire.TSr(ts_to_wire(ts_remote))]
    transport = policy.transport if transport is None else transport
    if transport:
        payloads.append(wire.Notify(NotifyType.USE_TRANSPORT_MODE))
    ke = KeyExchange(pfs_group, random=engine.random) if pfs_group else None
    return Proposal(policy, spi_in, offered, ts_local, ts_remote, transport, rekey_of, ke), payloads


def _offered_specs(specs, protocol, pfs: bool) -> list:
    """The specs we offer for a CHILD SA: the policy's protocol, without KE methods unless
    with PFS (§1.2). Computed once per configured specs (immutable, held by the entry)."""
    key = (id(specs), protocol, pfs)
    hit = _OFFERED.get(key)
    if hit is None or hit[0] is not specs:
        chosen = [s for s in specs if s.protocol == protocol]
        if not pfs:
            chosen = [replace(s, ke=()) for s in chosen]
        if len(_OFFERED) >= 256:
            _OFFERED.clear()
        hit = _OFFERED[key] = (specs, chosen)
    return hit[1]


_OFFERED: dict[tuple, tuple] = {}


def complete(ike_sa, proposal: Proposal, sa_payload, tsi, tsr, notifies, now, shared=None,
             nonces=None, ke=None):
    """Initiator: accept the responder's answer (§2.7, §2.9) and build the CHILD SA.

    ke is the response's KE payload: with PFS offered (proposal.ke) and a KE method
    chosen, it must be of that method (§1.3) and gives the new shared secret.
    """
    suite = proposals.accept_answer(sa_payload, proposal.offered, proposal.policy.protocol)
    if suite.ke_id and proposal.ke is not None:
        if ke is None or ke.group != suite.ke_id or suite.ke_id != proposal.ke.group:
            raise InvalidSyntax("responder's KE does not match the chosen PFS group")
        shared = proposal.ke.complete(ke.data)
    ts_local = ts_from_wire(tsi)
    ts_remote = ts_from_wire(tsr)
    # §2.9: the responder may only narrow what we proposed
    if not ts_local or not ts_remote or not _within(ts_local, proposal.ts_local) or not _within(ts_remote, proposal.ts_remote):
        raise TsUnacceptable("responder's traffic selectors are not a subset of ours")
    transport = wants_transport(notifies)
    if proposal.transport and not transport:
        raise NoProposalChosen("responder refused transport mode")
    if len(suite.spi) != 4:
        raise InvalidSyntax("ESP/AH SPI must be 4 octets")
    spi_out = int.from_bytes(suite.spi, "big")
    nonce_i, nonce_r = nonces or (ike_sa.nonce_i, ike_sa.nonce_r)
    child = _make_child(ike_sa, proposal.policy, suite, proposal.spi_in, spi_out, transport,
                        ts_local, ts_remote, initiator=True, now=now, rekey_of=proposal.rekey_of)
    event = derive_and_event(ike_sa, child, nonce_i, nonce_r, shared, proposal.rekey_of)
    return child, event


def _within(narrowed, proposed) -> bool:
    return all(any(p.contains(ts) for p in proposed) for ts in narrowed)


def _make_child(ike_sa, policy, suite, spi_in, spi_out, transport, ts_local, ts_remote, initiator,
                now, rekey_of):
    engine = ike_sa.engine
    ts_local, ts_remote = tuple(ts_local), tuple(ts_remote)  # the child keeps these same tuples
    if rekey_of is not None:
        reqid = rekey_of.reqid
    else:
        reqid = engine.reqid_for(policy.name, ts_local, ts_remote)
    lifetime = engine.child_lifetime(policy)
    # the peer's SPI is spi_out: the CHILD SA keeps the suite's algorithms, shared
    return ChildSA(engine.next_child_id(), reqid, policy.protocol, spi_in, spi_out, transport,
                   proposals.algorithms_only(suite), ts_local, ts_remote, initiator, now, lifetime,
                   policy.name)


def derive_and_event(ike_sa, child, nonce_i, nonce_r, shared, rekey_of):
    """§2.17 KEYMAT, split initiator→responder first, and the ChildSAInstall event."""
    suite = child.suite
    encr_i, integ_i, encr_r, integ_r = keys.child_keymat(
        ike_sa.suite.prf_id, ike_sa.sk_d, nonce_i, nonce_r, shared,
        encr_id=suite.encr_id, encr_key_bits=suite.encr_key_bits, integ_id=suite.integ_id,
    )
    # keys flow from the *exchange* initiator, which is not always the IKE SA initiator
    if child.initiator:
        out_keys, in_keys = (encr_i, integ_i), (encr_r, integ_r)
    else:
        out_keys, in_keys = (encr_r, integ_r), (encr_i, integ_i)
    inbound = SAKeys(child.spi_in, suite.encr_id, suite.encr_key_bits, suite.integ_id, *in_keys)
    outbound = SAKeys(child.spi_out, suite.encr_id, suite.encr_key_bits, suite.integ_id, *out_keys)
    return install_event(ike_sa, child, inbound, outbound, rekey_of)


def install_event(ike_sa, child, inbound, outbound, rekey_of=None) -> ChildSAInstall:
    local_ip, remote_ip = ike_sa.local_addr[0], ike_sa.remote_addr[0]
    encap = _encapsulation(ike_sa.local_addr[1], ike_sa.remote_addr[1]) if ike_sa.natted else None
    return ChildSAInstall(
        ike_sa=ike_sa.ike_sa_id,
        child_id=child.child_id,
        reqid=child.reqid,
        protocol=child.protocol,
        mode="transport" if child.transport else "tunnel",
        local_addr=_address(local_ip),
        remote_addr=_address(remote_ip),
        inbound=inbound,
        outbound=outbound,
        ts_local=child.ts_local,
        ts_remote=child.ts_remote,
        esn=child.suite.esn,
        replay_window=REPLAY_WINDOW,
        lifetime=child.lifetime,
        encap=encap,
        rekey_of=rekey_of.child_id if rekey_of is not None else None,
        initiator=child.initiator,
    )


# equal ports, one immutable object (the remote port is the peer's NAT mapping: bounded)
_encapsulation = functools.lru_cache(maxsize=1024)(Encapsulation)


def remove_event(ike_sa, child, remove_policies=True, reason="") -> ChildSARemove:
    return ChildSARemove(
        ike_sa=ike_sa.ike_sa_id,
        child_id=child.child_id,
        reqid=child.reqid,
        protocol=child.protocol,
        local_addr=_address(ike_sa.local_addr[0]),
        remote_addr=_address(ike_sa.remote_addr[0]),
        inbound_spi=child.spi_in,
        outbound_spi=child.spi_out,
        ts_local=child.ts_local,
        ts_remote=child.ts_remote,
        remove_policies=remove_policies,
        reason=reason,
    )


def lifetime_for(policy, jitter: float) -> Lifetime:
    """Hard limits from the policy; the soft limit (rekey) at 85–95 % of the hard one,
    randomized so that thousands of SAs do not rekey in the same second (as OpenIKED)."""
    hard = policy.lifetime_seconds
    hard_bytes = policy.lifetime_bytes
    factor = 0.85 + 0.10 * jitter
    key = (int(hard * factor) if hard else 0, hard, int(hard_bytes * factor) if hard_bytes else 0, hard_bytes)
    # equal lifetimes are one shared object (immutable): 256 values per policy at most
    # (the jitter's resolution, Engine.child_lifetime), bounded anyway
    lifetime = _LIFETIMES.get(key)
    if lifetime is None:
        if len(_LIFETIMES) >= 4096:
            _LIFETIMES.clear()
        lifetime = _LIFETIMES[key] = Lifetime(soft_seconds=key[0], hard_seconds=hard,
                                              soft_bytes=key[2], hard_bytes=hard_bytes)
    return lifetime


_LIFETIMES: dict[tuple, Lifetime] = {}


__all__ = [
    "ChildSA", "ChildState", "Proposal", "ProtocolId", "policy_selectors", "respond", "propose",
    "complete", "remove_event", "install_event", "lifetime_for", "ts_from_wire", "ts_to_wire",
]
