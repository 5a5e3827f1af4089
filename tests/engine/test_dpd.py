"""Liveness checks (RFC 7296 §2.4) with OpenIKED's `dpd_check_interval` semantics: an
empty INFORMATIONAL after an interval without any message from the peer; a dead peer's
SAs are torn down (ChildSARemove, IkeSADown)."""

import pytest

from pyiked.config.model import Settings
from pyiked.core.events import ChildSARemove, IkeSADown
from pyiked.core.iana import ExchangeType

from .invariants import assert_consistent
from .simnet import A_IP, B_IP
from .test_rekey import up

# retransmissions after 2, 4, 8, 16, 32, 64 s: the peer is dead 126 s after the check
GIVE_UP = 2 + 4 + 8 + 16 + 32 + 64


def with_dpd(seconds):
    s = Settings(dpd_check_interval=seconds)
    return {"a_engine": {"settings": s}, "b_engine": {"settings": s}}


@pytest.mark.parametrize("dead", [B_IP, A_IP])
def test_dead_peer_is_torn_down(dead):
    net, pa, pb = up(**with_dpd(10))
    alive = A_IP if dead == B_IP else B_IP
    start = net.now
    net.blackhole.add(dead)
    engine = net.engines[alive]
    sent = engine.stats["dpd_sent"]
    net.run(until=start + GIVE_UP - 1)  # the first unanswered probe goes within 10 s
    assert len(engine.ike_sas()) == 1 and engine.stats["dpd_sent"] == sent + 1
    net.run(until=start + 10 + GIVE_UP + 1)
    assert not engine.ike_sas() and not engine.children_by_spi
    (down,) = net.of_type(alive, IkeSADown)
    assert "no answer to INFORMATIONAL" in down.reason
    (rm,) = net.of_type(alive, ChildSARemove)
    assert rm.remove_policies
    assert engine.stats["retransmissions"] == 5


def test_live_idle_peers_stay_up():
    net, pa, pb = up(**with_dpd(10))
    probes = []
    net.tap = lambda data, src, dst: (probes.append((src[0], net.now)) if data[18] == ExchangeType.INFORMATIONAL
                                      and not data[19] & 0x20 else None) or data
    net.run(until=net.now + 600)
    assert_consistent(net, children=1)
    # about one probe per interval: its answer keeps the other end from probing too, unless
    # both timers run out together
    assert 58 <= len(probes) <= 120
    for ip in (A_IP, B_IP):
        times = [t for src, t in probes if src == ip]
        assert all(b - a >= 9.9 for a, b in zip(times, times[1:]))  # never more than one per interval


def test_no_probe_while_the_peer_talks():
    net, pa, pb = up(**with_dpd(60))
    a, b = net.engines[A_IP], net.engines[B_IP]
    # B rekeys the CHILD SA every 40 s: A always heard from B within the interval
    for _ in range(10):
        (sa,) = b.ike_sas()
        (child,) = sa.children.values()
        b.rekey_child_sa(child.child_id, net.now)
        net.run(until=net.now + 40)
    assert a.stats["dpd_sent"] == 0
    assert_consistent(net, children=1)


def test_dpd_off():
    net, pa, pb = up(**with_dpd(0))
    net.blackhole.add(B_IP)
    net.run(until=net.now + 1000)
    a = net.engines[A_IP]
    assert a.stats["dpd_sent"] == 0 and len(a.ike_sas()) == 1
    assert a.ike_sas()[0].dpd_at is None


def test_esp_from_the_peer_counts_as_hearing_from_it():
    # a busy tunnel is not probed: the data plane reports the CHILD SAs that received
    # ESP (KernelActivity), as strongSwan and OpenIKED look at ESP traffic too
    from pyiked.core.events import KernelActivity

    net, pa, pb = up(**with_dpd(60))
    a = net.engines[A_IP]
    (child,) = a.ike_sas()[0].children.values()
    net.blackhole.add(B_IP)  # no IKE message from B at all from here on
    for _ in range(10):  # 200 s with ESP reported every 20 s
        net.run(until=net.now + 20)
        a.kernel_notice(KernelActivity(frozenset({child.spi_in, 0xDEAD})), net.now)
    assert a.stats["dpd_sent"] == 0 and len(a.ike_sas()) == 1
    net.run(until=net.now + 61)  # the ESP stops: the probe follows within the interval
    assert a.stats["dpd_sent"] == 1
