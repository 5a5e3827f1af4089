"""Key schedule rules and the NIST CAVP SP 800-135 IKEv2 KDF vector.

The CAVP vector is the first SHA-1 case of the CAVS 'ikev2' file ([DKM length = 1056],
[Child SA DKM length = 1056]), with the outputs as libreswan's CAVS driver records them
(programs/ikev2_kdf_cavs: SKEYSEED, DKM, DKM(Child SA), DKM(Child SA D-H), SKEYSEED(Rekey)).
"""

import pickle

import pytest

from pyiked.core import keys
from pyiked.core.errors import NoProposalChosen

H = bytes.fromhex

CAVP = {
    "gir": H("4b2c1f971981a8ad8d0abeafabf38cf75fc8349c148142465ed9c8b516b8be52"),
    "gir_new": H("863f3c9d06efd39d2b907b97f8699e5dd5251ef64a2a176f36ee40c87d4f9330"),
    "ni": H("32b50d5f4a3763f3"),
    "nr": H("9206a04b26564cb1"),
    "spi_i": H("34c9e7c188868785"),
    "spi_r": H("3ff77d760d2b2199"),
    "skeyseed": H("a9a7b222b59f8f48645f28a1db5b5f5d7479cba7"),
    "dkm": H(
        "a14293677cc80ff8f9cc0eee30d895da9d8f405666e30ef0dfcb63c634a46002a2a63080e514a062768b"
        "76606f9fa5e992204fc5a670bde3f10d6b027113936a5c55b648a194ae587b0088d52204b702c979fa28"
        "0870d2ed41efa9c549fd11198af1670b143d384bd275c5f594cf266b05ebadca855e4249520a441a8115"
        "7435a7a56cc4"
    ),
    "dkm_child": H(
        "8059e3ee8810e6c3a91bc8bcd2a7a41151b8d0e6ae239c7b38093ad85ef4c5811a8e7b5d1cdabd9560b2"
        "d5e092d1f24e2d4b85eccdf0ad0dc9abd94b51ee71814ca6dbc8bb51b6309f5b9545c7eb35cf5580b1e5"
        "21a8fe20754a2d883ba0c2cf285f524aea6545b33106bc03e614296d319d41d4b50b3f510b1c0a22f3e6"
        "64994d234cb4"
    ),
    "dkm_child_dh": H(
        "bb43244c1860ad65ee1e211ffe8bb3661750c8f89cb9f547df7f4fa61d37301628190e38c66232eab4b3"
        "ab14c400a5197dd3730ed4820a8a10394d51e1c0400052f63ebd36b0e7ef53aaed31eba4a5080d7d4b56"
        "66023a8bbb5ffb7857240f9a05884d1b7d2f933708450b7b3288f1fc863ab49fa901227cffc06e27899c"
        "7054d56fd74c"
    ),
    "skeyseed_rekey": H("63e81194946ebd05df7df5ebf5d8750056bf1f1d"),
}
SHA1 = 2


def test_cavp_ikev2_kdf_sha1():
    v = CAVP
    skeyseed = keys.skeyseed(SHA1, v["ni"], v["nr"], v["gir"])
    assert skeyseed == v["skeyseed"]
    dkm = keys.prf_plus(SHA1, skeyseed, v["ni"] + v["nr"] + v["spi_i"] + v["spi_r"], 132)
    assert dkm == v["dkm"]
    sk_d = dkm[:20]
    assert keys.prf_plus(SHA1, sk_d, v["ni"] + v["nr"], 132) == v["dkm_child"]
    assert keys.prf_plus(SHA1, sk_d, v["gir_new"] + v["ni"] + v["nr"], 132) == v["dkm_child_dh"]
    # RFC 7296 §2.18: prf(SK_d (old), g^ir (new) | Ni | Nr)
    assert keys.rekey_skeyseed(SHA1, sk_d, v["gir_new"], v["ni"], v["nr"]) == v["skeyseed_rekey"]


def test_cavp_through_derive_ike_keys_and_child_keymat():
    v = CAVP
    # AES-CBC-256 + HMAC-SHA1-96 with PRF-HMAC-SHA1: 20+20+20+32+32+20+20 = 164 > 132, so
    # check the prefix the vector covers.
    ike = keys.derive_ike_keys(SHA1, 12, 256, 2, v["skeyseed"], v["ni"], v["nr"], v["spi_i"], v["spi_r"])
    joined = ike.sk_d + ike.sk_ai + ike.sk_ar + ike.sk_ei + ike.sk_er + ike.sk_pi + ike.sk_pr
    assert [len(getattr(ike, n)) for n in IKE_NAMES] == [20, 20, 20, 32, 32, 20, 20]
    assert joined[:132] == v["dkm"]
    # ESP AES-CBC-256 + HMAC-SHA2-256-128: (32 + 32) * 2 = 128 octets, i->r first
    for shared, expected in ((None, v["dkm_child"]), (v["gir_new"], v["dkm_child_dh"])):
        parts = keys.child_keymat(SHA1, ike.sk_d, v["ni"], v["nr"], shared,
                                  encr_id=12, encr_key_bits=256, integ_id=12)
        assert [len(p) for p in parts] == [32, 32, 32, 32]
        assert b"".join(parts) == expected[:128]


