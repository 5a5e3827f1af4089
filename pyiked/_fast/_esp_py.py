"""Userspace ESP (RFC 4303), the per-packet path: one `EspSA` per direction.

    sa = EspSA(spi, encr_id, encr_key, integ_id, integ_key, esn=False, replay_window=64)
    esp = sa.encap(inner_packet, next_header)        # SPI | Seq | IV | ciphertext | ICV
    next_header, inner_packet = sa.decap(esp)        # raises EspError / IntegrityError / ReplayError

`encap` builds the ESP packet that goes in a UDP datagram (RFC 3948): the caller adds
nothing but the UDP header. `decap` checks the replay window before the ICV is verified and
updates it only afterwards (RFC 4303 §3.4.3), then checks the trailer. Every malformed,
forged or replayed packet raises a pyiked.core.errors type and nothing else.

Transforms (IANA numbers, as pyiked.core.iana.EncrId / IntegId):
  AES-GCM with 8, 12, 16 octet ICV (RFC 4106), ChaCha20-Poly1305 (RFC 7634): the key
  carries its 4-octet salt at the end;  AES-CBC (RFC 3602) with HMAC-SHA1-96 (RFC 2404),
  HMAC-SHA2-256-128 / 384-192 / 512-256 (RFC 4868).
All primitives come from `cryptography` (OpenSSL).

Also here because every packet goes through it: `packet_flow`, the selector view of an IP
packet (addresses, protocol, ports) used to pick the outbound SA and to check what an
inbound SA delivers (RFC 4301 §5.1, §5.2).

This file is the pure twin; setup.py compiles it a second time as `_esp_c` with
`_esp_c.pxd`.
"""

import os
import struct
from hmac import compare_digest

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from pyiked.core.errors import CryptoUnavailable, EspError, IntegrityError, ReplayError

# IANA transform IDs, as plain ints for the compiled path
ENCR_AES_CBC = 12
ENCR_AES_GCM_8 = 18
ENCR_AES_GCM_12 = 19
ENCR_AES_GCM_16 = 20
ENCR_CHACHA20_POLY1305 = 28
AUTH_NONE = 0
AUTH_HMAC_SHA1_96 = 2
AUTH_HMAC_SHA2_256_128 = 12
AUTH_HMAC_SHA2_384_192 = 13
AUTH_HMAC_SHA2_512_256 = 14

NEXT_HEADER_IPV4 = 4
NEXT_HEADER_IPV6 = 41
NEXT_HEADER_NO_NEXT = 59  # RFC 4303 §2.6: a dummy packet, discarded by the receiver

#: Largest anti-replay window accepted (bits); RFC 4303 §3.4.3 asks for at least 32/64.
MAX_REPLAY_WINDOW = 4096

SEQ_MAX_32 = 0xFFFFFFFF
SEQ_MAX_64 = 0xFFFFFFFFFFFFFFFF
#: Packets left before the counter cycles when the soft sequence-number limit fires
SEQ_SOFT_MARGIN = 1 << 24

_KIND_AEAD = 0  # AESGCM / ChaCha20Poly1305 objects (full 16-octet tag on receive)
_KIND_GCM_SHORT = 1  # AES-GCM with an 8 or 12 octet ICV: receive needs the Cipher API
_KIND_CBC = 2  # AES-CBC + HMAC

_STATE_LIVE = 0
_STATE_SOFT = 1
_STATE_HARD = 2

_NO_LIMIT = 0xFFFFFFFFFFFFFFFF

_HDR = struct.Struct(">II")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_ONE = 1  # a Python int: the compiled twin must not shift a C integer past 63 bits
_PAD = bytes(range(1, 256))  # RFC 4303 §2.4: default padding is 1, 2, 3, ...
# The ESP trailer for every (next header, pad length < 16): Padding, Pad Length, Next Header
_TRAILERS = [[_PAD[:pad] + bytes((pad, nh)) for pad in range(16)] for nh in range(256)]

