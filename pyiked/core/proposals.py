"""SA proposals: building our offers and choosing from the peer's (RFC 7296 §2.7, §3.3).

A configured `ProposalSpec` lists acceptable algorithms per transform type. On the wire
each spec becomes one Proposal substructure carrying all of them. The responder picks in
*its own* preference order (spec order, then algorithm order within a spec) and answers
with exactly one transform of each type; the initiator checks that the answer is one of the
combinations it offered.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from operator import attrgetter

from pyiked._fast import wire
from pyiked.config.model import ProposalSpec

from . import crypto
from .errors import InvalidSyntax, NoProposalChosen
from .iana import EsnId, IntegId, KeId, ProtocolId, TransformType

# RFC 7296 §3.3.1: SPI sizes per protocol (IKE: 0 in IKE_SA_INIT, 8 when rekeying)
SPI_SIZE = {ProtocolId.IKE: (0, 8), ProtocolId.ESP: (4,), ProtocolId.AH: (4,)}

# Transform types that must appear exactly once in a chosen proposal
_REQUIRED = {
    ProtocolId.IKE: (TransformType.ENCR, TransformType.PRF, TransformType.KE),
    ProtocolId.ESP: (TransformType.ENCR,),
    ProtocolId.AH: (TransformType.INTEG,),
}


@dataclass(frozen=True, slots=True)
class Suite:
    """A chosen proposal: one algorithm per transform type, and the peer's SPI."""

    protocol: int
    encr_id: int = 0
    encr_key_bits: int = 0
    prf_id: int = 0
    integ_id: int = 0
    ke_id: int = 0
    esn: bool = False
    proposal_num: int = 1
    spi: bytes = b""

    @property
    def aead(self) -> bool:
        return self.encr_id != 0 and crypto.encr_info(self.encr_id, self.encr_key_bits or None).aead

    def describe(self) -> dict:
        """Algorithm names for `show sa` and IkeSAUp (strongSwan's spelling, which
        `swanctl --list-sas` prints too, so interop tests compare them directly)."""
        # every IKE SA up asks; the names of one suite never change (~5 us to look up)
        return dict(_describe(self.protocol, self.encr_id, self.encr_key_bits, self.prf_id,
                              self.integ_id, self.ke_id, self.esn))

    def _names(self) -> dict:
        name = crypto.transform_name
        out = {}
        if self.encr_id:
            out["encr"] = name(TransformType.ENCR, self.encr_id, self.encr_key_bits or None, "strongswan")
        if self.integ_id:
            out["integ"] = name(TransformType.INTEG, self.integ_id, None, "strongswan")
        if self.prf_id:
            out["prf"] = name(TransformType.PRF, self.prf_id, None, "strongswan")
        if self.ke_id:
            out["ke"] = name(TransformType.KE, self.ke_id, None, "strongswan")
        if self.protocol != ProtocolId.IKE:
            out["esn"] = name(TransformType.ESN, EsnId.ESN if self.esn else EsnId.NO_ESN, None, "strongswan")
        return out

    def transforms(self) -> list:
        """The wire transforms of this suite, for the response's SA payload."""
        out = [_encr_transform(self.encr_id, self.encr_key_bits)] if self.encr_id else []
        if self.prf_id:
            out.append(wire.Transform(TransformType.PRF, self.prf_id))
        if self.integ_id:
            out.append(wire.Transform(TransformType.INTEG, self.integ_id))
        if self.protocol == ProtocolId.IKE or self.ke_id:
            out.append(wire.Transform(TransformType.KE, self.ke_id))
        if self.protocol != ProtocolId.IKE:
            out.append(wire.Transform(TransformType.ESN, EsnId.ESN if self.esn else EsnId.NO_ESN))
        return out

    def sa_payload(self, spi: bytes):
        """RFC 7296 §3.3: the answer carries the accepted proposal number and our SPI."""
        return wire.SA([wire.Proposal(self.proposal_num, self.protocol, spi, _answer_transforms(self))])


def _answer_transforms(suite) -> list:
    """suite.transforms(), made once per algorithm set (every answer of a kind is the same;
    the encoder only reads them). Bounded: the sets come from our configuration."""
    key = (suite.protocol, suite.encr_id, suite.encr_key_bits, suite.prf_id, suite.integ_id, suite.ke_id,
           suite.esn)
    found = _TRANSFORMS.get(key)
    if found is None:
        if len(_TRANSFORMS) >= 1024:
            _TRANSFORMS.clear()
        found = _TRANSFORMS[key] = suite.transforms()
    return found


