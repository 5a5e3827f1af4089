"""Every config error: file:line:column and what was expected, never a traceback."""

import os

from hypothesis import given, settings
from hypothesis import strategies as st

import pytest

from pyiked.config import ConfigError, load_config, parse_config_text

R = "ikev2 esp from 10.0.0.0/8 to 10.1.0.0/16"  # 40 characters
OUT_OF_PLACE = (
    "is out of place: the parts of an ikev2 rule come in the order of iked.conf(5) (name, "
    "quick/skip/default, passive/active, ipcomp, tunnel/transport, natt, esp/ah, inet/inet6, "
    "proto, rdomain, from/to, peer/local, ikesa, childsa, srcid, dstid, ikelifetime, lifetime, "
    "auth, config/request, iface, tag/tap)"
)


def error_of(text, **kw):
    with pytest.raises(ConfigError) as exc:
        parse_config_text(text, "iked.conf", check=False, **kw)
    return exc.value


KNOWN_SETTINGS = (
    "active, cert_partial_chain, cookie_hold, cookie_secret_lifetime, cookie_threshold, "
    "cookie_threshold_ip, couple, decouple, dpd_check_interval, enforcesingleikesa, fragment_size, "
    "fragmentation, halfopen_limit, halfopen_limit_ip, halfopen_timeout, invalid_spi_rate, mobike, "
    "noenforcesingleikesa, nofragmentation, nomobike, norsa_pss, nostickyaddress, novendorid, ocsp, "
    "passive, retransmit_timeout, retransmit_tries, rsa_pss, stickyaddress, vendorid"
)


