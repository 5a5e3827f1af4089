"""PolicyStore: iked.conf(5) policy evaluation (last match wins, quick, default, skip),
address families, host names, identities, traffic selectors, and the flow selectors the
engine proposes."""

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyiked.config import PolicyStore, flow_selectors, parse_config_text, parse_identity
from pyiked.config.identity import identity_from_payload
from pyiked.core.ts import TS

ip = ipaddress.ip_address


def store(text, **kw):
    config, _ = parse_config_text(text, check=False)
    return PolicyStore(config, **kw)


def names(policies):
    return [p.name for p in policies]


# iked.conf(5) EXAMPLES: "The peer 192.168.1.34 will always match the first policy because
# of the quick keyword; connections from the peers 192.168.1.3 and 192.168.1.2 will be
# matched by one of the last two policies; any other connections from 192.168.1.0/24 will
# be matched by the 'subnet' policy; and any other connection will be matched by the
# 'catch all' policy."
POLICY_ORDER = """\
ikev2 quick esp from 10.10.10.0/24 to 10.20.20.0/24 peer 192.168.1.34
ikev2 "catch all" esp from 10.0.1.0/24 to 10.0.2.0/24 peer any
ikev2 "subnet" esp from 10.0.3.0/24 to 10.0.4.0/24 peer 192.168.1.0/24
ikev2 esp from 10.0.5.0/30 to 10.0.5.4/30 peer 192.168.1.2
ikev2 esp from 10.0.5.8/30 to 10.0.5.12/30 peer 192.168.1.3
"""


@pytest.mark.parametrize(
    "peer, winner",
    [
        ("192.168.1.34", "policy1"),
        ("192.168.1.2", "policy4"),
        ("192.168.1.3", "policy5"),
        ("192.168.1.77", "subnet"),
        ("192.0.2.9", "catch all"),
    ],
)
def test_manual_page_policy_order(peer, winner):
    s = store(POLICY_ORDER)
    assert s.candidates("10.0.0.1", peer)[0].name == winner
    assert s.select("10.0.0.1", peer, None).name == winner


def test_candidates_are_best_first():
    s = store(POLICY_ORDER)
    assert names(s.candidates("10.0.0.1", "192.168.1.2")) == ["policy4", "subnet", "catch all"]
    # quick stops the evaluation: later rules are never reached.
    assert names(s.candidates("10.0.0.1", "192.168.1.34")) == ["policy1"]


def test_skip_rules_never_answer_but_can_be_initiated():
    s = store("ikev2 esp from 10.0.0.0/8 to 10.1.0.0/16 peer any\n"
              "ikev2 \"s\" skip active esp from 10.0.0.0/8 to 10.2.0.0/16 peer 192.0.2.1\n")
    assert names(s.candidates("10.0.0.1", "192.0.2.1")) == ["policy1"]
    assert names(s.active()) == ["s"]


def test_default_answers_when_nothing_matches_whatever_the_address():
    s = store("ikev2 esp from 10.0.0.0/8 to 10.1.0.0/16 peer 192.0.2.1\n"
              'ikev2 "d" default esp from 10.0.0.0/8 to 10.9.0.0/16 peer 198.51.100.0/24\n')
    assert names(s.candidates("10.0.0.1", "192.0.2.1")) == ["policy1", "d"]
    assert names(s.candidates("10.0.0.1", "203.0.113.5")) == ["d"]
    assert s.select("10.0.0.1", "203.0.113.5", None).name == "d"
    # A default rule whose addresses match is also a normal rule (last match wins).
    assert names(s.candidates("10.0.0.1", "198.51.100.7")) == ["d"]


def test_only_the_last_default_counts():
    s = store('ikev2 "d1" default esp from 10.0.0.0/8 to 10.9.0.0/16 peer 192.0.2.1\n'
              'ikev2 "d2" default esp from 10.0.0.0/8 to 10.8.0.0/16 peer 192.0.2.2\n')
    assert names(s.candidates("10.0.0.1", "203.0.113.5")) == ["d2"]


