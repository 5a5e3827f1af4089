"""Responders in a network namespace, driven by the load generator in another.

    with NetnsLab() as lab:                       # namespaces pkb<tag>a / pkb<tag>b
        r = lab.start_pyiked(profile)             # or lab.start_strongswan(profile)
        run = lab.drive(r, profile, count=1000, concurrency=64)
        r.stop()

The topology is the interop harness's (tests/interop/harness): a veth between the
generator's namespace a (10.231.0.1) and the responder's namespace b (10.231.0.2). With
two or more cores the responder (all its threads) is pinned to CPU 0 and the generator to
CPU 1, so CPU figures are per core and the two never compete. `drive` samples the
responder's CPU time (utime + stime of all threads, bench.common.cpu_seconds) and RSS
around one generator run.

The responders do the same work: pyiked runs its userspace ESP backend (the kernel here
has no ESP) and strongSwan its kernel-libipsec backend (userspace ESP too); both fake a
NAT so that the generator moves to port 4500, and both install a route per CHILD SA.
strongSwan runs quiet (no log lines), with dos_protection off and a hashed IKE SA table
(`ikesa_table_size`), as one tunes a concentrator; pyiked's DoS thresholds are set out of
reach in its iked.conf (bench.pair.responder_conf).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import cpu_seconds
from bench.pair import CERTS, GENERATOR_NET, PKI, PSK, RESPONDER_ID, RESPONDER_NET, responder_conf

REPO = Path(__file__).resolve().parents[1]
PREFIX = "pkb"
QUIET = {g: -1 for g in ("default", "ike", "cfg", "knl", "esp", "net", "chd", "enc", "job",
                         "mgr", "lib", "asn", "dmn", "tls", "tnc", "imc", "imv", "pts", "app")}
SWAN_SETTINGS = {
    "ikesa_table_size": 4096,
    "ikesa_table_segments": 16,
    "init_limit_half_open": 0,
    "init_limit_job_load": 0,
}


def unavailable() -> str | None:
    """Why the namespace part cannot run here (None when it can)."""
    try:
        from tests.interop.harness import missing_requirements
    except ImportError as exc:
        return f"the interop harness is not importable ({exc})"
    reasons = missing_requirements(("charon-systemd", "swanctl", "ip", "ss", "taskset"))
    return "; ".join(reasons) or None


def rss_of(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@dataclass
class Responder:
    kind: str  # "pyiked" / "strongswan"
    label: str  # for the table, with the version
    backend: str  # the SA backend it installs CHILD SAs with
    pid: int
    handle: object = field(repr=False)

    def stop(self) -> None:
        self.handle.stop()


class NetnsLab:
    def __init__(self, pin: bool = True):
        from tests.interop.harness import Lab

        self.dir = Path(tempfile.mkdtemp(prefix="pkb-bench-"))
        self.lab = Lab(self.dir, prefix=PREFIX)
        self.topo = self.lab.topo
        self.pin = pin and (os.cpu_count() or 1) >= 2
        self._count = 0

    def close(self) -> None:
        self.lab.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _pin(self, pid: int) -> None:
        if self.pin:
            subprocess.run(["taskset", "-a", "-p", "-c", "0", str(pid)], check=True,
                           capture_output=True)

    def _name(self, kind: str) -> str:
        self._count += 1
        return f"{kind}{self._count}"

    # -- responders --------------------------------------------------------------------

    def start_pyiked(self, profile) -> Responder:
        name = self._name("pyiked")
        args = ["--backend", "userspace", "-6"]
        if profile.certificates:
            args += ["--iked-dir", self._iked_dir(name)]
        iked = self.lab.pyiked("b", responder_conf(profile, self.topo.addr("b")), name=name,
                               verbosity="", args=args, no_extensions=None)
        self._pin(iked.pid)
        from pyiked import _fast

        mode = "compiled" if _fast.EXTENSIONS and not _fast.NO_EXTENSIONS else "pure"
        return Responder("pyiked", f"pyiked ({mode})", "userspace ESP (TUN)", iked.pid, iked)

    def _iked_dir(self, name: str) -> str:
        """OpenIKED's layout (ca/, certs/, private/local.key) with the responder's
        certificate from the test PKI (bench.pair.CERTS)."""
        own, intermediates, ca = CERTS["responder"]
        root = self.dir / f"{name}-iked"
        for sub in ("ca", "certs", "private"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(PKI) / f"{ca}.crt", root / "ca")
        for cert in (own, *intermediates):
            shutil.copy(Path(PKI) / f"{cert}.crt", root / "certs")
        shutil.copy(Path(PKI) / f"{own}.key", root / "private" / "local.key")
        os.chmod(root / "private" / "local.key", 0o600)
        return str(root)

    def start_strongswan(self, profile) -> Responder:
        from tests.interop.harness import Auth, Child, Conn, Secret

        creds = {"secrets": [Secret.psk(PSK)]}
        local, remote = Auth.psk(RESPONDER_ID), Auth.psk()
        if profile.certificates:
            own, intermediates, ca = CERTS["responder"]
            pki = Path(PKI)
            local = Auth.pubkey(profile.responder_id, cert=pki / f"{own}.crt")
            remote = Auth.pubkey(cacerts=[pki / f"{ca}.crt"])
            creds = {"keys": [pki / f"{own}.key"],
                     "cacerts": [pki / f"{c}.crt" for c in (ca, *intermediates)]}
        conn = Conn(
            "bench", local_addrs=[self.topo.addr("b")], local=local, remote=remote,
            proposals=[profile.swan_ike], role="responder",
            children=[Child("net", local_ts=[RESPONDER_NET], remote_ts=[GENERATOR_NET],
                            esp_proposals=[profile.swan_esp])],
        )
        swan = self.lab.strongswan("b", conns=[conn], name=self._name("charon"), dos_protection=False,
                                   log_levels=QUIET, settings=SWAN_SETTINGS, **creds)
        self._pin(swan.pid)
        version = swan.request("version").get("version", "?")
        backend = "kernel-libipsec (userspace ESP)" if "kernel-libipsec" in swan.plugins else "kernel-netlink"
        return Responder("strongswan", f"strongSwan {version}", backend, swan.pid, swan)

    # -- load ----------------------------------------------------------------------------

    def drive(self, responder: Responder, profile, count, concurrency, delete=False,
              warmup=20, rate=None, forget=False, time_limit=120.0) -> dict:
        """One generator run: `warmup` SAs first, then `count` timed ones. The responder's
        CPU time and RSS are sampled around the timed part only (the generator waits for
        the go-ahead in between)."""
        offset = self._count * 1_000_000
        argv = [sys.executable, "-m", "bench.loadgen", "--peer", self.topo.addr("b"),
                "--profile", profile.name, "--count", count, "--concurrency", concurrency,
                "--offset", offset, "--time-limit", time_limit, "--warmup", max(1, warmup)]
        if rate:
            argv += ["--rate", rate]
        if delete:
            argv.append("--delete")
        if forget:
            argv.append("--forget")
        if self.pin:
            argv = ["taskset", "-c", "1", *argv]
        proc = subprocess.Popen(self.topo.cmd("a", argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=REPO, start_new_session=True,
                                env=dict(os.environ, PYTHONPATH=str(REPO)))
        try:
            warm = proc.stdout.readline()
            if not warm.startswith('{"warm"'):
                raise RuntimeError(f"load generator failed: {warm}{proc.stderr.read()[-2000:]}")
            _settle(responder.pid)
            cpu0, rss0 = cpu_seconds(responder.pid), rss_of(responder.pid)
            out, err = proc.communicate("go\n", timeout=time_limit + 30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        try:
            run = json.loads(out.strip().splitlines()[-1])
        except (IndexError, ValueError):
            raise RuntimeError(f"load generator failed (rc={proc.returncode}): {err[-2000:]}") from None
        _settle(responder.pid)
        run["responder_cpu_seconds"] = cpu_seconds(responder.pid) - cpu0
        run["responder_rss_before"] = rss0
        run["responder_rss_after"] = rss_of(responder.pid)
        return run


def _settle(pid: int, timeout: float = 3.0) -> None:
    """Wait until the responder is idle (no CPU tick in 100 ms): its last installs done."""
    end = time.monotonic() + timeout
    last = cpu_seconds(pid)
    while time.monotonic() < end:
        time.sleep(0.1)
        now = cpu_seconds(pid)
        if now == last:
            return
        last = now
