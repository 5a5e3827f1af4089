"""Turning one parsed `ikev2` rule into a frozen Policy, with OpenIKED's semantics.

parse.y create_ike is the model:
- Every `from`/`to` pair is expanded over its address lists and over the `proto` list;
  `any` and `dynamic` stay symbolic (None plus a flag) and take the address family of
  the other side, or both families, when selectors are built (store.flow_selectors).
- Without `local` and `peer`, a rule with one from/to pair uses its source as local and
  its destination as peer (host-to-host rules need no peer); with several pairs that
  is an error ("could not get local/peer specification").
- Each `ikesa` / `childsa` block is a proposal. An AEAD cipher carries no integrity
  transform (RFC 5282 §8); AEAD and non-AEAD ciphers cannot share a block. A block
  without `enc` and `auth` becomes two proposals (AEAD defaults and CBC defaults); any
  transform type a block leaves out takes the default proposal's list.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from pyiked.core.iana import EsnId, IntegId, KeId, ProtocolId

from . import names
from .identity import parse_identity
from .lexer import Token
from .model import (
    DEFAULT_CHILD_PROPOSALS,
    DEFAULT_IKE_PROPOSALS,
    Auth,
    CfgOption,
    Flow,
    Policy,
    ProposalSpec,
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_IKE_AEAD, _IKE_CBC = DEFAULT_IKE_PROPOSALS
_CHILD_AEAD, _CHILD_CBC = DEFAULT_CHILD_PROPOSALS
_DEFAULT_ESN = (EsnId.ESN, EsnId.NO_ESN)
DEFAULT_LIFETIME_SECONDS = 10800  # iked.h IKED_LIFETIME_SECONDS: 3 hours
DEFAULT_LIFETIME_BYTES = 4 * 1024**3  # iked.h IKED_LIFETIME_BYTES: 4 GiB
_AH_DEFAULT_INTEG = (
    IntegId.HMAC_SHA2_256_128,
    IntegId.HMAC_SHA2_384_192,
    IntegId.HMAC_SHA2_512_256,
)


@dataclass
class HostEntry:
    tok: Token
    network: Network | None = None
    any: bool = False
    dynamic: bool = False
    nat: Network | None = None


@dataclass
class TransformBlock:
    start: Token
    items: list = field(default_factory=list)  # (kind, value token)


@dataclass
class RuleSpec:
    """What an `ikev2` line says, token by token, before any defaults."""

    start: Token
    number: int
    name: Token | None = None
    flags: dict = field(default_factory=dict)  # first keyword of a group -> its token
    protocols: list = field(default_factory=list)
    rdomain: int | None = None
    pairs: list = field(default_factory=list)
    peer: tuple | None = None  # (token, None | network | host name)
    local: tuple | None = None
    ikesa: list = field(default_factory=list)
    childsa: list = field(default_factory=list)
    srcid: Token | None = None
    dstid: Token | None = None
    ikelifetime: int = 0
    lifetime: int | None = None
    lifetime_bytes: int | None = None
    auth: tuple | None = None  # (method, token, psk bytes | (path, bytes) | None)
    cfg: list = field(default_factory=list)
    iface: Token | None = None
    tag: str | None = None
    tap: str | None = None

    def flag(self, group: str) -> str | None:
        tok = self.flags.get(group)
        return tok.value if tok is not None else None


def _pos(tok: Token) -> tuple[str, int, int]:
    return (tok.file, tok.line, tok.column)


def build_policy(spec: RuleSpec, parser) -> tuple[Policy, dict]:
    """The Policy for a rule and where each of its features was written."""
    positions = {"rule": _pos(spec.start)}
    for key, tok in spec.flags.items():
        positions[tok.value if key != "proto" else "proto"] = _pos(tok)
    name = spec.name.value if spec.name is not None else f"policy{spec.number}"
    if spec.name is not None and not name:
        parser.invalid(spec.name, "empty policy name")
    protocol = ProtocolId.AH if spec.flag("esp") == "ah" else ProtocolId.ESP
    af = {"inet": 4, "inet6": 6}.get(spec.flag("inet"), 0)
    flows = _flows(spec, parser)
    local, local_host, peer, peer_host = _endpoints(spec, parser, af)
    active = spec.flag("passive") == "active"
    if active and not _single(peer, peer_host, required=True):
        parser.invalid(spec.flags["passive"], "active mode requires a peer address or host name")
    if active and not _single(local, local_host, required=False):
        parser.invalid(spec.flags["passive"], "active mode requires a single local address")
    ike = tuple(p for b in spec.ikesa for p in _ike_block(b, parser, positions))
    child = tuple(p for b in spec.childsa for p in _child_block(b, protocol, parser, positions))
    if protocol == ProtocolId.AH and not child:
        child = (ProposalSpec(ProtocolId.AH, (), (), _AH_DEFAULT_INTEG, (), _DEFAULT_ESN),)
    auth = _auth(spec, positions)
    config, request = _cfg(spec, positions)
    if any(f.src_dynamic or f.dst_dynamic for f in flows) and not any(
        o.option == "address" for o in config + request
    ):
        parser.warn(spec.start, '"dynamic" needs a "config address" or "request address"')
    for key in ("peer", "local"):
        item = getattr(spec, key)
        if item is not None:
            positions[key] = _pos(item[0])
    policy = Policy(
        name=name,
        source=f"{spec.start.file}:{spec.start.line}",
        quick=spec.flag("quick") == "quick",
        skip=spec.flag("quick") == "skip",
        default=spec.flag("quick") == "default",
        active=active,
        ipcomp=spec.flag("ipcomp") == "ipcomp",
        transport=spec.flag("tunnel") == "transport",
        natt=spec.flag("natt") == "natt",
        protocol=protocol,
        af=af,
        rdomain=spec.rdomain,
        flows=flows,
        local=local,
        peer=peer,
        peer_host=peer_host,
        ike_proposals=ike,
        child_proposals=child,
        srcid=_identity(spec.srcid, parser),
        dstid=_identity(spec.dstid, parser),
        ikelifetime=spec.ikelifetime,
        lifetime_seconds=(
            spec.lifetime if spec.lifetime is not None else DEFAULT_LIFETIME_SECONDS
        ),
        lifetime_bytes=(
            spec.lifetime_bytes if spec.lifetime_bytes is not None else DEFAULT_LIFETIME_BYTES
        ),
        auth=auth,
        config=config,
        request=request,
        iface=spec.iface.value if spec.iface is not None else None,
        tag=spec.tag,
        tap=spec.tap,
        local_host=local_host,
    )
    return policy, positions


# -- traffic selectors -----------------------------------------------------------------


def _flows(spec: RuleSpec, parser) -> tuple[Flow, ...]:
    flows: list[Flow] = []
    protocols = spec.protocols or [0]
    for _first, (srcs, sport, sport_tok), (dsts, dport, dport_tok) in spec.pairs:
        for port_tok, port in ((sport_tok, sport), (dport_tok, dport)):
            if port and any(p not in names.PORT_PROTOCOLS for p in protocols):
                parser.invalid(
                    port_tok, '"port" needs "proto tcp", "proto udp" or "proto sctp"'
                )
        paired = False
        for s in srcs:
            for d in dsts:
                if s.network is not None and d.network is not None:
                    # A name or list may hold both families: pair only like with like.
                    if s.network.version != d.network.version:
                        continue
                paired = True
                for proto in protocols:
                    flow = Flow(
                        src=s.network,
                        dst=d.network,
                        src_port=sport,
                        dst_port=dport,
                        proto=proto,
                        src_nat=s.nat,
                        src_dynamic=s.dynamic,
                        dst_dynamic=d.dynamic,
                    )
                    if flow in flows:
                        parser.warn(d.tok, "duplicate flow")
                        continue
                    flows.append(flow)
        if not paired:
            parser.invalid(dsts[0].tok, "cannot mix different address families")
    return tuple(flows)


def _endpoints(spec: RuleSpec, parser, af: int):
    """(local, local_host, peer, peer_host) with parse.y's defaults and checks."""
    if spec.peer is None and spec.local is None:
        if len(spec.pairs) != 1 or len(spec.pairs[0][1][0]) != 1 or len(spec.pairs[0][2][0]) != 1:
            parser.invalid(
                spec.start,
                "could not get local/peer specification: a rule with several from/to "
                'pairs needs "peer" (or "peer any")',
            )
        local_value = spec.pairs[0][1][0][0].network
        peer_value = spec.pairs[0][2][0][0].network
    else:
        local_value = spec.local[1] if spec.local is not None else None
        peer_value = spec.peer[1] if spec.peer is not None else None
    local, local_host = (None, local_value) if isinstance(local_value, str) else (local_value, None)
    peer, peer_host = (None, peer_value) if isinstance(peer_value, str) else (peer_value, None)
    if local is not None and peer is not None and local.version != peer.version:
        parser.invalid(spec.start, "peer address family mismatch (local and peer)")
    for network, item in ((local, spec.local), (peer, spec.peer)):
        if af and network is not None and network.version != af:
            where = item[0] if item is not None else spec.start
            parser.invalid(where, f"policy address family mismatch (inet{'' if af == 4 else '6'})")
    return local, local_host, peer, peer_host


