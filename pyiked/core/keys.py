"""The IKEv2 key schedule: SKEYSEED, SK_*, CHILD SA KEYMAT, AUTH octets (RFC 7296).

Everything here is a pure function of its inputs, computed with `pyiked._fast.prf` (the
compiled prf/prf+ when built). PRF IDs are the IANA PRF transform IDs.

    prf(prf_id, key, data) -> bytes
    prf_plus(prf_id, key, seed, length) -> bytes
    skeyseed(prf_id, nonce_i, nonce_r, shared) -> bytes                      §2.14
    derive_ike_keys(prf_id, encr_id, encr_key_bits, integ_id, skeyseed,
                    nonce_i, nonce_r, spi_i, spi_r) -> IkeKeys                §2.14
    rekey_skeyseed(old_prf_id, old_sk_d, shared, nonce_i, nonce_r,
                   additional=()) -> bytes                                    §2.18
    child_keymat(prf_id, sk_d, nonce_i, nonce_r, shared=None, *, encr_id,
                 encr_key_bits, integ_id, additional=()) -> (encr_i, integ_i,
                 encr_r, integ_r)                                              §2.17
    additional_ke_update(prf_id, encr_id, encr_key_bits, integ_id, sk_d, shared,
                         nonce_i, nonce_r, spi_i, spi_r) -> IkeKeys           RFC 9370 §2.2.2
    auth_octets(message, nonce, prf_id, sk_p, id_payload_body) -> bytes       §2.15
    psk_auth(prf_id, psk, octets) -> bytes                                    §2.15

Secrets never reach a repr or a log: IkeKeys shows only the key lengths.
"""

from __future__ import annotations

import hmac
from operator import itemgetter

from pyiked import _fast

from .crypto import encr_info, integ_info, prf_info
from .iana import PrfId

__all__ = [
    "IkeKeys",
    "prf",
    "prf_plus",
    "skeyseed",
    "derive_ike_keys",
    "rekey_skeyseed",
    "child_keymat",
    "additional_ke_update",
    "auth_octets",
    "psk_auth",
    "KEY_PAD",
]

_prf = _fast.prf

KEY_PAD = b"Key Pad for IKEv2"  # RFC 7296 §2.15, 17 ASCII octets, no NUL

# RFC 7296 §2.14: these PRFs take a fixed-size key, so SKEYSEED uses only the first
# 64 bits of Ni and of Nr as the key.
_FIXED_KEY_PRFS = frozenset((PrfId.AES128_XCBC, PrfId.AES128_CMAC))


def prf(prf_id: int, key: bytes, data: bytes) -> bytes:
    """prf(K, S) (RFC 7296 §2.13)."""
    return _prf.prf(prf_id, key, data)


def prf_plus(prf_id: int, key: bytes, seed: bytes, length: int) -> bytes:
    """prf+(K, S) cut to `length` octets (RFC 7296 §2.13)."""
    return _prf.prf_plus(prf_id, key, seed, length)


_KEY_NAMES = ("sk_d", "sk_ai", "sk_ar", "sk_ei", "sk_er", "sk_pi", "sk_pr")


class IkeKeys(tuple):
    """The seven IKE SA keys of RFC 7296 §2.14, in RFC order.

    sk_d derives CHILD SA keys and the next SKEYSEED; sk_ai/sk_ar protect integrity
    (empty for AEAD suites); sk_ei/sk_er encrypt (key plus salt for AEAD and CTR,
    RFC 5282 §7.1); sk_pi/sk_pr go into the AUTH payloads. `i` keys protect what the
    original initiator sends, `r` keys what the original responder sends.

    A tuple underneath (built in one C call on the handshake path); the repr shows
    lengths only, and it refuses to be pickled.
    """

    __slots__ = ()

    def __new__(cls, sk_d, sk_ai, sk_ar, sk_ei, sk_er, sk_pi, sk_pr):
        return tuple.__new__(cls, (sk_d, sk_ai, sk_ar, sk_ei, sk_er, sk_pi, sk_pr))

    sk_d = property(itemgetter(0))
    sk_ai = property(itemgetter(1))
    sk_ar = property(itemgetter(2))
    sk_ei = property(itemgetter(3))
    sk_er = property(itemgetter(4))
    sk_pi = property(itemgetter(5))
    sk_pr = property(itemgetter(6))

    def __repr__(self):
        lengths = ", ".join(f"{name}=<{len(key)} octets>" for name, key in zip(_KEY_NAMES, self))
        return f"IkeKeys({lengths})"

    __str__ = __repr__

    def __eq__(self, other):
        if not isinstance(other, IkeKeys):
            return NotImplemented
        return all(hmac.compare_digest(a, b) for a, b in zip(self, other))

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    __hash__ = None

    def __reduce__(self):  # keys are not for pickling into logs or caches by accident
        raise TypeError("IkeKeys cannot be pickled")


