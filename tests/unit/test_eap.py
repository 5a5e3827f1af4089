"""EAP-Identity + EAP-MSCHAPv2 server and client (RFC 3748, RFC 2759, draft-kamath EAP framing)."""

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyiked.core.auth import mschapv2
from pyiked.core.auth.eap import EapClient, EapServer, Status

pytest.importorskip("Crypto.Hash.MD4", reason="EAP-MSCHAPv2 needs pycryptodome (the eap extra)")

# RFC 2759 §9.2 sample data
AUTH_CHALLENGE = bytes.fromhex("5B5D7C7D7B3F2F3E3C2C602132262628")
PEER_CHALLENGE = bytes.fromhex("21402324255E262A28295F2B3A337C7E")
NT_RESPONSE = bytes.fromhex("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF")
AUTHENTICATOR_RESPONSE = b"S=407A5589115FD0D6209F510FE9C04566932CDA56"

USERS = {"User": b"clientPass", "alice": b"alice-pk-pass-1"}


def scripted(*chunks):
    """A random source that returns the given chunks in order, then OS randomness."""
    queue = list(chunks)

    def random(n):
        if queue:
            chunk = queue.pop(0)
            assert len(chunk) == n
            return chunk
        return os.urandom(n)

    return random


def eap(code, identifier, eap_type=None, data=b""):
    body = b"" if eap_type is None else bytes((eap_type,)) + data
    return bytes((code, identifier)) + (4 + len(body)).to_bytes(2, "big") + body


def mschap(opcode, ms_id, body):
    return bytes((opcode, ms_id)) + (4 + len(body)).to_bytes(2, "big") + body


def test_server_answers_rfc2759_sample_response_with_the_rfc_authenticator_response():
    # identifier 7, then the challenge (RFC 2759 §9.2 AuthenticatorChallenge), MS-CHAPv2-ID 0x2a
    server = EapServer(USERS.get, scripted(b"\x07", AUTH_CHALLENGE, b"\x2a"))
    assert server.start() == eap(1, 7, 1)  # Request/Identity, no data
    status, request = server.process(eap(2, 7, 1, b"User"))
    assert status == Status.CONTINUE and server.identity == "User"
    assert request == eap(1, 8, 26, mschap(1, 0x2A, b"\x10" + AUTH_CHALLENGE + b"pyiked"))
    response = b"\x31" + PEER_CHALLENGE + bytes(8) + NT_RESPONSE + b"\x00" + b"User"
    status, request = server.process(eap(2, 8, 26, mschap(2, 0x2A, response)))
    assert status == Status.CONTINUE
    assert request[:9] == bytes((1, 9)) + len(request).to_bytes(2, "big") + bytes((26, 3, 0x2A)) + (
        len(request) - 5
    ).to_bytes(2, "big")
    assert request[9 : 9 + 42] == AUTHENTICATOR_RESPONSE
    assert server.user == "User" and server.msk == mschapv2.msk(
        mschapv2.nt_password_hash("clientPass"), NT_RESPONSE
    )
    status, final = server.process(eap(2, 9, 26, b"\x03"))  # the peer's Success: the OpCode alone
    assert status == Status.SUCCESS and final == eap(3, 10)


def run(server, client):
    message = server.start()
    while True:
        status, reply = client.process(message)
        if status != Status.CONTINUE:
            return status, None
        status, message = server.process(reply)
        if status == Status.FAILURE:
            return status, message


def test_client_and_server_agree_on_the_msk():
    server = EapServer(USERS.get, os.urandom)
    client = EapClient("alice", "alice-pk-pass-1", os.urandom)
    status, _ = run(server, client)
    assert status == Status.SUCCESS
    assert server.user == client.identity == "alice"
    assert len(server.msk) == 64 and server.msk == client.msk


def test_domain_prefix_finds_the_user():
    server = EapServer(USERS.get, os.urandom)
    status, _ = run(server, EapClient("CORP\\alice", "alice-pk-pass-1", os.urandom))
    assert status == Status.SUCCESS and server.user == "alice"


@pytest.mark.parametrize("user, password", [("alice", "wrong"), ("mallory", "alice-pk-pass-1")])
def test_wrong_password_or_unknown_user_ends_with_eap_failure(user, password):
    server = EapServer(USERS.get, os.urandom)
    status, message = run(server, EapClient(user, password, os.urandom))
    assert status == Status.FAILURE
    assert message[0] == 4 and len(message) == 4  # EAP-Failure (RFC 3748 §4.2)
    assert server.msk == b"" and server.user is None


def test_server_refuses_nak_other_codes_and_stale_identifiers():
    for reply in (
        eap(2, 1, 3, b"\x04"),
        eap(1, 1, 1, b"x"),
        eap(2, 2, 1, b"alice"),
        b"\x02\x01\x00",
    ):
        server = EapServer(USERS.get, scripted(b"\x01"))
        server.start()
        status, message = server.process(reply)
        assert status == Status.FAILURE and message[0] == 4


def test_server_checks_ms_length_and_value_size():
    server = EapServer(USERS.get, scripted(b"\x01", AUTH_CHALLENGE, b"\x05"))
    server.start()
    server.process(eap(2, 1, 1, b"User"))
    good = b"\x31" + PEER_CHALLENGE + bytes(8) + NT_RESPONSE + b"\x00" + b"User"
    bad_length = bytes((2, 5)) + (99).to_bytes(2, "big") + good
    assert server.process(eap(2, 2, 26, bad_length))[0] == Status.FAILURE


def test_client_refuses_a_server_that_does_not_know_the_password():
    server = EapServer({"alice": b"another password"}.get, os.urandom)
    client = EapClient("alice", "alice-pk-pass-1", os.urandom)
    message = server.start()
    _, reply = client.process(message)
    _, challenge = server.process(reply)
    _, reply = client.process(challenge)
    # a server that claims success without the password sends a wrong S=
    forged = eap(1, challenge[1] + 1, 26, mschap(3, challenge[6], b"S=" + b"0" * 40 + b" M=ok"))
    assert client.process(forged) == (Status.FAILURE, None)


def test_client_refuses_eap_success_before_the_server_proved_itself():
    client = EapClient("alice", "x", os.urandom)
    assert client.process(eap(3, 1)) == (Status.FAILURE, None)


def test_client_naks_other_methods():
    client = EapClient("alice", "x", os.urandom)
    status, reply = client.process(eap(1, 3, 4, b"\x10" + bytes(16)))  # MD5-Challenge
    assert status == Status.CONTINUE and reply == eap(2, 3, 3, b"\x1a")  # Legacy Nak: MSCHAPv2


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80), st.integers(0, 3))
def test_hostile_messages_never_raise(data, steps):
    server = EapServer(USERS.get, os.urandom)
    client = EapClient("alice", "alice-pk-pass-1", os.urandom)
    message = server.start()
    for _ in range(steps):  # advance a real conversation, then inject junk
        status, reply = client.process(message)
        if status != Status.CONTINUE:
            break
        status, message = server.process(reply)
        if status != Status.CONTINUE:
            break
    assert server.process(data)[0] in (Status.FAILURE, Status.CONTINUE, Status.SUCCESS)
    assert client.process(data)[0] in (Status.FAILURE, Status.CONTINUE, Status.SUCCESS)
