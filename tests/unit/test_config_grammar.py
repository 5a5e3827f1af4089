"""Every iked.conf keyword (iked.conf(5), parse.y) and what it becomes in the model."""

import ipaddress
import os

import pytest

from pyiked.config import Settings, parse_config_text
from pyiked.config.model import DEFAULT_CHILD_PROPOSALS, DEFAULT_IKE_PROPOSALS, CfgOption, Flow
from pyiked.config.names import ENCR, GROUP
from pyiked.core.iana import (
    EncrId,
    EsnId,
    IDType,
    IntegId,
    KeId,
    PrfId,
    ProtocolId,
)

net = ipaddress.ip_network
addr = ipaddress.ip_address
RULE = "ikev2 esp from 10.0.0.0/8 to 10.1.0.0/16 peer 192.0.2.1"


def parse(text, **kw):
    return parse_config_text(text, check=False, **kw)[0]


def rule(text, **kw):
    config = parse(text, **kw)
    assert len(config.policies) == 1
    return config.policies[0]


# -- global settings -------------------------------------------------------------------


def test_defaults_without_set_lines():
    assert parse(RULE).settings == Settings()
    s = Settings()
    assert (s.active, s.couple, s.fragmentation, s.mobike, s.vendorid) == (
        True, True, False, True, True
    )
    assert (s.enforcesingleikesa, s.stickyaddress, s.cert_partial_chain) == (False, False, False)
    assert (s.ocsp, s.ocsp_tolerate, s.ocsp_maxage, s.dpd_check_interval) == (None, 0, -1, 60)


@pytest.mark.parametrize(
    "line, field, value",
    [
        ("set passive", "active", False),
        ("set active", "active", True),
        ("set decouple", "couple", False),
        ("set couple", "couple", True),
        ("set fragmentation", "fragmentation", True),
        ("set nofragmentation", "fragmentation", False),
        ("set nomobike", "mobike", False),
        ("set mobike", "mobike", True),
        ("set novendorid", "vendorid", False),
        ("set vendorid", "vendorid", True),
        ("set enforcesingleikesa", "enforcesingleikesa", True),
        ("set noenforcesingleikesa", "enforcesingleikesa", False),
        ("set stickyaddress", "stickyaddress", True),
        ("set nostickyaddress", "stickyaddress", False),
        ("set cert_partial_chain", "cert_partial_chain", True),
        ("set dpd_check_interval 30", "dpd_check_interval", 30),
        ("set dpd_check_interval 0", "dpd_check_interval", 0),
        ("set dpd_check_interval 2m", "dpd_check_interval", 120),
        ("set cookie_threshold 250", "cookie_threshold", 250),
        ("set cookie_threshold 0", "cookie_threshold", 0),
        ("set cookie_threshold_ip 3", "cookie_threshold_ip", 3),
        ("set halfopen_limit 50000", "halfopen_limit", 50000),
        ("set halfopen_limit_ip 10", "halfopen_limit_ip", 10),
        ("set halfopen_timeout 30", "halfopen_timeout", 30),
        ("set halfopen_timeout 1m", "halfopen_timeout", 60),
        ("set cookie_secret_lifetime 2m", "cookie_secret_lifetime", 120),
        ("set cookie_hold 30", "cookie_hold", 30),
        ("set invalid_spi_rate 0", "invalid_spi_rate", 0),
        ("set invalid_spi_rate 50", "invalid_spi_rate", 50),
    ],
)
def test_set(line, field, value):
    assert getattr(parse(f"{line}\n{RULE}").settings, field) == value


def test_set_ocsp_forms():
    s = parse('set ocsp "http://ocsp.example/"').settings
    assert (s.ocsp, s.ocsp_tolerate, s.ocsp_maxage) == ("http://ocsp.example/", 0, -1)
    s = parse("set ocsp http://ocsp.example/ tolerate 5m").settings
    assert (s.ocsp, s.ocsp_tolerate, s.ocsp_maxage) == ("http://ocsp.example/", 300, -1)
    s = parse('set ocsp "http://o/" tolerate 10 maxage 1h').settings
    assert (s.ocsp_tolerate, s.ocsp_maxage) == (10, 3600)