def _single(network, host: str | None, required: bool) -> bool:
    if host is not None:
        return True
    if network is None:
        return not required
    return network.prefixlen == network.max_prefixlen


# -- proposals ---------------------------------------------------------------------------


def _collect(block: TransformBlock, where: str, parser, positions: dict):
    encs, integs, prfs, groups, esns = [], [], [], [], []
    for kind, tok in block.items:
        value = tok.value
        if kind == "enc":
            xf = names.ENCR.get(value)
            if xf is None:
                parser.invalid(tok, f'"{value}" is not a valid enc transform')
            if where not in xf.where:
                here, other = ("ikesa", "childsa") if where == "ike" else ("childsa", "ikesa")
                parser.invalid(tok, f'"{value}" is not valid in {here} ({other} only)')
            key, item, out = f"encr:{xf.encr}:{xf.bits}", xf, encs
        elif kind == "auth":
            if value not in names.INTEG:
                parser.invalid(tok, f'"{value}" is not a valid auth transform')
            key, item, out = f"integ:{names.INTEG[value]}", names.INTEG[value], integs
        elif kind == "prf":
            if value not in names.PRF:
                parser.invalid(tok, f'"{value}" is not a valid prf transform')
            key, item, out = f"prf:{names.PRF[value]}", names.PRF[value], prfs
        elif kind == "group":
            if value not in names.GROUP:
                parser.invalid(tok, f'"{value}" is not a valid group transform')
            key, item, out = f"ke:{names.GROUP[value]}", names.GROUP[value], groups
        else:
            key, item, out = f"esn:{names.ESN[value]}", names.ESN[value], esns
        positions.setdefault(key, _pos(tok))
        if item not in out:
            out.append(item)
    return encs, integs, prfs, groups, esns


