"""reqids (pyiked.core.reqids): one per flow, kept across rekeys, released with the flow's
last CHILD SA, so that a concentrator's churn of road warriors does not grow them."""

from pyiked.core.events import ChildSAInstall, ChildSARemove
from pyiked.core.reqids import Reqids
from pyiked.core.ts import TS

from .invariants import assert_consistent
from .simnet import A_IP, B_IP, B_NET, pair


def _host(k):
    return [TS.host(f"10.231.1.{k % 250 + 1}")], [TS.from_network(B_NET)]


def test_connect_disconnect_cycles_leave_reqids_bounded():
    net, pa, pb = pair()
    a, b = net.engines[A_IP], net.engines[B_IP]
    a.first_contact = lambda sa: False
    cycles = 2000
    for k in range(cycles):
        sa_id = a.initiate(pa, net.now, child_ts=_host(k))  # a selector of its own each time
        net.run(until=net.now + 2)
        assert a.delete_ike_sa(a.ike_sas()[0].ike_sa_id, net.now) if k % 2 else \
            b.delete_ike_sa(b.ike_sas()[0].ike_sa_id, net.now)
        net.run(until=net.now + 2)
        assert not a.ike_sas() and not b.ike_sas(), sa_id
    for engine in (a, b):
        assert len(engine.reqids) == 0 and not engine.reqids._by_flow
        assert len(engine.reqids._free) == 1  # the one reqid, released and reused
    for ip in (A_IP, B_IP):
        installs = net.of_type(ip, ChildSAInstall)
        removes = net.of_type(ip, ChildSARemove)
        assert len(installs) == len(removes) == cycles
        assert {e.reqid for e in installs} == {1}
        assert all(e.remove_policies for e in removes)


def test_flows_share_a_reqid_while_both_are_up():
    net, pa, pb = pair()
    a, b = net.engines[A_IP], net.engines[B_IP]
    a.first_contact = lambda sa: False
    a.initiate(pa, net.now, child_ts=_host(1))
    a.initiate(pa, net.now, child_ts=_host(2))
    a.initiate(pa, net.now, child_ts=_host(1))  # the same flow from a second IKE SA
    net.run(until=net.now + 5)
    installs = net.of_type(B_IP, ChildSAInstall)
    assert len(installs) == 3 and len(b.reqids) == 2
    one, two = _host(1)[0], _host(2)[0]
    by_host = {tuple(ts): {e.reqid for e in installs if e.ts_remote == tuple(ts)} for ts in (one, two)}
    (reqid,), (other,) = by_host[tuple(one)], by_host[tuple(two)]
    assert reqid != other and sum(e.reqid == reqid for e in installs) == 2
    # the shared flow keeps its policies until its last CHILD SA goes
    owners = [sa for sa in b.ike_sas() if any(c.reqid == reqid for c in sa.children.values())]
    assert len(owners) == 2
    b.delete_ike_sa(owners[0].ike_sa_id, net.now)
    net.run(until=net.now + 5)
    (first,) = [e for e in net.of_type(B_IP, ChildSARemove) if e.reqid == reqid]
    assert not first.remove_policies and b.reqids.holders(reqid) == 1
    b.delete_ike_sa(owners[1].ike_sa_id, net.now)
    net.run(until=net.now + 5)
    second = [e for e in net.of_type(B_IP, ChildSARemove) if e.reqid == reqid][1]
    assert second.remove_policies and b.reqids.holders(reqid) == 0 and len(b.reqids) == 1


def test_rekeys_keep_the_reqid_and_the_count():
    net, pa, pb = pair()
    a, b = net.engines[A_IP], net.engines[B_IP]
    a.initiate(pa, 0.0)
    net.run(until=5)
    for _ in range(3):
        (child,) = a.ike_sas()[0].children.values()
        assert a.rekey_child_sa(child.child_id, net.now)
        net.run(until=net.now + 30)
    assert a.rekey_ike_sa(a.ike_sas()[0].ike_sa_id, net.now)
    net.run(until=net.now + 30)
    assert_consistent(net, children=1)
    for engine in (a, b):
        assert len(engine.reqids) == 1 and engine.reqids.holders(1) == 1
        assert {e.reqid for e in net.of_type(A_IP, ChildSAInstall)} == {1}


def test_reqids_released_smallest_first():
    r = Reqids()
    flows = [r.lookup("p", (TS.host(f"10.0.0.{k}"),), ()) for k in range(1, 6)]
    assert flows == [1, 2, 3, 4, 5]
    for reqid in flows:
        r.hold(reqid)
    assert r.lookup("p", (TS.host("10.0.0.3"),), ()) == 3  # the same flow, the same reqid
    r.hold(3)
    assert not r.release(3) and r.release(3)
    assert r.release(4) and r.release(2)
    assert [r.lookup("p", (TS.host(f"10.0.1.{k}"),), ()) for k in range(4)] == [2, 3, 4, 6]
    assert len(r) == 6
