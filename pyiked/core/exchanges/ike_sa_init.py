"""IKE_SA_INIT (RFC 7296 §1.2): negotiate the IKE SA's algorithms, exchange KE and nonces.

The responder keeps no state for a request it refuses (NO_PROPOSAL_CHOSEN,
INVALID_KE_PAYLOAD, COOKIE): it answers with an unprotected notify and forgets it.
"""

from __future__ import annotations

import logging

from pyiked._fast import wire

from .. import auth, keys, nat, proposals
from ..auth.signature import SUPPORTED_HASHES
from ..errors import InvalidKePayload, InvalidSyntax, IkeError, NoProposalChosen, SilentDrop
from ..iana import (
    ExchangeType,
    HeaderFlag,
    NotifyType,
    PayloadType,
    ProtocolId,
)
from ..ike_sa import IkeSA, State
from ..ke import KeyExchange
from . import index

_SA, _KE, _NONCE = PayloadType.SA, PayloadType.KE, PayloadType.NONCE
_IKE_SA_INIT, _RESPONSE = int(ExchangeType.IKE_SA_INIT), int(HeaderFlag.RESPONSE)  # ints: no enum ops

log = logging.getLogger("pyiked.engine")

NONCE_LEN = 32  # §2.10: at least half the PRF key size; 32 covers SHA2-512's 256 bits

SIGNATURE_HASHES = SUPPORTED_HASHES  # SHA2-256/384/512 and Identity (RFC 8420, EdDSA)


def _find(payloads, ptype):
    return next((p for p in payloads if p.payload_type == ptype), None)


def _notifies(payloads):
    return [p for p in payloads if p.payload_type == PayloadType.N]


def _status_notifies(engine, sa=None):
    """Capability notifies (and our Vendor ID) we send in IKE_SA_INIT (request, or the
    response for sa)."""
    out = []
    if engine.signature_auth:
        # RFC 7427 §4: announce the hashes we can verify signatures with
        out.append(wire.Notify.build(NotifyType.SIGNATURE_HASH_ALGORITHMS, list(SIGNATURE_HASHES)))
    if engine.fragmentation and (sa is None or sa.peer_fragmentation):
        # RFC 7383 §2.3: a responder announces it only to an initiator that did
        out.append(wire.Notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED))
    if engine.vendor_id is not None:  # `set vendorid`, OpenIKED's default
        out.append(wire.VendorID(engine.vendor_id))
    return out


def _force_udp_encap(sa) -> bool:
    """UDP encapsulation whether or not a NAT is there: the rule's `natt` keyword, or a
    data plane that only speaks ESP in UDP. As OpenIKED and strongSwan (encap=yes) do, we
    send a NAT_DETECTION_SOURCE_IP that cannot match, so both ends float to 4500 (RFC
    3948 and §2.23 give no other way to ask for it)."""
    return sa.engine.force_udp_encap or sa.policy.natt


def _record_peer_capabilities(sa, notifies):
    for n in notifies:
        if n.type == NotifyType.SIGNATURE_HASH_ALGORITHMS:
            sa.peer_sig_hashes = tuple(n.value)
        elif n.type == NotifyType.IKEV2_FRAGMENTATION_SUPPORTED:
            sa.peer_fragmentation = True


def _derive(sa, shared: bytes) -> None:
    """§2.14: SKEYSEED and the seven keys, then the SK payload ciphers for both directions."""
    suite = sa.suite
    seed = keys.skeyseed(suite.prf_id, sa.nonce_i, sa.nonce_r, shared)
    sa.keys = keys.derive_ike_keys(suite.prf_id, suite.encr_id, suite.encr_key_bits, suite.integ_id,
                                   seed, sa.nonce_i, sa.nonce_r, sa.spi_i, sa.spi_r)
    sa.sk_d = sa.keys.sk_d
    sa.engine.make_sk_ciphers(sa)


# -- responder ----------------------------------------------------------------------------

