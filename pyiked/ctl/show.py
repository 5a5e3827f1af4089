"""Text rendering for pyikectl, close to ikectl's layout (ikev2_info_sa / show_stats).

ikectl prints one `iked_sas:` line per IKE SA (SPIs, local->peer<ID>, state, role, NAT),
then `sa_childsas:` per SA direction and `sa_flows:` per flow direction. pyiked adds what
an operator needs from `show sa` without ikectl's pointers: algorithms, identities,
lifetimes and byte counts (when the kernel backend keeps them).
"""

from __future__ import annotations

import json
import time


def _algos(a: dict) -> str:
    return "/".join(a[k] for k in ("encr", "integ", "prf", "ke", "esn") if a.get(k)) or "-"


def _seconds(value) -> str:
    if value is None:
        return "-"
    value = int(value)
    if value >= 3600:
        return f"{value // 3600}h{value % 3600 // 60:02d}m"
    if value >= 60:
        return f"{value // 60}m{value % 60:02d}s"
    return f"{value}s"


def _bytes(value) -> str:
    return "-" if value is None else str(value)


def _host(endpoint: str) -> str:
    return endpoint.rsplit(":", 1)[0]


def _ike_line(sa: dict) -> str:
    role = "i" if sa["initiator"] else "r"
    flags = " natt" if sa["nat_local"] or sa["nat_remote"] else ""
    return (f"iked_sas: rspi 0x{sa['spi_r']} ispi 0x{sa['spi_i']} {sa['local']}->{sa['remote']}"
            f"<{sa.get('remote_id_type') or sa['remote_id'] or ''}>[] {sa['state']} {role}{flags}"
            f" pol {json.dumps(sa['policy'])}")


def _ike_detail(sa: dict) -> str:
    nat = [side for side in ("local", "remote") if sa[f"nat_{side}"]]
    parts = [f"  ike: {_algos(sa['algorithms'])}",
             f"local <{sa.get('local_id_type') or sa['local_id'] or ''}>",
             f"age {_seconds(sa['age'])}"]
    if sa.get("rekey_in") is not None:
        parts.append(f"rekey in {_seconds(sa['rekey_in'])}")
    if sa.get("expires_in") is not None:
        parts.append(f"expires in {_seconds(sa['expires_in'])}")
    if nat:
        parts.append("nat " + "+".join(nat))
    return " ".join(parts)


def _child_lines(sa: dict, c: dict) -> list[str]:
    local, remote = _host(sa["local"]), _host(sa["remote"])
    life = c["lifetime"]
    limits = f"lifetime {_seconds(life['hard_seconds'] or None)}/{life['hard_bytes'] or '-'}B"
    timers = ""
    if c.get("rekey_in") is not None:
        timers += f" rekey in {_seconds(c['rekey_in'])}"
    if c.get("expires_in") is not None:
        timers += f" expires in {_seconds(c['expires_in'])}"
    head = f"  sa_childsas: #{c['child_id']} {c['protocol']}"
    lines = [
        f"{head} 0x{c['spi_out']} out {local} -> {remote} bytes {_bytes(c.get('bytes_out'))}",
        f"{head} 0x{c['spi_in']} in {remote} -> {local} bytes {_bytes(c.get('bytes_in'))}",
        (f"    #{c['child_id']} {c['state']} {c['mode']} {_algos(c['algorithms'])} "
         f"reqid {c['reqid']} {limits}{timers}"),
    ]
    for src in c["ts_local"]:
        for dst in c["ts_remote"]:
            lines.append(f"  sa_flows: {c['protocol']} out {src} -> {dst} #{c['child_id']}")
            lines.append(f"  sa_flows: {c['protocol']} in {dst} -> {src} #{c['child_id']}")
    return lines


def format_sas(sas: list[dict], title: str | None = None) -> str:
    lines = [title] if title else []
    if not sas:
        lines.append("iked_sas: (none)")
    for sa in sas:
        lines.append(_ike_line(sa))
        lines.append(_ike_detail(sa))
        for c in sa["children"]:
            lines.extend(_child_lines(sa, c))
    return "\n".join(lines)


# -- show stats ----------------------------------------------------------------------------

def _plural(n: int, one: str, many: str) -> str:
    return one if n == 1 else many


def format_stats(stats: dict, quiet: bool = False) -> str:
    """ikectl's `show stats` lines (ike: section), then pyiked's breakdowns."""
    c = stats["counters"]
    failed = stats["handshakes_failed_by_reason"]
    refused = stats["init_refused_by_reason"]
    dropped = {k: v for k, v in stats["dropped_by_reason"].items() if k != "KEEPALIVE"}
    rows = [
        (c.get("handshakes_started", 0), "IKE SA created", "IKE SAs created"),
        (c.get("handshakes_completed", 0), "IKE SA established", "IKE SAs established"),
        (stats["ike_sas_established"], "IKE SA currently established",
         "IKE SAs currently established"),
        (c.get("handshakes_failed", 0), "IKE SA failed to establish", "IKE SAs failed to establish"),
        (refused.get("NO_PROPOSAL_CHOSEN", 0) + failed.get("NO_PROPOSAL_CHOSEN", 0),
         "failed proposal negotiation", "failed proposal negotiations"),
        (c.get("ike_sas_rekeyed", 0), "IKE SA rekeyed", "IKE SAs rekeyed"),
        (c.get("ike_sas_removed", 0), "IKE SA removed", "IKE SAs removed"),
        (c.get("child_sas_created", 0), "Child SA created", "Child SAs created"),
        (c.get("child_sas_removed", 0), "Child SA removed", "Child SAs removed"),
        (sum(dropped.values()), "message dropped", "messages dropped"),
        (c.get("retransmissions", 0), "request retransmitted", "requests retransmitted"),
        (c.get("cookies_sent", 0), "cookie sent", "cookies sent"),
        (sum(stats["half_open"].values()), "IKE SA half-open", "IKE SAs half-open"),
        (stats["child_sas"], "Child SA currently installed", "Child SAs currently installed"),
    ]
    lines = ["ike:"]
    for value, one, many in rows:
        if value or not quiet:
            lines.append(f"\t{value} {_plural(value, one, many)}")
    for title, table in (("failures", failed), ("refused", refused), ("dropped", dropped)):
        if table:
            lines.append(f"{title}:")
            lines.extend(f"\t{value} {reason}" for reason, value in table.items())
    daemon = stats.get("daemon")
    if daemon:
        lines.append("daemon:")
        lines.append(f"\tmode {daemon['mode']}, kernel {'coupled' if daemon['coupled'] else 'decoupled'}"
                     f" ({daemon['backend']}), log {daemon['log_level']}, "
                     f"{daemon['policies']} {_plural(daemon['policies'], 'policy', 'policies')}, "
                     f"up {_seconds(daemon['uptime'])}")
    return "\n".join(lines)


# -- monitor -------------------------------------------------------------------------------

def format_event(event: dict) -> str:
    """One line: time, type, then key=value (lists and objects as compact JSON)."""
    when = event.get("time")
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when)) if isinstance(
        when, (int, float)) else "-"
    parts = [stamp, str(event.get("type", "?"))]
    for key, value in event.items():
        if key in ("time", "type"):
            continue
        if isinstance(value, (dict, list)):
            value = json.dumps(value, separators=(",", ":"))
        parts.append(f"{key}={value}")
    return " ".join(parts)
