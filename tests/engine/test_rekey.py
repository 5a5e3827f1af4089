"""CREATE_CHILD_SA between two engines: additional CHILD SAs, CHILD and IKE SA rekeys
(RFC 7296 §1.3, §2.8, §2.18), PFS and INVALID_KE_PAYLOAD, lost messages, §2.25 errors."""

import hmac
import ipaddress
from dataclasses import replace

import pytest

from pyiked.config.model import Config, ProposalSpec
from pyiked.config.store import PolicyStore
from pyiked.core import keys
from pyiked.core.events import (
    ChildSAInstall,
    ChildSARemove,
    HandshakeFailed,
    IkeSADown,
    IkeSARekeyed,
)
from pyiked.core.iana import EncrId, EsnId, ExchangeType, KeId, PrfId, ProtocolId
from pyiked.core.ike_sa import State
from pyiked.core.ts import TS

from .invariants import assert_consistent
from .simnet import A_IP, B_IP, pair

ESP_PFS = lambda *groups: ProposalSpec(ProtocolId.ESP, ((EncrId.AES_GCM_16, 256),), ke=groups,
                                       esn=(EsnId.NO_ESN,))
IKE = lambda *groups: ProposalSpec(ProtocolId.IKE, ((EncrId.AES_GCM_16, 256),), (PrfId.HMAC_SHA2_256,),
                                   (), groups)


def up(seed=1, **kw):
    net, pa, pb = pair(seed=seed, **kw)
    net.engines[A_IP].initiate(pa, 0.0)
    net.run(until=30)
    assert_consistent(net, children=1)
    return net, pa, pb


def only_sa(net, ip):
    (sa,) = net.engines[ip].ike_sas()
    return sa


def only_child(net, ip):
    (child,) = only_sa(net, ip).children.values()
    return child


def create_child_exchanges(data):
    """Exchange type and Response flag of an IKE datagram (port 500: no marker)."""
    return data[18], bool(data[19] & 0x20)


@pytest.mark.parametrize("who", [A_IP, B_IP])
def test_child_rekey_from_either_side(who):
    net, pa, pb = up()
    old = {ip: only_child(net, ip) for ip in (A_IP, B_IP)}
    assert net.engines[who].rekey_child_sa(old[who].child_id, net.now)
    net.run(until=net.now + 30)
    assert_consistent(net, children=1)
    for ip in (A_IP, B_IP):
        new = only_child(net, ip)
        assert new.spi_in != old[ip].spi_in and new.spi_out != old[ip].spi_out
        assert new.reqid == old[ip].reqid
        inst = net.of_type(ip, ChildSAInstall)[-1]
        assert inst.rekey_of == old[ip].child_id and inst.initiator == (ip == who)
        (rm,) = net.of_type(ip, ChildSARemove)
        assert rm.child_id == old[ip].child_id and not rm.remove_policies
        assert rm.inbound_spi == old[ip].spi_in
    # the rekey initiator deletes the old SA (§2.8)
    assert net.engines[who].stats["child_rekeys_completed"] == 1
    a, b = (net.of_type(ip, ChildSAInstall)[-1] for ip in (A_IP, B_IP))
    assert a.inbound.encr_key == b.outbound.encr_key and a.outbound.encr_key == b.inbound.encr_key
    assert a.inbound.encr_key != net.of_type(A_IP, ChildSAInstall)[0].inbound.encr_key


def test_child_rekey_with_pfs(monkeypatch):
    seen = []
    real = keys.child_keymat

    def spy(prf_id, sk_d, nonce_i, nonce_r, shared=None, **kw):
        seen.append(shared)
        return real(prf_id, sk_d, nonce_i, nonce_r, shared, **kw)

    monkeypatch.setattr(keys, "child_keymat", spy)
    pfs = {"child_proposals": (ESP_PFS(KeId.CURVE25519),)}
    net, pa, pb = up(a_kw=pfs, b_kw=pfs)
    assert seen == [None, None]  # IKE_AUTH: no KE of its own (§1.2)
    net.engines[A_IP].rekey_child_sa(only_child(net, A_IP).child_id, net.now)
    net.run(until=net.now + 30)
    assert_consistent(net, children=1)
    assert len(seen) == 4 and seen[2] is not None and seen[2] == seen[3]  # both ends, same g^ir
    assert only_child(net, A_IP).suite.ke_id == only_child(net, B_IP).suite.ke_id == KeId.CURVE25519


