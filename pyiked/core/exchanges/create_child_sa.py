"""CREATE_CHILD_SA (RFC 7296 §1.3): another CHILD SA, a CHILD SA rekey, an IKE SA rekey.

    request                                          meaning
    SA(ESP/AH), Ni, [KEi], TSi, TSr                  a new CHILD SA (§1.3.1)
    N(REKEY_SA), SA(ESP/AH), Ni, [KEi], TSi, TSr     rekey the CHILD SA it names (§1.3.3)
    SA(IKE, new SPIi), Ni, KEi                       rekey this IKE SA (§1.3.2)

The response is SA, Nr, [KEr], TSi, TSr (SA, Nr, KEr for the IKE SA) or one error
notify: INVALID_KE_PAYLOAD naming the KE method we want (§1.3), TEMPORARY_FAILURE and
CHILD_SA_NOT_FOUND (§2.25), NO_ADDITIONAL_SAS (§1.3), NO_PROPOSAL_CHOSEN, TS_UNACCEPTABLE.
This module reads and writes the messages; pyiked/core/rekey.py decides what happens to
the old and new SAs (deletes, collisions).
"""

from __future__ import annotations

import logging

from pyiked._fast import wire

from .. import child_sa, proposals, rekey
from ..child_sa import ChildState
from ..errors import IkeError, InvalidKePayload, InvalidSyntax, NoAdditionalSas, TemporaryFailure
from ..iana import NOTIFY_ERROR_MAX, ExchangeType, NotifyType, PayloadType, ProtocolId
from ..ike_sa import Response, State
from ..ke import KeyExchange

log = logging.getLogger("pyiked.engine")

NONCE_LEN = 32  # §2.10, as in IKE_SA_INIT
MAX_KE_RETRIES = 1  # one INVALID_KE_PAYLOAD retry per exchange (§1.3)


def _find(payloads, ptype):
    return next((p for p in payloads if p.payload_type == ptype), None)


def _notifies(payloads):
    return [p for p in payloads if p.payload_type == PayloadType.N]


def _nonce(payload) -> bytes:
    if payload is None or not 16 <= len(payload.data) <= 256:
        raise InvalidSyntax("nonce missing or not 16..256 octets")  # §2.10, §3.9
    return payload.data


def _name(t) -> str:
    try:
        return NotifyType(t).name
    except ValueError:
        return f"notify {t}"


# -- responder ------------------------------------------------------------------------------

def respond(sa, payloads, now):
    """Answer the peer's CREATE_CHILD_SA request (the engine's handler)."""
    sa_p = _find(payloads, PayloadType.SA)
    if sa_p is None or not sa_p.proposals:
        raise InvalidSyntax("CREATE_CHILD_SA request needs an SA payload")
    nonce_i = _nonce(_find(payloads, PayloadType.NONCE))
    ke = _find(payloads, PayloadType.KE)
    if sa.state != State.ESTABLISHED:
        # §2.25.2: the IKE SA is being deleted or was replaced: not now
        raise TemporaryFailure(f"IKE SA is {sa.state.value}")
    protocols = {p.protocol_id for p in sa_p.proposals}
    if ProtocolId.IKE in protocols:
        if len(protocols) != 1:
            raise InvalidSyntax("IKE and CHILD SA proposals in one SA payload")
        return _respond_ike(sa, sa_p, nonce_i, ke, now)
    return _respond_child(sa, payloads, sa_p, nonce_i, ke, now)


def _respond_ike(sa, sa_p, nonce_i, ke_p, now):
    engine = sa.engine
    if ke_p is None:
        raise InvalidSyntax("IKE SA rekey without KEi")  # §1.3.2: KE is mandatory
    if rekey.child_ops_in_flight(sa):
        raise TemporaryFailure("a CHILD SA exchange of ours is in flight")  # §2.25.1
    suite = proposals.select(sa_p, rekey.current_policy(sa).ike_proposals_or_default, ProtocolId.IKE,
                             allow_legacy=True, ke_hint=ke_p.group)
    if len(suite.spi) != 8 or suite.spi == bytes(8):
        raise InvalidSyntax("IKE SA rekey proposal without an 8-octet SPI")  # §1.3.2
    if suite.ke_id != ke_p.group:
        raise InvalidKePayload(f"KE group {ke_p.group}, we want {suite.ke_id}",
                               data=suite.ke_id.to_bytes(2, "big"))  # §1.3
    exchange = KeyExchange(suite.ke_id, random=engine.random)
    shared = exchange.respond(ke_p.data)  # InvalidSyntax on a bad public value
    nonce_r = engine.random(NONCE_LEN)
    new, switch_now = rekey.peer_rekeyed_ike(sa, suite, nonce_i, nonce_r, shared, now)
    payloads = [suite.sa_payload(new.spi_r), wire.Nonce(nonce_r), wire.KE(suite.ke_id, exchange.public_value())]
    log.info("%r: peer rekeys the IKE SA: new %r%s", sa, new, "" if switch_now else " (collision)")
    if not switch_now:
        return payloads
    return Response(payloads, lambda t: rekey.switch(sa, new, t, delete_old=False))


