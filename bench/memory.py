"""Memory per established IKE SA with one CHILD SA: pyiked's engine in-process, and the
pyiked daemon and strongSwan over veth at the same N.

In-process (no root): one responder engine (bench.pair.Pair, X25519/AES-GCM, PSK) holds
N established IKE SAs, each with its CHILD SA handed to the memory kernel backend; an
initiator engine in the same process negotiates them and forgets its side at once, so
what stays is the responder's. Each figure comes from a fresh interpreter. Per SA:
  - RSS delta: what the process really grew by, including what tracemalloc cannot see
    (OpenSSL objects); measured without tracemalloc, whose tables would inflate it
  - tracemalloc, in a separate run: Python allocations that stay, the engine's apart from
    the memory backend's records of the ChildSAInstall events (a real backend puts those
    in the kernel).

Over veth (root, strongSwan installed): the load generator keeps N SAs up on the pyiked
daemon (userspace backend) and on charon-systemd (kernel-libipsec) in turn; the
responder's RSS growth / N. The generator forgets its side of each SA (`--forget`), so
100k SAs are within its reach; a run that does not finish in its time limit is reported
as not reached.

Goal (reported, not asserted): <= 4 KiB per established IKE SA + CHILD SA.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time

from bench.common import main_args, table, write_result

GOAL_BYTES = 4096
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def measure(n: int, traced: bool) -> dict:
    """In this process: N SAs on one responder engine (run in a fresh interpreter).

    traced: measure with tracemalloc (Python allocations, engine and backend apart);
    otherwise the RSS growth, without tracemalloc, whose own tables would inflate it.
    """
    import tracemalloc

    from pyiked import _fast
    from pyiked.kernel.memory import MemoryBackend

    from bench.pair import HEADLINE, PROFILES, Pair, rss_bytes

    backend = MemoryBackend()
    backend.log = _NoLog()  # its audit list would grow per event: not a kernel's state

    def sink(event):
        if type(event).__name__ == "ChildSAInstall":
            backend.install(event)

    pair = Pair(PROFILES[HEADLINE], sink=sink, forget=True)
    for k in range(50):  # warm-up: imports, caches, first-use allocations
        pair.handshake(k)
    pair.initiator = pair._new_initiator()
    gc.collect()
    if traced:
        tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0] if traced else rss_bytes()
    start = time.perf_counter()
    for k in range(50, 50 + n):
        pair.handshake(k)
    pair.initiator = pair._new_initiator()  # the initiator's leftovers go
    gc.collect()
    elapsed = time.perf_counter() - start
    after = tracemalloc.get_traced_memory()[0] if traced else rss_bytes()
    result = {
        "n": n,
        "mode": "compiled" if _fast.EXTENSIONS else "pure",
        "established": sum(1 for sa in pair.responder.sas.values() if sa.state.name == "ESTABLISHED") - 50,
        "children": sum(len(sa.children) for sa in pair.responder.sas.values()) - 50,
        "installed": len(backend.sas) - 50,
        "seconds": elapsed,
    }
    if not traced:
        result["rss_per_sa"] = (after - before) / n
        return result
    backend.sas.clear()
    gc.collect()
    engine_only = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    result.update(traced_per_sa=(after - before) / n, traced_engine_per_sa=(engine_only - before) / n,
                  traced_backend_per_sa=(after - engine_only) / n)
    return result


class _NoLog(list):
    def append(self, item):
        pass


def _children(jobs) -> list[dict]:
    """Run `bench.memory --child N rss|traced` for each (N, kind), two at a time (memory
    figures do not suffer from sharing the CPU)."""
    env = dict(os.environ, PYTHONPATH=REPO)
    pending, running, out = list(jobs), [], {}
    while pending or running:
        while pending and len(running) < 2:
            n, kind = pending.pop(0)
            argv = [sys.executable, "-m", "bench.memory", "--child", str(n), kind]
            running.append(((n, kind), subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                        text=True, cwd=REPO, env=env)))
        job, proc = running.pop(0)
        stdout, stderr = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"memory child {job} failed: {stderr[-2000:]}")
        out[job] = json.loads(stdout)
    return [out[job] for job in jobs]


def _inprocess_part(sizes, traced_sizes, figures) -> str:
    jobs = sorted([(n, "rss") for n in sizes] + [(n, "traced") for n in traced_sizes],
                  key=lambda job: -job[0] * (3 if job[1] == "traced" else 1))  # longest first
    results = dict(zip(jobs, _children(jobs)))
    rows = []
    for n in sizes:
        r, t = results[(n, "rss")], results.get((n, "traced"))
        figures.setdefault("inprocess", {})[str(n)] = {"rss": r, "traced": t}
        rows.append([f"{n:,}", r["mode"], f"{r['established']:,}/{r['children']:,}", r["rss_per_sa"],
                     t["traced_engine_per_sa"] if t else "-", t["traced_backend_per_sa"] if t else "-",
                     r["seconds"]])
    rss = max(results[(n, "rss")]["rss_per_sa"] for n in sizes)
    engine = max(results[(n, "traced")]["traced_engine_per_sa"] for n in traced_sizes)
    figures["worst_rss_per_sa"], figures["worst_engine_traced_per_sa"] = rss, engine
    verdict = (f"=> per IKE SA + CHILD SA: {rss / 1024:.1f} KiB RSS (engine + the memory backend's records), "
               f"{engine / 1024:.1f} KiB of engine state (tracemalloc); goal <= {GOAL_BYTES // 1024} KiB"
               + ("" if set(traced_sizes) == set(sizes) else
                  f"\n   (tracemalloc triples a run: traced at N = {', '.join(f'{n:,}' for n in traced_sizes)} only)"))
    return table("memory, in-process: one pyiked responder engine holding N IKE SAs + CHILD SAs (bytes per SA)",
                 ["N", "mode", "IKE/CHILD up", "RSS delta", "engine (traced)", "backend records (traced)",
                  "seconds (RSS run)"], rows) + "\n" + verdict


def _netns_part(sizes, quick, figures) -> str:
    from bench.netns import NetnsLab, unavailable
    from bench.pair import HEADLINE, PROFILES

    reason = unavailable()
    if reason:
        figures["netns_skipped"] = reason
        return f"memory over veth (pyiked daemon vs strongSwan RSS per SA): SKIPPED: {reason}"
    profile = PROFILES[HEADLINE]
    rows, notes = [], []
    with NetnsLab() as lab:
        for n in sizes:
            # the generator manages ~1,000/s against pyiked; strongSwan slows down as SAs
            # pile up (kernel-libipsec keeps them in lists): stop waiting after this long
            limit = min(150.0, max(30.0, n / 80))
            for start in (lab.start_pyiked, lab.start_strongswan):
                responder = start(profile)
                try:
                    run = lab.drive(responder, profile, n, 64, warmup=20, forget=True, time_limit=limit)
                finally:
                    responder.stop()
                key = f"{responder.kind}_{n}"
                done = run["completed"]
                per_sa = (run["responder_rss_after"] - run["responder_rss_before"]) / done if done else None
                figures.setdefault("netns", {})[key] = {**run, "rss_per_sa": per_sa, "reached": done == n,
                                                        "responder": responder.label}
                up = f"{done:,}" if done == n else f"{done:,} (N not reached in {limit:.0f} s)"
                rows.append([f"{n:,}", responder.label, responder.backend, up,
                             per_sa if per_sa is not None else "-", f"{run['wall_seconds']:.0f}"])
            p, s = (figures["netns"].get(f"{k}_{n}", {}) for k in ("pyiked", "strongswan"))
            if p.get("reached") and s.get("reached"):
                notes.append(f"N={n:,}: the pyiked daemon grows {p['rss_per_sa'] / s['rss_per_sa']:.2f}x as much "
                             f"as strongSwan per SA")
    return table("memory over veth: responder RSS growth per kept IKE SA + CHILD SA (bytes; the generator "
                 "forgets its side)", ["N", "responder", "SA backend", "SAs up", "RSS/SA", "seconds"],
                 rows) + "".join(f"\n  {n}" for n in notes)


def run(quick: bool = False) -> str:
    sizes = (1_000, 10_000) if quick else (1_000, 10_000, 100_000)
    figures = {"goal_bytes_per_sa": GOAL_BYTES}
    parts = [_inprocess_part(sizes, (1_000,) if quick else (1_000, 10_000), figures)]
    if quick:  # the handshake bench already kept 1,000 SAs on each responder
        parts.append("memory over veth (pyiked daemon vs strongSwan): not in --quick; the handshake table's "
                     "RSS KiB/SA column has both at 1,000 kept SAs, `python -m bench memory` measures "
                     "N = 1k, 10k, 100k")
    else:
        parts.append(_netns_part(sizes, quick, figures))
    write_result("memory", figures, quick)
    return "\n\n".join(parts)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        print(json.dumps(measure(int(argv[1]), argv[2] == "traced")))
        return 0
    print(run(main_args(argv).quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
