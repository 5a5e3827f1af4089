"""Signature AUTH: RFC 7427 Appendix A AlgorithmIdentifiers, RFC 4754 ECDSA vectors,
RFC 8032 Ed25519 through RFC 8420, and sign/verify with keys made by strongSwan's pki."""

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st

from pyiked.core.auth import signature
from pyiked.core.auth.signature import Scheme, parse_algorithm_identifier
from pyiked.core.errors import AuthenticationFailed
from pyiked.core.iana import AuthMethod
from pyiked.core.iana import HashAlgorithm as H
from tests.engine.rw import cert, key

# RFC 7427 Appendix A, the DER of each AlgorithmIdentifier
A_1_1_SHA1_RSA = "300d06092a864886f70d0101050500"
A_1_2_SHA256_RSA = "300d06092a864886f70d01010b0500"
A_1_3_SHA384_RSA = "300d06092a864886f70d01010c0500"
A_1_4_SHA512_RSA = "300d06092a864886f70d01010d0500"
A_2_1_DSA_SHA1 = "300906072a8648ce380403"
A_2_2_DSA_SHA256 = "300b0609608648016503040302"
A_3_1_ECDSA_SHA1 = "300906072a8648ce3d0401"
A_3_2_ECDSA_SHA256 = "300a06082a8648ce3d040302"
A_3_3_ECDSA_SHA384 = "300a06082a8648ce3d040303"
A_3_4_ECDSA_SHA512 = "300a06082a8648ce3d040304"
A_4_1_PSS_EMPTY = "300b06092a864886f70d01010a"
A_4_2_PSS_DEFAULT = "300d06092a864886f70d01010a3000"
A_4_3_PSS_SHA256 = (
    "304606092a864886f70d01010a3039a00f300d06096086480165030402010500a11c301a06092a"
    "864886f70d010108300d06096086480165030402010500a203020120a303020101"
)
ED25519_ALG = "300506032b6570"  # RFC 8410 §3 id-Ed25519, parameters absent
ED448_ALG = "300506032b6571"


@pytest.mark.parametrize(
    "der, scheme",
    [
        (A_1_2_SHA256_RSA, Scheme("rsa", H.SHA2_256)),
        (A_1_3_SHA384_RSA, Scheme("rsa", H.SHA2_384)),
        (A_1_4_SHA512_RSA, Scheme("rsa", H.SHA2_512)),
        (A_3_2_ECDSA_SHA256, Scheme("ecdsa", H.SHA2_256)),
        (A_3_3_ECDSA_SHA384, Scheme("ecdsa", H.SHA2_384)),
        (A_3_4_ECDSA_SHA512, Scheme("ecdsa", H.SHA2_512)),
        (ED25519_ALG, Scheme("ed25519", H.IDENTITY)),
        (ED448_ALG, Scheme("ed448", H.IDENTITY)),
    ],
)
def test_appendix_a_encodings_parse_and_are_what_we_send(der, scheme):
    assert parse_algorithm_identifier(bytes.fromhex(der)) == scheme
    assert scheme.algorithm_identifier().hex() == der


def test_appendix_a_4_3_rsassa_pss_with_sha256():
    scheme = parse_algorithm_identifier(bytes.fromhex(A_4_3_PSS_SHA256))
    assert scheme == Scheme("rsa-pss", H.SHA2_256, 32)
    assert scheme.algorithm_identifier(trailer=True).hex() == A_4_3_PSS_SHA256
    # what we send leaves out the trailer field, its DEFAULT (DER, X.690 §11.5)
    assert parse_algorithm_identifier(scheme.algorithm_identifier()) == scheme


@pytest.mark.parametrize(
    "der",
    [
        A_1_1_SHA1_RSA,
        A_2_1_DSA_SHA1,
        A_2_2_DSA_SHA256,
        A_3_1_ECDSA_SHA1,
        A_4_1_PSS_EMPTY,
        A_4_2_PSS_DEFAULT,
        A_3_2_ECDSA_SHA256[:-2],  # truncated
        "300c06082a8648ce3d0403020500",  # ECDSA with parameters (RFC 5758 §3.2: absent)
        "300706032b65700500",  # Ed25519 with parameters (RFC 8410 §3: absent)
        A_4_3_PSS_SHA256.replace("a303020101", "a303020102"),  # trailer field 2
        A_4_3_PSS_SHA256.replace(
            "a11c301a06092a864886f70d010108300d0609608648016503040201",
            "a11c301a06092a864886f70d010108300d0609608648016503040203",
        ),  # MGF1 SHA-512
        A_1_2_SHA256_RSA + "00",  # trailing octets
    ],
)
def test_sha1_dsa_and_malformed_identifiers_are_refused(der):
    with pytest.raises(ValueError):
        parse_algorithm_identifier(bytes.fromhex(der))


