"""Authentication of the IKE SA (RFC 7296 §2.15, §2.16): building our AUTH, verifying the peer's.

One entry point per direction, dispatching on the policy's auth method, so IKE_AUTH does
not care whether a PSK, a certificate or EAP is behind it:

    local_identity(sa, policy)              our ID (choosing our certificate first)
    local_auth(sa, policy, id_payload)      -> (CERT payloads, AUTH payload or None)
    certreq(sa, policy)                     -> [CERTREQ] when we verify the peer by certificate
    verify_peer(sa, policy, auth, id, payloads)
    msk_auth / verify_msk                   the AUTH of §2.16 with the EAP MSK as the key
    octets(sa, ours, id_payload)

Policy methods (iked.conf): `psk` on both sides; `rsa`, `ecdsa256/384/521`, `rfc7427` and
`signature` (OpenIKED's default: any signature) are certificates on both sides; `eap`
means the initiator authenticates with EAP and the responder with its certificate.
"""

from __future__ import annotations

import hmac
import logging

from pyiked._fast import wire

from .. import certs, identity, keys
from ..errors import AuthenticationFailed
from ..iana import AuthMethod, CertEncoding, PayloadType
from . import psk, signature

log = logging.getLogger("pyiked.engine")

SIGNATURE_POLICIES = frozenset(signature.POLICY_METHODS)  # includes "eap" (the server side)


class AuthContext:
    """What an IKE_AUTH spanning several messages (EAP, §2.16) carries between them."""

    __slots__ = ("credential", "id_payload", "peer_id_payload", "eap", "request", "proposal", "msk")

    def __init__(self):
        self.credential = None  # our certs.Credential
        self.id_payload = None  # our IDi/IDr as sent (the MSK AUTH signs it again)
        self.peer_id_payload = None
        self.eap = None  # EapServer or EapClient
        self.request = None  # responder: the first IKE_AUTH request's payloads (SA, TS, CP)
        self.proposal = None  # initiator: our CHILD SA proposal
        self.msk = b""

    def __repr__(self):
        return f"<AuthContext eap={self.eap!r}>"


def context(sa) -> AuthContext:
    if sa.auth_ctx is None:
        sa.auth_ctx = AuthContext()
    return sa.auth_ctx


def uses_eap_as_client(sa, policy) -> bool:
    return policy.auth.method == "eap" and sa.initiator


def _signs(sa, policy) -> bool:
    """Whether we authenticate with our certificate."""
    method = policy.auth.method
    return method in SIGNATURE_POLICIES and not uses_eap_as_client(sa, policy)


def _peer_signs(sa, policy) -> bool:
    """Whether the peer authenticates with a certificate (not a PSK, not EAP)."""
    method = policy.auth.method
    return method in SIGNATURE_POLICIES and not (method == "eap" and not sa.initiator)


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
    return keys.auth_octets(
        message, nonce, sa.suite.prf_id, sk_p, identity.body(id_payload.id_type, id_payload.data)
    )


# -- certificates requested ------------------------------------------------------------


def record_certreq(sa, payloads) -> None:
    """Keep the CA hashes of the peer's X.509 CERTREQ payloads (§3.7)."""
    found = None
    for p in payloads:
        if p.payload_type == PayloadType.CERTREQ and p.encoding == CertEncoding.X509_SIGNATURE:
            found = (found or []) + certs.parse_certreq(p.data)
    if found is not None:
        sa.peer_certreq = found


def certreq(sa, policy) -> list:
    """Our CERTREQ (§3.7) when the peer is to show a certificate and we know CAs."""
    store = sa.engine.certs
    if store is None or not store.has_cas or not _peer_signs(sa, policy):
        return []
    return [wire.CERTREQ(CertEncoding.X509_SIGNATURE, store.certreq_data())]


# -- our side --------------------------------------------------------------------------


def local_identity(sa, policy):
    """Our ID for IKE_AUTH. With a certificate it is chosen here, steered by the peer's
    CERTREQ, and the ID defaults to its subject DN; otherwise srcid or our address."""
    if not _signs(sa, policy):
        return policy.srcid or identity.for_address(sa.local_addr[0])
    store = sa.engine.certs
    if store is None:
        raise AuthenticationFailed(
            f"policy {policy.name!r} signs, but no certificate store is loaded"
        )
    method = policy.auth.method
    credential = store.choose(
        policy.srcid, sa.peer_certreq, key_filter=lambda key: signature.key_fits_policy(key, method),
        cache_key=("fits", method),
    )
    if credential is None:
        wanted = f" for {policy.srcid}" if policy.srcid else ""
        raise AuthenticationFailed(
            f"no certificate with a private key{wanted} fits auth {method!r}"
        )
    context(sa).credential = credential
    return policy.srcid or certs.subject_identity(credential.cert)


