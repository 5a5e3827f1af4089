"""MS-CHAPv2 against RFC 2759 §9.2 and the MPPE keys against RFC 3079 §3.5.3."""

import pytest

from pyiked.core.auth import mschapv2

pytest.importorskip("Crypto.Hash.MD4", reason="EAP-MSCHAPv2 needs pycryptodome (the eap extra)")

# RFC 2759 §9.2 "Sample Data" (and RFC 3079 §3.5.3, which reuses it)
USER = "User"
PASSWORD = "clientPass"
AUTH_CHALLENGE = bytes.fromhex("5B5D7C7D7B3F2F3E3C2C602132262628")
PEER_CHALLENGE = bytes.fromhex("21402324255E262A28295F2B3A337C7E")
CHALLENGE = bytes.fromhex("D02E4386BCE91226")
PASSWORD_HASH = bytes.fromhex("44EBBA8D5312B8D611474411F56989AE")
NT_RESPONSE = bytes.fromhex("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF")
PASSWORD_HASH_HASH = bytes.fromhex("41C00C584BD2D91C4017A2A12FA59F3F")
AUTHENTICATOR_RESPONSE = b"S=407A5589115FD0D6209F510FE9C04566932CDA56"
# RFC 3079 §3.5.3, 128-bit keys
MASTER_KEY = bytes.fromhex("FDECE3717A8C838CB388E527AE3CDD31")
SEND_START_KEY_128 = bytes.fromhex("8B7CDC149B993A1BA118CB153F56DCCB")


def test_rfc2759_sample_data():
    assert mschapv2.challenge_hash(PEER_CHALLENGE, AUTH_CHALLENGE, USER) == CHALLENGE
    assert mschapv2.nt_password_hash(PASSWORD) == PASSWORD_HASH
    assert mschapv2.hash_nt_password_hash(PASSWORD_HASH) == PASSWORD_HASH_HASH
    assert mschapv2.challenge_response(CHALLENGE, PASSWORD_HASH) == NT_RESPONSE
    assert (
        mschapv2.generate_nt_response(AUTH_CHALLENGE, PEER_CHALLENGE, USER, PASSWORD) == NT_RESPONSE
    )
    assert (
        mschapv2.authenticator_response(
            PASSWORD_HASH, NT_RESPONSE, PEER_CHALLENGE, AUTH_CHALLENGE, USER
        )
        == AUTHENTICATOR_RESPONSE
    )


def test_password_as_utf8_bytes_is_the_same_password():
    assert mschapv2.nt_password_hash(PASSWORD.encode()) == PASSWORD_HASH


def test_rfc2759_8_2_user_name_drops_the_domain():
    # "Only the user name (as presented by the peer and excluding any prepended domain name)"
    assert mschapv2.challenge_hash(PEER_CHALLENGE, AUTH_CHALLENGE, "CORP\\User") == CHALLENGE


def test_rfc3079_sample_key_derivation():
    assert mschapv2.master_key(PASSWORD_HASH, NT_RESPONSE) == MASTER_KEY
    # the server's send key is the client's receive key (§3.4 GetAsymmetricStartKey)
    assert (
        mschapv2.asymmetric_start_key(MASTER_KEY, 16, is_send=True, is_server=True)
        == SEND_START_KEY_128
    )
    assert (
        mschapv2.asymmetric_start_key(MASTER_KEY, 16, is_send=False, is_server=False)
        == SEND_START_KEY_128
    )


def test_msk_is_receive_key_send_key_and_padding():
    msk = mschapv2.msk(PASSWORD_HASH, NT_RESPONSE)
    assert len(msk) == 64  # an EAP MSK is 64 octets (RFC 3748 §7.10)
    assert msk[16:32] == SEND_START_KEY_128  # the server's send key, RFC 3079 §3.5.3
    assert msk[:16] == mschapv2.asymmetric_start_key(MASTER_KEY, 16, is_send=True, is_server=False)
    assert msk[:16] != msk[16:32] and msk[32:] == bytes(32)


def test_authenticator_response_check_ignores_hex_case():
    assert mschapv2.check_authenticator_response(
        AUTHENTICATOR_RESPONSE, AUTHENTICATOR_RESPONSE.lower()
    )
    assert not mschapv2.check_authenticator_response(AUTHENTICATOR_RESPONSE, b"S=" + b"0" * 40)
