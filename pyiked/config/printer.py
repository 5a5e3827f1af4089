"""The canonical iked.conf form of a Config (what `pyiked -nv` prints).

Everything is written out, defaults included, so parsing the output gives the same Config
without relying on inference: every setting, `local` and `peer` (with `any`), the mode,
the encapsulation, each proposal as one `ikesa` / `childsa` block with every transform, and
the lifetimes. Macros are expanded and comments are gone.

Secrets are printed, because the output must parse back to the same policies: PSKs inline
(as `0x` hex when not plain printable text), `psk file` as the file name, users with their
passwords. Treat the output like the file itself.
"""

from __future__ import annotations

from pyiked.core.iana import KeId, ProtocolId

from . import names
from .model import Config, Flow, Policy, ProposalSpec, Settings

_CONT = " \\\n\t"


def quote(text: str) -> str:
    """`text` as a quoted string the lexer reads back unchanged (parse.y quoting rules)."""
    if "\n" in text or text.endswith("\\") or "\0" in text:
        raise ValueError(f"cannot write {text!r} as an iked.conf string")
    out = ['"']
    prev = ""
    for c in text:
        if c == '"':
            out.append('\\"')
        elif c in " \t" and prev == "\\":
            out.append("\\" + c)  # a raw `\ ` would read as an escaped space
        else:
            out.append(c)
        prev = c
    out.append('"')
    return "".join(out)


def format_config(config: Config) -> str:
    parts = [_settings(config.settings)]
    if config.users:
        parts.append("\n".join(f"user {quote(u.name)} {quote(u.password.decode())}"
                               for u in config.users))
    parts.extend(format_policy(p) for p in config.policies)
    return "\n\n".join(parts) + "\n"


def _settings(s: Settings) -> str:
    def flag(on, yes, no):
        return f"set {yes if on else no}"

    lines = [
        flag(s.active, "active", "passive"),
        flag(s.couple, "couple", "decouple"),
        flag(s.fragmentation, "fragmentation", "nofragmentation"),
        flag(s.mobike, "mobike", "nomobike"),
        flag(s.vendorid, "vendorid", "novendorid"),
        flag(s.enforcesingleikesa, "enforcesingleikesa", "noenforcesingleikesa"),
        flag(s.stickyaddress, "stickyaddress", "nostickyaddress"),
    ]
    if s.cert_partial_chain:
        lines.append("set cert_partial_chain")
    if s.rsa_pss:
        lines.append("set rsa_pss")
    if s.ocsp is not None:
        line = f"set ocsp {quote(s.ocsp)}"
        if s.ocsp_tolerate or s.ocsp_maxage != -1:
            line += f" tolerate {s.ocsp_tolerate}"
            if s.ocsp_maxage != -1:
                line += f" maxage {s.ocsp_maxage}"
        lines.append(line)
    for key in ("dpd_check_interval", "cookie_threshold", "cookie_threshold_ip",
                "halfopen_limit", "halfopen_limit_ip", "halfopen_timeout", "cookie_secret_lifetime",
                "cookie_hold", "invalid_spi_rate", "fragment_size", "retransmit_timeout",
                "retransmit_tries"):
        lines.append(f"set {key} {getattr(s, key)}")
    return "\n".join(lines)


def format_policy(p: Policy) -> str:
    head = ["ikev2", quote(p.name)]
    for on, word in ((p.quick, "quick"), (p.skip, "skip"), (p.default, "default")):
        if on:
            head.append(word)
    head.append("active" if p.active else "passive")
    if p.ipcomp:
        head.append("ipcomp")
    head.append("transport" if p.transport else "tunnel")
    if p.natt:
        head.append("natt")
    head.append("ah" if p.protocol == ProtocolId.AH else "esp")
    if p.af:
        head.append("inet" if p.af == 4 else "inet6")
    pairs, protocols = _pairs(p.flows)
    if protocols != [0]:
        head.append(_protocols(protocols))
    if p.rdomain is not None:
        head.append(f"rdomain {p.rdomain}")
    lines = [" ".join(head)]
    lines.append(("," + _CONT).join(pairs))
    lines.append(f"local {_endpoint(p.local, p.local_host)} peer {_endpoint(p.peer, p.peer_host)}")
    lines.extend(_proposal("ikesa", prop) for prop in p.ike_proposals)
    lines.extend(_proposal("childsa", prop) for prop in p.child_proposals)
    ids = []
    if p.srcid is not None:
        ids.append(f"srcid {quote(p.srcid.text)}")
    if p.dstid is not None:
        ids.append(f"dstid {quote(p.dstid.text)}")
    if ids:
        lines.append(" ".join(ids))
    lines.append(
        f"ikelifetime {p.ikelifetime} lifetime {p.lifetime_seconds} bytes {p.lifetime_bytes}"
    )
    lines.append(_auth(p))
    for word, options in (("config", p.config), ("request", p.request)):
        for option in options:
            value = "any" if option.value is None else _address(option.value)
            lines.append(f"{word} {option.option} {value}")
    tail = []
    if p.iface is not None:
        tail.append(f"iface {quote(p.iface)}")
    if p.tag is not None:
        tail.append(f"tag {quote(p.tag)}")
    if p.tap is not None:
        tail.append(f"tap {quote(p.tap)}")
    if tail:
        lines.append(" ".join(tail))
    return _CONT.join(lines)


