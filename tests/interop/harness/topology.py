"""Two network namespaces joined by a veth pair, with an "inner" network behind each.

    netns <prefix><tag>a                          netns <prefix><tag>b
    <prefix><tag>va 10.231.0.1/24 <--- veth --->  <prefix><tag>vb 10.231.0.2/24
    lo 10.231.1.1/32 (stands for 10.231.1.0/24)   lo 10.231.2.1/32 (10.231.2.0/24)

The tag is 4 random hex digits, drawn again whenever `ip netns add` finds the name taken,
so parallel runs and other users never collide. The veth pair is created directly inside
the two namespaces and never appears in the root namespace. Nodes are named "a" and "b";
every method also accepts the full namespace name.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import signal
import subprocess
from dataclasses import dataclass

from .util import HarnessError, Proc, need_tool, run, wait_for

DEFAULTS = {
    "outer_a": "10.231.0.1/24",
    "outer_b": "10.231.0.2/24",
    "inner_a": ("10.231.1.1/32",),
    "inner_b": ("10.231.2.1/32",),
}


@dataclass
class PingResult:
    """Outcome of `Topology.ping`; truthy when every echo request was answered."""

    sent: int
    received: int
    output: str

    def __bool__(self):
        return self.sent > 0 and self.received == self.sent


def _ifaces(value) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    out = []
    for v in value:
        iface = ipaddress.ip_interface(v if "/" in v else f"{v}/32")
        out.append(str(iface))
    return tuple(out)


class Topology:
    """Two namespaces "a" and "b" on one veth link; `up()` builds it, `down()` removes it.

    Addresses are parameters (CIDR strings; the inner ones a string or a sequence, each
    put on lo). `run`/`popen`/`ping` execute inside a namespace; processes from `popen` are
    tracked and stopped by `down()`, which then kills any process still left in the two
    namespaces (only descendants of ours can be there: nobody else knows the names) and
    deletes them. Use as a context manager or through the `topology` fixture.
    """

    def __init__(
        self,
        outer_a: str = DEFAULTS["outer_a"],
        outer_b: str = DEFAULTS["outer_b"],
        inner_a=DEFAULTS["inner_a"],
        inner_b=DEFAULTS["inner_b"],
        prefix: str = "pyk",
        mtu: int | None = None,
    ):
        if len(prefix) > 8 or not re.fullmatch(r"[a-z][a-z0-9]*", prefix):
            raise ValueError("prefix: up to 8 lowercase letters/digits")
        self.prefix = prefix
        self.outer = {"a": str(ipaddress.ip_interface(outer_a)),
                      "b": str(ipaddress.ip_interface(outer_b))}
        self.inner = {"a": _ifaces(inner_a), "b": _ifaces(inner_b)}
        self.mtu = mtu
        self.tag: str | None = None
        self.procs: list[Proc] = []
        self._created: list[str] = []
        self._ip = need_tool("ip")

    # ------------------------------------------------------------------ names
    @property
    def ns_a(self) -> str:
        return f"{self.prefix}{self.tag}a"

    @property
    def ns_b(self) -> str:
        return f"{self.prefix}{self.tag}b"

    def ns(self, node: str) -> str:
        """Namespace name of node "a"/"b" (a full namespace name is returned as is)."""
        if node == "a":
            return self.ns_a
        if node == "b":
            return self.ns_b
        if node in (self.ns_a, self.ns_b):
            return node
        raise ValueError(f"unknown node {node!r}")

    def node(self, node: str) -> str:
        """"a" or "b" for a node or namespace name."""
        return "a" if self.ns(node) == self.ns_a else "b"

    def peer(self, node: str) -> str:
        return "b" if self.node(node) == "a" else "a"

    def veth(self, node: str) -> str:
        """The veth end inside node's namespace (<= 15 characters)."""
        return f"{self.prefix}{self.tag}v{self.node(node)}"

    def addr(self, node: str) -> str:
        """Node's outer (veth) address, without prefix length: where IKE runs."""
        return self.outer[self.node(node)].split("/")[0]

    def inner_addr(self, node: str) -> str:
        """Node's first inner address (on lo): a host of the protected network."""
        return self.inner[self.node(node)][0].split("/")[0]

    def inner_net(self, node: str, prefixlen: int = 24) -> str:
        """The protected network around the first inner address, 10.231.1.0/24 by default."""
        ip = ipaddress.ip_interface(f"{self.inner_addr(node)}/{prefixlen}")
        return str(ip.network)

    # ------------------------------------------------------------------ lifecycle
    def up(self) -> Topology:
        for _ in range(20):
            self.tag = secrets.token_hex(2)
            try:
                self._add_netns(self.ns_a)
            except _Taken:
                continue
            try:
                self._add_netns(self.ns_b)
            except _Taken:
                self.down()
                self._created = []
                continue
            break
        else:
            raise HarnessError("no free namespace name after 20 tries")
        try:
            self._build()
        except BaseException:
            self.down()
            raise
        return self

    def _add_netns(self, name: str) -> None:
        cp = run([self._ip, "netns", "add", name], check=False)
        if cp.returncode != 0:
            if "File exists" in cp.stderr:
                raise _Taken(name)
            raise HarnessError(f"ip netns add {name}: {cp.stderr.strip()}")
        self._created.append(name)

    def _build(self) -> None:
        ip = self._ip
        a, b = self.ns_a, self.ns_b
        va, vb = self.veth("a"), self.veth("b")
        run([ip, "-n", a, "link", "add", va, "type", "veth", "peer", "name", vb, "netns", b])
        for ns, dev, node in ((a, va, "a"), (b, vb, "b")):
            run([ip, "-n", ns, "link", "set", "lo", "up"])
            if self.mtu:
                run([ip, "-n", ns, "link", "set", dev, "mtu", str(self.mtu)])
            run([ip, "-n", ns, "addr", "add", self.outer[node], "dev", dev])
            for inner in self.inner[node]:
                run([ip, "-n", ns, "addr", "add", inner, "dev", "lo"])
            run([ip, "-n", ns, "link", "set", dev, "up"])
        # the veth carrier and IPv4 DAD-free addresses are up at once, but ARP may take a
        # moment on a loaded machine: poll instead of sleeping
        wait_for(lambda: self.ping("a", self.addr("a"), self.addr("b"), count=1, wait=1),
                 10, f"{a} -> {b} over the veth")

    def down(self) -> None:
        """Stop our processes, kill whatever is left in our namespaces, delete them."""
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()
        for ns in reversed(self._created):
            self._kill_leftovers(ns)
            run([self._ip, "netns", "del", ns], check=False)
        self._created.clear()

    def _kill_leftovers(self, ns: str) -> None:
        # Only our own processes (or their children) can be in a namespace with our
        # random name; they are killed by pid, never by name.
        def pids():
            cp = run([self._ip, "netns", "pids", ns], check=False)
            return [int(p) for p in cp.stdout.split()] if cp.returncode == 0 else []

        for sig in (signal.SIGTERM, signal.SIGKILL):
            left = pids()
            if not left:
                return
            for pid in left:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            try:
                wait_for(lambda: not pids(), 3, f"processes in {ns} to exit")
                return
            except HarnessError:
                continue

    def __enter__(self):
        return self.up()

    def __exit__(self, *exc):
        self.down()

    def __repr__(self):
        return f"<Topology {self.ns_a} {self.outer['a']} <-> {self.ns_b} {self.outer['b']}>"

    # ------------------------------------------------------------------ running things
    def cmd(self, node: str, argv) -> list[str]:
        """argv prefixed with `ip netns exec <ns>` (which execs: the pid is the program's)."""
        if isinstance(argv, str):
            argv = ["sh", "-c", argv]
        return [self._ip, "netns", "exec", self.ns(node), *map(str, argv)]

    def run(self, node: str, argv, check: bool = True, timeout: float = 30.0,
            **kw) -> subprocess.CompletedProcess:
        """Run a command in node's namespace to completion; text stdout/stderr captured.

        argv is a list, or a string run by `sh -c`. check=True raises HarnessError with
        the output when it fails.
        """
        return run(self.cmd(node, argv), check=check, timeout=timeout, **kw)

    def popen(self, node: str, argv, log_path, env=None, cwd=None, name=None) -> Proc:
        """Start a long-running process in node's namespace (output to log_path).

        The process is tracked: `down()` stops it if the caller did not.
        """
        if name is None:
            name = "sh" if isinstance(argv, str) else str(argv[0]).rsplit("/", 1)[-1]
        proc = Proc(self.cmd(node, argv), log_path, env=env, cwd=cwd, name=name)
        self.procs.append(proc)
        return proc

    def forget(self, proc: Proc) -> None:
        """Stop tracking a process the caller stopped itself."""
        if proc in self.procs:
            self.procs.remove(proc)

    def ping(self, node: str, src: str, dst: str, count: int = 2, wait: float = 2,
             interval: float = 0.2, size: int | None = None) -> PingResult:
        """ICMP echo from `src` (an address of node) to `dst`; truthy if all answered."""
        argv = ["ping", "-n", "-c", str(count), "-W", str(wait), "-i", str(interval),
                "-I", src]
        if size is not None:
            argv += ["-s", str(size)]
        cp = self.run(node, [*argv, dst], check=False, timeout=count * (wait + interval) + 10)
        out = cp.stdout + cp.stderr
        m = re.search(r"(\d+) packets transmitted, (\d+) (?:packets )?received", out)
        sent, received = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
        return PingResult(sent, received, out)

    def udp_listening(self, node: str, port: int) -> bool:
        """True when some socket in node's namespace is bound to UDP `port`."""
        cp = self.run(node, ["ss", "-Hunl", f"sport = :{port}"], check=False)
        return cp.returncode == 0 and bool(cp.stdout.strip())

    def wait_udp_listening(self, node: str, port: int, timeout: float = 10.0,
                           proc: Proc | None = None) -> None:
        """Wait until UDP `port` is bound in node's namespace (fail early if proc died)."""

        def ready():
            if proc is not None and not proc.running:
                raise HarnessError(f"{proc.name} exited (rc={proc.returncode}) before "
                                   f"binding UDP {port}:\n{proc.log()[-3000:]}")
            return self.udp_listening(node, port)

        wait_for(ready, timeout, f"UDP port {port} bound in {self.ns(node)}")


class _Taken(Exception):
    pass
