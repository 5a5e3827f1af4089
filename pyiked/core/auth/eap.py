"""EAP (RFC 3748) as IKEv2 carries it (RFC 7296 §2.16): EAP-Identity, then EAP-MSCHAPv2.

The server (authenticator) is what a road-warrior gateway runs; the client (peer) lets the
engine be an EAP initiator, for tests and for pyiked as a client. Both are pure state
machines over whole EAP messages: no I/O, no IKE.

    server = EapServer(lookup_password, random)
    request = server.start()                           # EAP-Request/Identity
    status, message = server.process(response)         # CONTINUE + next request,
                                                       # SUCCESS + EAP-Success,
                                                       # FAILURE + EAP-Failure
    server.msk, server.user, server.identity

    client = EapClient(identity, password, random)
    status, message = client.process(request)          # CONTINUE + response,
                                                       # SUCCESS (EAP-Success) or FAILURE

EAP-MSCHAPv2 framing (draft-kamath-pppext-eap-mschapv2, RFC 2759 §4-§6): after the EAP
Type (26) come OpCode, MS-CHAPv2-ID, MS-Length (the EAP Length minus 5) and the data;
the peer's Success and Failure responses are the OpCode alone. A wrong password ends the
conversation with EAP-Failure at once: retries (R=1) only help a password guesser, and
Windows and strongSwan clients give up on the first Failure anyway.
"""

from __future__ import annotations

import enum
import hmac
import logging

from pyiked._fast import wire
from pyiked._fast.wireutil import eap_fields

from ..errors import InvalidSyntax
from ..iana import EapCode, EapType
from . import mschapv2

log = logging.getLogger("pyiked.engine")

OP_CHALLENGE, OP_RESPONSE, OP_SUCCESS, OP_FAILURE = 1, 2, 3, 4
SERVER_NAME = b"pyiked"
SUCCESS_MESSAGE = b" M=Welcome to pyiked"
MAX_IDENTITY = 253  # RFC 7542 §2.2 limits NAIs to 253 octets
RESPONSE_VALUE_SIZE = 49  # Peer-Challenge 16, Reserved 8, NT-Response 24, Flags 1


class Status(enum.Enum):
    CONTINUE = "continue"
    SUCCESS = "success"
    FAILURE = "failure"


def _fields(data: bytes):
    """(code, identifier, type, type data, EAP Length); ValueError if malformed."""
    data = bytes(data)
    try:
        code, identifier, eap_type, type_data = eap_fields(data)
    except InvalidSyntax as exc:
        raise ValueError(f"malformed EAP message: {exc}") from None
    return code, identifier, eap_type, type_data, int.from_bytes(data[2:4], "big")


def _message(code, identifier, eap_type=None, type_data=b"") -> bytes:
    return wire.EAP.build(code, identifier, eap_type, type_data).data


def _mschap(opcode: int, ms_id: int, body: bytes) -> bytes:
    """MSCHAPv2 type data: OpCode | MS-CHAPv2-ID | MS-Length | body (MS-Length = EAP length - 5)."""
    ms_length = 4 + len(body)
    return bytes((opcode, ms_id)) + ms_length.to_bytes(2, "big") + body


def _parse_mschap(type_data: bytes, eap_length: int):
    """(opcode, ms_id, body) of a full MSCHAPv2 packet; ValueError if malformed."""
    if len(type_data) < 4:
        raise ValueError("MSCHAPv2 packet shorter than its header")
    ms_length = int.from_bytes(type_data[2:4], "big")
    if ms_length != eap_length - 5:
        raise ValueError(f"MS-Length {ms_length} with an EAP Length of {eap_length}")
    return type_data[0], type_data[1], type_data[4:]


# -- server ---------------------------------------------------------------------------------


