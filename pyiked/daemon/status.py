"""Snapshots of the engine's state as plain data (JSON-ready), for `show sa` and metrics."""

from __future__ import annotations


def _child(child) -> dict:
    return {
        "child_id": child.child_id,
        "reqid": child.reqid,
        "state": child.state.value,
        "protocol": "ESP" if child.protocol == 3 else "AH",
        "mode": "transport" if child.transport else "tunnel",
        "spi_in": f"{child.spi_in:08x}",
        "spi_out": f"{child.spi_out:08x}",
        "algorithms": child.suite.describe(),
        "ts_local": [str(t) for t in child.ts_local],
        "ts_remote": [str(t) for t in child.ts_remote],
        "lifetime": {"soft_seconds": child.lifetime.soft_seconds, "hard_seconds": child.lifetime.hard_seconds,
                     "soft_bytes": child.lifetime.soft_bytes, "hard_bytes": child.lifetime.hard_bytes},
        "created": child.created,
        "policy": child.policy_name,
    }


def ike_sa(sa, now: float | None = None) -> dict:
    return {
        "spi_i": sa.spi_i.hex(),
        "spi_r": sa.spi_r.hex(),
        "state": sa.state.value,
        "initiator": sa.initiator,
        "local": f"{sa.local_addr[0]}:{sa.local_addr[1]}",
        "remote": f"{sa.remote_addr[0]}:{sa.remote_addr[1]}",
        "local_id": str(sa.local_id) if sa.local_id else None,
        "remote_id": str(sa.remote_id) if sa.remote_id else None,
        "policy": sa.policy.name if sa.policy else None,
        "algorithms": sa.suite.describe() if sa.suite else {},
        "nat_local": sa.nat_local,
        "nat_remote": sa.nat_remote,
        "established": sa.established_at,
        "age": (now - sa.created) if now is not None else None,
        "children": [_child(c) for c in sa.children.values()],
    }


def sas(engine, now: float | None = None) -> list[dict]:
    return [ike_sa(sa, now) for sa in engine.ike_sas()]
