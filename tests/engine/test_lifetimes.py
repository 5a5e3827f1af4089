"""SA lifetimes with an injected clock: CHILD SAs by time and by bytes (kernel notices),
IKE SAs by time, soft (rekey) and hard (delete), randomized soft margins, OpenIKED's
defaults and the iked.conf keywords `ikelifetime` and `lifetime ... bytes ...`."""

from dataclasses import replace

import pytest

from pyiked.config import parse_config_text
from pyiked.config.model import Config, Policy, ProposalSpec, Settings
from pyiked.config.store import PolicyStore
from pyiked.core import child_sa
from pyiked.core.events import ChildSAInstall, ChildSARemove, IkeSADown, IkeSARekeyed, KernelExpire
from pyiked.core.iana import EncrId, IntegId, KeId, PrfId, ProtocolId

from .invariants import assert_consistent
from .simnet import A_IP, B_IP, engine_for, pair, seeded_bytes
from .test_rekey import only_child, only_sa, up

ESP_CBC = ProposalSpec(ProtocolId.ESP, ((EncrId.AES_CBC, 128),), integ=(IntegId.HMAC_SHA2_256_128,))
IKE_GCM = ProposalSpec(ProtocolId.IKE, ((EncrId.AES_GCM_16, 256),), (PrfId.HMAC_SHA2_256,), (),
                       (KeId.CURVE25519,))
IKE_CBC = ProposalSpec(ProtocolId.IKE, ((EncrId.AES_CBC, 128),), (PrfId.HMAC_SHA2_256,),
                       (IntegId.HMAC_SHA2_256_128,), (KeId.CURVE25519,))


def reload(engine, policy):
    engine.reload(PolicyStore(Config(settings=engine.store.settings, policies=(policy,))))


def install_times(net, until, step=1.0):
    """Run to `until` in steps; the time of every ChildSAInstall on A (rekeys only)."""
    times, seen = [], len(net.of_type(A_IP, ChildSAInstall))
    t = net.now
    while t < until:
        t += step
        net.run(until=t)
        now = len(net.of_type(A_IP, ChildSAInstall))
        times += [t] * (now - seen)
        seen = now
    return times


def test_child_sa_rekeys_by_time_again_and_again():
    net, pa, pb = up(a_kw={"lifetime_seconds": 100}, b_kw={"lifetime_seconds": 100})
    start = only_child(net, A_IP).created
    times = install_times(net, start + 1000)
    assert 9 <= len(times) <= 12
    gaps = [b - a for a, b in zip([start] + times, times)]
    # the soft lifetime is a random 85-95 % of the hard one; each end draws its own, the
    # earlier one rekeys (a step of 1 s blurs the edges)
    assert all(84 <= g <= 96 for g in gaps), gaps
    assert len(set(gaps)) > 1
    assert_consistent(net, children=1)
    assert not any(r.reason == "hard lifetime expired" for r in net.of_type(A_IP, ChildSARemove))


def test_child_sa_hard_lifetime_when_rekeys_keep_failing():
    gcm = (ProposalSpec(ProtocolId.ESP, ((EncrId.AES_GCM_16, 256),)),)
    net, pa, pb = up(a_kw={"lifetime_seconds": 100, "child_proposals": gcm},
                     b_kw={"lifetime_seconds": 100, "child_proposals": gcm})
    old = only_child(net, A_IP)
    hard = old.expire_at
    # the peers' CHILD proposals no longer overlap: every rekey gets NO_PROPOSAL_CHOSEN
    reload(net.engines[B_IP], replace(pb, child_proposals=(ESP_CBC,)))
    net.run(until=hard - 0.5)
    assert only_child(net, A_IP) is old and net.engines[A_IP].stats["child_rekeys_failed"] >= 1
    net.run(until=hard + 30)
    assert_consistent(net, children=0)  # deleted at the hard lifetime, by one end or the other
    assert any(r.reason == "hard lifetime expired" for ip in (A_IP, B_IP) for r in net.of_type(ip, ChildSARemove))
    assert len(net.engines[A_IP].ike_sas()) == 1  # the IKE SA stays


