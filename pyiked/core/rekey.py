"""Rekeying and its collisions (RFC 7296 §2.8, §2.8.1, §2.8.2, §2.18, §2.25).

The messages are pyiked/core/exchanges/create_child_sa.py's; this module decides what
happens to the SAs around them.

CHILD SA rekey (§2.8). The exchange initiator creates the new SA, then deletes the old
one (Delete of its inbound SPI); the responder keeps the old SA (REKEYED) until that
Delete arrives, or deletes it itself after REKEYED_GRACE. The new SA shares the old
one's reqid, so the kernel policies stay; ChildSARemove of the old one says so
(remove_policies=False).

IKE SA rekey (§2.18). The new IKE SA gets new SPIs, keys from SKEYSEED = prf(SK_d (old),
g^ir (new) | Ni | Nr) with the OLD PRF, message IDs from 0, and every CHILD SA of the old
one. The initiator of the rekey becomes the new SA's original initiator (§3.1) and sends
the old SA's Delete, the last request on it; the responder waits for it (REKEYED).

Collisions: both ends rekey the same SA at once; each answers the other's request as
usual and notes it. When its own exchange completes, each end compares the four nonces
of the two exchanges: the exchange holding the lowest one made the redundant SA, which
its initiator deletes; the initiator of the surviving SA deletes the old one (§2.8.1,
§2.8.2). A request that fails (TEMPORARY_FAILURE, CHILD_SA_NOT_FOUND, a Delete crossing
it, §2.25) leaves the peer's rekey, if there was one, as the survivor. Both ends reach
the same result from the same nonces, so no SA is left behind on either side.

    CHILD SA     state moves (see child_sa.py for the table)
    ours         INSTALLED -> REKEYING -> DELETING (we won or no collision) | REKEYED (lost)
    the peer's   INSTALLED -> REKEYED (waits for its Delete); REKEYING stays put (collision)
    IKE SA       ESTABLISHED -> REKEYED (children moved) -> CLOSED (its Delete)
"""

from __future__ import annotations

import logging

from pyiked._fast import wire

from . import events, keys
from .child_sa import ChildState
from .iana import ExchangeType, NotifyType, ProtocolId
from .ike_sa import IkeSA, State

log = logging.getLogger("pyiked.engine")

REKEYED_GRACE = 60.0  # a replaced SA waits this long for the peer's Delete, then goes
RETRY_AFTER_FAILURE = 30.0  # a refused rekey is tried again (until the hard lifetime)
TEMP_FAILURE_DELAY = (5.0, 15.0)  # §2.25: "MUST NOT immediately retry": a random wait
TEMP_FAILURE_LIMIT = 300.0  # §2.25: still TEMPORARY_FAILURE after minutes: out of sync
BUSY_DELAY = (0.5, 1.5)  # an IKE SA rekey waits for the exchanges in flight


class Exchange:
    """One completed or answered rekey exchange: the SA it made and its two nonces."""

    __slots__ = ("new", "nonce_i", "nonce_r", "ours")

    def __init__(self, new, nonce_i, nonce_r, ours):
        self.new, self.nonce_i, self.nonce_r, self.ours = new, nonce_i, nonce_r, ours


class ChildRekey:
    """Our rekey of one CHILD SA, and the peer's rekeys of it we answered meanwhile."""

    __slots__ = ("peers",)

    def __init__(self):
        self.peers: list[Exchange] = []


class IkeLife:
    """Per IKE SA: our IKE SA rekey in flight, the peer's we answered meanwhile, and
    counters for §2.25."""

    __slots__ = ("ike_rekey", "peer_rekeys", "temp_fail_since", "child_requests")

    def __init__(self):
        self.ike_rekey = None  # create_child_sa.IkeRekeyRequest while ours is in flight
        self.peer_rekeys: list[Exchange] = []
        self.temp_fail_since = None
        self.child_requests = 0  # our CREATE_CHILD_SA requests for CHILD SAs, queued or in flight


def life(sa) -> IkeLife:
    if sa.life is None:
        sa.life = IkeLife()
    return sa.life


def winner(exchanges):
    """§2.8.1, §2.8.2: the exchange holding the lowest nonce loses (octet-wise); with two
    exchanges the winner is the one whose own lowest nonce is the higher."""
    return max(exchanges, key=lambda e: min(e.nonce_i, e.nonce_r))


def random_delay(engine, bounds) -> float:
    low, high = bounds
    return low + (high - low) * int.from_bytes(engine.random(2), "big") / 65535


def child_ops_in_flight(sa) -> bool:
    """Whether we are creating, rekeying or deleting a CHILD SA of this IKE SA (§2.25.1)."""
    if sa.life is not None and sa.life.child_requests:
        return True
    return any(c.state in (ChildState.REKEYING, ChildState.DELETING) for c in sa.children.values())


