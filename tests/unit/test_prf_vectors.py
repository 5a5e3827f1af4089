"""prf / prf+ against published vectors, in both _fast.prf implementations.

HMAC-SHA2: RFC 4231 §4.2, §4.3, §4.7. AES-XCBC-MAC: RFC 3566 §4.6 test cases 1-7.
AES-XCBC-PRF-128: RFC 4434 §2.1 (key lengths 16, 10, 18). AES-CMAC-PRF-128: RFC 4615 §4.
"""

import hmac

import pytest

from tests.helpers import fast_impls

IMPLS = fast_impls("prf")
H = bytes.fromhex
M20 = bytes(range(20))
K16 = bytes(range(16))


@pytest.fixture(params=IMPLS, ids=[name for name, _ in IMPLS])
def prf(request):
    return request.param[1]


RFC4231 = [
    # (key, data, prf_id, expected)
    (b"\x0b" * 20, b"Hi There", 5, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"\x0b" * 20, b"Hi There", 6,
     "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6"),
    (b"\x0b" * 20, b"Hi There", 7,
     "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
     "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"),
    (b"Jefe", b"what do ya want for nothing?", 5,
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"Jefe", b"what do ya want for nothing?", 6,
     "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649"),
    (b"Jefe", b"what do ya want for nothing?", 7,
     "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
     "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"),
    # §4.7: a key longer than the hash block is hashed first
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First", 5,
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
]


@pytest.mark.parametrize("key,data,prf_id,expected", RFC4231)
def test_hmac_sha2_rfc4231(prf, key, data, prf_id, expected):
    assert prf.prf(prf_id, key, data) == H(expected)


RFC3566 = [
    (b"", "75f0251d528ac01c4573dfd584d79f29"),
    (bytes(range(3)), "5b376580ae2f19afe7219ceef172756f"),
    (bytes(range(16)), "d2a246fa349b68a79998a4394ff7a263"),
    (bytes(range(20)), "47f51b4564966215b8985c63055ed308"),
    (bytes(range(32)), "f54f0ec8d2b9f3d36807734bd5283fd4"),
    (bytes(range(34)), "becbb3bccdb518a30677d5481fb6b4d8"),
    (bytes(1000), "f0dafee895db30253761103b5d84528f"),
]


@pytest.mark.parametrize("data,expected", RFC3566)
def test_aes_xcbc_mac_rfc3566(prf, data, expected):
    assert prf.xcbc_mac(K16, data) == H(expected)
    # AES-XCBC-MAC-96 is its first 96 bits; the PRF with a 16-octet key is the MAC itself
    assert prf.prf(4, K16, data) == H(expected)


@pytest.mark.parametrize(
    "key,expected",
    [
        (K16, "47f51b4564966215b8985c63055ed308"),
        (bytes(range(10)), "0fa087af7d866e7653434e602fdde835"),  # zero-padded to 128 bits
        (K16 + H("edcb"), "8cd3c93ae598a9803006ffb67c40e9e4"),  # shortened by XCBC under 0^128
    ],
)
def test_aes_xcbc_prf_128_rfc4434(prf, key, expected):
    assert prf.prf(4, key, M20) == H(expected)


@pytest.mark.parametrize(
    "key,expected",
    [
        (K16 + H("edcb"), "84a348a4a45d235babfffc0d2b4da09a"),
        (K16, "980ae87b5f4c9c5214f5b6a8455e4c2d"),
        (bytes(range(10)), "290d9e112edb09ee141fcf64c0b72f3d"),
    ],
)
def test_aes_cmac_prf_128_rfc4615(prf, key, expected):
    assert prf.prf(8, key, M20) == H(expected)


def test_xcbc_mac_needs_128_bit_key(prf):
    with pytest.raises(ValueError):
        prf.xcbc_mac(bytes(15), b"x")


@pytest.mark.parametrize("prf_id", [1, 2, 4, 5, 6, 7, 8])
@pytest.mark.parametrize("length", [0, 1, 15, 16, 17, 64, 100, 257])
def test_prf_plus_is_the_rfc7296_construction(prf, prf_id, length):
    """RFC 7296 §2.13: T1 = prf(K, S | 0x01), Tn = prf(K, Tn-1 | S | n), built here from
    prf() calls one block at a time."""
    key, seed = b"k" * 20, b"seed material"
    out, t, n = b"", b"", 1
    while len(out) < length:
        t = prf.prf(prf_id, key, t + seed + bytes((n,)))
        out += t
        n += 1
    assert prf.prf_plus(prf_id, key, seed, length) == out[:length]


def test_prf_plus_with_hmac_matches_stdlib(prf):
    t1 = hmac.digest(b"K", b"S\x01", "sha256")
    t2 = hmac.digest(b"K", t1 + b"S\x02", "sha256")
    assert prf.prf_plus(5, b"K", b"S", 50) == (t1 + t2)[:50]


def test_prf_plus_counter_is_one_octet(prf):
    assert len(prf.prf_plus(5, b"K", b"S", 255 * 32)) == 255 * 32
    with pytest.raises(ValueError):
        prf.prf_plus(5, b"K", b"S", 255 * 32 + 1)
    with pytest.raises(ValueError):
        prf.prf_plus(4, b"K", b"S", 255 * 16 + 1)


def test_split_and_prf_plus_split(prf):
    keymat = bytes(range(40))
    assert prf.split(keymat, (4, 0, 16, 20)) == (keymat[:4], b"", keymat[4:20], keymat[20:40])
    with pytest.raises(ValueError):
        prf.split(keymat, (30, 11))
    pieces = prf.prf_plus_split(5, b"K", b"S", (32, 0, 36, 5))
    assert b"".join(pieces) == prf.prf_plus(5, b"K", b"S", 73)
    assert [len(p) for p in pieces] == [32, 0, 36, 5]


def test_unknown_prf(prf):
    for call in (lambda: prf.prf(3, b"k", b"d"), lambda: prf.prf_plus(99, b"k", b"s", 10)):
        with pytest.raises(ValueError):
            call()
    assert prf.out_len(5) == 32
    with pytest.raises(ValueError):
        prf.out_len(3)
