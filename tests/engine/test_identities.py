"""IDs of every type (RFC 7296 §3.5), INITIAL_CONTACT (§2.4) and liveness checks."""

import pytest

from pyiked.config.identity import parse_identity
from pyiked.config.model import Settings
from pyiked.core.events import IkeSADown, IkeSAUp
from pyiked.core.exchanges import informational
from pyiked.core.iana import IDType
from pyiked.core.ike_sa import State

from .simnet import A_IP, B_IP, pair

IDS = {
    IDType.ID_IPV4_ADDR: ("10.231.0.1", "10.231.0.2"),
    IDType.ID_IPV6_ADDR: ("2001:db8::a", "2001:db8::b"),
    IDType.ID_FQDN: ("a.pk.test", "b.pk.test"),
    IDType.ID_RFC822_ADDR: ("alice@pk.test", "gw@pk.test"),
    IDType.ID_KEY_ID: ("keyid:#a1a2a3a4", "keyid:#b1b2"),
    IDType.ID_DER_ASN1_DN: ("C=XX, O=pk-test, CN=a", "C=XX, O=pk-test, CN=b"),
}


@pytest.mark.parametrize("id_type", list(IDS), ids=lambda t: t.name)
def test_every_id_type_authenticates(id_type):
    a_text, b_text = IDS[id_type]
    a_id, b_id = parse_identity(a_text), parse_identity(b_text)
    assert a_id.id_type == id_type
    net, pa, pb = pair(a_kw={"srcid": a_id, "dstid": b_id}, b_kw={"srcid": b_id, "dstid": a_id})
    net.engines[A_IP].initiate(pa, 0.0)
    net.run(until=10)
    (up_a,), (up_b,) = net.of_type(A_IP, IkeSAUp), net.of_type(B_IP, IkeSAUp)
    assert up_b.remote_id == str(a_id) and up_a.remote_id == str(b_id)


def test_wrong_peer_identity_is_refused():
    other = parse_identity("mallory.pk.test")
    net, pa, pb = pair(a_kw={"srcid": other})  # B expects dstid a.pk.test
    net.engines[A_IP].initiate(pa, 0.0)
    net.run(until=10)
    assert not net.of_type(B_IP, IkeSAUp) and not net.engines[B_IP].ike_sas()


def test_initial_contact_replaces_stale_sas():
    net, pa, pb = pair()
    a, b = net.engines[A_IP], net.engines[B_IP]
    a.initiate(pa, 0.0)
    net.run(until=10)
    (old,) = b.ike_sas()
    # A reboots: it forgets its SA, comes back and sends INITIAL_CONTACT (§2.4)
    for sa in a.ike_sas():
        a.destroy(sa, "reboot", net.now)
    a.initiate(pa, net.now)
    net.run(until=net.now + 10)
    (new,) = b.ike_sas()
    assert new is not old and old.state == State.CLOSED
    assert [d.reason for d in net.of_type(B_IP, IkeSADown)] == ["replaced after INITIAL_CONTACT"]


def test_liveness_check_is_answered():
    net, pa, pb = pair()
    net.engines[A_IP].initiate(pa, 0.0)
    net.run(until=10)
    (sa,) = net.engines[A_IP].ike_sas()
    before = sa.send_id
    informational.liveness(sa, net.now)
    net.run(until=net.now + 10)
    assert sa.send_id == before + 1 and sa.pending is None and sa.state == State.ESTABLISHED
    assert net.engines[A_IP].stats["retransmissions"] == 0


def _three_sas_of_one_identity():
    net, pa, pb = pair()
    a, b = net.engines[A_IP], net.engines[B_IP]
    a.first_contact = lambda sa: False  # concurrent sessions, not a restart
    for _ in range(3):
        a.initiate(pa, net.now)
        net.run(until=net.now + 10)
    assert len(b.ike_sas()) == 3
    (found,) = b.by_identity.values()  # one identity: the set form
    assert isinstance(found, set) and len(found) == 3
    return net, pa, a, b


def test_initial_contact_replaces_every_stale_sa_of_the_identity():
    net, pa, a, b = _three_sas_of_one_identity()
    old = b.ike_sas()
    for sa in a.ike_sas():
        a.destroy(sa, "reboot", net.now)
    del a.first_contact
    a.initiate(pa, net.now)
    net.run(until=net.now + 10)
    (new,) = b.ike_sas()
    assert all(sa.state == State.CLOSED for sa in old) and new not in old
    assert b.by_identity == {new.remote_id: new.our_spi}  # back to the single SPI form
    assert b.by_peer_ip == {A_IP: new.our_spi}


