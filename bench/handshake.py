"""Handshake cost: responder CPU per completed IKE SA (IKE_SA_INIT + IKE_AUTH with its first
CHILD SA), pyiked next to strongSwan on the same load, and next to the crypto floor.

Two parts:
  1. in-process (always runs, no root): a pyiked responder engine and a pyiked initiator
     engine talking through a list (bench.pair.Pair). The responder's thread CPU per
     handshake, compiled and pure, divided by the crypto floor of the same profile
     (bench.crypto_floor): what the protocol code adds to the crypto it cannot avoid.
  2. over veth between network namespaces (root, strongSwan installed): the load
     generator (bench.loadgen, the pyiked initiator) drives (a) the pyiked daemon and (b)
     charon-systemd with the same proposals, identities and selectors (bench.netns). Per
     responder: completed handshakes/s, responder CPU µs per completed IKE SA (all its
     threads), failures, retransmissions, the generator's CPU, which side was the
     bottleneck, and the responder's RSS growth per kept SA. Compare the CPU figures, not
     the rates: the generator is a pyiked initiator and costs about what a pyiked
     responder does, so on two cores it is often the slower side. Two modes: `keep N`
     (N SAs pile up: strongSwan's kernel-libipsec keeps SAs and policies in lists, so its
     cost per SA grows with N) and `churn N` (each SA deleted once up: steady state, the
     Delete exchange included in the cost).

Goals (reported, not asserted): pyiked ≤ 1.5x the crypto floor and ≤ 1/3 of strongSwan's
CPU per handshake.

    python -m bench.handshake [--quick] [--count N] [--concurrency C] [--mode keep|churn]
                              [--profile NAME ...]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bench.common import main_args, table, write_result
from bench.pair import HEADLINE, PROFILES, Pair

GOAL_FLOOR = 1.5
GOAL_STRONGSWAN = 1 / 3


# -- in-process ------------------------------------------------------------------------

def inprocess(profile_name: str, count: int) -> dict:
    """Responder engine CPU per handshake in this process's mode (compiled or pure)."""
    from pyiked import _fast

    pair = Pair(PROFILES[profile_name])
    for k in range(min(20, count)):  # warm-up: first-use imports and caches
        pair.handshake(k)
    pair.established = 0
    chunks, k = [], 20
    for size in [count // 5] * 4 + [count - 4 * (count // 5)]:
        pair.responder_cpu = 0.0
        for k in range(k, k + size):
            pair.handshake(k)
        k += 1
        chunks.append(pair.responder_cpu / size)
    # the best fifth: on a shared machine the others' load only ever adds time
    return {
        "mode": "compiled" if _fast.EXTENSIONS else "pure",
        "handshakes": count,
        "established": pair.established,
        "responder_us": min(chunks) * 1e6,
        "responder_us_mean": sum(chunks) / len(chunks) * 1e6,
    }


def _inprocess_pure(jobs) -> dict:
    """inprocess() for each (profile, count) in a child with PYIKED_NO_EXTENSIONS=1."""
    env = dict(os.environ, PYIKED_NO_EXTENSIONS="1")
    arg = ",".join(f"{name}:{count}" for name, count in jobs)
    cp = subprocess.run([sys.executable, "-m", "bench.handshake", "--inprocess", arg],
                        capture_output=True, text=True, env=env, check=True,
                        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return json.loads(cp.stdout)


def _inprocess_part(profiles, quick, figures):
    from bench.crypto_floor import floor_seconds
    from pyiked import _fast

    counts = {name: (300 if quick else 3000) if PROFILES[name].floor == "x25519-gcm" else (100 if quick else 600)
              for name in profiles}
    results = {name: {} for name in profiles}
    if _fast.EXTENSIONS:
        for name in profiles:
            results[name]["compiled"] = inprocess(name, counts[name])
        for name, r in _inprocess_pure(counts.items()).items():
            results[name]["pure"] = r
    else:
        for name in profiles:
            results[name]["pure"] = inprocess(name, counts[name])
    rows = []
    for name in profiles:
        floor_us = floor_seconds(quick, PROFILES[name].floor) * 1e6
        for mode, r in results[name].items():
            us = r["responder_us"]
            rows.append([name, mode, f"{r['established']}/{counts[name]}", us, floor_us, us / floor_us])
            figures.setdefault("inprocess", {}).setdefault(name, {})[mode] = {
                **r, "floor_us": floor_us, "x_floor": us / floor_us}
    return table(
        "handshake, in-process: pyiked responder engine, CPU per IKE_SA_INIT + IKE_AUTH (no sockets; "
        "best fifth of the run)",
        ["profile", "mode", "up", "us/handshake", "crypto floor us", "x floor"], rows)


# -- over veth -------------------------------------------------------------------------

def _summarize(run: dict, responder) -> dict:
    done = max(run["completed"], 1)
    wall = max(run["wall_seconds"], 1e-9)
    resp_util = run["responder_cpu_seconds"] / wall
    gen_util = run["cpu_seconds"] / wall
    if gen_util >= 0.85 and gen_util >= resp_util:
        bottleneck = "generator"
    elif resp_util >= 0.85:
        bottleneck = "responder"
    else:
        bottleneck = "neither (latency-bound)"
    kept = 0 if run["delete"] else run["completed"]
    rss_growth = run["responder_rss_after"] - run["responder_rss_before"]
    return {
        **run,
        "responder": responder.label,
        "backend": responder.backend,
        "handshakes_per_s": run["completed"] / wall,
        "responder_us_per_handshake": run["responder_cpu_seconds"] / done * 1e6,
        "responder_core_utilisation": resp_util,
        "generator_us_per_handshake": run["cpu_seconds"] / done * 1e6,
        "generator_core_utilisation": gen_util,
        "bottleneck": bottleneck,
        "responder_rss_per_kept_sa": rss_growth / kept if kept else None,
    }


MODES = {  # (mode, SAs per responder): quick, full; --quick runs only the headline over veth
    "light": {True: (("keep", 1000), ("churn", 500)), False: (("keep", 5000), ("churn", 5000))},
    "heavy": {True: (), False: (("keep", 1000), ("churn", 1000))},
}


def _netns_part(profiles, quick, figures, count=None, concurrency=None, only=None):
    from bench.netns import NetnsLab, unavailable

    reason = unavailable()
    if reason:
        figures["netns_skipped"] = reason
        return f"handshake over veth (pyiked vs strongSwan): SKIPPED: {reason}"
    rows, notes = [], []
    c = concurrency or 32
    with NetnsLab() as lab:
        for name in profiles:
            profile = PROFILES[name]
            why = profile.unsupported()
            if why:  # said once, above the tables
                figures.setdefault("netns", {})[name] = {"skipped": why}
                continue
            modes = MODES["heavy" if profile.floor != "x25519-gcm" else "light"][quick]
            if only or (count and not modes):
                full = MODES["heavy" if profile.floor != "x25519-gcm" else "light"][False]
                modes = tuple((m, n) for m, n in (modes or full) if m == (only or m))
            if not modes:
                notes.append(f"{name}: not over veth in --quick (the full run has it)")
                continue
            for mode, n in modes:
                n = count or n
                per = {}
                for start in (lab.start_pyiked, lab.start_strongswan):
                    responder = start(profile)
                    try:
                        run = lab.drive(responder, profile, n, c, delete=mode == "churn")
                    finally:
                        responder.stop()
                    s = per[responder.kind] = _summarize(run, responder)
                    rss = s["responder_rss_per_kept_sa"]
                    rows.append([name, f"{mode} {n:,}", s["responder"], s["backend"], f"{s['completed']:,}",
                                 s["failed"], s["retransmissions"], s["handshakes_per_s"],
                                 s["responder_us_per_handshake"], f"{s['responder_core_utilisation']:.0%}",
                                 s["generator_us_per_handshake"], f"{s['generator_core_utilisation']:.0%}",
                                 s["bottleneck"], f"{rss / 1024:.1f}" if rss is not None else "-"])
                figures.setdefault("netns", {}).setdefault(name, {})[f"{mode}_{n}"] = per
                notes += _verdicts(name, f"{mode} {n:,}", per, figures)
    pin = "responder pinned to CPU 0, generator to CPU 1" if lab.pin else "not pinned (one core)"
    return table(
        f"handshake over veth: same generator, same proposals ({pin}; {c} in flight)",
        ["profile", "SAs", "responder", "SA backend", "up", "failed", "retr", "hs/s", "resp us/SA",
         "resp core", "gen us/SA", "gen core", "bottleneck", "RSS KiB/SA"], rows) + (
        "\n  keep N: N IKE SAs (+ CHILD SAs) established and kept, RSS/SA = the responder's RSS growth / N;"
        "\n  churn N: each IKE SA deleted (INFORMATIONAL) once up, so the responder holds ~in-flight SAs and"
        "\n  its CPU per SA covers IKE_SA_INIT + IKE_AUTH + the Delete; us/SA counts every thread, user + system"
    ) + "".join(f"\n  {n}" for n in notes)


def _verdicts(name, mode, per, figures) -> list[str]:
    notes = []
    if "pyiked" in per and "strongswan" in per:
        ratio = per["pyiked"]["responder_us_per_handshake"] / per["strongswan"]["responder_us_per_handshake"]
        per["pyiked_over_strongswan"] = ratio
        notes.append(f"{name}, {mode}: pyiked's responder CPU per SA is {ratio:.2f}x strongSwan's "
                     f"(goal <= {GOAL_STRONGSWAN:.2f})")
    inproc = figures.get("inprocess", {}).get(name, {})
    floor_us = (inproc.get("compiled") or inproc.get("pure") or {}).get("floor_us")
    if floor_us and "pyiked" in per and not mode.startswith("churn"):
        x = per["pyiked"]["responder_us_per_handshake"] / floor_us
        per["pyiked_daemon_x_floor"] = x
        notes.append(f"{name}, {mode}: the pyiked daemon spends {x:.2f}x the crypto floor per handshake "
                     f"(goal <= {GOAL_FLOOR})")
    for s in per.values():
        if isinstance(s, dict) and s["bottleneck"] == "generator":
            notes.append(f"{name}, {mode}: the generator, not {s['responder']}, was the bottleneck (generator "
                         f"{s['generator_core_utilisation']:.0%} of its core): hs/s is the generator's rate")
    return notes


def run(quick: bool = False, count=None, concurrency=None, only=None, profiles=None) -> str:
    profiles = profiles or list(PROFILES)
    figures = {"goals": {"x_floor": GOAL_FLOOR, "x_strongswan": GOAL_STRONGSWAN}}
    supported = [p for p in profiles if PROFILES[p].unsupported() is None]
    parts = [_inprocess_part(supported, quick, figures)]
    for p in profiles:
        if p not in supported:
            parts.append(f"{p}: skipped: {PROFILES[p].unsupported()}")
    parts.append(_netns_part(profiles, quick, figures, count, concurrency, only))
    write_result("handshake", figures, quick)
    return "\n\n".join(parts)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--inprocess"]:  # the pure-mode child of _inprocess_pure
        jobs = [job.split(":") for job in argv[1].split(",")]
        print(json.dumps({name: inprocess(name, int(count)) for name, count in jobs}))
        return 0
    import argparse

    p = argparse.ArgumentParser(prog="python -m bench.handshake")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--count", type=int, default=None, help="handshakes per responder")
    p.add_argument("--concurrency", type=int, default=None)
    p.add_argument("--mode", choices=("keep", "churn"), default=None,
                   help="only keep the SAs, or only churn (delete each once up); default: both")
    p.add_argument("--profile", action="append", choices=list(PROFILES), help="(repeatable)")
    args = p.parse_args(argv)
    print(run(args.quick, args.count, args.concurrency, args.mode, args.profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