def test_later_set_wins():
    assert parse("set passive\nset active").settings.active is True


def test_user_lines():
    config = parse('user "alice" "pw one"\nuser bob secret')
    assert [(u.name, u.password) for u in config.users] == [
        ("alice", b"pw one"),
        ("bob", b"secret"),
    ]
    assert "secret" not in repr(config.users[1])


# -- macros and include --------------------------------------------------------------


def test_macros_expand_outside_quotes_only():
    p = rule('gw = "192.0.2.7"\nnet = 10.9.0.0\n'
             'ikev2 "$gw" esp from $net/16 to 10.1.0.0/16 peer $gw tag "$gw"')
    assert p.name == "$gw" and p.tag == "$gw"
    assert p.peer == net("192.0.2.7/32")
    assert p.flows[0].src == net("10.9.0.0/16")


def test_macro_value_is_the_strings_joined_by_spaces():
    p = rule('both = "{ tcp," udp "}"\nikev2 esp proto $both from 10.0.0.0/8 to 10.1.0.0/16 '
             "peer any")
    assert [f.proto for f in p.flows] == [6, 17]


def test_macro_can_hold_keywords():
    p = rule('mode = "active transport"\n'
             "ikev2 $mode esp from 10.0.0.1 to 10.0.0.2")
    assert p.active and p.transport


def test_macro_defined_from_another_macro():
    p = rule("a = 192.0.2.1\nb = $a\n" + "ikev2 esp from 10.0.0.0/8 to 10.1.0.0/16 peer $b")
    assert p.peer == net("192.0.2.1/32")


def test_command_line_defines_override_the_file():
    text = 'gw = "192.0.2.1"\n' + "ikev2 esp from 10.0.0.0/8 to 10.1.0.0/16 peer $gw"
    assert rule(text, defines={"gw": "198.51.100.9"}).peer == net("198.51.100.9/32")
    # A define that the file does not set is usable too.
    p = rule("ikev2 esp from 10.0.0.0/8 to 10.1.0.0/16 peer $x", defines={"x": "192.0.2.5"})
    assert p.peer == net("192.0.2.5/32")


def test_include(tmp_path):
    inc = tmp_path / "macros.conf"
    inc.write_text('peer_gw = "192.0.2.44"\nset nomobike\n')
    os.chmod(inc, 0o600)
    config, warnings = parse_config_text(
        f'include "{inc}"\n' + "ikev2 esp from 10.0.0.0/8 to 10.1.0.0/16 peer $peer_gw",
        check=False,
    )
    assert config.policies[0].peer == net("192.0.2.44/32")
    assert config.settings.mobike is False
    assert config.files == ("iked.conf", str(inc))
    assert not warnings


def test_include_is_relative_to_the_including_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.conf").write_text("set passive\n")
    (tmp_path / "a.conf").write_text('include "sub/b.conf"\n')
    config = parse('include "a.conf"', base_dir=str(tmp_path))
    assert config.settings.active is False


def test_include_warns_about_a_world_readable_file(tmp_path):
    inc = tmp_path / "x.conf"
    inc.write_text("set passive\n")
    os.chmod(inc, 0o644)
    _, warnings = parse_config_text(f'include "{inc}"', check=False)
    assert any("group writable or world read/writable" in w for w in warnings)


def test_ipsec_conf_lines_are_skipped_with_a_warning():
    config, warnings = parse_config_text(f"flow esp from 1.2.3.4 to 5.6.7.8\n{RULE}", check=False)
    assert len(config.policies) == 1
    assert warnings[0] == (
        'iked.conf:1:1: warning: ignoring a "flow" line: not an iked.conf statement'
    )


# -- rule head ---------------------------------------------------------------------------