def respond(engine, message, data: bytes, local_addr, remote_addr, now):
    """Answer an IKE_SA_INIT request. Returns the new half-open IkeSA, or None."""
    if message.message_id != 0:
        raise InvalidSyntax("IKE_SA_INIT request with a nonzero message ID")
    first, notifies = index(message.payloads)
    sa_p, ke_p, nonce_p = first.get(_SA), first.get(_KE), first.get(_NONCE)
    if sa_p is None or ke_p is None or nonce_p is None:
        raise InvalidSyntax("IKE_SA_INIT request needs SA, KE and Ni")
    candidates = engine.store.candidates(local_addr[0], remote_addr[0])
    if not candidates:
        raise NoProposalChosen(f"no policy for peer {remote_addr[0]}")
    policy, suite = _select(candidates, sa_p, ke_p.group)
    if suite.ke_id != ke_p.group:
        # §1.2: name the group we want; keep no state
        raise InvalidKePayload(f"KE group {ke_p.group}, we want {suite.ke_id}",
                               data=suite.ke_id.to_bytes(2, "big"))
    ke = KeyExchange(suite.ke_id, random=engine.random)
    shared = ke.respond(ke_p.data)  # InvalidSyntax on a bad public value (RFC 6989)

    sa = IkeSA(engine, False, message.spi_i, engine.new_spi(), local_addr, remote_addr, now)
    sa.policy = policy
    sa.suite = suite
    sa.nonce_i = nonce_p.data
    sa.nonce_r = engine.random(NONCE_LEN)
    sa.init_request = data
    sa.recv_id = 1
    detected = nat.detect(notifies, sa.spi_i, b"\0" * 8, local_addr, remote_addr) if engine.natt else None
    if detected is not None:
        sa.nat_local, sa.nat_remote = detected
        if _force_udp_encap(sa):
            sa.nat_local = True  # we make the peer believe so, below
    _record_peer_capabilities(sa, notifies)
    _derive(sa, shared)

    out = [suite.sa_payload(b""), wire.KE(suite.ke_id, ke.public_value()), wire.Nonce(sa.nonce_r)]
    if detected is not None:  # §2.23: answer NAT detection only to a peer that does it
        fake = engine.random(20) if _force_udp_encap(sa) else b""
        out += nat.detection_notifies(wire, sa.spi_i, sa.spi_r, local_addr, remote_addr, fake)
    out += _status_notifies(engine, sa)
    out += engine.extra_init_payloads(sa)
    response = wire.Message(sa.spi_i, sa.spi_r, _IKE_SA_INIT, _RESPONSE, 0, out)
    sa.init_response = wire.encode(response)
    sa.last_response = (0, sa.frame(sa.init_response))
    sa.transmit(sa.last_response[1], now)
    return sa


def _select(candidates, sa_p, ke_group):
    for policy in candidates:
        try:
            suite = proposals.select(sa_p, policy.ike_proposals_or_default, ProtocolId.IKE,
                                     allow_legacy=True, ke_hint=ke_group)
        except NoProposalChosen:
            continue
        return policy, suite
    raise NoProposalChosen("no acceptable IKE proposal")


def error_response(message, exc: IkeError) -> bytes:
    """An unprotected notify answering a refused IKE_SA_INIT (§1.2, §2.6, §2.21)."""
    notify = wire.Notify(exc.notify_type, exc.data)
    reply = wire.Message(message.spi_i, b"\0" * 8, ExchangeType.IKE_SA_INIT, HeaderFlag.RESPONSE, 0, [notify])
    return wire.encode(reply)


# -- initiator ----------------------------------------------------------------------------

def initiate(engine, policy, local_addr, remote_addr, now, child_ts=None) -> IkeSA:
    sa = IkeSA(engine, True, engine.new_spi(), b"\0" * 8, local_addr, remote_addr, now)
    sa.policy = policy
    sa.nonce_i = engine.random(NONCE_LEN)
    specs = policy.ike_proposals_or_default
    sa.retry_ke = specs[0].ke[0]
    sa.child_pending = child_ts
    engine.register(sa)
    _send_request(sa, now)
    return sa


