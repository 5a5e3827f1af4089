"""Two pyiked daemons in network namespaces of their own, driven by pyikectl.

    netns pkx<tag>a  10.231.0.1/24 ---- veth ---- 10.231.0.2/24  netns pkx<tag>b
    initiator (active, "to-b")                    responder (passive, "to-a")

Each daemon is the real command line (`python -m pyiked.daemon.cli -d -v -f CONF -s SOCK
--backend memory`) started with NOTIFY_SOCKET pointing at a datagram socket of ours, so
"started" means READY=1 arrived (as systemd would see it). Processes are stopped by PID,
the namespaces are deleted at the end. The control sockets are files, so pyikectl runs in
the root namespace.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
A_IP, B_IP = "10.231.0.1", "10.231.0.2"
PSK = "pkx-control-test-psk-0123456789"

IKESA = "ikesa enc aes-256-gcm prf hmac-sha2-256 group curve25519 childsa enc aes-256-gcm"

CONF_A = f"""\
ikev2 "to-b" active esp from 10.231.1.0/24 to 10.231.2.0/24 \\
    local {A_IP} peer {B_IP} {IKESA} \\
    srcid a.pkx.test dstid b.pkx.test psk "{PSK}"
"""

CONF_B = f"""\
ikev2 "to-a" passive esp from 10.231.2.0/24 to 10.231.1.0/24 \\
    local {B_IP} peer {A_IP} {IKESA} \\
    srcid b.pkx.test dstid a.pkx.test psk "{PSK}"
"""


def run(*argv, check=True, **kw):
    return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=30, **kw)


def env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
    e["PYTHONUNBUFFERED"] = "1"
    return e


class Daemon:
    def __init__(self, pair: Pair, name: str, ns: str, conf: str, extra=(), wrapper=()):
        self.pair, self.name, self.ns = pair, name, ns
        self.dir = pair.tmp / name
        self.dir.mkdir()
        self.conf = self.dir / "iked.conf"
        self.write_conf(conf)
        self.sock = str(self.dir / "ctl.sock")
        self.log = self.dir / "daemon.log"
        self.extra = list(extra)
        self.wrapper = list(wrapper)
        self.proc = None

    def write_conf(self, text: str) -> None:
        self.conf.write_text(text)
        os.chmod(self.conf, 0o600)

    def start(self, timeout=20.0) -> None:
        notify_path = str(self.dir / "notify.sock")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(notify_path)
        notify.settimeout(timeout)
        e = env()
        e["NOTIFY_SOCKET"] = notify_path
        argv = ["ip", "netns", "exec", self.ns, *self.wrapper, sys.executable, "-m",
                "pyiked.daemon.cli", "-d", "-v", "-f", str(self.conf), "-s", self.sock,
                "--backend", "memory", "-6", *self.extra]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=e,
                                         cwd=REPO, start_new_session=True)
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    message = notify.recv(4096).decode()
                except TimeoutError:
                    break
                if "READY=1" in message.split("\n"):
                    self.ready_socket_existed = os.path.exists(self.sock)
                    return
            raise AssertionError(f"{self.name}: no READY=1; log:\n{self.log_text()}")
        finally:
            notify.close()
            os.unlink(notify_path)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        rc, self.proc = self.proc.returncode, None
        return rc

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    # -- pyikectl ----------------------------------------------------------------------------

    def ctl(self, *words, check=True) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-m", "pyiked.ctl.cli", "-s", self.sock, *words],
                                check=False, capture_output=True, text=True, timeout=30, env=env(),
                                cwd=REPO)
        if check and result.returncode != 0:
            raise AssertionError(f"pyikectl {' '.join(words)}: rc {result.returncode}\n"
                                 f"{result.stdout}{result.stderr}\nlog:\n{self.log_text()[-3000:]}")
        return result

    def ctl_json(self, *words):
        return json.loads(self.ctl(*words, "--json").stdout)

    def sas(self) -> list[dict]:
        return self.ctl_json("show", "sa")["sas"]

    def up(self) -> list[dict]:
        return [sa for sa in self.sas() if sa["state"] == "ESTABLISHED" and sa["children"]]

    def netns_python(self, code: str) -> str:
        return run("ip", "netns", "exec", self.ns, sys.executable, "-c", code, env=env()).stdout


class Pair:
    def __init__(self, tmp: Path, b_extra=(), b_wrapper=()):
        self.tmp = tmp
        tag = secrets.token_hex(2)
        self.ns_a, self.ns_b = f"pkx{tag}a", f"pkx{tag}b"
        self.namespaces = []
        for ns in (self.ns_a, self.ns_b):
            run("ip", "netns", "add", ns)
            self.namespaces.append(ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "-n", self.ns_a, "link", "add", f"pkx{tag}va", "type", "veth", "peer", "name",
            f"pkx{tag}vb", "netns", self.ns_b)
        for ns, dev, ip in ((self.ns_a, f"pkx{tag}va", A_IP), (self.ns_b, f"pkx{tag}vb", B_IP)):
            run("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
            run("ip", "-n", ns, "link", "set", dev, "up")
        self.b = Daemon(self, "b", self.ns_b, CONF_B, b_extra, b_wrapper)
        self.a = Daemon(self, "a", self.ns_a, CONF_A)

    def start(self) -> Pair:
        self.b.start()
        self.a.start()
        return self

    def wait(self, predicate, timeout=15.0, what="condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        raise AssertionError(f"{what} not reached\n--- a:\n{self.a.log_text()[-3000:]}\n"
                             f"--- b:\n{self.b.log_text()[-3000:]}")

    def both_up(self) -> bool:
        return len(self.a.up()) == 1 and len(self.b.up()) == 1

    def none(self) -> bool:
        return not self.a.sas() and not self.b.sas()

    def ensure_up(self) -> None:
        if not self.both_up():
            self.a.ctl("active")
            self.wait(self.both_up, what="IKE SA up on both daemons")

    def close(self) -> None:
        for daemon in (self.a, self.b):
            daemon.stop()
        for ns in self.namespaces:
            run("ip", "netns", "del", ns, check=False)
