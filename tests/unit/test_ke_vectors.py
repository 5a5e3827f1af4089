"""ECP, brainpool and Curve25519/448 key exchange: published vectors and input checks.

ECP: RFC 5903 §8.1-§8.3 (i, g^i, r, g^r, g^ir, and the KE payloads). X25519 / X448:
RFC 7748 §6.1 / §6.2. Validation: RFC 6989 §2.3 (point on the curve), RFC 8031 §2 and
RFC 7748 §6 (all-zero shared secret), RFC 7296 §3.4 (length).
"""

import os
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyiked.core.errors import InvalidSyntax, NoProposalChosen
from pyiked.core.ke import KeyExchange
from pyiked.core.iana import KeId
from cryptography.hazmat.primitives.asymmetric import x448, x25519

H = bytes.fromhex


def _fixed(value):
    return lambda n: value


def _h(text):
    return H(text.replace(" ", ""))


RFC5903 = {
    19: dict(
        i="C88F01F5 10D9AC3F 70A292DA A2316DE5 44E9AAB8 AFE84049 C62A9C57 862D1433",
        kei="00000048 00130000 DAD0B653 94221CF9 B051E1FE CA5787D0 98DFE637 FC90B9EF"
        "945D0C37 72581180 5271A046 1CDB8252 D61F1C45 6FA3E59A B1F45B33 ACCF5F58 389E0577 B8990BB3",
        r="C6EF9C5D 78AE012A 011164AC B397CE20 88685D8F 06BF9BE0 B283AB46 476BEE53",
        ker="00000048 00130000 D12DFB52 89C8D4F8 1208B702 70398C34 2296970A 0BCCB74C"
        "736FC755 4494BF63 56FBF3CA 366CC23E 8157854C 13C58D6A AC23F046 ADA30F83 53E74F33 039872AB",
        girx="D6840F6B 42F6EDAF D13116E0 E1256520 2FEF8E9E CE7DCE03 812464D0 4B9442DE",
    ),
    20: dict(
        i="099F3C70 34D4A2C6 99884D73 A375A67F 7624EF7C 6B3C0F16 0647B674 14DCE655"
        "E35B5380 41E649EE 3FAEF896 783AB194",
        kei="00000068 00140000 667842D7 D180AC2C DE6F74F3 7551F557 55C7645C 20EF73E3"
        "1634FE72 B4C55EE6 DE3AC808 ACB4BDB4 C88732AE E95F41AA 9482ED1F C0EEB9CA"
        "FC498462 5CCFC23F 65032149 E0E144AD A0241815 35A0F38E EB9FCFF3 C2C947DA E69B4C63 4573A81C",
        r="41CB0779 B4BDB85D 47846725 FBEC3C94 30FAB46C C8DC5060 855CC9BD A0AA2942"
        "E0308312 916B8ED2 960E4BD5 5A7448FC",
        ker="00000068 00140000 E558DBEF 53EECDE3 D3FCCFC1 AEA08A89 A987475D 12FD950D"
        "83CFA417 32BC509D 0D1AC43A 0336DEF9 6FDA41D0 774A3571 DCFBEC7A ACF31964"
        "72169E83 8430367F 66EEBE3C 6E70C416 DD5F0C68 759DD1FF F83FA401 42209DFF 5EAAD96D B9E6386C",
        girx="11187331 C279962D 93D60424 3FD592CB 9D0A926F 422E4718 7521287E 7156C5C4"
        "D6031355 69B9E9D0 9CF5D4A2 70F59746",
    ),
    21: dict(
        i="0037ADE9 319A89F4 DABDB3EF 411AACCC A5123C61 ACAB57B5 393DCE47 608172A0"
        "95AA85A3 0FE1C295 2C6771D9 37BA9777 F5957B26 39BAB072 462F68C2 7A57382D 4A52",
        kei="0000008C 00150000 0015417E 84DBF28C 0AD3C278 713349DC 7DF153C8 97A1891B"
        "D98BAB43 57C9ECBE E1E3BF42 E00B8E38 0AEAE57C 2D107564 94188594 2AF5A7F4"
        "601723C4 195D176C ED3E017C AE20B664 1D2EEB69 5786D8C9 46146239 D099E18E"
        "1D5A514C 739D7CB4 A10AD8A7 88015AC4 05D7799D C75E7B7D 5B6CF226 1A6A7F15 07438BF0 1BEB6CA3 926F9582",
        r="0145BA99 A847AF43 793FDD0E 872E7CDF A16BE30F DC780F97 BCCC3F07 8380201E"
        "9C677D60 0B343757 A3BDBF2A 3163E4C2 F869CCA7 458AA4A4 EFFC311F 5CB15168 5EB9",
        ker="0000008c 00150000 00D0B397 5AC4B799 F5BEA16D 5E13E9AF 971D5E9B 984C9F39"
        "728B5E57 39735A21 9B97C356 436ADC6E 95BB0352 F6BE64A6 C2912D4E F2D0433C"
        "ED2B6171 640012D9 460F015C 68226383 956E3BD0 66E797B6 23C27CE0 EAC2F551"
        "A10C2C72 4D985207 7B87220B 6536C5C4 08A1D2AE BB8E86D6 78AE49CB 57091F47 32296579 AB44FCD1 7F0FC56A",
        girx="01144C7D 79AE6956 BC8EDB8E 7C787C45 21CB086F A64407F9 7894E5E6 B2D79B04"
        "D1427E73 CA4BAA24 0A347868 59810C06 B3C715A3 A8CC3151 F2BEE417 996D19F3 DDEA",
    ),
}


