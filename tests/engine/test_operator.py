"""Operator commands on the engine (pyikectl's reset sa / reset id / reload) and the
counters the metrics read, between two engines over the simulated network."""

import dataclasses

import pytest

from pyiked.config.model import Config, Settings
from pyiked.config.store import PolicyStore
from pyiked.core.engine import failure_kind
from pyiked.core.events import ChildSARemove, HandshakeFailed, IkeSADown, IkeSAUp
from pyiked.core.ike_sa import State

from .simnet import A_IP, B_IP, fqdn, pair, psk_policy


def established(net, pa):
    net.engines[A_IP].initiate(pa, net.now)
    net.run(until=net.now + 10)
    for ip in (A_IP, B_IP):
        assert [sa.state for sa in net.engines[ip].ike_sas()] == [State.ESTABLISHED]


def gone_on_both(net):
    return not net.engines[A_IP].ike_sas() and not net.engines[B_IP].ike_sas()


def test_reset_sas_sends_deletes_and_both_sides_forget():
    net, pa, _ = pair()
    established(net, pa)
    assert net.engines[B_IP].reset_sas(net.now) == 1
    net.run(until=net.now + 5)
    assert gone_on_both(net)
    # the peer learnt it from our Delete (not from a timeout): its reason says so
    (down,) = net.of_type(A_IP, IkeSADown)
    assert down.reason == "deleted by peer"
    assert len(net.of_type(A_IP, ChildSARemove)) == 1
    (down_b,) = net.of_type(B_IP, IkeSADown)
    assert down_b.reason == "reset by operator"


def test_sas_already_being_deleted_are_not_counted_again():
    net, pa, _ = pair()
    established(net, pa)
    b = net.engines[B_IP]
    assert b.reset_sas(net.now) == 1
    assert b.reset_sas(net.now) == 0
    assert b.delete_by_identity(fqdn("a.pk.test"), net.now) == 0
    assert b.reload(_store(), net.now) == 0
    net.run(until=net.now + 5)
    assert gone_on_both(net)
    assert len(net.of_type(A_IP, IkeSADown)) == 1


def test_reset_sas_drops_half_open_silently():
    net, pa, _ = pair()
    net.blackhole.add(B_IP)  # the responder never answers: A stays in INIT_SENT
    net.engines[A_IP].initiate(pa, 0.0)
    net.flush()
    assert net.engines[A_IP].ike_sas()[0].state == State.INIT_SENT
    assert net.engines[A_IP].reset_sas(0.1) == 1
    assert not net.engines[A_IP].ike_sas()
    assert not net.engines[A_IP].datagrams_to_send()


@pytest.mark.parametrize("text,hits", [
    ("a.pk.test", 1),
    ("A.PK.Test", 1),  # FQDNs compare case-insensitively (RFC 4343)
    ("b.pk.test", 0),  # the responder's own ID is not a peer of the responder
    ("someone.else", 0),
])
def test_delete_by_identity(text, hits):
    net, pa, _ = pair()
    established(net, pa)
    b = net.engines[B_IP]
    assert b.delete_by_identity(fqdn(text), net.now) == hits
    net.run(until=net.now + 5)
    assert gone_on_both(net) == bool(hits)


def _store(*policies, settings=None):
    return PolicyStore(Config(settings=settings or Settings(), policies=tuple(policies)))


def test_reload_keeps_sas_whose_policy_remains_and_rebinds_them():
    net, pa, pb = pair()
    established(net, pa)
    b = net.engines[B_IP]
    changed = dataclasses.replace(pb, lifetime_seconds=600)
    extra = psk_policy("other", B_IP, "10.231.0.9", "10.231.2.0/24", "10.231.9.0/24",
                       "b.pk.test", "c.pk.test")
    assert b.reload(_store(changed, extra), net.now) == 0
    net.run(until=net.now + 5)
    (sa,) = b.ike_sas()
    assert sa.state == State.ESTABLISHED and sa.policy is changed
    assert not net.of_type(B_IP, IkeSADown)


def test_reload_deletes_sas_whose_policy_is_gone():
    net, pa, pb = pair()
    established(net, pa)
    b = net.engines[B_IP]
    renamed = dataclasses.replace(pb, name="b-renamed")
    assert b.reload(_store(renamed), net.now) == 1
    net.run(until=net.now + 5)
    assert gone_on_both(net)
    (down,) = net.of_type(B_IP, IkeSADown)
    assert down.reason == "policy b removed"
    assert b.store.get("b-renamed") is renamed


def test_reload_without_now_only_swaps():
    net, pa, _ = pair()
    established(net, pa)
    b = net.engines[B_IP]
    assert b.reload(_store()) == 0
    assert b.ike_sas()[0].state == State.ESTABLISHED


def test_counters_after_a_handshake_and_a_delete():
    net, pa, _ = pair()
    established(net, pa)
    for ip in (A_IP, B_IP):
        stats = net.engines[ip].stats
        assert stats["handshakes_started"] == stats["handshakes_completed"] == 1
        assert stats["child_sas_created"] == 1 and stats["handshakes_failed"] == 0
    net.engines[A_IP].reset_sas(net.now)
    net.run(until=net.now + 5)
    for ip in (A_IP, B_IP):
        stats = net.engines[ip].stats
        assert stats["child_sas_removed"] == 1 and stats["ike_sas_removed"] == 1


def test_failed_handshakes_are_counted_by_kind():
    # wrong PSK on the initiator: the responder refuses AUTH with AUTHENTICATION_FAILED
    net, pa, _ = pair(a_kw={"auth": dataclasses.replace(psk_policy(
        "x", A_IP, B_IP, "10.0.0.0/8", "10.0.0.0/8", "a", "b").auth, psk=b"a-wrong-psk-99999999")})
    net.engines[A_IP].initiate(pa, 0.0)
    net.run(until=30)
    b, a = net.engines[B_IP].stats, net.engines[A_IP].stats
    assert b["handshakes_failed"] == 1 and b["handshakes_failed_AUTHENTICATION_FAILED"] == 1
    assert a["handshakes_failed"] == 1 and a["handshakes_failed_AUTHENTICATION_FAILED"] == 1
    assert net.of_type(B_IP, HandshakeFailed) and not net.of_type(B_IP, IkeSAUp)


def test_unanswered_initiation_counts_as_timeout():
    net, pa, _ = pair()
    net.blackhole.add(B_IP)
    net.engines[A_IP].initiate(pa, 0.0)
    net.run(until=400)
    stats = net.engines[A_IP].stats
    assert stats["handshakes_failed"] == 1
    assert stats["handshakes_failed_timeout"] + stats["handshakes_failed_half_open_timeout"] == 1
    assert stats["retransmissions"] >= 1


@pytest.mark.parametrize("reason,peer_dead,kind", [
    ("AUTHENTICATION_FAILED: PSK mismatch", False, "AUTHENTICATION_FAILED"),
    ("NO_PROPOSAL_CHOSEN at offset 12: x", False, "NO_PROPOSAL_CHOSEN"),
    ("TS_UNACCEPTABLE", False, "TS_UNACCEPTABLE"),
    ("no answer to IKE_AUTH after 6 transmissions", True, "timeout"),
    ("half-open timeout", False, "half_open_timeout"),
    ("SK payload rejected: bad ICV", False, "other"),
    ("", False, "other"),
    ("AUTHENTICATION_FAILEDX: junk", False, "other"),
])
def test_failure_kind_is_bounded(reason, peer_dead, kind):
    assert failure_kind(reason, peer_dead) == kind