def test_pfs_invalid_ke_payload_retry():
    # §1.3: A's KEi is MODP2048, B only takes curve25519: INVALID_KE_PAYLOAD, then a retry
    net, pa, pb = up(a_kw={"child_proposals": (ESP_PFS(KeId.MODP2048, KeId.CURVE25519),)},
                     b_kw={"child_proposals": (ESP_PFS(KeId.CURVE25519),)})
    net.engines[A_IP].rekey_child_sa(only_child(net, A_IP).child_id, net.now)
    net.run(until=net.now + 30)
    assert_consistent(net, children=1)
    assert only_child(net, A_IP).suite.ke_id == KeId.CURVE25519
    assert net.engines[A_IP].stats["child_rekeys_completed"] == 1
    assert not net.of_type(A_IP, HandshakeFailed)


def test_pfs_group_we_did_not_offer_fails_cleanly():
    net, pa, pb = up(a_kw={"child_proposals": (ESP_PFS(KeId.MODP2048),)},
                     b_kw={"child_proposals": (ESP_PFS(KeId.CURVE25519),)})
    # (IKE_AUTH worked: its CHILD SA has no KE of its own)
    old = only_child(net, A_IP)
    net.engines[A_IP].rekey_child_sa(old.child_id, net.now)
    net.run(until=net.now + 5)
    assert_consistent(net, children=1)
    assert only_child(net, A_IP) is old and old.rekey_at is not None  # tried again later
    assert net.engines[A_IP].stats["child_rekeys_failed"] == 1


@pytest.mark.parametrize("who", [A_IP, B_IP])
def test_ike_rekey_from_either_side(who):
    net, pa, pb = up()
    old = {ip: only_sa(net, ip) for ip in (A_IP, B_IP)}
    children = {ip: only_child(net, ip) for ip in (A_IP, B_IP)}
    assert net.engines[who].rekey_ike_sa(old[who].ike_sa_id, net.now)
    net.run(until=net.now + 30)
    assert_consistent(net, children=1)
    for ip in (A_IP, B_IP):
        new = only_sa(net, ip)
        assert new is not old[ip] and old[ip].state == State.CLOSED
        assert new.spi_i != old[ip].spi_i and new.spi_r != old[ip].spi_r
        assert new.sk_d != old[ip].sk_d
        assert only_child(net, ip) is children[ip]  # moved, not recreated
        assert new.initiator == (ip == who)  # §3.1: the rekey initiator is the new initiator
        (ev,) = net.of_type(ip, IkeSARekeyed)
        assert ev.old_ike_sa == old[ip].ike_sa_id and ev.new_ike_sa == new.ike_sa_id
        assert not net.of_type(ip, IkeSADown) and not net.of_type(ip, ChildSARemove)
        assert net.engines[ip].children_by_spi[children[ip].spi_in].ike_sa is new
    # the new IKE SA works: a CHILD SA rekey and then a delete over it, from the other side
    other = B_IP if who == A_IP else A_IP
    assert net.engines[other].rekey_child_sa(only_child(net, other).child_id, net.now)
    net.run(until=net.now + 30)
    assert_consistent(net, children=1)
    assert only_sa(net, A_IP).send_id + only_sa(net, B_IP).send_id == 2  # IDs restarted at 0


def test_ike_rekey_keys_follow_rfc_7296_2_18(monkeypatch):
    captured, derived = [], []
    real, real_derive = keys.rekey_skeyseed, keys.derive_ike_keys

    def spy(old_prf_id, old_sk_d, shared, nonce_i, nonce_r, additional=()):
        captured.append((old_sk_d, shared, nonce_i, nonce_r))
        return real(old_prf_id, old_sk_d, shared, nonce_i, nonce_r, additional)

    def spy_derive(*args):
        derived.append(real_derive(*args))
        return derived[-1]

    monkeypatch.setattr(keys, "rekey_skeyseed", spy)
    net, pa, pb = up()  # HMAC-SHA2-256 PRF, AES-GCM-256: SK_d 32, SK_e 36 octets, no SK_a
    old = only_sa(net, A_IP)
    old_sk_d = old.sk_d
    monkeypatch.setattr(keys, "derive_ike_keys", spy_derive)
    net.engines[A_IP].rekey_ike_sa(old.ike_sa_id, net.now)
    net.run(until=net.now + 30)
    new = only_sa(net, A_IP)
    assert len(captured) == 2 and captured[0] == captured[1]  # both ends, the same g^ir and nonces
    _, shared, nonce_i, nonce_r = captured[0]
    # by hand, with hmac: SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr), then prf+
    seed = hmac.digest(old_sk_d, shared + nonce_i + nonce_r, "sha256")
    stream, t, i = b"", b"", 1
    while len(stream) < 32 + 36 + 36 + 32 + 32:
        t = hmac.digest(seed, t + nonce_i + nonce_r + new.spi_i + new.spi_r + bytes((i,)), "sha256")
        stream, i = stream + t, i + 1
    sk_d, sk_ei, sk_er = stream[:32], stream[32:68], stream[68:104]
    assert len(derived) == 2 and derived[0] == derived[1]
    assert (derived[0].sk_d, derived[0].sk_ei, derived[0].sk_er) == (sk_d, sk_ei, sk_er)
    assert derived[0].sk_ai == derived[0].sk_ar == b""
    assert new.sk_d == sk_d and new.keys is None  # a rekeyed IKE SA keeps only SK_d (no AUTH)
    assert new.spi_i == only_sa(net, B_IP).spi_i  # the initiator's new SPI from its proposal


