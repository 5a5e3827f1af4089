"""ML-KEM-768/1024 key exchange (FIPS 203; IANA KE IDs 36/37 for IKEv2).

Known answers: C2SP Wycheproof testvectors_v1/mlkem_768_test.json tcId 1 (from C2SP CCTV
"strcmp", a FIPS 203 final vector): from the 64-octet seed d | z the encapsulation key is
EK, and decapsulating the published ciphertext C gives K (the implicit-rejection output,
which an implementation comparing with strcmp() would get wrong). Encapsulation-key
checks follow FIPS 203 §7.2: the type check (length) and the modulus check (every 12-bit
coefficient below q = 3329).
"""

import pytest

from pyiked.core.errors import InvalidSyntax
from pyiked.core.ke import KeyExchange

H = bytes.fromhex
Q = 3329

SEED = H("cbfc4405d1b2a3a386c94c25e0f2d5f5ee92cb0388ff4d6aa04223086d51c3fd24752da14c9fc3b8ae0d9e4a8b1016b8d8fc69e229c03ea2ef08a4ae0cffc37f")
EK = H(
    "8b9a7354e8c1c17a9898f96caf99bba1c625ae0983c4d26e60c12f59bc25d756182b17979e713fff129e6c33"
    "6a2317770380858129cb91a902ea5455ca076c20e4158f393aa2783053d8acf92c3286a10436d72af3e8903c"
    "e22f8cbab18b1309aca205aa8a3da45807e5b60e6967a640a713a5b81b0d82bc406934e3c88910cc06f09a68"
    "bce991009bb56ae233296218ff5baf1f475390b8b7494a4e083645985437f2495a073222fea058e167203415"
    "1a2e14c2cbcb4ad9068c8e7bcb02886c4087c14bd8823ec66393fb2e12326b38e655dcab1c13cb2931358715"
    "c8be5153293229cc994a5702b7295a6a4a73249ac5a30a32a6b91dca768c177d8fa59054e548bee40257db69"
    "62a83b64ec6de0d3be7b1812c5d99e7a38cf54eaa8413aa0bd02bf374461f29c2b6aea56f7d33e10dbbc75bb"
    "1bf6b555213aac33e652443a186a618b6e9a293919693f1673ea159d0ee52c92d53e9a5cbd5f4c44419b5493"
    "f0286efcb9b5a2ad56a713c4f61ed431aa987805a90475391ccd4c7a28d884bf1a926b7675b9208897a89a63"
    "84c154acca3521c32a994949b2e80b2ff2518c0bbd34184cda443de498a05dfba9ce701bb914179a0188be0b"
    "cda6fbc2cd93afb042481b4a84d821160a1b0ade8bcb97dbaf681547cce0bca674151a261a21aa04fda318c9"
    "21c38425b775b995cd7b4eb6369f0b211da186594de815fa3b53a68043e1946468a5899b90578ad49397306f"
    "71acab67c258fa17a31893b72d22151ce1afee150fe550bffde8a24fe4740dd43f387c7ad20b5cca59978795"
    "36c3071574901147727341c1a6fc8043e6454903e88217f0c92b9a4ac54a86e7909390878a35ba18c1e26b13"
    "049f41c522bc049d74db6f76caba39f23d8f07abc26a07a1caba71cb5c12fbc20a715450b2228d17b2ba985c"
    "fe2496b033b55f300baf992964388a5422298f627ba567730ddb03a195806a5c23a1d315481c52814b0681ea"
    "3c804b02c90688c2fbbce9b17d230a42f8b865417c9e93347f5ff624879962747c7eed886acd48a994b22064"
    "ca499c69aa4825be60260d12f63102799828b3ccebaa4340b749605017eb4598ff13a634500a48470de9078a"
    "34106267d25a0b144d8cdb1a4d527692153da013c0ab27ae2ca955e7c66238746022d50630892933a05c283a"
    "9f4c00c9f984646f75471081722ed3404ce60fed4a06702b8728b62d920b3224206ab0a4694f9c18e3162b52"
    "9c16af04b87b4a61cd53a757906d67a139629585d423a3b0986f29c95984e2095ea4608784b0b31c20cbc36c"
    "fd60b773389fe5a8c0958211a35b2c45f21f51a08693c19bfc388c2d677a214ccc5a7cb0b67030fd6987503c"
    "91b0f2646985a9048489dd882bd4141f5419554eb738fa7333c5c57a4ce5541fd6b8ad454c2dea67ad1c6f84"
    "8c0a44a1872e40a17d987075d762ba5aaa21d435dd079b989a8ee21a2ce898934a98a02d5b381c302a2d7694"
    "8fa65de15666f57750d580ae1a541c700692dd0b0a6799b5cdb893413bb89bb65182f219a4bc3c80b43bb591"
    "bcd05ac6e9a366552558ed5c5fbe7b4acfc7b23372094f6a87f26c0c46646c55a888871324fea7536e586a51"
    "49b9b707c86ea076486a6822b9bbf59fbfcaedc13284b9813cabdd526e326a6832d3b36efc3102ef"
)
C = H(
    "00e96c44eb5f5380d80b4cb05d608971a28fbe838b912b558bf9676c6c67c9692ed6ea063fc47b70d5d60048"
    "25c269b9cb8e68b5728d67f44844d97686a11154e3cbd4a6f9e47524d93d851bdce480d7762ded09be53d17c"
    "ce3ee28dc5a06911c062b99b218355dd5822108c55e2c67f7ea0b74b6189b33b4589d8ff9d0c867d13edaaf1"
    "c5f724675320beda3e6acc673c048fa04a1b30f899227d5a555e08a412a47b7db75eb118a8844a71b1868804"
    "26f6bb6e77186d18e753cbcce93c9fb76c729875b4d473eeca8dab9941969faef04df9ce3178e7341eab416d"
    "28bb7aee12bfb8f4c3df814eff45a0187329079acfc41a8e8dba7b08d111f02e37a1d2b69e57eef808fcc6ae"
    "23385534a420a93dfb6a95c73e2f1016177c4fe9d3ced769e277293aaceded6d07efc7890eaa885bd1e73f9e"
    "5da2b9cfda0d44cbc9090705ac2ce3e7bcd7775b593c706e45ddc97d3a65d9b7e73673f9473df5bfec689671"
    "f73e7f6ee77c730a8ebda1f0b2c112a71904d6f28a51d8d479f8323fb485e722f5c4d5857e95989a9cbaf273"
    "efd04fc3cbde98baa9969e095e88accecfbd12ef2155497a5b15fe91a70d1106b91a568363bfc2d6736cc813"
    "8cbc41ddf1e54fd40511e27d89e2c26c027b63c156e2bbb998faaed3d72186f0cc626dad39a782dcda2087fd"
    "13a9498e10b41b685646a227ea1166a5632c195983f4aba2b718b4074030d57126d34c38349892007acbea9e"
    "393b967dc3146b270f080a1f0bee90d65a095a6352a7718ed1717a8025a2bd38c66d120baf4247676a1fe044"
    "a57ce268c078f8ff46cc26fe4f9c7a03d6467adacb8418d26273662bce1f7bc00b906e0088e95dc0fb419e22"
    "32e85aac77b9e7cd563e604de5e1d3e9693dcd3b19865cf4250773691e7e0af9c2755cd31f49d1f96708f3ba"
    "2f0b98184525abb869e12d5cea0ac1740181a875035300b05a54b8d42ee3b4ae92b06e43cd807e2b096c977f"
    "23c61ef8c989c52ed83754076dea1323f639250bef61bdf903bf7961cec89ba6942d9d0647ac9c8195d93ed8"
    "abcedf25754644035719a5a0a1c8c0798912726a9a8258e4c10ae7485322ed9ba331f6f090c4b492a4fcf53d"
    "753cd34f28ec0443fce0724f43c89a3942169d5099a8f7430f38691ebce2e3fe4f600d82c7ccedf60673f8e5"
    "d4c1a9f84b8b5b23f5ed63defb6a7205e0a8b105bdc6ff4568fc78cb4456b02fedb7f4c48f6fd6b69216a331"
    "9821039db40e19a31a0b0c9d471d5a7a73865d26f8be3595525b1ec4a8579efd07ea98e2602e2bffdfd8febc"
    "5c7b4c736d326b5030ccc6faf9420a9c156a8f4516b9fff675459dfdcd4ef85d7adbdffd60f4a39628e399cc"
    "752c2e99ab2f431dc765e7c9d206bfe32649fbef4ef48b1d7936fc74766d724350ee2245a8d5f23fbc6c7ed8"
    "b57168ce1e864e49d7f8c475dcda140bd42473825b3c72eb8c54780188813011e1962a503f9b516e13226de6"
    "375b204733b0192183c8f55e870e61cf8947c3191790bc0b657bc43aebc9d86c"
)
K = H("76c10bb1d86d96d7eb18e298363e51f7728e113f455df7d15017940ed3541451")


