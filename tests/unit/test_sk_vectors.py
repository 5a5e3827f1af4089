"""SK payload protection against published messages, in both _fast.sk implementations.

- RFC 7634 Appendix B: an INFORMATIONAL request protected with ChaCha20-Poly1305 (the
  bytes as strongSwan's test_message_chapoly.c checks them).
- A real strongSwan 5.9.8 exchange (tests/data/strongswan): IKE_AUTH and INFORMATIONAL
  messages with AES-256-GCM-16 and with AES-128-CBC + HMAC-SHA2-256-128, keys derived from
  the logged DH secret.
- An AES-256-GCM-16 INFORMATIONAL message from AOSP's IkeCombinedModeCipherTest.
"""

import pytest

from pyiked.core import keys
from tests.helpers import fast_impls
from tests.unit.strongswan_capture import exchange, header, log_values, payloads

IMPLS = fast_impls("sk")
H = bytes.fromhex


@pytest.fixture(params=IMPLS, ids=[name for name, _ in IMPLS])
def sk(request):
    return request.param[1]


# RFC 7634 Appendix B
CHAPOLY_KEY = bytes(range(0x80, 0xA0)) + H("a0a1a2a3")
CHAPOLY_IV = H("1011121314151617")
CHAPOLY_MESSAGE = H(
    "c0c1c2c3c4c5c6c7d0d1d2d3d4d5d6d7"
    "2e202500000000090000004529000029"
    "1011121314151617"
    "610394701f8d017f7c129248896b71bfe25236efd7cdc670669063 15b2".replace(" ", "")
)
# Notify SET_WINDOW_SIZE (16385) with window 10
CHAPOLY_PLAIN = H("0000000c000040010000000a")


def test_rfc7634_open(sk):
    cipher = sk.SKCipher(28, None, None, CHAPOLY_KEY)
    assert cipher.open(CHAPOLY_MESSAGE, 28) == CHAPOLY_PLAIN


def test_rfc7634_seal(sk):
    # counter 0 XOR mask = the RFC's IV when the mask is drawn as that IV
    cipher = sk.SKCipher(28, 0, 0, CHAPOLY_KEY, b"", random=lambda n: CHAPOLY_IV)
    assert cipher.seal(CHAPOLY_MESSAGE[:28], 41, CHAPOLY_PLAIN) == CHAPOLY_MESSAGE


# AOSP IkeCombinedModeCipherTest: AES-GCM-16 with a 256-bit key, INFORMATIONAL message 6
AOSP_KEY = H("7C04513660DEC572D896105254EF92608054F8E6EE19E79CE52AB8697B2B5F2C2AA90C29")
AOSP_AAD = H("77c708b4523e39a471dc683c1d4f21362e202508000000060000004129000025")
AOSP_IV = H("fbd69d9de2dafc5e")
AOSP_CT = H("f4109834e9f3559758c05edf119917521b885f67f0d14ced43")
AOSP_INNER = H("000000080000400f00")  # Notify payload then Pad Length 0


def test_aes_gcm_informational_open_and_seal(sk):
    message = AOSP_AAD + AOSP_IV + AOSP_CT
    assert sk.SKCipher(20, 256, None, AOSP_KEY).open(message, 28) == AOSP_INNER[:-1]
    sealer = sk.SKCipher(20, 256, None, AOSP_KEY, random=lambda n: AOSP_IV)
    assert sealer.seal(AOSP_AAD[:28], 41, AOSP_INNER[:-1]) == message


SUITES = {"gcm": (20, 256, None), "cbc": (12, 128, 12)}


@pytest.fixture(scope="module", params=sorted(SUITES))
def capture(request):
    name = request.param
    ex = exchange(name)
    log = log_values(name, "initiator")
    encr, bits, integ = SUITES[name]
    seed = keys.skeyseed(5, ex["nonce_i"], ex["nonce_r"], log["shared Diffie Hellman secret"][0])
    ike = keys.derive_ike_keys(5, encr, bits, integ, seed, ex["nonce_i"], ex["nonce_r"], ex["spi_i"], ex["spi_r"])
    return name, ex, ike


def _ciphers(sk, name, ike, **kw):
    encr, bits, integ = SUITES[name]
    return (sk.SKCipher(encr, bits, integ, ike.sk_ei, ike.sk_ai, **kw),
            sk.SKCipher(encr, bits, integ, ike.sk_er, ike.sk_ar, **kw))


def test_open_strongswan_ike_auth(sk, capture):
    name, ex, ike = capture
    from_i, from_r = _ciphers(sk, name, ike)
    req = from_i.open(ex["auth_req"], 28)
    resp = from_r.open(ex["auth_resp"], 28)
    req_types = [t for t, _, _ in payloads(req, 0, first=ex["auth_req"][28])]
    resp_types = [t for t, _, _ in payloads(resp, 0, first=ex["auth_resp"][28])]
    # "IKE_AUTH request 1 [ IDi N(INIT_CONTACT) CERTREQ IDr AUTH SA TSi TSr N(...) ... ]"
    assert req_types[:8] == [35, 41, 38, 36, 39, 33, 44, 45]
    assert resp_types[:5] == [36, 39, 33, 44, 45]  # "[ IDr AUTH SA TSi TSr N N ]"
    assert b"a.pk.test" in req and b"b.pk.test" in req
    assert b"b.pk.test" in resp
    ids = dict((t, b) for t, _, b in payloads(req, 0, first=ex["auth_req"][28]))
    assert ids[35] == b"\x02\x00\x00\x00a.pk.test"  # ID_FQDN


def test_open_strongswan_informational(sk, capture):
    """Every INFORMATIONAL message of the capture opens with the key of its sender."""
    name, ex, ike = capture
    from_i, from_r = _ciphers(sk, name, ike)
    for msg in ex["informational"]:
        flags = header(msg)["flags"]
        cipher = from_i if flags & 0x08 else from_r  # Initiator flag: the original initiator sent it
        plain = cipher.open(msg, 28)
        if msg[28] == 42:  # "INFORMATIONAL request 3 [ D ]": Delete IKE SA, protocol 1
            assert plain[:8] == b"\x00\x00\x00\x08\x01\x00\x00\x00"


def test_seal_reproduces_strongswan(sk, capture):
    """With strongSwan's IV, seal makes the captured message: byte for byte with GCM (no
    padding), and with CBC up to the padding, whose content the sender chooses."""
    name, ex, ike = capture
    msg = ex["auth_req"]
    encr, bits, integ = SUITES[name]
    iv_len = 8 if name == "gcm" else 16
    iv = msg[32:32 + iv_len]
    from_i = sk.SKCipher(encr, bits, integ, ike.sk_ei, ike.sk_ai, random=lambda n: iv)
    plain = sk.SKCipher(encr, bits, integ, ike.sk_ei, ike.sk_ai).open(msg, 28)
    sealed = from_i.seal(msg[:28], msg[28], plain)
    assert len(sealed) == len(msg)
    if name == "gcm":
        assert sealed == msg
    else:
        full_blocks = 32 + iv_len + (len(plain) // 16) * 16
        assert sealed[:full_blocks] == msg[:full_blocks]
        assert from_i.open(sealed, 28) == plain
