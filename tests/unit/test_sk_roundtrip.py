"""SK/SKF seal -> open for every suite, sizing, and hostile input: typed errors only."""

import os
import struct

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from pyiked.core.crypto import encr_info, integ_info
from pyiked.core.errors import IntegrityError, InvalidSyntax, SilentDrop
from tests.helpers import fast_impls

IMPLS = fast_impls("sk")

# (encr_id, key bits, integ_id)
SUITES = [
    (20, 128, None), (20, 256, None), (19, 192, None), (18, 256, None),
    (16, 128, None), (15, 256, None), (14, 192, None),
    (28, None, None),
    (12, 128, 12), (12, 192, 13), (12, 256, 14), (12, 128, 2), (12, 256, 5), (12, 128, 8),
    (13, 128, 12), (13, 256, 5),
    (3, None, 2), (3, 192, 12),
]


@pytest.fixture(params=IMPLS, ids=[name for name, _ in IMPLS])
def sk(request):
    return request.param[1]


def make(sk, suite, **kw):
    encr, bits, integ = suite
    e = encr_info(encr, bits)
    i = integ_info(0 if e.aead else integ)
    return sk.SKCipher(encr, bits, integ, os.urandom(e.keymat_len), os.urandom(i.key_len), **kw)


def header(np=46, exchange=37, flags=0x08, mid=7):
    return os.urandom(16) + struct.pack("!BBBBII", np, 0x20, exchange, flags, mid, 0)


@pytest.mark.parametrize("suite", SUITES, ids=str)
def test_roundtrip(sk, suite):
    cipher = make(sk, suite)
    e = encr_info(suite[0], suite[1])
    assert cipher.aead == e.aead and cipher.iv_len == e.iv_len and cipher.block_size == e.block_size
    hdr = header()
    for n in (0, 1, 15, 16, 17, 300, 1400):
        plain = os.urandom(n)
        msg = cipher.seal(hdr, 41, plain)
        assert struct.unpack_from("!I", msg, 24)[0] == len(msg)  # Length patched
        assert msg[:24] == hdr[:24] and msg[28] == 41  # SK Next Payload = first inner payload
        assert struct.unpack_from("!H", msg, 30)[0] == len(msg) - 28
        assert cipher.open(msg, 28) == plain
        if e.block_size > 1:
            assert (len(msg) - 32 - e.iv_len - cipher.icv_len) % e.block_size == 0


@pytest.mark.parametrize("suite", SUITES, ids=str)
def test_any_modified_octet_fails_integrity(sk, suite):
    """Every octet is authenticated: the IKE header and SK header as AAD (RFC 5282 §5.1)
    or under the ICV (RFC 7296 §3.14), the IV, the ciphertext and the ICV itself."""
    cipher = make(sk, suite)
    msg = cipher.seal(header(), 41, b"payload chain")
    for pos in range(len(msg)):
        bad = bytearray(msg)
        bad[pos] ^= 0x01
        with pytest.raises((IntegrityError, InvalidSyntax)) as info:
            cipher.open(bytes(bad), 28)
        if pos not in (24, 25, 26, 27, 30, 31):  # length fields fail as structure first
            assert isinstance(info.value, IntegrityError) and isinstance(info.value, SilentDrop)


@pytest.mark.parametrize("suite", [(20, 256, None), (12, 128, 12)], ids=str)
def test_structural_errors(sk, suite):
    cipher = make(sk, suite)
    msg = cipher.seal(header(), 41, b"x" * 40)
    cases = [
        msg[:-1],  # Length field no longer matches
        msg[:30],  # SK header cut
        msg[:20],  # not even an IKE header
    ]
    for bad in cases:
        with pytest.raises(InvalidSyntax):
            cipher.open(bad, 28)
    with pytest.raises(InvalidSyntax):  # an offset past the message
        cipher.open(msg, len(msg))
    with pytest.raises(InvalidSyntax):  # SK not ending the message
        cipher.open(msg + b"\x00", 28)
    # a short SK payload whose lengths are consistent
    short = msg[:28 + 4 + cipher.iv_len + cipher.icv_len]
    short = short[:24] + struct.pack("!I", len(short)) + short[28:30] + struct.pack("!H", len(short) - 28) + short[32:]
    with pytest.raises(InvalidSyntax):
        cipher.open(short, 28)


def test_cbc_ciphertext_not_whole_blocks(sk):
    cipher = make(sk, (12, 128, 12))
    msg = cipher.seal(header(), 41, b"x" * 40)
    body = msg[28:] + b"\x00" * 3  # three extra octets
    bad = msg[:24] + struct.pack("!I", len(msg) + 3) + body[:2] + struct.pack("!H", len(body)) + body[4:]
    with pytest.raises(InvalidSyntax):
        cipher.open(bad, 28)


def _aead_message(key, salt, hdr, inner, iv=b"\x00" * 8):
    """A ChaCha20-Poly1305 SK message built by hand with an arbitrary inner layout."""
    sk_len = 4 + 8 + len(inner) + 16
    head = hdr[:24] + struct.pack("!IBBH", 28 + sk_len, 41, 0, sk_len)
    return head + iv + ChaCha20Poly1305(key).encrypt(salt + iv, inner, head)