def test_no_match_and_no_default():
    s = store("ikev2 esp from 10.0.0.0/8 to 10.1.0.0/16 peer 192.0.2.1")
    assert s.candidates("10.0.0.1", "192.0.2.2") == []
    assert s.select("10.0.0.1", "192.0.2.2", None) is None


def test_local_address_and_address_families():
    s = store("ikev2 \"v4\" esp from 10.0.0.0/8 to 10.1.0.0/16 local 192.0.2.1 peer any\n"
              "ikev2 \"v6\" inet6 from 2001:db8:1::/48 to 2001:db8:2::/48 peer any\n"
              "ikev2 \"v4only\" inet from 10.0.0.0/8 to 10.3.0.0/16 peer any\n")
    assert names(s.candidates("192.0.2.1", "198.51.100.1")) == ["v4only", "v4"]
    assert names(s.candidates("192.0.2.99", "198.51.100.1")) == ["v4only"]
    assert names(s.candidates("2001:db8::1", "2001:db8::2")) == ["v6"]
    # An IPv4 address is never inside an IPv6 network (or the other way round).
    s = store("ikev2 from 10.0.0.0/8 to 10.1.0.0/16 peer ::/0")
    assert s.candidates("10.0.0.1", "192.0.2.1") == []


def test_addresses_in_other_forms():
    s = store("ikev2 esp from 10.0.0.0/8 to 10.1.0.0/16 peer 192.0.2.1")
    for local, remote in ((ip("10.0.0.1"), ip("192.0.2.1")), (b"\x0a\0\0\1", b"\xc0\0\2\1"),
                          (("10.0.0.1", 500), ("192.0.2.1", 4500))):
        assert names(s.candidates(local, remote)) == ["policy1"]


def test_peer_host_names_resolve_once_per_store():
    calls = []

    def resolver(name):
        calls.append(name)
        return {"gw.example": ["192.0.2.10", "2001:db8::10"]}.get(name, [])

    s = store("ikev2 esp from 10.0.0.0/8 to 10.1.0.0/16 peer gw.example\n"
              "ikev2 \"lost\" esp from 10.0.0.0/8 to 10.2.0.0/16 peer nowhere.example\n",
              resolver=resolver)
    assert names(s.candidates("10.0.0.1", "192.0.2.10")) == ["policy1"]
    assert names(s.candidates("::1", "2001:db8::10")) == ["policy1"]
    assert s.candidates("10.0.0.1", "192.0.2.11") == []
    assert sorted(calls) == ["gw.example", "nowhere.example"]
    assert [str(a) for a in s.peer_addresses(s.get("policy1"))] == ["192.0.2.10", "2001:db8::10"]
    assert s.peer_addresses(s.get("lost")) == []


def test_select_by_identity():
    s = store('ikev2 "alice" esp from 10.0.0.0/8 to 10.1.0.0/16 peer any dstid alice@example.com\n'
              'ikev2 "bob" esp from 10.0.0.0/8 to 10.2.0.0/16 peer any dstid "/C=DE/CN=bob"\n'
              'ikev2 "gw" esp from 10.0.0.0/8 to 10.3.0.0/16 peer any srcid gw.example dstid '
              "198.51.100.1\n")
    alice = identity_from_payload(3, b"alice@example.com")
    bob = parse_identity("C=de, CN=BOB")
    assert s.select("10.0.0.1", "192.0.2.1", alice).name == "alice"
    assert s.select("10.0.0.1", "192.0.2.1", bob).name == "bob"
    assert s.select("10.0.0.1", "192.0.2.1", parse_identity("eve@example.com")) is None
    peer = parse_identity("198.51.100.1")
    assert s.select("10.0.0.1", "192.0.2.1", peer).name == "gw"
    assert s.select("10.0.0.1", "192.0.2.1", peer, local_id=parse_identity("GW.example")).name \
        == "gw"
    assert s.select("10.0.0.1", "192.0.2.1", peer, local_id=parse_identity("other")) is None
    # Without an identity, the last address match wins.
    assert s.select("10.0.0.1", "192.0.2.1", None).name == "gw"