def test_minimal_rule_defaults():
    p = rule(RULE)
    assert p.name == "policy1" and p.source == "iked.conf:1"
    assert not (p.quick or p.skip or p.default or p.active or p.ipcomp or p.transport or p.natt)
    assert p.protocol == ProtocolId.ESP and p.af == 0 and p.rdomain is None
    assert p.ike_proposals == () and p.child_proposals == ()
    assert p.ike_proposals_or_default == DEFAULT_IKE_PROPOSALS
    assert p.child_proposals_or_default == DEFAULT_CHILD_PROPOSALS
    assert (p.ikelifetime, p.lifetime_seconds, p.lifetime_bytes) == (0, 10800, 4 * 1024**3)
    assert p.auth.method == "signature" and p.auth.psk is None
    assert (p.srcid, p.dstid, p.iface, p.tag, p.tap) == (None,) * 5


def test_generated_names_count_rules():
    config = parse(f"{RULE}\nikev2 named esp from 10.0.0.1 to 10.0.0.2\n{RULE}")
    assert [p.name for p in config.policies] == ["policy1", "named", "policy3"]


@pytest.mark.parametrize(
    "words, attrs",
    [
        ("quick", {"quick": True}),
        ("skip", {"skip": True}),
        ("default", {"default": True}),
        ("passive", {"active": False}),
        ("active", {"active": True}),
        ("ipcomp", {"ipcomp": True}),
        ("tunnel", {"transport": False}),
        ("transport", {"transport": True}),
        ("natt", {"natt": True}),
        ("esp", {"protocol": ProtocolId.ESP}),
        ("ah", {"protocol": ProtocolId.AH}),
        ("inet", {"af": 4}),
        ("quick active ipcomp transport natt ah inet", {
            "quick": True, "active": True, "ipcomp": True, "transport": True, "natt": True,
            "protocol": ProtocolId.AH, "af": 4,
        }),
    ],
)
def test_head_flags(words, attrs):
    p = rule(f'ikev2 "n" {words} from 10.0.0.0/8 to 10.1.0.0/16 peer 192.0.2.1')
    for key, value in attrs.items():
        assert getattr(p, key) == value


def test_inet6():
    assert rule("ikev2 inet6 from 2001:db8::/64 to 2001:db8:1::/64 peer 2001:db8::1").af == 6


def test_rdomain():
    assert rule("ikev2 esp rdomain 7 from 10.0.0.0/8 to 10.1.0.0/16 peer any").rdomain == 7


@pytest.mark.parametrize(
    "proto, expect",
    [("tcp", [6]), ("47", [47]), ("{ tcp, udp }", [6, 17]), ("{tcp udp icmp}", [6, 17, 1]),
     ("gre", [47]), ("ipv6-icmp", [58]), ("esp", [50])],
)
def test_proto(proto, expect):
    p = rule(f"ikev2 proto {proto} from 10.0.0.0/8 to 10.1.0.0/16 peer any")
    assert [f.proto for f in p.flows] == expect


# -- flows -------------------------------------------------------------------------------


def test_from_to_with_ports_names_and_numbers():
    p = rule("ikev2 proto tcp from 10.0.0.0/8 port 23 to 20.0.0.0/8 port https peer any")
    assert p.flows == (Flow(net("10.0.0.0/8"), net("20.0.0.0/8"), 23, 443, 6),)


def test_to_from_order_is_accepted():
    p = rule("ikev2 proto udp to 20.0.0.0/8 port 53 from 10.0.0.0/8 peer any")
    assert p.flows == (Flow(net("10.0.0.0/8"), net("20.0.0.0/8"), 0, 53, 17),)


def test_host_addresses_become_host_networks():
    p = rule("ikev2 from 192.168.1.1 to 2001:db8::1/128, from 1.2.3.4/24 to 5.6.7.8 peer any"
             .replace("2001:db8::1/128", "192.168.2.2"))
    assert p.flows[0].src == net("192.168.1.1/32")
    assert p.flows[1].src == net("1.2.3.0/24")  # host bits are masked