_TRANSFORMS: dict[tuple, list] = {}


@functools.lru_cache(maxsize=256)
def _describe(protocol, encr_id, encr_key_bits, prf_id, integ_id, ke_id, esn) -> dict:
    return Suite(protocol, encr_id, encr_key_bits, prf_id, integ_id, ke_id, esn)._names()


@functools.lru_cache(maxsize=None)
def takes_key_length(encr_id: int) -> bool:
    """§3.3.5: the Key Length attribute is present only for variable-length ciphers."""
    try:
        crypto.encr_info(encr_id, 0)
    except NoProposalChosen:
        return True
    return False


def _encr_transform(encr_id: int, key_bits: int):
    if key_bits and takes_key_length(encr_id):
        return wire.Transform(TransformType.ENCR, encr_id, key_bits)
    return wire.Transform(TransformType.ENCR, encr_id)


def offer(specs, spi: bytes = b"", ke_first: int | None = None, pfs_group: int | None = None):
    """Our SA payload: one Proposal per spec, numbered from 1 (§3.3.1).

    For a CHILD SA without PFS the KE transform is left out; with pfs_group given every
    proposal offers it (our KE payload uses that group).
    """
    proposals = []
    for num, spec in enumerate(specs, 1):
        transforms = [_encr_transform(e, bits) for e, bits in spec.encr]
        transforms += [wire.Transform(TransformType.PRF, p) for p in spec.prf]
        transforms += [wire.Transform(TransformType.INTEG, i) for i in spec.integ]
        groups = list(spec.ke)
        if ke_first in groups:  # the group our KE payload carries goes first
            groups.remove(ke_first)
            groups.insert(0, ke_first)
        transforms += [wire.Transform(TransformType.KE, g) for g in groups]
        if spec.protocol != ProtocolId.IKE:
            for esn in spec.esn or (EsnId.NO_ESN, EsnId.ESN):
                transforms.append(wire.Transform(TransformType.ESN, esn))
        proposals.append(wire.Proposal(num, spec.protocol, spi, transforms))
    return wire.SA(proposals)


def _by_type(proposal) -> dict[int, list]:
    out: dict[int, list] = {}
    for t in proposal.transforms:
        out.setdefault(t.type, []).append(t)
    return out


def _has_encr(offered: list, encr_id: int, bits: int) -> bool:
    for t in offered:
        if t.id == encr_id and (t.key_length or 0) == (bits if takes_key_length(encr_id) else 0):
            return True
    return False


def _pick(ours, offered: list, hint: int | None = None):
    ids = {t.id for t in offered}
    if hint is not None and hint in ours and hint in ids:
        return hint
    for candidate in ours:
        if candidate in ids:
            return candidate
    return None


def _match(spec: ProposalSpec, prop, protocol: int, allow_legacy: bool, ke_hint, default_esn,
           ignore_ke=False):
    """The suite spec and prop have in common, or None (ignore_ke: as if neither had KE
    transforms)."""
    types = _by_type(prop)
    if ignore_ke:
        types.pop(TransformType.KE, None)
    known = {TransformType.ENCR, TransformType.PRF, TransformType.INTEG, TransformType.KE, TransformType.ESN}
    for ttype, ts in types.items():
        # RFC 9370 §2.2: an additional-KE type we don't do is acceptable only with NONE in it
        if ttype not in known and not any(t.id == 0 for t in ts):
            return None
    encr = next(
        ((e, b) for e, b in spec.encr
         if _has_encr(types.get(TransformType.ENCR, []), e, b)
         and crypto.supported(TransformType.ENCR, e, b or None, allow_legacy, protocol)),
        None,
    ) if spec.encr else (0, 0)
    if encr is None:
        return None
    aead = encr[0] != 0 and crypto.encr_info(encr[0], encr[1] or None).aead
    offered_integ = [t for t in types.get(TransformType.INTEG, []) if t.id != IntegId.NONE]
    if aead:
        integ = 0  # RFC 5282 §8: no INTEG with a combined-mode cipher
    elif not offered_integ and protocol == ProtocolId.ESP and not spec.integ:
        integ = 0
    else:
        usable = [i for i in spec.integ if crypto.supported(TransformType.INTEG, i, None, allow_legacy, protocol)]
        integ = _pick(usable, offered_integ)
        if integ is None:
            return None
    prf = 0
    if protocol == ProtocolId.IKE:
        usable = [p for p in spec.prf if crypto.supported(TransformType.PRF, p, None, allow_legacy, protocol)]
        prf = _pick(usable, types.get(TransformType.PRF, []))
        if prf is None:
            return None
    ke = _match_ke(spec, types.get(TransformType.KE, []), protocol, allow_legacy, ke_hint,
                   () if ignore_ke else spec.ke)
    if ke is None:
        return None
    esn = False
    if protocol != ProtocolId.IKE:
        offered_esn = types.get(TransformType.ESN) or [wire.Transform(TransformType.ESN, EsnId.NO_ESN)]
        pick = _pick(spec.esn or default_esn, offered_esn)
        if pick is None:
            return None
        esn = pick == EsnId.ESN
    return Suite(protocol, encr[0], encr[1], prf, integ, ke, esn, prop.num, prop.spi)


