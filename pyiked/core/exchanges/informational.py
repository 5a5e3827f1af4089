"""INFORMATIONAL (RFC 7296 §1.4): deletes, liveness checks, notifies.

Deleting an SA is a request/response pair (§1.4.1): for a CHILD SA the response carries
the Delete for the paired SA in the other direction; for the IKE SA the response is empty
and both ends drop the IKE SA and everything under it. An empty INFORMATIONAL is a
liveness check (§2.4) and gets an empty answer.
"""

from __future__ import annotations

import logging

from pyiked._fast import wire

from .. import rekey
from ..iana import NOTIFY_ERROR_MAX, ExchangeType, NotifyType, PayloadType, ProtocolId
from ..ike_sa import Response, State

log = logging.getLogger("pyiked.engine")


def respond(sa, payloads, now):
    engine = sa.engine
    response = Response()
    paired: dict[int, list[bytes]] = {}
    for p in payloads:
        if p.payload_type == PayloadType.D:
            if p.protocol_id == ProtocolId.IKE:
                # §1.4.1: answer with an empty INFORMATIONAL, then the IKE SA is gone
                # (a successor from a rekey answered meanwhile lives on, §2.25.2)
                return Response([], lambda t: rekey.deleted_by_peer(sa, t))
            paired.setdefault(p.protocol_id, []).extend(_delete_children(sa, p, now))
        elif p.payload_type == PayloadType.N:
            _log_notify(sa, p)
            if p.type == NotifyType.AUTHENTICATION_FAILED and not sa.initiator:
                # §2.21.2: the initiator refused our AUTH in a separate INFORMATIONAL;
                # the IKE SA it just authenticated never came up on its side
                return Response([], lambda t: sa.engine.destroy(sa, "peer refused our authentication", t))
    for protocol, spis in paired.items():
        if spis:
            response.append(wire.Delete(protocol, spis))
    return response


def _delete_children(sa, delete, now) -> list[bytes]:
    """The peer deletes CHILD SAs by the SPIs it receives on, i.e. our outbound SPIs (§3.11).
    Returns our inbound SPIs of the pairs, for the response's Delete."""
    engine = sa.engine
    ours = []
    for spi in delete.spis:
        if len(spi) != 4:
            continue
        value = int.from_bytes(spi, "big")
        child = next((c for c in sa.children.values()
                      if c.spi_out == value and c.protocol == delete.protocol_id), None)
        if child is None:
            log.debug("%r: Delete for unknown SPI %08x ignored", sa, value)
            continue
        if not engine.child_delete_crossed(sa, child):
            ours.append(child.spi_in.to_bytes(4, "big"))
        engine.remove_child(sa, child, "deleted by peer", now)
    return ours


def _log_notify(sa, notify):
    try:
        name = NotifyType(notify.type).name
    except ValueError:
        name = f"unknown notify {notify.type}"
    # §3.10.1: unrecognized errors in a request and all status types are logged and ignored
    level = logging.INFO if notify.type <= NOTIFY_ERROR_MAX else logging.DEBUG
    log.log(level, "%r: peer sent %s in INFORMATIONAL", sa, name)


# -- our requests -------------------------------------------------------------------------

def delete_child(sa, child, now, reason=""):
    """§1.4.1: send a Delete for one CHILD SA; it goes once the answer is in (or never comes)."""
    engine = sa.engine
    engine.mark_child_deleting(child)

    def build():
        if child.child_id not in sa.children:
            return None  # already gone (the peer's Delete crossed ours)
        return [wire.Delete(child.protocol, [child.spi_in.to_bytes(4, "big")])]

    def done(payloads, t):
        if child.child_id in sa.children:
            engine.remove_child(sa, child, reason or "deleted", t)

    def timeout(t):
        done([], t)
        engine.fail(sa, "no answer to a CHILD SA Delete", t, peer_dead=True)

    sa.send_request(ExchangeType.INFORMATIONAL, build, done, now, timeout)


def delete_ike(sa, now, reason=""):
    """Send an IKE SA Delete; the SA and its children go with the answer or the timeout."""
    engine = sa.engine
    if sa.state == State.DELETING:
        return
    sa.state = State.DELETING
    sa.delete_reason = reason or "deleted"
    sa.queue = ()  # §1.4.1: nothing else is worth sending on a dying SA
    sa.send_request(ExchangeType.INFORMATIONAL,
                    lambda: [wire.Delete(ProtocolId.IKE, [])],
                    lambda payloads, t: engine.destroy(sa, sa.delete_reason, t),
                    now,
                    lambda t: engine.destroy(sa, sa.delete_reason + " (no answer)", t))


def liveness(sa, now):
    """§2.4: an empty INFORMATIONAL; no answer after the retries means the peer is dead."""
    sa.send_request(ExchangeType.INFORMATIONAL, lambda: [], lambda payloads, t: None, now)
