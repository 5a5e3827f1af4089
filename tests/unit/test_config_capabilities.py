"""The capability table: refused rules fail, optional extensions warn and are switched off,
legacy algorithms are accepted with a warning only when written explicitly."""

import pytest

from pyiked.config import capabilities
from pyiked.config import ConfigError, parse_config_text
from pyiked.config.capabilities import CAPABILITIES, REFUSE, WARN, YES, Support
from pyiked.config.loader import parse_text

BASE = "set nomobike\nikev2 esp from 10.0.0.0/8 to 10.1.0.0/16 peer 192.0.2.1"


def col(text, word, nth=1):
    """The column where `word` starts on the last line of `text` (1-based)."""
    line = text.split("\n")[-1]
    pos = -1
    for _ in range(nth):
        pos = line.index(word, pos + 1)
    return pos + 1


def refused(text):
    with pytest.raises(ConfigError) as exc:
        parse_config_text(text)
    return [str(e) for e in exc.value.errors]


def warnings_of(text):
    _, warnings = parse_config_text(text)
    return [str(w) for w in warnings]


def test_psk_esp_tunnel_and_transport_are_honoured():
    assert warnings_of(BASE + ' psk "k"') == []
    assert warnings_of(BASE.replace("esp", "transport esp") + ' psk "k"') == []
    assert warnings_of(BASE.replace("esp", "natt esp") + ' psk "k"') == []


@pytest.mark.parametrize("auth", ["rsa", "ecdsa256", "ecdsa384", "ecdsa521", "rfc7427", "signature",
                                  'eap "mschap-v2"'])
def test_certificate_and_eap_auth_are_honoured(auth):
    config, warnings = parse_config_text(f"{BASE} {auth}")
    assert warnings == []
    assert config.policies[0].auth.method == auth.split()[0]


def test_eap_without_its_library_is_refused(monkeypatch):
    monkeypatch.setattr(capabilities, "_eap_library", lambda: False)
    text = f'{BASE} eap "mschap-v2"'
    assert refused(text) == [
        f'iked.conf:2:{col(text, "eap")}: rule "policy1": EAP-MSCHAPv2 needs MD4 and DES from '
        "pycryptodome, which is not installed (pip install 'pyiked[eap]')"
    ]


def test_refused_features():
    assert refused(BASE.replace("esp", "ah") + ' psk "k"') == [
        'iked.conf:2:7: rule "policy1": AH is not supported yet'
    ]
    assert refused(BASE.replace("esp", "esp rdomain 1") + ' psk "k"') == [
        'iked.conf:2:11: rule "policy1": rdomain (routing domains) is not supported on Linux'
    ]
    assert refused(
        'set nomobike\nikev2 from 10.0.0.1 (192.168.1.0/24) to 10.2.0.0/16 peer 1.2.3.4 psk "k"'
    ) == ['iked.conf:2:1: rule "policy1": flow NAT (from SRC (NAT)) is not supported yet']


@pytest.mark.parametrize(
    "extra, word, message",
    [
        ("childsa enc blowfish", "blowfish", "blowfish is obsolete and not supported"),
        ("ikesa group brainpool224", "brainpool224", "group brainpool224 is not supported (no implementation)"),
        ("ikesa enc aes-128-gcm group grp1", "grp1", "group modp768 MUST NOT be used (RFC 8247 §2.4)"),
        ("childsa enc aes-128-gcm group ecp192", "ecp192", "group ecp192 is not supported (96-bit security)"),
        ("ikesa enc aes-128-gcm group sntrup761x25519", "sntrup",
         "group sntrup761x25519 is not supported (use mlkem768)"),
    ],
)
def test_refused_transforms_point_at_the_name(extra, word, message):
    text = f'{BASE} {extra} psk "k"'
    assert refused(text) == [f'iked.conf:2:{col(text, word)}: rule "policy1": {message}']


def test_several_refusals_are_all_reported():
    errors = refused(BASE.replace("esp", "ah") + ' psk "k"\n'
                     + BASE.split("\n")[1].replace("esp", "ah rdomain 1") + " eap mschap-v2")
    assert len(errors) == 3


@pytest.mark.parametrize(
    "extra, word, message",
    [
        ("ikesa enc 3des auth hmac-sha2-256", "3des",
         "3des is a legacy cipher (RFC 8247): accepted because it is named explicitly"),
        ("ikesa enc aes-128 auth hmac-sha1", "hmac-sha1",
         "auth hmac-sha1 is a legacy integrity algorithm (RFC 8247): accepted because it is "
         "named explicitly"),
        ("ikesa enc aes-128-gcm prf hmac-sha1", "hmac-sha1",
         "prf hmac-sha1 is a legacy PRF (RFC 8247): accepted because it is named explicitly"),
        ("ikesa enc aes-128 auth hmac-md5", "hmac-md5",
         "auth hmac-md5 is a legacy integrity algorithm (RFC 8247): accepted because it is "
         "named explicitly"),
        ("ikesa enc aes-128-gcm group modp1024", "modp1024",
         "group modp1024 is weak (RFC 8247): accepted because it is named explicitly"),
        ("ikesa enc aes-128-gcm group modp1536", "modp1536",
         "group modp1536 is weak (RFC 8247): accepted because it is named explicitly"),
        ("childsa enc null auth hmac-sha2-256", "null",
         "null encryption gives no confidentiality: accepted because it is named explicitly"),
    ],
)
def test_legacy_algorithms_warn_when_named(extra, word, message):
    text = f'{BASE} {extra} psk "k"'
    assert warnings_of(text) == [
        f'iked.conf:2:{col(text, word)}: warning: rule "policy1": {message}'
    ]