def test_child_sa_byte_lifetimes_from_the_kernel():
    net, pa, pb = up(a_kw={"lifetime_bytes": 1_000_000, "lifetime_seconds": 0},
                     b_kw={"lifetime_bytes": 1_000_000, "lifetime_seconds": 0})
    (inst,) = net.of_type(A_IP, ChildSAInstall)
    lt = inst.lifetime
    assert lt.hard_bytes == 1_000_000 and 850_000 <= lt.soft_bytes <= 950_000
    assert lt.hard_seconds == lt.soft_seconds == 0 and only_child(net, A_IP).deadlines() == []
    a = net.engines[A_IP]
    soft = KernelExpire(ProtocolId.ESP, inst.inbound.spi, inst.local_addr, hard=False)
    a.kernel_notice(soft, net.now)
    a.kernel_notice(soft, net.now)  # the kernel reports both directions: one rekey
    a.kernel_notice(replace(soft, spi=inst.outbound.spi), net.now)
    net.run(until=net.now + 30)
    assert_consistent(net, children=1)
    assert a.stats["child_rekeys_started"] == 1 and len(net.of_type(A_IP, ChildSAInstall)) == 2
    # a soft notice for the old SA, arriving late, does nothing
    a.kernel_notice(soft, net.now)
    net.run(until=net.now + 30)
    assert a.stats["child_rekeys_started"] == 1
    # hard: the SA goes (Delete to the peer), the IKE SA stays
    new = net.of_type(A_IP, ChildSAInstall)[-1]
    a.kernel_notice(KernelExpire(ProtocolId.ESP, new.outbound.spi, new.remote_addr, hard=True), net.now)
    a.kernel_notice(KernelExpire(ProtocolId.ESP, new.inbound.spi, new.local_addr, hard=True), net.now)
    net.run(until=net.now + 30)
    assert_consistent(net, children=0)
    assert net.of_type(A_IP, ChildSARemove)[-1].reason == "hard lifetime expired"
    assert a.stats["child_hard_expired"] == 2


def test_kernel_notice_for_an_unknown_spi_is_ignored():
    net, pa, pb = up()
    a = net.engines[A_IP]
    a.kernel_notice(KernelExpire(ProtocolId.ESP, 0x1234, None, hard=True), net.now)
    net.run(until=net.now + 30)
    assert_consistent(net, children=1)


def test_ike_sa_rekeys_by_time():
    net, pa, pb = up(a_kw={"ikelifetime": 200})
    child = only_child(net, A_IP)
    assert only_sa(net, B_IP).rekey_at is None  # ikelifetime 0: B never starts one
    start = net.now
    net.run(until=start + 1000)
    rekeys = len(net.of_type(A_IP, IkeSARekeyed))
    assert 5 <= rekeys <= 6  # every 170-190 s
    assert_consistent(net, children=1)
    assert only_child(net, A_IP) is child  # the same CHILD SA, moved each time
    assert only_sa(net, A_IP).initiator and len(net.of_type(B_IP, IkeSARekeyed)) == rekeys


def test_ike_sa_hard_lifetime_when_the_rekey_is_refused():
    net, pa, pb = up(a_kw={"ikelifetime": 200, "ike_proposals": (IKE_GCM,)}, b_kw={"ike_proposals": (IKE_GCM,)})
    reload(net.engines[B_IP], replace(pb, ike_proposals=(IKE_CBC,)))  # A's rekeys: NO_PROPOSAL_CHOSEN
    net.run(until=net.now + 250)
    assert net.engines[A_IP].stats["ike_rekeys_failed"] >= 1
    assert_consistent(net, ike_sas=0)
    for ip in (A_IP, B_IP):
        assert len(net.of_type(ip, IkeSADown)) == 1 and len(net.of_type(ip, ChildSARemove)) == 1
    assert net.of_type(A_IP, IkeSADown)[0].reason == "IKE SA lifetime expired"


def test_lifetimes_from_iked_conf():
    text = f"""
    ikev2 "a" active esp from 10.231.1.0/24 to 10.231.2.0/24 local {A_IP} peer {B_IP} \\
        srcid a.pk.test dstid b.pk.test ikelifetime 10m lifetime 2m bytes 64M psk "pk-test-psk-0123456789"
    """
    config, warnings = parse_config_text(text)
    (policy,) = config.policies
    assert (policy.ikelifetime, policy.lifetime_seconds, policy.lifetime_bytes) == (600, 120, 64 << 20)
    net, pa, pb = pair()
    a = net.add(A_IP, engine_for([policy], 3))
    a.initiate(policy, 0.0)
    net.run(until=30)
    (inst,) = net.of_type(A_IP, ChildSAInstall)
    assert inst.lifetime.hard_seconds == 120 and 102 <= inst.lifetime.soft_seconds <= 114
    assert inst.lifetime.hard_bytes == 64 << 20
    sa = only_sa(net, A_IP)
    assert 510 <= sa.rekey_at - sa.established_at <= 570 and sa.expire_at - sa.established_at == 600