def _match_ke(spec, offered: list, protocol, allow_legacy, hint, ours):
    usable = [g for g in ours
              if g == KeId.NONE or crypto.supported(TransformType.KE, g, None, allow_legacy, protocol)]
    if protocol == ProtocolId.IKE:
        return _pick(usable, offered, hint)
    # CHILD SA: no PFS on our side matches an offer without KE or with NONE in it
    if not usable or usable == [KeId.NONE]:
        if not offered or any(t.id == KeId.NONE for t in offered):
            return KeId.NONE
        return None
    return _pick(usable, offered, hint)


def select(offered_sa, specs, protocol: int, *, allow_legacy=False, ke_hint=None,
           default_esn=(EsnId.ESN, EsnId.NO_ESN), ignore_ke=False) -> Suite:
    """Responder: the first of our specs (in our order) that one of the peer's proposals
    satisfies, with that proposal's number and SPI. Raises NoProposalChosen (§2.7) when
    there is none.

    ke_hint is the group of the peer's KE payload: when acceptable it is chosen, to save
    an INVALID_KE_PAYLOAD round trip (§1.2). ignore_ke: KE transforms play no part, on
    either side (the CHILD SA of IKE_AUTH, §1.2).
    """
    suite, spi = choose(offered_sa, specs, protocol, allow_legacy=allow_legacy, ke_hint=ke_hint,
                        default_esn=default_esn, ignore_ke=ignore_ke)
    return suite if spi == suite.spi else replace(suite, spi=spi)


def choose(offered_sa, specs, protocol: int, *, allow_legacy=False, ke_hint=None,
           default_esn=(EsnId.ESN, EsnId.NO_ESN), ignore_ke=False) -> tuple[Suite, bytes]:
    """select() as (the suite without an SPI, shared; the chosen proposal's SPI): what a
    CHILD SA needs, without a Suite of its own."""
    offered = offered_sa.proposals
    sizes = SPI_SIZE.get(protocol, ())
    for prop in offered:
        if prop.protocol_id == protocol and len(prop.spi) not in sizes:
            raise InvalidSyntax(f"proposal {prop.num}: SPI size {len(prop.spi)} for protocol {protocol}")
    # Peers of one kind send the same offer every time: remember the answer per offer
    # (what was offered, not the SPIs) and per configuration.
    key = (id(specs), protocol, allow_legacy, ke_hint, default_esn, ignore_ke, _offer_signature(offered))
    hit = _SELECTED.get(key)
    if hit is None or hit[0] is not specs:
        if len(_SELECTED) >= 1024:
            _SELECTED.clear()
        chosen = _select(offered, specs, protocol, allow_legacy, ke_hint, default_esn, ignore_ke)
        if chosen is not None:
            chosen = (chosen[0], algorithms_only(chosen[1]))
        hit = _SELECTED[key] = (specs, chosen)
    chosen = hit[1]
    if chosen is None:
        raise NoProposalChosen("no acceptable proposal")
    return chosen[1], offered[chosen[0]].spi


# (id(specs), ..., offer signature) -> (specs, (index of the chosen proposal, Suite without
# SPI) or None); the entry holds specs, so their id cannot be reused while it exists.
_SELECTED: dict[tuple, tuple] = {}


