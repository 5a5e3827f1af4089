"""Authentication of the IKE SA (RFC 7296 §2.15): building our AUTH, verifying the peer's.

One entry point per direction, dispatching on the policy's auth method, so IKE_AUTH does
not care whether a PSK, a signature or EAP is behind it.
"""

from __future__ import annotations


from .. import identity, keys
from ..errors import AuthenticationFailed
from ..iana import AuthMethod
from . import psk


def octets(sa, ours: bool, id_payload) -> bytes:
    """§2.15: RealMessage | peer's nonce | prf(SK_px, IDx') for our side or the peer's.

    The initiator signs its IKE_SA_INIT request with the responder's nonce; the
    responder signs its response with the initiator's nonce.
    """
    signer_is_initiator = sa.initiator if ours else not sa.initiator
    if signer_is_initiator:
        message, nonce, sk_p = sa.init_request, sa.nonce_r, sa.keys.sk_pi
    else:
        message, nonce, sk_p = sa.init_response, sa.nonce_i, sa.keys.sk_pr
    return keys.auth_octets(message, nonce, sa.suite.prf_id, sk_p,
                            identity.body(id_payload.id_type, id_payload.data))


def local_auth(sa, policy, id_payload) -> list:
    """Our AUTH payload (and, for signatures, CERT payloads) for IKE_AUTH."""
    method = policy.auth.method
    if method == "psk":
        return [psk.sign(sa, policy, octets(sa, True, id_payload))]
    raise AuthenticationFailed(f"auth method {method!r} is not supported yet")


def verify_peer(sa, policy, auth_payload, id_payload, payloads) -> None:
    """Raise AuthenticationFailed unless the peer's AUTH proves the policy's credential."""
    if auth_payload is None:
        raise AuthenticationFailed("no AUTH payload")
    method = policy.auth.method
    if method == "psk":
        if auth_payload.method != AuthMethod.SHARED_KEY_MIC:
            raise AuthenticationFailed(f"peer used auth method {auth_payload.method}, policy wants PSK")
        psk.verify(sa, policy, auth_payload, octets(sa, False, id_payload))
        return
    raise AuthenticationFailed(f"auth method {method!r} is not supported yet")


__all__ = ["local_auth", "verify_peer", "octets"]