def _send_request(sa, now):
    engine = sa.engine
    group = sa.retry_ke
    sa.ke = KeyExchange(group, random=engine.random)
    sa.offered_sa = proposals.offer(sa.policy.ike_proposals_or_default, ke_first=group)
    payloads = []
    if sa.cookie:
        payloads.append(wire.Notify(NotifyType.COOKIE, sa.cookie))  # §2.6: first payload
    payloads += [sa.offered_sa, wire.KE(group, sa.ke.public_value()), wire.Nonce(sa.nonce_i)]
    if engine.natt:
        fake = engine.random(20) if _force_udp_encap(sa) else b""
        payloads += nat.detection_notifies(wire, sa.spi_i, b"\0" * 8, sa.local_addr, sa.remote_addr, fake)
    payloads += _status_notifies(engine)
    message = wire.Message(sa.spi_i, b"\0" * 8, ExchangeType.IKE_SA_INIT, HeaderFlag.INITIATOR, 0, payloads)
    sa.send_plain_request(ExchangeType.IKE_SA_INIT, message, lambda msg, data, now: handle_response(sa, msg, data, now), now)


def handle_response(sa, message, data: bytes, now) -> None:
    """The responder's answer: a COOKIE or INVALID_KE_PAYLOAD retry, an error, or the SA."""
    engine = sa.engine
    payloads = message.payloads
    notifies = _notifies(payloads)
    for n in notifies:
        if n.type == NotifyType.COOKIE:
            return _retry_with_cookie(sa, n.data, now)
        if n.type == NotifyType.INVALID_KE_PAYLOAD:
            return _retry_with_group(sa, n.value, now)
        if n.type < 16384:  # §3.10.1: an error in a response means the request failed
            raise IkeError(f"peer answered {_notify_name(n.type)}")
    sa_p, ke_p, nonce_p = (_find(payloads, t) for t in (PayloadType.SA, PayloadType.KE, PayloadType.NONCE))
    if sa_p is None or ke_p is None or nonce_p is None:
        raise InvalidSyntax("IKE_SA_INIT response needs SA, KE and Nr")
    suite = proposals.accept_answer(sa_p, sa.offered_sa, ProtocolId.IKE)
    if suite.ke_id != ke_p.group or ke_p.group != sa.ke.group:
        raise InvalidSyntax("responder's KE group differs from the chosen one")
    if message.spi_r == b"\0" * 8:
        raise InvalidSyntax("IKE_SA_INIT response without a responder SPI")
    sa.spi_r = message.spi_r
    sa.suite = suite
    sa.nonce_r = nonce_p.data
    shared = sa.ke.complete(ke_p.data)
    sa.ke = None
    sa.init_response = data
    detected = nat.detect(notifies, sa.spi_i, sa.spi_r, sa.local_addr, sa.remote_addr) if engine.natt else None
    if detected is not None:
        sa.nat_local, sa.nat_remote = detected
        if _force_udp_encap(sa):
            sa.nat_local = True
        if sa.natted:
            # §2.23: after NAT detection the initiator moves to the NAT-T port
            sa.local_addr = (sa.local_addr[0], engine.natt_port)
            sa.remote_addr = (sa.remote_addr[0], engine.natt_port)
    _record_peer_capabilities(sa, notifies)
    auth.record_certreq(sa, payloads)  # §3.7: steers the certificate we send
    _derive(sa, shared)
    sa.state = State.AUTH_SENT
    engine.start_auth(sa, now)


def _retry_with_cookie(sa, cookie: bytes, now):
    """§2.6: send the request again with the cookie in front (§2.6.1: kept across an
    INVALID_KE_PAYLOAD retry; a new cookie replaces it)."""
    if not 1 <= len(cookie) <= 64:
        raise IkeError("responder sent a malformed COOKIE")
    if sa.cookie == cookie:
        # a duplicate of the response we already acted on (the retry is on its way)
        raise SilentDrop("duplicate COOKIE response")
    sa.cookie = cookie
    sa.pending = None
    _send_request(sa, now)


def _retry_with_group(sa, group: int, now):
    """§1.2: retry with the group the responder asked for, if we offered it."""
    offered = {g for spec in sa.policy.ike_proposals_or_default for g in spec.ke}
    if group == sa.retry_ke:
        raise SilentDrop("duplicate INVALID_KE_PAYLOAD response")  # we already use that group
    if group not in offered:
        raise IkeError(f"responder wants KE group {group}, which we did not offer")
    sa.retry_ke = group
    sa.pending = None
    _send_request(sa, now)


def _notify_name(t):
    try:
        return NotifyType(t).name
    except ValueError:
        return f"notify {t}"
