"""Lifetimes and liveness: when SAs are rekeyed, deleted, or found dead.

Lifetimes (OpenIKED's semantics and defaults):
  - IKE SA: `ikelifetime T` (default 0: no active rekey, OpenIKED's default; we still
    answer the peer's rekeys). Soft at a random 85-95 % of T: rekey (§2.8); hard at T:
    delete, if the rekey never succeeded.
  - CHILD SA: `lifetime T [bytes B]` (default 3 h, 4 GiB). Time limits are timed here;
    soft at a random 85-95 % (child_sa.lifetime_for), so that thousands of SAs installed
    together do not rekey in the same second. Byte limits are counted by the kernel (or
    the userspace data plane), which reports them as events.KernelExpire notices: soft
    rekeys, hard deletes. The same limits also reach the kernel in ChildSAInstall, so a
    notice may duplicate our own timer: both paths are idempotent.

Liveness (RFC 7296 §2.4, OpenIKED's `set dpd_check_interval N`, default 60 s, 0 turns it
off): every interval, an IKE SA that heard nothing from its peer during the whole interval
sends an empty INFORMATIONAL. Heard means an authenticated IKE message, or authenticated
ESP on one of its CHILD SAs as the data plane reports it (events.KernelActivity), so that
busy tunnels are not probed, as with OpenIKED and strongSwan. No answer after the retransmissions
means the peer is dead: the IKE SA and its CHILD SAs go (ChildSARemove, IkeSADown), with
no further message. A request already in flight is a liveness check of its own.
"""

from __future__ import annotations

import logging

from . import rekey
from .child_sa import ChildState
from .events import KernelActivity, KernelExpire
from .ike_sa import State

log = logging.getLogger("pyiked.engine")

IKE_SOFT = (0.85, 0.95)  # share of ikelifetime when the IKE SA rekey starts


def jitter(engine) -> float:
    return int.from_bytes(engine.random(2), "big") / 65535


def on_established(sa, now) -> None:
    """Arm an IKE SA's lifetime and liveness timers (after IKE_AUTH or a rekey)."""
    engine = sa.engine
    lifetime = sa.policy.ikelifetime if sa.policy is not None else 0
    if lifetime:
        low, high = IKE_SOFT
        sa.rekey_at = now + lifetime * (low + (high - low) * jitter(engine))
        sa.expire_at = now + lifetime
    else:
        sa.rekey_at = sa.expire_at = None
    interval = dpd_interval(engine)
    sa.dpd_at = now + interval if interval else None


def dpd_interval(engine) -> float:
    return float(max(0, engine.store.settings.dpd_check_interval))


def timer(sa, now) -> None:
    """Everything lifetime- and liveness-related that is due (IkeSA.on_timer calls it)."""
    engine = sa.engine
    if sa.state == State.REKEYED:
        if sa.expire_at is not None and now >= sa.expire_at:
            # the peer never deleted the SA it replaced (§2.18): forget it quietly
            engine.destroy(sa, "replaced, no Delete from the peer", now)
        return
    if sa.state != State.ESTABLISHED:
        return
    if sa.expire_at is not None and now >= sa.expire_at:
        from .exchanges import informational

        sa.expire_at = sa.rekey_at = None
        log.info("%r: IKE SA hard lifetime reached", sa)
        informational.delete_ike(sa, now, "IKE SA lifetime expired")
        return
    if sa.rekey_at is not None and now >= sa.rekey_at:
        sa.rekey_at = None
        rekey.start_ike_rekey(sa, now)  # postpones itself (rekey_at) when busy
    if sa.dpd_at is not None and now >= sa.dpd_at:
        _liveness(sa, now)
    for child in list(sa.children.values()):
        child_timer(sa, child, now)


def child_timer(sa, child, now) -> None:
    from .exchanges import informational

    if child.expire_at is not None and now >= child.expire_at:
        child.expire_at = child.rekey_at = None
        if child.state != ChildState.DELETING:
            reason = "replaced" if child.state == ChildState.REKEYED else "hard lifetime expired"
            informational.delete_child(sa, child, now, reason)
        return
    if child.rekey_at is not None and now >= child.rekey_at:
        child.rekey_at = None
        soft_expired(sa, child, now)


def soft_expired(sa, child, now) -> None:
    """Soft lifetime (time, bytes or packets): rekey the CHILD SA (§2.8)."""
    if child.state == ChildState.INSTALLED:
        rekey.start_child_rekey(sa, child, now)


def _liveness(sa, now) -> None:
    """§2.4 liveness check, OpenIKED's dpd_check_interval semantics (module docstring)."""
    from .exchanges import informational

    engine = sa.engine
    interval = dpd_interval(engine)
    if not interval:
        sa.dpd_at = None
        return
    idle = now - sa.last_received
    if sa.last_received + interval > now:
        sa.dpd_at = sa.last_received + interval  # heard from it within the interval
        return
    if sa.pending is None and not sa.queue:
        engine.stats["dpd_sent"] += 1
        log.debug("%r: no message from the peer for %.0f s: liveness check", sa, idle)
        informational.liveness(sa, now)
    sa.dpd_at = now + interval


def esp_activity(engine, notice: KernelActivity, now) -> None:
    """ESP came in on these CHILD SAs: their peers are alive (liveness waits)."""
    children = engine.children_by_spi
    for spi in notice.spis:
        child = children.get(spi)
        if child is not None:
            child.ike_sa.last_received = now


def kernel_expire(engine, notice: KernelExpire, now) -> None:
    """A byte/packet (or time) limit the kernel counted: soft rekeys, hard deletes."""
    from .exchanges import informational

    child = engine.children_by_spi.get(notice.spi)
    if child is None:
        child = next((c for c in engine.children_by_spi.values()
                      if c.spi_out == notice.spi and c.protocol == notice.protocol), None)
    if child is None:
        return
    sa = child.ike_sa
    if sa.state not in (State.ESTABLISHED, State.REKEYED):
        return
    if notice.hard:
        engine.stats["child_hard_expired"] += 1
        if child.state != ChildState.DELETING:
            child.expire_at = child.rekey_at = None
            informational.delete_child(sa, child, now, "hard lifetime expired")
    else:
        engine.stats["child_soft_expired"] += 1
        soft_expired(sa, child, now)
    engine.schedule(sa, sa.next_deadline())
