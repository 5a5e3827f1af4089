"""Spoofed IKE_SA_INIT flood against the pyiked daemon: cost per datagram and legitimate
handshakes during the flood, compiled vs pure.

Two network namespaces (prefix pkl, 10.231.0.0/16). In b the daemon runs as a responder
(`--backend memory`, default DoS settings: cookies above 100 half-open SAs). In a,
bench/floodgen.py sends IKE_SA_INIT requests from addresses all over 10.231.128.0/17
through a raw socket, as fast as it can, while bench/floodlegit.py runs real
handshakes (pyiked's initiator engine) at a steady rate. Figures, per mode:

  flood rate        datagrams/s the generator reached (stated: it is the load)
  received          datagrams the kernel delivered to the daemon's socket (/proc/net/snmp
                    InDatagrams in b), and those it dropped because the socket buffer was
                    full (RcvbufErrors)
  us/datagram       the daemon's CPU time (utime+stime) during the flood / received
  legit             handshakes completed / started during the flood
  RSS               the daemon's memory before and after

and, in-process, the engine alone on the same datagrams (cookie mode on): us/datagram
compiled vs pure, and a cProfile of the pure path listing every function it calls (no
wire.decode, no Message). Needs root (namespaces, raw socket); otherwise only the
in-process part runs.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from bench.common import cpu_seconds, table, write_result

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ""  # OpenIKED-style `set` lines; empty: pyiked's defaults


def _conf(topo) -> str:
    return (f'{SETTINGS}ikev2 "resp" passive esp from 10.231.2.0/24 to 10.231.1.0/24 '
            f'local {topo.addr("b")} peer any srcid b.pk.test dstid a.pk.test '
            f'psk "pk-test-psk-0123456789"\n')


def _snmp(topo) -> dict:
    lines = [ln.split() for ln in topo.run("b", ["cat", "/proc/net/snmp"]).stdout.splitlines()
             if ln.startswith("Udp:")]
    return dict(zip(lines[0][1:], map(int, lines[1][1:])))


def _rss_kib(pid) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _env(pure: bool) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("PYIKED_NO_EXTENSIONS", None)
    if pure:
        env["PYIKED_NO_EXTENSIONS"] = "1"
    return env


class FloodNet:
    """Namespaces a and b (prefix pkl) with the reply path set up (see network_run)."""

    def __init__(self, nic: bool):
        sys.path.insert(0, str(ROOT))
        from tests.interop.harness.topology import Topology

        self.topo = topo = Topology(prefix="pkl").up()
        try:
            # replies to the spoofed sources leave b towards a, where nobody takes them
            topo.run("b", ["ip", "route", "add", "10.231.128.0/17", "via", topo.addr("a")])
            if nic:
                # a veth end whose peer is down stands in for a NIC: the reply goes through
                # the whole send path and the driver's transmit, which drops it
                out, peer = f"{topo.prefix}{topo.tag}x0", f"{topo.prefix}{topo.tag}x1"
                topo.run("b", ["ip", "link", "add", out, "type", "veth", "peer", "name", peer])
                topo.run("b", ["ip", "link", "set", out, "up"])
                topo.run("b", ["ip", "neigh", "add", "10.231.255.1", "lladdr", "02:00:00:00:00:01", "dev",
                               out, "nud", "permanent"])
                topo.run("b", ["ip", "route", "replace", "10.231.128.0/17", "via", "10.231.255.1", "dev", out,
                               "onlink"])
        except BaseException:
            topo.down()
            raise

    def generator(self, seconds, workdir, env):
        return self.topo.popen("a", [sys.executable, "-m", "bench.floodgen", self.topo.addr("b"), seconds],
                               workdir / "gen.log", env=env, cwd=ROOT, name="floodgen")

    def close(self):
        self.topo.down()


def _last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def network_run(pure: bool, seconds: float, legit_rate: float, workdir: Path, nic: bool = True) -> dict:
    """One flood against one daemon. nic=True sends the cookie replies to the spoofed
    addresses out of an interface that transmits them into the void, as a NIC would send
    them away; nic=False routes them back to a, whose kernel then receives and discards
    each one on the daemon's CPU (a cost a real responder does not pay: the worst case)."""
    from tests.interop.harness.util import wait_for

    net = FloodNet(nic)
    topo = net.topo
    try:
        conf = workdir / f"iked-{'pure' if pure else 'c'}.conf"
        conf.write_text(_conf(topo))
        os.chmod(conf, 0o600)
        env = _env(pure)
        daemon = topo.popen("b", [sys.executable, "-m", "pyiked.daemon.cli", "-d", "-f", conf,
                                  "-s", workdir / "pkl.sock", "--backend", "memory", "-6"],
                            workdir / "daemon.log", env=env, cwd=ROOT, name="pyiked")
        topo.wait_udp_listening("b", 500, 20, proc=daemon)
        legit_argv = [sys.executable, "-m", "bench.floodlegit", topo.addr("a"), topo.addr("b")]
        warmup = _last_json(topo.run("a", legit_argv + ["5", "1", "--deadline", "10"], env=env, cwd=ROOT,
                                     timeout=60).stdout)
        time.sleep(0.5)
        rss0, cpu0, snmp0 = _rss_kib(daemon.pid), cpu_seconds(daemon.pid), _snmp(topo)
        gen = net.generator(seconds, workdir, env)
        time.sleep(1.0)  # the generator builds its packets first; legit starts inside the flood
        legit = topo.popen("a", legit_argv + [legit_rate, seconds - 2, "--deadline", "25"],
                           workdir / "legit.log", env=env, cwd=ROOT, name="floodlegit")
        wait_for(lambda: not gen.running, seconds + 60, "the flood generator to finish")
        last = [cpu_seconds(daemon.pid)]

        def idle():  # the daemon drained its socket: its CPU time stops growing
            time.sleep(0.3)
            now = cpu_seconds(daemon.pid)
            quiet, last[0] = now - last[0] < 0.02, now
            return quiet

        wait_for(idle, 30, "the daemon to drain")
        cpu1, snmp1, rss1 = cpu_seconds(daemon.pid), _snmp(topo), _rss_kib(daemon.pid)
        wait_for(lambda: not legit.running, 60, "the legitimate initiators to finish")
        flood, result = _last_json(gen.log()), _last_json(legit.log())
        received = snmp1["InDatagrams"] - snmp0["InDatagrams"]
        cpu = cpu1 - cpu0
        log = (workdir / "daemon.log").read_text(errors="replace")
        daemon.stop()
        return {
            "replies": "nic" if nic else "to a", "flood_rate": flood["rate"], "flood_sent": flood["sent"],
            "received": received, "dropped_rcvbuf": snmp1["RcvbufErrors"] - snmp0["RcvbufErrors"],
            "cpu_s": cpu, "us_per_datagram": cpu / received * 1e6 if received else None,
            "legit_started": result["started"], "legit_completed": result["completed"],
            "legit_share": result["completed"] / result["started"] if result["started"] else None,
            "legit_median_s": result["median_s"], "legit_p95_s": result["p95_s"],
            "rss_kib_before": rss0, "rss_kib_after": rss1, "warmup": warmup,
            "cookie_mode_logged": "cookie mode on" in log,
        }
    finally:
        net.close()


