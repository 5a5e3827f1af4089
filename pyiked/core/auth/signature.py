"""Signature AUTH payloads: RSA (method 1), ECDSA (9-11, RFC 4754) and RFC 7427 (14).

    method = choose_method(policy_method, private_key, peer_hashes)
    data = sign(private_key, method, octets, peer_hashes=..., pss=False)
    verify(public_key, method, data, octets)          # AuthenticationFailed if not

RFC 7427 §3: the Authentication Data of method 14 is one octet giving the length of an
ASN.1 AlgorithmIdentifier, that AlgorithmIdentifier (DER), then the signature value. It
covers RSASSA-PKCS1-v1_5 and RSASSA-PSS (RFC 4055 parameters) with SHA-2, ECDSA with SHA-2
(DER Ecdsa-Sig-Value) and, per RFC 8420, Ed25519/Ed448 over the octets themselves (the
"Identity" hash). SHA-1 is never accepted inside method 14 (RFC 8247 §3.2). The classic
methods sign with a fixed hash: SHA-1 for RSA (method 1), SHA-256/384/512 tied to the
curve for 9/10/11, where the signature is r | s of fixed length (RFC 4754 §7).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from ..der import der_item
from ..errors import AuthenticationFailed
from ..iana import AuthMethod, HashAlgorithm

# RFC 7427 §4: the hashes we announce in SIGNATURE_HASH_ALGORITHMS and accept
SUPPORTED_HASHES = (
    HashAlgorithm.SHA2_256,
    HashAlgorithm.SHA2_384,
    HashAlgorithm.SHA2_512,
    HashAlgorithm.IDENTITY,
)

# -- a little DER, enough for AlgorithmIdentifier ------------------------------------------

_SEQ, _OID, _NULL, _INT = 0x30, 0x06, 0x05, 0x02


def _tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    size = (n.bit_length() + 7) // 8
    return bytes((tag, 0x80 | size)) + n.to_bytes(size, "big") + content


def _read(data: bytes, pos: int) -> tuple[int, bytes, int]:
    """(tag, contents, position after) of the DER item at pos; ValueError if malformed.
    RFC 7427 §3 compares AlgorithmIdentifiers as DER, so a long length form for a short
    length (not DER, X.690 §10.1) is refused too."""
    tag, start, end = der_item(data, pos)
    if data[pos + 1] & 0x80 and end - start < 0x80:
        raise ValueError("non-minimal DER length")
    return tag, data[start:end], end


def _items(content: bytes) -> list[tuple[int, bytes]]:
    out, pos = [], 0
    while pos < len(content):
        tag, value, pos = _read(content, pos)
        out.append((tag, value))
    return out


# OID contents (the bytes after tag and length)
_OID_RSA_SHA = {  # sha{256,384,512}WithRSAEncryption, RFC 4055 §5
    HashAlgorithm.SHA2_256: bytes.fromhex("2a864886f70d01010b"),
    HashAlgorithm.SHA2_384: bytes.fromhex("2a864886f70d01010c"),
    HashAlgorithm.SHA2_512: bytes.fromhex("2a864886f70d01010d"),
}
_OID_ECDSA_SHA = {  # ecdsa-with-SHA{256,384,512}, RFC 5758 §3.2
    HashAlgorithm.SHA2_256: bytes.fromhex("2a8648ce3d040302"),
    HashAlgorithm.SHA2_384: bytes.fromhex("2a8648ce3d040303"),
    HashAlgorithm.SHA2_512: bytes.fromhex("2a8648ce3d040304"),
}
_OID_HASH = {  # id-sha256/384/512, RFC 5754 §2
    HashAlgorithm.SHA2_256: bytes.fromhex("608648016503040201"),
    HashAlgorithm.SHA2_384: bytes.fromhex("608648016503040202"),
    HashAlgorithm.SHA2_512: bytes.fromhex("608648016503040203"),
}
_OID_SHA1 = bytes.fromhex("2b0e03021a")
_OID_RSASSA_PSS = bytes.fromhex("2a864886f70d01010a")  # RFC 4055 §3.1
_OID_MGF1 = bytes.fromhex("2a864886f70d010108")
_OID_ED25519 = bytes.fromhex("2b6570")  # RFC 8410 §3
_OID_ED448 = bytes.fromhex("2b6571")

_HASH_OBJ = {
    HashAlgorithm.SHA2_256: hashes.SHA256,
    HashAlgorithm.SHA2_384: hashes.SHA384,
    HashAlgorithm.SHA2_512: hashes.SHA512,
}
_HASH_LEN = {HashAlgorithm.SHA2_256: 32, HashAlgorithm.SHA2_384: 48, HashAlgorithm.SHA2_512: 64}


@dataclass(frozen=True, slots=True)
class Scheme:
    """A signature scheme named by an RFC 7427 AlgorithmIdentifier."""

    kind: str  # "rsa", "rsa-pss", "ecdsa", "ed25519", "ed448"
    hash: HashAlgorithm
    salt_length: int = 0  # RSASSA-PSS only

    def algorithm_identifier(self, trailer: bool = False) -> bytes:
        """DER AlgorithmIdentifier as RFC 7427 Appendix A writes it (parameters NULL for
        PKCS#1 v1.5, absent for ECDSA and EdDSA, explicit for RSASSA-PSS; `trailer` adds
        PSS's DEFAULT trailer field as A.4.3 shows it)."""
        if self.kind == "rsa":
            return _tlv(_SEQ, _tlv(_OID, _OID_RSA_SHA[self.hash]) + _tlv(_NULL, b""))
        if self.kind == "ecdsa":
            return _tlv(_SEQ, _tlv(_OID, _OID_ECDSA_SHA[self.hash]))
        if self.kind == "ed25519":
            return _tlv(_SEQ, _tlv(_OID, _OID_ED25519))
        if self.kind == "ed448":
            return _tlv(_SEQ, _tlv(_OID, _OID_ED448))
        params = _pss_params(self.hash, self.salt_length, trailer)
        return _tlv(_SEQ, _tlv(_OID, _OID_RSASSA_PSS) + params)


def _pss_params(hash_id: HashAlgorithm, salt: int, trailer: bool = False) -> bytes:
    """RSASSA-PSS-params (RFC 4055 §3.1): hash, MGF1 with the same hash, salt length, and
    the trailer field only when asked (it is the DEFAULT, DER leaves it out)."""
    hash_alg = _tlv(_SEQ, _tlv(_OID, _OID_HASH[hash_id]) + _tlv(_NULL, b""))
    mgf = _tlv(_SEQ, _tlv(_OID, _OID_MGF1) + hash_alg)
    body = _tlv(0xA0, hash_alg) + _tlv(0xA1, mgf) + _tlv(0xA2, _tlv(_INT, _int_bytes(salt)))
    if trailer:
        body += _tlv(0xA3, _tlv(_INT, b"\x01"))
    return _tlv(_SEQ, body)


def _int_bytes(value: int) -> bytes:
    return value.to_bytes(value.bit_length() // 8 + 1, "big")


def parse_algorithm_identifier(der: bytes) -> Scheme:
    """The Scheme an AlgorithmIdentifier names; ValueError for anything else (including
    SHA-1, which RFC 8247 §3.2 retires, and PSS parameters we cannot honour)."""
    tag, body, end = _read(der, 0)
    if tag != _SEQ or end != len(der):
        raise ValueError("AlgorithmIdentifier is not one DER SEQUENCE")
    items = _items(body)
    if not items or items[0][0] != _OID or len(items) > 2:
        raise ValueError("AlgorithmIdentifier without an OID")
    oid, params = items[0][1], items[1:]
    null_or_absent = not params or params[0] == (_NULL, b"")
    for hash_id, value in _OID_RSA_SHA.items():
        if oid == value:
            if not null_or_absent:  # RFC 4055 §5: NULL (or absent) parameters
                raise ValueError("RSA PKCS#1 v1.5 AlgorithmIdentifier with parameters")
            return Scheme("rsa", hash_id)
    for hash_id, value in _OID_ECDSA_SHA.items():
        if oid == value:
            if params:  # RFC 5758 §3.2: the parameters MUST be absent
                raise ValueError("ECDSA AlgorithmIdentifier with parameters")
            return Scheme("ecdsa", hash_id)
    if oid in (_OID_ED25519, _OID_ED448):
        if params:  # RFC 8410 §3: parameters MUST be absent
            raise ValueError("EdDSA AlgorithmIdentifier with parameters")
        return Scheme("ed25519" if oid == _OID_ED25519 else "ed448", HashAlgorithm.IDENTITY)
    if oid == _OID_RSASSA_PSS:
        if not params or params[0][0] != _SEQ:
            raise ValueError("RSASSA-PSS without parameters would mean SHA-1")
        return _parse_pss(params[0][1])
    raise ValueError(f"unsupported signature algorithm OID {oid.hex()}")


def _hash_from_alg(content: bytes) -> HashAlgorithm:
    items = _items(content)
    if (
        not items
        or items[0][0] != _OID
        or len(items) > 2
        or (len(items) == 2 and items[1] != (_NULL, b""))
    ):
        raise ValueError("malformed hash AlgorithmIdentifier")
    for hash_id, value in _OID_HASH.items():
        if items[0][1] == value:
            return hash_id
    raise ValueError("RSASSA-PSS with an unsupported hash (SHA-1 is not accepted)")


def _parse_pss(content: bytes) -> Scheme:
    """RFC 4055 §3.1 RSASSA-PSS-params; DEFAULTs (SHA-1, MGF1-SHA-1, salt 20) are refused
    because SHA-1 is, the trailer field must be 1."""
    fields = {}
    last = -1
    for tag, value in _items(content):
        number = tag - 0xA0
        if not 0 <= number <= 3 or number <= last:
            raise ValueError("malformed RSASSA-PSS parameters")
        last = number
        inner = _items(value)
        if len(inner) != 1:
            raise ValueError("malformed RSASSA-PSS parameter")
        fields[number] = inner[0]
    if 0 not in fields or 1 not in fields:
        raise ValueError("RSASSA-PSS parameters default to SHA-1")
    tag, value = fields[0]
    if tag != _SEQ:
        raise ValueError("malformed RSASSA-PSS hash")
    hash_id = _hash_from_alg(value)
    tag, value = fields[1]
    mgf = _items(value) if tag == _SEQ else []
    if (
        len(mgf) != 2
        or mgf[0] != (_OID, _OID_MGF1)
        or mgf[1][0] != _SEQ
        or _hash_from_alg(mgf[1][1]) != hash_id
    ):
        raise ValueError("RSASSA-PSS must use MGF1 with the signature's hash")
    salt = 20
    if 2 in fields:
        tag, value = fields[2]
        if tag != _INT or not value or value[0] & 0x80:
            raise ValueError("malformed RSASSA-PSS salt length")
        salt = int.from_bytes(value, "big")
    if 3 in fields and fields[3] != (_INT, b"\x01"):
        raise ValueError("RSASSA-PSS trailer field must be 1 (RFC 4055 §3.1)")
    if salt > 1024:
        raise ValueError("RSASSA-PSS salt length out of range")
    return Scheme("rsa-pss", hash_id, salt)


# -- keys and methods ------------------------------------------------------------------

_CURVE_METHOD = {
    "secp256r1": (AuthMethod.ECDSA_SHA256_P256, HashAlgorithm.SHA2_256, 32),
    "secp384r1": (AuthMethod.ECDSA_SHA384_P384, HashAlgorithm.SHA2_384, 48),
    "secp521r1": (AuthMethod.ECDSA_SHA512_P521, HashAlgorithm.SHA2_512, 66),
}
_METHOD_CURVE = {method: (curve, h, size) for curve, (method, h, size) in _CURVE_METHOD.items()}

# iked.conf keyword -> the AUTH method it forces (None: decided by key and peer)
POLICY_METHODS = {
    "rsa": AuthMethod.RSA_SIG,
    "ecdsa256": AuthMethod.ECDSA_SHA256_P256,
    "ecdsa384": AuthMethod.ECDSA_SHA384_P384,
    "ecdsa521": AuthMethod.ECDSA_SHA512_P521,
    "rfc7427": AuthMethod.DIGITAL_SIGNATURE,
    "signature": None,
    "eap": None,  # the EAP server itself authenticates with a signature
}

SIGNATURE_METHODS = frozenset(
    {
        AuthMethod.RSA_SIG,
        AuthMethod.ECDSA_SHA256_P256,
        AuthMethod.ECDSA_SHA384_P384,
        AuthMethod.ECDSA_SHA512_P521,
        AuthMethod.DIGITAL_SIGNATURE,
    }
)


def key_kind(key) -> str:
    """ "rsa", "ec:<curve>", "ed25519", "ed448" for a public or private key."""
    # the family per key class, found once: isinstance against the library's abstract
    # classes costs ~1 us each, and a certificate handshake asks five times
    family = _KEY_FAMILY.get(type(key))
    if family is None:
        family = _key_family(key)
        if len(_KEY_FAMILY) < 64:
            _KEY_FAMILY[type(key)] = family
    if family == "ec":
        return "ec:" + key.curve.name
    return family


_KEY_FAMILY: dict[type, str] = {}


def _key_family(key) -> str:
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "rsa"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return "ec"
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return "ed25519"
    if isinstance(key, (ed448.Ed448PrivateKey, ed448.Ed448PublicKey)):
        return "ed448"
    return "unknown"


def key_fits_policy(key, policy_method: str) -> bool:
    """Whether a key can produce the AUTH method an iked.conf keyword demands."""
    forced = POLICY_METHODS.get(policy_method)
    kind = key_kind(key)
    if forced is None or forced == AuthMethod.DIGITAL_SIGNATURE:
        return kind == "rsa" or kind in ("ed25519", "ed448") or kind[3:] in _CURVE_METHOD
    if forced == AuthMethod.RSA_SIG:
        return kind == "rsa"
    return kind == "ec:" + _METHOD_CURVE[forced][0]


def choose_method(policy_method: str, key, peer_hashes) -> AuthMethod:
    """The AUTH method we sign with: the one the policy names, else RFC 7427 when the peer
    announced hashes (and always for EdDSA, which has no other method), else the classic
    method of the key type."""
    forced = POLICY_METHODS.get(policy_method)
    if forced is not None:
        return forced
    kind = key_kind(key)
    if peer_hashes or kind in ("ed25519", "ed448"):
        return AuthMethod.DIGITAL_SIGNATURE
    if kind == "rsa":
        return AuthMethod.RSA_SIG
    if kind[3:] in _CURVE_METHOD:
        return _CURVE_METHOD[kind[3:]][0]
    raise AuthenticationFailed(f"no signature method for a {kind} key")


def choose_scheme(key, peer_hashes, pss: bool = False) -> Scheme:
    """RFC 7427 §4: a hash the peer announced (SHA-256 when it announced none), matched to
    the key's strength for ECDSA."""
    kind = key_kind(key)
    if kind == "ed25519":
        return Scheme("ed25519", HashAlgorithm.IDENTITY)
    if kind == "ed448":
        return Scheme("ed448", HashAlgorithm.IDENTITY)
    offered = (
        [h for h in peer_hashes if h in _HASH_OBJ] if peer_hashes else [HashAlgorithm.SHA2_256]
    )
    if not offered:
        raise AuthenticationFailed("the peer announced no SHA-2 hash for RFC 7427 signatures")
    if kind.startswith("ec:"):
        preferred = _CURVE_METHOD.get(kind[3:], (None, HashAlgorithm.SHA2_256, 0))[1]
        hash_id = preferred if preferred in offered else max(offered)
        return Scheme("ecdsa", hash_id)
    hash_id = HashAlgorithm.SHA2_256 if HashAlgorithm.SHA2_256 in offered else min(offered)
    if pss:
        return Scheme("rsa-pss", hash_id, _HASH_LEN[hash_id])  # salt = hash length (RFC 8017 §9.1)
    return Scheme("rsa", hash_id)


def _raw_sign(key, scheme: Scheme, octets: bytes) -> bytes:
    if scheme.kind == "rsa":
        return key.sign(octets, padding.PKCS1v15(), _HASH_OBJ[scheme.hash]())
    if scheme.kind == "rsa-pss":
        algo = _HASH_OBJ[scheme.hash]()
        return key.sign(octets, padding.PSS(padding.MGF1(algo), scheme.salt_length), algo)
    if scheme.kind == "ecdsa":
        return key.sign(octets, ec.ECDSA(_HASH_OBJ[scheme.hash]()))
    return key.sign(octets)  # EdDSA signs the message itself (RFC 8420 §2)


def sign(key, method: AuthMethod, octets: bytes, *, peer_hashes=(), pss: bool = False) -> bytes:
    """The Authentication Data for `method` over the signed octets."""
    if method == AuthMethod.DIGITAL_SIGNATURE:
        scheme = choose_scheme(key, peer_hashes, pss)
        alg = scheme.algorithm_identifier()
        return bytes((len(alg),)) + alg + _raw_sign(key, scheme, octets)
    if not key_fits_policy(key, _method_keyword(method)):
        raise AuthenticationFailed(f"our key ({key_kind(key)}) cannot make AUTH method {method}")
    if method == AuthMethod.RSA_SIG:
        return key.sign(octets, padding.PKCS1v15(), hashes.SHA1())  # RFC 7296 §3.8: SHA-1
    _, hash_id, size = _METHOD_CURVE[method]
    r, s = decode_dss_signature(key.sign(octets, ec.ECDSA(_HASH_OBJ[hash_id]())))
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")  # RFC 4754 §7


def _method_keyword(method) -> str:
    for keyword, value in POLICY_METHODS.items():
        if value == method:
            return keyword
    return "signature"


def verify(public_key, method: int, data: bytes, octets: bytes) -> str:
    """Check a peer's AUTH; returns a description of the scheme for logs."""
    data = bytes(data)
    kind = key_kind(public_key)
    try:
        if method == AuthMethod.DIGITAL_SIGNATURE:
            return _verify_7427(public_key, kind, data, octets)
        if method == AuthMethod.RSA_SIG:
            if kind != "rsa":
                raise AuthenticationFailed(f"RSA signature AUTH with a {kind} certificate")
            public_key.verify(data, octets, padding.PKCS1v15(), hashes.SHA1())
            return "RSA PKCS#1 v1.5 SHA-1"
        if method in _METHOD_CURVE:
            curve, hash_id, size = _METHOD_CURVE[method]
            if kind != "ec:" + curve:
                raise AuthenticationFailed(f"AUTH method {method} with a {kind} certificate")
            if len(data) != 2 * size:
                raise AuthenticationFailed("ECDSA signature of the wrong length (RFC 4754 §7)")
            r, s = int.from_bytes(data[:size], "big"), int.from_bytes(data[size:], "big")
            public_key.verify(encode_dss_signature(r, s), octets, ec.ECDSA(_HASH_OBJ[hash_id]()))
            return f"ECDSA {curve}"
    except InvalidSignature:
        raise AuthenticationFailed("signature does not verify") from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise AuthenticationFailed(f"signature AUTH unusable: {exc}") from None
    raise AuthenticationFailed(f"AUTH method {method} is not a signature method")


def _verify_7427(public_key, kind, data, octets) -> str:
    if not data or len(data) < 1 + data[0]:
        raise AuthenticationFailed("RFC 7427 AUTH shorter than its AlgorithmIdentifier")
    alg_len = data[0]
    try:
        scheme = parse_algorithm_identifier(data[1 : 1 + alg_len])
    except ValueError as exc:
        raise AuthenticationFailed(f"RFC 7427 AlgorithmIdentifier refused: {exc}") from None
    signature = data[1 + alg_len :]
    expected = {
        "rsa": "rsa",
        "rsa-pss": "rsa",
        "ecdsa": "ec:",
        "ed25519": "ed25519",
        "ed448": "ed448",
    }
    if not kind.startswith(expected[scheme.kind]):
        raise AuthenticationFailed(f"{scheme.kind} signature with a {kind} certificate")
    if scheme.kind == "rsa":
        public_key.verify(signature, octets, padding.PKCS1v15(), _HASH_OBJ[scheme.hash]())
    elif scheme.kind == "rsa-pss":
        algo = _HASH_OBJ[scheme.hash]()
        public_key.verify(
            signature, octets, padding.PSS(padding.MGF1(algo), scheme.salt_length), algo
        )
    elif scheme.kind == "ecdsa":
        public_key.verify(signature, octets, ec.ECDSA(_HASH_OBJ[scheme.hash]()))
    else:
        public_key.verify(signature, octets)
    return f"RFC 7427 {scheme.kind} {scheme.hash.name}"


__all__ = [
    "Scheme",
    "SUPPORTED_HASHES",
    "POLICY_METHODS",
    "SIGNATURE_METHODS",
    "choose_method",
    "choose_scheme",
    "key_fits_policy",
    "key_kind",
    "parse_algorithm_identifier",
    "sign",
    "verify",
]