def test_several_pairs_with_and_without_commas_and_protocol_expansion():
    p = rule("ikev2 proto { tcp, udp } from 10.0.0.0/8 to 20.0.0.0/8, "
             "from 10.1.0.0/16 to 20.1.0.0/16 from 10.2.0.0/16 to 20.2.0.0/16 peer any")
    assert [(str(f.src), f.proto) for f in p.flows] == [
        ("10.0.0.0/8", 6), ("10.0.0.0/8", 17),
        ("10.1.0.0/16", 6), ("10.1.0.0/16", 17),
        ("10.2.0.0/16", 6), ("10.2.0.0/16", 17),
    ]


def test_address_lists_expand_to_every_flow():
    p = rule("ikev2 from { 10.0.0.0/8, 10.9.0.0/16 } to { 20.0.0.0/8 20.9.0.0/16 } peer any")
    assert [(str(f.src), str(f.dst)) for f in p.flows] == [
        ("10.0.0.0/8", "20.0.0.0/8"), ("10.0.0.0/8", "20.9.0.0/16"),
        ("10.9.0.0/16", "20.0.0.0/8"), ("10.9.0.0/16", "20.9.0.0/16"),
    ]


def test_any_and_dynamic():
    p = rule("ikev2 from dynamic to any peer any request address any")
    assert p.flows == (Flow(None, None, src_dynamic=True),)
    p = rule("ikev2 from any to dynamic peer any config address 10.8.0.0/24")
    assert p.flows == (Flow(None, None, dst_dynamic=True),)


def test_dynamic_without_an_address_option_warns():
    _, warnings = parse_config_text("ikev2 from any to dynamic peer any", check=False)
    assert any('"dynamic" needs a "config address"' in w for w in warnings)


def test_flow_nat_in_both_written_orders():
    for text in ("from 10.10.10.1 (192.168.1.0/24) port 80 to 192.168.2.0/24",
                 "from 10.10.10.1 port 80 (192.168.1.0/24) to 192.168.2.0/24"):
        p = rule(f"ikev2 proto tcp {text} peer 10.10.20.1")
        assert p.flows == (
            Flow(net("10.10.10.1/32"), net("192.168.2.0/24"), 80, 0, 6, net("192.168.1.0/24")),
        )


def test_host_names_in_flows_are_resolved():
    resolved = {"gw.example": [addr("192.0.2.1"), addr("2001:db8::1")], "v4.example": [
        addr("198.51.100.3")]}
    p = rule("ikev2 from v4.example to gw.example peer any", resolver=resolved.get)
    # One flow per address pair of the same family (the IPv6 address pairs with nothing).
    assert [(str(f.src), str(f.dst)) for f in p.flows] == [("198.51.100.3/32", "192.0.2.1/32")]
    p = rule("ikev2 from 10.0.0.0/8 to v4.example/24 peer any", resolver=resolved.get)
    assert [str(f.dst) for f in p.flows] == ["198.51.100.0/24"]


def test_duplicate_flow_is_dropped_with_a_warning():
    config, warnings = parse_config_text(
        "ikev2 from 10.0.0.0/8 to 20.0.0.0/8, from 10.0.0.0/8 to 20.0.0.0/8 peer any",
        check=False,
    )
    assert len(config.policies[0].flows) == 1
    assert any("duplicate flow" in w for w in warnings)


# -- local and peer ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, local, peer, peer_host, local_host",
    [
        ("peer 192.0.2.1", None, net("192.0.2.1/32"), None, None),
        ("peer 192.0.2.0/24 local 198.51.100.1",
         net("198.51.100.1/32"), net("192.0.2.0/24"), None, None),
        ("local 198.51.100.1 peer any", net("198.51.100.1/32"), None, None, None),
        ("local any", None, None, None, None),
        ("peer gw.example.com", None, None, "gw.example.com", None),
        ("peer any local eth0", None, None, None, "eth0"),
    ],
)
def test_local_and_peer(text, local, peer, peer_host, local_host):
    p = rule(f"ikev2 from 10.0.0.0/8 to 10.1.0.0/16 {text}")
    assert (p.local, p.peer, p.peer_host, p.local_host) == (local, peer, peer_host, local_host)