_INTEG = {
    # id: (hash, key octets, ICV octets)
    AUTH_HMAC_SHA1_96: (hashes.SHA1, 20, 12),  # RFC 2404
    AUTH_HMAC_SHA2_256_128: (hashes.SHA256, 32, 16),  # RFC 4868 §2.1
    AUTH_HMAC_SHA2_384_192: (hashes.SHA384, 48, 24),
    AUTH_HMAC_SHA2_512_256: (hashes.SHA512, 64, 32),
}
_GCM_ICV = {ENCR_AES_GCM_8: 8, ENCR_AES_GCM_12: 12, ENCR_AES_GCM_16: 16}


class ReplayWindow:
    """The RFC 4303 §3.4.3 receive window, with ESN high-bit inference (Appendix A2.2).

    `check(seq_low)` runs before the ICV is verified: it returns the full (64-bit with ESN)
    sequence number or raises ReplayError, and changes nothing. `update(seq)` runs once
    the ICV is good. `size` 0 disables the replay check (RFC 4303 §3.4.3 lets the receiver
    do so); the highest sequence number is still tracked for ESN inference.
    """

    def __init__(self, size, esn):
        if size < 0 or size > MAX_REPLAY_WINDOW:
            raise ValueError(f"replay window {size} outside 0..{MAX_REPLAY_WINDOW}")
        self.size = size
        self.esn = esn
        self.top = 0  # T: the highest authenticated sequence number; 0 = none yet
        self.bitmap = 0  # bit i set: T - i has been received
        self._mask = (_ONE << size) - 1
        # the window the inference uses: RFC 4303 Appendix A2.1 W
        self._infer_w = max(size, 32)

    def check(self, seq_low):
        if self.esn:
            seq = self._infer(seq_low)
        else:
            seq = seq_low
        if seq == 0:
            # RFC 4303 §3.3.3: the first packet sent has sequence number 1
            raise ReplayError("sequence number 0")
        top = self.top
        if seq > top or self.size == 0:
            return seq
        diff = top - seq
        if diff >= self.size:
            raise ReplayError("sequence number left of the replay window")
        if (self.bitmap >> diff) & 1:
            raise ReplayError("duplicate sequence number")
        return seq

    def _infer(self, seql):
        # RFC 4303 Appendix A2.2, with Bl = Tl - W + 1 taken modulo 2^32
        w = self._infer_w
        th = self.top >> 32
        tl = self.top & 0xFFFFFFFF
        bl = (tl - w + 1) & 0xFFFFFFFF
        if tl >= w - 1:  # Case A: the window lies in one subspace
            seqh = th if seql >= bl else th + 1
        else:  # Case B: the window spans two subspaces
            seqh = th - 1 if seql >= bl else th
        if seqh < 0 or seqh > 0xFFFFFFFF:
            raise ReplayError("sequence number outside the ESN space")
        full = seqh
        return (full << 32) | seql

    def update(self, seq):
        top = self.top
        if seq > top:
            shift = seq - top
            if shift >= self.size:
                self.bitmap = 1
            else:
                self.bitmap = ((self.bitmap << shift) | 1) & self._mask
            self.top = seq
        elif top - seq < self.size:
            self.bitmap |= _ONE << (top - seq)