def ike_rekey_in_flight(sa) -> bool:
    return sa.life is not None and sa.life.ike_rekey is not None


def note_success(sa) -> None:
    if sa.life is not None:
        sa.life.temp_fail_since = None


def note_temporary_failure(sa, now) -> bool:
    """§2.25: True when TEMPORARY_FAILURE has lasted long enough to close the IKE SA."""
    L = life(sa)
    if L.temp_fail_since is None:
        L.temp_fail_since = now
    return now - L.temp_fail_since >= TEMP_FAILURE_LIMIT


def _give_up_if_stuck(sa, now) -> bool:
    from .exchanges import informational

    if note_temporary_failure(sa, now):
        log.info("%r: TEMPORARY_FAILURE for %.0f s, state out of sync: closing", sa, TEMP_FAILURE_LIMIT)
        informational.delete_ike(sa, now, "peer keeps answering TEMPORARY_FAILURE")
        return True
    return False


# -- CHILD SA rekey ---------------------------------------------------------------------------

def start_child_rekey(sa, child, now) -> bool:
    """Rekey a CHILD SA (soft lifetime, kernel notice or operator). False if not now."""
    from .exchanges import create_child_sa

    if child.state != ChildState.INSTALLED or sa.state != State.ESTABLISHED:
        return False
    if ike_rekey_in_flight(sa):
        # §2.25.2: the peer would refuse it; the IKE SA rekey is over in a round trip
        child.rekey_at = now + random_delay(sa.engine, BUSY_DELAY)
        return False
    child.state = ChildState.REKEYING
    child.rekey_at = None
    child.rekey = ChildRekey()
    sa.engine.stats["child_rekeys_started"] += 1
    create_child_sa.send_child(sa, child_policy(sa, child), now, child.ts_local, child.ts_remote,
                               rekey_of=child, transport=child.transport)
    return True


def flow_member(sa, reqid):
    """A CHILD SA of this flow still in the kernel (its policies are installed), or None."""
    return next((c for c in sa.children.values() if c.reqid == reqid), None)


def child_policy(sa, child):
    return sa.engine.store.get(child.policy_name) or sa.policy


def current_policy(sa):
    """The IKE SA's policy as configured now (a reload may have replaced it)."""
    return sa.engine.store.get(sa.policy.name) or sa.policy


def peer_rekeyed_child(sa, old, new, nonce_i, nonce_r, now) -> None:
    """We answered the peer's REKEY_SA for `old` with `new`."""
    if old.state == ChildState.REKEYING and old.rekey is not None:
        old.rekey.peers.append(Exchange(new, nonce_i, nonce_r, ours=False))  # §2.8.1: later
        return
    _await_delete(old, now)


def _await_delete(child, now) -> None:
    """The peer created the replacement: it deletes the old SA (§2.8); we wait, bounded."""
    child.state = ChildState.REKEYED
    child.rekey = None
    child.rekey_at = None
    child.expire_at = now + REKEYED_GRACE if child.expire_at is None else min(child.expire_at, now + REKEYED_GRACE)


def child_rekey_done(sa, old, new, nonce_i, nonce_r, now) -> None:
    """Our rekey of `old` made `new` (installed). Delete what is redundant (§2.8.1)."""
    from .exchanges import informational

    note_success(sa)
    sa.engine.stats["child_rekeys_completed"] += 1
    peers = old.rekey.peers if old.rekey is not None else []
    old.rekey = None
    mine = Exchange(new, nonce_i, nonce_r, ours=True)
    best = winner([mine] + peers)
    for ex in [mine] + peers:
        if ex is best:
            continue
        if ex.ours:  # the redundant SA is ours to delete (§2.8.1)
            log.info("%r: CHILD SA rekey collision lost, deleting #%d", sa, ex.new.child_id)
            informational.delete_child(sa, ex.new, now, "redundant after a rekey collision")
        else:  # the peer deletes its redundant SA; bounded wait as for a replaced one
            _await_delete(ex.new, now)
    if old.child_id not in sa.children:
        return  # a Delete crossed our rekey (§2.25.1): nothing left to delete
    if best.ours:
        informational.delete_child(sa, old, now, "rekeyed")
    else:
        _await_delete(old, now)  # the winner's initiator deletes it


