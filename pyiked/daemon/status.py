"""Snapshots of the engine's state as plain data (JSON-ready), for `show sa`, `show stats`,
`monitor` and the metrics.

Nothing here holds a key: SA snapshots are built field by field, and events drop every
dataclass field marked repr=False (the convention pyiked.core.events uses for secrets).
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
from collections import Counter

from pyiked.core.child_sa import ChildState
from pyiked.core.iana import IDType
from pyiked.core.ike_sa import HALF_OPEN, State
from pyiked.core.ts import TS

# ikectl prints identities as TYPE/value (ikev2_print_id and the ikev2_id_map names)
ID_TYPE_NAMES = {
    IDType.ID_IPV4_ADDR: "IPV4",
    IDType.ID_FQDN: "FQDN",
    IDType.ID_RFC822_ADDR: "UFQDN",
    IDType.ID_IPV6_ADDR: "IPV6",
    IDType.ID_DER_ASN1_DN: "ASN1_DN",
    IDType.ID_DER_ASN1_GN: "ASN1_GN",
    IDType.ID_KEY_ID: "KEY_ID",
    IDType.ID_FC_NAME: "FC_NAME",
    IDType.ID_NULL: "NULL",
}


def id_text(identity) -> str | None:
    """`FQDN/gw.example.com`, as ikectl shows an identity (None when there is none)."""
    if identity is None:
        return None
    try:
        name = ID_TYPE_NAMES.get(IDType(identity.id_type), str(int(identity.id_type)))
    except ValueError:
        name = str(int(identity.id_type))
    text = str(identity)
    if identity.id_type == IDType.ID_KEY_ID:
        text = identity.data.hex()
    return f"{name}/{text}"


def _remaining(deadline, now):
    return None if deadline is None or now is None else max(0.0, round(deadline - now, 3))


def _child(child, now, counters) -> dict:
    lifetime = child.lifetime
    used = counters.get(child.child_id) if counters else None
    return {
        "child_id": child.child_id,
        "reqid": child.reqid,
        "state": child.state.value,
        "protocol": "ESP" if child.protocol == 3 else "AH",
        "mode": "transport" if child.transport else "tunnel",
        "spi_in": f"{child.spi_in:08x}",
        "spi_out": f"{child.spi_out:08x}",
        "initiator": child.initiator,
        "algorithms": child.suite.describe(),
        "ts_local": [str(t) for t in child.ts_local],
        "ts_remote": [str(t) for t in child.ts_remote],
        "lifetime": {"soft_seconds": lifetime.soft_seconds, "hard_seconds": lifetime.hard_seconds,
                     "soft_bytes": lifetime.soft_bytes, "hard_bytes": lifetime.hard_bytes},
        "rekey_in": _remaining(child.rekey_at, now),
        "expires_in": _remaining(child.expire_at, now),
        "age": round(now - child.created, 3) if now is not None else None,
        # None: the kernel backend keeps no per-SA counters (the memory backend)
        "bytes_in": used.get("bytes_in") if used else None,
        "bytes_out": used.get("bytes_out") if used else None,
        "packets_in": used.get("packets_in") if used else None,
        "packets_out": used.get("packets_out") if used else None,
        "policy": child.policy_name,
    }


def ike_sa(sa, now: float | None = None, counters=None) -> dict:
    return {
        "spi_i": sa.spi_i.hex(),
        "spi_r": sa.spi_r.hex(),
        "state": sa.state.value,
        "initiator": sa.initiator,
        "local": f"{sa.local_addr[0]}:{sa.local_addr[1]}",
        "remote": f"{sa.remote_addr[0]}:{sa.remote_addr[1]}",
        "local_id": str(sa.local_id) if sa.local_id else None,
        "remote_id": str(sa.remote_id) if sa.remote_id else None,
        "local_id_type": id_text(sa.local_id),
        "remote_id_type": id_text(sa.remote_id),
        "policy": sa.policy.name if sa.policy else None,
        "algorithms": sa.suite.describe() if sa.suite else {},
        "nat_local": sa.nat_local,
        "nat_remote": sa.nat_remote,
        "established": sa.established_at,
        "age": round(now - sa.created, 3) if now is not None else None,
        "rekey_in": _remaining(sa.rekey_at, now),
        "expires_in": _remaining(sa.expire_at, now),
        "children": [_child(c, now, counters) for c in sa.children.values()],
    }


def sas(engine, now: float | None = None, counters=None) -> list[dict]:
    """Every IKE SA with its CHILD SAs. counters: child_id -> {"bytes_in", ...} from the
    kernel backend, when it keeps them."""
    return [ike_sa(sa, now, counters) for sa in engine.ike_sas()]


# -- counters ------------------------------------------------------------------------------

# engine.stats keys that name a family of counters: prefix -> family
_FAMILIES = {
    "handshakes_failed_": "handshakes_failed_by_reason",
    "init_refused_": "init_refused_by_reason",
    "dropped_": "dropped_by_reason",
}


def gauges(engine) -> dict:
    """What exists now, counted on demand (one pass over the SAs, no per-packet cost)."""
    by_state = Counter(sa.state.value for sa in engine.sas.values())
    half_open = {"initiator": 0, "responder": 0}
    children = 0
    child_states = Counter()
    for sa in engine.sas.values():
        if sa.state in HALF_OPEN:
            half_open["initiator" if sa.initiator else "responder"] += 1
        for child in sa.children.values():
            children += 1
            child_states[child.state.value] += 1
    return {
        "ike_sas": sum(by_state.values()),
        "ike_sas_by_state": {s.value: by_state.get(s.value, 0) for s in State if s != State.CLOSED},
        "ike_sas_established": by_state.get(State.ESTABLISHED.value, 0),
        "half_open": half_open,
        "child_sas": children,
        "child_sas_by_state": {s.value: child_states.get(s.value, 0) for s in ChildState},
    }


def counters(engine) -> dict:
    """engine.stats split into plain counters and labelled families (keys are the label)."""
    plain: dict[str, int] = {}
    families: dict[str, dict[str, int]] = {name: {} for name in _FAMILIES.values()}
    for key, value in engine.stats.items():
        for prefix, family in _FAMILIES.items():
            if key.startswith(prefix):
                families[family][key[len(prefix):]] = value
                break
        else:
            plain[key] = value
    return {"counters": dict(sorted(plain.items())),
            **{k: dict(sorted(v.items())) for k, v in families.items()}}


def stats(engine) -> dict:
    """`show stats --json`: counters since start plus what exists now."""
    return {**counters(engine), **gauges(engine)}


# -- events --------------------------------------------------------------------------------

def _plain(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if type(value).__str__ is not object.__str__:  # TS, Identity: their text form
            return str(value)
        return {f.name: _plain(getattr(value, f.name))
                for f in dataclasses.fields(value) if f.repr}  # repr=False marks secrets
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, TS):  # a tuple of ints underneath: its text form
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return str(value)
    return str(value)  # TS and other value objects print themselves


def event(ev) -> dict:
    """An engine event as JSON-ready data without keys: {"type": "IkeSAUp", ...}."""
    return {"type": type(ev).__name__, **_plain(ev)}
