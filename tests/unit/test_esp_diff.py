"""`_fast.esp`: compiled and pure twins give the same output and the same error for the same
input (hypothesis), every transform round-trips, the AES-CBC path equals a textbook
per-packet CBC computation, and lifetimes raise soft/hard expiry."""

import struct

import pytest
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyiked.core.errors import EspError, IntegrityError
from tests.helpers import both_impls, fast_impls

IMPLS = fast_impls("esp")
impls = pytest.mark.parametrize("impl", [m for _, m in IMPLS], ids=[k for k, _ in IMPLS])

# (encr id, encr key length incl. salt, integ id, integ key length)
SUITES = [
    (20, 36, 0, 0),  # AES-256-GCM-16
    (20, 20, 0, 0),  # AES-128-GCM-16
    (19, 28, 0, 0),  # AES-192-GCM-12
    (18, 20, 0, 0),  # AES-128-GCM-8
    (28, 36, 0, 0),  # ChaCha20-Poly1305
    (12, 16, 12, 32),  # AES-128-CBC + HMAC-SHA2-256-128
    (12, 32, 13, 48),  # AES-256-CBC + HMAC-SHA2-384-192
    (12, 24, 14, 64),  # AES-192-CBC + HMAC-SHA2-512-256
    (12, 16, 2, 20),  # AES-128-CBC + HMAC-SHA1-96
]
ICV = {20: 16, 19: 12, 18: 8, 28: 16, 12: None}
CBC_ICV = {12: 16, 13: 24, 14: 32, 2: 12}
HASH = {12: hashes.SHA256, 13: hashes.SHA384, 14: hashes.SHA512, 2: hashes.SHA1}


def make(impl, suite, spi=0x1000, esn=False, window=64, seed=1):
    encr_id, ek, integ_id, ik = suite
    key = bytes((seed + i) % 256 for i in range(ek))
    ikey = bytes((seed * 7 + i) % 256 for i in range(ik))
    return impl.EspSA(spi, encr_id, key, integ_id, ikey, esn=esn, replay_window=window)