def kernel_floor(pure: bool, seconds: float, workdir: Path) -> dict:
    """The same flood read by a loop that only receives, and replies sent by a loop that
    only sends (NIC reply path): the system's share of each flood datagram."""
    from tests.interop.harness.util import wait_for

    net = FloodNet(True)
    topo = net.topo
    try:
        env = _env(pure)
        reader = topo.popen("b", [sys.executable, "-m", "bench.floodfloor", "recv", seconds],
                            workdir / "floor.log", env=env, cwd=ROOT, name="floodfloor")
        wait_for(lambda: '"ready"' in reader.log(), 20, "the floor reader")
        gen = net.generator(seconds, workdir, env)
        wait_for(lambda: not gen.running, seconds + 60, "the flood generator to finish")
        wait_for(lambda: not reader.running, 60, "the floor reader to finish")
        received = _last_json(reader.log())
        sent = _last_json(topo.run("b", [sys.executable, "-m", "bench.floodfloor", "send", 200000],
                                   env=env, cwd=ROOT, timeout=120).stdout)
        return {"recv_us": received["us_per_datagram"], "send_us": sent["us_per_datagram"],
                "us_per_datagram": received["us_per_datagram"] + sent["us_per_datagram"]}
    finally:
        net.close()


# -- in process ---------------------------------------------------------------------------

def _engine_and_datagrams(count=4096):
    sys.path.insert(0, str(ROOT))
    from tests.engine.floodkit import spoofed
    from tests.engine.test_cookies import responder

    return responder(cookie_threshold=0), spoofed(count)


def engine_cost(module_name: str, n: int) -> float:
    """us per flood datagram through Engine.receive_datagram (cookie mode), this process."""
    engine, items = _engine_and_datagrams()
    recv = engine.receive_datagram
    local = ("10.231.0.2", 500)
    mask = len(items) - 1
    start = time.process_time()
    for i in range(n):
        data, src = items[i & mask]
        recv(data, local, src, 1.0)
        if i & 255 == 255:
            engine.datagrams_to_send()
    return (time.process_time() - start) / n * 1e6


def _engine_cost_subprocess(pure: bool, n: int) -> float:
    import subprocess

    code = f"from bench.flood import engine_cost; print(engine_cost('{'py' if pure else 'c'}', {n}))"
    out = subprocess.run([sys.executable, "-c", code], env=_env(pure), cwd=ROOT, capture_output=True,
                         text=True, check=True)
    return float(out.stdout.strip())