def test_single_pair_without_peer_uses_its_hosts():
    # iked.conf(5): for host-to-host rules the peer "will be set to dst automatically".
    p = rule("ikev2 esp from 192.168.3.1 to 192.168.3.2")
    assert (p.local, p.peer) == (net("192.168.3.1/32"), net("192.168.3.2/32"))
    p = rule("ikev2 esp from any to dynamic config address 10.0.0.0/24")
    assert (p.local, p.peer) == (None, None)


# -- proposals ---------------------------------------------------------------------------


def test_ikesa_and_childsa_blocks_are_proposals():
    p = rule(RULE + " ikesa enc aes-256-gcm prf hmac-sha2-256 group curve25519"
             " ikesa enc aes-128 auth hmac-sha2-256 prf hmac-sha2-256 group modp2048"
             " childsa enc aes-256-gcm childsa enc aes-128 auth hmac-sha2-256 group ecp256 noesn")
    ike1, ike2 = p.ike_proposals
    assert ike1.protocol == ProtocolId.IKE
    assert (ike1.encr, ike1.prf, ike1.integ, ike1.ke) == (
        ((EncrId.AES_GCM_16, 256),), (PrfId.HMAC_SHA2_256,), (), (KeId.CURVE25519,))
    assert (ike2.encr, ike2.prf, ike2.integ, ike2.ke) == (
        ((EncrId.AES_CBC, 128),), (PrfId.HMAC_SHA2_256,), (IntegId.HMAC_SHA2_256_128,),
        (KeId.MODP2048,))
    child1, child2 = p.child_proposals
    assert (child1.protocol, child1.encr, child1.integ, child1.ke, child1.esn) == (
        ProtocolId.ESP, ((EncrId.AES_GCM_16, 256),), (), (), (EsnId.ESN, EsnId.NO_ESN))
    assert (child2.encr, child2.integ, child2.ke, child2.esn) == (
        ((EncrId.AES_CBC, 128),), (IntegId.HMAC_SHA2_256_128,), (KeId.ECP256,),
        (EsnId.NO_ESN,))


def test_missing_transform_types_take_the_defaults():
    aead, cbc = DEFAULT_IKE_PROPOSALS
    (p1,) = rule(RULE + " ikesa enc aes-128-gcm").ike_proposals
    assert (p1.prf, p1.integ, p1.ke) == (aead.prf, (), aead.ke)
    (p2,) = rule(RULE + " ikesa auth hmac-sha2-512").ike_proposals
    assert (p2.encr, p2.prf, p2.integ, p2.ke) == (
        cbc.encr, cbc.prf, (IntegId.HMAC_SHA2_512_256,), cbc.ke)


def test_block_without_enc_or_auth_gives_aead_and_cbc_proposals():
    # parse.y create_ike: neither "auth" nor "noauth" ciphers named -> both proposals.
    props = rule(RULE + " ikesa group ecp384").ike_proposals
    assert [p.encr for p in props] == [p.encr for p in DEFAULT_IKE_PROPOSALS]
    assert all(p.ke == (KeId.ECP384,) for p in props)
    props = rule(RULE + " childsa group curve25519").child_proposals
    assert [p.encr for p in props] == [p.encr for p in DEFAULT_CHILD_PROPOSALS]
    assert all(p.ke == (KeId.CURVE25519,) for p in props)


def test_several_transforms_of_a_type_in_one_block():
    (p,) = rule(RULE + " ikesa enc aes-256 enc aes-128 auth hmac-sha2-512 auth hmac-sha2-256"
                " prf hmac-sha2-384 prf hmac-sha2-256 group ecp256 group ecp256").ike_proposals
    assert p.encr == ((EncrId.AES_CBC, 256), (EncrId.AES_CBC, 128))
    assert p.integ == (IntegId.HMAC_SHA2_512_256, IntegId.HMAC_SHA2_256_128)
    assert p.prf == (PrfId.HMAC_SHA2_384, PrfId.HMAC_SHA2_256)
    assert p.ke == (KeId.ECP256,)  # duplicates collapse


