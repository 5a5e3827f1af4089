"""Raw IKE_SA_INIT requests for DoS tests and the flood bench: a real request made by an
initiator engine, then copied with other SPIs, and COOKIE notifies put in front."""

from __future__ import annotations

import struct

from pyiked.config.model import Policy
from pyiked.core.iana import ExchangeType

from .simnet import A_IP, B_IP, engine_for, psk_policy

COOKIE_TYPE = 16390


def template(seed=99, policy: Policy | None = None, local=(A_IP, 500), remote=(B_IP, 500)) -> bytes:
    """One IKE_SA_INIT request as an initiator engine sends it (X25519, NAT-D notifies)."""
    policy = policy or psk_policy("t", A_IP, B_IP, "10.231.1.0/24", "10.231.2.0/24", "a.pk.test",
                                  "b.pk.test", active=True)
    engine = engine_for([policy], seed)
    engine.initiate(policy, 0.0, local, remote)
    ((data, _, _),) = engine.datagrams_to_send()
    assert data[18] == ExchangeType.IKE_SA_INIT
    return data


def with_spi(data: bytes, spi: bytes) -> bytes:
    return spi + data[8:]


def with_cookie(data: bytes, cookie: bytes) -> bytes:
    """The request with N(COOKIE) as its first payload (RFC 7296 §2.6)."""
    first = data[16]
    notify = struct.pack("!BBHBBH", first, 0, 8 + len(cookie), 0, 0, COOKIE_TYPE) + cookie
    body = notify + data[28:]
    return data[:16] + bytes((41,)) + data[17:24] + struct.pack("!I", 28 + len(body)) + body


def cookie_of(response: bytes) -> bytes | None:
    """The cookie in a `HDR, N(COOKIE)` response, or None."""
    if len(response) < 36 or response[16] != 41:
        return None
    if struct.unpack("!H", response[34:36])[0] != COOKIE_TYPE:
        return None
    return response[36:]


def spoofed(n: int, base: bytes | None = None, net_prefix="10.231.") -> list[tuple[bytes, tuple]]:
    """n requests with distinct SPIs from distinct addresses in 10.231.64.0/18."""
    base = base or template()
    out = []
    for i in range(n):
        spi = struct.pack("!Q", 0x5000000000000000 + i + 1)
        ip = f"{net_prefix}{64 + (i >> 8) % 64}.{i & 0xFF}"
        out.append((with_spi(base, spi), (ip, 500)))
    return out
