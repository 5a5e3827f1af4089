"""IKE_AUTH (RFC 7296 §1.2): prove identities and create the first CHILD SA.

An authentication failure ends the IKE SA (AUTHENTICATION_FAILED, §2.21.2). A failure of
only the CHILD SA part (no proposal, unacceptable selectors, no address left, ...) leaves
the IKE SA up and sends the error notify alongside IDr and AUTH (§1.2).

A request without AUTH asks for EAP (§2.16): the responder answers with its own AUTH and
an EAP request and moves to State.EAP, where IKE_AUTH round trips carry the EAP
conversation (ike_auth_eap). The CP and CHILD SA part of the first request is kept and
answered once the initiator's AUTH with the MSK has verified.
"""

from __future__ import annotations

import logging

from pyiked._fast import wire

from .. import auth, child_sa, cp, identity
from ..errors import AuthenticationFailed, IkeError, InvalidSyntax
from ..iana import NOTIFY_ERROR_MAX, ExchangeType, NotifyType, PayloadType
from ..ike_sa import Response, State
from . import index

_SA, _TSI, _TSR, _CP = PayloadType.SA, PayloadType.TSi, PayloadType.TSr, PayloadType.CP
_IDI, _IDR, _AUTH, _CERTREQ = PayloadType.IDi, PayloadType.IDr, PayloadType.AUTH, PayloadType.CERTREQ

log = logging.getLogger("pyiked.engine")

# Errors that concern only the CHILD SA of an IKE_AUTH (§1.2, §2.21.2)
CHILD_ERRORS = {
    NotifyType.NO_PROPOSAL_CHOSEN, NotifyType.TS_UNACCEPTABLE, NotifyType.SINGLE_PAIR_REQUIRED,
    NotifyType.INTERNAL_ADDRESS_FAILURE, NotifyType.FAILED_CP_REQUIRED,
    NotifyType.INVALID_SELECTORS, NotifyType.NO_ADDITIONAL_SAS, NotifyType.TEMPORARY_FAILURE,
}


def _find(payloads, ptype):
    return next((p for p in payloads if p.payload_type == ptype), None)


def _notifies(payloads):
    return [p for p in payloads if p.payload_type == PayloadType.N]


def _id_payload(cls, ident):
    return cls(ident.id_type, ident.data)


# -- responder ----------------------------------------------------------------------------

def respond(sa, payloads, now):
    if sa.state == State.EAP:
        return ike_auth_eap.respond(sa, payloads, now)
    engine = sa.engine
    found = index(payloads)
    first = found[0]
    idi, auth_p = first.get(_IDI), first.get(_AUTH)
    if idi is None:
        raise InvalidSyntax("IKE_AUTH request needs IDi")
    peer_id = identity.identity_from_payload(idi.id_type, idi.data)
    # the selectors as TS, once: policy selection and the CHILD SA both narrow them
    tsi, tsr = first.get(_TSI), first.get(_TSR)
    selectors = (child_sa.ts_from_wire(tsi.selectors) if tsi is not None else None,
                 child_sa.ts_from_wire(tsr.selectors) if tsr is not None else None)
    policy = _policy_for(sa, peer_id, found, selectors)
    if _CERTREQ in first:
        auth.record_certreq(sa, payloads)
    if auth_p is None:  # §2.16: no AUTH means the initiator wants to use EAP
        return ike_auth_eap.start_server(sa, policy, idi, peer_id, payloads, now)
    auth.verify_peer(sa, policy, auth_p, idi, payloads)

    sa.policy = policy
    sa.remote_id = peer_id
    response = Response(our_auth(sa, policy))
    sa.peer_initial_contact = any(n.type == NotifyType.INITIAL_CONTACT for n in found[1])
    engine.established(sa, now)
    return finish_responder(sa, policy, payloads, response, now, found, selectors)


def our_auth(sa, policy) -> list:
    """Responder: IDr, our certificates and AUTH."""
    sa.local_id = auth.local_identity(sa, policy)
    idr = _id_payload(wire.IDr, sa.local_id)
    cert_payloads, auth_payload = auth.local_auth(sa, policy, idr)
    return [idr, *cert_payloads, auth_payload]