@pytest.mark.parametrize("group", sorted(RFC5903))
def test_ecp_rfc5903(group):
    v = {k: _h(s) for k, s in RFC5903[group].items()}
    kei, ker = v["kei"][8:], v["ker"][8:]  # KE payload: generic header, group, reserved
    assert v["kei"][4:6] == group.to_bytes(2, "big")
    initiator = KeyExchange(group, random=_fixed(v["i"]))
    responder = KeyExchange(group, random=_fixed(v["r"]))
    assert initiator.public_value() == kei  # RFC 5903 §7: x | y, no 0x04
    assert responder.respond(kei) == v["girx"]  # the x coordinate of g^ir
    assert responder.public_value() == ker
    assert initiator.complete(ker) == v["girx"]


# P-224 (RFC 5114 group 26) multiples of the generator, from the NIST point-at-infinity.org
# vectors: private values 2 and 3 give 2G and 3G, and the shared secret is x(6G).
P224_KG = {
    2: "706A46DC76DCB76798E60E6D89474788D16DC18032D268FD1A704FA6"
    "1C2B76A7BC25E7702A704FA986892849FCA629487ACF3709D2E4E8BB",
    3: "DF1B1D66A551D0D31EFF822558B9D2CC75C2180279FE0D08FD896D04"
    "A3F7F03CADD0BE444C0AA56830130DDF77D317344E1AF3591981A925",
    6: "1F2483F82572251FCA975FEA40DB821DF8AD82A3C002EE6C57112408",
}


def test_ecp224_nist_multiples():
    initiator = KeyExchange(26, random=_fixed((2).to_bytes(28, "big")))
    responder = KeyExchange(26, random=_fixed((3).to_bytes(28, "big")))
    assert initiator.public_value() == _h(P224_KG[2])
    assert responder.public_value() == _h(P224_KG[3])
    assert responder.respond(initiator.public_value()) == _h(P224_KG[6])
    assert initiator.complete(responder.public_value()) == _h(P224_KG[6])
    bad = bytearray(_h(P224_KG[3]))
    bad[-1] ^= 1
    with pytest.raises(InvalidSyntax):
        KeyExchange(26).respond(bytes(bad))


@pytest.mark.parametrize("group", sorted(RFC5903))
def test_ecp_point_not_on_curve(group):
    ker = bytearray(_h(RFC5903[group]["ker"])[8:])
    ker[-1] ^= 1  # y + 1 (or - 1): off the curve
    with pytest.raises(InvalidSyntax):
        KeyExchange(group).respond(bytes(ker))
    with pytest.raises(InvalidSyntax):  # (0, 0) stands in for infinity: not on the curve
        KeyExchange(group).respond(bytes(len(ker)))
    with pytest.raises(InvalidSyntax):  # x beyond the field
        KeyExchange(group).respond(b"\xff" * len(ker))


@pytest.mark.parametrize("group", [19, 20, 21, 28, 29, 30])
def test_ecp_and_brainpool_exchange_and_lengths(group):
    a, b = KeyExchange(group), KeyExchange(group)
    pa = a.public_value()
    assert len(pa) == a.info.public_len
    shared = b.respond(pa)
    assert a.complete(b.public_value()) == shared
    assert len(shared) == a.info.shared_len
    with pytest.raises(InvalidSyntax):
        KeyExchange(group).respond(pa[:-1])
    with pytest.raises(InvalidSyntax):
        KeyExchange(group).respond(pa + b"\x00")
    bad = bytearray(pa)
    bad[-1] ^= 1
    with pytest.raises(InvalidSyntax):
        KeyExchange(group).respond(bytes(bad))


