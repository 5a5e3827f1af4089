"""SK and SKF payload protection (RFC 7296 §3.14, RFC 5282, RFC 7634, RFC 7383), pure twin.

setup.py compiles this same source a second time as `_sk_c` (typed by `_sk_c.pxd`);
`pyiked._fast.sk` is whichever is in use.

    cipher = SKCipher(encr_id, encr_key_bits, integ_id, encr_key, integ_key, random=os.urandom)
    message = cipher.seal(ike_header, first_inner_type, plaintext)
    plaintext = cipher.open(message, sk_offset)
    fragment = cipher.seal_fragment(ike_header, first_inner_type, number, total, plaintext)
    number, total, plaintext = cipher.open_fragment(message, skf_offset)

One SKCipher per direction per IKE SA: the sender's holds SK_ei/SK_ai (or SK_er/SK_ar)
and so does the receiver's for the same direction. encr_key is SK_e with its salt for AEAD
and CTR ciphers (RFC 5282 §7.1); integ_key is SK_a, empty for AEAD.

Message layout (RFC 7296 §3.14): IKE header | SK header | IV | E(payloads | padding |
pad length) | ICV. For AEAD ciphers the ICV is the tag and the associated data is the IKE
header through the end of the SK generic header (RFC 5282 §5.1), for SKF also through
Fragment Number and Total Fragments (RFC 7383 §2.5). For encrypt-then-MAC suites the ICV
covers the whole message from the IKE header through the Pad Length and is checked, in
constant time, before anything is decrypted.

Errors from open/open_fragment: IntegrityError (a SilentDrop) when the ICV or tag does not
verify; InvalidSyntax for structure (lengths that do not add up, a short SK payload, a pad
length past the plaintext, a bad fragment number). Nothing else escapes. Padding content is
never checked and up to 255 octets are accepted (RFC 7296 §3.14, RFC 5282 §3).

IVs: CBC takes a fresh unpredictable IV from `random` per message (RFC 7296 §3.14). The
8-octet IVs of counter-based modes (GCM, CCM, ChaCha20-Poly1305, CTR) only have to be
unique per key (RFC 5282 §3, RFC 5930 §2, RFC 7634 §2): a message counter XORed with a
random 64-bit mask drawn once per SKCipher.
"""

import os
import struct

try:  # an HMAC object, not hmac_digest: OpenSSL 3 looks a name up per one-shot call
    from _hashlib import hmac_new as _hmac_new
except ImportError:  # pragma: no cover
    from hmac import new as _hmac_new
from hmac import compare_digest as _compare_digest

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import cmac as _cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305

from pyiked.core.errors import IntegrityError, InvalidSyntax

from ._prf_py import xcbc_mac_subkeys, xcbc_subkeys

SK = 46
SKF = 53
IKE_HEADER_LEN = 28

_KIND_CBC = 1
_KIND_CTR = 2
_KIND_GCM = 3
_KIND_CCM = 4
_KIND_CHACHA = 5

# encr_id: (kind, key bits allowed (None: fixed), fixed key bits, salt, iv, block, icv)
# The same facts as pyiked.core.crypto (tests check they agree); kept here so _fast sits
# below core.
_CIPHERS = {
    12: (_KIND_CBC, (128, 192, 256), 0, 16, 16, 0),  # AES-CBC, RFC 3602
    3: (_KIND_CBC, (192,), 0, 8, 8, 0),  # 3DES-CBC, RFC 2451
    13: (_KIND_CTR, (128, 192, 256), 4, 8, 1, 0),  # AES-CTR, RFC 5930
    18: (_KIND_GCM, (128, 192, 256), 4, 8, 1, 8),  # AES-GCM, RFC 5282
    19: (_KIND_GCM, (128, 192, 256), 4, 8, 1, 12),
    20: (_KIND_GCM, (128, 192, 256), 4, 8, 1, 16),
    14: (_KIND_CCM, (128, 192, 256), 3, 8, 1, 8),  # AES-CCM, RFC 5282
    15: (_KIND_CCM, (128, 192, 256), 3, 8, 1, 12),
    16: (_KIND_CCM, (128, 192, 256), 3, 8, 1, 16),
    28: (_KIND_CHACHA, (256,), 4, 8, 1, 16),  # ChaCha20-Poly1305, RFC 7634
}

_INTEG_HMAC = 1
_INTEG_XCBC = 2
_INTEG_CMAC = 3