CASES = [
    # -- the grammar: what was expected, and what came instead
    ("ikev2 esp from 10.0.0.0/8 port 23 port 24 to 10.1.0.0/16",
     'iked.conf:1:35: expected "to", got "port"'),
    ("ikev2 esp from 10.0.0.0/8", 'iked.conf:1:26: expected "to", got end of line'),
    ("ikev2 esp peer 1.2.3.4", 'iked.conf:1:11: expected one of "from" or "to", got "peer"'),
    (f"{R},", 'iked.conf:1:42: expected one of "from" or "to", got end of line'),
    ("ikev2 esp proto tcp from 10.0.0.0/8 to 10.1.0.0/16 port",
     "iked.conf:1:56: expected a port number or service name, got end of line"),
    ("ikev2 esp from 10.0.0.0/8 to port",
     'iked.conf:1:30: expected an address, got "port"'),
    (f"{R} peer any psk x srcid foo",
     f'iked.conf:1:57: "srcid" {OUT_OF_PLACE}'),
    ("ikev2 esp tunnel from 10.0.0.1 to 10.0.0.2", f'iked.conf:1:11: "tunnel" {OUT_OF_PLACE}'),
    (f"{R} esp", f'iked.conf:1:42: "esp" {OUT_OF_PLACE}'),
    (f"{R} peer any ikesa enc aes-128-gcm srcid a childsa enc aes-128-gcm",
     f'iked.conf:1:81: "childsa" {OUT_OF_PLACE}'),
    (f"{R} peer any tag x (",
     'iked.conf:1:57: expected one of "config", "request", "iface", "tag", "tap" or end of '
     'line, got "("'),
    (f"{R} peer any ikesa", 'iked.conf:1:56: expected one of "enc", "auth", "prf", "group", '
     '"esn" or "noesn", got end of line'),
    (f"{R} peer any ikesa enc", 'iked.conf:1:60: expected a transform name after "enc", '
     "got end of line"),
    ("ikev2 proto { tcp udp", 'iked.conf:1:22: expected "}", got end of line'),
    ("ikev2 from { 10.0.0.1", 'iked.conf:1:22: expected "}", got end of line'),
    ("esp", 'iked.conf:1:1: expected one of "ikev2", "set", "user" or "include", got "esp"'),
    ("{", 'iked.conf:1:1: expected one of "ikev2", "set", "user", "include" or a macro '
     'definition, got "{"'),
    ("gw 1.2.3.4", 'iked.conf:1:4: expected "=", got "1.2.3.4" (after "gw")'),
    ("x =", "iked.conf:1:4: expected a value, got end of line"),
    ("user alice", "iked.conf:1:11: expected a password, got end of line"),
    ("set", "iked.conf:1:4: expected a setting, got end of line"),
    ("set passive now", 'iked.conf:1:13: expected end of line, got "now"'),
    ('include "a" "b"', 'iked.conf:1:13: expected end of line, got "b"'),
    # -- lexical
    ('ikev2 "unterminated', "iked.conf:1:7: unterminated quoted string"),
    ("ikev2 esp from $nope to 1.2.3.4", "iked.conf:1:16: macro 'nope' not defined"),
    ("ikev2 esp from $ to 1.2.3.4", 'iked.conf:1:16: expected a macro name after "$"'),
    ("ikev2 esp < 1", "iked.conf:1:11: unexpected character '<'"),
    # -- macros and settings
    ('esp = "x"', 'iked.conf:1:1: macro name "esp" is a reserved word'),
    ('"a-b" = "x"', 'iked.conf:1:1: invalid macro name "a-b": use letters, digits, _'),
    ("set foo", f'iked.conf:1:5: unknown setting "foo" (known: {KNOWN_SETTINGS})'),
    ("set dpd_check_interval -1",
     'iked.conf:1:24: expected a time (seconds, or with an m or h suffix), got "-1"'),
    ("set dpd_check_interval 5d", 'iked.conf:1:24: invalid time "5d": use N, Nm or Nh'),
    ("set halfopen_timeout 0", "iked.conf:1:22: time 0 is outside the range 1..4294967295"),
    ("set halfopen_limit 0", "iked.conf:1:20: 0 is outside the range 1..2147483647"),
    ("set cookie_threshold x", 'iked.conf:1:22: expected a number, got "x"'),
    ("set ocsp http://x/ maxage 3", 'iked.conf:1:20: expected end of line, got "maxage"'),
    ('user "" "pw"', "iked.conf:1:6: invalid user name: empty"),
    ('user u ""', "iked.conf:1:8: invalid password: empty"),
    # -- rule contents
    ('ikev2 "" esp from 10.0.0.0/8 to 10.1.0.0/16', "iked.conf:1:7: empty policy name"),
    ("ikev2 proto nosuchproto from 1.2.3.4 to 5.6.7.8",
     "iked.conf:1:13: unknown protocol: nosuchproto"),
    ("ikev2 proto 256 from 1.2.3.4 to 5.6.7.8", "iked.conf:1:13: 256 is outside the range 0..255"),
    ("ikev2 rdomain 300 from 1.2.3.4 to 5.6.7.8",
     "iked.conf:1:15: 300 is outside the range 0..255"),
    ("ikev2 proto tcp from 1.2.3.4 port nosuchservice to 5.6.7.8",
     "iked.conf:1:35: unknown port: nosuchservice"),
    ("ikev2 proto tcp from 1.2.3.4 port 65536 to 5.6.7.8",
     "iked.conf:1:35: 65536 is outside the range 0..65535"),
    ("ikev2 esp from 10.0.0.0/8 port 80 to 10.1.0.0/16",
     'iked.conf:1:27: "port" needs "proto tcp", "proto udp" or "proto sctp"'),
    ("ikev2 esp from 10.0.0.0/8 to ::/0", "iked.conf:1:30: cannot mix different address families"),
    ("ikev2 esp from 10.0.0.0/33 to 1.2.3.4",
     'iked.conf:1:16: could not parse host specification "10.0.0.0/33"'),
    ("ikev2 esp from 1.2.3 to 1.2.3.4",
     'iked.conf:1:16: could not parse host specification "1.2.3"'),
    ("ikev2 esp from a..b to 1.2.3.4", 'iked.conf:1:16: could not parse host specification "a..b"'),
    ("ikev2 from 10.0.0.1 to 10.0.0.2 (192.168.0.1)",
     "iked.conf:1:33: no flow NAT support for destination network"),
    ("ikev2 from 10.0.0.1 (2001:db8::1) to 10.0.0.2",
     "iked.conf:1:21: Flow NAT address family mismatch"),
    ("ikev2 from any (10.0.0.1) to 10.0.0.2",
     "iked.conf:1:16: flow NAT needs one source network and one NAT network"),
    (f"{R}, from 1.1.1.1 to 2.2.2.2",
     'iked.conf:1:1: could not get local/peer specification: a rule with several from/to '
     'pairs needs "peer" (or "peer any")'),
    ("ikev2 active esp from 10.0.0.0/8 to 10.1.0.0/16",
     "iked.conf:1:7: active mode requires a peer address or host name"),
    (f"ikev2 active {R[6:]} peer 1.2.3.4 local 10.0.0.0/8",
     "iked.conf:1:7: active mode requires a single local address"),
    (f"{R} local 10.0.0.1 peer 2001:db8::1",
     "iked.conf:1:1: peer address family mismatch (local and peer)"),
    ("ikev2 inet6 from 10.0.0.0/8 to 10.1.0.0/16 peer 1.2.3.4",
     "iked.conf:1:44: policy address family mismatch (inet6)"),
    (f"{R} peer 1.2.3", 'iked.conf:1:47: could not parse host specification "1.2.3"'),
    (f"{R} peer any ikesa enc aes-512", 'iked.conf:1:61: "aes-512" is not a valid enc transform'),
    (f"{R} peer any ikesa enc aes-128-ctr",
     'iked.conf:1:61: "aes-128-ctr" is not valid in ikesa (childsa only)'),
    (f"{R} peer any ikesa auth sha1", 'iked.conf:1:62: "sha1" is not a valid auth transform'),
    (f"{R} peer any ikesa prf md5", 'iked.conf:1:61: "md5" is not a valid prf transform'),
    (f"{R} peer any ikesa group 99", 'iked.conf:1:63: "99" is not a valid group transform'),
    (f"{R} peer any ikesa group none", 'iked.conf:1:51: IKE group can not be "none"'),
    (f"{R} peer any ikesa enc aes-128 esn", "iked.conf:1:51: cannot use ESN with ikesa"),
    (f"{R} peer any ikesa enc aes-128-gcm enc aes-128",
     "iked.conf:1:51: cannot mix encryption transforms with implicit and non-implicit "
     "authentication"),
    (f"{R} peer any childsa enc aes-128-gcm auth hmac-sha2-256",
     "iked.conf:1:51: authentication is implicit for given encryption transforms"),
    (f"{R} peer any childsa prf hmac-sha2-256",
     "iked.conf:1:51: prf is not valid in childsa (only in ikesa)"),
    ("ikev2 ah from 10.0.0.0/8 to 10.1.0.0/16 peer any childsa enc aes-128",
     "iked.conf:1:50: enc is not valid with ah (AH only authenticates)"),
    (f"{R} peer any srcid \"C=Germany, CN=x\"",
     "iked.conf:1:57: invalid identity: DN 'C=Germany, CN=x': Attribute's length must be "
     ">= 2 and <= 2, but it was 7"),
    (f"{R} peer any dstid \"X=1\"",
     "iked.conf:1:57: invalid identity: unknown DN attribute 'X' in 'X=1'"),
    (f'{R} peer any dstid "keyid:#abc"',
     "iked.conf:1:57: invalid identity: 'abc' is not an even number of hex digits"),
    (f"{R} peer any lifetime 2d", 'iked.conf:1:60: invalid time "2d": use N, Nm or Nh'),
    (f"{R} peer any lifetime 2h bytes 3T",
     'iked.conf:1:69: invalid byte count "3T": use N, NK, NM or NG'),
    (f"{R} peer any psk 0xabc", "iked.conf:1:55: psk: keys need to be specified in hex digits"),
    (f"{R} peer any psk 0xzz", "iked.conf:1:55: psk: keys need to be specified in hex digits"),
    (f'{R} peer any psk ""', "iked.conf:1:55: psk: empty key"),
    (f"{R} peer any psk {'k' * 1025}", "iked.conf:1:55: psk too long (more than 1024 bytes)"),
    (f"{R} peer any eap md5", "iked.conf:1:55: unsupported EAP method: md5"),
    (f"{R} peer any none", 'iked.conf:1:51: not a valid authentication mode: "none" (use '
     "psk, eap, rsa, ecdsa256, ecdsa384, ecdsa521, rfc7427, signature)"),
    (f"{R} peer any config foo 1.2.3.4", 'iked.conf:1:58: not a valid ikecfg option: "foo" '
     "(use address, netmask, name-server, netbios-server, dhcp-server, protected-subnet, "
     "access-server)"),
    (f"{R} peer any config netmask ::1",
     "iked.conf:1:66: not a valid ikecfg option: netmask has no IPv6 form"),
    (f"{R} peer any config netmask 255.0.255.0",
     "iked.conf:1:66: netmask '255.0.255.0' is not a contiguous IPv4 mask"),
    (f"{R} peer any config name-server 10.0.0.0/8",
     "iked.conf:1:70: name-server takes an address, not '10.0.0.0/8'"),
    (f"{R} peer any config address any", 'iked.conf:1:66: expected an address, got "any"'),
    (f"{R} peer any iface a/b", 'iked.conf:1:57: invalid iface "a/b"'),
    (f"{R} peer any tap em0", "iked.conf:1:55: invalid tap interface name: em0"),
]


