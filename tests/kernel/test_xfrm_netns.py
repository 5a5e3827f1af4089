"""XfrmBackend against this machine's kernel, in namespace pkk-x: policies install and go
away for real, ESP SAs are refused with a message naming what is missing, real ACQUIRE
and EXPIRE messages come back as notices, stale entries are cleaned up, IKE sockets bypass
the policies."""

import errno
import ipaddress
import socket
import time

import pytest

from pyiked.core.events import KernelAcquire, KernelExpire
from pyiked.core.ts import TS
from pyiked.kernel import xfrm
from pyiked.kernel.base import KernelError
from tests import sa_events as ev

from . import nsutil as ns

LOCAL, REMOTE = ipaddress.ip_address("10.231.40.1"), ipaddress.ip_address("10.231.40.2")
TS_L, TS_R = (TS.from_network("10.231.41.0/24"),), (TS.from_network("10.231.42.0/24"),)


@pytest.fixture
def net(netns):
    """pkk-x with a veth towards a 'peer' address and the protected subnet on lo."""
    ns.sh("ip", "link", "add", "pkk-x0", "type", "veth", "peer", "name", "pkk-x1", ns=netns)
    for ifname in ("pkk-x0", "pkk-x1"):
        ns.sh("ip", "link", "set", ifname, "up", ns=netns)
    ns.sh("ip", "addr", "add", "10.231.40.1/24", "dev", "pkk-x0", ns=netns)
    ns.sh("ip", "addr", "add", "10.231.41.1/24", "dev", "lo", ns=netns)
    ns.sh("ip", "route", "add", "10.231.42.0/24", "via", "10.231.40.2", ns=netns)
    ns.sh("sh", "-c", "echo 1 > /proc/sys/net/core/xfrm_acq_expires", ns=netns)
    return netns


def backend_in(netns, **kw):
    with ns.inside(netns):
        return xfrm.XfrmBackend(reqid_range=(100, 199), **kw)


def policies(netns):
    return ns.sh("ip", "-o", "xfrm", "policy", "list", ns=netns).stdout.strip().splitlines()


def states(netns):
    return ns.sh("ip", "-o", "xfrm", "state", "list", ns=netns).stdout.strip().splitlines()


def wait_notices(backend, want, timeout=5.0):
    got, deadline = [], time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        got += backend.notices()
        time.sleep(0.05)
    return got


def ip_can_add_esp(netns) -> bool:
    """The oracle: can `ip xfrm` install a CBC + HMAC ESP SA here?"""
    done = ns.sh("ip", "xfrm", "state", "add", "src", "10.231.40.1", "dst", "10.231.40.2", "proto",
                 "esp", "spi", "0x100", "mode", "tunnel", "enc", "cbc(aes)", "0x" + "11" * 16,
                 "auth-trunc", "hmac(sha256)", "0x" + "22" * 32, "128", ns=netns, check=False)
    ns.sh("ip", "xfrm", "state", "flush", ns=netns)
    return done.returncode == 0


def test_esp_probe_agrees_with_ip_xfrm(net):
    with ns.inside(net):
        assert xfrm.kernel_has_esp() is ip_can_add_esp(net)
    assert states(net) == []  # the probe leaves nothing behind


def test_trap_policies_install_and_remove(net):
    backend = backend_in(net)
    try:
        backend.install_trap(101, TS_L, TS_R, LOCAL, REMOTE)
        lines = policies(net)
        assert len(lines) == 3
        text = "\n".join(lines)
        for direction in ("in", "out", "fwd"):
            assert f"dir {direction} " in text
        out = [l for l in lines if "dir out" in l][0]
        assert "src 10.231.41.0/24 dst 10.231.42.0/24" in out
        assert "tmpl src 10.231.40.1 dst 10.231.40.2" in out and "reqid 101 mode tunnel" in out
        backend.remove_trap(101)
        assert policies(net) == []
    finally:
        backend.close()


def test_esp_sa_refused_with_the_missing_support_named(net):
    if ip_can_add_esp(net):
        pytest.skip("this kernel has ESP")
    backend = backend_in(net)
    try:
        event = ev.install("aes256gcm16")
        with pytest.raises(KernelError) as info:
            backend.install(event)
        assert info.value.errno == errno.ENOSYS  # no gcm(aes) in this kernel's crypto
        assert "kernel lacks ESP (CONFIG_INET_ESP)" in str(info.value)
        assert "CONFIG_CRYPTO_GCM" in str(info.value)
        event = ev.install("aes128-sha256")
        with pytest.raises(KernelError) as info:
            backend.install(event)
        assert info.value.errno == errno.EPROTONOSUPPORT  # cbc(aes) is here, ESP is not
        assert "kernel lacks ESP (CONFIG_INET_ESP" in str(info.value)
        assert "Requested type not found" in str(info.value)  # the kernel's own words
        assert states(net) == [] and policies(net) == []  # nothing left half-installed
    finally:
        backend.close()


