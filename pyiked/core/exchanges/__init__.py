"""pyiked.core.exchanges: one module per exchange, and what they share."""

from __future__ import annotations

from ..iana import PayloadType

_N = PayloadType.N


def index(payloads) -> tuple[dict, list]:
    """One pass over a message's payloads: ({payload type: its first payload of that
    type}, [its Notify payloads in order]). A handler asks for several types; a search
    per type walked the list once each (§3.2: each type is looked up by its number)."""
    first: dict = {}
    notifies = []
    for p in payloads:
        t = p.payload_type
        if t == _N:
            notifies.append(p)
        if t not in first:
            first[t] = p
    return first, notifies