_new_keys = tuple.__new__


def skeyseed(prf_id: int, nonce_i: bytes, nonce_r: bytes, shared: bytes) -> bytes:
    """SKEYSEED = prf(Ni | Nr, g^ir) (RFC 7296 §2.14).

    For AES-XCBC and AES-CMAC only the first 64 bits of Ni and of Nr form the key
    (RFC 7296 §2.14); nonces are at least 16 octets (§2.10), so both halves exist.
    """
    if prf_id in _FIXED_KEY_PRFS:
        key = nonce_i[:8] + nonce_r[:8]
    else:
        key = nonce_i + nonce_r
    return _prf.prf(prf_id, key, shared)


# (prf_id, encr_id, encr_key_bits, integ_id) -> the seven lengths, so the hot path does
# one dict lookup instead of three registry calls.
_IKE_LENGTHS: dict = {}


def _ike_key_lengths(prf_id, encr_id, encr_key_bits, integ_id):
    cache_key = (prf_id, encr_id, encr_key_bits, integ_id)
    lengths = _IKE_LENGTHS.get(cache_key)
    if lengths is None:
        p = prf_info(prf_id).key_len
        e = encr_info(encr_id, encr_key_bits)
        a = 0 if e.aead else integ_info(integ_id).key_len  # RFC 5282 §7.1: no SK_a
        lengths = (p, a, a, e.keymat_len, e.keymat_len, p, p)
        _IKE_LENGTHS[cache_key] = lengths
    return lengths


def derive_ike_keys(
    prf_id: int,
    encr_id: int,
    encr_key_bits: int | None,
    integ_id: int | None,
    skeyseed: bytes,
    nonce_i: bytes,
    nonce_r: bytes,
    spi_i: bytes,
    spi_r: bytes,
) -> IkeKeys:
    """{SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr}
    = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)  (RFC 7296 §2.14).

    SK_d, SK_pi, SK_pr take the PRF's preferred key length; SK_a the integrity key
    length (none for AEAD); SK_e the cipher key plus its salt (RFC 5282 §7.1).
    spi_i and spi_r are the 8-octet SPIs as on the wire.
    """
    lengths = _ike_key_lengths(prf_id, encr_id, encr_key_bits, integ_id)
    return _new_keys(IkeKeys, _prf.prf_plus_split(prf_id, skeyseed, nonce_i + nonce_r + spi_i + spi_r, lengths))


def _joined(shared, additional):
    if shared is None:
        shared = b""
    if not additional:
        return shared, b""
    return shared, b"".join(additional)


def rekey_skeyseed(
    old_prf_id: int,
    old_sk_d: bytes,
    shared: bytes | None,
    nonce_i: bytes,
    nonce_r: bytes,
    additional=(),
) -> bytes:
    """SKEYSEED of a rekeyed IKE SA (RFC 7296 §2.18):
    prf(SK_d (old), g^ir (new) | Ni | Nr), with the OLD IKE SA's PRF and SK_d and the
    nonces of the CREATE_CHILD_SA exchange.

    With additional key exchanges (RFC 9370 §2.2.4) their shared secrets SK(1)..SK(n)
    follow the nonces: prf(SK_d, SK(0) | Ni | Nr | SK(1) | ... | SK(n)).
    """
    first, rest = _joined(shared, additional)
    return _prf.prf(old_prf_id, old_sk_d, first + nonce_i + nonce_r + rest)


def _child_lengths(encr_id, encr_key_bits, integ_id):
    cache_key = (encr_id, encr_key_bits, integ_id)
    lengths = _CHILD_LENGTHS.get(cache_key)
    if lengths is None:
        e = encr_info(encr_id, encr_key_bits)
        a = 0 if e.aead else integ_info(integ_id).key_len
        lengths = _CHILD_LENGTHS[cache_key] = (e.keymat_len, a, e.keymat_len, a)
    return lengths


# (encr_id, encr_key_bits, integ_id) -> the four KEYMAT lengths; bounded by the registry
_CHILD_LENGTHS: dict = {}


