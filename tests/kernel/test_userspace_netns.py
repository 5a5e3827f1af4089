"""Two UserspaceBackends in namespaces pkk-a and pkk-b, joined by a veth pair, with UDP
4500 sockets the test owns (as the daemon will): pings go through the TUN tunnel both
ways, a rekey during pings loses at most the packets in flight, byte lifetimes raise
soft then hard expiry, packets outside the selectors are dropped.

    pkk-a: pkk-va 10.231.40.1/24, lo 10.231.41.1/24 (protects 10.231.41.0/24)
    pkk-b: pkk-vb 10.231.40.2/24, lo 10.231.42.1/24 (protects 10.231.42.0/24)
"""

import re
import select
import socket
import subprocess
import time

import pytest

from pyiked.core.events import Encapsulation, KernelActivity, KernelExpire, Lifetime
from pyiked.kernel.base import KernelError
from pyiked.kernel.userspace import UserspaceBackend
from tests import sa_events as ev

from . import nsutil as ns


class Side:
    def __init__(self, netns, addr, tun):
        self.netns, self.addr = netns, addr
        with ns.inside(netns):
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((addr, 4500))
            self.sock.setblocking(False)
            self.backend = UserspaceBackend(self.send, tun_name=tun, mtu=1400)
        self.received = 0

    def send(self, datagram, local_addr, remote_addr):
        assert local_addr == (self.addr, 4500)
        self.sock.sendto(datagram, remote_addr)

    def on_socket(self):
        while True:
            try:
                data, peer = self.sock.recvfrom(65535)
            except BlockingIOError:
                return
            if data[:4] == b"\0\0\0\0" or data == b"\xff":
                continue  # IKE or a NAT keepalive: the daemon's, not ours (RFC 3948 §2.2)
            self.backend.handle_esp(data, (self.addr, 4500), peer)

    def close(self):
        self.backend.close()
        self.sock.close()