def _respond_child(sa, payloads, sa_p, nonce_i, ke, now):
    engine = sa.engine
    tsi, tsr = _find(payloads, PayloadType.TSi), _find(payloads, PayloadType.TSr)
    if tsi is None or tsr is None:
        raise InvalidSyntax("CREATE_CHILD_SA request for a CHILD SA needs TSi and TSr")
    if rekey.ike_rekey_in_flight(sa):
        raise TemporaryFailure("IKE SA rekey in progress")  # §2.25.2
    notifies = _notifies(payloads)
    rekey_n = next((n for n in notifies if n.type == NotifyType.REKEY_SA), None)
    old = None
    if rekey_n is not None:
        protocol, spi = rekey_n.child_sa  # InvalidSyntax when it names no CHILD SA
        value = int.from_bytes(spi, "big")
        # §1.3.3: the SPI the initiator receives on, i.e. our outbound SPI
        old = next((c for c in sa.children.values() if c.protocol == protocol and c.spi_out == value), None)
        if old is None:
            log.info("%r: rekey of unknown CHILD SA %08x: CHILD_SA_NOT_FOUND", sa, value)
            return [wire.Notify(NotifyType.CHILD_SA_NOT_FOUND, b"", protocol, spi)]  # §2.25
        if old.state in (ChildState.DELETING, ChildState.REKEYED):
            raise TemporaryFailure("that CHILD SA is being deleted")  # §2.25.1
        policy = rekey.child_policy(sa, old)
    else:
        if sum(1 for c in sa.children.values() if c.state != ChildState.REKEYED) >= engine.max_child_sas:
            raise NoAdditionalSas(f"{engine.max_child_sas} CHILD SAs on this IKE SA")  # §1.3
        policy = _policy_for_new_child(sa, tsi, tsr, notifies)
    nonce_r = engine.random(NONCE_LEN)
    child, child_payloads, event = child_sa.respond(
        sa, policy, sa_p, tsi.selectors, tsr.selectors, notifies, now, nonces=(nonce_i, nonce_r),
        rekey_of=old, ke=ke)
    engine.add_child(sa, child, event)
    if old is not None:
        rekey.peer_rekeyed_child(sa, old, child, nonce_i, nonce_r, now)
    return [child_payloads[0], wire.Nonce(nonce_r)] + child_payloads[1:]


def _policy_for_new_child(sa, tsi, tsr, notifies):
    """The policy whose flows take the proposed selectors (the IKE SA's by default)."""
    engine = sa.engine
    policy = engine.store.select(
        sa.local_addr[0], sa.remote_addr[0], sa.remote_id,
        ts_local=child_sa.ts_from_wire(tsr.selectors), ts_remote=child_sa.ts_from_wire(tsi.selectors),
        transport=child_sa.wants_transport(notifies),
        accept=lambda p: engine.suite_allowed(p, sa.suite),
    )
    return policy or sa.policy


# -- initiator: CHILD SAs --------------------------------------------------------------------

def pfs_group(policy, old=None):
    """The KE method for PFS (§1.3.1): the old SA's, else the policy's first; None: no PFS."""
    groups = proposals.child_spec_groups(policy.child_proposals_or_default)
    if not groups:
        return None
    if old is not None and old.suite.ke_id in groups:
        return old.suite.ke_id
    return groups[0]


_POLICY_GROUP = object()


def send_child(sa, policy, now, ts_local=None, ts_remote=None, rekey_of=None, transport=None,
               group=_POLICY_GROUP, ke_retries=0) -> None:
    """Queue our CREATE_CHILD_SA for a new CHILD SA, or a rekey of `rekey_of` (REKEYING)."""
    if group is _POLICY_GROUP:
        group = pfs_group(policy, rekey_of)
    request = ChildRequest(sa, policy, ts_local, ts_remote, rekey_of, transport, group, ke_retries)
    rekey.life(sa).child_requests += 1  # §2.25.1: no IKE SA rekey answered meanwhile
    sa.send_request(ExchangeType.CREATE_CHILD_SA, request.build, request.on_response, now,
                    request.on_timeout)


