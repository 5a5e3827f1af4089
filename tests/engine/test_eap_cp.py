"""IKE_AUTH with EAP-MSCHAPv2 (RFC 7296 §2.16) and the configuration payload (§2.19)
between two engines: the engine as EAP server with a certificate, and as EAP client."""

import dataclasses
import ipaddress

import pytest

from pyiked.config.model import Auth, CfgOption, Flow, Settings
from pyiked.core.events import AddressLease, ChildSAInstall, HandshakeFailed, IkeSADown, IkeSAUp
from pyiked.core.ike_sa import State

from .rw import DNS, POOL, eap_pair, rw_policy, store
from .simnet import A_IP, B_IP

pytest.importorskip("Crypto.Hash.MD4", reason="EAP-MSCHAPv2 needs pycryptodome (the eap extra)")


def connect(net, pa, now=0.0, until=None):
    sa_id = net.engines[A_IP].initiate(pa, now)
    net.run(until=until or now + 30)
    return sa_id


def states_seen(net, ip):
    """The states B's IKE SAs pass through, sampled at every step."""
    seen = []
    engine = net.engines[ip]
    real = engine.receive_datagram

    def spy(*args):
        real(*args)
        seen.extend(sa.state for sa in engine.ike_sas() if not seen or seen[-1] != sa.state)

    engine.receive_datagram = spy
    return seen


def test_eap_road_warrior_gets_an_address_and_dns():
    net, pa, pb = eap_pair()
    seen = states_seen(net, B_IP)
    connect(net, pa)
    (up_a,), (up_b,) = net.of_type(A_IP, IkeSAUp), net.of_type(B_IP, IkeSAUp)
    assert up_a.remote_id == "b-ec.pk.test" and up_b.remote_id == "alice"  # IDi was alice
    assert State.EAP in seen and seen[-1] == State.ESTABLISHED  # §2.16 round trips in state EAP
    (lease,) = net.of_type(B_IP, AddressLease)
    assert lease.remote_id == "alice" and not lease.released
    assert lease.address in ipaddress.ip_network(POOL)
    (sa_a,) = net.engines[A_IP].ike_sas()
    assert sa_a.virtual_ips == [lease.address]
    assert sa_a.cp_reply[3] == [ipaddress.ip_address(DNS)]  # INTERNAL_IP4_DNS
    assert sa_a.eap_identity == "alice"
    (sa_b,) = net.engines[B_IP].ike_sas()
    assert sa_b.eap_identity == "alice" and sa_b.auth_ctx is None  # EAP state and MSK freed
    (ca,), (cb,) = net.of_type(A_IP, ChildSAInstall), net.of_type(B_IP, ChildSAInstall)
    # `to dynamic` narrowed to the leased address (§2.19)
    assert [str(t) for t in cb.ts_remote] == [f"{lease.address}/32"]
    assert [str(t) for t in ca.ts_local] == [f"{lease.address}/32"]
    assert ca.inbound.encr_key == cb.outbound.encr_key
    assert net.engines[B_IP].stats["eap_succeeded"] == 1


@pytest.mark.parametrize(
    "password, user, why",
    [
        (b"wrong password", "alice", "wrong password"),
        (b"alice-pk-pass-1", "mallory", "unknown EAP user"),
    ],
)
def test_eap_failure_is_authentication_failed_and_leaves_no_sa(password, user, why):
    users = (("alice", b"alice-pk-pass-1"),) if user == "alice" else (("bob", b"alice-pk-pass-1"),)
    net, pa, pb = eap_pair(password=password, users=users)
    connect(net, pa)
    assert not net.of_type(A_IP, IkeSAUp) and not net.of_type(B_IP, IkeSAUp)
    assert net.engines[A_IP].ike_sas() == [] and net.engines[B_IP].ike_sas() == []
    (failed_a,) = net.of_type(A_IP, HandshakeFailed)
    assert "AUTHENTICATION_FAILED" in failed_a.reason  # the notify B sent with EAP-Failure
    (failed_b,) = net.of_type(B_IP, HandshakeFailed)
    assert why in failed_b.reason
    assert net.of_type(B_IP, AddressLease) == []
    assert net.engines[B_IP].stats["eap_failed"] == 1


def test_lease_goes_back_with_the_ike_sa():
    net, pa, pb = eap_pair()
    connect(net, pa)
    (lease,) = net.of_type(B_IP, AddressLease)
    net.engines[A_IP].delete_ike_sa(net.engines[A_IP].ike_sas()[0].ike_sa_id, net.now)
    net.run(until=net.now + 10)
    assert net.of_type(B_IP, IkeSADown)
    released = [e for e in net.of_type(B_IP, AddressLease) if e.released]
    assert released == [AddressLease(lease.ike_sa, "alice", lease.address, True)]
    pool = next(iter(net.engines[B_IP].pools))
    assert pool.free == pool.size


