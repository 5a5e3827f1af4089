"""The userspace backend's per-flow bookkeeping stays right when flows come and go among
many others (what bench/handshake.py's churn mode does): the host index, the routes in
table 220 (through the plain netlink socket), the lifetimes heap behind get_timer().

    netns pkb-us: lo 10.231.49.1/24 (the local selectors), TUN pkb-ut
"""

import pytest

from pyiked.core.events import Encapsulation, Lifetime
from pyiked.kernel.userspace import UserspaceBackend
from tests import sa_events as ev

from . import nsutil as ns

NS = "pkb-us"


@pytest.fixture
def backend():
    ns.sh("ip", "netns", "del", NS, check=False)
    ns.sh("ip", "netns", "add", NS)
    try:
        ns.sh("ip", "link", "set", "lo", "up", ns=NS)
        ns.sh("ip", "addr", "add", "10.231.49.1/24", "dev", "lo", ns=NS)
        with ns.inside(NS):
            b = UserspaceBackend(lambda *a: None, tun_name="pkb-ut", clock=lambda: 1000.0)
        yield b
        b.close()
    finally:
        ns.sh("ip", "netns", "del", NS, check=False)


def host_flow(k, **kw):
    return ev.install(child_id=k, reqid=k, spi_in=0x1000 + k, spi_out=0x2000 + k, local="10.231.48.1",
                      remote="10.231.48.2", ts_local=("10.231.49.0/24",),
                      ts_remote=(f"10.231.50.{k}/32",), encap=Encapsulation(4500, 4500), **kw)


def routes():
    return ns.sh("ip", "route", "show", "table", "220", ns=NS).stdout


def test_flows_come_and_go_among_others(backend):
    events = {k: host_flow(k, lifetime=Lifetime(soft_seconds=100 + k, hard_seconds=200 + k))
              for k in range(1, 7)}
    for event in events.values():
        backend.install(event)
    assert "10.231.50.3 dev pkb-ut" in routes() and "src 10.231.49.1" in routes()
    assert backend.get_timer() == 1000.0 + 101
    for k in (1, 3, 4):
        backend.remove(ev.remove(events[k]))
    assert sorted(key[1] & 0xFF for key in backend._by_host) == [2, 5, 6]
    table = routes()
    assert "10.231.50.3 " not in table and "10.231.50.2 dev pkb-ut" in table
    assert backend.get_timer() == 1000.0 + 102  # the removed SAs' deadlines are skipped
    backend.install(events[3])  # the same flow again
    assert "10.231.50.3 dev pkb-ut" in routes() and len(backend._by_host) == 4
