"""Tunnel throughput: pyiked's userspace ESP next to strongSwan's kernel-libipsec.

In one run, two tunnels between the same two namespaces, each carrying a timed TCP bulk
transfer from a's protected address to b's:

    strongSwan (a) <-> strongSwan (b)   kernel-libipsec on both ends
    strongSwan (a) <-> pyiked (b)       the same a; b is pyiked's userspace ESP over TUN

Side a is the same program in both runs, so the difference is b's data plane. Reported:
MB/s of the transfer, and b's CPU time per MB (the process, all threads), which is the
figure to compare: on two cores the two ends share the machine. AES-256-GCM both ways.
As root only; the sockets are the harness's namespaces.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import cpu_seconds, main_args, table, write_result

REPO = Path(__file__).resolve().parents[1]
PORT = 5201

RECEIVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1)
print("ready", flush=True)
c, _ = s.accept(); n = 0
while True:
    b = c.recv(1 << 16)
    if not b: break
    n += len(b)
c.sendall(str(n).encode()); c.close()
"""

SENDER = """
import socket, sys, time
src, dst, port, total = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s = socket.create_connection((dst, port), source_address=(src, 0))
chunk = b"x" * (1 << 15); sent = 0; t0 = time.perf_counter()
while sent < total:
    s.sendall(chunk); sent += len(chunk)
s.shutdown(socket.SHUT_WR)
got = int(s.recv(64).decode()); dt = time.perf_counter() - t0
print(f"{got} {dt}")
"""


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "not root"
    try:
        from tests.interop.harness import missing_requirements
    except ImportError as exc:
        return f"the interop harness is not importable ({exc})"
    return "; ".join(missing_requirements(("charon-systemd", "swanctl", "ip"))) or None


def _transfer(topo, total: int) -> tuple[int, float]:
    """One TCP bulk transfer a -> b through the tunnel: (bytes received, seconds)."""
    recv = subprocess.Popen(topo.cmd("b", [sys.executable, "-c", RECEIVER, topo.inner_addr("b"), str(PORT)]),
                            stdout=subprocess.PIPE, text=True)
    try:
        if recv.stdout.readline().strip() != "ready":
            raise RuntimeError("receiver did not start")
        out = subprocess.run(topo.cmd("a", [sys.executable, "-c", SENDER, topo.inner_addr("a"),
                                            topo.inner_addr("b"), str(PORT), str(total)]),
                             capture_output=True, text=True, timeout=120, check=True).stdout
        got, seconds = out.split()
        return int(got), float(seconds)
    finally:
        recv.kill()
        recv.wait()


def _measure(topo, total: int, b_pid: int) -> dict:
    """Transfer through an established tunnel, sampling side b's CPU time around it."""
    if not topo.ping("a", topo.inner_addr("a"), topo.inner_addr("b"), count=2):
        raise RuntimeError("no traffic through the tunnel")
    _transfer(topo, total // 8)  # warm up: TCP window, routes, caches
    cpu0 = cpu_seconds(b_pid)
    got, seconds = _transfer(topo, total)
    cpu = cpu_seconds(b_pid) - cpu0
    mb = got / 1e6
    return {"bytes": got, "seconds": seconds, "mb_per_s": mb / seconds, "b_cpu_ms_per_mb": cpu * 1000 / mb}


def run(quick: bool = False) -> str:
    why = _unavailable()
    title = "tunnel throughput, TCP bulk a -> b (AES-256-GCM, ESP in UDP)"
    if why:
        return f"{title}: SKIPPED: {why}"
    from tests.interop.harness import Lab
    from tests.interop.harness.scenarios import swan_conn, psk_secret

    total = (8 if quick else 64) * 1_000_000
    results = {}
    workdir = Path(tempfile.mkdtemp(prefix="pkt-bench-"))
    try:
        with Lab(workdir / "swan", prefix="pkt") as lab:
            a = lab.strongswan("a", conns=[swan_conn(lab.topo, "a", "initiator")], secrets=[psk_secret()],
                               name="charon-a", log_levels={"default": -1})
            b = lab.strongswan("b", conns=[swan_conn(lab.topo, "b", "responder")], secrets=[psk_secret()],
                               name="charon-b", log_levels={"default": -1})
            result = a.initiate("net", "s2s")
            if not result:
                raise RuntimeError(f"strongSwan pair did not come up: {result}")
            results["strongSwan kernel-libipsec"] = _measure(lab.topo, total, b.pid)
        with Lab(workdir / "pyiked", prefix="pkt") as lab:
            s2s = lab.swan_to_pyiked(args=["--backend", "userspace", "-6"], verbosity="")
            result = s2s.initiate()
            if not result:
                raise RuntimeError(f"strongSwan -> pyiked did not come up: {result}")
            results["pyiked userspace ESP"] = _measure(lab.topo, total, s2s.iked.pid)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    base = results["strongSwan kernel-libipsec"]
    rows = [[name, r["bytes"] // 1_000_000, r["mb_per_s"], r["b_cpu_ms_per_mb"],
             r["b_cpu_ms_per_mb"] / base["b_cpu_ms_per_mb"]] for name, r in results.items()]
    write_result("tunnel", {"total_bytes": total, "results": results}, quick)
    return table(title, ["b side", "MB", "MB/s", "b CPU ms/MB", "vs strongSwan"], rows)


if __name__ == "__main__":
    print(run(main_args().quick))