def test_padding_rules(sk):
    """RFC 5282 §3 / RFC 7296 §3.14: any padding content and up to 255 octets are
    accepted; only a pad length past the plaintext is an error."""
    key, salt = os.urandom(32), os.urandom(4)
    cipher = sk.SKCipher(28, None, None, key + salt)
    hdr = header()
    payload = b"\x00\x00\x00\x08\x00\x00\x40\x0f"
    for pad in (0, 1, 7, 200, 255):
        padding = os.urandom(pad)
        msg = _aead_message(key, salt, hdr, payload + padding + bytes((pad,)))
        assert cipher.open(msg, 28) == payload
    # pad length equal to all the data before it: an empty payload chain
    assert cipher.open(_aead_message(key, salt, hdr, b"abc\x03"), 28) == b""
    for inner in (b"abc\x04", b"\xff", b"x" * 10 + b"\xff"):
        with pytest.raises(InvalidSyntax):
            cipher.open(_aead_message(key, salt, hdr, inner), 28)


def test_fragments(sk):
    cipher = make(sk, (20, 256, None))
    hdr = header(np=53, exchange=35)
    plain = os.urandom(3000)
    size = cipher.max_plaintext(1280, fragment=True)
    chunks = [plain[i:i + size] for i in range(0, len(plain), size)]
    frags = [cipher.seal_fragment(hdr, 35 if n == 1 else 0, n, len(chunks), c)
             for n, c in enumerate(chunks, 1)]
    assert all(len(f) <= 1280 for f in frags) and len(frags[0]) == 1280
    out = b""
    for n, frag in enumerate(frags, 1):
        number, total, chunk = cipher.open_fragment(frag, 28)
        assert (number, total) == (n, len(chunks))
        assert frag[28] == (35 if n == 1 else 0)  # RFC 7383 §2.5: Next Payload in fragment 1 only
        out += chunk
    assert out == plain
    # Fragment Number / Total Fragments are covered by the AAD (RFC 7383 §2.5)
    bad = bytearray(frags[0])
    bad[33] ^= 0x02  # Total Fragments low octet
    with pytest.raises((IntegrityError, InvalidSyntax)):
        cipher.open_fragment(bytes(bad), 28)
    zero_number = frags[1][:32] + b"\x00\x00" + frags[1][34:]  # Fragment Number 0
    with pytest.raises(InvalidSyntax):
        cipher.open_fragment(zero_number, 28)


def test_fragment_number_checks(sk):
    cipher = make(sk, (12, 128, 12))
    hdr = header(np=53)
    for number, total in ((0, 1), (3, 2), (1, 0)):
        with pytest.raises(ValueError):
            cipher.seal_fragment(hdr, 0, number, total, b"x")
    # a fragment whose numbers are bad on the wire is refused before any crypto
    frag = cipher.seal_fragment(hdr, 0, 2, 2, b"data")
    bad = frag[:32] + struct.pack("!HH", 3, 2) + frag[36:]
    with pytest.raises(InvalidSyntax):
        cipher.open_fragment(bad, 28)


@pytest.mark.parametrize("suite", SUITES, ids=str)
def test_max_plaintext_is_exact(sk, suite):
    cipher = make(sk, suite)
    for fragment in (False, True):
        for total in (200, 576, 1280):
            n = cipher.max_plaintext(total, fragment)
            seal = (lambda p: cipher.seal_fragment(header(np=53), 0, 1, 1, p)) if fragment else (
                lambda p: cipher.seal(header(), 41, p))
            assert len(seal(b"x" * n)) <= total
            assert len(seal(b"x" * (n + 1))) > total
    assert cipher.overhead == 28 + 4 + cipher.iv_len + 1 + cipher.icv_len
    assert cipher.fragment_overhead == cipher.overhead + 4
    with pytest.raises(ValueError):
        cipher.max_plaintext(30)


def test_ivs(sk):
    aead = make(sk, (20, 128, None))
    ivs = {aead.seal(header(), 41, b"x")[32:40] for _ in range(50)}
    assert len(ivs) == 50  # a counter under a random mask never repeats
    drawn = []
    cbc = make(sk, (12, 128, 12), random=lambda n: drawn.append(n) or os.urandom(n))
    cbc.seal(header(), 41, b"x")
    assert drawn == [16]  # RFC 7296 §3.14: a fresh random IV per message


def test_bad_construction(sk):
    with pytest.raises(ValueError):
        sk.SKCipher(20, 256, None, os.urandom(32))  # salt missing
    with pytest.raises(ValueError):
        sk.SKCipher(20, 256, 12, os.urandom(36), os.urandom(32))  # AEAD + INTEG
    with pytest.raises(ValueError):
        sk.SKCipher(12, 128, None, os.urandom(16))  # CBC without INTEG
    with pytest.raises(ValueError):
        sk.SKCipher(12, 100, 12, os.urandom(13), os.urandom(32))
    with pytest.raises(ValueError):
        sk.SKCipher(11, 0, 12, b"", os.urandom(32))  # NULL cannot protect IKE
    cipher = make(sk, (20, 128, None))
    with pytest.raises(ValueError):
        cipher.seal(b"\x00" * 27, 41, b"")
    with pytest.raises(ValueError):
        cipher.seal(header(np=53), 41, b"")  # Next Payload must already be SK


def test_repr_has_no_keys(sk):
    key = os.urandom(36)
    cipher = sk.SKCipher(20, 256, None, key)
    assert key.hex() not in repr(cipher) and "aead=True" in repr(cipher)