X25519 = dict(
    a="77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
    pa="8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
    b="5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
    pb="de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
    k="4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
)
X448 = dict(
    a="9a8f4925d1519f5775cf46b04b5800d4ee9ee8bae8bc5565d498c28dd9c9baf574a9419744897391006382a6f127ab1d9ac2d8c0a598726b",
    pa="9b08f7cc31b7e3e67d22d5aea121074a273bd2b83de09c63faa73d2c22c5d9bbc836647241d953d40c5b12da88120d53177f80e532c41fa0",
    b="1c306a7ac2a0e2e0990b294470cba339e6453772b075811d8fad0d1d6927c120bb5ee8972b0d3e21374c9c921b09d1b0366f10b65173992d",
    pb="3eb7a829b0cd20f5bcfc0b599b6feccf6da4627107bdb0d4f345b43027d8b972fc3e34fb4232a13ca706dcb57aec3dae07bdc1c67bf33609",
    k="07fff4181ac6cc95ec1c16a94a0f74d12da232ce40a77552281d282bb60c0b56fd2464c335543936521c24403085d59a449a5037514a879d",
)


@pytest.mark.parametrize("group,v", [(31, X25519), (32, X448)])
def test_rfc7748_diffie_hellman(group, v):
    v = {k: H(s) for k, s in v.items()}
    alice = KeyExchange(group, random=_fixed(v["a"]))
    bob = KeyExchange(group, random=_fixed(v["b"]))
    assert alice.public_value() == v["pa"]
    assert bob.public_value() == v["pb"]
    assert alice.complete(v["pb"]) == v["k"]
    assert bob.respond(v["pa"]) == v["k"]


@pytest.mark.parametrize(
    "group,u",
    [
        (31, "00" * 32),
        (31, "01" + "00" * 31),
        (31, "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),  # order 8
        (31, "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),  # p - 1
        (32, "00" * 56),
        (32, "01" + "00" * 55),
    ],
)
def test_small_order_points_give_all_zero_secret(group, u):
    """RFC 8031 §2 / RFC 7748 §6: a small-order peer point makes the secret all zero; abort."""
    with pytest.raises(InvalidSyntax):
        KeyExchange(group).respond(H(u))
    ke = KeyExchange(group)
    ke.public_value()
    with pytest.raises(InvalidSyntax):
        ke.complete(H(u))


@pytest.mark.parametrize("group,size", [(31, 32), (32, 56)])
def test_xdh_wrong_length(group, size):
    for n in (0, size - 1, size + 1):
        with pytest.raises(InvalidSyntax):
            KeyExchange(group).respond(os.urandom(n))


def test_unknown_groups():
    for group in (0, 1, 22, 25, 27, 33, 35, 999):
        with pytest.raises(NoProposalChosen):
            KeyExchange(group)


def test_private_key_never_in_repr():
    a = bytes(range(32))
    ke = KeyExchange(31, random=_fixed(a))
    text = repr(ke) + str(ke)
    assert a.hex() not in text and "curve25519" in text
    with pytest.raises(TypeError):
        pickle.dumps(ke)


@settings(max_examples=120, deadline=None)
@given(group=st.sampled_from([2, 14, 19, 21, 28, 31, 32, 36]), data=st.data())
def test_hostile_ke_data_gives_only_invalid_syntax(group, data):
    ke = KeyExchange(group)
    size = ke.info.public_len
    length = data.draw(st.sampled_from([size, size, size, 0, size - 1, size + 1]))
    value = data.draw(st.binary(min_size=length, max_size=length))
    try:
        secret = ke.respond(value)
    except InvalidSyntax:
        return
    assert len(secret) == ke.info.shared_len


@pytest.mark.parametrize("group,cls", [(KeId.CURVE25519, x25519), (KeId.CURVE448, x448)])
def test_os_random_xdh_interoperates_with_the_public_api(group, cls):
    # the default (OS randomness) path calls the library's functions behind the public
    # classmethods (pyiked.core.ke._XDH); its keys work with the public API's
    private = cls.X25519PrivateKey if cls is x25519 else cls.X448PrivateKey
    theirs = private.generate()
    ours = KeyExchange(group)
    value = theirs.public_key().public_bytes_raw()
    shared = ours.respond(value)
    peer = (cls.X25519PublicKey if cls is x25519 else cls.X448PublicKey).from_public_bytes(ours.public_value())
    assert shared == theirs.exchange(peer)