class Tunnel:
    def __init__(self):
        for name in ("pkk-a", "pkk-b"):
            ns.create(name)
        ns.veth("pkk-a", "pkk-va", "10.231.40.1/24", "pkk-b", "pkk-vb", "10.231.40.2/24")
        ns.sh("ip", "addr", "add", "10.231.41.1/24", "dev", "lo", ns="pkk-a")
        ns.sh("ip", "addr", "add", "10.231.42.1/24", "dev", "lo", ns="pkk-b")
        self.a = Side("pkk-a", "10.231.40.1", "pkk-ta")
        self.b = Side("pkk-b", "10.231.40.2", "pkk-tb")
        self.fds = {self.a.sock.fileno(): self.a.on_socket, self.b.sock.fileno(): self.b.on_socket,
                    self.a.backend.fileno(): self.a.backend.handle_tun_readable,
                    self.b.backend.fileno(): self.b.backend.handle_tun_readable}

    def pump(self, until, timeout=20.0):
        """Run the event loop (as the daemon would) until until() is true."""
        deadline = time.monotonic() + timeout
        while not until():
            assert time.monotonic() < deadline, "timed out"
            ready, _, _ = select.select(list(self.fds), [], [], 0.02)
            for fd in ready:
                self.fds[fd]()

    def ping(self, src_ns, src, dst, count, interval=0.05, size=56, during=None):
        """Ping through the tunnel while pumping; returns the replies received.
        during(i) runs in the loop, i = the number of pumps so far."""
        proc = subprocess.Popen(["ip", "netns", "exec", src_ns, "ping", "-n", "-q", "-c", str(count),
                                 "-i", str(interval), "-W", "1", "-s", str(size), "-I", src, dst],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        started = time.monotonic()

        def done():
            if during is not None:
                during(time.monotonic() - started)
            return proc.poll() is not None

        self.pump(done, timeout=count * interval + 15)
        out = proc.stdout.read()
        return int(re.search(r"(\d+) received", out).group(1))

    def close(self):
        for side in (self.a, self.b):
            side.close()
        for name in ("pkk-a", "pkk-b"):
            ns.delete(name)


@pytest.fixture
def tunnel():
    t = Tunnel()
    yield t
    t.close()


def sa_a(**kw):
    """A's view of the CHILD_SA; B installs ev.mirror() of it."""
    kw.setdefault("encap", Encapsulation(4500, 4500))
    return ev.install(**kw)


def install_both(tunnel, event):
    tunnel.b.backend.install(ev.mirror(event))
    tunnel.a.backend.install(event)


@pytest.mark.parametrize("suite", ["aes256gcm16", "aes128-sha256", "chacha20poly1305"])
def test_ping_both_ways(tunnel, suite):
    event = sa_a(suite=suite, esn=suite == "chacha20poly1305", replay_window=64)
    install_both(tunnel, event)
    assert tunnel.ping("pkk-a", "10.231.41.1", "10.231.42.1", 5) == 5
    assert tunnel.ping("pkk-b", "10.231.42.1", "10.231.41.1", 5) == 5
    assert tunnel.ping("pkk-a", "10.231.41.1", "10.231.42.1", 3, size=1300) == 3
    stats_a, stats_b = tunnel.a.backend.stats, tunnel.b.backend.stats
    assert stats_a["tx_packets"] == stats_b["rx_packets"] == 13  # requests + replies
    assert stats_a["rx_packets"] == stats_b["tx_packets"] == 13
    assert stats_a["drop_integrity"] == stats_b["drop_integrity"] == 0
    # ESP came in on A's inbound SA: reported once for liveness (RFC 7296 §2.4), then not
    # again within ACTIVITY_PERIOD
    assert tunnel.a.backend.notices() == [KernelActivity(frozenset({event.inbound.spi}))]
    assert tunnel.a.backend.notices() == []
    # the routes live in table 220 behind a rule, through the TUN device
    routes = ns.sh("ip", "route", "show", "table", "220", ns="pkk-a").stdout
    assert "10.231.42.0/24 dev pkk-ta" in routes and "src 10.231.41.1" in routes
    tunnel.a.backend.remove(ev.remove(event))
    assert "10.231.42.0/24" not in ns.sh("ip", "route", "show", "table", "220", ns="pkk-a").stdout
    assert tunnel.ping("pkk-a", "10.231.41.1", "10.231.42.1", 2) == 0


def test_rekey_during_pings_loses_only_in_flight_packets(tunnel):
    old = sa_a(suite="aes256gcm16", replay_window=64)
    install_both(tunnel, old)
    new = sa_a(suite="aes256gcm16", replay_window=64, child_id=2, spi_in=0xC0000301,
               spi_out=0xC0000401, seed_in=0x33, seed_out=0x44, rekey_of=1)
    state = {"step": 0}

    def during(elapsed):
        # RFC 7296 §2.8: the responder (B) installs when it answers, the initiator (A) when
        # it gets the answer, then the old SA is deleted at both ends
        if state["step"] == 0 and elapsed > 1.0:
            tunnel.b.backend.install(ev.mirror(new))
            state["step"] = 1
        elif state["step"] == 1 and elapsed > 1.02:
            tunnel.a.backend.install(new)
            state["step"] = 2
        elif state["step"] == 2 and elapsed > 1.5:
            tunnel.a.backend.remove(ev.remove(old, remove_policies=False))
            tunnel.b.backend.remove(ev.remove(ev.mirror(old), remove_policies=False))
            state["step"] = 3

    received = tunnel.ping("pkk-a", "10.231.41.1", "10.231.42.1", 60, interval=0.04, during=during)
    assert state["step"] == 3
    assert received >= 58  # at most the packets in flight between B's and A's install
    # the new SA carries the traffic now, the old inbound SPI is gone
    assert tunnel.ping("pkk-b", "10.231.42.1", "10.231.41.1", 5) == 5
    assert 0xC0000101 not in tunnel.a.backend._inbound
    assert tunnel.a.backend._children[2].inbound.packet_count > 0


def test_byte_lifetime_soft_then_hard(tunnel):
    # ICMP echo with 56 data octets: 84-octet inner packets
    lifetime = Lifetime(soft_bytes=84 * 10, hard_bytes=84 * 20)
    event = sa_a(lifetime=lifetime)
    install_both(tunnel, event)
    assert tunnel.ping("pkk-a", "10.231.41.1", "10.231.42.1", 10, interval=0.02) == 10
    notices = tunnel.a.backend.notices()
    assert KernelExpire(3, event.outbound.spi, event.remote_addr, False) in notices  # 10 sent
    assert KernelExpire(3, event.inbound.spi, event.local_addr, False) in notices  # 10 received
    assert tunnel.ping("pkk-a", "10.231.41.1", "10.231.42.1", 12, interval=0.02) == 10
    notices = tunnel.a.backend.notices()
    assert KernelExpire(3, event.outbound.spi, event.remote_addr, True) in notices
    assert all(n.hard for n in notices)
    assert tunnel.a.backend.stats["drop_expired"] >= 2  # the SA no longer protects anything


def test_time_lifetime_through_the_timer(tunnel):
    event = sa_a(lifetime=Lifetime(soft_seconds=100, hard_seconds=200))
    tunnel.a.backend.install(event)
    backend = tunnel.a.backend
    at = backend.get_timer()
    assert at is not None
    backend.handle_timer(at)
    assert {(n.spi, n.hard) for n in backend.notices()} == {(event.inbound.spi, False), (event.outbound.spi, False)}
    backend.handle_timer(backend.get_timer())
    assert {(n.spi, n.hard) for n in backend.notices()} == {(event.inbound.spi, True), (event.outbound.spi, True)}
    assert backend.get_timer() is None


def test_selectors_decide_what_enters_and_leaves(tunnel):
    # A only protects 10.231.41.1 -> 10.231.42.1 UDP port 9 and ICMP is outside it
    from pyiked.core.ts import TS

    event = sa_a(ts_local=(TS.host("10.231.41.1", 17),), ts_remote=(TS.host("10.231.42.1", 17, 9, 9),))
    install_both(tunnel, event)
    assert tunnel.ping("pkk-a", "10.231.41.1", "10.231.42.1", 2) == 0
    assert tunnel.a.backend.stats["drop_no_policy"] >= 2
    # B's own outbound selector (mirror) blocks the ICMP too
    assert tunnel.ping("pkk-b", "10.231.42.1", "10.231.41.1", 2) == 0
    assert tunnel.b.backend.stats["drop_no_policy"] >= 2


def test_refusals(tunnel):
    backend = tunnel.a.backend
    with pytest.raises(KernelError, match="tunnel mode only"):
        backend.install(sa_a(mode="transport"))
    with pytest.raises(KernelError, match="UDP encapsulation"):
        backend.install(ev.install(encap=None))
    with pytest.raises(KernelError):
        backend.install(sa_a(suite="3des-sha1"))
    assert backend.requires_udp_encap and not backend.supports_transport
    # garbage on the 4500 socket is counted, never raised
    for junk in (b"", b"\x01", b"\xc0\x00\x01\x01" + bytes(40), bytes(range(200))):
        assert backend.handle_esp(junk, ("10.231.40.1", 4500), ("10.231.40.2", 4500)) is False