class EapServer:
    """The authenticator: Identity, MSCHAPv2 Challenge, Success request, EAP-Success."""

    def __init__(self, lookup_password, random, max_identity=MAX_IDENTITY):
        self._lookup = lookup_password  # user name -> password (bytes) or None
        self._random = random
        self._max_identity = max_identity
        self._state = "start"
        self._identifier = random(1)[0]
        self._ms_id = 0
        self._challenge = b""
        self.identity = None  # what the peer said in EAP-Identity
        self.user = None  # the user whose password proved right
        self.msk = b""
        self.reason = ""

    def __repr__(self):
        return f"<EapServer {self._state} identity={self.identity!r}>"

    def start(self) -> bytes:
        self._state = "identity"
        return _message(EapCode.REQUEST, self._identifier, EapType.IDENTITY)

    def _next_request(self, eap_type, type_data=b"") -> bytes:
        self._identifier = (self._identifier + 1) & 0xFF
        return _message(EapCode.REQUEST, self._identifier, eap_type, type_data)

    def _fail(self, reason: str):
        self._state = "failed"
        self.reason = reason
        self.msk = b""
        self._identifier = (self._identifier + 1) & 0xFF
        return Status.FAILURE, _message(EapCode.FAILURE, self._identifier)

    def process(self, data: bytes):
        try:
            code, identifier, eap_type, type_data, length = _fields(data)
        except ValueError as exc:
            return self._fail(str(exc))
        if code != EapCode.RESPONSE:
            return self._fail(f"EAP code {code} where a Response belongs")
        if identifier != self._identifier:  # RFC 3748 §4.1: a response matches its request
            return self._fail("EAP Identifier does not match our request")
        if eap_type == EapType.NAK:  # RFC 3748 §5.3: we offer nothing but MSCHAPv2
            return self._fail("the peer refused EAP-MSCHAPv2 (Nak)")
        if self._state == "identity":
            return self._on_identity(eap_type, type_data)
        if eap_type != EapType.MSCHAPV2:
            return self._fail(f"EAP type {eap_type} where MSCHAPv2 belongs")
        try:
            opcode, ms_id, body = self._parse_response(type_data, length)
        except ValueError as exc:
            return self._fail(str(exc))
        if self._state == "challenge" and opcode == OP_RESPONSE:
            return self._on_response(ms_id, body)
        if self._state == "success" and opcode == OP_SUCCESS:
            self._state = "done"
            self._identifier = (self._identifier + 1) & 0xFF
            return Status.SUCCESS, _message(EapCode.SUCCESS, self._identifier)
        return self._fail(f"MSCHAPv2 OpCode {opcode} in state {self._state}")

    @staticmethod
    def _parse_response(type_data, eap_length):
        if type_data[:1] in (bytes((OP_SUCCESS,)), bytes((OP_FAILURE,))) and len(type_data) == 1:
            return type_data[0], None, b""  # the peer's Success/Failure: the OpCode alone
        return _parse_mschap(type_data, eap_length)

    def _on_identity(self, eap_type, type_data):
        if eap_type != EapType.IDENTITY:
            return self._fail(f"EAP type {eap_type} where Identity belongs")
        if not type_data or len(type_data) > self._max_identity:
            return self._fail("empty or overlong EAP identity")
        try:
            self.identity = bytes(type_data).decode("utf-8")
        except UnicodeDecodeError:
            return self._fail("EAP identity is not UTF-8")
        self._challenge = self._random(mschapv2.CHALLENGE_LEN)
        self._ms_id = self._random(1)[0]
        self._state = "challenge"
        body = bytes((mschapv2.CHALLENGE_LEN,)) + self._challenge + SERVER_NAME
        return Status.CONTINUE, self._next_request(
            EapType.MSCHAPV2, _mschap(OP_CHALLENGE, self._ms_id, body)
        )

    def _on_response(self, ms_id, body):
        if ms_id != self._ms_id:
            return self._fail("MS-CHAPv2-ID does not match the challenge")
        if len(body) < 1 + RESPONSE_VALUE_SIZE or body[0] != RESPONSE_VALUE_SIZE:
            return self._fail("MSCHAPv2 Response of the wrong size")
        peer_challenge, nt_response = body[1:17], body[25:49]
        try:
            name = bytes(body[1 + RESPONSE_VALUE_SIZE :]).decode("utf-8")
        except UnicodeDecodeError:
            return self._fail("MSCHAPv2 Name is not UTF-8")
        user, password = self._find_user(name)
        if password is None:
            return self._fail(f"unknown EAP user {name!r}")
        password_hash = mschapv2.nt_password_hash(password)
        expected = mschapv2.nt_response_from_hash(
            self._challenge, peer_challenge, name, password_hash
        )
        if not hmac.compare_digest(expected, bytes(nt_response)):  # constant time
            return self._fail(f"wrong password for EAP user {user!r}")
        self.user = user
        self.msk = mschapv2.msk(password_hash, expected)
        auth = mschapv2.authenticator_response(
            password_hash, expected, peer_challenge, self._challenge, name
        )
        self._state = "success"
        return Status.CONTINUE, self._next_request(
            EapType.MSCHAPV2, _mschap(OP_SUCCESS, self._ms_id, auth + SUCCESS_MESSAGE)
        )

    def _find_user(self, name):
        """The `user` entry for a name, trying it whole and without a "DOMAIN\\" prefix."""
        for candidate in dict.fromkeys((name, mschapv2.user_name_part(name))):
            password = self._lookup(candidate)
            if password is not None:
                return candidate, password
        return name, None


