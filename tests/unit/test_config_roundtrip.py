"""The canonical form: format -> parse gives equal policies (ignoring `source`), and
formatting is idempotent. Configurations are generated at random from the grammar."""

import dataclasses

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyiked.config import format_config, parse_config_text
from pyiked.config.names import ENCR, GROUP, INTEG, PRF
from pyiked.config.printer import quote


def parse(text):
    return parse_config_text(text, check=False)[0]


def same(a, b):
    strip = [dataclasses.replace(p, source="") for p in a.policies]
    assert strip == [dataclasses.replace(p, source="") for p in b.policies]
    assert a.settings == b.settings
    assert a.users == b.users


def roundtrip(text):
    first = parse(text)
    canonical = format_config(first)
    second = parse(canonical)
    same(first, second)
    assert format_config(second) == canonical
    return first, canonical


# -- strategies --------------------------------------------------------------------------

safe_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=12
).filter(lambda s: not s.endswith("\\"))


@st.composite
def v4_net(draw):
    a, b = draw(st.integers(1, 223)), draw(st.integers(0, 255))
    prefix = draw(st.sampled_from([8, 16, 24, 32]))
    return f"{a}.{b}.0.{draw(st.integers(0, 255))}" + ("" if prefix == 32 else f"/{prefix}")


@st.composite
def v6_net(draw):
    word = draw(st.integers(0, 0xFFFF))
    prefix = draw(st.sampled_from([48, 64, 128]))
    return f"2001:db8:{word:x}::{draw(st.integers(1, 9))}" + (
        "" if prefix == 128 else f"/{prefix}"
    )


@st.composite
def side(draw, net):
    kind = draw(st.sampled_from(["net", "net", "any", "list"]))
    if kind == "any":
        return "any"
    if kind == "list":
        items = draw(st.lists(net, min_size=1, max_size=3, unique=True))
        return "{ " + ", ".join(items) + " }"
    return draw(net)


@st.composite
def transforms(draw, child):
    enc_names = [n for n, x in ENCR.items() if ("esp" if child else "ike") in x.where]
    aead = draw(st.booleans())
    encs = draw(st.lists(st.sampled_from([n for n in enc_names if ENCR[n].aead == aead]),
                         max_size=3))
    parts = [f"enc {e}" for e in encs]
    if not aead and draw(st.booleans()):
        parts += [f"auth {a}" for a in draw(st.lists(st.sampled_from(sorted(INTEG)),
                                                      min_size=1, max_size=2))]
    if not child and draw(st.booleans()):
        parts += [f"prf {p}" for p in draw(st.lists(st.sampled_from(sorted(PRF)),
                                                     min_size=1, max_size=2))]
    groups = sorted(g for g in GROUP if child or g != "none")
    parts += [f"group {g}" for g in draw(st.lists(st.sampled_from(groups), max_size=2))]
    if child:
        parts += draw(st.lists(st.sampled_from(["esn", "noesn"]), max_size=2))
    if not parts:
        parts = ["group curve25519"]
    return " ".join(parts)


IDS = ["host.example.com", "me@example.com", "192.0.2.1", "2001:db8::1", '"/C=DE/O=x/CN=y"',
       '"C=CH, O=strongSwan, CN=moon"', '"keyid:#00ff"', "@fqdn.example", '"@@u@example"']


@st.composite
def rule(draw):
    v6 = draw(st.booleans())
    net = v6_net() if v6 else v4_net()
    parts = ["ikev2"]
    if draw(st.booleans()):
        parts.append(quote(draw(safe_text)))
    for group in (["quick", "skip", "default", None], ["passive", "active", None],
                  ["ipcomp", None], ["tunnel", "transport", None], ["natt", None],
                  ["esp", "ah", None]):
        word = draw(st.sampled_from(group))
        if word:
            parts.append(word)
    ah = "ah" in parts
    protos = draw(st.sampled_from([[], ["tcp"], ["udp", "tcp"], ["gre"], ["47", "icmp"]]))
    if len(protos) == 1:
        parts.append(f"proto {protos[0]}")
    elif protos:
        parts.append("proto { " + ", ".join(protos) + " }")
    ports_ok = protos and all(p in ("tcp", "udp") for p in protos)
    npairs = draw(st.integers(1, 3))
    for i in range(npairs):
        src = draw(st.one_of(side(net), st.just("dynamic")))
        dst = draw(side(net))
        text = f"from {src}"
        if ports_ok and draw(st.booleans()):
            text += f" port {draw(st.integers(1, 65535))}"
        text += f" to {dst}"
        if ports_ok and draw(st.booleans()):
            text += f" port {draw(st.integers(1, 65535))}"
        parts.append(text + ("," if i < npairs - 1 and draw(st.booleans()) else ""))
    host = net.map(lambda n: n.split("/")[0])
    if "active" in parts:  # parse.y: active mode requires local/peer addresses
        peer = draw(st.one_of(host, st.just("gw.example.net")))
        local = draw(st.one_of(st.just("any"), host))
    else:
        peer = draw(st.one_of(st.just("any"), net, host, st.just("gw.example.net")))
        local = draw(st.one_of(st.just("any"), net))
    parts.append(f"peer {peer} local {local}")
    for _ in range(draw(st.integers(0, 2))):
        parts.append("ikesa " + draw(transforms(child=False)))
    for _ in range(draw(st.integers(0, 2))):
        if ah:  # AH proposals carry no cipher
            block = draw(st.sampled_from(["auth hmac-sha2-256", "auth hmac-sha2-512 noesn",
                                          "group ecp256", "auth hmac-sha1 group none"]))
        else:
            block = draw(transforms(child=True))
        parts.append("childsa " + block)
    if draw(st.booleans()):
        parts.append("srcid " + draw(st.sampled_from(IDS)))
    if draw(st.booleans()):
        parts.append("dstid " + draw(st.sampled_from(IDS)))
    if draw(st.booleans()):
        parts.append(f"ikelifetime {draw(st.sampled_from(['0', '90', '10m', '2h']))}")
    if draw(st.booleans()):
        parts.append(f"lifetime {draw(st.sampled_from(['30m', '3600', '1h']))}")
        if draw(st.booleans()):
            parts.append(f"bytes {draw(st.sampled_from(['1000', '64K', '512M', '4G']))}")
    auth = draw(st.sampled_from(["", "psk", "hex", "rsa", "eap", "signature", "ecdsa256"]))
    if auth == "psk":
        parts.append("psk " + quote(draw(safe_text)))
    elif auth == "hex":
        parts.append("psk 0x" + draw(st.binary(min_size=1, max_size=40)).hex())
    elif auth == "eap":
        parts.append('eap "mschap-v2"')
    elif auth:
        parts.append(auth)
    addr = "2001:db8:77::/64" if v6 else "10.77.0.0/24"
    for opt in draw(st.lists(st.sampled_from(
            [f"config address {addr}", "config name-server 10.0.0.53",
             "config netmask 255.255.255.0", "request address any",
             "config protected-subnet 10.5.0.0/16", "config access-server 2001:db8::5"]),
            max_size=3)):
        parts.append(opt)
    if draw(st.booleans()):
        parts.append("iface tun0")
    if draw(st.booleans()):
        parts.append("tag " + quote(draw(safe_text)))
    if draw(st.booleans()):
        parts.append(f"tap enc{draw(st.integers(0, 9))}")
    return " \\\n\t".join(parts)