def test_childsa_group_none_means_no_pfs():
    (p,) = rule(RULE + " childsa enc aes-128-gcm group none").child_proposals
    assert p.ke == ()
    (p,) = rule(RULE + " childsa enc aes-128-gcm group none group ecp256").child_proposals
    assert p.ke == (KeId.NONE, KeId.ECP256)


def test_childsa_esn_keywords():
    (p,) = rule(RULE + " childsa enc aes-128-gcm esn").child_proposals
    assert p.esn == (EsnId.ESN,)
    (p,) = rule(RULE + " childsa enc aes-128-gcm noesn esn").child_proposals
    assert p.esn == (EsnId.NO_ESN, EsnId.ESN)


def test_ah_proposals_carry_integrity_only():
    p = rule("ikev2 ah from 10.0.0.0/8 to 10.1.0.0/16 peer any")
    (prop,) = p.child_proposals
    assert (prop.protocol, prop.encr, prop.ke) == (ProtocolId.AH, (), ())
    assert prop.integ == (IntegId.HMAC_SHA2_256_128, IntegId.HMAC_SHA2_384_192,
                          IntegId.HMAC_SHA2_512_256)
    (prop,) = rule("ikev2 ah from 10.0.0.0/8 to 10.1.0.0/16 peer any childsa auth hmac-sha2-384"
                   ).child_proposals
    assert prop.integ == (IntegId.HMAC_SHA2_384_192,)


@pytest.mark.parametrize("name", sorted(ENCR))
def test_every_cipher_name(name):
    xf = ENCR[name]
    block = "ikesa" if "ike" in xf.where else "childsa"
    extra = "" if xf.aead else " auth hmac-sha2-256"
    p = rule(f"{RULE} {block} enc {name}{extra}")
    props = p.ike_proposals or p.child_proposals
    assert props[0].encr == ((xf.encr, xf.bits),)


def test_cipher_ids_and_key_lengths():
    assert ENCR["aes-128-gcm-12"].encr == EncrId.AES_GCM_12
    assert (ENCR["aes-192-ctr"].encr, ENCR["aes-192-ctr"].bits) == (EncrId.AES_CTR, 192)
    assert (ENCR["chacha20-poly1305"].encr, ENCR["chacha20-poly1305"].bits) == (
        EncrId.CHACHA20_POLY1305, 0)
    assert (ENCR["3des"].encr, ENCR["3des"].bits) == (EncrId.TRIPLE_DES, 0)
    assert ENCR["aes-256-gmac"].encr == EncrId.NULL_AUTH_AES_GMAC
    assert ENCR["null"].encr == EncrId.NULL


@pytest.mark.parametrize(
    "name, prf, integ",
    [
        ("hmac-md5", PrfId.HMAC_MD5, IntegId.HMAC_MD5_96),
        ("hmac-sha1", PrfId.HMAC_SHA1, IntegId.HMAC_SHA1_96),
        ("hmac-sha2-256", PrfId.HMAC_SHA2_256, IntegId.HMAC_SHA2_256_128),
        ("hmac-sha2-384", PrfId.HMAC_SHA2_384, IntegId.HMAC_SHA2_384_192),
        ("hmac-sha2-512", PrfId.HMAC_SHA2_512, IntegId.HMAC_SHA2_512_256),
    ],
)
def test_prf_and_auth_names(name, prf, integ):
    (p,) = rule(f"{RULE} ikesa enc aes-128 prf {name} auth {name}").ike_proposals
    assert (p.prf, p.integ) == ((prf,), (integ,))


GROUP_IDS = {
    "modp768": 1, "modp1024": 2, "modp1536": 5, "modp2048": 14, "modp3072": 15,
    "modp4096": 16, "modp6144": 17, "modp8192": 18, "ecp256": 19, "ecp384": 20,
    "ecp521": 21, "ecp192": 25, "ecp224": 26, "brainpool224": 27, "brainpool256": 28,
    "brainpool384": 29, "brainpool512": 30, "curve25519": 31, "curve448": 32,
    "mlkem768": 36, "mlkem1024": 37, "sntrup761x25519": 1035,
}