def local_auth(sa, policy, id_payload):
    """(CERT payloads, AUTH payload) for our IKE_AUTH; AUTH is None for an EAP client,
    which proves itself later with the MSK (§2.16)."""
    method = policy.auth.method
    if method == "psk":
        return [], psk.sign(sa, policy, octets(sa, True, id_payload))
    context(sa).id_payload = id_payload  # an MSK AUTH (EAP, §2.16) signs it again
    if uses_eap_as_client(sa, policy):
        return [], None
    if method not in SIGNATURE_POLICIES:
        raise AuthenticationFailed(f"auth method {method!r} is not supported")
    credential = context(sa).credential
    if credential is None:
        raise AuthenticationFailed("no certificate chosen for our AUTH")
    key = credential.key
    auth_method = signature.choose_method(method, key, sa.peer_sig_hashes)
    data = signature.sign(
        key,
        auth_method,
        octets(sa, True, id_payload),
        peer_hashes=sa.peer_sig_hashes,
        pss=sa.engine.rsa_pss,
    )
    cert_payloads = [wire.CERT(CertEncoding.X509_SIGNATURE, der) for der in credential.der_chain]
    return cert_payloads, wire.AUTH(auth_method, data)


# -- the peer's side --------------------------------------------------------------------


def _accepted_methods(policy_method: str) -> frozenset:
    forced = signature.POLICY_METHODS.get(policy_method)
    if forced is None:
        return signature.SIGNATURE_METHODS
    if forced == AuthMethod.DIGITAL_SIGNATURE:
        return frozenset({AuthMethod.DIGITAL_SIGNATURE})
    return frozenset({forced, AuthMethod.DIGITAL_SIGNATURE})


def verify_peer(sa, policy, auth_payload, id_payload, payloads) -> None:
    """Raise AuthenticationFailed unless the peer's AUTH proves the policy's credential."""
    if auth_payload is None:
        raise AuthenticationFailed("no AUTH payload")
    method = policy.auth.method
    if method == "psk":
        if auth_payload.method != AuthMethod.SHARED_KEY_MIC:
            raise AuthenticationFailed(
                f"peer used auth method {auth_payload.method}, policy wants PSK"
            )
        psk.verify(sa, policy, auth_payload, octets(sa, False, id_payload))
        return
    if not _peer_signs(sa, policy):
        raise AuthenticationFailed(f"policy {policy.name!r} wants EAP from the peer, it sent AUTH")
    if auth_payload.method not in _accepted_methods(method):
        raise AuthenticationFailed(
            f"peer used auth method {auth_payload.method}, policy wants {method!r}"
        )
    store = sa.engine.certs
    if store is None:
        raise AuthenticationFailed("no certificate store to verify the peer with")
    peer_id = identity.identity_from_payload(id_payload.id_type, id_payload.data)
    cert_payloads = [p for p in payloads if p.payload_type == PayloadType.CERT]
    cert = store.peer_certificate(cert_payloads, peer_id)
    public_key = cert.public_key()
    forced = signature.POLICY_METHODS.get(method)
    if forced in (
        AuthMethod.RSA_SIG,
        AuthMethod.ECDSA_SHA256_P256,
        AuthMethod.ECDSA_SHA384_P384,
        AuthMethod.ECDSA_SHA512_P521,
    ) and not signature.key_fits_policy(public_key, method):
        raise AuthenticationFailed(
            f"peer's {signature.key_kind(public_key)} key does not fit auth {method!r}"
        )
    scheme = signature.verify(
        public_key, auth_payload.method, auth_payload.data, octets(sa, False, id_payload)
    )
    sa.engine.stats[
        "auth_"
        + (
            "rfc7427"
            if auth_payload.method == AuthMethod.DIGITAL_SIGNATURE
            else signature.key_kind(public_key).split(":")[0]
        )
    ] += 1
    if log.isEnabledFor(logging.INFO):  # describe() parses the subject: only when logged
        log.info(
            "%r: peer %s authenticated by certificate %s (%s)",
            sa,
            peer_id,
            certs.describe(cert),
            scheme,
        )


# -- EAP (§2.16) ------------------------------------------------------------------------


def msk_auth(sa, msk: bytes, id_payload):
    """Our AUTH after EAP: the PSK construction with the MSK as the shared secret."""
    return wire.AUTH(
        AuthMethod.SHARED_KEY_MIC, keys.psk_auth(sa.suite.prf_id, msk, octets(sa, True, id_payload))
    )


def verify_msk(sa, msk: bytes, auth_payload, id_payload) -> None:
    if auth_payload is None or auth_payload.method != AuthMethod.SHARED_KEY_MIC:
        raise AuthenticationFailed("AUTH after EAP must be a shared-key MIC over the MSK (§2.16)")
    expected = keys.psk_auth(sa.suite.prf_id, msk, octets(sa, False, id_payload))
    if not hmac.compare_digest(expected, bytes(auth_payload.data)):
        raise AuthenticationFailed("AUTH with the EAP MSK does not match")


__all__ = [
    "AuthContext",
    "certreq",
    "context",
    "local_auth",
    "local_identity",
    "msk_auth",
    "octets",
    "record_certreq",
    "uses_eap_as_client",
    "verify_msk",
    "verify_peer",
]
