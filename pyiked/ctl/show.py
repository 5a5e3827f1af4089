"""Text rendering of `show sa`, close to ikectl's layout."""

from __future__ import annotations


def _algos(a: dict) -> str:
    return "/".join(a[k] for k in ("encr", "integ", "prf", "ke", "esn") if a.get(k))


def format_sas(sas: list[dict], title: str | None = None) -> str:
    lines = [title] if title else []
    lines.append("iked_sas:")
    if not sas:
        lines.append("  (none)")
    for sa in sas:
        role = "i" if sa["initiator"] else "r"
        nat = " NAT-T" if sa["nat_local"] or sa["nat_remote"] else ""
        lines.append(
            f"  ispi 0x{sa['spi_i']} rspi 0x{sa['spi_r']} {sa['local']}->{sa['remote']}"
            f"<{sa['remote_id'] or '?'}> {sa['state']} {role}{nat} pol {sa['policy']}"
        )
        lines.append(f"    ike: {_algos(sa['algorithms'])}  local id {sa['local_id']}")
        for c in sa["children"]:
            lines.append(
                f"    sa_childsas: #{c['child_id']} {c['protocol']} {c['mode']} in 0x{c['spi_in']} "
                f"out 0x{c['spi_out']} {c['state']} {_algos(c['algorithms'])}"
            )
            lines.append(f"      flow: {', '.join(c['ts_local'])} === {', '.join(c['ts_remote'])}")
    return "\n".join(lines)
