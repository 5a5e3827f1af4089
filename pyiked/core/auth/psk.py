"""Pre-shared key authentication (RFC 7296 §2.15)."""

from __future__ import annotations

import hmac

from pyiked._fast import wire

from .. import keys
from ..errors import AuthenticationFailed
from ..iana import AuthMethod


def _secret(policy) -> bytes:
    if not policy.auth.psk:
        raise AuthenticationFailed(f"policy {policy.name!r} has no PSK")
    return policy.auth.psk


def sign(sa, policy, octets: bytes):
    """AUTH = prf(prf(Shared Secret, "Key Pad for IKEv2"), <octets>)."""
    prf_id = sa.suite.prf_id
    return wire.AUTH(AuthMethod.SHARED_KEY_MIC, keys.prf(prf_id, keys.psk_pad_key(prf_id, _secret(policy)), octets))


def verify(sa, policy, auth_payload, octets: bytes) -> None:
    prf_id = sa.suite.prf_id
    expected = keys.prf(prf_id, keys.psk_pad_key(prf_id, _secret(policy)), octets)
    if not hmac.compare_digest(expected, bytes(auth_payload.data)):  # constant time
        raise AuthenticationFailed("PSK AUTH value does not match")
