"""What the engine honours today: the one table to flip as features land.

Every iked.conf feature a rule or a `set` line can ask for has an entry:
- YES: honoured.
- WARN: an optional extension that is not built yet. The file is accepted with a
  warning and the feature is switched off in the effective config (`effective_config`), so
  it is never negotiated half-way.
- REFUSE: the engine cannot honour it and running without it would change what the rule
  means (who may authenticate, what is protected): the rule is an error and `pyiked -n`
  fails.
- LEGACY: a weak algorithm (RFC 8247, RFC 8221). Never in a default proposal; accepted with
  a warning when a proposal names it explicitly.

A key missing from the table is refused, so a new keyword cannot slip through unchecked.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pyiked.core.iana import EncrId, EsnId, IntegId, KeId, PrfId, ProtocolId

from . import names
from .errors import ConfigError, ConfigWarning
from .model import Config, Policy

YES = "yes"
WARN = "warn"
REFUSE = "refuse"
LEGACY = "legacy"


@dataclass(frozen=True, slots=True)
class Support:
    level: str
    note: str = ""


_EAP_LIBRARY = ("EAP-MSCHAPv2 needs MD4 and DES from pycryptodome, which is not installed "
                "(pip install 'pyiked[eap]')")

CAPABILITIES: dict[str, Support] = {
    # -- authentication (the rule's ikeauth) --
    "auth:psk": Support(YES),
    "auth:eap": Support(YES),  # EAP-MSCHAPv2 server, certificate on our side
    "auth:rsa": Support(YES),
    "auth:ecdsa256": Support(YES),
    "auth:ecdsa384": Support(YES),
    "auth:ecdsa521": Support(YES),
    "auth:rfc7427": Support(YES),
    "auth:signature": Support(YES),
    # -- IPsec protocol and mode --
    "protocol:esp": Support(YES),
    "protocol:ah": Support(REFUSE, "AH is not supported yet"),
    "mode:tunnel": Support(YES),
    "mode:transport": Support(YES),
    # -- rule options --
    "natt": Support(YES),
    "ipcomp": Support(WARN, "IPcomp is not built yet: it will not be negotiated"),
    "tap": Support(WARN, "tap (enc(4) interfaces) does not exist on Linux: ignored"),
    "tag": Support(WARN, "pf tags do not exist on Linux: ignored"),
    "iface": Support(WARN, "automatic interface configuration (iface) is not built yet"),
    "rdomain": Support(REFUSE, "rdomain (routing domains) is not supported on Linux"),
    "flow-nat": Support(REFUSE, "flow NAT (from SRC (NAT)) is not supported yet"),
    "config:address": Support(YES),
    "config:netmask": Support(YES),
    "config:name-server": Support(YES),
    "config:netbios-server": Support(YES),
    "config:dhcp-server": Support(YES),
    "config:protected-subnet": Support(YES),
    "config:access-server": Support(YES),
    "request:address": Support(YES),
    "request:netmask": Support(YES),
    "request:name-server": Support(YES),
    "request:netbios-server": Support(YES),
    "request:dhcp-server": Support(YES),
    "request:protected-subnet": Support(YES),
    "request:access-server": Support(YES),
    # -- global settings (checked when on) --
    "set:mobike": Support(WARN, "MOBIKE (RFC 4555) is not built yet: it will not be negotiated"),
    "set:fragmentation": Support(YES),
    "set:vendorid": Support(YES),
    "set:decouple": Support(YES),
    "set:enforcesingleikesa": Support(YES),
    "set:stickyaddress": Support(YES),
    "set:ocsp": Support(
        WARN, "set ocsp has no effect: OCSP is not built yet (CRLs from crls/ are)"
    ),
    "set:cert_partial_chain": Support(YES),
    # -- ciphers --
    f"encr:{EncrId.AES_CBC.name}": Support(YES),
    f"encr:{EncrId.AES_CTR.name}": Support(YES),
    f"encr:{EncrId.AES_GCM_16.name}": Support(YES),
    f"encr:{EncrId.AES_GCM_12.name}": Support(YES),
    f"encr:{EncrId.NULL_AUTH_AES_GMAC.name}": Support(YES),
    f"encr:{EncrId.CHACHA20_POLY1305.name}": Support(YES),
    f"encr:{EncrId.TRIPLE_DES.name}": Support(LEGACY, "3des is a legacy cipher (RFC 8247)"),
    f"encr:{EncrId.NULL.name}": Support(LEGACY, "null encryption gives no confidentiality"),
    f"encr:{EncrId.BLOWFISH.name}": Support(REFUSE, "blowfish is obsolete and not supported"),
    f"encr:{EncrId.CAST.name}": Support(REFUSE, "cast is obsolete and not supported"),
    # -- pseudo-random functions --
    f"prf:{PrfId.HMAC_SHA2_256.name}": Support(YES),
    f"prf:{PrfId.HMAC_SHA2_384.name}": Support(YES),
    f"prf:{PrfId.HMAC_SHA2_512.name}": Support(YES),
    f"prf:{PrfId.HMAC_SHA1.name}": Support(LEGACY, "prf hmac-sha1 is a legacy PRF (RFC 8247)"),
    f"prf:{PrfId.HMAC_MD5.name}": Support(LEGACY, "prf hmac-md5 is a legacy PRF (RFC 8247)"),
    # -- integrity --
    f"integ:{IntegId.HMAC_SHA2_256_128.name}": Support(YES),
    f"integ:{IntegId.HMAC_SHA2_384_192.name}": Support(YES),
    f"integ:{IntegId.HMAC_SHA2_512_256.name}": Support(YES),
    f"integ:{IntegId.HMAC_SHA1_96.name}": Support(
        LEGACY, "auth hmac-sha1 is a legacy integrity algorithm (RFC 8247)"
    ),
    f"integ:{IntegId.HMAC_MD5_96.name}": Support(
        LEGACY, "auth hmac-md5 is a legacy integrity algorithm (RFC 8247)"
    ),
    # -- key exchange --
    f"ke:{KeId.NONE.name}": Support(YES),
    f"ke:{KeId.MODP2048.name}": Support(YES),
    f"ke:{KeId.MODP3072.name}": Support(YES),
    f"ke:{KeId.MODP4096.name}": Support(YES),
    f"ke:{KeId.MODP6144.name}": Support(YES),
    f"ke:{KeId.MODP8192.name}": Support(YES),
    f"ke:{KeId.ECP256.name}": Support(YES),
    f"ke:{KeId.ECP384.name}": Support(YES),
    f"ke:{KeId.ECP521.name}": Support(YES),
    f"ke:{KeId.ECP224.name}": Support(YES),
    f"ke:{KeId.BRAINPOOL_P256R1.name}": Support(YES),
    f"ke:{KeId.BRAINPOOL_P384R1.name}": Support(YES),
    f"ke:{KeId.BRAINPOOL_P512R1.name}": Support(YES),
    f"ke:{KeId.CURVE25519.name}": Support(YES),
    f"ke:{KeId.CURVE448.name}": Support(YES),
    f"ke:{KeId.ML_KEM_768.name}": Support(YES),
    f"ke:{KeId.ML_KEM_1024.name}": Support(YES),
    f"ke:{KeId.MODP768.name}": Support(REFUSE, "group modp768 MUST NOT be used (RFC 8247 §2.4)"),
    f"ke:{KeId.MODP1024.name}": Support(LEGACY, "group modp1024 is weak (RFC 8247)"),
    f"ke:{KeId.MODP1536.name}": Support(LEGACY, "group modp1536 is weak (RFC 8247)"),
    f"ke:{KeId.ECP192.name}": Support(REFUSE, "group ecp192 is not supported (96-bit security)"),
    f"ke:{KeId.BRAINPOOL_P224R1.name}": Support(
        REFUSE, "group brainpool224 is not supported (no implementation)"
    ),
    f"ke:{names.SNTRUP761X25519}": Support(
        REFUSE, "group sntrup761x25519 is not supported (use mlkem768)"
    ),
    # -- extended sequence numbers --
    f"esn:{EsnId.ESN.name}": Support(YES),
    f"esn:{EsnId.NO_ESN.name}": Support(YES),
}

_REFUSED = Support(REFUSE, "not supported")


def support(key: str) -> Support:
    return CAPABILITIES.get(key, _REFUSED)


def honoured(key: str) -> bool:
    return support(key).level in (YES, LEGACY)


def _enum_name(enum, value) -> str:
    try:
        return enum(value).name
    except ValueError:
        return str(value)


def _transforms(policy: Policy):
    """(table key, iked.conf name, position key) for each transform the rule names."""
    for proposal in policy.ike_proposals + policy.child_proposals:
        for encr, bits in proposal.encr:
            label = names.ENCR_BY_ID.get((encr, bits), f"enc {encr}")
            yield f"encr:{_enum_name(EncrId, encr)}", label, f"encr:{encr}:{bits}"
        for prf in proposal.prf:
            yield f"prf:{_enum_name(PrfId, prf)}", names.PRF_BY_ID.get(prf), f"prf:{prf}"
        for integ in proposal.integ:
            label = names.INTEG_BY_ID.get(integ)
            yield f"integ:{_enum_name(IntegId, integ)}", label, f"integ:{integ}"
        for ke in proposal.ke:
            key = f"ke:{_enum_name(KeId, ke)}" if ke in KeId._value2member_map_ else f"ke:{ke}"
            yield key, names.GROUP_BY_ID.get(ke), f"ke:{ke}"
        for esn in proposal.esn:
            yield f"esn:{_enum_name(EsnId, esn)}", names.ESN_BY_ID.get(esn), f"esn:{esn}"


def _features(policy: Policy):
    """(table key, position key) for each feature a rule asks for."""
    yield f"auth:{policy.auth.method}", "auth"
    proto = "ah" if policy.protocol == ProtocolId.AH else "esp"
    yield f"protocol:{proto}", proto
    yield ("mode:transport", "transport") if policy.transport else ("mode:tunnel", "tunnel")
    if policy.natt:
        yield "natt", "natt"
    if policy.ipcomp:
        yield "ipcomp", "ipcomp"
    if policy.tap is not None:
        yield "tap", "tap"
    if policy.tag is not None:
        yield "tag", "tag"
    if policy.iface is not None:
        yield "iface", "iface"
    if policy.rdomain is not None:
        yield "rdomain", "rdomain"
    if any(f.src_nat is not None for f in policy.flows):
        yield "flow-nat", "rule"
    for option in policy.config:
        yield f"config:{option.option}", "config"
    for option in policy.request:
        yield f"request:{option.option}", "request"


def _settings_features(config: Config):
    s = config.settings
    for key, on in (
        ("mobike", s.mobike),
        ("fragmentation", s.fragmentation),
        ("vendorid", s.vendorid),
        ("decouple", not s.couple),
        ("enforcesingleikesa", s.enforcesingleikesa),
        ("stickyaddress", s.stickyaddress),
        ("ocsp", s.ocsp is not None),
        ("cert_partial_chain", s.cert_partial_chain),
    ):
        if on:
            yield key


def check_capabilities(
    config: Config, positions: list[dict] | None = None, settings_at: dict | None = None
) -> tuple[list[ConfigError], list[ConfigWarning]]:
    """Errors for what the engine cannot honour, warnings for what it will leave out.

    positions (per policy, from the parser) and settings_at let messages point at the
    keyword; without them they point at the rule.
    """
    errors: list[ConfigError] = []
    warnings: list[ConfigWarning] = []
    main = config.files[0] if config.files else "iked.conf"
    for i, policy in enumerate(config.policies):
        where = positions[i] if positions and i < len(positions) else {}
        rule_at = where.get("rule") or _source_position(policy.source, main)

        def at(key, where=where, rule_at=rule_at):
            return where.get(key) or rule_at

        for key, pos_key in _features(policy):
            level = support(key)
            if key == "auth:eap" and not _eap_library():
                level = Support(REFUSE, _EAP_LIBRARY)
            if pos_key == "auth" and where and "auth" not in where and level.level == REFUSE:
                # Nothing written: iked's default is any signature method.
                level = Support(REFUSE, level.note + ' (the rule names no authentication, so '
                                'it defaults to "signature"; add psk "..." for PSK)')
            _report(level, key, f'rule "{policy.name}"', at(pos_key), errors, warnings)
        seen = set()
        for key, label, pos_key in _transforms(policy):
            if key in seen:
                continue  # one message per transform and rule
            seen.add(key)
            level = support(key)
            note = level.note if key in CAPABILITIES else f"{label or key} is not supported"
            _report(Support(level.level, note), key, f'rule "{policy.name}"', at(pos_key),
                    errors, warnings)
    for key in _settings_features(config):
        pos = (settings_at or {}).get(key if key != "decouple" else "couple")
        if pos is None:
            pos = (main, 0, 0)
        level = support(f"set:{key}")
        if key == "mobike" and level.level == WARN and settings_at is not None \
                and "mobike" not in settings_at:
            level = Support(WARN, level.note + ' (on by default; "set nomobike" turns it off)')
        _report(level, f"set:{key}", "", pos, errors, warnings)
    return errors, warnings


def check_data_plane(config: Config, positions: list[dict] | None, plane) -> tuple[
        list[ConfigError], list[ConfigWarning]]:
    """What the kernel backend that will carry the CHILD SAs cannot do. `plane` is its
    class (pyiked.kernel.backend_class): name, supports_transport, esp_encr, esp_integ.
    A transport rule it cannot carry, or a rule none of whose childsa transforms it has,
    is refused; a childsa transform it lacks is left out of negotiation, with a warning."""
    from pyiked.core.proposals import carried_specs  # core.proposals imports config.model

    errors: list[ConfigError] = []
    warnings: list[ConfigWarning] = []
    main = config.files[0] if config.files else "iked.conf"
    encr_ok, integ_ok = plane.esp_encr, plane.esp_integ
    for i, policy in enumerate(config.policies):
        where = positions[i] if positions and i < len(positions) else {}
        rule_at = where.get("rule") or _source_position(policy.source, main)
        subject = f'rule "{policy.name}"'
        if policy.transport and not plane.supports_transport:
            pos = where.get("transport") or rule_at
            errors.append(ConfigError(*pos, f"{subject}: the {plane.name} data plane has no "
                                      "transport mode"))
        if policy.protocol != ProtocolId.ESP or (encr_ok is None and integ_ok is None):
            continue
        if not carried_specs(policy.child_proposals_or_default, encr_ok, integ_ok):
            errors.append(ConfigError(*rule_at, f"{subject}: none of its childsa transforms is "
                                      f"carried by the {plane.name} data plane"))
            continue
        for proposal in policy.child_proposals:
            lacking = [(names.ENCR_BY_ID.get((e, bits), f"enc {e}"), f"encr:{e}:{bits}")
                       for e, bits in proposal.encr if encr_ok is not None and e not in encr_ok]
            lacking += [(names.INTEG_BY_ID.get(a, f"auth {a}"), f"integ:{a}")
                        for a in proposal.integ if integ_ok is not None and a not in integ_ok]
            for label, pos_key in lacking:
                pos = where.get(pos_key) or rule_at
                warnings.append(ConfigWarning(*pos, f"{subject}: childsa {label} is not carried "
                                              f"by the {plane.name} data plane: left out"))
    return errors, warnings


def _eap_library() -> bool:
    from pyiked.core.auth import mschapv2

    return mschapv2.available()


def _report(level: Support, key: str, subject: str, pos, errors, warnings) -> None:
    prefix = f"{subject}: " if subject else ""
    if level.level == REFUSE:
        note = level.note if level.note != "not supported" else f"{key} is not supported"
        errors.append(ConfigError(pos[0], pos[1], pos[2], prefix + note))
    elif level.level in (WARN, LEGACY):
        note = level.note
        if level.level == LEGACY:
            note += ": accepted because it is named explicitly"
        warnings.append(ConfigWarning(pos[0], pos[1], pos[2], prefix + note))


def _source_position(source: str, default_file: str) -> tuple[str, int, int]:
    file, _, line = source.rpartition(":")
    if file and line.isdigit():
        return (file, int(line), 0)
    return (default_file, 0, 0)


def effective_config(config: Config) -> Config:
    """The config the engine runs: WARN features switched off so none is half-negotiated."""
    policies = []
    for policy in config.policies:
        changes = {}
        for key, field_name, off in (
            ("ipcomp", "ipcomp", False),
            ("tap", "tap", None),
            ("tag", "tag", None),
            ("iface", "iface", None),
        ):
            if getattr(policy, field_name) != off and support(key).level == WARN:
                changes[field_name] = off
        policies.append(dataclasses.replace(policy, **changes) if changes else policy)
    settings = config.settings
    changes = {}
    for key, field_name, off in (
        ("mobike", "mobike", False),
        ("ocsp", "ocsp", None),
        ("cert_partial_chain", "cert_partial_chain", False),
        ("fragmentation", "fragmentation", False),
    ):
        if getattr(settings, field_name) != off and support(f"set:{key}").level == WARN:
            changes[field_name] = off
    if changes:
        settings = dataclasses.replace(settings, **changes)
    return dataclasses.replace(config, settings=settings, policies=tuple(policies))