def finish_responder(sa, policy, payloads, response, now, found=None, selectors=None):
    """The CP and CHILD SA part of an authenticated IKE_AUTH request (§1.2, §2.19).
    found: index(payloads), selectors: (TSi, TSr) as TS lists, when the caller has them."""
    try:
        return _child_part(sa, policy, found or index(payloads), selectors, response, now)
    finally:
        sa.engine.auth_done(sa)  # the CHILD SA had the last use of the SA_INIT nonces


def _child_part(sa, policy, found, selectors, response, now):
    engine = sa.engine
    first, notifies = found
    sa_p, tsi, tsr = first.get(_SA), first.get(_TSI), first.get(_TSR)
    if sa_p is None and tsi is None and tsr is None:
        return response  # RFC 6023 childless: nothing more to do
    if sa_p is None or tsi is None or tsr is None:
        response.append(wire.Notify(NotifyType.INVALID_SYNTAX))
        return response
    try:
        reply = cp.respond(sa, policy, first.get(_CP), now)
        if reply is not None:
            response.append(reply)
        child, child_payloads, event = child_sa.respond(sa, policy, sa_p, tsi.selectors,
                                                        tsr.selectors, notifies, now, selectors=selectors)
    except IkeError as exc:
        if exc.notify_type is None:
            raise
        log.info("%r: CHILD SA refused (%s), IKE SA stays up", sa, exc)
        engine.child_failed(sa, str(exc))
        response.append(wire.Notify(exc.notify_type, exc.data))
        return response
    response.extend(child_payloads)
    engine.add_child(sa, child, event)
    return response


def _policy_for(sa, peer_id, found, selectors):
    """The policy that governs this peer now that its identity is known.

    The policy chosen at IKE_SA_INIT only matched addresses; the identity, the identity
    it asks us to be (IDr), its selectors and its mode may select another one (last match
    wins). It must still accept the IKE SA's algorithms.
    """
    engine = sa.engine
    first, notifies = found
    idr = first.get(_IDR)
    ts_i, ts_r = selectors
    policy = engine.store.select(
        sa.local_addr[0], sa.remote_addr[0], peer_id,
        local_id=identity.identity_from_payload(idr.id_type, idr.data) if idr else None,
        ts_local=ts_r,
        ts_remote=ts_i,
        transport=child_sa.wants_transport(notifies),
        accept=lambda p: engine.suite_allowed(p, sa.suite),
    )
    if policy is None:
        # the identity may be fine but the selectors not: let the CHILD part refuse them
        policy = engine.store.select(sa.local_addr[0], sa.remote_addr[0], peer_id,
                                     accept=lambda p: engine.suite_allowed(p, sa.suite))
    if policy is None:
        raise AuthenticationFailed(f"no policy for peer identity {peer_id}")
    return policy


# -- initiator ----------------------------------------------------------------------------

def start(sa, now):
    """Send our IKE_AUTH request (after IKE_SA_INIT completed)."""
    engine = sa.engine
    policy = sa.policy
    sa.local_id = auth.local_identity(sa, policy)
    idi = _id_payload(wire.IDi, sa.local_id)
    cert_payloads, auth_payload = auth.local_auth(sa, policy, idi)
    # §1.2 / §2.19 order: IDi, [CERT], [CERTREQ], [IDr], AUTH, notifies, [CP], SA, TSi, TSr
    payloads = [idi, *cert_payloads, *auth.certreq(sa, policy)]
    if policy.dstid is not None:
        payloads.append(_id_payload(wire.IDr, policy.dstid))
    if auth_payload is not None:
        payloads.append(auth_payload)
    else:
        ike_auth_eap.start_client(sa, policy)  # §2.16: no AUTH asks the responder for EAP
    if engine.first_contact(sa):
        payloads.append(wire.Notify(NotifyType.INITIAL_CONTACT))  # §2.4
    cp_request = cp.request_payload(policy)
    if cp_request is not None:
        payloads.append(cp_request)
    ts_local, ts_remote = sa.child_pending or (None, None)
    proposal, child_payloads = child_sa.propose(sa, policy, ts_local, ts_remote)
    sa.child_pending = proposal
    payloads += child_payloads
    sa.send_request(ExchangeType.IKE_AUTH, lambda: payloads,
                    lambda answer, t: handle_response(sa, answer, t), now)


