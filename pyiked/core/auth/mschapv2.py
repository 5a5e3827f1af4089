"""MS-CHAPv2 (RFC 2759) and its MPPE key derivation (RFC 3079), as EAP-MSCHAPv2 uses them.

MD4 and single DES are legacy primitives `cryptography` no longer offers; they come from
pycryptodome (the `eap` extra: `pip install pyiked[eap]`), imported only when EAP runs.

    nt_password_hash(password)                     RFC 2759 §8.3
    challenge_hash(peer_challenge, auth_challenge, user_name)       §8.2
    generate_nt_response(auth_challenge, peer_challenge, user_name, password)  §8.1
    authenticator_response(password_hash, nt_response, peer_challenge,
                           auth_challenge, user_name)  -> b"S=<40 hex>"  §8.7
    msk(password_hash, nt_response) -> 64 octets    the EAP MSK (RFC 3079 §3.3, §3.4)

Passwords are str (they are hashed as UTF-16LE, RFC 2759 §8.3) or bytes holding UTF-8.
Nothing here logs or keeps a secret.
"""

from __future__ import annotations

import hashlib
import hmac

# RFC 2759 §8.7
_MAGIC1 = b"Magic server to client signing constant"
_MAGIC2 = b"Pad to make it do more than one iteration"
# RFC 3079 §3.3 / §3.4
_MASTER_MAGIC = b"This is the MPPE Master Key"
_SEND_CLIENT = (
    b"On the client side, this is the send key; on the server side, it is the receive key."
)
_RECV_CLIENT = (
    b"On the client side, this is the receive key; on the server side, it is the send key."
)
_SHS_PAD1 = b"\x00" * 40
_SHS_PAD2 = b"\xf2" * 40

CHALLENGE_LEN = 16
NT_RESPONSE_LEN = 24
MSK_LEN = 64


def available() -> bool:
    """Whether the legacy primitives (pycryptodome) are installed."""
    try:
        from Crypto.Cipher import DES  # noqa: F401
        from Crypto.Hash import MD4  # noqa: F401
    except ImportError:
        return False
    return True


def _md4(data: bytes) -> bytes:
    from Crypto.Hash import MD4

    return MD4.new(data).digest()


def _des(key7: bytes, block: bytes) -> bytes:
    """RFC 2759 §8.6 DesEncrypt: a 7-octet key spread over 8 (parity bits are ignored)."""
    from Crypto.Cipher import DES

    bits = int.from_bytes(key7, "big")
    key8 = bytes((((bits >> (49 - 7 * i)) & 0x7F) << 1) for i in range(8))
    return DES.new(key8, DES.MODE_ECB).encrypt(block)


def _utf16(password) -> bytes:
    if isinstance(password, (bytes, bytearray)):
        password = bytes(password).decode("utf-8")
    return password.encode("utf-16-le")


def user_name_part(name: str) -> str:
    """RFC 2759 §8.2: the user name without a prepended domain ("DOMAIN\\\\user")."""
    return name.rpartition("\\")[2]


def nt_password_hash(password) -> bytes:
    """RFC 2759 §8.3: MD4 of the UTF-16LE password."""
    return _md4(_utf16(password))


def hash_nt_password_hash(password_hash: bytes) -> bytes:
    """RFC 2759 §8.4."""
    return _md4(password_hash)


def challenge_hash(peer_challenge: bytes, auth_challenge: bytes, user_name: str) -> bytes:
    """RFC 2759 §8.2: the first 8 octets of SHA-1(PeerChallenge | AuthChallenge | UserName)."""
    name = user_name_part(user_name).encode("utf-8")
    return hashlib.sha1(peer_challenge + auth_challenge + name).digest()[:8]


def challenge_response(challenge: bytes, password_hash: bytes) -> bytes:
    """RFC 2759 §8.5: three DES encryptions under the zero-padded 21-octet hash."""
    key = password_hash + b"\x00" * (21 - len(password_hash))
    return b"".join(_des(key[i : i + 7], challenge) for i in (0, 7, 14))


def nt_response_from_hash(auth_challenge, peer_challenge, user_name, password_hash) -> bytes:
    return challenge_response(
        challenge_hash(peer_challenge, auth_challenge, user_name), password_hash
    )


def generate_nt_response(
    auth_challenge: bytes, peer_challenge: bytes, user_name: str, password
) -> bytes:
    """RFC 2759 §8.1 GenerateNTResponse."""
    return nt_response_from_hash(
        auth_challenge, peer_challenge, user_name, nt_password_hash(password)
    )


def authenticator_response(
    password_hash: bytes,
    nt_response: bytes,
    peer_challenge: bytes,
    auth_challenge: bytes,
    user_name: str,
) -> bytes:
    """RFC 2759 §8.7 GenerateAuthenticatorResponse: b"S=" and 40 upper-case hex digits."""
    digest = hashlib.sha1(hash_nt_password_hash(password_hash) + nt_response + _MAGIC1).digest()
    digest = hashlib.sha1(
        digest + challenge_hash(peer_challenge, auth_challenge, user_name) + _MAGIC2
    ).digest()
    return b"S=" + digest.hex().upper().encode()


def check_authenticator_response(expected: bytes, received: bytes) -> bool:
    """RFC 2759 §8.8: case-insensitive hex, compared in constant time."""
    return hmac.compare_digest(expected.upper(), bytes(received).upper())


def master_key(password_hash: bytes, nt_response: bytes) -> bytes:
    """RFC 3079 §3.4 GetMasterKey."""
    return hashlib.sha1(
        hash_nt_password_hash(password_hash) + nt_response + _MASTER_MAGIC
    ).digest()[:16]


def asymmetric_start_key(master: bytes, length: int, is_send: bool, is_server: bool) -> bytes:
    """RFC 3079 §3.4 GetAsymmetricStartKey."""
    magic = _RECV_CLIENT if is_send == is_server else _SEND_CLIENT
    return hashlib.sha1(master + _SHS_PAD1 + magic + _SHS_PAD2).digest()[:length]


def msk(password_hash: bytes, nt_response: bytes) -> bytes:
    """The EAP-MSCHAPv2 MSK: the server's receive key, its send key (RFC 3079 §3.4, 128-bit
    keys), then 32 zero octets to the 64 octets of an EAP MSK (RFC 3748 §7.10). Both ends
    compute the same string; IKEv2 uses all of it as the shared key (RFC 7296 §2.16)."""
    master = master_key(password_hash, nt_response)
    receive = asymmetric_start_key(master, 16, is_send=False, is_server=True)
    send = asymmetric_start_key(master, 16, is_send=True, is_server=True)
    return receive + send + b"\x00" * 32