def _seeded(seed):
    return lambda n: seed if n == len(seed) else bytes(n)


def test_mlkem768_keygen_from_seed_gives_published_ek():
    ke = KeyExchange(36, random=_seeded(SEED))
    assert ke.public_value() == EK


def test_mlkem768_decapsulates_published_ciphertext():
    ke = KeyExchange(36, random=_seeded(SEED))
    ke.public_value()
    assert ke.complete(C) == K


@pytest.mark.parametrize("group,ek_len,ct_len", [(36, 1184, 1088), (37, 1568, 1568)])
def test_mlkem_exchange(group, ek_len, ct_len):
    initiator, responder = KeyExchange(group), KeyExchange(group)
    ek = initiator.public_value()
    assert len(ek) == ek_len
    secret_r = responder.respond(ek)
    ct = responder.public_value()
    assert len(ct) == ct_len and len(secret_r) == 32
    assert initiator.complete(ct) == secret_r
    assert responder.kem and initiator.info.response_len == ct_len


def _set_coefficient(ek, index, value):
    """ek with its index-th 12-bit coefficient (ByteEncode12 order) replaced by value."""
    out = bytearray(ek)
    pos = (index // 2) * 3
    if index % 2 == 0:
        out[pos] = value & 0xFF
        out[pos + 1] = (out[pos + 1] & 0xF0) | (value >> 8)
    else:
        out[pos + 1] = (out[pos + 1] & 0x0F) | ((value & 0x0F) << 4)
        out[pos + 2] = value >> 4
    return bytes(out)


@pytest.mark.parametrize("index,value", [(0, Q), (1, Q), (0, 4095), (511, Q + 1), (767, 4095)])
def test_mlkem768_modulus_check_rejects_ek(index, value):
    bad = _set_coefficient(EK, index, value)
    with pytest.raises(InvalidSyntax):
        KeyExchange(36).respond(bad)


def test_mlkem768_modulus_check_accepts_q_minus_1():
    KeyExchange(36).respond(_set_coefficient(EK, 0, Q - 1))


@pytest.mark.parametrize("group,bad_len", [(36, 1183), (36, 1185), (36, 0), (37, 1184)])
def test_mlkem_type_check_on_ek_length(group, bad_len):
    with pytest.raises(InvalidSyntax):
        KeyExchange(group).respond(bytes(bad_len))


@pytest.mark.parametrize("bad_len", [1087, 1089, 0, 1184])
def test_mlkem_type_check_on_ciphertext_length(bad_len):
    ke = KeyExchange(36)
    ke.public_value()
    with pytest.raises(InvalidSyntax):
        ke.complete(bytes(bad_len))


def test_tampered_ciphertext_gives_a_different_secret_not_an_error():
    """FIPS 203 §6.3 implicit rejection: decapsulation never fails; AUTH fails later."""
    ke = KeyExchange(36, random=_seeded(SEED))
    ke.public_value()
    assert ke.complete(bytes([C[0] ^ 1]) + C[1:]) not in (K, b"")


def test_kem_roles_are_enforced():
    responder = KeyExchange(36)
    responder.respond(EK)
    with pytest.raises(RuntimeError):
        responder.complete(C)
    fresh = KeyExchange(36)
    fresh._role = "responder"
    with pytest.raises(RuntimeError):
        fresh.public_value()