def child_rekey_failed(sa, old, notify_type, now) -> None:
    """Our rekey of `old` got an error (or an answer we could not accept)."""
    from .exchanges import create_child_sa

    engine = sa.engine
    engine.stats["child_rekeys_failed"] += 1
    peers = old.rekey.peers if old.rekey is not None else []
    old.rekey = None
    present = old.child_id in sa.children
    if peers:
        best = winner(peers)  # the peer's rekey stands (§2.25.1)
        for ex in peers:
            if ex is not best:
                _await_delete(ex.new, now)
        if present:
            _await_delete(old, now)
        return
    if notify_type == NotifyType.CHILD_SA_NOT_FOUND:
        # §2.25: delete it silently, then create it again from scratch
        if present:
            engine.remove_child(sa, old, "peer has no such CHILD SA", now)
        if flow_member(sa, old.reqid) is None:
            create_child_sa.send_child(sa, child_policy(sa, old), now, old.ts_local, old.ts_remote,
                                       transport=old.transport)
        return
    if not present or old.state != ChildState.REKEYING:
        return
    old.state = ChildState.INSTALLED
    if notify_type == NotifyType.TEMPORARY_FAILURE:
        if _give_up_if_stuck(sa, now):
            return
        retry = now + random_delay(engine, TEMP_FAILURE_DELAY)
    else:
        retry = now + RETRY_AFTER_FAILURE
    old.rekey_at = retry if old.expire_at is None else min(retry, old.expire_at)


# -- IKE SA rekey ----------------------------------------------------------------------------

def start_ike_rekey(sa, now) -> bool:
    """Rekey the IKE SA (soft lifetime or operator). False if it cannot start now."""
    from .exchanges import create_child_sa

    if sa.state != State.ESTABLISHED or ike_rekey_in_flight(sa):
        return False
    if sa.pending is not None or sa.queue or child_ops_in_flight(sa):
        # window 1: start once the exchanges in flight are done, so that no request
        # of ours is left on the old IKE SA
        sa.rekey_at = now + random_delay(sa.engine, BUSY_DELAY)
        return False
    sa.rekey_at = None
    sa.engine.stats["ike_rekeys_started"] += 1
    create_child_sa.send_ike_rekey(sa, now)
    return True


def successor(old, initiator, spi_i, spi_r, suite, nonce_i, nonce_r, shared, now) -> IkeSA:
    """The new IKE SA of a rekey (§2.18), registered, not yet carrying the children."""
    engine = old.engine
    new = IkeSA(engine, initiator, spi_i, spi_r, old.local_addr, old.remote_addr, now)
    new.policy = current_policy(old)
    for name in ("nat_local", "nat_remote", "local_id", "remote_id", "peer_sig_hashes",
                 "peer_fragmentation", "peer_certreq", "eap_identity", "cp_reply"):
        setattr(new, name, getattr(old, name))
    new.virtual_ips = list(old.virtual_ips) if old.virtual_ips else ()  # §2.19: `dynamic` goes on
    new.suite = suite
    # §2.18: SKEYSEED from the OLD IKE SA's PRF and SK_d, then the new suite's keys; a
    # rekeyed IKE SA signs no AUTH, so it keeps only SK_d and its SK ciphers
    seed = keys.rekey_skeyseed(old.suite.prf_id, old.sk_d, shared, nonce_i, nonce_r)
    new.keys = keys.derive_ike_keys(suite.prf_id, suite.encr_id, suite.encr_key_bits, suite.integ_id,
                                    seed, nonce_i, nonce_r, spi_i, spi_r)
    new.sk_d = new.keys.sk_d
    engine.make_sk_ciphers(new)
    new.keys = None
    new.state = State.ESTABLISHED  # §1.3.2: message IDs start at 0 again
    new.established_at = None  # not announced (IkeSARekeyed) until it takes over
    new.last_received = now
    engine.register(new)
    return new


def peer_rekeyed_ike(sa, suite, nonce_i, nonce_r, shared, now):
    """We answer the peer's IKE SA rekey: returns the new SA (registered) and whether to
    switch to it once the response is sent (False: a collision, decided when our own
    exchange completes, §2.8.2)."""
    new = successor(sa, False, suite.spi, sa.engine.new_spi(), suite, nonce_i, nonce_r, shared, now)
    if ike_rekey_in_flight(sa):
        life(sa).peer_rekeys.append(Exchange(new, nonce_i, nonce_r, ours=False))
        return new, False
    return new, True


def ike_rekey_done(sa, new, nonce_i, nonce_r, now) -> None:
    """Our IKE SA rekey made `new`: resolve a collision (§2.8.2) and switch."""
    L = life(sa)
    note_success(sa)
    sa.engine.stats["ike_rekeys_completed"] += 1
    peers, L.peer_rekeys, L.ike_rekey = L.peer_rekeys, [], None
    mine = Exchange(new, nonce_i, nonce_r, ours=True)
    best = winner([mine] + peers)
    switch(sa, best.new, now, delete_old=best.ours)
    for ex in [mine] + peers:
        if ex is best:
            continue
        if ex.ours:
            log.info("%r: IKE SA rekey collision lost, deleting the redundant %r", sa, ex.new)
            retire(ex.new, now)
        else:
            supersede(ex.new, now)


