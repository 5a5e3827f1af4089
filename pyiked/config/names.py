"""The names iked.conf uses for transforms, configuration options and protocols.

Transform names are OpenIKED's (parse.y tables, iked.conf(5) "CRYPTO TRANSFORMS"), plus
pyiked's extensions: curve448, mlkem768/mlkem1024 (RFC 9370 / ML-KEM key exchange), and
chacha20-poly1305 and aes-192-gcm for the IKE SA too (RFC 7634, RFC 5282). Each entry
also says where OpenIKED allows it ("ike", "esp" or both) and whether the cipher is an
AEAD (then the proposal carries no integrity transform, RFC 5282 §8).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from pyiked.core.iana import EncrId, EsnId, IntegId, KeId, PrfId

BOTH = ("ike", "esp")
IKE_ONLY = ("ike",)
ESP_ONLY = ("esp",)


@dataclass(frozen=True, slots=True)
class EncrName:
    encr: int
    bits: int  # Key Length attribute (RFC 7296 §3.3.5); 0 for fixed-length ciphers
    aead: bool
    where: tuple[str, ...]


ENCR = {
    "3des": EncrName(EncrId.TRIPLE_DES, 0, False, BOTH),
    "3des-cbc": EncrName(EncrId.TRIPLE_DES, 0, False, BOTH),
    "aes-128": EncrName(EncrId.AES_CBC, 128, False, BOTH),
    "aes-192": EncrName(EncrId.AES_CBC, 192, False, BOTH),
    "aes-256": EncrName(EncrId.AES_CBC, 256, False, BOTH),
    "aes-128-ctr": EncrName(EncrId.AES_CTR, 128, False, ESP_ONLY),
    "aes-192-ctr": EncrName(EncrId.AES_CTR, 192, False, ESP_ONLY),
    "aes-256-ctr": EncrName(EncrId.AES_CTR, 256, False, ESP_ONLY),
    "aes-128-gcm": EncrName(EncrId.AES_GCM_16, 128, True, BOTH),
    "aes-192-gcm": EncrName(EncrId.AES_GCM_16, 192, True, BOTH),
    "aes-256-gcm": EncrName(EncrId.AES_GCM_16, 256, True, BOTH),
    "aes-128-gcm-12": EncrName(EncrId.AES_GCM_12, 128, True, BOTH),
    "aes-256-gcm-12": EncrName(EncrId.AES_GCM_12, 256, True, BOTH),
    "aes-128-gmac": EncrName(EncrId.NULL_AUTH_AES_GMAC, 128, True, ESP_ONLY),
    "aes-192-gmac": EncrName(EncrId.NULL_AUTH_AES_GMAC, 192, True, ESP_ONLY),
    "aes-256-gmac": EncrName(EncrId.NULL_AUTH_AES_GMAC, 256, True, ESP_ONLY),
    "blowfish": EncrName(EncrId.BLOWFISH, 160, False, ESP_ONLY),
    "cast": EncrName(EncrId.CAST, 128, False, ESP_ONLY),
    "chacha20-poly1305": EncrName(EncrId.CHACHA20_POLY1305, 0, True, BOTH),
    "null": EncrName(EncrId.NULL, 0, False, ESP_ONLY),
}

PRF = {
    "hmac-md5": PrfId.HMAC_MD5,
    "hmac-sha1": PrfId.HMAC_SHA1,
    "hmac-sha2-256": PrfId.HMAC_SHA2_256,
    "hmac-sha2-384": PrfId.HMAC_SHA2_384,
    "hmac-sha2-512": PrfId.HMAC_SHA2_512,
}

INTEG = {
    "hmac-md5": IntegId.HMAC_MD5_96,
    "hmac-sha1": IntegId.HMAC_SHA1_96,
    "hmac-sha2-256": IntegId.HMAC_SHA2_256_128,
    "hmac-sha2-384": IntegId.HMAC_SHA2_384_192,
    "hmac-sha2-512": IntegId.HMAC_SHA2_512_256,
}

# OpenIKED's private-use ID for its sntrup761 + X25519 hybrid (not an IANA number).
SNTRUP761X25519 = 1035

GROUP = {
    "none": KeId.NONE,
    "modp768": KeId.MODP768,
    "grp1": KeId.MODP768,
    "modp1024": KeId.MODP1024,
    "grp2": KeId.MODP1024,
    "modp1536": KeId.MODP1536,
    "grp5": KeId.MODP1536,
    "modp2048": KeId.MODP2048,
    "grp14": KeId.MODP2048,
    "modp3072": KeId.MODP3072,
    "grp15": KeId.MODP3072,
    "modp4096": KeId.MODP4096,
    "grp16": KeId.MODP4096,
    "modp6144": KeId.MODP6144,
    "grp17": KeId.MODP6144,
    "modp8192": KeId.MODP8192,
    "grp18": KeId.MODP8192,
    "ecp256": KeId.ECP256,
    "grp19": KeId.ECP256,
    "ecp384": KeId.ECP384,
    "grp20": KeId.ECP384,
    "ecp521": KeId.ECP521,
    "grp21": KeId.ECP521,
    "ecp192": KeId.ECP192,
    "grp25": KeId.ECP192,
    "ecp224": KeId.ECP224,
    "grp26": KeId.ECP224,
    "brainpool224": KeId.BRAINPOOL_P224R1,
    "grp27": KeId.BRAINPOOL_P224R1,
    "brainpool256": KeId.BRAINPOOL_P256R1,
    "grp28": KeId.BRAINPOOL_P256R1,
    "brainpool384": KeId.BRAINPOOL_P384R1,
    "grp29": KeId.BRAINPOOL_P384R1,
    "brainpool512": KeId.BRAINPOOL_P512R1,
    "grp30": KeId.BRAINPOOL_P512R1,
    "curve25519": KeId.CURVE25519,
    "grp31": KeId.CURVE25519,
    "curve448": KeId.CURVE448,
    "grp32": KeId.CURVE448,
    "mlkem768": KeId.ML_KEM_768,
    "mlkem1024": KeId.ML_KEM_1024,
    "sntrup761x25519": SNTRUP761X25519,
}

ESN = {"esn": EsnId.ESN, "noesn": EsnId.NO_ESN}

# Authentication methods after the transforms (parse.y methodxfs); `psk` and `eap` have
# their own syntax.
AUTH_METHODS = ("rsa", "ecdsa256", "ecdsa384", "ecdsa521", "rfc7427", "signature")
EAP_METHODS = {"mschap-v2": "mschap-v2"}  # parse.y compares case-insensitively, - as _


def _first_names(table):
    out = {}
    for name, value in table.items():
        out.setdefault(value, name)
    return out


ENCR_BY_ID = {(v.encr, v.bits): name for name, v in ENCR.items() if name != "3des-cbc"}
PRF_BY_ID = _first_names(PRF)
INTEG_BY_ID = _first_names(INTEG)
GROUP_BY_ID = {v: k for k, v in GROUP.items() if not k.startswith("grp")}
ESN_BY_ID = _first_names(ESN)


def encr_name(encr: int, bits: int) -> str:
    return ENCR_BY_ID[(encr, bits)]


# -- configuration payload options (parse.y cpxfs) ------------------------------------

# option -> (IPv4 allowed, IPv6 allowed, takes a network)
CFG_OPTIONS = {
    "address": (True, True, True),  # a host (static) or a network (a pool)
    "netmask": (True, False, False),
    "name-server": (True, True, False),
    "netbios-server": (True, True, False),
    "dhcp-server": (True, True, False),
    "protected-subnet": (True, True, True),
    "access-server": (True, True, False),
}

# -- IP protocols and ports -------------------------------------------------------------

# Stable names first, so the canonical form does not depend on the host's /etc/protocols.
PROTOCOLS = {
    "icmp": 1,
    "igmp": 2,
    "ipencap": 4,
    "ipip": 4,
    "tcp": 6,
    "udp": 17,
    "ipv6": 41,
    "gre": 47,
    "esp": 50,
    "ah": 51,
    "ipv6-icmp": 58,
    "icmp6": 58,
    "ospf": 89,
    "pim": 103,
    "l2tp": 115,
    "sctp": 132,
    "udplite": 136,
}
PROTOCOL_NAMES = _first_names(PROTOCOLS)
PORT_PROTOCOLS = frozenset({6, 17, 132, 136})  # protocols whose selectors carry ports


def protocol_number(name: str) -> int | None:
    if name in PROTOCOLS:
        return PROTOCOLS[name]
    try:
        return socket.getprotobyname(name)
    except OSError:
        return None


def protocol_name(number: int) -> str:
    return PROTOCOL_NAMES.get(number, str(number))


def port_number(name: str) -> int | None:
    """A service name from /etc/services, tcp first then udp (parse.y portval)."""
    for proto in ("tcp", "udp"):
        try:
            return socket.getservbyname(name, proto)
        except OSError:
            continue
    return None