# integ_id: (kind, hash name, key octets, icv octets)
_INTEGS = {
    1: (_INTEG_HMAC, "md5", 16, 12),  # HMAC-MD5-96, RFC 2403
    2: (_INTEG_HMAC, "sha1", 20, 12),  # HMAC-SHA1-96, RFC 2404
    5: (_INTEG_XCBC, "", 16, 12),  # AES-XCBC-MAC-96, RFC 3566
    8: (_INTEG_CMAC, "", 16, 12),  # AES-CMAC-96, RFC 4494
    12: (_INTEG_HMAC, "sha256", 32, 16),  # RFC 4868
    13: (_INTEG_HMAC, "sha384", 48, 24),
    14: (_INTEG_HMAC, "sha512", 64, 32),
}

_MAX_COUNTER = (1 << 64) - 1
_CTR_BLOCK_ONE = b"\x00\x00\x00\x01"  # RFC 3686 §4: the block counter starts at 1


class SKCipher:
    """Seal and open SK/SKF payloads for one direction of one IKE SA.

    Attributes: aead, iv_len, block_size (the padding alignment), icv_len, overhead
    (octets seal adds to a plaintext besides alignment padding: IKE header, SK header, IV,
    pad length, ICV) and fragment_overhead (the same for SKF, 4 octets more).
    ValueError for inconsistent construction arguments (a programming error, not input).
    """

    # every IKE SA holds two: no per-instance dict in the pure twin (the compiled one has
    # the same fields as C members, _sk_c.pxd)
    __slots__ = ("aead", "iv_len", "block_size", "icv_len", "overhead", "fragment_overhead",
                 "_kind", "_integ_kind", "_random", "_key", "_salt", "_aead_new", "_aead_icv",
                 "_algo", "_integ_key", "_hash_name", "_k1", "_k2", "_k3", "_cmac_base",
                 "_iv_counter", "_iv_mask")

    def __init__(self, encr_id, encr_key_bits, integ_id, encr_key, integ_key=b"", random=os.urandom):
        spec = _CIPHERS.get(encr_id)
        if spec is None:
            raise ValueError(f"encryption transform {encr_id} cannot protect an SK payload")
        kind, allowed, salt_len, iv_len, block, icv = spec
        if not encr_key_bits:
            encr_key_bits = allowed[0] if len(allowed) == 1 else 0
        if encr_key_bits not in allowed:
            raise ValueError(f"key length {encr_key_bits} not valid for transform {encr_id}")
        key_len = encr_key_bits // 8
        if len(encr_key) != key_len + salt_len:
            raise ValueError("SK_e length does not match the transform (key plus salt)")
        encr_key = bytes(encr_key)
        self._kind = kind
        self._random = random
        self._key = encr_key[:key_len]
        self._salt = encr_key[key_len:]
        self.aead = kind in (_KIND_GCM, _KIND_CCM, _KIND_CHACHA)
        self.iv_len = iv_len
        self.block_size = block
        # The AEAD object is made for each message, not kept: it holds OpenSSL contexts
        # of ~2.4 KB, more than the rest of an idle IKE SA, and costs ~1 us to make. An
        # IKE SA seals and opens a handful of messages in its life (bench/memory.py).
        self._aead_icv = icv if kind == _KIND_CCM else 0
        self._aead_new = None
        self._algo = None
        if kind == _KIND_GCM:
            self._aead_new = AESGCM
        elif kind == _KIND_CCM:
            self._aead_new = AESCCM
        elif kind == _KIND_CHACHA:
            self._aead_new = ChaCha20Poly1305
        elif encr_id == 3:
            from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES

            self._algo = TripleDES(self._key)
        else:
            self._algo = algorithms.AES(self._key)
        self._integ_kind = 0
        self._integ_key = b""
        self._hash_name = ""
        self._k1 = self._k2 = self._k3 = b""
        self._cmac_base = None
        if self.aead:
            if integ_id or integ_key:
                raise ValueError("an AEAD cipher takes no integrity transform (RFC 5282 §8)")
        else:
            ispec = _INTEGS.get(integ_id)
            if ispec is None:
                raise ValueError(f"integrity transform {integ_id} not supported")
            ikind, name, ikey_len, icv = ispec
            if len(integ_key) != ikey_len:
                raise ValueError("SK_a length does not match the integrity transform")
            self._integ_kind = ikind
            self._integ_key = bytes(integ_key)
            self._hash_name = name
            if ikind == _INTEG_XCBC:
                self._k1, self._k2, self._k3 = xcbc_subkeys(self._integ_key)
            elif ikind == _INTEG_CMAC:
                self._cmac_base = _cmac.CMAC(algorithms.AES(self._integ_key))
        self.icv_len = icv
        self.overhead = IKE_HEADER_LEN + 4 + iv_len + 1 + icv
        self.fragment_overhead = self.overhead + 4
        self._iv_counter = 0
        self._iv_mask = int.from_bytes(random(8), "big") if kind != _KIND_CBC else 0
        # no trial AEAD object here: the lengths checked above are all the library checks

    def _aead(self):
        if self._aead_icv:
            return self._aead_new(self._key, tag_length=self._aead_icv)
        return self._aead_new(self._key)

    def __repr__(self):
        return f"SKCipher(aead={self.aead}, iv_len={self.iv_len}, icv_len={self.icv_len})"

    def __reduce__(self):
        raise TypeError("SKCipher holds keys and cannot be pickled")

    # --- sizing ---------------------------------------------------------------------

    def max_plaintext(self, total_len, fragment=False):
        """The longest inner payload chain whose sealed message fits in total_len octets
        (for SKF when fragment is true). ValueError when not even an empty one fits."""
        avail = total_len - IKE_HEADER_LEN - (8 if fragment else 4) - self.iv_len - self.icv_len
        if self.block_size > 1:
            avail -= avail % self.block_size
        if avail < 1:
            raise ValueError("no room for an encrypted payload in that length")
        return avail - 1

    # --- seal -----------------------------------------------------------------------

    def _next_iv(self):
        if self._kind == _KIND_CBC:
            iv = self._random(self.iv_len)
            if len(iv) != self.iv_len:
                raise ValueError("random source returned a short IV")
            return bytes(iv)
        counter = self._iv_counter
        if counter >= _MAX_COUNTER:
            raise OverflowError("IV space of this SK key exhausted; rekey the IKE SA")
        self._iv_counter = counter + 1
        return struct.pack("!Q", counter ^ self._iv_mask)

    def _encrypt(self, iv, inner, aad):
        kind = self._kind
        if kind == _KIND_GCM:
            out = self._aead().encrypt(self._salt + iv, inner, aad)
            if self.icv_len != 16:  # NIST SP 800-38D §5.2.1.2: a shorter tag is a prefix
                out = out[: len(inner) + self.icv_len]
            return out
        if kind == _KIND_CCM or kind == _KIND_CHACHA:
            return self._aead().encrypt(self._salt + iv, inner, aad)
        if kind == _KIND_CBC:
            enc = Cipher(self._algo, modes.CBC(iv)).encryptor()
        else:
            enc = Cipher(self._algo, modes.CTR(self._salt + iv + _CTR_BLOCK_ONE)).encryptor()
        return enc.update(inner) + enc.finalize()

    def _icv(self, data):
        kind = self._integ_kind
        if kind == _INTEG_HMAC:
            mac = _hmac_new(self._integ_key, data, self._hash_name).digest()
        elif kind == _INTEG_XCBC:
            mac = xcbc_mac_subkeys(self._k1, self._k2, self._k3, data)
        else:
            ctx = self._cmac_base.copy()
            ctx.update(data)
            mac = ctx.finalize()
        return mac[: self.icv_len]

    def _seal(self, ike_header, payload_type, first_inner_type, extra, plaintext):
        if len(ike_header) != IKE_HEADER_LEN or ike_header[16] != payload_type:
            raise ValueError("ike_header must be the 28-octet header with Next Payload set")
        plen = len(plaintext)
        block = self.block_size
        padlen = (block - (plen + 1) % block) % block
        iv = self._next_iv()
        sk_len = 4 + len(extra) + self.iv_len + plen + padlen + 1 + self.icv_len
        total = IKE_HEADER_LEN + sk_len
        # RFC 7296 §3.1/§3.2: patch the header Length; the SK header's Next Payload is the
        # first inner payload, its Length covers IV, ciphertext and ICV.
        head = bytes(ike_header[:24]) + struct.pack("!IBBH", total, first_inner_type, 0, sk_len) + extra
        inner = bytes(plaintext) + bytes(padlen) + bytes((padlen,))
        if self.aead:
            return head + iv + self._encrypt(iv, inner, head)
        message = head + iv + self._encrypt(iv, inner, b"")
        return message + self._icv(message)

    def seal(self, ike_header, first_inner_type, plaintext):
        """The whole protected message: ike_header (28 octets, Next Payload 46, Length
        patched here) | SK header (Next Payload first_inner_type) | IV | ciphertext | ICV."""
        return self._seal(ike_header, SK, first_inner_type, b"", plaintext)

    def seal_fragment(self, ike_header, first_inner_type, fragment_number, total_fragments, plaintext):
        """One SKF message (RFC 7383 §2.5): ike_header with Next Payload 53;
        first_inner_type is the inner chain's first type in fragment 1 and 0 after."""
        if not 1 <= fragment_number <= total_fragments <= 0xFFFF:
            raise ValueError("fragment numbers must satisfy 1 <= number <= total <= 65535")
        extra = struct.pack("!HH", fragment_number, total_fragments)
        return self._seal(ike_header, SKF, first_inner_type, extra, plaintext)

    # --- open -----------------------------------------------------------------------

    def _decrypt(self, iv, ciphertext, icv, aad):
        kind = self._kind
        try:
            if kind == _KIND_GCM and self.icv_len != 16:
                dec = Cipher(
                    algorithms.AES(self._key), modes.GCM(self._salt + iv, icv, min_tag_length=self.icv_len)
                ).decryptor()
                dec.authenticate_additional_data(aad)
                return dec.update(ciphertext) + dec.finalize()
            if self.aead:
                return self._aead().decrypt(self._salt + iv, ciphertext + icv, aad)
        except InvalidTag:
            raise IntegrityError("AEAD tag does not verify") from None
        if kind == _KIND_CBC:
            dec = Cipher(self._algo, modes.CBC(iv)).decryptor()
        else:
            dec = Cipher(self._algo, modes.CTR(self._salt + iv + _CTR_BLOCK_ONE)).decryptor()
        return dec.update(ciphertext) + dec.finalize()

    def _open(self, message, offset, payload_type, header_len):
        if not isinstance(message, bytes):
            message = bytes(message)
        n = len(message)
        if n < IKE_HEADER_LEN or offset < IKE_HEADER_LEN or offset + header_len > n:
            raise InvalidSyntax("message too short for its encrypted payload", offset)
        if struct.unpack_from("!I", message, 24)[0] != n:
            raise InvalidSyntax("IKE header Length does not match the message", 24)
        sk_len = struct.unpack_from("!H", message, offset + 2)[0]
        if offset + sk_len != n:  # RFC 7296 §3.14: SK is the last payload
            raise InvalidSyntax("encrypted payload does not end the message", offset)
        body = offset + header_len
        ct_start = body + self.iv_len
        ct_end = n - self.icv_len
        ct_len = ct_end - ct_start
        block = self.block_size
        if ct_len < block or ct_len < 1 or ct_len % block:
            raise InvalidSyntax("encrypted payload too short or not a whole number of blocks", offset)
        if payload_type == SKF:
            number, total = struct.unpack_from("!HH", message, offset + 4)
            if number < 1 or number > total:  # RFC 7383 §2.5
                raise InvalidSyntax("bad Fragment Number / Total Fragments", offset + 4)
        iv = message[body:ct_start]
        icv = message[ct_end:n]
        if self.aead:
            plain = self._decrypt(iv, message[ct_start:ct_end], icv, message[:body])
        else:
            # RFC 7296 §3.14: the ICV covers the IKE header through the Pad Length;
            # check it, in constant time, before decrypting anything.
            if not _compare_digest(self._icv(message[:ct_end]), icv):
                raise IntegrityError("ICV does not verify")
            plain = self._decrypt(iv, message[ct_start:ct_end], b"", b"")
        last = len(plain) - 1
        padlen = plain[last]
        if padlen > last:  # RFC 5282 §3: only a pad length past the plaintext is an error
            raise InvalidSyntax("pad length exceeds the decrypted data", offset)
        return plain[: last - padlen]

    def open(self, message, sk_offset):
        """The inner payload chain of a message whose SK payload starts at sk_offset,
        padding removed."""
        return self._open(message, sk_offset, SK, 4)

    def open_fragment(self, message, skf_offset):
        """(fragment_number, total_fragments, plaintext) of one SKF message. The inner
        chain's first payload type is the SKF header's Next Payload, message[skf_offset]
        (non-zero only in fragment 1, RFC 7383 §2.5)."""
        plain = self._open(message, skf_offset, SKF, 8)
        number, total = struct.unpack_from("!HH", message, skf_offset + 4)
        return number, total, plain