def test_defaults_have_no_legacy_algorithms():
    from pyiked.config.model import DEFAULT_CHILD_PROPOSALS, DEFAULT_IKE_PROPOSALS
    from pyiked.config.capabilities import LEGACY, support

    keys = set()
    for p in DEFAULT_IKE_PROPOSALS + DEFAULT_CHILD_PROPOSALS:
        from pyiked.core.iana import EncrId, IntegId, KeId, PrfId

        keys |= {f"encr:{EncrId(e).name}" for e, _ in p.encr}
        keys |= {f"prf:{PrfId(x).name}" for x in p.prf}
        keys |= {f"integ:{IntegId(x).name}" for x in p.integ}
        keys |= {f"ke:{KeId(x).name}" for x in p.ke}
    assert keys and all(support(k).level == YES for k in keys), [
        k for k in keys if support(k).level != YES
    ]
    assert LEGACY != YES


def test_optional_extensions_warn_and_are_switched_off():
    text = (BASE.replace("esp", "ipcomp esp") + ' psk "k" iface lo1 tag "t" tap enc1')
    result = parse_text(text)
    config, warnings = result.check()
    p = config.policies[0]
    assert (p.ipcomp, p.iface, p.tag, p.tap) == (False, None, None, None)
    assert [str(w) for w in warnings] == [
        f'iked.conf:2:{col(text, "ipcomp")}: warning: rule "policy1": IPcomp is not built yet: '
        "it will not be negotiated",
        f'iked.conf:2:{col(text, "tap")}: warning: rule "policy1": tap (enc(4) interfaces) does '
        "not exist on Linux: ignored",
        f'iked.conf:2:{col(text, "tag")}: warning: rule "policy1": pf tags do not exist on '
        "Linux: ignored",
        f'iked.conf:2:{col(text, "iface")}: warning: rule "policy1": automatic interface '
        "configuration (iface) is not built yet",
    ]
    # The parsed config keeps what was written (pyiked -nv prints it).
    raw = result.config.policies[0]
    assert (raw.ipcomp, raw.iface, raw.tag, raw.tap) == (True, "lo1", "t", "enc1")


def test_mobike_warns_while_on():
    text = BASE.replace("set nomobike\n", "") + ' psk "k"'
    config, warnings = parse_config_text(text)
    assert config.settings.mobike is False
    assert [w.message for w in warnings] == [
        'MOBIKE (RFC 4555) is not built yet: it will not be negotiated (on by default; '
        '"set nomobike" turns it off)'
    ]
    _, warnings = parse_config_text("set mobike\n" + text)
    assert [str(w) for w in warnings] == [
        "iked.conf:1:5: warning: MOBIKE (RFC 4555) is not built yet: it will not be negotiated"
    ]


def test_ocsp_warns_and_partial_chain_is_honoured():
    config, warnings = parse_config_text('set ocsp "http://o/"\nset cert_partial_chain\n'
                                         + BASE + ' psk "k"')
    assert config.settings.ocsp is None and config.settings.cert_partial_chain is True
    assert [w.message for w in warnings] == [
        "set ocsp has no effect: OCSP is not built yet (CRLs from crls/ are)",
    ]


def test_flipping_an_entry_changes_the_verdict(monkeypatch):
    monkeypatch.setitem(CAPABILITIES, "auth:rsa", Support(REFUSE, "no RSA here"))
    assert refused(BASE + " rsa") == [f'iked.conf:2:{col(BASE + " rsa", "rsa")}: rule "policy1": no RSA here']
    monkeypatch.setitem(CAPABILITIES, "ipcomp", Support(YES))
    config, _ = parse_config_text(BASE.replace("esp", "ipcomp esp") + ' psk "k"')
    assert config.policies[0].ipcomp is True
    monkeypatch.setitem(CAPABILITIES, "mode:transport", Support(WARN, "x"))
    monkeypatch.setitem(CAPABILITIES, "mode:transport", Support(REFUSE, "transport is off"))
    assert refused(BASE.replace("esp", "transport esp") + ' psk "k"') == [
        'iked.conf:2:7: rule "policy1": transport is off'
    ]


def test_a_key_missing_from_the_table_is_refused(monkeypatch):
    monkeypatch.delitem(CAPABILITIES, "encr:AES_CTR")
    text = BASE + ' childsa enc aes-128-ctr auth hmac-sha2-256 psk "k"'
    assert refused(text) == [
        f'iked.conf:2:{col(text, "aes-128-ctr")}: rule "policy1": aes-128-ctr is not supported'
    ]
    assert capabilities.support("nonsense").level == REFUSE


def test_check_without_positions_points_at_the_rule():
    config, _ = parse_config_text("\n\n" + BASE.replace("esp", "ah") + ' psk "k"', check=False)
    errors, _ = capabilities.check_capabilities(config)
    assert [str(e) for e in errors] == ['iked.conf:4: rule "policy1": AH is not supported yet']


def test_every_accepted_group_has_an_implementation():
    # a group the config accepts must make a key exchange, or an `active` rule naming it
    # would fail only when it starts (ecp224 once was YES with no curve behind it)
    from pyiked.core.iana import KeId
    from pyiked.core.ke import KeyExchange

    accepted = [KeId[key[3:]] for key, s in CAPABILITIES.items()
                if key.startswith("ke:") and key[3:] in KeId.__members__
                and key != "ke:NONE" and s.level != REFUSE]
    assert KeId.ECP224 in accepted and KeId.MODP768 not in accepted
    for group in accepted:
        assert len(KeyExchange(group).public_value()) > 0, group.name