class EspSA:
    """One direction of an ESP SA: the keys, the sequence counter or the replay window,
    and the byte/packet counters that drive soft/hard expiry (RFC 4303 §3.3.3, RFC 4301 §4.4.2.1).

    encr_key carries the 4-octet salt at its end for AES-GCM and ChaCha20-Poly1305
    (RFC 4106 §8.1, RFC 7634 §2). integ_id is 0 for the AEAD ciphers.
    """

    def __init__(self, spi, encr_id, encr_key, integ_id=0, integ_key=b"", esn=False,
                 replay_window=64):
        if not 0 < spi <= 0xFFFFFFFF:
            raise ValueError("SPI must be 1..2^32-1")
        self.spi = spi
        self._spi_bytes = _U32.pack(spi)
        self.esn = bool(esn)
        self.encr_id = encr_id
        self.integ_id = integ_id
        self.seq = 0  # the last sequence number sent
        self._seq_max = SEQ_MAX_64 if esn else SEQ_MAX_32
        self._seq_soft = self._seq_max - SEQ_SOFT_MARGIN
        self.replay = ReplayWindow(replay_window, self.esn)
        self.byte_count = 0  # inner octets protected or delivered
        self.packet_count = 0
        self.state = _STATE_LIVE
        self._pending = 0  # expiry states reached and not yet taken
        self._soft_bytes = _NO_LIMIT
        self._hard_bytes = _NO_LIMIT
        self._soft_packets = _NO_LIMIT
        self._hard_packets = _NO_LIMIT
        self._next_bytes = _NO_LIMIT
        self._next_packets = _NO_LIMIT
        self._iv_pool = b""
        self._iv_pos = 0
        self._setup(encr_id, bytes(encr_key), integ_id, bytes(integ_key))

    # -- construction ----------------------------------------------------------------

    def _setup(self, encr_id, encr_key, integ_id, integ_key):
        self._hmac = None
        self._aead = None
        if encr_id in _GCM_ICV or encr_id == ENCR_CHACHA20_POLY1305:
            if integ_id != AUTH_NONE:
                raise CryptoUnavailable("an AEAD cipher takes no integrity transform (RFC 7296 §3.3)")
            if len(encr_key) < 20:
                raise ValueError("an AEAD key carries 4 octets of salt after the key")
            cut = len(encr_key) - 4  # no negative indices: the compiled twin skips wraparound
            key, self._salt = encr_key[:cut], encr_key[cut:]
            if encr_id == ENCR_CHACHA20_POLY1305:
                if len(key) != 32:
                    raise ValueError("ChaCha20-Poly1305 needs a 32+4 octet key")
                self._aead = ChaCha20Poly1305(key)
                self._icv_len = 16
            else:
                if len(key) not in (16, 24, 32):
                    raise ValueError("AES-GCM needs a 16, 24 or 32 octet key plus 4 octets of salt")
                self._aead = AESGCM(key)
                self._aes = algorithms.AES(key)
                self._icv_len = _GCM_ICV[encr_id]
            self._kind = _KIND_AEAD if self._icv_len == 16 else _KIND_GCM_SHORT
            self._iv_len = 8
            self._block = 4  # RFC 4106 §3.2, RFC 7634 §2: 4-octet alignment
        elif encr_id == ENCR_AES_CBC:
            if integ_id not in _INTEG:
                raise CryptoUnavailable(f"integrity transform {integ_id} not supported in userspace")
            hash_cls, integ_len, self._icv_len = _INTEG[integ_id]
            if len(integ_key) != integ_len:
                raise ValueError(f"integrity key must be {integ_len} octets")
            if len(encr_key) not in (16, 24, 32):
                raise ValueError("AES-CBC needs a 16, 24 or 32 octet key")
            self._hmac = crypto_hmac.HMAC(integ_key, hash_cls())
            # One long-lived OpenSSL CBC context per direction: building one costs more
            # than protecting a packet. See _cbc_encrypt for how each packet gets its IV.
            zero = bytes(16)
            cipher = Cipher(algorithms.AES(encr_key), modes.CBC(zero))
            self._enc = cipher.encryptor()
            self._dec = cipher.decryptor()
            self._enc_last = 0
            self._dec_last = 0
            self._kind = _KIND_CBC
            self._iv_len = 16
            self._block = 16
            self._salt = b""
        else:
            raise CryptoUnavailable(f"ESP transform {encr_id} not supported in userspace")
        # RFC 4303 §3.4: SPI, Seq, IV, at least Pad Length and Next Header, the ICV
        self._min_len = 8 + self._iv_len + self._icv_len + (self._block if self._kind == _KIND_CBC else 2)

    def set_limits(self, soft_bytes=0, hard_bytes=0, soft_packets=0, hard_packets=0):
        """Lifetime limits of this SA (0: none). Reaching one raises expiry (take_expire)."""
        self._soft_bytes = soft_bytes or _NO_LIMIT
        self._hard_bytes = hard_bytes or _NO_LIMIT
        self._soft_packets = soft_packets or _NO_LIMIT
        self._hard_packets = hard_packets or _NO_LIMIT
        self._arm()
        self._check_limits()

    # -- expiry ----------------------------------------------------------------------

    def _arm(self):
        if self.state == _STATE_LIVE:
            self._next_bytes = min(self._soft_bytes, self._hard_bytes)
            self._next_packets = min(self._soft_packets, self._hard_packets)
        elif self.state == _STATE_SOFT:
            self._next_bytes = self._hard_bytes
            self._next_packets = self._hard_packets
        else:
            self._next_bytes = _NO_LIMIT
            self._next_packets = _NO_LIMIT

    def _reach(self, state):
        if state > self.state:
            for s in range(self.state + 1, state + 1):
                self._pending |= 1 << s
            self.state = state
            self._arm()

    def _check_limits(self):
        if self.byte_count >= self._hard_bytes or self.packet_count >= self._hard_packets:
            self._reach(_STATE_HARD)
        elif (self.byte_count >= self._soft_bytes or self.packet_count >= self._soft_packets
              or self.seq >= self._seq_soft):
            self._reach(_STATE_SOFT)

    def expire(self, hard):
        """Expire the SA from outside (a time lifetime): soft asks for a rekey, hard
        stops it. Reported by take_expire like the byte and packet limits."""
        self._reach(_STATE_HARD if hard else _STATE_SOFT)

    def take_expire(self):
        """The expiry reached since the last call: 0 none, 1 soft, 2 hard (hard wins)."""
        pending = self._pending
        self._pending = 0
        if pending & (1 << _STATE_HARD):
            return _STATE_HARD
        if pending & (1 << _STATE_SOFT):
            return _STATE_SOFT
        return 0

    def _account(self, n):
        self.byte_count += n
        self.packet_count += 1
        if (self.byte_count >= self._next_bytes or self.packet_count >= self._next_packets
                or self.seq >= self._seq_soft):
            self._check_limits()

    # -- outbound --------------------------------------------------------------------

    def encap(self, inner, next_header, iv=None):
        """Protect one packet: the ESP header, IV, ciphertext and ICV (RFC 4303 §3.3).

        iv is for known-answer tests only; by default the AEAD IV is the 64-bit sequence
        number (unique per key, RFC 4106 §3.1, RFC 7634 §2) and the CBC IV is random
        (RFC 3602 §2.1: unpredictable).
        """
        if self.state == _STATE_HARD:
            raise EspError("SA hard lifetime reached")
        seq = self.seq
        if seq >= self._seq_max:
            # RFC 4303 §3.3.3: the sequence number must never cycle
            self._reach(_STATE_HARD)
            raise EspError("sequence number exhausted")
        seq += 1
        self.seq = seq
        n = len(inner)
        header = _HDR.pack(self.spi, seq & 0xFFFFFFFF)
        padlen = (self._block - (n + 2) % self._block) % self._block
        plaintext = inner + _TRAILERS[next_header & 0xFF][padlen]
        if self._kind == _KIND_CBC:
            if iv is None:
                iv = self._random_iv()
            elif len(iv) != 16:
                raise ValueError("the AES-CBC IV is 16 octets")
            ct = self._cbc_encrypt(iv, plaintext)
            mac = self._hmac.copy()
            mac.update(header)
            mac.update(iv)
            mac.update(ct)
            if self.esn:
                # RFC 4303 §2.2.1: the high-order 32 bits enter the ICV, after the payload
                mac.update(_U32.pack(seq >> 32))
            packet = b"".join((header, iv, ct, mac.finalize()[:self._icv_len]))
        else:
            if iv is None:
                iv = _U64.pack(seq)
            elif len(iv) != 8:
                raise ValueError("the AEAD IV is 8 octets")
            if self.esn:
                aad = self._spi_bytes + _U64.pack(seq)  # RFC 4106 §5: SPI, Seq high, Seq low
            else:
                aad = header
            sealed = self._aead.encrypt(self._salt + iv, plaintext, aad)
            if self._icv_len != 16:
                # GCM tags truncate to their leftmost octets (NIST SP 800-38D §5.2.1.2)
                sealed = sealed[:len(sealed) - 16 + self._icv_len]
            packet = b"".join((header, iv, sealed))
        self._account(n)
        return packet

    def _random_iv(self):
        pos = self._iv_pos
        if pos + 16 > len(self._iv_pool):
            self._iv_pool = os.urandom(4096)
            pos = 0
        self._iv_pos = pos + 16
        return self._iv_pool[pos:pos + 16]

    def _cbc_encrypt(self, iv, plaintext):
        # The context's chaining value is the last block it produced; CBC with a fresh IV
        # means C1 = E(P1 ^ IV), so feed P1 ^ IV ^ last as the first block.
        first = int.from_bytes(plaintext[:16], "big") ^ int.from_bytes(iv, "big") ^ self._enc_last
        ct = self._enc.update(first.to_bytes(16, "big") + plaintext[16:])
        self._enc_last = int.from_bytes(ct[len(ct) - 16:], "big")
        return ct

    def _cbc_decrypt(self, iv, ct):
        # P1 = D(C1) ^ IV, but the context XORs D(C1) with the last block it was fed.
        out = self._dec.update(ct)
        first = int.from_bytes(out[:16], "big") ^ self._dec_last ^ int.from_bytes(iv, "big")
        self._dec_last = int.from_bytes(ct[len(ct) - 16:], "big")
        return first.to_bytes(16, "big") + out[16:]

    # -- inbound ---------------------------------------------------------------------

    def decap(self, packet):
        """Verify and decrypt one ESP packet: (next_header, inner packet) (RFC 4303 §3.4)."""
        if self.state == _STATE_HARD:
            raise EspError("SA hard lifetime reached")
        n = len(packet)
        if n < self._min_len:
            raise EspError("ESP packet too short")
        spi, seq_low = _HDR.unpack_from(packet, 0)
        if spi != self.spi:
            raise EspError("SPI does not belong to this SA")
        # RFC 4303 §3.4.3: the cheap replay check comes before the costly ICV check
        seq = self.replay.check(seq_low)
        iv_end = 8 + self._iv_len
        iv = packet[8:iv_end]
        if self._kind == _KIND_CBC:
            icv_at = n - self._icv_len
            if (icv_at - iv_end) % 16:
                raise EspError("ciphertext is not a whole number of blocks")
            view = memoryview(packet)
            mac = self._hmac.copy()
            mac.update(view[:icv_at])
            if self.esn:
                mac.update(_U32.pack(seq >> 32))
            if not compare_digest(mac.finalize()[:self._icv_len], packet[icv_at:]):
                raise IntegrityError("ESP ICV mismatch")
            plaintext = self._cbc_decrypt(iv, bytes(view[iv_end:icv_at]))
        else:
            if self.esn:
                aad = self._spi_bytes + _U64.pack(seq)
            else:
                aad = packet[:8]
            nonce = self._salt + iv
            try:
                if self._kind == _KIND_AEAD:
                    plaintext = self._aead.decrypt(nonce, packet[iv_end:], aad)
                else:
                    plaintext = self._gcm_short_decrypt(nonce, packet, iv_end, aad)
            except InvalidTag:
                raise IntegrityError("ESP ICV mismatch") from None
        # RFC 4303 §3.4.3: the window moves only for authenticated packets
        self.replay.update(seq)
        return self._strip_trailer(plaintext)

    def _gcm_short_decrypt(self, nonce, packet, iv_end, aad):
        icv_at = len(packet) - self._icv_len
        dec = Cipher(self._aes, modes.GCM(nonce, packet[icv_at:], min_tag_length=self._icv_len)).decryptor()
        dec.authenticate_additional_data(aad)
        return dec.update(packet[iv_end:icv_at]) + dec.finalize()

    def _strip_trailer(self, plaintext):
        size = len(plaintext)
        if size < 2:
            raise EspError("no ESP trailer")
        padlen = plaintext[size - 2]
        next_header = plaintext[size - 1]
        end = size - 2 - padlen
        if end < 0:
            raise EspError("pad length beyond the payload")
        # RFC 4303 §2.4: with the default padding the receiver SHOULD check its contents
        if plaintext[end:size - 2] != _PAD[:padlen]:
            raise EspError("padding is not 1, 2, 3, ...")
        self._account(end)
        return next_header, plaintext[:end]