@pytest.mark.parametrize("name, number", sorted(GROUP_IDS.items()))
def test_every_group_name_and_its_grp_alias(name, number):
    # IANA "Transform Type 4" numbers (RFC 7296, 5903, 7748, 6932, RFC 9370 registry).
    (p,) = rule(f"{RULE} ikesa enc aes-128-gcm group {name}").ike_proposals
    assert p.ke == (number,)
    alias = f"grp{number}"
    if alias in GROUP:
        (p,) = rule(f"{RULE} ikesa enc aes-128-gcm group {alias}").ike_proposals
        assert p.ke == (number,)


# -- identities, lifetimes, authentication -----------------------------------------------


def test_srcid_and_dstid():
    p = rule(RULE + ' srcid host.example.com dstid "/C=DE/CN=peer"')
    assert (p.srcid.id_type, p.srcid.data) == (IDType.ID_FQDN, b"host.example.com")
    assert p.dstid.id_type == IDType.ID_DER_ASN1_DN
    p = rule(RULE + " dstid 192.168.0.254")
    assert p.srcid is None and p.dstid.data == bytes([192, 168, 0, 254])


@pytest.mark.parametrize(
    "text, ike, seconds, nbytes",
    [
        ("ikelifetime 3600", 3600, 10800, 4 * 1024**3),
        ("ikelifetime 2h lifetime 30m", 7200, 1800, 4 * 1024**3),
        ("lifetime 1h bytes 512M", 0, 3600, 512 * 1024**2),
        ("lifetime 600 bytes 100k", 0, 600, 100 * 1024),
        ("lifetime 2H bytes 2G", 0, 7200, 2 * 1024**3),
        ("lifetime 0 bytes 12345", 0, 0, 12345),
    ],
)
def test_lifetimes(text, ike, seconds, nbytes):
    p = rule(f"{RULE} {text}")
    assert (p.ikelifetime, p.lifetime_seconds, p.lifetime_bytes) == (ike, seconds, nbytes)


def test_psk_forms(tmp_path):
    assert rule(RULE + ' psk "foo bar"').auth.psk == b"foo bar"
    assert rule(RULE + " psk unquoted").auth.psk == b"unquoted"
    assert rule(RULE + " psk 0x0123abCD").auth.psk == bytes.fromhex("0123abcd")
    key = tmp_path / "psk"
    key.write_text("00112233445566778899\n")
    os.chmod(key, 0o600)
    auth = rule(RULE + f' psk file "{key}"').auth
    assert auth.method == "psk" and auth.psk == bytes.fromhex("00112233445566778899")
    assert auth.psk_file == str(key)
    assert "0011" not in repr(auth)


def test_psk_file_permissions_are_checked_like_iked(tmp_path):
    from pyiked.config import ConfigError

    key = tmp_path / "psk"
    key.write_text("0011\n")
    os.chmod(key, 0o640)  # group-readable is fine for iked
    assert rule(RULE + f' psk file "{key}"').auth.psk == b"\x00\x11"
    os.chmod(key, 0o604)
    with pytest.raises(ConfigError) as exc:
        rule(RULE + f' psk file "{key}"')
    assert exc.value.message == f"psk file {key}: group writable or world read/writable"


@pytest.mark.parametrize("method", ["rsa", "ecdsa256", "ecdsa384", "ecdsa521", "rfc7427",
                                    "signature"])
def test_signature_methods(method):
    assert rule(f"{RULE} {method}").auth.method == method


def test_eap_mschap_v2_any_spelling():
    for text in ('"mschap-v2"', "MSCHAP-V2", '"mschap_v2"'):
        auth = rule(f"{RULE} eap {text}").auth
        assert (auth.method, auth.eap) == ("eap", "mschap-v2")


# -- configuration payload and filters ---------------------------------------------------