SETTINGS = ["set passive", "set decouple", "set fragmentation", "set nomobike", "set novendorid",
            "set enforcesingleikesa", "set stickyaddress", "set cert_partial_chain",
            'set ocsp "http://ocsp.example/" tolerate 5m maxage 1h', "set ocsp http://o/",
            "set dpd_check_interval 0", "set cookie_threshold 7", "set halfopen_limit_ip 3",
            "set halfopen_timeout 2m"]


@st.composite
def config_text(draw):
    lines = draw(st.lists(st.sampled_from(SETTINGS), max_size=4))
    for _ in range(draw(st.integers(0, 2))):
        lines.append(f"user {quote(draw(safe_text))} {quote(draw(safe_text))}")
    lines.extend(draw(st.lists(rule(), min_size=1, max_size=3)))
    return "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config_text())
def test_random_configs_roundtrip(text):
    roundtrip(text)


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.just("\t"),
               min_size=1, max_size=20).filter(lambda s: not s.endswith("\\")))
def test_quote_reads_back_unchanged(text):
    config = parse(f"ikev2 {quote(text)} esp from any to any peer any tag {quote(text)}")
    assert config.policies[0].name == text and config.policies[0].tag == text


def test_interop_file_canonical_form():
    _, canonical = roundtrip(
        'ikev2 "s2s" passive esp from 10.231.2.0/24 to 10.231.1.0/24 \\\n'
        "    local 10.231.0.2 peer 10.231.0.1 \\\n"
        "    ikesa enc aes-256-gcm prf hmac-sha2-256 group curve25519 \\\n"
        "    ikesa enc aes-128 auth hmac-sha2-256 prf hmac-sha2-256 group modp2048 \\\n"
        "    childsa enc aes-256-gcm \\\n"
        "    childsa enc aes-128 auth hmac-sha2-256 \\\n"
        '    srcid b.pk.test dstid a.pk.test psk "pk-test-psk-0123456789"\n'
    )
    assert canonical.endswith(
        'ikev2 "s2s" passive tunnel esp \\\n'
        "\tfrom 10.231.2.0/24 to 10.231.1.0/24 \\\n"
        "\tlocal 10.231.0.2 peer 10.231.0.1 \\\n"
        "\tikesa enc aes-256-gcm prf hmac-sha2-256 group curve25519 \\\n"
        "\tikesa enc aes-128 prf hmac-sha2-256 auth hmac-sha2-256 group modp2048 \\\n"
        "\tchildsa enc aes-256-gcm esn noesn \\\n"
        "\tchildsa enc aes-128 auth hmac-sha2-256 esn noesn \\\n"
        '\tsrcid "b.pk.test" dstid "a.pk.test" \\\n'
        "\tikelifetime 0 lifetime 10800 bytes 4294967296 \\\n"
        '\tpsk "pk-test-psk-0123456789"\n'
    )


def test_psk_that_is_not_plain_text_is_written_in_hex(tmp_path):
    import os

    first, canonical = roundtrip('ikev2 from any to any peer any psk "0xnot-hex-really"'
                                 .replace('"0xnot-hex-really"', "0x00ff22"))
    assert "psk 0x00ff22" in canonical
    first, canonical = roundtrip('ikev2 from any to any peer any psk "a\\"b"')
    assert first.policies[0].auth.psk == b'a"b' and "psk 0x61" in canonical
    key = tmp_path / "key"
    key.write_text("abcd\n")
    os.chmod(key, 0o600)
    first, canonical = roundtrip(f'ikev2 from any to any peer any psk file "{key}"')
    assert f'psk file "{key}"' in canonical and "abcd" not in canonical


def test_host_to_host_defaults_are_written_out():
    _, canonical = roundtrip("ikev2 esp from 192.168.3.1 to 192.168.3.2\n")
    assert "local 192.168.3.1 peer 192.168.3.2" in canonical
