"""Address pools and configuration payload attributes (RFC 7296 §3.15)."""

import ipaddress
import random

import pytest

from pyiked._fast import wire
from pyiked.config.model import CfgOption, Policy
from pyiked.core import cp
from pyiked.core.errors import InvalidSyntax
from pyiked.core.iana import CfgAttr, CfgType
from pyiked.core.pool import AddressPool, Pools

A = ipaddress.ip_address


def rng(seed=1):
    return random.Random(seed).randbytes


@pytest.mark.parametrize(
    "network, size, first, last",
    [
        ("10.0.0.0/24", 254, "10.0.0.1", "10.0.0.254"),  # no network, no broadcast address
        ("10.0.0.0/30", 2, "10.0.0.1", "10.0.0.2"),
        ("10.0.0.0/31", 2, "10.0.0.0", "10.0.0.1"),  # RFC 3021
        ("10.0.0.7/32", 1, "10.0.0.7", "10.0.0.7"),  # a static address
        ("2001:db8::/120", 255, "2001:db8::1", "2001:db8::ff"),  # no Subnet-Router anycast
    ],
)
def test_pool_ranges(network, size, first, last):
    pool = AddressPool(network)
    got = {pool.acquire(bytes([i]) * 8, ("id", i), rng(i)) for i in range(size)}
    assert len(got) == size and min(got) == A(first) and max(got) == A(last)
    assert pool.acquire(b"x" * 8, ("id", "x"), rng()) is None  # full
    assert pool.release(pool.leases[int(A(first))], A(first)) and pool.free == 1
    assert pool.acquire(b"x" * 8, ("id", "x"), rng()) == A(first)


def test_release_frees_only_the_owners_lease():
    pool = AddressPool("10.0.0.0/30")
    a = pool.acquire(b"A" * 8, "alice", rng())
    assert not pool.release(b"B" * 8, a)
    assert pool.release(b"A" * 8, a) and pool.free == 2


def test_random_start_spreads_leases():
    firsts = {AddressPool("10.0.0.0/16").acquire(b"s" * 8, "x", rng(seed)) for seed in range(20)}
    assert len(firsts) > 15


def test_sticky_address_follows_the_identity():
    pool = AddressPool("10.0.0.0/24")
    first = pool.acquire(b"A" * 8, "alice", rng(1), sticky=True)
    pool.acquire(b"B" * 8, "bob", rng(2), sticky=True)
    pool.release(b"A" * 8, first)
    assert pool.acquire(b"C" * 8, "alice", rng(3), sticky=True) == first  # back after a reconnect
    stolen = []
    # a newer SA of the same identity takes it from the older one that still holds it
    assert pool.acquire(b"D" * 8, "alice", rng(4), sticky=True, steal=stolen.append) == first
    assert stolen == [b"C" * 8]
    assert not pool.release(b"C" * 8, first)  # the older SA's release no longer frees it
    assert pool.leases[int(first)] == b"D" * 8


def test_sticky_never_takes_another_identitys_address():
    pool = AddressPool("10.0.0.9/32")
    a = pool.acquire(b"A" * 8, "alice", rng(), sticky=True)
    pool.release(b"A" * 8, a)
    assert pool.acquire(b"B" * 8, "bob", rng(), sticky=True) == a  # the only address
    assert pool.acquire(b"C" * 8, "alice", rng(), sticky=True, steal=pytest.fail) is None


def test_pools_are_kept_per_policy_and_network():
    pools = Pools()
    assert pools.get("rw", "10.0.0.0/24") is pools.get("rw", ipaddress.ip_network("10.0.0.0/24"))
    assert pools.get("rw", "10.0.0.0/24") is not pools.get("other", "10.0.0.0/24")


@pytest.mark.parametrize(
    "attr, raw, value",
    [
        (CfgAttr.INTERNAL_IP4_ADDRESS, "0a000005", A("10.0.0.5")),
        (CfgAttr.INTERNAL_IP4_NETMASK, "ffffff00", A("255.255.255.0")),
        (CfgAttr.INTERNAL_IP4_DNS, "0ae70201", A("10.231.2.1")),
        (CfgAttr.INTERNAL_IP4_SUBNET, "0ae70200ffffff00", ipaddress.ip_network("10.231.2.0/24")),
        (CfgAttr.INTERNAL_IP6_ADDRESS, "20010db8" + "00" * 11 + "05" + "80", A("2001:db8::5")),
        (
            CfgAttr.INTERNAL_IP6_SUBNET,
            "20010db8" + "00" * 12 + "40",
            ipaddress.ip_network("2001:db8::/64"),
        ),
        (CfgAttr.INTERNAL_IP6_DNS, "20010db8" + "00" * 11 + "53", A("2001:db8::53")),
        (CfgAttr.INTERNAL_IP4_ADDRESS, "", None),  # §3.15.1: empty asks for one
    ],
)
def test_attribute_values(attr, raw, value):
    assert cp.decode_attribute(attr, bytes.fromhex(raw)) == value


@pytest.mark.parametrize(
    "attr, raw",
    [
        (CfgAttr.INTERNAL_IP4_ADDRESS, "0a0000"),
        (CfgAttr.INTERNAL_IP6_ADDRESS, "20010db8" + "00" * 12),  # no prefix length
        (CfgAttr.INTERNAL_IP6_ADDRESS, "20010db8" + "00" * 12 + "81"),  # prefix length 129
        (CfgAttr.INTERNAL_IP4_SUBNET, "0a000000ff00ff00"),  # not a contiguous mask
    ],
)
def test_malformed_attributes(attr, raw):
    with pytest.raises(InvalidSyntax):
        cp.decode_attribute(attr, bytes.fromhex(raw))


def test_request_payload_from_request_options():
    policy = Policy(
        "c",
        request=(
            CfgOption("address", None),
            CfgOption("name-server", None),
            CfgOption("address", A("2001:db8::9")),
        ),
    )
    request = cp.request_payload(policy)
    assert request.cfg_type == CfgType.CFG_REQUEST
    assert request.attributes == [
        (CfgAttr.INTERNAL_IP4_ADDRESS, b""),
        (CfgAttr.INTERNAL_IP4_DNS, b""),
        (CfgAttr.INTERNAL_IP6_ADDRESS, A("2001:db8::9").packed + b"\x80"),
    ]
    assert cp.wants_address(request) == {4, 6}
    assert cp.request_payload(Policy("none")) is None
    assert cp.wants_address(wire.CP(CfgType.CFG_SET, [(1, b"")])) == set()