def test_openiked_defaults():
    policy = Policy(name="x")
    assert (policy.ikelifetime, policy.lifetime_seconds, policy.lifetime_bytes) == (0, 10800, 4 << 30)
    assert Settings().dpd_check_interval == 60
    net, pa, pb = up()
    (inst,) = net.of_type(A_IP, ChildSAInstall)
    assert inst.lifetime.hard_seconds == 10800 and 9180 <= inst.lifetime.soft_seconds <= 10260
    assert inst.lifetime.hard_bytes == 4 << 30
    sa = only_sa(net, A_IP)
    assert sa.rekey_at is None and sa.expire_at is None  # OpenIKED: no active IKE SA rekey
    assert sa.dpd_at == pytest.approx(sa.last_received + 60, abs=60)


def test_soft_lifetimes_are_spread_over_the_margin():
    engine = engine_for([Policy(name="x")], 7)
    policy = Policy(name="x", lifetime_seconds=1000, lifetime_bytes=10**9)
    softs = [engine.child_lifetime(policy) for _ in range(2000)]
    seconds = sorted(lt.soft_seconds for lt in softs)
    assert seconds[0] >= 850 and seconds[-1] <= 950
    # spread: no second of the window holds more than a few percent of 2000 SAs
    from collections import Counter

    assert max(Counter(seconds).values()) < 60 and len(set(seconds)) > 90
    assert all(850 * 10**6 <= lt.soft_bytes <= 950 * 10**6 for lt in softs)
    assert child_sa.lifetime_for(policy, 0.0).soft_seconds == 850
    assert child_sa.lifetime_for(policy, 1.0).soft_seconds == 950


def test_many_children_do_not_rekey_in_the_same_second():
    # 20 IKE SAs (20 policies, one CHILD SA each) set up in the same second rekey spread out
    from .simnet import SimNet, psk_policy

    net = SimNet(seed=5)
    pols_a = [psk_policy(f"a{i}", A_IP, B_IP, f"10.231.1.{i}/32", f"10.231.2.{i}/32", f"a{i}.pk.test",
                         f"b{i}.pk.test", lifetime_seconds=1000, active=True) for i in range(20)]
    pols_b = [psk_policy(f"b{i}", B_IP, A_IP, f"10.231.2.{i}/32", f"10.231.1.{i}/32", f"b{i}.pk.test",
                         f"a{i}.pk.test", lifetime_seconds=100000) for i in range(20)]
    a = net.add(A_IP, engine_for(pols_a, 11))
    net.add(B_IP, engine_for(pols_b, 12))
    for i, policy in enumerate(pols_a):
        a.initiate(policy, i * 0.01)
    net.run(until=30)
    assert len(a.ike_sas()) == 20 and len(net.of_type(A_IP, ChildSAInstall)) == 20
    times = install_times(net, 1000, step=1.0)
    assert len(times) == 20 and 850 <= min(times) and max(times) <= 952
    assert len(set(times)) >= 15


@pytest.mark.parametrize("seconds", [0, 30])
def test_settings_from_set_options(seconds):
    text = f"set dpd_check_interval {seconds}\nset cookie_threshold 7\nset cookie_threshold_ip 2\n" \
           f"set halfopen_limit 50\nset halfopen_limit_ip 4\nset halfopen_timeout 20\n"
    config, _ = parse_config_text(text)
    s = config.settings
    assert (s.dpd_check_interval, s.cookie_threshold, s.cookie_threshold_ip, s.halfopen_limit,
            s.halfopen_limit_ip, s.halfopen_timeout) == (seconds, 7, 2, 50, 4, 20)
    engine = engine_for([Policy(name="x")], 1, settings=s)
    assert engine.guard.limit == 50 and engine.guard.limit_ip == 4
    assert engine.guard.cookie_threshold_ip == 2 and engine.guard.cookies.threshold == 7
    assert engine.half_open_timeout == 20.0
    engine.reload(PolicyStore(Config(settings=Settings(halfopen_limit=9))))
    assert engine.guard.limit == 9 and engine.guard.cookies.threshold == 100


def test_seeded_bytes_is_deterministic():
    assert seeded_bytes(1)(8) == seeded_bytes(1)(8)