@impls
@pytest.mark.parametrize("suite", SUITES, ids=[f"{s[0]}-{s[1]}-{s[2]}" for s in SUITES])
@pytest.mark.parametrize("esn", [False, True])
def test_round_trip_and_overhead(impl, suite, esn):
    out, inb = make(impl, suite, esn=esn), make(impl, suite, esn=esn)
    block = 16 if suite[0] == 12 else 4
    icv = ICV[suite[0]] or CBC_ICV[suite[2]]
    iv = 16 if suite[0] == 12 else 8
    for size in (0, 1, 2, 3, 14, 15, 16, 17, 64, 1400):
        inner = bytes(range(size % 256)) * (size // 256 + 1)
        inner = inner[:size]
        packet = out.encap(inner, 41)
        body = len(packet) - 8 - iv - icv
        assert body % block == 0 and body - (size + 2) < block  # RFC 4303 §2.4: minimal padding
        assert inb.decap(packet) == (41, inner)
    assert out.packet_count == inb.packet_count == 10


@impls
@pytest.mark.parametrize("integ", [12, 13, 14, 2])
@pytest.mark.parametrize("esn", [False, True])
def test_cbc_matches_textbook_cbc_hmac(impl, integ, esn):
    """RFC 3602 + RFC 4868 computed from scratch for every packet: fresh CBC context, HMAC
    over SPI | Seq | IV | ciphertext (| Seq high with ESN, RFC 4303 §2.2.1)."""
    suite = (12, 16, integ, {12: 32, 13: 48, 14: 64, 2: 20}[integ])
    sa = make(impl, suite, esn=esn)
    key = bytes((1 + i) % 256 for i in range(16))
    ikey = bytes((7 + i) % 256 for i in range(suite[3]))
    sa.seq = 0xFFFFFFFE if esn else 0
    for n in range(6):
        inner = bytes([n]) * (30 + 17 * n)
        iv = bytes([0xA0 + n]) * 16
        packet = sa.encap(inner, 4, iv=iv)
        seq = sa.seq
        padlen = (16 - (len(inner) + 2) % 16) % 16
        plain = inner + bytes(range(1, padlen + 1)) + bytes([padlen, 4])
        enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        ct = enc.update(plain) + enc.finalize()
        head = struct.pack(">II", 0x1000, seq & 0xFFFFFFFF)
        mac = hmac.HMAC(ikey, HASH[integ]())
        mac.update(head + iv + ct + (struct.pack(">I", seq >> 32) if esn else b""))
        assert packet == head + iv + ct + mac.finalize()[:CBC_ICV[integ]]


@impls
@pytest.mark.parametrize("plaintext,error", [
    (b"abc\x01\x02\x03\x03\x04", None),  # 3 + 3 + 2: the default padding
    (b"abc\x09\x09\x09\x03\x04", "padding is not 1, 2, 3"),  # RFC 4303 §2.4
    (b"ab\x01\x02\x09\x04", "pad length beyond the payload"),
    (b"\x04", "too short"),
    (b"", "too short"),
])
def test_trailer_checks_after_a_good_icv(impl, plaintext, error):
    """ESP packets sealed by hand with AES-GCM (RFC 4106): the ICV is right, the trailer
    is not."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key = bytes((1 + i) % 256 for i in range(36))
    iv = struct.pack(">Q", 1)
    head = struct.pack(">II", 0x1000, 1)
    packet = head + iv + AESGCM(key[:32]).encrypt(key[32:] + iv, plaintext, head)
    sa = make(impl, SUITES[0])
    if error is None:
        assert sa.decap(packet) == (4, b"abc")
    else:
        with pytest.raises(EspError, match=error):
            sa.decap(packet)


@impls
def test_lifetimes_raise_soft_then_hard(impl):
    out, inb = make(impl, SUITES[0]), make(impl, SUITES[0])
    out.set_limits(soft_bytes=1000, hard_bytes=2000)
    inb.set_limits(soft_packets=3, hard_packets=5)
    for i in range(4):
        inb.decap(out.encap(bytes(300), 4))
        assert out.take_expire() == (1 if i == 3 else 0)  # 1200 bytes after the 4th
        assert inb.take_expire() == (1 if i == 2 else 0)  # 3 packets after the 3rd
    inb.decap(out.encap(bytes(300), 4))  # 5 packets in, 1500 bytes out
    assert inb.take_expire() == 2 and inb.state == 2
    with pytest.raises(EspError, match="hard lifetime"):
        inb.decap(out.encap(bytes(300), 4))  # 1800 bytes out
    assert out.take_expire() == 0
    out.encap(bytes(300), 4)  # 2100: this packet still goes, the SA is then dead
    assert out.take_expire() == 2
    assert out.take_expire() == 0  # reported once
    with pytest.raises(EspError):
        out.encap(b"", 4)


@impls
def test_limits_set_below_the_counters_fire_at_once(impl):
    sa = make(impl, SUITES[0])
    sa.encap(bytes(100), 4)
    sa.set_limits(hard_bytes=50)
    assert sa.take_expire() == 2  # soft and hard at once: hard wins


@impls
def test_constructor_refuses_bad_parameters(impl):
    from pyiked.core.errors import CryptoUnavailable

    with pytest.raises(CryptoUnavailable):
        impl.EspSA(0x1000, 3, bytes(24), 12, bytes(32))  # 3DES: kernel backend only
    with pytest.raises(CryptoUnavailable):
        impl.EspSA(0x1000, 20, bytes(36), 12, bytes(32))  # AEAD with an integrity key
    with pytest.raises(CryptoUnavailable):
        impl.EspSA(0x1000, 12, bytes(16), 5, bytes(16))  # AES-XCBC: kernel backend only
    with pytest.raises(ValueError):
        impl.EspSA(0x1000, 20, bytes(17), 0, b"")
    with pytest.raises(ValueError):
        impl.EspSA(0, 20, bytes(36), 0, b"")
    with pytest.raises(ValueError):
        impl.EspSA(0x1000, 12, bytes(16), 12, bytes(31))


# -- compiled vs pure ---------------------------------------------------------------------

def _outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except (EspError, IntegrityError) as exc:
        return ("error", type(exc).__name__, exc.reason)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    suite=st.sampled_from(SUITES),
    esn=st.booleans(),
    start=st.integers(0, 0xFFFFFFFF + 5),
    inners=st.lists(st.binary(max_size=80), min_size=1, max_size=5),
    mutations=st.lists(st.tuples(st.integers(0, 200), st.integers(1, 255)), max_size=3),
    cut=st.integers(0, 120),
)
def test_twins_agree_on_encap_and_decap(suite, esn, start, inners, mutations, cut):
    py, c = both_impls("esp")
    if not esn:
        start &= 0xFFFFFFFF
        start = min(start, 0xFFFFFFFE - len(inners))
    senders = [make(m, suite, esn=esn) for m in (py, c)]
    receivers = [make(m, suite, esn=esn) for m in (py, c)]
    for s, r in zip(senders, receivers):
        s.seq = start
        r.replay.top = start
    for n, inner in enumerate(inners):
        iv = bytes([n]) * (16 if suite[0] == 12 else 8)
        packets = [s.encap(inner, 4, iv) for s in senders]
        assert packets[0] == packets[1]
        packet = bytearray(packets[0])
        for at, xor in mutations:
            if at < len(packet):
                packet[at] ^= xor
        variants = [bytes(packet), packets[0][:cut], packets[0]]
        for v in variants:
            assert _outcome(receivers[0].decap, v) == _outcome(receivers[1].decap, v)
        assert receivers[0].replay.top == receivers[1].replay.top
        assert receivers[0].replay.bitmap == receivers[1].replay.bitmap


@settings(max_examples=150, deadline=None)
@given(
    size=st.sampled_from([0, 32, 64, 100, 1024]),
    esn=st.booleans(),
    top=st.integers(0, (1 << 64) - 1),
    ops=st.lists(st.integers(0, 0xFFFFFFFF), max_size=30),
)
def test_twins_agree_on_the_replay_window(size, esn, top, ops):
    py, c = both_impls("esp")
    wins = [m.ReplayWindow(size, esn) for m in (py, c)]
    for w in wins:
        w.top = top if esn else top & 0xFFFFFFFF
    for seq_low in ops:
        outcomes = []
        for w in wins:
            try:
                seq = w.check(seq_low)
                w.update(seq)
                outcomes.append(("ok", seq, w.top, w.bitmap))
            except EspError as exc:
                outcomes.append(("error", type(exc).__name__, exc.reason))
        assert outcomes[0] == outcomes[1]


@settings(max_examples=300, deadline=None)
@given(packet=st.binary(max_size=120))
def test_twins_agree_on_packet_flow(packet):
    py, c = both_impls("esp")
    assert _outcome(py.packet_flow, packet) == _outcome(c.packet_flow, packet)


@settings(max_examples=200, deadline=None)
@given(suite=st.sampled_from(SUITES), esn=st.booleans(), body=st.binary(max_size=200))
def test_junk_with_a_valid_spi_raises_only_typed_errors(suite, esn, body):
    for _, impl in IMPLS:
        sa = make(impl, suite, esn=esn)
        try:
            sa.decap(struct.pack(">I", 0x1000) + body)
        except (EspError, IntegrityError):
            pass
