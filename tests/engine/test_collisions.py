"""Simultaneous rekeys of the same SA by both ends (RFC 7296 §2.8.1, §2.8.2) and the
near misses of §2.25: whatever the order, both ends keep the same single survivor and no
SA is left over on either side."""

import pytest

from pyiked.core import rekey
from pyiked.core.events import ChildSAInstall, ChildSARemove, IkeSADown, IkeSARekeyed
from pyiked.core.iana import ExchangeType

from .invariants import assert_consistent
from .simnet import A_IP, B_IP
from .test_rekey import only_child, only_sa, up


class Spy:
    """Records, per engine, the exchanges the collision resolution compared."""

    def __init__(self, monkeypatch):
        self.calls = []
        real = rekey.winner

        def winner(exchanges):
            best = real(exchanges)
            self.calls.append([(e.new, e.nonce_i, e.nonce_r, e.ours, e is best) for e in exchanges])
            return best

        monkeypatch.setattr(rekey, "winner", winner)


def loser_by_rule(exchanges):
    """§2.8.1: the exchange that holds the lowest of the four nonces loses."""
    lowest = min(n for _, ni, nr, _, _ in exchanges for n in (ni, nr))
    return next(e for e in exchanges if lowest in (e[1], e[2]))


@pytest.mark.parametrize("first", [A_IP, B_IP])
def test_child_rekey_collision(monkeypatch, first):
    winners = set()
    for seed in range(8):
        spy = Spy(monkeypatch)
        net, pa, pb = up(seed=seed)
        second = B_IP if first == A_IP else A_IP
        t = net.now
        net.engines[first].rekey_child_sa(only_child(net, first).child_id, t)
        net.run(until=t + 0.002)  # the second starts before the first request arrives
        assert net.engines[second].rekey_child_sa(only_child(net, second).child_id, net.now)
        net.run(until=t + 30)
        assert_consistent(net, children=1)
        assert len(spy.calls) == 2  # each end compared the two exchanges
        for call in spy.calls:
            assert len(call) == 2 and sum(e[4] for e in call) == 1
            loser = loser_by_rule(call)
            assert not loser[4]
            survivor = next(e for e in call if e[4])
            assert survivor[0] in only_sa(net, A_IP).children.values() or \
                survivor[0] in only_sa(net, B_IP).children.values()
        for ip in (A_IP, B_IP):
            # three CHILD SAs existed (the old one and two new ones), two are gone
            assert len(net.of_type(ip, ChildSAInstall)) == 3
            removed = net.of_type(ip, ChildSARemove)
            assert len(removed) == 2 and not any(r.remove_policies for r in removed)
        deleted_redundant = [ip for ip in (A_IP, B_IP)
                             if any(r.reason.startswith("redundant") for r in net.of_type(ip, ChildSARemove))]
        assert len(deleted_redundant) == 1  # only the loser's initiator deletes its new SA
        winners.add(B_IP if deleted_redundant == [A_IP] else A_IP)
    assert winners == {A_IP, B_IP}  # both outcomes happened across the seeds


@pytest.mark.parametrize("first", [A_IP, B_IP])
def test_ike_rekey_collision(monkeypatch, first):
    winners = set()
    for seed in range(8):
        spy = Spy(monkeypatch)
        net, pa, pb = up(seed=seed)
        second = B_IP if first == A_IP else A_IP
        child = {ip: only_child(net, ip) for ip in (A_IP, B_IP)}
        t = net.now
        net.engines[first].rekey_ike_sa(only_sa(net, first).ike_sa_id, t)
        net.run(until=t + 0.002)
        assert net.engines[second].rekey_ike_sa(only_sa(net, second).ike_sa_id, net.now)
        net.run(until=t + 200)
        assert_consistent(net, children=1)
        assert len(spy.calls) == 2
        survivor_ids = set()
        for call in spy.calls:
            loser = loser_by_rule(call)
            assert not loser[4]
            survivor_ids.add(next(e for e in call if e[4])[0].ike_sa_id)
        assert survivor_ids == {only_sa(net, A_IP).ike_sa_id}  # both ends chose the same one
        for ip in (A_IP, B_IP):
            assert only_child(net, ip) is child[ip]  # moved to the survivor
            assert len(net.of_type(ip, IkeSARekeyed)) == 1
            assert not net.of_type(ip, IkeSADown) and not net.of_type(ip, ChildSARemove)
            assert net.engines[ip].stats["ike_rekeys_completed"] == 1
        survivor = only_sa(net, A_IP)
        winners.add(A_IP if survivor.initiator else B_IP)
        # the survivor carries on: rekey the CHILD SA over it
        net.engines[second].rekey_child_sa(only_child(net, second).child_id, net.now)
        net.run(until=net.now + 30)
        assert_consistent(net, children=1)
    assert winners == {A_IP, B_IP}