_RETRIED = object()


def _refusal(request, notifies, now):
    """The first error notify in an answer to `request`, or None; _RETRIED when it was
    INVALID_KE_PAYLOAD and the request went out again with the group named (§1.3)."""
    for n in notifies:
        if n.type <= NOTIFY_ERROR_MAX:
            if n.type == NotifyType.INVALID_KE_PAYLOAD and request._retry_with_group(n, now):
                return _RETRIED
            return n
    return None


class ChildRequest:
    """One CREATE_CHILD_SA of ours for a CHILD SA, from the request to its outcome."""

    __slots__ = ("sa", "policy", "ts_local", "ts_remote", "rekey_of", "transport", "group",
                 "ke_retries", "nonce", "proposal")

    def __init__(self, sa, policy, ts_local, ts_remote, rekey_of, transport, group, ke_retries):
        self.sa, self.policy = sa, policy
        self.ts_local, self.ts_remote = ts_local, ts_remote
        self.rekey_of, self.transport, self.group = rekey_of, transport, group
        self.ke_retries = ke_retries
        self.nonce = b""
        self.proposal = None

    def build(self):
        sa, old = self.sa, self.rekey_of
        if old is not None and (old.child_id not in sa.children or old.state != ChildState.REKEYING):
            self._forget()
            return None  # deleted or taken over while queued
        if sa.state != State.ESTABLISHED:
            self._forget()
            return None
        self.nonce = sa.engine.random(NONCE_LEN)
        self.proposal, payloads = child_sa.propose(sa, self.policy, self.ts_local, self.ts_remote,
                                                   rekey_of=old, pfs_group=self.group,
                                                   transport=self.transport)
        out = []
        if old is not None:
            # §1.3.3: REKEY_SA names the SA by the SPI we receive on
            out.append(wire.Notify(NotifyType.REKEY_SA, b"", old.protocol, old.spi_in.to_bytes(4, "big")))
        out += [payloads[0], wire.Nonce(self.nonce)]
        if self.proposal.ke is not None:
            out.append(wire.KE(self.group, self.proposal.ke.public_value()))
        return out + payloads[1:]

    def on_response(self, payloads, now):
        sa, engine = self.sa, self.sa.engine
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%r: CREATE_CHILD_SA answer (%s)", sa,
                      f"rekey of #{self.rekey_of.child_id}" if self.rekey_of else "new CHILD SA")
        self._forget()
        notifies = _notifies(payloads)
        n = _refusal(self, notifies, now)
        if n is _RETRIED:
            return
        if n is not None:
            log.info("%r: CREATE_CHILD_SA%s refused: %s", sa, " (rekey)" if self.rekey_of else "", _name(n.type))
            return self._failed(n.type, _name(n.type), now)
        sa_p, nonce_p = _find(payloads, PayloadType.SA), _find(payloads, PayloadType.NONCE)
        tsi, tsr = _find(payloads, PayloadType.TSi), _find(payloads, PayloadType.TSr)
        try:
            if sa_p is None or tsi is None or tsr is None:
                raise InvalidSyntax("CREATE_CHILD_SA response needs SA, Nr, TSi and TSr")
            nonce_r = _nonce(nonce_p)
            old = self.rekey_of
            if old is not None and old.child_id not in sa.children:
                # deleted meanwhile (§2.25.1): join a live SA of its flow, or start the flow anew
                self.proposal.rekey_of = rekey.flow_member(sa, old.reqid)
            child, event = child_sa.complete(sa, self.proposal, sa_p, tsi.selectors, tsr.selectors,
                                             notifies, now, nonces=(self.nonce, nonce_r),
                                             ke=_find(payloads, PayloadType.KE))
        except IkeError as exc:
            log.info("%r: CREATE_CHILD_SA answer unacceptable: %s", sa, exc)
            if sa_p is not None:
                engine.delete_unwanted_child(sa, self.proposal, sa_p, now)  # §2.21.3
            return self._failed(None, str(exc), now)
        engine.add_child(sa, child, event)
        if self.rekey_of is None:
            rekey.note_success(sa)
            return
        rekey.child_rekey_done(sa, self.rekey_of, child, self.nonce, nonce_r, now)

    def _retry_with_group(self, notify, now) -> bool:
        """§1.3: retry with the KE method the responder named, if we offered it."""
        try:
            group = notify.value
        except IkeError:
            return False
        if self.ke_retries >= MAX_KE_RETRIES or group == self.group or \
                group not in proposals.child_spec_groups(self.policy.child_proposals_or_default):
            return False
        send_child(self.sa, self.policy, now, self.ts_local, self.ts_remote, self.rekey_of,
                   self.transport, group, self.ke_retries + 1)
        return True

    def on_timeout(self, now) -> None:
        self._forget()
        self.sa.engine.fail(self.sa, "no answer to CREATE_CHILD_SA", now, peer_dead=True)

    def _failed(self, notify_type, reason, now) -> None:
        if self.rekey_of is None:
            self.sa.engine.child_failed(self.sa, reason)
            return
        rekey.child_rekey_failed(self.sa, self.rekey_of, notify_type, now)

    def _forget(self) -> None:
        life = self.sa.life
        if life is not None and life.child_requests > 0:
            life.child_requests -= 1