def test_select_transport_and_traffic_selectors():
    s = store('ikev2 "tun" esp from 10.1.0.0/16 to 10.2.0.0/16 peer any\n'
              'ikev2 "tr" transport esp from 192.0.2.1 to 192.0.2.2 peer any\n')
    assert s.select("192.0.2.1", "192.0.2.2", None, transport=True).name == "tr"
    net = TS.from_network
    got = s.select("192.0.2.1", "192.0.2.2", None,
                   ts_local=[net("10.1.2.0/24")], ts_remote=[net("10.2.0.0/16")])
    assert got.name == "tun"
    assert s.select("192.0.2.1", "192.0.2.2", None,
                    ts_local=[net("10.9.0.0/16")], ts_remote=[net("10.2.0.0/16")]) is None


def test_accept_predicate_applies_during_evaluation():
    s = store(POLICY_ORDER)
    got = s.candidates("10.0.0.1", "192.168.1.2", accept=lambda p: p.name != "policy4")
    assert names(got) == ["subnet", "catch all"]
    got = s.select("10.0.0.1", "192.168.1.34", None, accept=lambda p: not p.quick)
    assert got.name == "subnet"


def test_strongswan_capture_responder_choice():
    # tests/data/strongswan/gcm.responder.log: the responder 10.231.0.2 ("b.pk.test") is
    # looked up "for 10.231.0.2[b.pk.test]...10.231.0.1[a.pk.test]" and the CHILD SA is
    # established "with ... TS 10.231.2.0/24 === 10.231.1.0/24" (local === remote).
    s = store('ikev2 "s2s" passive esp from 10.231.2.0/24 to 10.231.1.0/24 '
              "local 10.231.0.2 peer 10.231.0.1 "
              'srcid b.pk.test dstid a.pk.test psk "pk-test-psk-0123456789"')
    assert names(s.candidates("10.231.0.2", "10.231.0.1")) == ["s2s"]
    policy = s.select(
        "10.231.0.2", "10.231.0.1",
        identity_from_payload(2, b"a.pk.test"),
        local_id=identity_from_payload(2, b"b.pk.test"),
        ts_local=[TS.from_network("10.231.2.0/24")],
        ts_remote=[TS.from_network("10.231.1.0/24")],
    )
    assert policy.name == "s2s"
    local, remote = s.flow_selectors(policy)
    assert [str(t) for t in local] == ["10.231.2.0/24"]
    assert [str(t) for t in remote] == ["10.231.1.0/24"]
    assert s.active() == []


def test_active_and_global_passive():
    text = ('ikev2 "a" active esp from 10.0.0.0/8 to 10.1.0.0/16 peer 192.0.2.1\n'
            'ikev2 "p" esp from 10.0.0.0/8 to 10.2.0.0/16 peer 192.0.2.2\n')
    assert names(store(text).active()) == ["a"]
    assert store("set passive\n" + text).active() == []


def test_users():
    s = store('user "alice" "pw"\nikev2 from any to any peer any')
    assert s.user("alice").password == b"pw" and s.user("bob") is None


# -- flow selectors ----------------------------------------------------------------------


def policy(text):
    config, _ = parse_config_text(text, check=False)
    return config.policies[0]


def ts(text):
    return [str(t) for t in text]


def test_flow_selectors_ports_and_protocols():
    p = policy("ikev2 proto { tcp, udp } from 10.0.0.0/8 port 23 to 20.0.0.0/8 port 40 peer any")
    local, remote = flow_selectors(p)
    assert ts(local) == ["10.0.0.0/8 proto 6 port 23", "10.0.0.0/8 proto 17 port 23"]
    assert ts(remote) == ["20.0.0.0/8 proto 6 port 40", "20.0.0.0/8 proto 17 port 40"]