def handle_response(sa, payloads, now):
    if sa.auth_ctx is not None and sa.auth_ctx.peer_id_payload is not None:
        return ike_auth_eap.client_continue(sa, payloads, now)  # a later EAP round trip
    policy = sa.policy
    check_refusal(payloads, first=True)
    idr, auth_p = _find(payloads, PayloadType.IDr), _find(payloads, PayloadType.AUTH)
    peer_id = identity.identity_from_payload(idr.id_type, idr.data)
    try:
        if policy.dstid is not None and not identity.identity_matches(policy.dstid, peer_id):
            raise AuthenticationFailed(f"peer identity {peer_id} is not {policy.dstid}")
        auth.verify_peer(sa, policy, auth_p, idr, payloads)  # §2.16: before any EAP, too
    except AuthenticationFailed:
        report_auth_failure(sa, now)
        raise
    sa.remote_id = peer_id
    eap_p = _find(payloads, PayloadType.EAP)
    if auth.uses_eap_as_client(sa, policy) or eap_p is not None:
        return ike_auth_eap.client_first(sa, policy, idr, eap_p, now)
    finish_initiator(sa, payloads, now)


def report_auth_failure(sa, now) -> None:
    """§2.21.2: an error found by the initiator MAY go back in a separate INFORMATIONAL
    (the one exception to never starting an exchange over an error in a response), so the
    responder drops the SA at once instead of keeping it until it times out. Sent once:
    our side of the SA is gone before any answer could come."""
    notify = wire.Notify(NotifyType.AUTHENTICATION_FAILED)
    datagrams = sa.protect(ExchangeType.INFORMATIONAL, sa.send_id, False, [notify])
    sa.send_id += 1
    sa.transmit(datagrams, now)


def check_refusal(payloads, first: bool) -> None:
    """An IKE_AUTH answer with an error other than a CHILD SA one failed (§2.21.2)."""
    errors = [n for n in _notifies(payloads) if n.type <= NOTIFY_ERROR_MAX]
    fatal = [n for n in errors if n.type not in CHILD_ERRORS]
    missing = first and (_find(payloads, PayloadType.IDr) is None
                         or _find(payloads, PayloadType.AUTH) is None)
    if fatal or missing:
        names = ", ".join(_name(n.type) for n in errors) or "no IDr/AUTH"
        raise AuthenticationFailed(f"IKE_AUTH refused by the peer: {names}")


def finish_initiator(sa, payloads, now):
    """The responder is authenticated: the IKE SA is up; take its CP reply and CHILD SA."""
    try:
        _initiator_child_part(sa, payloads, now)
    finally:
        sa.engine.auth_done(sa)  # the CHILD SA had the last use of the SA_INIT nonces


def _initiator_child_part(sa, payloads, now):
    engine = sa.engine
    notifies = _notifies(payloads)
    errors = [n for n in notifies if n.type <= NOTIFY_ERROR_MAX]
    cp.handle_reply(sa, _find(payloads, PayloadType.CP))
    engine.established(sa, now)

    proposal, sa.child_pending = sa.child_pending, None
    if errors:
        log.info("%r: IKE SA up, CHILD SA refused: %s", sa, ", ".join(_name(n.type) for n in errors))
        engine.child_failed(sa, _name(errors[0].type))
        return
    sa_p, tsi, tsr = (_find(payloads, t) for t in (PayloadType.SA, PayloadType.TSi, PayloadType.TSr))
    if proposal is None or sa_p is None or tsi is None or tsr is None:
        engine.child_failed(sa, "responder created no CHILD SA")
        return
    try:
        child, event = child_sa.complete(sa, proposal, sa_p, tsi.selectors, tsr.selectors, notifies, now)
    except IkeError as exc:
        # §2.21.3: an unacceptable CHILD SA answer: delete it, keep the IKE SA
        log.info("%r: responder's CHILD SA unacceptable: %s", sa, exc)
        engine.child_failed(sa, str(exc))
        engine.delete_unwanted_child(sa, proposal, sa_p, now)
        return
    engine.add_child(sa, child, event)


def _name(t):
    try:
        return NotifyType(t).name
    except ValueError:
        return f"notify {t}"


from . import ike_auth_eap  # noqa: E402  (it uses the helpers above)

__all__ = ["respond", "start", "handle_response", "finish_responder", "finish_initiator", "State"]
