"""prf, prf+ and the key-material split (RFC 7296 §2.13), pure-Python twin.

setup.py compiles this same source a second time as `_prf_c` (typed by `_prf_c.pxd`);
`pyiked._fast.prf` is whichever is in use. Both give identical bytes.

    prf(prf_id, key, data) -> bytes
    prf_plus(prf_id, key, seed, length) -> bytes
    prf_plus_split(prf_id, key, seed, lengths) -> tuple[bytes, ...]
    split(keymat, lengths) -> tuple[bytes, ...]
    xcbc_mac(key, data) -> bytes   # AES-XCBC-MAC (RFC 3566), 16-octet key, full 128 bits

prf_id is the IANA PRF transform ID: HMAC-MD5 (1), HMAC-SHA1 (2), AES128-XCBC (4),
HMAC-SHA2-256/384/512 (5/6/7), AES128-CMAC (8). The HMAC PRFs take keys of any length
(RFC 2104); AES-XCBC-PRF-128 and AES-CMAC-PRF-128 bring any key to 128 bits by their own
rules (RFC 4434 §2, RFC 4615 §3). An unknown prf_id raises ValueError (a programming error:
the ID was negotiated against pyiked.core.crypto first).

Keys and data are never logged or kept.
"""

try:  # C calls, no hmac.py frame in between
    from _hashlib import hmac_new as _hmac_new
except ImportError:  # pragma: no cover - an interpreter without OpenSSL hashlib
    from hmac import new as _hmac_new
# Not _hashlib.hmac_digest: with OpenSSL 3 its one-shot HMAC() looks the digest up by
# name at every call, ~0.5 us more per HMAC than an HMAC object (a handshake makes ~15).

from cryptography.hazmat.primitives import cmac as _cmac
from cryptography.hazmat.primitives.ciphers import Cipher as _Cipher
from cryptography.hazmat.primitives.ciphers import algorithms as _algorithms
from cryptography.hazmat.primitives.ciphers import modes as _modes

PRF_HMAC_MD5 = 1
PRF_HMAC_SHA1 = 2
PRF_AES128_XCBC = 4
PRF_HMAC_SHA2_256 = 5
PRF_HMAC_SHA2_384 = 6
PRF_HMAC_SHA2_512 = 7
PRF_AES128_CMAC = 8

_HASH_NAMES = {
    PRF_HMAC_MD5: "md5",
    PRF_HMAC_SHA1: "sha1",
    PRF_HMAC_SHA2_256: "sha256",
    PRF_HMAC_SHA2_384: "sha384",
    PRF_HMAC_SHA2_512: "sha512",
}
_OUT_LEN = {
    PRF_HMAC_MD5: 16,
    PRF_HMAC_SHA1: 20,
    PRF_AES128_XCBC: 16,
    PRF_HMAC_SHA2_256: 32,
    PRF_HMAC_SHA2_384: 48,
    PRF_HMAC_SHA2_512: 64,
    PRF_AES128_CMAC: 16,
}

_ZERO_BLOCK = bytes(16)
_ZERO_KEY = bytes(16)


def out_len(prf_id):
    """Octets one prf() call produces."""
    n = _OUT_LEN.get(prf_id)
    if n is None:
        raise ValueError(f"unknown PRF {prf_id}")
    return n


# --- AES-XCBC-MAC (RFC 3566) and AES-XCBC-PRF-128 (RFC 4434) ------------------------------