def algorithms_only(suite: Suite) -> Suite:
    """The suite without the peer's SPI, one shared object per algorithm set (a CHILD SA
    keeps its SPIs apart and would otherwise hold a Suite of its own)."""
    if not suite.spi:
        return suite
    key = (suite.protocol, suite.encr_id, suite.encr_key_bits, suite.prf_id, suite.integ_id,
           suite.ke_id, suite.esn, suite.proposal_num)
    shared = _ALGORITHMS.get(key)
    if shared is None:
        if len(_ALGORITHMS) >= 1024:  # proposal numbers come from the peer: bounded
            _ALGORITHMS.clear()
        shared = _ALGORITHMS[key] = replace(suite, spi=b"")
    return shared


_ALGORITHMS: dict[tuple, Suite] = {}


_TRANSFORM_KEY = attrgetter("type", "id", "key_length", "attributes")


def _offer_signature(proposals) -> tuple:
    """What the cache keys an offer by: every field of every proposal and transform,
    except the SPIs (map and attrgetter: no Python frame per transform)."""
    return tuple([(p.num, p.protocol_id, tuple(map(_TRANSFORM_KEY, p.transforms))) for p in proposals])


def _select(offered, specs, protocol, allow_legacy, ke_hint, default_esn, ignore_ke=False):
    for spec in specs:
        if spec.protocol != protocol:
            continue
        for index, prop in enumerate(offered):
            if prop.protocol_id != protocol:
                continue
            suite = _match(spec, prop, protocol, allow_legacy, ke_hint, default_esn, ignore_ke)
            if suite is not None:
                return index, suite
    return None


def preferred_group(offered_sa, specs, protocol: int, *, allow_legacy=False) -> int | None:
    """The KE group we would pick, for INVALID_KE_PAYLOAD (§1.2)."""
    try:
        suite = select(offered_sa, specs, protocol, allow_legacy=allow_legacy)
    except NoProposalChosen:
        return None
    return suite.ke_id or None


def accept_answer(answer_sa, offered_sa, protocol: int) -> Suite:
    """Initiator: the responder's SA payload must hold one proposal, one transform per
    type, all taken from the proposal of the same number we sent (§2.7, §3.3.6)."""
    if len(answer_sa.proposals) != 1:
        raise NoProposalChosen("answer must contain exactly one proposal")
    prop = answer_sa.proposals[0]
    if prop.protocol_id != protocol or len(prop.spi) not in SPI_SIZE.get(protocol, ()):
        raise NoProposalChosen("answer has the wrong protocol or SPI size")
    ours = next((p for p in offered_sa.proposals if p.num == prop.num), None)
    if ours is None:
        raise NoProposalChosen(f"answer names proposal {prop.num}, which we did not offer")
    types = _by_type(prop)
    for ttype, ts in types.items():
        if len(ts) != 1:
            raise NoProposalChosen(f"answer has {len(ts)} transforms of type {ttype}")
        if ts[0] not in ours.transforms and not (ttype == TransformType.KE and ts[0].id == KeId.NONE):
            raise NoProposalChosen(f"answer transform {ts[0]!r} was not offered")
    for ttype in _REQUIRED[protocol]:
        if ttype not in types:
            raise NoProposalChosen(f"answer lacks transform type {ttype}")

    def one(ttype):
        t = types.get(ttype)
        return t[0] if t else None

    encr = one(TransformType.ENCR)
    integ = one(TransformType.INTEG)
    ke = one(TransformType.KE)
    esn = one(TransformType.ESN)
    prf = one(TransformType.PRF)
    return Suite(
        protocol,
        encr.id if encr else 0,
        (encr.key_length or 0) if encr else 0,
        prf.id if prf else 0,
        integ.id if integ else 0,
        ke.id if ke else 0,
        bool(esn and esn.id == EsnId.ESN),
        prop.num,
        prop.spi,
    )


def child_spec_groups(specs) -> list[int]:
    """PFS groups configured for CHILD SAs, in order (empty: no PFS)."""
    out = []
    for spec in specs:
        for g in spec.ke:
            if g != KeId.NONE and g not in out:
                out.append(g)
    return out


def carried_specs(specs, encr_ok, integ_ok) -> tuple:
    """specs without the transforms outside encr_ok / integ_ok (None: all allowed); a spec
    left without a cipher, or with a non-AEAD cipher and no integrity, is dropped."""
    out = []
    for spec in specs:
        encr = tuple(e for e in spec.encr if encr_ok is None or e[0] in encr_ok)
        integ = tuple(i for i in spec.integ if integ_ok is None or i in integ_ok)
        if not encr or (spec.integ and not integ):
            continue
        out.append(replace(spec, encr=encr, integ=integ))
    return tuple(out)
