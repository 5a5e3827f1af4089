"""`pyiked demo` as root: two network namespaces, pyiked on each side, traffic through ESP.

Each daemon runs in its own thread that has joined its namespace (setns(2) applies per
thread, and threads it starts inherit it), with the userspace ESP data plane over a TUN
device. The demo pings from one protected network to the other through the tunnel, prints
both sides' SAs and the ping result, and removes everything it created.

    netns A: veth 10.231.250.1/24, lo 10.231.251.1   (protects 10.231.251.0/24)
    netns B: veth 10.231.250.2/24, lo 10.231.252.1   (protects 10.231.252.0/24)
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import subprocess
import threading
import time

from pyiked.config import parse_config_text
from pyiked.ctl.show import format_sas

from . import status
from .run import Daemon

CLONE_NEWNET = 0x40000000
OUTER = ("10.231.250.1", "10.231.250.2")
INNER = ("10.231.251.1", "10.231.252.1")

CONF = """\
set nomobike
ikev2 "demo" {mode} esp from {inner_me}/24 to {inner_peer}/24 \\
    local {me} peer {peer} \\
    ikesa enc aes-256-gcm prf hmac-sha2-256 group curve25519 \\
    childsa enc aes-256-gcm \\
    srcid {me_id} dstid {peer_id} psk "demo-psk-not-for-production"
"""


def _ip(*args) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


class Namespaces:
    def __init__(self):
        tag = os.urandom(2).hex()
        self.names = (f"pyikeddemo{tag}a", f"pyikeddemo{tag}b")
        self.veths = (f"pyd{tag}a", f"pyd{tag}b")

    def __enter__(self):
        a, b = self.names
        for ns in self.names:
            _ip("netns", "add", ns)
        try:
            _ip("link", "add", self.veths[0], "netns", a, "type", "veth", "peer", "name", self.veths[1], "netns", b)
            for ns, veth, outer, inner in zip(self.names, self.veths, OUTER, INNER):
                _ip("-n", ns, "link", "set", "lo", "up")
                _ip("-n", ns, "link", "set", veth, "up")
                _ip("-n", ns, "addr", "add", f"{outer}/24", "dev", veth)
                _ip("-n", ns, "addr", "add", f"{inner}/32", "dev", "lo")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        for ns in self.names:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def _setns(name: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    with open(f"/var/run/netns/{name}") as f:
        if libc.setns(f.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {name}")


class DaemonThread(threading.Thread):
    def __init__(self, netns: str, conf: str, name: str):
        super().__init__(name=name, daemon=True)
        self.netns, self.conf = netns, conf
        self.daemon_obj = None
        self.error = None
        self.ready = threading.Event()
        self._loop = None
        self._stopping = None

    def run(self):
        try:
            _setns(self.netns)
            config, _ = parse_config_text(self.conf, f"{self.name}.conf")
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self.daemon_obj = Daemon(config, backend="userspace", families=(4,))
            self.daemon_obj.start(self._loop)
            self._stopping = asyncio.Event()
        except BaseException as exc:  # reported by the main thread
            self.error = exc
            self.ready.set()
            return
        self.ready.set()
        self._loop.run_until_complete(self._stopping.wait())
        self._loop.run_until_complete(self.daemon_obj.shutdown(grace=0.5))
        self._loop.close()

    def stop(self):
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self.join(timeout=5)


def _up(d: DaemonThread) -> bool:
    engine = d.daemon_obj.engine if d.daemon_obj else None
    return bool(engine) and any(sa.state.value == "ESTABLISHED" and sa.children for sa in engine.ike_sas())


def main(timeout: float = 10.0) -> int:
    with Namespaces() as ns:
        confs = [
            CONF.format(mode=mode, me=OUTER[i], peer=OUTER[1 - i], inner_me=INNER[i].rsplit(".", 1)[0] + ".0",
                        inner_peer=INNER[1 - i].rsplit(".", 1)[0] + ".0", me_id=f"{side}.demo.test",
                        peer_id=f"{'ab'[1 - i]}.demo.test")
            for i, (side, mode) in enumerate((("a", "active"), ("b", "passive")))
        ]
        responder = DaemonThread(ns.names[1], confs[1], "responder")
        initiator = DaemonThread(ns.names[0], confs[0], "initiator")
        responder.start()
        responder.ready.wait(10)
        initiator.start()
        initiator.ready.wait(10)
        try:
            for d in (responder, initiator):
                if d.error is not None:
                    raise d.error
            started = time.monotonic()
            while not (_up(initiator) and _up(responder)) and time.monotonic() - started < timeout:
                time.sleep(0.02)
            ok = _up(initiator) and _up(responder)
            ping = subprocess.run(
                ["ip", "netns", "exec", ns.names[0], "ping", "-c", "3", "-i", "0.2", "-W", "2", "-I", INNER[0], INNER[1]],
                capture_output=True, text=True) if ok else None
            nets = [inner.rsplit(".", 1)[0] + ".0/24" for inner in INNER]
            print(f"pyiked demo (root): netns {ns.names[0]} ({OUTER[0]}, protects {nets[0]}) <-> "
                  f"netns {ns.names[1]} ({OUTER[1]}, protects {nets[1]}), PSK, userspace ESP over TUN")
            for label, d in (("initiator", initiator), ("responder", responder)):
                print(format_sas(status.sas(d.daemon_obj.engine), f"== {label} (show sa)"))
                print()
            if ping is not None:
                print(f"$ ping -I {INNER[0]} {INNER[1]}   (through the tunnel)")
                print(ping.stdout.strip())
            if not ok:
                print(f"FAILED: no SA after {timeout:.0f} s")
                return 1
            return 0 if ping.returncode == 0 else 1
        finally:
            initiator.stop()
            responder.stop()