# RFC 4754 §8.1-8.3: public key (gwx, gwy), message "abc", signature (r, s)
RFC4754 = [
    (
        AuthMethod.ECDSA_SHA256_P256,
        ec.SECP256R1(),
        32,
        "2442A5CC0ECD015FA3CA31DC8E2BBC70BF42D60CBCA20085E0822CB04235E970",
        "6FC98BD7E50211A4A27102FA3549DF79EBCB4BF246B80945CDDFE7D509BBFD7D",
        "CB28E0999B9C7715FD0A80D8E47A77079716CBBF917DD72E97566EA1C066957C",
        "86FA3BB4E26CAD5BF90B7F81899256CE7594BB1EA0C89212748BFF3B3D5B0315",
        A_3_2_ECDSA_SHA256,
    ),
    (
        AuthMethod.ECDSA_SHA384_P384,
        ec.SECP384R1(),
        48,
        "96281BF8DD5E0525CA049C048D345D3082968D10FEDF5C5ACA0C64E6465A97EA5CE10C9DFEC21797415710721F437922",
        "447688BA94708EB6E2E4D59F6AB6D7EDFF9301D249FE49C33096655F5D502FAD3D383B91C5E7EDAA2B714CC99D5743CA",
        "FB017B914E29149432D8BAC29A514640B46F53DDAB2C69948084E2930F1C8F7E08E07C9C63F2D21A07DCB56A6AF56EB3",
        "B263A1305E057F984D38726A1B46874109F417BCA112674C528262A40A629AF1CBB9F516CE0FA7D2FF630863A00E8B9F",
        A_3_3_ECDSA_SHA384,
    ),
    (
        AuthMethod.ECDSA_SHA512_P521,
        ec.SECP521R1(),
        66,
        "0151518F1AF0F563517EDD5485190DF95A4BF57B5CBA4CF2A9A3F6474725A35F7AFE0A6DDEB8BEDBCD6A197E592D4018"
        "8901CECD650699C9B5E456AEA5ADD19052A8",
        "006F3B142EA1BFFF7E2837AD44C9E4FF6D2D34C73184BBAD90026DD5E6E85317D9DF45CAD7803C6C20035B2F3FF63AFF"
        "4E1BA64D1C077577DA3F4286C58F0AEAE643",
        "0154FD3836AF92D0DCA57DD5341D3053988534FDE8318FC6AAAAB68E2E6F4339B19F2F281A7E0B22C269D93CF8794A92"
        "78880ED7DBB8D9362CAEACEE544320552251",
        "017705A7030290D1CEB605A9A1BB03FF9CDD521E87A696EC926C8C10C8362DF4975367101F67D1CF9BCCBF2F3D239534"
        "FA509E70AAC851AE01AAC68D62F866472660",
        A_3_4_ECDSA_SHA512,
    ),
]


@pytest.mark.parametrize("method, curve, size, x, y, r, s, alg", RFC4754)
def test_rfc4754_vectors_verify_as_methods_9_to_11_and_as_rfc7427(
    method, curve, size, x, y, r, s, alg
):
    public = ec.EllipticCurvePublicNumbers(int(x, 16), int(y, 16), curve).public_key()
    raw = bytes.fromhex(r) + bytes.fromhex(s)
    assert len(raw) == 2 * size  # RFC 4754 §7: r | s, each the size of the curve
    signature.verify(public, method, raw, b"abc")
    with pytest.raises(AuthenticationFailed):
        signature.verify(public, method, raw, b"abd")
    der = encode_dss_signature(int(r, 16), int(s, 16))  # RFC 7427: ECDSA-Sig-Value in DER
    alg = bytes.fromhex(alg)
    signature.verify(public, AuthMethod.DIGITAL_SIGNATURE, bytes((len(alg),)) + alg + der, b"abc")