def test_allocspi_reserves_and_close_releases(net):
    backend = backend_in(net)
    spi = backend.allocate_spi(3, REMOTE, LOCAL)
    assert xfrm.DEFAULT_SPI_RANGE[0] <= spi <= xfrm.DEFAULT_SPI_RANGE[1]
    assert any(f"spi 0x{spi:08x}" in line for line in states(net))
    other = backend.allocate_spi(3, REMOTE, LOCAL)
    assert other != spi
    # GETSA finds the reserved SA and reads its counters
    assert backend.query(LOCAL, spi) == {"bytes": 0, "packets": 0, "add_time": pytest.approx(time.time(), abs=60),
                                         "use_time": 0}
    with pytest.raises(KernelError, match="not in the kernel"):
        backend.query(LOCAL, 0x1234)
    backend.close()
    assert states(net) == []


def test_real_acquire_from_a_trap(net):
    backend = backend_in(net)
    try:
        backend.install_trap(101, TS_L, TS_R, LOCAL, REMOTE)
        ns.sh("ping", "-c1", "-W1", "-I", "10.231.41.1", "10.231.42.7", ns=net, check=False)
        notices = wait_notices(backend, 1)
        acquires = [n for n in notices if isinstance(n, KernelAcquire)]
        assert acquires and acquires[0].reqid == 101
        assert acquires[0].ts_local.start_addr == ipaddress.ip_address("10.231.41.1")
        assert acquires[0].ts_remote.start_addr == ipaddress.ip_address("10.231.42.7")
        # the ACQUIRE's larval SA then expires (xfrm_acq_expires = 1 s): not reported
        time.sleep(1.5)
        assert [n for n in backend.notices() if isinstance(n, KernelExpire)] == []
    finally:
        backend.close()


def test_real_expire_reaches_the_engine(net):
    backend = backend_in(net)
    try:
        # an SA with one of our reqids that the kernel expires (a larval one: this kernel
        # cannot hold a full ESP SA, but every SA type expires through the same message)
        out = ns.sh("ip", "xfrm", "state", "allocspi", "src", "10.231.40.2", "dst", "10.231.40.1",
                    "proto", "esp", "reqid", "150", "mode", "tunnel", ns=net).stdout
        spi = int(out.split("spi ")[1].split()[0], 16)
        notices = wait_notices(backend, 1, timeout=4)
        assert KernelExpire(protocol=3, spi=spi, dst=LOCAL, hard=True) in notices
        # one of our own, never installed: the reservation just lapses
        backend.allocate_spi(3, REMOTE, LOCAL)
        time.sleep(2)
        assert backend.notices() == []
    finally:
        backend.close()


def test_start_cleans_stale_entries_in_our_range_only(net):
    for reqid, net_r in ((150, "10.231.42.0/24"), (300, "10.231.43.0/24")):
        ns.sh("ip", "xfrm", "policy", "add", "src", "10.231.41.0/24", "dst", net_r, "dir", "out",
              "tmpl", "src", "10.231.40.1", "dst", "10.231.40.2", "proto", "esp", "reqid", str(reqid),
              "mode", "tunnel", ns=net)
    ns.sh("sh", "-c", "echo 30 > /proc/sys/net/core/xfrm_acq_expires", ns=net)
    for reqid in (150, 300):
        ns.sh("ip", "xfrm", "state", "allocspi", "src", "10.231.40.2", "dst", "10.231.40.1",
              "proto", "esp", "reqid", str(reqid), "mode", "tunnel", ns=net)
    backend = backend_in(net)
    try:
        assert len(policies(net)) == 1 and "10.231.43.0/24" in policies(net)[0]
        assert len(states(net)) == 1 and "reqid 300" in states(net)[0]
    finally:
        backend.close()


def test_decouple_leaves_entries_and_the_next_start_takes_them_back(net):
    backend = backend_in(net, keep_on_close=True)
    backend.install_trap(120, TS_L, TS_R, LOCAL, REMOTE)
    backend.close()
    assert len(policies(net)) == 3
    backend = backend_in(net)  # coupled again: a fresh start removes our stale entries
    backend.close()
    assert policies(net) == []


def test_ike_sockets_bypass_policies(net):
    ns.sh("ip", "xfrm", "policy", "add", "src", "0.0.0.0/0", "dst", "0.0.0.0/0", "dir", "out",
          "action", "block", ns=net)
    with ns.inside(net):
        plain = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        ike = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        ike6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        with pytest.raises(OSError) as info:
            plain.sendto(b"x", ("10.231.40.2", 500))
        assert info.value.errno == errno.EPERM  # the block policy
        xfrm.bypass_policy(ike)
        xfrm.bypass_policy(ike6)
        ike.sendto(b"x", ("10.231.40.2", 500))
        xfrm.set_udp_encap(ike)
        assert ike.getsockopt(socket.IPPROTO_UDP, 100) == 2  # UDP_ENCAP_ESPINUDP
    finally:
        for s in (plain, ike, ike6):
            s.close()
