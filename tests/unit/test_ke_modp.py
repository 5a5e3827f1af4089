"""MODP groups: the primes, the wire format and RFC 6989 §2.1 range checks.

The primes are recomputed from the definition RFC 2409 §6.2 / RFC 3526 give:
p = 2^n - 2^(n-64) - 1 + 2^64 * (floor(2^(n-130) * pi) + k), with the RFC's k, and
checked against scapy's independent copy of the RFC tables.
"""

import pytest

from pyiked.core import modp
from pyiked.core.errors import InvalidSyntax
from pyiked.core.ke import KeyExchange

# group: (bits, k) from RFC 2409 §6.2 and RFC 3526 §2-§7
RFC_K = {2: (1024, 129093), 5: (1536, 741804), 14: (2048, 124476), 15: (3072, 1690314),
         16: (4096, 240904), 17: (6144, 929484), 18: (8192, 4743158)}


def _pi_fixed(bits):
    """floor(pi * 2^bits) by Machin's formula in integer arithmetic (guard bits added)."""
    guard = 64
    one = 1 << (bits + guard)

    def arctan_inv(x):
        total, term, n, sign = 0, one // x, 1, 1
        x2 = x * x
        while term:
            total += sign * (term // n)
            term //= x2
            n += 2
            sign = -sign
        return total

    return (4 * (4 * arctan_inv(5) - arctan_inv(239))) >> guard


@pytest.mark.parametrize("group", sorted(RFC_K))
def test_primes_follow_the_rfc_definition(group):
    n, k = RFC_K[group]
    p = 2**n - 2 ** (n - 64) - 1 + 2**64 * (_pi_fixed(n - 130) + k)
    assert modp.PRIMES[group] == p
    assert modp.GENERATOR == 2


def test_primes_match_scapy_tables():
    from scapy.layers.tls.crypto import groups

    for group, name in ((2, "modp1024"), (5, "modp1536"), (14, "modp2048"), (15, "modp3072"),
                        (16, "modp4096"), (17, "modp6144"), (18, "modp8192")):
        assert getattr(groups, name).m == modp.PRIMES[group]


@pytest.mark.parametrize("group", [2, 5, 14, 15])
def test_exchange_and_padding(group):
    a, b = KeyExchange(group), KeyExchange(group)
    size = modp.PRIMES[group].bit_length() // 8
    pa = a.public_value()
    assert len(pa) == size  # RFC 7296 §3.4: left-padded to the modulus length
    shared = b.respond(pa)
    assert len(shared) == size
    assert a.complete(b.public_value()) == shared


def test_injected_random_is_deterministic_and_padded():
    a = KeyExchange(14, random=lambda n: b"\x01" * n)
    b = KeyExchange(14, random=lambda n: b"\x01" * n)
    assert a.public_value() == b.public_value()
    y = pow(2, int.from_bytes(b"\x01" * 32, "big"), modp.PRIMES[14])
    assert a.public_value() == y.to_bytes(256, "big")
    # a small public value is still sent as 256 octets
    tiny = KeyExchange(14, random=lambda n: b"\x00" * (n - 1) + b"\x05")
    assert tiny.public_value() == (32).to_bytes(256, "big")


@pytest.mark.parametrize("group", [2, 14, 18])
def test_range_check_rfc6989(group):
    p = modp.PRIMES[group]
    size = p.bit_length() // 8
    for y in (0, 1, p - 1, p, p + 1, 2**(8 * size) - 1):
        with pytest.raises(InvalidSyntax):
            KeyExchange(14 if group == 14 else group).respond(y.to_bytes(size, "big"))


def test_wrong_length_and_boundaries():
    p = modp.PRIMES[14]
    good = KeyExchange(14).public_value()
    for value in (good[1:], b"\x00" + good, b""):
        with pytest.raises(InvalidSyntax):
            KeyExchange(14).respond(value)
    # 2 and p - 2 are inside the range and accepted
    KeyExchange(14).respond((2).to_bytes(256, "big"))
    KeyExchange(14).respond((p - 2).to_bytes(256, "big"))
