"""The transform registry: lengths from the RFCs, selection rules, names."""

import pytest

from pyiked._fast import _sk_py
from pyiked.core import crypto
from pyiked.core.errors import NoProposalChosen
from pyiked.core.iana import EncrId, IntegId, KeId, PrfId, ProtocolId, TransformType

T = TransformType


@pytest.mark.parametrize(
    "encr_id,bits,key,salt,iv,block,icv,aead,name,ss",
    [
        (EncrId.AES_CBC, 128, 16, 0, 16, 16, 0, False, "aes-128", "AES_CBC_128"),
        (EncrId.AES_CBC, 256, 32, 0, 16, 16, 0, False, "aes-256", "AES_CBC_256"),
        (EncrId.AES_CTR, 192, 24, 4, 8, 1, 0, False, "aes-192-ctr", "AES_CTR_192"),  # RFC 5930
        (EncrId.AES_GCM_16, 256, 32, 4, 8, 1, 16, True, "aes-256-gcm", "AES_GCM_16_256"),  # RFC 5282
        (EncrId.AES_GCM_12, 128, 16, 4, 8, 1, 12, True, "aes-128-gcm-12", "AES_GCM_12_128"),
        (EncrId.AES_GCM_8, 192, 24, 4, 8, 1, 8, True, "aes-192-gcm-8", "AES_GCM_8_192"),
        (EncrId.AES_CCM_16, 128, 16, 3, 8, 1, 16, True, "aes-128-ccm", "AES_CCM_16_128"),
        (EncrId.CHACHA20_POLY1305, None, 32, 4, 8, 1, 16, True, "chacha20-poly1305",
         "CHACHA20_POLY1305_256"),  # RFC 7634
        (EncrId.TRIPLE_DES, 0, 24, 0, 8, 8, 0, False, "3des", "3DES_CBC"),
    ],
)
def test_encr_info(encr_id, bits, key, salt, iv, block, icv, aead, name, ss):
    info = crypto.encr_info(encr_id, bits)
    assert (info.key_len, info.salt_len, info.keymat_len, info.iv_len, info.block_size, info.icv_len) == (
        key, salt, key + salt, iv, block, icv)
    assert info.aead is aead and info.name == name and info.ss_name == ss


def test_key_length_rules():
    for bad in ((EncrId.AES_CBC, None), (EncrId.AES_CBC, 0), (EncrId.AES_CBC, 512),
                (EncrId.AES_GCM_16, 64), (EncrId.CHACHA20_POLY1305, 128), (EncrId.TRIPLE_DES, 128),
                (EncrId.DES, None), (EncrId.CAMELLIA_CBC, 128), (99, 128)):
        with pytest.raises(NoProposalChosen):
            crypto.encr_info(*bad)
        assert not crypto.supported(T.ENCR, *bad, allow_legacy=True)
    # fixed-length ciphers: attribute absent, 0, or their own length
    for bits in (None, 0, 256):
        assert crypto.encr_info(EncrId.CHACHA20_POLY1305, bits).key_bits == 256


@pytest.mark.parametrize("prf_id,key,out,name", [
    (PrfId.HMAC_SHA1, 20, 20, "hmac-sha1"), (PrfId.HMAC_SHA2_256, 32, 32, "hmac-sha2-256"),
    (PrfId.HMAC_SHA2_384, 48, 48, "hmac-sha2-384"), (PrfId.HMAC_SHA2_512, 64, 64, "hmac-sha2-512"),
    (PrfId.AES128_XCBC, 16, 16, "aes-xcbc"), (PrfId.AES128_CMAC, 16, 16, "aes-cmac"),
])
def test_prf_info(prf_id, key, out, name):
    info = crypto.prf_info(prf_id)
    assert (info.key_len, info.out_len, info.name, info.legacy) == (key, out, name, False)


@pytest.mark.parametrize("integ_id,key,icv", [
    (IntegId.HMAC_SHA1_96, 20, 12), (IntegId.HMAC_SHA2_256_128, 32, 16),
    (IntegId.HMAC_SHA2_384_192, 48, 24), (IntegId.HMAC_SHA2_512_256, 64, 32),
    (IntegId.AES_XCBC_96, 16, 12), (IntegId.AES_CMAC_96, 16, 12), (IntegId.NONE, 0, 0),
])
def test_integ_info(integ_id, key, icv):
    info = crypto.integ_info(integ_id)
    assert (info.key_len, info.icv_len) == (key, icv)