@pytest.mark.parametrize("text, message", CASES)
def test_error_message(text, message):
    assert error_of(text).describe() == message


def test_error_attributes():
    exc = error_of("set passive\n\nikev2 esp from 10.0.0.0/8 port 23 port 24 to 10.1.0.0/16")
    assert (exc.file, exc.line, exc.column) == ("iked.conf", 3, 35)
    assert exc.message == 'expected "to", got "port"'
    assert str(exc) == 'iked.conf:3:35: expected "to", got "port"'


def test_every_error_is_reported_and_parsing_goes_on():
    exc = error_of("set foo\nikev2 esp from 1.2.3 to 1.2.3.4\n" + R + " peer any\nuser x\n")
    assert [(e.line, e.column) for e in exc.errors] == [(1, 5), (2, 16), (4, 7)]
    assert exc.describe().count("\n") == 2


def test_positions_follow_continuation_lines():
    text = "ikev2 esp \\\n\tfrom 10.0.0.0/8 \\\n\tport 23 port 24 to 10.1.0.0/16\n"
    assert str(error_of(text)) == 'iked.conf:3:10: expected "to", got "port"'


def test_positions_inside_macros_point_at_the_reference():
    text = 'bad = "10.0.0.0/8 port 1 port 2"\nikev2 esp from   $bad to 1.2.3.4'
    assert str(error_of(text)) == 'iked.conf:2:18: expected "to", got "port"'