def test_delete_by_identity_with_several_sas():
    net, pa, a, b = _three_sas_of_one_identity()
    assert b.delete_by_identity(parse_identity("a.pk.test"), net.now) == 3
    net.run(until=net.now + 10)
    assert not b.ike_sas() and not b.by_identity and not b.by_peer_ip


def test_identity_index_single_and_set_forms():
    from pyiked.core.engine import _index_add, _index_discard, spis_of

    index = {}
    _index_add(index, "k", b"1")
    _index_add(index, "k", b"1")
    assert index == {"k": b"1"} and spis_of(index["k"]) == (b"1",)
    _index_add(index, "k", b"2")
    assert index == {"k": {b"1", b"2"}} and sorted(spis_of(index["k"])) == [b"1", b"2"]
    _index_discard(index, "k", b"3")
    _index_discard(index, "k", b"1")
    assert index == {"k": b"2"}
    _index_discard(index, "k", b"1")
    assert index == {"k": b"2"}
    _index_discard(index, "k", b"2")
    _index_discard(index, "other", b"2")
    assert index == {} and spis_of(index.get("k")) == ()


def test_enforcesingleikesa_keeps_only_the_newest_sa_of_an_identity():
    # OpenIKED's `set enforcesingleikesa`: a new IKE SA of a DSTID replaces the older one
    # even when the peer sends no INITIAL_CONTACT (here: concurrent sessions).
    net, pa, pb = pair(b_engine={"settings": Settings(enforcesingleikesa=True)})
    a, b = net.engines[A_IP], net.engines[B_IP]
    a.first_contact = lambda sa: False
    a.initiate(pa, net.now)
    net.run(until=net.now + 10)
    (first,) = b.ike_sas()
    a.initiate(pa, net.now)
    net.run(until=net.now + 10)
    (second,) = b.ike_sas()
    assert second is not first and first.state == State.CLOSED
    reasons = [d.reason for d in net.of_type(B_IP, IkeSADown)]
    assert reasons == ["replaced by a newer IKE SA of this identity"]
    (kept,) = a.ike_sas()  # A got the Delete (§1.4.1) and dropped its copy of the old SA
    assert kept.our_spi == second.spi_i
    assert b.by_identity == {second.remote_id: second.our_spi}


def test_without_enforcesingleikesa_sessions_of_an_identity_coexist():
    net, pa, a, b = _three_sas_of_one_identity()
    assert all(sa.state == State.ESTABLISHED for sa in b.ike_sas())


def _ike_sa_init_vendor_ids(settings):
    from pyiked._fast import wire
    from pyiked.core.iana import ExchangeType

    net, pa, pb = pair(a_engine={"settings": settings}, b_engine={"settings": settings})
    seen = []

    def tap(data, src, dst):
        message = wire.decode(data[4:] if data[:4] == b"\0\0\0\0" else data)
        if message.exchange_type == ExchangeType.IKE_SA_INIT:
            seen.append([p.data for p in message.payloads if isinstance(p, wire.VendorID)])
        return data

    net.tap = tap
    net.engines[A_IP].initiate(pa, 0.0)
    net.run(until=10)
    assert len(net.engines[B_IP].ike_sas()) == 1
    return seen


def test_vendor_id_in_ike_sa_init_by_default():
    import pyiked

    # request and response each carry one (OpenIKED's `set vendorid` default)
    assert _ike_sa_init_vendor_ids(Settings()) == [[b"pyiked-" + pyiked.__version__.encode()]] * 2


def test_novendorid_sends_none():
    assert _ike_sa_init_vendor_ids(Settings(vendorid=False)) == [[], []]


def test_initiator_refusing_the_responder_tells_it():
    # B authenticates as someone A does not expect: A drops the SA and says so in an
    # INFORMATIONAL (§2.21.2), and B removes the SA it had established at once
    net, pa, pb = pair(b_kw={"srcid": "mallory.pk.test"})
    net.engines[A_IP].initiate(pa, 0.0)
    net.run(until=1)  # far below any retransmission or liveness timer
    a, b = net.engines[A_IP], net.engines[B_IP]
    assert not a.ike_sas() and not b.ike_sas()
    assert [d.reason for d in net.of_type(B_IP, IkeSADown)] == ["peer refused our authentication"]
    assert not net.of_type(A_IP, IkeSAUp)