def _aes_ecb(key, block):
    enc = _Cipher(_algorithms.AES(key), _modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def _xor16(a, b):
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(16, "big")


def xcbc_subkeys(key):
    """(K1, K2, K3) of RFC 3566 §4: AES_K of 0x01.., 0x02.., 0x03.. blocks."""
    enc = _Cipher(_algorithms.AES(key), _modes.ECB()).encryptor()
    out = enc.update(b"\x01" * 16 + b"\x02" * 16 + b"\x03" * 16) + enc.finalize()
    return out[:16], out[16:32], out[32:48]


def xcbc_mac_subkeys(k1, k2, k3, data):
    """AES-XCBC-MAC with precomputed subkeys (RFC 3566 §4), all 128 bits.

    The CBC chain E[i] = AES_K1(M[i] ^ E[i-1]) from E[0] = 0 is AES-CBC under K1 with a
    zero IV; the last block is XORed with K2 when complete, else padded with 10* and
    XORed with K3, so one CBC pass over the rewritten message ends in the MAC.
    """
    n = len(data)
    if n and n % 16 == 0:
        head, last = data[: n - 16], _xor16(data[n - 16 :], k2)
    else:
        cut = n - n % 16
        tail = data[cut:] + b"\x80" + bytes(15 - n % 16)
        head, last = data[:cut], _xor16(tail, k3)
    enc = _Cipher(_algorithms.AES(k1), _modes.CBC(_ZERO_BLOCK)).encryptor()
    out = enc.update(head + last) + enc.finalize()
    return out[len(out) - 16 :]  # no negative index: compiled with wraparound=False


def xcbc_mac(key, data):
    """AES-XCBC-MAC of RFC 3566 with a 128-bit key (truncate to 12 octets for -96)."""
    if len(key) != 16:
        raise ValueError("AES-XCBC-MAC needs a 128-bit key (RFC 3566 §4)")
    k1, k2, k3 = xcbc_subkeys(key)
    return xcbc_mac_subkeys(k1, k2, k3, data)


def xcbc_prf_key(key):
    """The 128-bit key AES-XCBC-PRF-128 uses for `key` (RFC 4434 §2): as is at 16 octets,
    zero-padded on the right when shorter, XCBC-MAC'ed under a zero key when longer."""
    n = len(key)
    if n == 16:
        return key
    if n < 16:
        return key + bytes(16 - n)
    return xcbc_mac(_ZERO_KEY, key)


def _cmac_aes(key, data):
    mac = _cmac.CMAC(_algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def cmac_prf_key(key):
    """The 128-bit key AES-CMAC-PRF-128 uses (RFC 4615 §3): as is at 16 octets, else
    AES-CMAC(0^128, key), for shorter keys as for longer ones."""
    if len(key) == 16:
        return key
    return _cmac_aes(_ZERO_KEY, key)


# --- prf, prf+ --------------------------------------------------------------------------


def prf(prf_id, key, data):
    """prf(K, S) of RFC 7296 §2.13 for the IANA PRF `prf_id`."""
    name = _HASH_NAMES.get(prf_id)
    if name is not None:
        return _hmac_new(key, data, name).digest()
    if prf_id == PRF_AES128_XCBC:
        return xcbc_mac(xcbc_prf_key(key), data)
    if prf_id == PRF_AES128_CMAC:
        return _cmac_aes(cmac_prf_key(key), data)
    raise ValueError(f"unknown PRF {prf_id}")


def prf_plus(prf_id, key, seed, length):
    """prf+(K, S) of RFC 7296 §2.13, cut to `length` octets.

    T1 = prf(K, S | 0x01), Tn = prf(K, Tn-1 | S | n); the counter is one octet, so at
    most 255 blocks can be made (more is a ValueError: no transform set needs that).
    """
    if length < 0:
        raise ValueError("negative prf+ length")
    name = _HASH_NAMES.get(prf_id)
    if name is None:
        if prf_id == PRF_AES128_XCBC:
            k1, k2, k3 = xcbc_subkeys(xcbc_prf_key(key))
            return _prf_plus_xcbc(k1, k2, k3, seed, length)
        if prf_id == PRF_AES128_CMAC:
            return _prf_plus_cmac(cmac_prf_key(key), seed, length)
        raise ValueError(f"unknown PRF {prf_id}")
    size = _OUT_LEN[prf_id]
    blocks = (length + size - 1) // size
    if blocks > 255:
        raise ValueError("prf+ cannot make more than 255 blocks (RFC 7296 §2.13)")
    if blocks == 0:
        return b""
    if blocks == 1:
        return _hmac_new(key, seed + b"\x01", name).digest()[:length]
    base = _hmac_new(key, None, name)  # the keyed state, copied for each block
    mac = base.copy()
    mac.update(seed + b"\x01")
    t = mac.digest()
    out = [t]
    for i in range(2, blocks + 1):
        mac = base.copy()
        mac.update(t + seed + bytes((i,)))
        t = mac.digest()
        out.append(t)
    return b"".join(out)[:length]


def _prf_plus_xcbc(k1, k2, k3, seed, length):
    blocks = (length + 15) // 16
    if blocks > 255:
        raise ValueError("prf+ cannot make more than 255 blocks (RFC 7296 §2.13)")
    out = []
    t = b""
    for i in range(1, blocks + 1):
        t = xcbc_mac_subkeys(k1, k2, k3, t + seed + bytes((i,)))
        out.append(t)
    return b"".join(out)[:length]


def _prf_plus_cmac(key, seed, length):
    blocks = (length + 15) // 16
    if blocks > 255:
        raise ValueError("prf+ cannot make more than 255 blocks (RFC 7296 §2.13)")
    base = _cmac.CMAC(_algorithms.AES(key))
    out = []
    t = b""
    for i in range(1, blocks + 1):
        mac = base.copy()
        mac.update(t + seed + bytes((i,)))
        t = mac.finalize()
        out.append(t)
    return b"".join(out)[:length]


def split(keymat, lengths):
    """Cut `keymat` into consecutive pieces of `lengths` octets (RFC 7296 §2.14 order is
    the caller's). The lengths must add up to at most len(keymat)."""
    pieces = []
    pos = 0
    for n in lengths:
        end = pos + n
        if end > len(keymat):
            raise ValueError("key material too short for the requested split")
        pieces.append(keymat[pos:end])
        pos = end
    return tuple(pieces)


def prf_plus_split(prf_id, key, seed, lengths):
    """prf+(key, seed) of exactly sum(lengths) octets, cut into those pieces."""
    total = 0
    for n in lengths:
        total += n
    return split(prf_plus(prf_id, key, seed, total), lengths)