_PROFILE = """
import cProfile, pstats, socket, sys
from bench.flood import _engine_and_datagrams
from pyiked._fast import udp
engine, items = _engine_and_datagrams()
rx_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rx_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
rx_sock.setsockopt(socket.IPPROTO_IP, 8, 1)
rx_sock.bind(("127.0.0.1", 0)); rx_sock.setblocking(False)
tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); tx.bind(("127.0.0.1", 0)); tx.setblocking(False)
rx = udp.Receiver(rx_sock, 64, 65535, 500)
gate = engine.guard.fast_gate(1.0)
pr = cProfile.Profile()
for i in range({n}):
    data, src = items[i & 4095]
    if {where!r} == "engine":
        pr.enable(); engine.receive_datagram(data, ("10.231.0.2", 500), src, 1.0); pr.disable()
    else:
        tx.sendto(data, rx_sock.getsockname())
        if i & 63 == 63:
            pr.enable(); rx.recv(gate); pr.disable()
            try:
                while True: tx.recv(4096)
            except BlockingIOError: pass
st = pstats.Stats(pr)
for (f, line, name), (cc, nc, tt, ct, _) in sorted(st.stats.items(), key=lambda kv: -kv[1][2]):
    print(nc, round(tt * 1e6 / nc, 2), f.rsplit("/", 1)[-1] + ":" + name)
"""


def profile_pure(where: str, n: int = 4096) -> tuple[list, bool]:
    """cProfile of the pure cookie path, in the engine (admit_init) or at the socket
    (Receiver.recv with the gate, what the daemon runs in cookie mode): the rows (calls,
    us per call, function) and whether anything decoded a message or built a Message."""
    import subprocess

    out = subprocess.run([sys.executable, "-c", _PROFILE.format(n=n, where=where)], env=_env(True), cwd=ROOT,
                         capture_output=True, text=True, check=True)
    rows = [ln.split(" ", 2) for ln in out.stdout.strip().splitlines()]
    built = any("decode" in r[2] or "Message" in r[2] or "_chain" in r[2] for r in rows)
    return rows, built


def run(quick: bool) -> str:
    seconds = 6.0 if quick else 12.0
    n = 50_000 if quick else 200_000
    figures: dict = {"engine": {}, "network": {}, "floor": {}}
    for pure in (False, True):
        figures["engine"]["pure" if pure else "compiled"] = _engine_cost_subprocess(pure, n)
    profiles = {where: profile_pure(where) for where in ("socket", "engine")}
    figures["profile_pure"] = {where: rows for where, (rows, _) in profiles.items()}
    built = any(b for _, b in profiles.values())
    figures["cookie_path_builds_messages"] = built
    e = figures["engine"]
    rows = [["engine alone (in process)", "-", "-", "-", "-", f"{e['compiled']:.2f}", f"{e['pure']:.2f}", "-"]]
    if os.geteuid() == 0:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="pkl-flood-") as tmp:
            tmp = Path(tmp)
            runs = [("compiled", False, True), ("pure", True, True)]
            if not quick:
                runs.append(("compiled, replies to a", False, False))
            for name, pure, nic in runs:
                figures["network"][name] = network_run(pure, seconds, 10.0, tmp, nic=nic)
            for pure in (False, True):
                figures["floor"]["pure" if pure else "compiled"] = kernel_floor(pure, seconds, tmp)
        for name, r in figures["network"].items():
            c = not name.startswith("pure")
            floor = figures["floor"]["compiled" if c else "pure"]["us_per_datagram"]
            us = f"{r['us_per_datagram']:.2f}"
            rows.append([f"daemon {name}", f"{r['flood_rate']:,.0f}", f"{r['received']:,}",
                         f"{r['dropped_rcvbuf']:,}", f"{floor:.2f}", us if c else "-", "-" if c else us,
                         f"{r['legit_completed']}/{r['legit_started']} ({100 * r['legit_share']:.0f} %)"])
        c, p = figures["network"]["compiled"], figures["network"]["pure"]
        figures["ratio_pure_to_compiled"] = p["us_per_datagram"] / c["us_per_datagram"]
        figures["compiled_above_floor_us"] = c["us_per_datagram"] - figures["floor"]["compiled"]["us_per_datagram"]
    else:
        figures["network"] = "skipped: needs root (network namespaces, raw socket)"
    write_result("flood", figures, quick)
    out = table("flood: spoofed IKE_SA_INIT (cookie mode), CPU us per datagram the daemon received",
                ["path", "flood/s", "received", "dropped", "floor", "us C", "us py", "legit done"], rows)
    out += "\nfloor: the kernel alone (recvmmsg + sendmmsg of the reply, same code, nothing else)"
    for where, (prof, _) in profiles.items():
        out += f"\npure cookie path at the {where}, us per call (cProfile): " + \
            ", ".join(f"{r[2]} {r[1]}" for r in prof[:7])
    out += f"\ncookie path decodes or builds a Message: {built}"
    if isinstance(figures["network"], dict):
        for name, r in figures["network"].items():
            out += (f"\n{name}: daemon RSS {r['rss_kib_before']} -> {r['rss_kib_after']} KiB, legit median "
                    f"{r['legit_median_s']:.2f} s p95 {r['legit_p95_s']:.2f} s, cookie mode {r['cookie_mode_logged']}")
    return out


if __name__ == "__main__":
    from bench.common import main_args

    print(run(main_args().quick))