def ike_rekey_failed(sa, notify_type, now) -> None:
    L = life(sa)
    sa.engine.stats["ike_rekeys_failed"] += 1
    L.ike_rekey = None
    if L.peer_rekeys:  # the peer's rekey stands (§2.25.2)
        peers, L.peer_rekeys = L.peer_rekeys, []
        best = winner(peers)
        switch(sa, best.new, now, delete_old=False)
        for ex in peers:
            if ex is not best:
                supersede(ex.new, now)
        return
    if sa.state != State.ESTABLISHED:
        return
    if notify_type == NotifyType.TEMPORARY_FAILURE:
        if _give_up_if_stuck(sa, now):
            return
        retry = now + random_delay(sa.engine, TEMP_FAILURE_DELAY)
    else:
        retry = now + RETRY_AFTER_FAILURE
    sa.rekey_at = retry if sa.expire_at is None else min(retry, sa.expire_at)


def switch(old, new, now, delete_old: bool) -> None:
    """Move everything from the old IKE SA to its successor (§2.18)."""
    from . import lifecycle
    from .exchanges import informational

    engine = old.engine
    deleting = []
    for child in old.children.values():
        new.children[child.child_id] = child
        child.ike_sa = new
        if child.state == ChildState.DELETING:
            deleting.append(child)  # its Delete was queued on the old SA: send it anew
        elif child.state == ChildState.REKEYING:
            child.state, child.rekey = ChildState.INSTALLED, None
            child.rekey_at = now
    old.children = {}
    _move_leases(old, new)
    engine.index_established(new)
    engine.unindex(old)
    old.state = State.REKEYED
    old.rekey_at = old.dpd_at = None
    old.expire_at = None if delete_old else now + REKEYED_GRACE
    new.established_at = now
    lifecycle.on_established(new, now)
    engine.emit(events.IkeSARekeyed(old.ike_sa_id, new.ike_sa_id))
    engine.stats["ike_sas_rekeyed"] += 1
    log.info("%r rekeyed: now %r", old, new)
    for child in deleting:
        informational.delete_child(new, child, now, "deleted by operator")
    if delete_old:
        retire(old, now)
    engine.schedule(new, new.next_deadline())
    engine.schedule(old, old.next_deadline())


def _move_leases(old, new) -> None:
    """The peer keeps its configuration payload addresses (§2.19) across the rekey: the
    leases belong to the new IKE SA, so the old one's end does not free them."""
    moved = [(pool, address) for pool, address in old.leases
             if pool.move(address, old.our_spi, new.our_spi)]
    if moved:
        new.leases = [*new.leases, *moved]
    old.leases = ()
    old.virtual_ips = ()


def supersede(sa, now) -> None:
    """A redundant or replaced IKE SA the peer deletes: wait for that, bounded."""
    if sa.state == State.CLOSED:
        return  # its Delete came first
    sa.state = State.REKEYED
    sa.rekey_at = sa.dpd_at = None
    sa.expire_at = now + REKEYED_GRACE
    sa.engine.schedule(sa, sa.expire_at)


def retire(sa, now) -> None:
    """Delete a replaced or redundant IKE SA of ours: its Delete is its last request."""
    engine = sa.engine
    if sa.state == State.CLOSED:
        return
    sa.state = State.REKEYED
    sa.rekey_at = sa.dpd_at = sa.expire_at = None
    sa.queue = ()

    sa.send_request(ExchangeType.INFORMATIONAL, lambda: [wire.Delete(ProtocolId.IKE, [])],
                    lambda payloads, t: engine.destroy(sa, "rekeyed", t), now,
                    lambda t: engine.destroy(sa, "rekeyed (no answer to its Delete)", t))


def deleted_by_peer(sa, now) -> None:
    """The peer deletes this IKE SA. During our rekey with the peer's rekey answered, the
    peer's new SA carries on (§2.25.2: reply as usual, forget our own request)."""
    L = sa.life
    if L is not None and L.ike_rekey is not None and L.peer_rekeys:
        ike_rekey_failed(sa, None, now)
    sa.engine.destroy(sa, "deleted by peer", now)


def forget(sa, now) -> None:
    """The IKE SA is destroyed: so are the successors it answered but never switched to."""
    L = sa.life
    if L is None:
        return
    peers, L.peer_rekeys, L.ike_rekey = L.peer_rekeys, [], None
    for ex in peers:
        ex.new.engine.destroy(ex.new, "its IKE SA is gone", now)