def test_errors_in_included_files_name_that_file(tmp_path):
    inc = tmp_path / "inc.conf"
    inc.write_text("\nset nosuchthing\n")
    os.chmod(inc, 0o600)
    exc = error_of(f'include "{inc}"\nset passive now')
    assert exc.describe() == (
        f'{inc}:2:5: unknown setting "nosuchthing" (known: {KNOWN_SETTINGS})\n'
        'iked.conf:2:13: expected end of line, got "now"'
    )


def test_include_errors(tmp_path):
    exc = error_of(f'include "{tmp_path}/missing.conf"')
    assert exc.describe() == (
        f"iked.conf:1:9: failed to include file {tmp_path}/missing.conf: "
        "No such file or directory"
    )
    loop = tmp_path / "loop.conf"
    loop.write_text(f'include "{loop}"\n')
    os.chmod(loop, 0o600)
    exc = error_of(f'include "{loop}"')
    assert exc.describe() == f"{loop}:1:9: include loop: {loop} includes itself"


def test_host_name_without_address():
    exc = error_of("ikev2 from nowhere.invalid to 1.2.3.4", resolver=lambda name: [])
    assert str(exc) == "iked.conf:1:12: no IP address found for nowhere.invalid"


def test_psk_file_errors(tmp_path):
    missing = tmp_path / "none"
    assert str(error_of(f'{R} peer any psk file "{missing}"')) == (
        f"iked.conf:1:60: psk file {missing}: No such file or directory"
    )
    empty = tmp_path / "empty"
    empty.write_text("")
    os.chmod(empty, 0o600)
    assert str(error_of(f'{R} peer any psk file "{empty}"')) == (
        f"iked.conf:1:60: {empty}: key too small"
    )
    big = tmp_path / "big"
    big.write_text("00" * 600)
    os.chmod(big, 0o600)
    assert str(error_of(f'{R} peer any psk file "{big}"')) == (
        f"iked.conf:1:60: {big}: key too large"
    )
    bad = tmp_path / "bad"
    bad.write_text("0x00112233\n")
    os.chmod(bad, 0o600)
    assert str(error_of(f'{R} peer any psk file "{bad}"')) == (
        f"iked.conf:1:60: {bad}: keys need to be specified in hex digits"
    )