def test_ike_rekey_invalid_ke_payload_retry():
    # the IKE SA runs curve25519; B is then reloaded to want ECP256 only: A's rekey KEi is
    # refused with INVALID_KE_PAYLOAD(19) and A retries in that group (§1.3, §1.3.2)
    net, pa, pb = up(a_kw={"ike_proposals": (IKE(KeId.CURVE25519, KeId.ECP256),)},
                     b_kw={"ike_proposals": (IKE(KeId.CURVE25519, KeId.ECP256),)})
    b = net.engines[B_IP]
    b.reload(PolicyStore(Config(settings=b.store.settings,
                                policies=(replace(pb, ike_proposals=(IKE(KeId.ECP256),)),))))
    net.engines[A_IP].rekey_ike_sa(only_sa(net, A_IP).ike_sa_id, net.now)
    net.run(until=net.now + 30)
    assert_consistent(net, children=1)
    assert only_sa(net, A_IP).suite.ke_id == only_sa(net, B_IP).suite.ke_id == KeId.ECP256


@pytest.mark.parametrize("kind", ["child", "ike"])
@pytest.mark.parametrize("lose", ["request", "response"])
def test_lost_messages_during_rekey(kind, lose):
    net, pa, pb = up()
    dropped = []

    def tap(data, src, dst):
        exchange, response = create_child_exchanges(data)
        if exchange == ExchangeType.CREATE_CHILD_SA and response == (lose == "response") and not dropped:
            dropped.append(data)
            return None
        return data

    net.tap = tap
    a = net.engines[A_IP]
    if kind == "child":
        a.rekey_child_sa(only_child(net, A_IP).child_id, net.now)
    else:
        a.rekey_ike_sa(only_sa(net, A_IP).ike_sa_id, net.now)
    net.run(until=net.now + 60)
    assert dropped and a.stats["retransmissions"] >= 1
    assert_consistent(net, children=1)
    # the responder processed the request once: one install (or one rekey) on each side
    for ip in (A_IP, B_IP):
        if kind == "child":
            assert len(net.of_type(ip, ChildSAInstall)) == 2
        else:
            assert len(net.of_type(ip, IkeSARekeyed)) == 1


@pytest.mark.parametrize("seed", range(6))
def test_rekeys_on_a_lossy_network(seed):
    net, pa, pb = up(seed=seed)
    net.loss, net.duplicate, net.reorder = 0.2, 0.2, 0.3
    a, b = net.engines[A_IP], net.engines[B_IP]
    a.rekey_child_sa(only_child(net, A_IP).child_id, net.now)
    net.run(until=net.now + 200)
    if a.ike_sas():
        b.rekey_ike_sa(only_sa(net, B_IP).ike_sa_id, net.now)
        net.run(until=net.now + 200)
    net.loss = net.duplicate = net.reorder = 0.0
    net.run(until=net.now + 400)  # every fallback timer has run
    if not a.ike_sas() or not b.ike_sas():
        # 20 % loss can exhaust the retransmissions: then the peer's DPD cleans up too
        net.run(until=net.now + 600)
        assert_consistent(net, ike_sas=0)
        return
    assert_consistent(net, children=1)