# -- initiator: the IKE SA -------------------------------------------------------------------

def send_ike_rekey(sa, now, group=None, ke_retries=0) -> None:
    """Our IKE SA rekey (§1.3.2): new SPIi, Ni and KEi of the current KE method."""
    engine = sa.engine
    specs = rekey.current_policy(sa).ike_proposals_or_default
    offered_groups = [g for spec in specs for g in spec.ke]
    group = group or sa.suite.ke_id
    if group not in offered_groups:
        group = offered_groups[0]  # the policy changed since: use what it offers now
    request = IkeRekeyRequest(sa, engine.new_spi(), engine.random(NONCE_LEN), group, ke_retries)
    request.ke = KeyExchange(group, random=engine.random)
    request.offered = proposals.offer(specs, request.spi, ke_first=group)
    rekey.life(sa).ike_rekey = request
    sa.send_request(ExchangeType.CREATE_CHILD_SA, request.build, request.on_response, now)


class IkeRekeyRequest:
    __slots__ = ("sa", "spi", "nonce", "group", "ke_retries", "ke", "offered")

    def __init__(self, sa, spi, nonce, group, ke_retries):
        self.sa, self.spi, self.nonce, self.group, self.ke_retries = sa, spi, nonce, group, ke_retries
        self.ke = self.offered = None

    def _current(self) -> bool:
        life = self.sa.life
        return life is not None and life.ike_rekey is self

    def build(self):
        if not self._current() or self.sa.state != State.ESTABLISHED:
            return None
        return [self.offered, wire.Nonce(self.nonce), wire.KE(self.group, self.ke.public_value())]

    def on_response(self, payloads, now):
        sa = self.sa
        if not self._current():
            return  # forgotten: a Delete of the IKE SA crossed it (§2.25.2)
        n = _refusal(self, _notifies(payloads), now)
        if n is _RETRIED:
            return
        if n is not None:
            log.info("%r: IKE SA rekey refused: %s", sa, _name(n.type))
            return rekey.ike_rekey_failed(sa, n.type, now)
        sa_p, ke = _find(payloads, PayloadType.SA), _find(payloads, PayloadType.KE)
        if sa_p is None or ke is None:
            raise InvalidSyntax("IKE SA rekey response needs SA, Nr and KEr")
        nonce_r = _nonce(_find(payloads, PayloadType.NONCE))
        suite = proposals.accept_answer(sa_p, self.offered, ProtocolId.IKE)
        if len(suite.spi) != 8 or suite.spi == bytes(8):
            raise InvalidSyntax("IKE SA rekey answer without an 8-octet SPI")
        if suite.ke_id != self.group or ke.group != self.group:
            raise InvalidSyntax("IKE SA rekey answer with another KE method than ours")
        shared = self.ke.complete(ke.data)
        new = rekey.successor(sa, True, self.spi, suite.spi, suite, self.nonce, nonce_r, shared, now)
        rekey.ike_rekey_done(sa, new, self.nonce, nonce_r, now)

    def _retry_with_group(self, notify, now) -> bool:
        try:
            group = notify.value
        except IkeError:
            return False
        offered = {g for spec in rekey.current_policy(self.sa).ike_proposals_or_default for g in spec.ke}
        if self.ke_retries >= MAX_KE_RETRIES or group == self.group or group not in offered:
            return False
        send_ike_rekey(self.sa, now, group, self.ke_retries + 1)
        return True


__all__ = ["respond", "send_child", "send_ike_rekey", "pfs_group", "ChildRequest", "IkeRekeyRequest"]