def test_config_and_request_options():
    p = rule(RULE + " config address 172.16.2.1 config address 10.8.0.0/24"
             " config address 2001:db8:8::/64 config netmask 255.255.255.0"
             " config name-server 10.0.0.53 config name-server 2001:db8::53"
             " config netbios-server 10.0.0.1 config dhcp-server 10.0.0.2"
             " config protected-subnet 10.50.0.0/16 config access-server 10.0.0.3"
             " request address any request name-server any request protected-subnet any")
    assert p.config == (
        CfgOption("address", addr("172.16.2.1")),
        CfgOption("address", net("10.8.0.0/24")),
        CfgOption("address", net("2001:db8:8::/64")),
        CfgOption("netmask", addr("255.255.255.0")),
        CfgOption("name-server", addr("10.0.0.53")),
        CfgOption("name-server", addr("2001:db8::53")),
        CfgOption("netbios-server", addr("10.0.0.1")),
        CfgOption("dhcp-server", addr("10.0.0.2")),
        CfgOption("protected-subnet", net("10.50.0.0/16")),
        CfgOption("access-server", addr("10.0.0.3")),
    )
    assert p.request == (
        CfgOption("address", None),
        CfgOption("name-server", None),
        CfgOption("protected-subnet", None),
    )


def test_iface_tag_tap():
    p = rule(RULE + ' iface lo1 tag "ipsec-$domain" tap enc1')
    assert (p.iface, p.tag, p.tap) == ("lo1", "ipsec-$domain", "enc1")
    p = rule(RULE + ' tap "enc2" tag x')
    assert (p.tag, p.tap) == ("x", "enc2")


def test_everything_at_once():
    p = rule(
        'ikev2 "all" quick active ipcomp transport natt esp inet proto { tcp, udp } rdomain 3 '
        "from 10.0.0.1 port 1000 to 10.0.0.2 port 2000 "
        "local 192.0.2.1 peer 192.0.2.2 "
        "ikesa enc aes-256-gcm prf hmac-sha2-512 group ecp521 "
        "childsa enc chacha20-poly1305 group curve25519 esn "
        "srcid me@example.com dstid @peer.example.com ikelifetime 1h lifetime 20m bytes 1G "
        'psk "secret" config address 10.99.0.0/24 request name-server any '
        'iface tun0 tag "t" tap enc0'
    )
    assert p.name == "all" and p.quick and p.active and p.ipcomp and p.transport and p.natt
    assert p.af == 4 and p.rdomain == 3 and len(p.flows) == 2
    assert p.srcid.id_type == IDType.ID_RFC822_ADDR
    assert (p.dstid.id_type, p.dstid.data) == (IDType.ID_FQDN, b"peer.example.com")
    assert (p.ikelifetime, p.lifetime_seconds, p.lifetime_bytes) == (3600, 1200, 1024**3)
    assert p.child_proposals[0].encr == ((EncrId.CHACHA20_POLY1305, 0),)


def test_unused_macro_and_duplicate_name_warnings():
    _, warnings = parse_config_text(
        'a = 1\nb = "x"\nikev2 "n" from 10.0.0.1 to 10.0.0.2 tag $b\n'
        'ikev2 "n" from 10.0.0.3 to 10.0.0.4\n',
        check=False,
    )
    assert warnings == [
        'iked.conf:4:7: warning: policy name "n" is used more than once',
        "iked.conf:1:1: warning: macro 'a' defined but not used",
    ]


def test_defined_on_the_command_line_only_is_not_reported_unused():
    _, warnings = parse_config_text(RULE, defines={"unused": "1"}, check=False)
    assert warnings == []


def test_relative_paths_start_at_the_file_that_names_them(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "inner.conf").write_text(
        'ikev2 "inner" from 10.0.0.1 to 10.0.0.2 peer any psk file key\n'
    )
    (tmp_path / "sub" / "key").write_text("aa55\n")
    (tmp_path / "key").write_text("0102\n")
    for f in ("sub/inner.conf", "sub/key", "key"):
        os.chmod(tmp_path / f, 0o600)
    config = parse(
        'include "sub/inner.conf"\n'
        'ikev2 "outer" from 10.0.0.1 to 10.0.0.2 peer any psk file key\n',
        base_dir=str(tmp_path),
    )
    # After the include ends, relative names resolve from the main file's directory again.
    assert [p.auth.psk for p in config.policies] == [b"\xaa\x55", b"\x01\x02"]
