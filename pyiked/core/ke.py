"""Key exchange methods: MODP, ECP, brainpool, Curve25519/448 and ML-KEM (IKEv2 KE data).

    ke = KeyExchange(group, random=os.urandom)
    initiator:  value = ke.public_value();  ...;  shared = ke.complete(peer_value)
    responder:  shared = ke.respond(peer_value);  value = ke.public_value()

For Diffie-Hellman groups both sides send a public value and `complete` and `respond` do
the same thing. For a KEM (ML-KEM-768/1024, IDs 36/37) the initiator's value is its
encapsulation key, the responder encapsulates to it and sends the ciphertext, and the
initiator decapsulates (draft-ietf-ipsecme-ikev2-mlkem; FIPS 203).

Wire formats, exactly as the RFCs give them:
  - MODP: g^x mod p, big-endian, left-padded with zeros to the modulus length (RFC 7296
    §3.4); the shared secret likewise.
  - ECP and brainpool: x | y, each the field length, no 0x04 prefix (RFC 5903 §7,
    RFC 6954 §3); the shared secret is the x coordinate of the shared point.
  - Curve25519/448: the raw u-coordinate (RFC 8031 §3, RFC 7748 §5).
  - ML-KEM: the raw encapsulation key / ciphertext (FIPS 203 §7), 32-octet secret.

Received values are validated and any failure, a wrong length included, raises
InvalidSyntax: MODP 1 < y < p-1 (RFC 6989 §2.1); ECP on the curve and not the point at
infinity (RFC 6989 §2.3, which x | y cannot even encode); X25519/X448 all-zero shared
secret (RFC 8031 §2, RFC 7748 §6); ML-KEM encapsulation key type and modulus checks and
ciphertext type check (FIPS 203 §7.2, §7.3).

Randomness: the default (random=os.urandom, or the engine's RandomPool of it) lets
OpenSSL generate keys from its OS-seeded DRBG. An injected `random` makes the private key a function of its bytes, for
deterministic tests; ML-KEM encapsulation always uses the library's own randomness (the
API takes no message input). The private key never appears in a repr.
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.asymmetric import dh, ec, mlkem, x448, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from . import modp
from .crypto import ke_info
from .errors import InvalidSyntax
from .iana import KeId
from .randomness import from_os

__all__ = ["KeyExchange"]

_ECP_CURVES = {
    KeId.ECP256: ec.SECP256R1,
    KeId.ECP384: ec.SECP384R1,
    KeId.ECP521: ec.SECP521R1,
    KeId.ECP224: ec.SECP224R1,  # RFC 5114 §2.7 group 26 is NIST P-224
    KeId.BRAINPOOL_P256R1: ec.BrainpoolP256R1,
    KeId.BRAINPOOL_P384R1: ec.BrainpoolP384R1,
    KeId.BRAINPOOL_P512R1: ec.BrainpoolP512R1,
}

# Private exponent bits when the key comes from an injected random source: at least twice
# the group's strength (NIST SP 800-56A §5.6.1.1.1, RFC 3526 §8).
_MODP_EXPONENT_BITS = {2: 256, 5: 256, 14: 256, 15: 256, 16: 320, 17: 384, 18: 416}

_MLKEM = {
    KeId.ML_KEM_768: (mlkem.MLKEM768PrivateKey, mlkem.MLKEM768PublicKey),
    KeId.ML_KEM_1024: (mlkem.MLKEM1024PrivateKey, mlkem.MLKEM1024PublicKey),
}

_DH_PARAMS = {}
_ZEROS = {32: bytes(32), 56: bytes(56)}


def _dh_params(group):
    params = _DH_PARAMS.get(group)
    if params is None:
        numbers = dh.DHParameterNumbers(modp.PRIMES[group], modp.GENERATOR)
        params = _DH_PARAMS[group] = (numbers, numbers.parameters())
    return params


class _Modp:
    def __init__(self, group, random):
        self.p = modp.PRIMES[group]
        self.size = (self.p.bit_length() + 7) // 8
        numbers, params = _dh_params(group)
        if from_os(random):
            # OpenSSL knows the RFC 3526 groups and picks a short private exponent.
            self.key = params.generate_private_key()
            self.y = self.key.public_key().public_numbers().y
        else:
            x = 0
            while x < 2:
                x = int.from_bytes(random(_MODP_EXPONENT_BITS[group] // 8), "big")
            self.y = pow(modp.GENERATOR, x, self.p)
            self.key = dh.DHPrivateNumbers(x, dh.DHPublicNumbers(self.y, numbers)).private_key()
        self.numbers = numbers

    def public(self):
        return self.y.to_bytes(self.size, "big")

    def shared(self, value):
        y = int.from_bytes(value, "big")
        if not 1 < y < self.p - 1:  # RFC 6989 §2.1
            raise InvalidSyntax("MODP public value out of range")
        try:
            peer = dh.DHPublicNumbers(y, self.numbers).public_key()
            secret = self.key.exchange(peer)
        except ValueError:
            raise InvalidSyntax("MODP public value rejected") from None
        return secret.rjust(self.size, b"\x00")  # left-padded like the public values


class _Ecp:
    def __init__(self, group, random):
        self.curve = _ECP_CURVES[group]()
        self.size = (self.curve.key_size + 7) // 8
        if from_os(random):
            self.key = ec.generate_private_key(self.curve)
        else:
            self.key = self._derive(random)

    def _derive(self, random):
        # Rejection sampling: a key_size-bit scalar in [1, order), uniform; the library
        # refuses 0 and anything at or above the order.
        mask = (1 << self.curve.key_size) - 1
        for _ in range(256):
            scalar = int.from_bytes(random(self.size), "big") & mask
            if scalar:
                try:
                    return ec.derive_private_key(scalar, self.curve)
                except ValueError:
                    continue
        raise RuntimeError("random source gave no valid ECP private key")

    def public(self):
        point = self.key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return point[1:]  # RFC 5903 §7: x | y without the 0x04 octet

    def shared(self, value):
        try:  # OpenSSL checks the point is on the curve (RFC 6989 §2.3)
            peer = ec.EllipticCurvePublicKey.from_encoded_point(self.curve, b"\x04" + value)
            return self.key.exchange(ec.ECDH(), peer)
        except ValueError:
            raise InvalidSyntax("ECP public value is not a point on the curve") from None


def _xdh_functions(module, rust_name):
    """(generate, from_public_bytes) of X25519 or X448. The public classmethods import the
    OpenSSL backend module and ask whether the curve is supported at every call (~2 us
    each, twice per handshake): once the answer is known to be yes, the library's own
    functions behind them are called directly, if this version has them."""
    private, public = (module.X25519PrivateKey, module.X25519PublicKey) if rust_name == "x25519" else \
        (module.X448PrivateKey, module.X448PublicKey)
    try:
        from cryptography.hazmat.backends.openssl.backend import backend
        from cryptography.hazmat.bindings._rust import openssl as rust_openssl

        supported = backend.x25519_supported() if rust_name == "x25519" else backend.x448_supported()
        inner = getattr(rust_openssl, rust_name)
        if supported:
            return inner.generate_key, inner.from_public_bytes
    except (ImportError, AttributeError):
        pass
    return private.generate, public.from_public_bytes


_XDH = {KeId.CURVE25519: _xdh_functions(x25519, "x25519"), KeId.CURVE448: _xdh_functions(x448, "x448")}


class _Xdh:
    __slots__ = ("private_cls", "from_public", "size", "key")

    def __init__(self, group, random):
        generate, self.from_public = _XDH[group]
        if group == KeId.CURVE25519:
            self.private_cls, self.size = x25519.X25519PrivateKey, 32
        else:
            self.private_cls, self.size = x448.X448PrivateKey, 56
        if from_os(random):
            self.key = generate()
        else:  # RFC 7748 §5: any 32/56 octets are a private key (clamped on use)
            self.key = self.private_cls.from_private_bytes(random(self.size))

    def public(self):
        return self.key.public_key().public_bytes_raw()

    def shared(self, value):
        try:
            secret = self.key.exchange(self.from_public(value))
        except ValueError:  # OpenSSL refuses the all-zero result itself
            raise InvalidSyntax("X25519/X448 shared secret is all zero") from None
        if secret == _ZEROS[self.size]:  # RFC 8031 §2, RFC 7748 §6: abort on all-zero
            raise InvalidSyntax("X25519/X448 shared secret is all zero")
        return secret


class _MlKem:
    """ML-KEM: the initiator holds the decapsulation key, the responder encapsulates."""

    def __init__(self, group, random):
        self.private_cls, self.public_cls = _MLKEM[group]
        self.random = random
        self.key = None
        self.ciphertext = None

    def public(self):
        if self.ciphertext is not None:  # responder: the KEM ciphertext
            return self.ciphertext
        if self.key is None:  # initiator: the encapsulation key
            if from_os(self.random):
                self.key = self.private_cls.generate()
            else:  # FIPS 203 §7.1: the 64-octet seed d | z determines the key pair
                self.key = self.private_cls.from_seed_bytes(self.random(64))
        return self.key.public_key().public_bytes_raw()

    def encapsulate(self, ek):
        # FIPS 203 §7.2 input checks: the type (length) check here, the modulus check in
        # OpenSSL's key decoding, which rejects any coefficient >= q.
        try:
            public = self.public_cls.from_public_bytes(ek)
            secret, self.ciphertext = public.encapsulate()
        except ValueError:
            raise InvalidSyntax("ML-KEM encapsulation key fails the FIPS 203 input check") from None
        return secret

    def decapsulate(self, ciphertext):
        try:  # FIPS 203 §7.3: ciphertext type check (its length)
            return self.key.decapsulate(ciphertext)
        except ValueError:
            raise InvalidSyntax("ML-KEM ciphertext rejected") from None


class KeyExchange:
    """One side of one key exchange with the method `group` (an IANA KE transform ID).

    Raises NoProposalChosen (from pyiked.core.crypto.ke_info) for a group pyiked does not
    implement. Methods:
      public_value() -> bytes: the KE data this side sends (for a KEM responder, only
          after respond()).
      complete(peer_value) -> bytes: initiator; the responder's KE data in, the shared
          secret out.
      respond(peer_value) -> bytes: responder; the initiator's KE data in, the shared
          secret out.
    Bad peer values (wrong length, out of range, not on the curve, all-zero result,
    failed ML-KEM checks) raise InvalidSyntax and nothing else.
    """

    __slots__ = ("group", "info", "_impl", "_role")

    def __init__(self, group: int, random=os.urandom):
        self.info = ke_info(group)
        self.group = self.info.id
        self._role = None
        if self.info.kem:
            self._impl = _MlKem(self.group, random)
        elif self.group in modp.PRIMES:
            self._impl = _Modp(self.group, random)
        elif self.group in _ECP_CURVES:
            self._impl = _Ecp(self.group, random)
        else:
            self._impl = _Xdh(self.group, random)

    @property
    def kem(self) -> bool:
        return self.info.kem

    def public_value(self) -> bytes:
        """The KE data this side sends (RFC 7296 §3.4 Key Exchange Data)."""
        if self.info.kem and self._role is None:
            self._role = "initiator"
        if self.info.kem and self._role == "responder" and self._impl.ciphertext is None:
            raise RuntimeError("a KEM responder has no KE data before respond()")
        return self._impl.public()

    def complete(self, peer_value: bytes) -> bytes:
        """Initiator: the shared secret from the responder's KE data."""
        if self._role == "responder":
            raise RuntimeError("complete() is the initiator's step")
        self._role = "initiator"
        if len(peer_value) != self.info.response_len:
            raise InvalidSyntax(
                f"KE data of {len(peer_value)} octets for {self.info.name}, expected {self.info.response_len}"
            )
        if self.info.kem:
            self._impl.public()  # decapsulating needs our key pair
            return self._impl.decapsulate(bytes(peer_value))
        return self._impl.shared(bytes(peer_value))

    def respond(self, peer_value: bytes) -> bytes:
        """Responder: the shared secret from the initiator's KE data; public_value()
        then gives this side's KE data (for a KEM, the ciphertext)."""
        if self._role == "initiator" and self.info.kem:
            raise RuntimeError("respond() is the responder's step")
        self._role = "responder"
        if len(peer_value) != self.info.public_len:
            raise InvalidSyntax(
                f"KE data of {len(peer_value)} octets for {self.info.name}, expected {self.info.public_len}"
            )
        if self.info.kem:
            return self._impl.encapsulate(bytes(peer_value))
        return self._impl.shared(bytes(peer_value))

    def __repr__(self):
        return f"KeyExchange(group={self.group} {self.info.name}, role={self._role})"

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("KeyExchange holds a private key and cannot be pickled")