IKE_NAMES = ("sk_d", "sk_ai", "sk_ar", "sk_ei", "sk_er", "sk_pi", "sk_pr")


def test_xcbc_and_cmac_skeyseed_use_64_bits_of_each_nonce():
    """RFC 7296 §2.14: for PRFs with a fixed key size only the first 64 bits of Ni and Nr
    are the key; other PRFs take the whole Ni | Nr."""
    ni, nr, g = bytes(range(32)), bytes(range(100, 132)), b"shared"
    for prf_id in (4, 8):
        assert keys.skeyseed(prf_id, ni, nr, g) == keys.prf(prf_id, ni[:8] + nr[:8], g)
        assert keys.skeyseed(prf_id, ni, nr, g) != keys.prf(prf_id, ni + nr, g)
    assert keys.skeyseed(5, ni, nr, g) == keys.prf(5, ni + nr, g)


def test_xcbc_key_lengths():
    ike = keys.derive_ike_keys(4, 13, 128, 5, b"s" * 16, b"n" * 16, b"m" * 16, b"i" * 8, b"r" * 8)
    # SK_d/SK_pi/SK_pr: 128-bit PRF key; SK_a: XCBC-96 key; SK_e: AES-128 + 4-octet nonce
    assert [len(getattr(ike, n)) for n in IKE_NAMES] == [16, 16, 16, 20, 20, 16, 16]


def test_rekey_uses_the_old_prf():
    old_sk_d, g, ni, nr = b"D" * 64, b"g" * 32, b"i" * 32, b"r" * 32
    assert keys.rekey_skeyseed(7, old_sk_d, g, ni, nr) == keys.prf(7, old_sk_d, g + ni + nr)
    assert keys.rekey_skeyseed(7, old_sk_d, g, ni, nr) != keys.rekey_skeyseed(5, old_sk_d, g, ni, nr)
    # RFC 9370 §2.2.4: SK(0) | Ni | Nr | SK(1) | ... | SK(n)
    assert keys.rekey_skeyseed(5, old_sk_d, g, ni, nr, additional=(b"A", b"B")) == keys.prf(
        5, old_sk_d, g + ni + nr + b"AB"
    )


def test_child_keymat_with_additional_key_exchanges():
    parts = keys.child_keymat(5, b"d" * 32, b"i" * 16, b"r" * 16, b"g" * 32, encr_id=20,
                              encr_key_bits=128, integ_id=None, additional=(b"k1", b"k2"))
    assert b"".join(parts) == keys.prf_plus(5, b"d" * 32, b"g" * 32 + b"i" * 16 + b"r" * 16 + b"k1k2", 40)
    assert [len(p) for p in parts] == [20, 0, 20, 0]


def test_additional_ke_update_rfc9370():
    """RFC 9370 §2.2.2: SKEYSEED(n) = prf(SK_d(n-1), SK(n) | Ni | Nr), then the §2.14 prf+."""
    sk_d, sk_n, ni, nr, si, sr = b"d" * 32, b"m" * 32, b"i" * 32, b"r" * 32, b"I" * 8, b"R" * 8
    got = keys.additional_ke_update(5, 20, 256, None, sk_d, sk_n, ni, nr, si, sr)
    seed_n = keys.prf(5, sk_d, sk_n + ni + nr)
    assert got == keys.derive_ike_keys(5, 20, 256, None, seed_n, ni, nr, si, sr)
    assert got.sk_d != sk_d


def test_psk_auth_definition():
    octets = b"octets"
    assert keys.psk_auth(6, b"psk", octets) == keys.prf(6, keys.prf(6, b"psk", b"Key Pad for IKEv2"), octets)
    assert keys.KEY_PAD == b"Key Pad for IKEv2" and len(keys.KEY_PAD) == 17


def test_ike_keys_never_show_secrets():
    ike = keys.derive_ike_keys(5, 12, 128, 12, b"\xab" * 32, b"n" * 16, b"m" * 16, b"i" * 8, b"r" * 8)
    text = repr(ike) + str(ike)
    for name in IKE_NAMES:
        secret = getattr(ike, name)
        assert secret.hex() not in text and repr(secret) not in text
    assert "32 octets" in text
    with pytest.raises(TypeError):
        pickle.dumps(ike)


def test_unsupported_transforms_raise_no_proposal_chosen():
    with pytest.raises(NoProposalChosen):
        keys.derive_ike_keys(5, 12, 100, 12, b"s" * 32, b"n", b"m", b"i" * 8, b"r" * 8)
    with pytest.raises(NoProposalChosen):
        keys.child_keymat(5, b"d", b"n", b"m", encr_id=99, encr_key_bits=128, integ_id=12)
