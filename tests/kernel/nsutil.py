"""Network namespaces for the root tests: names start with `pkk-`, addresses lie in
10.231.40.0/21. Objects (sockets, TUN fds, IPRoute) created inside `inside(name)` stay in
that namespace after the block ends."""

from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def sh(*args, check=True, ns=None, **kw) -> subprocess.CompletedProcess:
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=30, **kw)


def _setns(fd: int):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def inside(name: str):
    """Run the block with this thread in netns `name`."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
    try:
        _setns(target)
        yield
    finally:
        _setns(home)
        os.close(target)
        os.close(home)


def create(name: str):
    assert name.startswith("pkk-")
    sh("ip", "netns", "del", name, check=False)
    sh("ip", "netns", "add", name)
    sh("ip", "link", "set", "lo", "up", ns=name)


def delete(name: str):
    assert name.startswith("pkk-")
    sh("ip", "netns", "del", name, check=False)


def veth(a_ns: str, a_if: str, a_addr: str, b_ns: str, b_if: str, b_addr: str):
    """A veth pair between two namespaces, addresses with prefix (e.g. 10.231.40.1/24)."""
    assert a_if.startswith("pkk-") and b_if.startswith("pkk-")
    sh("ip", "link", "add", a_if, "netns", a_ns, "type", "veth", "peer", "name", b_if, "netns", b_ns)
    for ns, ifname, addr in ((a_ns, a_if, a_addr), (b_ns, b_if, b_addr)):
        sh("ip", "addr", "add", addr, "dev", ifname, ns=ns)
        sh("ip", "link", "set", ifname, "up", ns=ns)