def test_additional_child_sa():
    net, pa, pb = up()
    a = net.engines[A_IP]
    ts_local = [TS.from_network(ipaddress.ip_network("10.231.1.0/25"))]
    ts_remote = [TS.from_network(ipaddress.ip_network("10.231.2.128/25"))]
    assert a.create_child_sa(only_sa(net, A_IP).ike_sa_id, net.now, ts_local, ts_remote)
    net.run(until=net.now + 30)
    assert_consistent(net, children=2)
    first, second = net.of_type(A_IP, ChildSAInstall)
    assert second.rekey_of is None and second.reqid != first.reqid
    assert [str(t) for t in second.ts_local] == ["10.231.1.0/25"]
    (b_second,) = net.of_type(B_IP, ChildSAInstall)[1:]
    assert [str(t) for t in b_second.ts_remote] == ["10.231.1.0/25"] and not b_second.initiator
    # each rekeys on its own, and deleting one leaves the other
    a.rekey_child_sa(second.child_id, net.now)
    net.run(until=net.now + 30)
    assert_consistent(net, children=2)
    a.delete_child_sa(first.child_id, net.now)
    net.run(until=net.now + 30)
    assert_consistent(net, children=1)


def test_no_additional_sas():
    net, pa, pb = up()
    net.engines[B_IP].max_child_sas = 1
    net.engines[A_IP].create_child_sa(only_sa(net, A_IP).ike_sa_id, net.now)
    net.run(until=net.now + 30)
    assert_consistent(net, children=1)
    assert any("NO_ADDITIONAL_SAS" in f.reason for f in net.of_type(A_IP, HandshakeFailed))
    # a rekey is not an additional SA: still accepted
    net.engines[A_IP].rekey_child_sa(only_child(net, A_IP).child_id, net.now)
    net.run(until=net.now + 30)
    assert_consistent(net, children=1)
    assert net.engines[A_IP].stats["child_rekeys_completed"] == 1


def test_child_sa_not_found_recreates_the_child():
    # B lost the CHILD SA without telling A; A's rekey gets CHILD_SA_NOT_FOUND (§2.25):
    # A deletes it silently and creates a new one from scratch
    net, pa, pb = up()
    b = net.engines[B_IP]
    sa_b = only_sa(net, B_IP)
    b.remove_child(sa_b, only_child(net, B_IP), "lost", net.now)
    net.flush()
    old = only_child(net, A_IP)
    net.engines[A_IP].rekey_child_sa(old.child_id, net.now)
    net.run(until=net.now + 30)
    assert_consistent(net, children=1)
    inst = net.of_type(A_IP, ChildSAInstall)[-1]
    assert inst.rekey_of is None and only_child(net, A_IP).child_id == inst.child_id
    rm = net.of_type(A_IP, ChildSARemove)
    assert [r.child_id for r in rm] == [old.child_id] and rm[0].reason == "peer has no such CHILD SA"


def test_rekey_crossing_a_delete_of_the_same_child():
    # §2.25.1: B deletes the CHILD SA while A rekeys it: B answers the rekey with
    # TEMPORARY_FAILURE, A answers the delete with its Delete; no SA is left
    net, pa, pb = up()
    net.engines[B_IP].delete_child_sa(only_child(net, B_IP).child_id, net.now)
    net.engines[A_IP].rekey_child_sa(only_child(net, A_IP).child_id, net.now)
    net.run(until=net.now + 30)
    assert_consistent(net, children=0)
    assert net.engines[A_IP].stats["child_rekeys_failed"] == 1


def test_ike_rekey_while_a_child_exchange_is_in_flight():
    # §2.25.1: B is rekeying a CHILD SA when A's IKE SA rekey arrives: TEMPORARY_FAILURE,
    # and A tries again later (not immediately) and succeeds
    net, pa, pb = up()
    net.engines[B_IP].rekey_child_sa(only_child(net, B_IP).child_id, net.now)
    net.engines[A_IP].rekey_ike_sa(only_sa(net, A_IP).ike_sa_id, net.now)
    net.run(until=net.now + 60)
    assert_consistent(net, children=1)
    assert net.engines[A_IP].stats["ike_rekeys_failed"] == 1
    assert net.engines[A_IP].stats["ike_rekeys_completed"] == 1
    assert net.engines[B_IP].stats["child_rekeys_completed"] == 1