def _aead_split(block: TransformBlock, encs, integs, parser) -> tuple[bool, bool]:
    """(make an AEAD proposal, make a non-AEAD proposal), as parse.y create_ike."""
    aead = sum(1 for e in encs if e.aead)
    if aead and aead != len(encs):
        parser.invalid(
            block.start,
            "cannot mix encryption transforms with implicit and non-implicit authentication",
        )
    if aead and integs:
        parser.invalid(block.start, "authentication is implicit for given encryption transforms")
    with_integ = len(encs) - aead + (1 if integs else 0)
    return not with_integ, not aead


def _ike_block(block: TransformBlock, parser, positions: dict) -> list[ProposalSpec]:
    encs, integs, prfs, groups, esns = _collect(block, "ike", parser, positions)
    if esns:
        parser.invalid(block.start, "cannot use ESN with ikesa")
    if KeId.NONE in groups:
        parser.invalid(block.start, 'IKE group can not be "none"')
    make_aead, make_plain = _aead_split(block, encs, integs, parser)
    encr = tuple((e.encr, e.bits) for e in encs)
    out = []
    if make_aead:
        out.append(ProposalSpec(
            ProtocolId.IKE,
            encr or _IKE_AEAD.encr,
            tuple(prfs) or _IKE_AEAD.prf,
            (),
            tuple(groups) or _IKE_AEAD.ke,
        ))
    if make_plain:
        out.append(ProposalSpec(
            ProtocolId.IKE,
            encr or _IKE_CBC.encr,
            tuple(prfs) or _IKE_CBC.prf,
            tuple(integs) or _IKE_CBC.integ,
            tuple(groups) or _IKE_CBC.ke,
        ))
    return out


def _child_block(block: TransformBlock, protocol, parser, positions) -> list[ProposalSpec]:
    encs, integs, prfs, groups, esns = _collect(block, "esp", parser, positions)
    if prfs:
        parser.invalid(block.start, "prf is not valid in childsa (only in ikesa)")
    ke = () if groups == [KeId.NONE] else tuple(groups)
    esn = tuple(esns) or _DEFAULT_ESN
    if protocol == ProtocolId.AH:
        if encs:
            parser.invalid(block.start, "enc is not valid with ah (AH only authenticates)")
        return [ProposalSpec(ProtocolId.AH, (), (), tuple(integs) or _AH_DEFAULT_INTEG, ke, esn)]
    make_aead, make_plain = _aead_split(block, encs, integs, parser)
    encr = tuple((e.encr, e.bits) for e in encs)
    out = []
    if make_aead:
        out.append(ProposalSpec(ProtocolId.ESP, encr or _CHILD_AEAD.encr, (), (), ke, esn))
    if make_plain:
        out.append(ProposalSpec(
            ProtocolId.ESP, encr or _CHILD_CBC.encr, (), tuple(integs) or _CHILD_CBC.integ, ke, esn
        ))
    return out


# -- identities, authentication, configuration payload --------------------------------


def _identity(tok: Token | None, parser):
    if tok is None:
        return None
    try:
        return parse_identity(tok.value)
    except ValueError as exc:
        parser.invalid(tok, f"invalid identity: {exc}")


def _auth(spec: RuleSpec, positions: dict) -> Auth:
    if spec.auth is None:
        return Auth()
    method, tok, value = spec.auth
    positions["auth"] = _pos(tok)
    if method == "psk":
        if isinstance(value, tuple):
            return Auth("psk", psk=value[1], psk_file=value[0])
        return Auth("psk", psk=value)
    if method == "eap":
        return Auth("eap", eap="mschap-v2")
    return Auth(method)


def _cfg(spec: RuleSpec, positions: dict):
    config, request = [], []
    for action, opt, _value_tok, value in spec.cfg:
        positions.setdefault(action.value, _pos(action))
        (config if action.value == "config" else request).append(CfgOption(opt.value, value))
    return tuple(config), tuple(request)