def test_rfc8032_ed25519_vector_through_rfc8420():
    # RFC 8032 §7.1 TEST 1 (empty message); RFC 8420: the Identity "hash", the message itself
    public = ed25519.Ed25519PublicKey.from_public_bytes(
        bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    )
    sig = bytes.fromhex(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e"
        "39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )
    alg = bytes.fromhex(ED25519_ALG)
    signature.verify(public, AuthMethod.DIGITAL_SIGNATURE, bytes((len(alg),)) + alg + sig, b"")
    with pytest.raises(AuthenticationFailed):
        signature.verify(public, AuthMethod.DIGITAL_SIGNATURE, bytes((len(alg),)) + alg + sig, b"x")


KEYS = ["a-rsa", "a-ec", "p384", "p521", "ed"]
OCTETS = b"RealMessage | Nonce | prf(SK_p, ID')"


@pytest.mark.parametrize("name", KEYS)
@pytest.mark.parametrize(
    "peer_hashes", [(), (H.SHA2_256, H.SHA2_384, H.SHA2_512, H.IDENTITY), (H.SHA2_512,)]
)
def test_sign_and_verify_with_pki_keys(name, peer_hashes):
    private, public = key(name), cert(name).public_key()
    method = signature.choose_method("signature", private, peer_hashes)
    for pss in (False, True):
        data = signature.sign(private, method, OCTETS, peer_hashes=peer_hashes, pss=pss)
        signature.verify(public, method, data, OCTETS)
        with pytest.raises(AuthenticationFailed):
            signature.verify(public, method, data, OCTETS + b"!")
        if method == AuthMethod.DIGITAL_SIGNATURE and name != "ed":
            scheme = parse_algorithm_identifier(data[1 : 1 + data[0]])
            assert scheme.hash in (peer_hashes or (H.SHA2_256,))
            assert scheme.kind == (
                "rsa-pss" if pss and name == "a-rsa" else "rsa" if name == "a-rsa" else "ecdsa"
            )


def test_classic_methods_follow_the_key_without_rfc7427():
    assert signature.choose_method("signature", key("a-rsa"), ()) == AuthMethod.RSA_SIG
    assert signature.choose_method("signature", key("a-ec"), ()) == AuthMethod.ECDSA_SHA256_P256
    assert signature.choose_method("signature", key("p384"), ()) == AuthMethod.ECDSA_SHA384_P384
    assert signature.choose_method("signature", key("p521"), ()) == AuthMethod.ECDSA_SHA512_P521
    assert signature.choose_method("signature", key("ed"), ()) == AuthMethod.DIGITAL_SIGNATURE
    assert signature.choose_method("rfc7427", key("a-ec"), ()) == AuthMethod.DIGITAL_SIGNATURE
    assert signature.choose_method("rsa", key("a-rsa"), (H.SHA2_256,)) == AuthMethod.RSA_SIG
    assert signature.key_fits_policy(key("p384"), "ecdsa384") and not signature.key_fits_policy(
        key("a-ec"), "ecdsa384"
    )
    assert not signature.key_fits_policy(key("ed"), "rsa")


def test_ecdsa_hash_follows_the_curve_when_the_peer_allows():
    assert signature.choose_scheme(key("p384"), (H.SHA2_256, H.SHA2_384)) == Scheme(
        "ecdsa", H.SHA2_384
    )
    assert signature.choose_scheme(key("a-ec"), (H.SHA2_512,)) == Scheme("ecdsa", H.SHA2_512)
    with pytest.raises(AuthenticationFailed):
        signature.choose_scheme(key("a-ec"), (H.SHA1,))


def test_wrong_key_type_or_method_is_refused():
    data = signature.sign(key("a-ec"), AuthMethod.ECDSA_SHA256_P256, OCTETS)
    with pytest.raises(AuthenticationFailed):
        signature.verify(cert("a-rsa").public_key(), AuthMethod.ECDSA_SHA256_P256, data, OCTETS)
    with pytest.raises(AuthenticationFailed):
        signature.verify(cert("p384").public_key(), AuthMethod.ECDSA_SHA256_P256, data, OCTETS)
    with pytest.raises(AuthenticationFailed):
        signature.verify(cert("a-ec").public_key(), AuthMethod.SHARED_KEY_MIC, data, OCTETS)
    rsa_7427 = signature.sign(key("a-rsa"), AuthMethod.DIGITAL_SIGNATURE, OCTETS)
    with pytest.raises(AuthenticationFailed):
        signature.verify(cert("a-ec").public_key(), AuthMethod.DIGITAL_SIGNATURE, rsa_7427, OCTETS)
    with pytest.raises(AuthenticationFailed):
        signature.sign(key("a-ec"), AuthMethod.RSA_SIG, OCTETS)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from([1, 9, 10, 11, 14, 2, 0, 255]), st.binary(max_size=300), st.sampled_from(KEYS)
)
def test_hostile_auth_data_only_fails_authentication(method, data, name):
    with pytest.raises(AuthenticationFailed):
        signature.verify(cert(name).public_key(), method, data, OCTETS)