def _address(value) -> str:
    if hasattr(value, "prefixlen"):
        if value.prefixlen == value.max_prefixlen:
            return str(value.network_address)
        return value.with_prefixlen
    return str(value)


def _endpoint(network, host: str | None) -> str:
    if host is not None:
        return quote(host)
    return "any" if network is None else _address(network)


def _side(network, dynamic: bool) -> str:
    if dynamic:
        return "dynamic"
    return "any" if network is None else _address(network)


def _pairs(flows: tuple[Flow, ...]) -> tuple[list[str], list[int]]:
    """from/to pairs and the proto list; flows must be pairs x protocols, as parsed."""
    order: dict = {}
    for f in flows:
        key = (f.src, f.dst, f.src_port, f.dst_port, f.src_nat, f.src_dynamic, f.dst_dynamic)
        order.setdefault(key, []).append(f.proto)
    protocol_lists = list(order.values())
    if not protocol_lists:
        raise ValueError("a policy needs at least one flow")
    if any(pl != protocol_lists[0] for pl in protocol_lists):
        raise ValueError("flows with different protocol lists cannot share one rule")
    pairs = []
    for src, dst, sport, dport, nat, sdyn, ddyn in order:
        text = f"from {_side(src, sdyn)}"
        if nat is not None:
            text += f" ({_address(nat)})"
        if sport:
            text += f" port {sport}"
        text += f" to {_side(dst, ddyn)}"
        if dport:
            text += f" port {dport}"
        pairs.append(text)
    return pairs, protocol_lists[0]


def _protocols(protocols: list[int]) -> str:
    words = [names.protocol_name(p) for p in protocols]
    return f"proto {words[0]}" if len(words) == 1 else "proto { " + ", ".join(words) + " }"


def _proposal(word: str, prop: ProposalSpec) -> str:
    parts = [word]
    aead = False
    for encr, bits in prop.encr:
        name = names.ENCR_BY_ID.get((encr, bits))
        if name is None:
            raise ValueError(f"no iked.conf name for cipher {encr} with {bits} bits")
        aead = aead or names.ENCR[name].aead
        parts.append(f"enc {name}")
    if aead and prop.integ:
        raise ValueError("an AEAD proposal cannot carry integrity transforms")
    if prop.encr and not aead and not prop.integ:
        raise ValueError("a non-AEAD proposal needs integrity transforms")
    parts.extend(f"prf {names.PRF_BY_ID[x]}" for x in prop.prf)
    parts.extend(f"auth {names.INTEG_BY_ID[x]}" for x in prop.integ)
    ke = prop.ke
    if word == "childsa" and ke == (KeId.NONE,):
        ke = ()
    parts.extend(f"group {names.GROUP_BY_ID[x]}" for x in ke)
    parts.extend(names.ESN_BY_ID[x] for x in prop.esn)
    return " ".join(parts)


def _auth(p: Policy) -> str:
    auth = p.auth
    if auth.method == "psk":
        if auth.psk_file is not None:
            return f"psk file {quote(auth.psk_file)}"
        psk = auth.psk or b""
        try:
            text = psk.decode("ascii")
        except UnicodeDecodeError:
            text = None
        if (
            text is not None
            and text.isprintable()
            and '"' not in text
            and "\\" not in text
            and not text.startswith("0x")
        ):
            return f"psk {quote(text)}"
        return f"psk 0x{psk.hex()}"
    if auth.method == "eap":
        return f"eap {quote(auth.eap or 'mschap-v2')}"
    return auth.method