# -- client -------------------------------------------------------------------------------


class EapClient:
    """The peer side: answers Identity and MSCHAPv2, checks the server's S= response."""

    def __init__(self, identity: str, password, random):
        self.identity = identity
        self._password = password
        self._random = random
        self._expected_auth = b""
        self._verified = False
        self.msk = b""
        self.reason = ""

    def __repr__(self):
        return f"<EapClient {self.identity!r}>"

    def _fail(self, reason):
        self.reason = reason
        self.msk = b""
        return Status.FAILURE, None

    def process(self, data: bytes):
        try:
            code, identifier, eap_type, type_data, length = _fields(data)
        except ValueError as exc:
            return self._fail(str(exc))
        if code == EapCode.SUCCESS:
            if not self._verified:  # RFC 2759 §8.8: never trust a server that did not prove itself
                return self._fail("EAP-Success before the server proved it knows the password")
            return Status.SUCCESS, None
        if code == EapCode.FAILURE:
            return self._fail("the server sent EAP-Failure")
        if code != EapCode.REQUEST:
            return self._fail(f"EAP code {code} where a Request belongs")
        if eap_type == EapType.IDENTITY:
            reply = _message(
                EapCode.RESPONSE, identifier, EapType.IDENTITY, self.identity.encode("utf-8")
            )
            return Status.CONTINUE, reply
        if eap_type != EapType.MSCHAPV2:
            # RFC 3748 §5.3.1: a Legacy Nak naming the method we can do
            return Status.CONTINUE, _message(
                EapCode.RESPONSE, identifier, EapType.NAK, bytes((EapType.MSCHAPV2,))
            )
        try:
            opcode, ms_id, body = _parse_mschap(type_data, length)
        except ValueError as exc:
            return self._fail(str(exc))
        if opcode == OP_CHALLENGE:
            return self._on_challenge(identifier, ms_id, body)
        if opcode == OP_SUCCESS:
            auth = bytes(body[:42])
            if not self._expected_auth or not mschapv2.check_authenticator_response(
                self._expected_auth, auth
            ):
                return self._fail("the server's authenticator response is wrong")
            self._verified = True
            return Status.CONTINUE, _message(
                EapCode.RESPONSE, identifier, EapType.MSCHAPV2, bytes((OP_SUCCESS,))
            )
        if opcode == OP_FAILURE:
            return self._fail("the server refused our MSCHAPv2 response")
        return self._fail(f"MSCHAPv2 OpCode {opcode}")

    def _on_challenge(self, identifier, ms_id, body):
        if len(body) < 1 + mschapv2.CHALLENGE_LEN or body[0] != mschapv2.CHALLENGE_LEN:
            return self._fail("MSCHAPv2 Challenge of the wrong size")
        challenge = bytes(body[1:17])
        peer_challenge = self._random(mschapv2.CHALLENGE_LEN)
        password_hash = mschapv2.nt_password_hash(self._password)
        nt_response = mschapv2.nt_response_from_hash(
            challenge, peer_challenge, self.identity, password_hash
        )
        self._expected_auth = mschapv2.authenticator_response(
            password_hash, nt_response, peer_challenge, challenge, self.identity
        )
        self.msk = mschapv2.msk(password_hash, nt_response)
        value = peer_challenge + bytes(8) + nt_response + b"\x00"
        body = bytes((RESPONSE_VALUE_SIZE,)) + value + self.identity.encode("utf-8")
        return Status.CONTINUE, _message(
            EapCode.RESPONSE, identifier, EapType.MSCHAPV2, _mschap(OP_RESPONSE, ms_id, body)
        )


__all__ = ["EapClient", "EapServer", "Status"]