@pytest.mark.parametrize("group,public,response,kem,legacy,name,ss", [
    (KeId.MODP1024, 128, 128, False, True, "modp1024", "MODP_1024"),
    (KeId.MODP1536, 192, 192, False, True, "modp1536", "MODP_1536"),
    (KeId.MODP2048, 256, 256, False, False, "modp2048", "MODP_2048"),
    (KeId.MODP8192, 1024, 1024, False, False, "modp8192", "MODP_8192"),
    (KeId.ECP256, 64, 64, False, False, "ecp256", "ECP_256"),
    (KeId.ECP521, 132, 132, False, False, "ecp521", "ECP_521"),
    (KeId.BRAINPOOL_P384R1, 96, 96, False, False, "brainpool384", "ECP_384_BP"),
    (KeId.CURVE25519, 32, 32, False, False, "curve25519", "CURVE_25519"),
    (KeId.CURVE448, 56, 56, False, False, "curve448", "CURVE_448"),
    (KeId.ML_KEM_768, 1184, 1088, True, False, "mlkem768", "ML_KEM_768"),
    (KeId.ML_KEM_1024, 1568, 1568, True, False, "mlkem1024", "ML_KEM_1024"),
])
def test_ke_info(group, public, response, kem, legacy, name, ss):
    info = crypto.ke_info(group)
    assert (info.public_len, info.response_len, info.kem, info.legacy, info.name, info.ss_name) == (
        public, response, kem, legacy, name, ss)


def test_legacy_needs_explicit_enabling():
    for ttype, tid, bits in ((T.ENCR, EncrId.TRIPLE_DES, None), (T.KE, KeId.MODP1024, None),
                             (T.KE, KeId.MODP1536, None), (T.PRF, PrfId.HMAC_MD5, None),
                             (T.INTEG, IntegId.HMAC_MD5_96, None)):
        assert not crypto.supported(ttype, tid, bits)
        assert crypto.supported(ttype, tid, bits, allow_legacy=True)
    assert crypto.supported(T.KE, KeId.MODP2048)
    assert crypto.supported(T.ENCR, EncrId.AES_GCM_16, 256)


def test_protocol_rules():
    assert not crypto.supported(T.ENCR, EncrId.NULL, 0)  # ESP only
    assert crypto.supported(T.ENCR, EncrId.NULL, 0, protocol=ProtocolId.ESP)
    assert crypto.supported(T.ENCR, EncrId.NULL_AUTH_AES_GMAC, 128, protocol=ProtocolId.ESP)
    assert not crypto.supported(T.ENCR, EncrId.AES_CBC, 128, protocol=ProtocolId.AH)
    assert not crypto.supported(T.PRF, PrfId.HMAC_SHA2_256, protocol=ProtocolId.ESP)
    assert not crypto.supported(T.KE, KeId.NONE)  # the IKE SA needs a key exchange
    assert crypto.supported(T.KE, KeId.NONE, protocol=ProtocolId.ESP)  # no PFS
    assert crypto.supported(T.ADDKE1, KeId.NONE)  # RFC 9370: optional additional KE
    assert crypto.supported(T.ADDKE3, KeId.ML_KEM_768)
    assert crypto.supported(T.ESN, 1, protocol=ProtocolId.ESP)
    assert crypto.supported(T.ESN, 0, protocol=ProtocolId.ESP)
    assert not crypto.supported(T.ESN, 2, protocol=ProtocolId.ESP)
    assert not crypto.supported(T.ESN, 1)  # no ESN transform in an IKE proposal
    assert not crypto.supported(99, 1)
    assert not crypto.supported(T.KE, KeId.ML_KEM_512)  # not in cryptography 48


def test_names():
    assert crypto.transform_name(T.ENCR, EncrId.AES_GCM_16, 256) == "aes-256-gcm"
    assert crypto.transform_name(T.ENCR, EncrId.AES_GCM_16, 256, style="strongswan") == "AES_GCM_16_256"
    assert crypto.transform_name(T.PRF, PrfId.HMAC_SHA2_256, style="strongswan") == "PRF_HMAC_SHA2_256"
    assert crypto.transform_name(T.KE, KeId.CURVE25519) == "curve25519"
    assert crypto.transform_name(T.KE, KeId.NONE) == "none"
    assert crypto.transform_name(T.ESN, 1) == "esn"
    assert crypto.transform_name(T.ESN, 0, style="strongswan") == "NO_EXT_SEQ"
    assert crypto.transform_name(T.ENCR, 250, 128) == "1-250"


def test_sk_tables_agree_with_the_registry():
    """_fast.sk keeps its own copy of the cipher facts (it sits below core): same numbers."""
    for encr_id, (kind, allowed, salt, iv, block, icv) in _sk_py._CIPHERS.items():
        for bits in allowed:
            info = crypto.encr_info(encr_id, bits)
            assert (info.salt_len, info.iv_len, info.block_size, info.icv_len) == (salt, iv, block, icv)
            assert info.aead == (kind in (_sk_py._KIND_GCM, _sk_py._KIND_CCM, _sk_py._KIND_CHACHA))
            assert info.ike
    for integ_id, (_, _, key_len, icv) in _sk_py._INTEGS.items():
        info = crypto.integ_info(integ_id)
        assert (info.key_len, info.icv_len) == (key_len, icv)
    ike_encr = {e for e in crypto.ENCR_IDS if crypto.encr_info(e, 128 if e not in (3, 11, 28) else None).ike}
    assert ike_encr == set(_sk_py._CIPHERS)