def test_load_config_file_errors(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_config(str(tmp_path / "nope.conf"))
    assert str(exc.value) == f"{tmp_path}/nope.conf: cannot open: No such file or directory"
    binary = tmp_path / "bin.conf"
    binary.write_bytes(b"set passive\n\xff\xfe\n")
    with pytest.raises(ConfigError) as exc:
        load_config(str(binary))
    assert str(exc.value) == f"{binary}:2: not valid UTF-8"


def test_hostile_input_gives_config_errors_only():
    # Arbitrary bytes never raise anything but ConfigError.
    import random

    rng = random.Random(7)
    alphabet = list('ikev2 esp from to peer any {}(),="\'\\#$\n\t0123456789./:abcxyz-')
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        try:
            parse_config_text(text, check=False, resolver=lambda name: [])
        except ConfigError:
            pass


def test_byte_count_limit():
    assert str(error_of(f"{R} peer any lifetime 1h bytes 99999999999G")) == (
        "iked.conf:1:69: byte count 99999999999G is larger than 2^64 - 1"
    )


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_arbitrary_text_gives_config_errors_only(text):
    try:
        parse_config_text(text, check=True, resolver=lambda name: [])
    except ConfigError as exc:
        assert exc.errors and all(e.line >= 0 for e in exc.errors)


GRAMMAR_WORDS = st.sampled_from(
    "ikev2 esp ah from to peer local any dynamic port proto { } ( ) , = tcp 10.0.0.0/8 "
    "1.2.3.4 2001:db8::1 ::/0 ikesa childsa enc auth prf group aes-128 aes-128-gcm "
    "hmac-sha2-256 curve25519 none esn srcid dstid psk file eap rsa config request "
    "address 10.8.0.0/24 tag tap enc0 iface set user include quick default skip active "
    "lifetime bytes 1h 10K $x x \\n".split() + ['"q"', "\n", "\\\n", "#", "'s'"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(GRAMMAR_WORDS, max_size=40))
def test_grammar_shaped_noise_gives_config_errors_only(words):
    text = " ".join(words)
    try:
        config, _ = parse_config_text(text, check=True, defines={"x": "1.2.3.4"},
                                      resolver=lambda name: [])
    except ConfigError:
        return
    from pyiked.config import format_config

    format_config(config)


def test_errors_never_echo_what_may_be_part_of_a_secret():
    exc = error_of(f"{R} peer any psk my-secret continues-here")
    assert "continues-here" not in str(exc)
    assert str(exc) == (
        "iked.conf:1:65: expected one of \"config\", \"request\", \"iface\", \"tag\", \"tap\" "
        "or end of line, got another word (not shown: it may be part of a secret; quote secrets)"
    )
    exc = error_of('user alice pass "XYZZY two"')
    assert "XYZZY" not in str(exc)
    assert str(exc).startswith("iked.conf:1:17: expected end of line, got another word")