@pytest.mark.parametrize("seed", range(6))
def test_collisions_on_a_lossy_network(seed):
    net, pa, pb = up(seed=seed)
    net.loss, net.duplicate, net.reorder = 0.15, 0.2, 0.4
    a, b = net.engines[A_IP], net.engines[B_IP]
    a.rekey_child_sa(only_child(net, A_IP).child_id, net.now)
    b.rekey_child_sa(only_child(net, B_IP).child_id, net.now + 0.001)
    net.run(until=net.now + 150)
    if a.ike_sas() and b.ike_sas():
        a.rekey_ike_sa(only_sa(net, A_IP).ike_sa_id, net.now)
        b.rekey_ike_sa(only_sa(net, B_IP).ike_sa_id, net.now + 0.001)
        net.run(until=net.now + 150)
    net.loss = net.duplicate = net.reorder = 0.0
    net.run(until=net.now + 600)
    if a.ike_sas() and b.ike_sas():
        assert_consistent(net, children=1)
    else:  # retransmissions exhausted: the other end found out through DPD
        assert_consistent(net, ike_sas=0)


class Holder:
    """Holds back the first request of one exchange type from one host, to deliver late."""

    def __init__(self, net, src_ip, exchange):
        self.net, self.src_ip, self.exchange = net, src_ip, exchange
        self.held = None
        net.tap = self.tap

    def tap(self, data, src, dst):
        if self.held is None and src[0] == self.src_ip and data[18] == self.exchange and not data[19] & 0x20:
            self.held = (data, src, dst)
            return None
        return data

    def release(self):
        self.net.tap = None
        data, src, dst = self.held
        self.net._schedule(data, src, dst, 0.001)


@pytest.mark.parametrize("late", [0.0, 5.0])
def test_child_rekey_request_arriving_after_the_other_rekey_completed(late):
    # B's rekey request reaches A only after A's own rekey completed: A is deleting the old
    # SA (TEMPORARY_FAILURE) or has deleted it (CHILD_SA_NOT_FOUND, §2.25); B, which
    # answered A's rekey meanwhile, keeps A's SA: one CHILD SA on both sides
    net, pa, pb = up()
    holder = Holder(net, B_IP, ExchangeType.CREATE_CHILD_SA)
    net.engines[A_IP].rekey_child_sa(only_child(net, A_IP).child_id, net.now)
    net.engines[B_IP].rekey_child_sa(only_child(net, B_IP).child_id, net.now)
    net.run(until=net.now + 0.012 + late)  # A's exchange done, its Delete sent (and answered)
    assert holder.held is not None
    holder.release()
    net.run(until=net.now + 60)
    assert_consistent(net, children=1)
    assert net.engines[B_IP].stats["child_rekeys_failed"] == 1
    assert net.engines[A_IP].stats["child_rekeys_completed"] == 1


@pytest.mark.parametrize("late", [0.0, 5.0])
def test_ike_rekey_request_arriving_after_the_other_rekey_completed(late):
    net, pa, pb = up()
    holder = Holder(net, B_IP, ExchangeType.CREATE_CHILD_SA)
    net.engines[A_IP].rekey_ike_sa(only_sa(net, A_IP).ike_sa_id, net.now)
    net.engines[B_IP].rekey_ike_sa(only_sa(net, B_IP).ike_sa_id, net.now)
    net.run(until=net.now + 0.012 + late)
    assert holder.held is not None
    holder.release()
    net.run(until=net.now + 200)
    assert_consistent(net, children=1)
    for ip in (A_IP, B_IP):
        assert len(net.of_type(ip, IkeSARekeyed)) == 1 and not net.of_type(ip, IkeSADown)
    assert only_sa(net, A_IP).initiator  # A's rekey is the one that stands


def test_child_delete_crossing_a_rekey_collision():
    # both ends rekey the CHILD SA and B deletes it too: everything settles, nothing leaks
    net, pa, pb = up()
    a, b = net.engines[A_IP], net.engines[B_IP]
    a.rekey_child_sa(only_child(net, A_IP).child_id, net.now)
    b.rekey_child_sa(only_child(net, B_IP).child_id, net.now)
    net.run(until=net.now + 0.007)
    for c in list(only_sa(net, B_IP).children.values()):
        b.delete_child_sa(c.child_id, net.now)
    net.run(until=net.now + 200)
    (sa_a,), (sa_b,) = a.ike_sas(), b.ike_sas()
    assert len(sa_a.children) == len(sa_b.children) <= 1
    assert_consistent(net)
