"""The key schedule against a real strongSwan 5.9.8 exchange (tests/data/strongswan).

From the logged shared secret and the nonces/SPIs in the pcap, derive SKEYSEED, every SK_*,
the AUTH octets, the PSK AUTH values and the CHILD SA keys, and compare with what both
charons logged. The AUTH values are also compared with the AUTH payloads inside the
decrypted IKE_AUTH messages.
"""

import pytest

from pyiked import _fast
from pyiked.core import keys
from tests.unit.strongswan_capture import PSK, exchange, log_values, payloads

# name: (IKE encr, key bits, IKE integ, ESP encr, key bits, ESP integ)
SUITES = {
    "gcm": (20, 256, None, 20, 256, None),  # aes256gcm16-prfsha256-x25519, esp aes256gcm16
    "cbc": (12, 128, 12, 12, 128, 12),  # aes128-sha256-modp2048, esp aes128-sha256
}
PRF = 5  # PRF_HMAC_SHA2_256 in both


@pytest.fixture(scope="module", params=sorted(SUITES))
def capture(request):
    name = request.param
    ex = exchange(name)
    log = log_values(name, "initiator")
    resp_log = log_values(name, "responder")
    encr, bits, integ = SUITES[name][:3]
    skeyseed = keys.skeyseed(PRF, ex["nonce_i"], ex["nonce_r"], log["shared Diffie Hellman secret"][0])
    ike = keys.derive_ike_keys(PRF, encr, bits, integ, skeyseed, ex["nonce_i"], ex["nonce_r"],
                               ex["spi_i"], ex["spi_r"])
    return name, ex, log, resp_log, skeyseed, ike


def test_both_sides_logged_the_same_secret(capture):
    _, _, log, resp_log, _, _ = capture
    assert log["shared Diffie Hellman secret"] == resp_log["shared Diffie Hellman secret"]
    assert log["SKEYSEED"] == resp_log["SKEYSEED"]


def test_skeyseed(capture):
    _, _, log, _, skeyseed, _ = capture
    assert skeyseed == log["SKEYSEED"][0]


def test_every_sk_key(capture):
    name, _, log, _, _, ike = capture
    assert ike.sk_d == log["Sk_d secret"][0]
    assert ike.sk_ei == log["Sk_ei secret"][0]
    assert ike.sk_er == log["Sk_er secret"][0]
    assert ike.sk_pi == log["Sk_pi secret"][0]
    assert ike.sk_pr == log["Sk_pr secret"][0]
    if name == "gcm":  # RFC 5282 §7.1: no SK_a for AEAD; SK_e carries a 4-octet salt
        assert ike.sk_ai == ike.sk_ar == b""
        assert len(ike.sk_ei) == 36
        assert "Sk_ai secret" not in log
    else:
        assert ike.sk_ai == log["Sk_ai secret"][0]
        assert ike.sk_ar == log["Sk_ar secret"][0]


def _decrypted_auth(name, ex, ike, message, encr_key, integ_key):
    encr, bits, integ = SUITES[name][:3]
    cipher = _fast.sk.SKCipher(encr, bits, integ, encr_key, integ_key)
    plain = cipher.open(message, 28)
    return {ptype: body for ptype, _, body in payloads(plain, 0, first=message[28])}


def test_auth_octets_and_psk_auth(capture):
    """RFC 7296 §2.15 for both directions: the octets strongSwan signed, prf(prf(PSK,
    "Key Pad for IKEv2"), octets), and the AUTH payload carried in IKE_AUTH."""
    name, ex, log, _, _, ike = capture
    req = _decrypted_auth(name, ex, ike, ex["auth_req"], ike.sk_ei, ike.sk_ai)
    resp = _decrypted_auth(name, ex, ike, ex["auth_resp"], ike.sk_er, ike.sk_ar)
    id_i, id_r = req[35], resp[36]  # IDi, IDr bodies: the IDx' of §2.15
    assert log["IDx'"] == [id_i, id_r]

    octets_i = keys.auth_octets(ex["init_req"], ex["nonce_r"], PRF, ike.sk_pi, id_i)
    octets_r = keys.auth_octets(ex["init_resp"], ex["nonce_i"], PRF, ike.sk_pr, id_r)
    assert [octets_i, octets_r] == log["octets = message + nonce + prf(Sk_px, IDx')"]

    assert keys.prf(PRF, PSK, keys.KEY_PAD) == log["prf(secret, keypad)"][0]
    auth_i = keys.psk_auth(PRF, PSK, octets_i)
    auth_r = keys.psk_auth(PRF, PSK, octets_r)
    assert [auth_i, auth_r] == log["AUTH = prf(prf(secret, keypad), octets)"]
    # AUTH payload body: Auth Method (2 = shared key MIC), 3 reserved octets, the data
    assert req[39] == b"\x02\x00\x00\x00" + auth_i
    assert resp[39] == b"\x02\x00\x00\x00" + auth_r


def test_child_sa_keys(capture):
    """RFC 7296 §2.17: KEYMAT = prf+(SK_d, Ni | Nr), i->r keys first."""
    name, ex, log, _, _, ike = capture
    assert log["seed"] == [ex["nonce_i"] + ex["nonce_r"]]
    encr, bits, integ = SUITES[name][3:]
    encr_i, integ_i, encr_r, integ_r = keys.child_keymat(
        PRF, ike.sk_d, ex["nonce_i"], ex["nonce_r"], encr_id=encr, encr_key_bits=bits, integ_id=integ
    )
    assert encr_i == log["encryption initiator key"][0]
    assert encr_r == log["encryption responder key"][0]
    if integ:
        assert integ_i == log["integrity initiator key"][0]
        assert integ_r == log["integrity responder key"][0]
    else:
        assert integ_i == integ_r == b""
        assert len(encr_i) == 36  # AES-256 key + 4-octet salt (RFC 4106 §8.1)