def child_keymat(
    prf_id: int,
    sk_d: bytes,
    nonce_i: bytes,
    nonce_r: bytes,
    shared: bytes | None = None,
    *,
    encr_id: int,
    encr_key_bits: int | None,
    integ_id: int | None,
    additional=(),
) -> tuple[bytes, bytes, bytes, bytes]:
    """CHILD SA keys (RFC 7296 §2.17): KEYMAT = prf+(SK_d, Ni | Nr), or with PFS
    prf+(SK_d, g^ir (new) | Ni | Nr); with RFC 9370 additional key exchanges
    prf+(SK_d, SK(0) | Ni | Nr | SK(1) | ... | SK(n)) (RFC 9370 §2.2.4).

    Returns (encr_i, integ_i, encr_r, integ_r): §2.17 takes the initiator-to-responder
    keys first, encryption before integrity, then the responder-to-initiator ones.
    Encryption keys include the salt for AEAD/CTR (RFC 4106 §8.1, RFC 3686 §5.1,
    RFC 7634 §2); integrity keys are empty for AEAD. Ni/Nr are the nonces of the
    exchange that creates the CHILD SA (IKE_AUTH: those of IKE_SA_INIT).
    """
    lengths = _child_lengths(encr_id, encr_key_bits, integ_id)
    if shared is None and not additional:
        seed = nonce_i + nonce_r
    else:
        first, rest = _joined(shared, additional)
        seed = first + nonce_i + nonce_r + rest
    return _prf.prf_plus_split(prf_id, sk_d, seed, lengths)


def additional_ke_update(
    prf_id: int,
    encr_id: int,
    encr_key_bits: int | None,
    integ_id: int | None,
    sk_d: bytes,
    shared: bytes,
    nonce_i: bytes,
    nonce_r: bytes,
    spi_i: bytes,
    spi_r: bytes,
) -> IkeKeys:
    """The IKE SA keys after the n-th additional key exchange (RFC 9370 §2.2.2):

        SKEYSEED(n) = prf(SK_d(n-1), SK(n) | Ni | Nr)
        {SK_d(n) | SK_ai(n) | ... | SK_pr(n)} = prf+(SKEYSEED(n), Ni | Nr | SPIi | SPIr)

    sk_d is SK_d(n-1), shared is SK(n); Ni, Nr and the SPIs are those of IKE_SA_INIT.
    """
    seed_n = _prf.prf(prf_id, sk_d, shared + nonce_i + nonce_r)
    return derive_ike_keys(prf_id, encr_id, encr_key_bits, integ_id, seed_n, nonce_i, nonce_r, spi_i, spi_r)


def auth_octets(message: bytes, nonce: bytes, prf_id: int, sk_p: bytes, id_payload_body: bytes) -> bytes:
    """The signed octets of RFC 7296 §2.15:

        InitiatorSignedOctets = RealMessage1 | NonceRData | MACedIDForI
        ResponderSignedOctets = RealMessage2 | NonceIData | MACedIDForR
        MACedIDForX = prf(SK_px, IDx')

    message: the peer's or our own IKE_SA_INIT message exactly as sent; nonce: the
    other side's nonce data; sk_p: SK_pi for the initiator's octets, SK_pr for the
    responder's; id_payload_body: the ID payload without its generic header (IDx').
    """
    return message + nonce + _prf.prf(prf_id, sk_p, id_payload_body)


def psk_auth(prf_id: int, psk: bytes, octets: bytes) -> bytes:
    """AUTH for a shared key (RFC 7296 §2.15): prf(prf(Shared Secret, "Key Pad for
    IKEv2"), <SignedOctets>). Also the EAP case with the MSK as the secret (§2.16)."""
    return _prf.prf(prf_id, _prf.prf(prf_id, psk, KEY_PAD), octets)


def psk_pad_key(prf_id: int, psk: bytes) -> bytes:
    """prf(Shared Secret, "Key Pad for IKEv2") of a configured PSK, computed once: every
    PSK handshake needs it twice (our AUTH and the peer's). Only for PSKs from the
    configuration (a bounded set), never for per-session secrets such as an EAP MSK."""
    key = (prf_id, psk)
    pad = _PAD_KEYS.get(key)
    if pad is None:
        if len(_PAD_KEYS) >= 64:
            _PAD_KEYS.clear()
        pad = _PAD_KEYS[key] = _prf.prf(prf_id, psk, KEY_PAD)
    return pad


_PAD_KEYS: dict[tuple, bytes] = {}