@pytest.mark.parametrize("sticky", [False, True])
def test_a_full_pool_gives_internal_address_failure_unless_sticky(sticky):
    # a pool of one address; alice connects twice (no INITIAL_CONTACT the second time)
    net, pa, pb = eap_pair(pool="10.231.100.7/32", settings=Settings(stickyaddress=sticky))
    connect(net, pa)
    connect(net, pa, now=net.now + 1)
    ups_b = net.of_type(B_IP, IkeSAUp)
    assert len(ups_b) == 2  # the IKE SA comes up either way (§3.10.1)
    installs = net.of_type(B_IP, ChildSAInstall)
    if sticky:  # the newer SA of the same identity takes the address over
        assert len(installs) == 2
        leases = net.of_type(B_IP, AddressLease)
        assert [(str(e.address), e.released) for e in leases] == [
            ("10.231.100.7", False),
            ("10.231.100.7", True),
            ("10.231.100.7", False),
        ]
    else:
        assert len(installs) == 1
        (failed,) = [e for e in net.of_type(A_IP, HandshakeFailed)]
        assert "INTERNAL_ADDRESS_FAILURE" in failed.reason


def test_to_dynamic_without_a_cfg_request_is_failed_cp_required():
    net, pa, pb = eap_pair(request=False)
    connect(net, pa)
    assert net.of_type(B_IP, IkeSAUp) and not net.of_type(B_IP, ChildSAInstall)
    (failed,) = net.of_type(A_IP, HandshakeFailed)
    assert "FAILED_CP_REQUIRED" in failed.reason


def test_static_address_for_one_identity():
    net, pa, pb = eap_pair(pool="10.231.100.42")
    connect(net, pa)
    (lease,) = net.of_type(B_IP, AddressLease)
    assert str(lease.address) == "10.231.100.42"


def test_eap_with_an_rsa_gateway_and_fragmentation():
    net, pa, pb = eap_pair(b_own=("b-rsa",), settings=Settings(fragmentation=True))
    connect(net, pa)
    assert net.of_type(A_IP, IkeSAUp) and net.of_type(B_IP, ChildSAInstall)
    assert net.engines[B_IP].stats["fragments_sent"] >= 2


@pytest.mark.parametrize("seed", range(6))
def test_eap_over_a_lossy_network_completes_once_or_cleans_up(seed):
    net, pa, pb = eap_pair(seed=seed, net_kw={"loss": 0.2, "duplicate": 0.3, "reorder": 0.3})
    connect(net, pa, until=200)
    if net.of_type(A_IP, IkeSAUp):
        assert len(net.of_type(B_IP, IkeSAUp)) == 1
        assert len(net.of_type(B_IP, AddressLease)) == 1
        assert net.engines[B_IP].stats["eap_succeeded"] == 1
    else:
        assert not [s for s in net.engines[B_IP].ike_sas() if s.state == State.ESTABLISHED]
        leases = net.of_type(B_IP, AddressLease)  # every lease handed out came back
        assert sum(e.released for e in leases) == sum(not e.released for e in leases)


def test_a_certificate_peer_on_an_eap_policy_is_refused():
    net, pa, pb = eap_pair()
    a = net.engines[A_IP]
    a.certs = store(("a-ec",))
    pa_cert = rw_policy(
        "rw",
        A_IP,
        B_IP,
        None,
        "10.231.2.0/24",
        srcid="a-ec.pk.test",
        auth=Auth("signature"),
        active=True,
    )
    a.initiate(pa_cert, 0.0)
    net.run(until=30)
    (failed,) = net.of_type(B_IP, HandshakeFailed)
    assert "wants EAP" in failed.reason
    assert net.engines[B_IP].ike_sas() == []


def test_dual_stack_leases_and_selectors():
    v6_net = ipaddress.ip_network("2001:db8:2::/64")
    v4_net = ipaddress.ip_network("10.231.2.0/24")
    net, pa, pb = eap_pair()
    both = {
        "flows": (Flow(None, v4_net, src_dynamic=True), Flow(None, v6_net, src_dynamic=True)),
        "request": (CfgOption("address", None), CfgOption("address", ipaddress.ip_address("::"))),
    }
    gw = {
        "flows": (Flow(v4_net, None, dst_dynamic=True), Flow(v6_net, None, dst_dynamic=True)),
        "config": pb.config
        + (
            CfgOption("address", ipaddress.ip_network("2001:db8:100::/120")),
            CfgOption("name-server", ipaddress.ip_address("2001:db8:2::53")),
        ),
    }
    pa, pb = dataclasses.replace(pa, **both), dataclasses.replace(pb, **gw)
    for ip, policy in ((A_IP, pa), (B_IP, pb)):
        engine = net.engines[ip]
        engine.reload(
            type(engine.store)(dataclasses.replace(engine.store.config, policies=(policy,)))
        )
    connect(net, pa)
    leases = net.of_type(B_IP, AddressLease)
    assert sorted(e.address.version for e in leases) == [4, 6]
    v4, v6 = sorted((e.address for e in leases), key=lambda a: a.version)
    assert v6 in ipaddress.ip_network("2001:db8:100::/120") and v6 != ipaddress.ip_address(
        "2001:db8:100::"
    )
    (child_b,) = net.of_type(B_IP, ChildSAInstall)
    assert sorted(map(str, child_b.ts_remote)) == sorted([f"{v4}/32", f"{v6}/128"])
    (sa_a,) = net.engines[A_IP].ike_sas()
    assert sorted(sa_a.virtual_ips, key=lambda a: a.version) == [v4, v6]
    assert sa_a.cp_reply[10] == [ipaddress.ip_address("2001:db8:2::53")]  # INTERNAL_IP6_DNS
