"""NAT traversal (RFC 7296 §2.23, RFC 3948) between two engines."""

from pyiked.core.events import ChildSAInstall, ChildSAUpdate, IkeSAUp
from pyiked.core.iana import NON_ESP_MARKER

import ipaddress

from .simnet import A_IP, B_IP, Nat, pair

NATTED = {"peer": ipaddress.ip_network("10.231.0.77")}  # B sees A behind the NAT's address


def test_initiator_behind_nat_floats_to_4500_and_sends_keepalives():
    net, pa, pb = pair(b_kw=NATTED)
    net.nat = Nat(A_IP, "10.231.0.77")
    # B sees A's datagrams arrive from the NAT's public address
    seen = []
    net.tap = lambda data, src, dst: (seen.append((src, dst, data)), data)[1]
    net.engines[A_IP].initiate(pa, 0.0)
    net.run(until=5)
    (up_a,), (up_b,) = net.of_type(A_IP, IkeSAUp), net.of_type(B_IP, IkeSAUp)
    assert up_a.nat_local and not up_a.nat_remote
    assert up_b.nat_remote and not up_b.nat_local
    # IKE_AUTH went to port 4500 with the non-ESP marker
    auth = [d for s, t, d in seen if t == (B_IP, 4500)]
    assert auth and all(d.startswith(NON_ESP_MARKER) for d in auth)
    (a,), (b,) = net.of_type(A_IP, ChildSAInstall), net.of_type(B_IP, ChildSAInstall)
    assert a.encap.local_port == 4500 and a.encap.remote_port == 4500
    assert b.encap.local_port == 4500 and b.encap.remote_port >= 40000  # the NAT's port
    # only the host behind the NAT sends keepalives (RFC 3948 §4)
    seen.clear()
    net.run(until=65)
    keepalives = [(s, t) for s, t, d in seen if d == b"\xff"]
    assert keepalives and all(t == (B_IP, 4500) for s, t in keepalives)


def test_responder_follows_rebound_nat_mapping():
    net, pa, pb = pair(b_kw=NATTED)
    net.nat = Nat(A_IP, "10.231.0.77")
    net.engines[A_IP].initiate(pa, 0.0)
    net.run(until=5)
    (sa_b,) = net.engines[B_IP].ike_sas()
    before = sa_b.remote_addr
    net.nat.rebind()
    (inst,) = net.of_type(A_IP, ChildSAInstall)
    net.engines[A_IP].delete_child_sa(inst.child_id, net.now)  # any authenticated request
    net.run(until=net.now + 5)
    assert sa_b.remote_addr != before and sa_b.remote_addr[0] == "10.231.0.77"
    assert net.of_type(B_IP, ChildSAUpdate) or not sa_b.children


def test_forced_udp_encapsulation_without_nat():
    # a userspace ESP data plane fakes NAT detection, as strongSwan's kernel-libipsec does
    net, pa, pb = pair(b_engine={"force_udp_encap": True})
    net.engines[A_IP].initiate(pa, 0.0)
    net.run(until=5)
    (a,), (b,) = net.of_type(A_IP, ChildSAInstall), net.of_type(B_IP, ChildSAInstall)
    assert a.encap is not None and b.encap is not None
    assert (b.encap.local_port, b.encap.remote_port) == (4500, 4500)


def _encaps_with(a_kw=None, b_kw=None):
    net, pa, pb = pair(a_kw=a_kw, b_kw=b_kw)
    net.engines[A_IP].initiate(pa, 0.0)
    net.run(until=5)
    (a,), (b,) = net.of_type(A_IP, ChildSAInstall), net.of_type(B_IP, ChildSAInstall)
    return a.encap, b.encap


def test_natt_keyword_forces_udp_encapsulation_on_either_side():
    # iked.conf `natt`: ESP in UDP on 4500 though no NAT is on the path
    for a_kw, b_kw in (({"natt": True}, None), (None, {"natt": True})):
        a, b = _encaps_with(a_kw, b_kw)
        assert a is not None and b is not None, (a_kw, b_kw)
        assert (a.local_port, a.remote_port) == (b.local_port, b.remote_port) == (4500, 4500)


def test_no_nat_and_no_natt_gives_plain_esp():
    assert _encaps_with() == (None, None)