def test_flow_selectors_any_takes_the_other_side_family_or_both():
    local, remote = flow_selectors(policy("ikev2 from any to 2001:db8::/32 peer any"))
    assert ts(local) == ["::/0"] and ts(remote) == ["2001:db8::/32"]
    local, remote = flow_selectors(policy("ikev2 from any to any peer any"))
    assert ts(local) == ts(remote) == ["0.0.0.0/0", "::/0"]


def test_flow_selectors_dynamic():
    # Before an address is assigned a remote access client proposes the whole range
    # (RFC 7296 §2.19); afterwards the assigned address replaces `dynamic`.
    p = policy("ikev2 from dynamic to any peer 192.0.2.1 request address any")
    local, remote = flow_selectors(p)
    assert ts(local) == ["0.0.0.0/0", "::/0"] and ts(remote) == ["0.0.0.0/0", "::/0"]
    local, remote = flow_selectors(p, dynamic="10.8.0.5")
    assert ts(local) == ["10.8.0.5/32"] and ts(remote) == ["0.0.0.0/0"]
    local, remote = flow_selectors(p, dynamic=["10.8.0.5", "2001:db8:8::5"])
    assert ts(local) == ["10.8.0.5/32", "2001:db8:8::5/128"]
    p = policy("ikev2 from 10.1.0.0/16 to dynamic peer any config address 10.8.0.0/24")
    local, remote = flow_selectors(p, dynamic=ip("10.8.0.9"))
    assert ts(local) == ["10.1.0.0/16"] and ts(remote) == ["10.8.0.9/32"]


def test_flow_selectors_keep_order_and_drop_duplicates():
    p = policy("ikev2 from 10.0.0.0/8 to 20.0.0.0/8, from 10.0.0.0/8 to 30.0.0.0/8 peer any")
    local, remote = flow_selectors(p)
    assert ts(local) == ["10.0.0.0/8"] and ts(remote) == ["20.0.0.0/8", "30.0.0.0/8"]


def test_reload_is_a_new_store():
    old = store("ikev2 \"old\" from 10.0.0.0/8 to 10.1.0.0/16 peer any")
    new = store("ikev2 \"new\" from 10.0.0.0/8 to 10.1.0.0/16 peer any")
    current = old
    seen = current  # an exchange in flight keeps the store it started with
    current = new
    assert seen.candidates("10.0.0.1", "192.0.2.1")[0].name == "old"
    assert current.candidates("10.0.0.1", "192.0.2.1")[0].name == "new"


PEERS = ["any", "10.231.0.0/16", "10.231.1.0/24", "10.231.1.4/30", "10.231.1.5", "10.231.2.0/24",
         "10.0.0.0/8", "2001:db8::/32", "2001:db8::5", "0.0.0.0/0"]


@settings(max_examples=150, deadline=None)
@given(rules=st.lists(st.tuples(st.sampled_from(PEERS), st.booleans()), min_size=1, max_size=12),
       host=st.integers(0, 7))
def test_indexes_give_what_a_scan_of_every_rule_gives(rules, host):
    # the host and prefix indexes must not change which rules match, nor their order
    text = "".join(f'ikev2 "r{i}"{" quick" if quick else ""} passive esp from 10.231.9.0/24 to '
                   f'10.231.8.0/24 peer {peer} psk "k"\n' for i, (peer, quick) in enumerate(rules))
    s = store(text)
    for remote in (f"10.231.1.{host}", f"10.231.2.{host}", f"10.9.0.{host}", f"2001:db8::{host}",
                   f"192.0.2.{host}"):
        key = (ipaddress.ip_address(remote).version, int(ipaddress.ip_address(remote)))
        scanned = [e for e in s._entries if e.peer.match(key)]
        assert list(s._in_order(key)) == scanned, remote
