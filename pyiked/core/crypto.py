"""The IKEv2 transform registry: what each IANA transform ID means and needs.

Lookups by IANA ID (pyiked.core.iana) give the lengths the key schedule, the SK payload
code and a kernel backend need, and the names `show sa` prints:

    encr_info(encr_id, key_bits)  -> EncrInfo   (ENCR, transform type 1)
    prf_info(prf_id)              -> PrfInfo    (PRF, type 2)
    integ_info(integ_id)          -> IntegInfo  (INTEG, type 3)
    ke_info(group)                -> KeInfo     (KE, types 4 and 6..12)
    supported(transform_type, id, key_bits=None, allow_legacy=False, protocol=IKE) -> bool

The *_info functions raise NoProposalChosen for an ID (or key length) this registry does
not implement: an unknown transform can only come from a proposal, and the reaction to a
proposal nothing matches is NO_PROPOSAL_CHOSEN (RFC 7296 §2.7). Proposal selection asks
`supported()` first and never sees that error.

`name` is the OpenIKED iked.conf spelling (`aes-256-gcm`, `hmac-sha2-256`, `curve25519`);
`ss_name` is strongSwan's (`AES_GCM_16_256`, `PRF_HMAC_SHA2_256`, `CURVE_25519`).

Key lengths: `key_bits` is the Key Length attribute (RFC 7296 §3.3.5), or None/0 when it
is absent. Ciphers with a fixed key length (ChaCha20-Poly1305, 3DES, NULL) take no Key
Length attribute (RFC 7634 §3, RFC 7296 §3.3.5); None, 0 and their fixed length are all
accepted for them. Variable-length ciphers (AES-*) require the attribute.

Salts: AEAD and counter-mode ciphers draw a salt (nonce) from the keying material after
the key: 4 octets for AES-GCM (RFC 5282 §7.1, RFC 4106 §8.1), ChaCha20-Poly1305 (RFC 7634
§2/§3) and AES-CTR (RFC 5930 §2, RFC 3686 §5.1); 3 octets for AES-CCM (RFC 5282 §7.1,
RFC 4309 §7.1). `keymat_len` = key_len + salt_len is what SK_e (and each CHILD SA
encryption key) holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import NoProposalChosen
from .iana import EncrId, EsnId, IntegId, KeId, PrfId, ProtocolId, TransformType

__all__ = [
    "EncrInfo",
    "PrfInfo",
    "IntegInfo",
    "KeInfo",
    "encr_info",
    "prf_info",
    "integ_info",
    "ke_info",
    "supported",
    "transform_name",
    "ENCR_IDS",
    "PRF_IDS",
    "INTEG_IDS",
    "KE_IDS",
]


@dataclass(frozen=True)
class EncrInfo:
    """An encryption transform at one key length.

    key_len: cipher key octets (no salt); salt_len: salt octets after the key in the
    keying material; keymat_len: key_len + salt_len; iv_len: IV octets per message;
    block_size: the alignment the SK plaintext (payloads + padding + pad length) must
    reach: the cipher block for CBC, 1 for counter-based modes (CTR, GCM, CCM,
    ChaCha20); icv_len: the AEAD tag octets (0 for non-AEAD ciphers, which need an
    INTEG transform); aead: combined mode, so INTEG must be NONE; legacy: only offered
    when legacy transforms are explicitly enabled; ike: usable for the IKE SA (SK
    payload), not just for ESP; name / ss_name: OpenIKED / strongSwan names.
    """

    id: int
    key_bits: int
    key_len: int
    salt_len: int
    keymat_len: int
    iv_len: int
    block_size: int
    icv_len: int
    aead: bool
    legacy: bool
    ike: bool
    name: str
    ss_name: str


@dataclass(frozen=True)
class PrfInfo:
    """A PRF. key_len: its preferred key length, the length of SK_d, SK_pi and SK_pr
    (RFC 7296 §2.14); out_len: octets per output block (the prf+ step)."""

    id: int
    key_len: int
    out_len: int
    legacy: bool
    name: str
    ss_name: str


@dataclass(frozen=True)
class IntegInfo:
    """An integrity transform: key_len octets of SK_a, icv_len octets of checksum."""

    id: int
    key_len: int
    icv_len: int
    legacy: bool
    name: str
    ss_name: str


@dataclass(frozen=True)
class KeInfo:
    """A key exchange method.

    public_len: the initiator's KE data length (DH public value, or KEM encapsulation
    key); response_len: the responder's (DH public value, or KEM ciphertext);
    kem: a KEM (ML-KEM), where the responder encapsulates instead of doing DH;
    shared_len: length of the shared secret.
    """

    id: int
    public_len: int
    response_len: int
    shared_len: int
    kem: bool
    legacy: bool
    name: str
    ss_name: str


# --- ENCR -------------------------------------------------------------------------------

_AES_BITS = (128, 192, 256)

# id: (allowed key bits, fixed, salt, iv, block, icv, aead, legacy, ike, name fmt, ss fmt)
_ENCR = {
    EncrId.AES_CBC: (_AES_BITS, False, 0, 16, 16, 0, False, False, True, "aes-{b}", "AES_CBC_{b}"),
    EncrId.AES_CTR: (_AES_BITS, False, 4, 8, 1, 0, False, False, True, "aes-{b}-ctr", "AES_CTR_{b}"),
    EncrId.AES_GCM_8: (_AES_BITS, False, 4, 8, 1, 8, True, False, True, "aes-{b}-gcm-8", "AES_GCM_8_{b}"),
    EncrId.AES_GCM_12: (_AES_BITS, False, 4, 8, 1, 12, True, False, True, "aes-{b}-gcm-12", "AES_GCM_12_{b}"),
    EncrId.AES_GCM_16: (_AES_BITS, False, 4, 8, 1, 16, True, False, True, "aes-{b}-gcm", "AES_GCM_16_{b}"),
    EncrId.AES_CCM_8: (_AES_BITS, False, 3, 8, 1, 8, True, False, True, "aes-{b}-ccm-8", "AES_CCM_8_{b}"),
    EncrId.AES_CCM_12: (_AES_BITS, False, 3, 8, 1, 12, True, False, True, "aes-{b}-ccm-12", "AES_CCM_12_{b}"),
    EncrId.AES_CCM_16: (_AES_BITS, False, 3, 8, 1, 16, True, False, True, "aes-{b}-ccm", "AES_CCM_16_{b}"),
    EncrId.CHACHA20_POLY1305: (
        (256,), True, 4, 8, 1, 16, True, False, True, "chacha20-poly1305", "CHACHA20_POLY1305_256",
    ),
    # RFC 8247 §2.1: 3DES is SHOULD NOT; only when explicitly enabled.
    EncrId.TRIPLE_DES: ((192,), True, 0, 8, 8, 0, False, True, True, "3des", "3DES_CBC"),
    # ESP only: NULL encryption (RFC 2410) and AES-GMAC (RFC 4543).
    EncrId.NULL: ((0,), True, 0, 0, 1, 0, False, False, False, "null", "NULL"),
    EncrId.NULL_AUTH_AES_GMAC: (
        _AES_BITS, False, 4, 8, 1, 16, True, False, False, "aes-{b}-gmac", "NULL_AES_GMAC_{b}",
    ),
}

ENCR_IDS = frozenset(_ENCR)


def _encr_entry(encr_id, key_bits):
    spec = _ENCR.get(encr_id)
    if spec is None:
        return None
    allowed, fixed = spec[0], spec[1]
    if fixed:
        if key_bits not in (None, 0, allowed[0]):
            return None
        key_bits = allowed[0]
    elif key_bits not in allowed:
        return None
    return spec, key_bits


def _build_encr(encr_id, key_bits):
    found = _encr_entry(encr_id, key_bits)
    if found is None:
        return None
    (_, _, salt, iv, block, icv, aead, legacy, ike, name, ss_name), bits = found
    key_len = bits // 8
    return EncrInfo(
        id=int(encr_id),
        key_bits=bits,
        key_len=key_len,
        salt_len=salt,
        keymat_len=key_len + salt,
        iv_len=iv,
        block_size=block,
        icv_len=icv,
        aead=aead,
        legacy=legacy,
        ike=ike,
        name=name.format(b=bits),
        ss_name=ss_name.format(b=bits),
    )


_ENCR_CACHE = {}
for _id, _spec in _ENCR.items():
    for _bits in _spec[0]:
        _ENCR_CACHE[(int(_id), _bits)] = _build_encr(_id, _bits)
    if _spec[1]:  # fixed-length: also reachable without a Key Length attribute
        _ENCR_CACHE[(int(_id), None)] = _ENCR_CACHE[(int(_id), 0)] = _ENCR_CACHE[
            (int(_id), _spec[0][0])
        ]


def encr_info(encr_id: int, key_bits: int | None = None) -> EncrInfo:
    """The ENCR transform `encr_id` with Key Length `key_bits` (None/0: attribute absent).

    Raises NoProposalChosen for an unimplemented ID or a key length it does not take.
    """
    info = _ENCR_CACHE.get((encr_id, key_bits))
    if info is None:
        raise NoProposalChosen(f"encryption transform {encr_id} with key length {key_bits} not supported")
    return info


# --- PRF --------------------------------------------------------------------------------

_PRF = {
    PrfId.HMAC_MD5: PrfInfo(1, 16, 16, True, "hmac-md5", "PRF_HMAC_MD5"),
    PrfId.HMAC_SHA1: PrfInfo(2, 20, 20, False, "hmac-sha1", "PRF_HMAC_SHA1"),
    # RFC 4434 / RFC 4615: 128-bit key and output.
    PrfId.AES128_XCBC: PrfInfo(4, 16, 16, False, "aes-xcbc", "PRF_AES128_XCBC"),
    PrfId.HMAC_SHA2_256: PrfInfo(5, 32, 32, False, "hmac-sha2-256", "PRF_HMAC_SHA2_256"),
    PrfId.HMAC_SHA2_384: PrfInfo(6, 48, 48, False, "hmac-sha2-384", "PRF_HMAC_SHA2_384"),
    PrfId.HMAC_SHA2_512: PrfInfo(7, 64, 64, False, "hmac-sha2-512", "PRF_HMAC_SHA2_512"),
    PrfId.AES128_CMAC: PrfInfo(8, 16, 16, False, "aes-cmac", "PRF_AES128_CMAC"),
}
_PRF_BY_INT = {int(k): v for k, v in _PRF.items()}
PRF_IDS = frozenset(_PRF)


def prf_info(prf_id: int) -> PrfInfo:
    """The PRF transform `prf_id`; NoProposalChosen when not implemented."""
    info = _PRF_BY_INT.get(prf_id)
    if info is None:
        raise NoProposalChosen(f"PRF transform {prf_id} not supported")
    return info


# --- INTEG ------------------------------------------------------------------------------

_INTEG = {
    IntegId.NONE: IntegInfo(0, 0, 0, False, "none", "NONE"),
    IntegId.HMAC_MD5_96: IntegInfo(1, 16, 12, True, "hmac-md5", "HMAC_MD5_96"),  # RFC 2403
    IntegId.HMAC_SHA1_96: IntegInfo(2, 20, 12, False, "hmac-sha1", "HMAC_SHA1_96"),  # RFC 2404
    IntegId.AES_XCBC_96: IntegInfo(5, 16, 12, False, "aes-xcbc", "AES_XCBC_96"),  # RFC 3566
    IntegId.AES_CMAC_96: IntegInfo(8, 16, 12, False, "aes-cmac", "AES_CMAC_96"),  # RFC 4494
    # RFC 4868 §2.1: the key is as long as the hash output, the ICV half of it.
    IntegId.HMAC_SHA2_256_128: IntegInfo(12, 32, 16, False, "hmac-sha2-256", "HMAC_SHA2_256_128"),
    IntegId.HMAC_SHA2_384_192: IntegInfo(13, 48, 24, False, "hmac-sha2-384", "HMAC_SHA2_384_192"),
    IntegId.HMAC_SHA2_512_256: IntegInfo(14, 64, 32, False, "hmac-sha2-512", "HMAC_SHA2_512_256"),
}
_INTEG_BY_INT = {int(k): v for k, v in _INTEG.items()}
INTEG_IDS = frozenset(_INTEG)


def integ_info(integ_id: int | None) -> IntegInfo:
    """The INTEG transform `integ_id` (None or 0: NONE, for AEAD suites);
    NoProposalChosen when not implemented."""
    info = _INTEG_BY_INT.get(0 if integ_id is None else integ_id)
    if info is None:
        raise NoProposalChosen(f"integrity transform {integ_id} not supported")
    return info


# --- KE ---------------------------------------------------------------------------------


def _modp(group, bits, legacy=False):
    n = bits // 8  # RFC 7296 §3.4: left-padded to the modulus length
    return KeInfo(int(group), n, n, n, False, legacy, f"modp{bits}", f"MODP_{bits}")


def _ecp(group, bits, name, ss_name):
    n = (bits + 7) // 8  # RFC 5903 §7: x | y, each the field length; secret = x
    return KeInfo(int(group), 2 * n, 2 * n, n, False, False, name, ss_name)


_KE = {
    # RFC 8247 §2.4: modp1024 is SHOULD NOT, modp1536 MAY; Windows still proposes 1024.
    KeId.MODP1024: _modp(KeId.MODP1024, 1024, legacy=True),
    KeId.MODP1536: _modp(KeId.MODP1536, 1536, legacy=True),
    KeId.MODP2048: _modp(KeId.MODP2048, 2048),
    KeId.MODP3072: _modp(KeId.MODP3072, 3072),
    KeId.MODP4096: _modp(KeId.MODP4096, 4096),
    KeId.MODP6144: _modp(KeId.MODP6144, 6144),
    KeId.MODP8192: _modp(KeId.MODP8192, 8192),
    KeId.ECP256: _ecp(KeId.ECP256, 256, "ecp256", "ECP_256"),
    KeId.ECP384: _ecp(KeId.ECP384, 384, "ecp384", "ECP_384"),
    KeId.ECP521: _ecp(KeId.ECP521, 521, "ecp521", "ECP_521"),
    KeId.ECP224: _ecp(KeId.ECP224, 224, "ecp224", "ECP_224"),  # RFC 5114 §3.2: x | y too
    # RFC 6954: brainpool curves in IKEv2, same x | y encoding.
    KeId.BRAINPOOL_P256R1: _ecp(KeId.BRAINPOOL_P256R1, 256, "brainpool256", "ECP_256_BP"),
    KeId.BRAINPOOL_P384R1: _ecp(KeId.BRAINPOOL_P384R1, 384, "brainpool384", "ECP_384_BP"),
    KeId.BRAINPOOL_P512R1: _ecp(KeId.BRAINPOOL_P512R1, 512, "brainpool512", "ECP_512_BP"),
    # RFC 8031 §3: the raw u-coordinate.
    KeId.CURVE25519: KeInfo(31, 32, 32, 32, False, False, "curve25519", "CURVE_25519"),
    KeId.CURVE448: KeInfo(32, 56, 56, 56, False, False, "curve448", "CURVE_448"),
    # FIPS 203 §8 Table 3: encapsulation key / ciphertext sizes; 32-octet shared secret.
    KeId.ML_KEM_768: KeInfo(36, 1184, 1088, 32, True, False, "mlkem768", "ML_KEM_768"),
    KeId.ML_KEM_1024: KeInfo(37, 1568, 1568, 32, True, False, "mlkem1024", "ML_KEM_1024"),
}
_KE_BY_INT = {int(k): v for k, v in _KE.items()}
KE_IDS = frozenset(_KE)


def ke_info(group: int) -> KeInfo:
    """The key exchange method `group`; NoProposalChosen when not implemented."""
    info = _KE_BY_INT.get(group)
    if info is None:
        raise NoProposalChosen(f"key exchange method {group} not supported")
    return info


# --- selection and names ----------------------------------------------------------------

_ADDKE_TYPES = frozenset(range(TransformType.ADDKE1, TransformType.ADDKE7 + 1))


def supported(
    transform_type: int,
    id: int,
    key_bits: int | None = None,
    allow_legacy: bool = False,
    protocol: int = ProtocolId.IKE,
) -> bool:
    """May this transform be selected? For proposal selection (RFC 7296 §2.7).

    protocol: the proposal's Protocol ID; ESP-only transforms (NULL, AES-GMAC) are
    refused for the IKE SA. KE NONE (0) is acceptable only for CHILD SAs (no PFS) and
    additional key exchanges (RFC 9370 §2.1, where NONE makes the exchange optional).
    """
    try:
        if transform_type == TransformType.ENCR:
            if protocol == ProtocolId.AH:
                return False
            info = encr_info(id, key_bits)
            if protocol == ProtocolId.IKE and not info.ike:
                return False
            return allow_legacy or not info.legacy
        if transform_type == TransformType.PRF:
            info = prf_info(id)
            return protocol == ProtocolId.IKE and (allow_legacy or not info.legacy)
        if transform_type == TransformType.INTEG:
            info = integ_info(id)
            return allow_legacy or not info.legacy
        if transform_type == TransformType.KE or transform_type in _ADDKE_TYPES:
            if id == KeId.NONE:
                return protocol != ProtocolId.IKE or transform_type in _ADDKE_TYPES
            info = ke_info(id)
            return allow_legacy or not info.legacy
        if transform_type == TransformType.ESN:
            return protocol != ProtocolId.IKE and id in (EsnId.NO_ESN, EsnId.ESN)
    except NoProposalChosen:
        return False
    return False


def transform_name(transform_type: int, id: int, key_bits: int | None = None, style: str = "openiked") -> str:
    """A human name for `show sa`: OpenIKED style (default) or strongSwan (`style="strongswan"`).
    Unknown transforms print as `<type>-<id>` so nothing here ever raises."""
    attr = "ss_name" if style == "strongswan" else "name"
    try:
        if transform_type == TransformType.ENCR:
            return getattr(encr_info(id, key_bits), attr)
        if transform_type == TransformType.PRF:
            return getattr(prf_info(id), attr)
        if transform_type == TransformType.INTEG:
            return getattr(integ_info(id), attr)
        if transform_type == TransformType.KE or transform_type in _ADDKE_TYPES:
            if id == KeId.NONE:
                return "none" if attr == "name" else "NONE"
            return getattr(ke_info(id), attr)
        if transform_type == TransformType.ESN:
            names = {EsnId.NO_ESN: ("noesn", "NO_EXT_SEQ"), EsnId.ESN: ("esn", "EXT_SEQ")}
            if id in names:
                return names[id][attr == "ss_name"]
    except NoProposalChosen:
        pass
    return f"{int(transform_type)}-{int(id)}"
