"""Policy lookup and config parsing cost: `python -m bench policy [--quick]`.

An IKE_SA_INIT costs one PolicyStore.candidates() call and an IKE_AUTH one select(). This
measures both against the number of rules (the worst case: the peer matches only the
last, catch-all rule, so every rule is tested), as ratios to the one-rule store measured
in the same run, and how fast iked.conf text parses.
"""

from __future__ import annotations

from bench.common import rate, table, write_result
from pyiked.config import PolicyStore, parse_config_text, parse_identity


def _config_text(rules: int, networks: bool) -> str:
    """rules-1 site-to-site rules (peer a host, or a /30 network) and a catch-all last."""
    lines = []
    for i in range(rules - 1):
        a, b = divmod(i, 60)
        peer = f"198.51.{a}.{4 * b}" + ("/30" if networks else "")
        lines.append(
            f'ikev2 "r{i}" esp from 10.{a}.{b}.0/24 to 172.16.{b}.0/24 '
            f'peer {peer} dstid peer{i}.example psk "k{i}"'
        )
    lines.append('ikev2 "catch all" esp from any to dynamic peer any '
                 'psk "shared" config address 10.200.0.0/16')
    return "\n".join(lines) + "\n"


def run(quick: bool) -> str:
    seconds = 0.2 if quick else 1.0
    peer_id = parse_identity("roadwarrior@example.com")
    rows, figures = [], {}
    for networks in (False, True):
        base = None
        kind = "network" if networks else "host"
        for n in (1, 10, 100, 1000):
            text = _config_text(n, networks)
            config, _ = parse_config_text(text, check=False)
            store = PolicyStore(config)
            assert store.candidates("192.0.2.1", "203.0.113.7")[0].name == "catch all"
            cand = rate(lambda s=store: s.candidates("192.0.2.1", "203.0.113.7"), seconds)
            sel = rate(lambda s=store: s.select("192.0.2.1", "203.0.113.7", peer_id), seconds)
            parse = n * rate(lambda t=text: parse_config_text(t, check=False), seconds, 1)
            if base is None:
                base = (cand, sel)
            figures[f"{kind}:{n}"] = {
                "candidates_per_s": cand,
                "select_per_s": sel,
                "rules_parsed_per_s": parse,
                "candidates_vs_1_rule": cand / base[0],
                "select_vs_1_rule": sel / base[1],
            }
            rows.append([kind, n, cand, cand / base[0], sel, sel / base[1], parse])
    write_result("policy", figures, quick)
    return table(
        "policy lookup (the peer matches only the last rule) and iked.conf parsing\n"
        "(rule peers are hosts, indexed by address, or /30 networks, scanned in order)",
        ["peers", "rules", "candidates/s", "vs 1 rule", "select/s", "vs 1 rule",
         "rules parsed/s"],
        rows,
    )


if __name__ == "__main__":
    from bench.common import main_args

    print(run(main_args().quick))
