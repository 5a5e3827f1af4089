"""IKE_AUTH with EAP (RFC 7296 §2.16): the round trips after an IKE_AUTH request without AUTH.

    Initiator                                   Responder
    IDi, [CERTREQ], [IDr], [CP], SA, TSi, TSr -->
                                            <-- IDr, CERT, AUTH, EAP(Request/Identity)
    EAP(Response/Identity)                    -->          (state EAP from here)
                                            <-- EAP(Request/MSCHAPv2 Challenge)
    EAP(Response/MSCHAPv2 Response)           -->
                                            <-- EAP(Request/MSCHAPv2 Success)
    EAP(Response/MSCHAPv2 Success)            -->
                                            <-- EAP(Success)
    AUTH(MSK)                                 -->
                                            <-- AUTH(MSK), [CP], SA, TSi, TSr

The responder authenticates in its first answer with its certificate, and the initiator
checks that before it answers any EAP (§2.16). Both final AUTH payloads are the PSK
construction with the MSK as the key, over the same signed octets as the first AUTH would
have been (IDi of the first request, IDr of the first answer). An EAP failure ends the
exchange with EAP-Failure and AUTHENTICATION_FAILED, and the IKE SA is gone.
"""

from __future__ import annotations

import logging

from pyiked._fast import wire

from .. import auth
from ..auth import mschapv2
from ..auth.eap import EapClient, EapServer, Status
from ..errors import AuthenticationFailed
from ..iana import ExchangeType, NotifyType, PayloadType
from ..ike_sa import Response, State
from . import ike_auth

log = logging.getLogger("pyiked.engine")


def _find(payloads, ptype):
    return next((p for p in payloads if p.payload_type == ptype), None)


# -- responder (EAP server) ---------------------------------------------------------------


def start_server(sa, policy, idi, peer_id, payloads, now):
    """Answer the AUTH-less first request: our AUTH and EAP-Request/Identity."""
    engine = sa.engine
    if policy.auth.method != "eap":
        raise AuthenticationFailed(
            f"peer wants EAP; policy {policy.name!r} wants {policy.auth.method!r}"
        )
    if not mschapv2.available():
        raise AuthenticationFailed("EAP-MSCHAPv2 needs pycryptodome (pip install pyiked[eap])")
    ctx = auth.context(sa)
    ctx.peer_id_payload = idi
    ctx.request = [
        p
        for p in payloads
        if p.payload_type
        in (PayloadType.SA, PayloadType.TSi, PayloadType.TSr, PayloadType.CP, PayloadType.N)
    ]
    store = engine.store
    ctx.eap = EapServer(lambda name: _password(store, name), engine.random)
    sa.policy = policy
    sa.remote_id = peer_id
    response = Response(ike_auth.our_auth(sa, policy) + [wire.EAP(ctx.eap.start())])
    sa.state = State.EAP
    engine.stats["eap_started"] += 1
    return response


def _password(store, name):
    user = store.user(name)
    return user.password if user is not None else None


def respond(sa, payloads, now):
    """One IKE_AUTH request in state EAP: the next EAP message, or the AUTH with the MSK."""
    engine = sa.engine
    ctx = sa.auth_ctx
    eap_p, auth_p = _find(payloads, PayloadType.EAP), _find(payloads, PayloadType.AUTH)
    if ctx.msk:
        if auth_p is None:
            raise AuthenticationFailed("EAP succeeded, but the next request has no AUTH")
        auth.verify_msk(sa, ctx.msk, auth_p, ctx.peer_id_payload)
        response = Response([auth.msk_auth(sa, ctx.msk, ctx.id_payload)])
        first = ctx.request
        sa.peer_initial_contact = any(
            p.payload_type == PayloadType.N and p.type == NotifyType.INITIAL_CONTACT for p in first
        )
        engine.stats["eap_succeeded"] += 1
        engine.established(sa, now)
        return ike_auth.finish_responder(sa, sa.policy, first, response, now)
    if eap_p is None:
        raise AuthenticationFailed("IKE_AUTH during EAP without an EAP payload")
    status, message = ctx.eap.process(eap_p.data)
    if status == Status.CONTINUE:
        return Response([wire.EAP(message)])
    if status == Status.SUCCESS:
        ctx.msk = ctx.eap.msk
        sa.eap_identity = ctx.eap.user
        log.info("%r: EAP-MSCHAPv2 user %r authenticated", sa, ctx.eap.user)
        return Response([wire.EAP(message)])
    reason = f"EAP failed: {ctx.eap.reason}"
    log.info("%r: %s", sa, reason)
    engine.stats["eap_failed"] += 1
    # the EAP conversation ends with EAP-Failure; the IKE SA with AUTHENTICATION_FAILED
    return Response(
        [wire.EAP(message), wire.Notify(NotifyType.AUTHENTICATION_FAILED)],
        lambda t: engine.fail(sa, reason, t),
    )


# -- initiator (EAP client) ----------------------------------------------------------------


def start_client(sa, policy) -> None:
    """Prepare the EAP peer: the `user` whose name is our srcid, or the only one."""
    store = sa.engine.store
    users = list(store.users.values())
    user = None
    if policy.srcid is not None:
        user = store.user(str(policy.srcid))
    if user is None and len(users) == 1:
        user = users[0]
    if user is None:
        raise AuthenticationFailed(
            "EAP as initiator needs one `user` entry (or one named like srcid)"
        )
    if not mschapv2.available():
        raise AuthenticationFailed("EAP-MSCHAPv2 needs pycryptodome (pip install pyiked[eap])")
    auth.context(sa).eap = EapClient(user.name, user.password, sa.engine.random)


def client_first(sa, policy, idr, eap_p, now) -> None:
    """The responder authenticated (its AUTH verified); now the EAP conversation."""
    if not auth.uses_eap_as_client(sa, policy):
        raise AuthenticationFailed("the responder started EAP, which our policy does not use")
    if eap_p is None:
        raise AuthenticationFailed("the responder answered our EAP request without EAP")
    auth.context(sa).peer_id_payload = idr
    _client_step(sa, eap_p, now)


def client_continue(sa, payloads, now) -> None:
    ctx = sa.auth_ctx
    ike_auth.check_refusal(payloads, first=False)
    if ctx.msk:  # the answer to our AUTH with the MSK
        auth.verify_msk(sa, ctx.msk, _find(payloads, PayloadType.AUTH), ctx.peer_id_payload)
        sa.eap_identity = ctx.eap.identity
        ike_auth.finish_initiator(sa, payloads, now)
        return
    eap_p = _find(payloads, PayloadType.EAP)
    if eap_p is None:
        raise AuthenticationFailed("the responder's answer during EAP has no EAP payload")
    _client_step(sa, eap_p, now)


def _client_step(sa, eap_p, now) -> None:
    ctx = sa.auth_ctx
    status, reply = ctx.eap.process(eap_p.data)
    if status == Status.FAILURE:
        raise AuthenticationFailed(f"EAP failed: {ctx.eap.reason}")
    if status == Status.SUCCESS:
        ctx.msk = ctx.eap.msk
        payloads = [auth.msk_auth(sa, ctx.msk, ctx.id_payload)]
    else:
        payloads = [wire.EAP(reply)]
    sa.send_request(
        ExchangeType.IKE_AUTH,
        lambda: payloads,
        lambda answer, t: ike_auth.handle_response(sa, answer, t),
        now,
    )


__all__ = ["client_continue", "client_first", "respond", "start_client", "start_server"]