def test_delete_of_the_ike_sa_crossing_its_rekey():
    # §2.25.2: B deletes the IKE SA while A rekeys it: A answers the delete and forgets
    # its rekey; B answers the rekey with TEMPORARY_FAILURE; everything is gone
    net, pa, pb = up()
    net.engines[B_IP].delete_ike_sa(only_sa(net, B_IP).ike_sa_id, net.now)
    net.engines[A_IP].rekey_ike_sa(only_sa(net, A_IP).ike_sa_id, net.now)
    net.run(until=net.now + 60)
    assert_consistent(net, ike_sas=0)
    for ip in (A_IP, B_IP):
        assert len(net.of_type(ip, IkeSADown)) == 1 and len(net.of_type(ip, ChildSARemove)) == 1


def test_child_delete_during_ike_rekey_is_sent_on_the_new_sa():
    net, pa, pb = up()
    a = net.engines[A_IP]
    a.rekey_ike_sa(only_sa(net, A_IP).ike_sa_id, net.now)
    a.delete_child_sa(only_child(net, A_IP).child_id, net.now)  # queued behind the rekey
    net.run(until=net.now + 30)
    assert_consistent(net, children=0)
    assert len(net.of_type(A_IP, IkeSARekeyed)) == 1


def test_create_child_sa_refused_before_auth_and_on_a_rekeyed_sa():
    # A CREATE_CHILD_SA on the old IKE SA after its rekey gets TEMPORARY_FAILURE (§2.25.2)
    net, pa, pb = up()
    b = net.engines[B_IP]
    old_b = only_sa(net, B_IP)
    net.engines[A_IP].rekey_ike_sa(only_sa(net, A_IP).ike_sa_id, net.now)
    # hold back A's Delete of the old IKE SA so that B still has it, REKEYED
    net.tap = lambda data, src, dst: None if data[18] == ExchangeType.INFORMATIONAL else data
    net.run(until=net.now + 5)
    assert old_b.state == State.REKEYED and not old_b.children
    from pyiked._fast import wire
    from pyiked.core.errors import TemporaryFailure
    from pyiked.core.exchanges import create_child_sa
    from pyiked.core.iana import TransformType

    request = [wire.SA([wire.Proposal(1, ProtocolId.ESP, b"\0\0\1\0",
                                      [wire.Transform(TransformType.ENCR, EncrId.AES_GCM_16, 256)])]),
               wire.Nonce(b"n" * 32), wire.TSi([]), wire.TSr([])]
    with pytest.raises(TemporaryFailure):
        create_child_sa.respond(old_b, request, net.now)
    net.tap = None
    net.run(until=net.now + 200)
    assert_consistent(net, children=1)
    assert b.stats["internal_errors"] == 0


@pytest.mark.parametrize("who", [A_IP, B_IP])
def test_ike_rekey_keeps_the_road_warriors_address(who):
    # EAP road warrior with a leased address (§2.19): the lease, the virtual address and
    # the `to dynamic` selectors move to the new IKE SA; the old one's end frees nothing
    pytest.importorskip("Crypto.Hash.MD4", reason="EAP-MSCHAPv2 needs pycryptodome (the eap extra)")
    from pyiked.core.events import AddressLease

    from .rw import eap_pair

    net, pa, pb = eap_pair()
    net.engines[A_IP].initiate(pa, 0.0)
    net.run(until=30)
    (lease,) = net.of_type(B_IP, AddressLease)
    old_b = only_sa(net, B_IP)
    assert net.engines[who].rekey_ike_sa(only_sa(net, who).ike_sa_id, net.now)
    net.run(until=net.now + 30)
    new_b = only_sa(net, B_IP)
    assert new_b is not old_b and old_b.state == State.CLOSED
    assert new_b.virtual_ips == [lease.address] and new_b.eap_identity == "alice"
    assert only_sa(net, A_IP).virtual_ips == [lease.address]
    pool = next(iter(net.engines[B_IP].pools))
    assert pool.free == pool.size - 1 and net.of_type(B_IP, AddressLease) == [lease]
    # a CHILD SA rekey over the new IKE SA still narrows to the leased address
    net.engines[A_IP].rekey_child_sa(only_child(net, A_IP).child_id, net.now)
    net.run(until=net.now + 30)
    inst = net.of_type(B_IP, ChildSAInstall)[-1]
    assert inst.rekey_of is not None and [str(t) for t in inst.ts_remote] == [f"{lease.address}/32"]
    # the address goes back with the new IKE SA
    net.engines[A_IP].delete_ike_sa(only_sa(net, A_IP).ike_sa_id, net.now)
    net.run(until=net.now + 30)
    assert pool.free == pool.size
    assert [e.released for e in net.of_type(B_IP, AddressLease)] == [False, True]