def _ports(packet, at, proto, size):
    # RFC 4301 §4.4.1.1: ICMP type and code stand where the ports would be
    if proto in (1, 58):
        if at + 2 > size:
            raise EspError("truncated ICMP header")
        port = (packet[at] << 8) | packet[at + 1]
        return port, port
    if proto in (6, 17, 33, 132, 136):  # TCP, UDP, DCCP, SCTP, UDP-Lite
        if at + 4 > size:
            raise EspError("truncated transport header")
        return (packet[at] << 8) | packet[at + 1], (packet[at + 2] << 8) | packet[at + 3]
    return 0, 0


def packet_flow(packet):
    """The selector view of an IP packet (RFC 4301 §4.4.1.1):
    (version, src, dst, protocol, sport, dport, length), addresses as integers, length
    from the IP header. Ports are -1 in a non-initial fragment (OPAQUE); for ICMP both
    carry type << 8 | code; 0 for protocols without ports. Raises EspError when the
    packet is not a well-formed IPv4/IPv6 packet.
    """
    size = len(packet)
    if size < 20:
        raise EspError("IP packet too short")
    version = packet[0] >> 4
    if version == 4:
        ihl = (packet[0] & 0x0F) * 4
        length = (packet[2] << 8) | packet[3]
        if ihl < 20 or length < ihl or length > size:
            raise EspError("bad IPv4 header")
        proto = packet[9]
        src = int.from_bytes(packet[12:16], "big")
        dst = int.from_bytes(packet[16:20], "big")
        if ((packet[6] & 0x1F) << 8) | packet[7]:
            return 4, src, dst, proto, -1, -1, length
        sport, dport = _ports(packet, ihl, proto, length)
        return 4, src, dst, proto, sport, dport, length
    if version == 6:
        if size < 40:
            raise EspError("IP packet too short")
        length = 40 + ((packet[4] << 8) | packet[5])
        if length > size:
            raise EspError("bad IPv6 header")
        src = int.from_bytes(packet[8:24], "big")
        dst = int.from_bytes(packet[24:40], "big")
        proto = packet[6]
        at = 40
        for _ in range(8):  # RFC 8200 §4: walk the extension headers to the upper layer
            if proto in (0, 43, 60):  # hop-by-hop, routing, destination options
                if at + 2 > length:
                    raise EspError("truncated IPv6 extension header")
                proto, at = packet[at], at + (packet[at + 1] + 1) * 8
            elif proto == 44:  # fragment
                if at + 8 > length:
                    raise EspError("truncated IPv6 fragment header")
                offset = ((packet[at + 2] << 8) | packet[at + 3]) >> 3
                proto, at = packet[at], at + 8
                if offset:
                    return 6, src, dst, proto, -1, -1, length
            elif proto == 51:  # AH
                if at + 2 > length:
                    raise EspError("truncated AH header")
                proto, at = packet[at], at + (packet[at + 1] + 2) * 4
            else:
                break
        else:
            raise EspError("too many IPv6 extension headers")
        if at > length:
            raise EspError("truncated IPv6 extension header")
        sport, dport = _ports(packet, at, proto, length)
        return 6, src, dst, proto, sport, dport, length
    raise EspError("not an IPv4 or IPv6 packet")
