"""packet_flow: the selector view of IP packets built by scapy (the oracle for layouts),
in both `_fast.esp` implementations."""

import ipaddress

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import (
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)

from pyiked.core.errors import EspError
from tests.helpers import fast_impls

IMPLS = fast_impls("esp")
impls = pytest.mark.parametrize("impl", [m for _, m in IMPLS], ids=[k for k, _ in IMPLS])
A4, B4 = "10.231.41.1", "10.231.42.7"
A6, B6 = "fd00:231:41::1", "fd00:231:42::7"


def n(addr):
    return int(ipaddress.ip_address(addr))


@impls
@pytest.mark.parametrize("pkt,expect", [
    (IP(src=A4, dst=B4) / TCP(sport=40000, dport=443), (6, 40000, 443)),
    (IP(src=A4, dst=B4) / UDP(sport=500, dport=4500) / (b"x" * 30), (17, 500, 4500)),
    (IP(src=A4, dst=B4, options=b"\x01" * 4) / UDP(sport=1, dport=2), (17, 1, 2)),
    (IP(src=A4, dst=B4) / ICMP(type=8, code=0), (1, 0x0800, 0x0800)),
    (IP(src=A4, dst=B4, proto=47) / b"gre!", (47, 0, 0)),
    (IP(src=A4, dst=B4, proto=17, frag=10) / b"tail of a fragment", (17, -1, -1)),
])
def test_ipv4(impl, pkt, expect):
    raw = bytes(pkt)
    assert impl.packet_flow(raw) == (4, n(A4), n(B4), *expect, len(raw))


@impls
@pytest.mark.parametrize("pkt,expect", [
    (IPv6(src=A6, dst=B6) / TCP(sport=1234, dport=22), (6, 1234, 22)),
    (IPv6(src=A6, dst=B6) / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / UDP(sport=7, dport=9), (17, 7, 9)),
    (IPv6(src=A6, dst=B6) / IPv6ExtHdrRouting() / ICMPv6EchoRequest(), (58, 0x8000, 0x8000)),
    (IPv6(src=A6, dst=B6) / IPv6ExtHdrFragment(offset=0, m=1) / UDP(sport=5, dport=6), (17, 5, 6)),
    (IPv6(src=A6, dst=B6) / IPv6ExtHdrFragment(offset=100, nh=17) / b"later fragment", (17, -1, -1)),
])
def test_ipv6(impl, pkt, expect):
    raw = bytes(pkt)
    assert impl.packet_flow(raw) == (6, n(A6), n(B6), *expect, len(raw))


@impls
def test_padding_after_the_ip_length_is_not_part_of_it(impl):
    raw = bytes(IP(src=A4, dst=B4) / UDP(sport=1, dport=2))
    assert impl.packet_flow(raw + bytes(11))[-1] == len(raw)


@impls
@pytest.mark.parametrize("raw", [
    b"", bytes(19), b"\x45" + bytes(19),  # total length 0
    bytes(IP(src=A4, dst=B4) / TCP())[:22],  # TCP header cut
    bytes(IP(src=A4, dst=B4) / ICMP())[:21],
    bytes(IPv6(src=A6, dst=B6) / UDP())[:44],
    bytes(IPv6(src=A6, dst=B6, plen=500) / UDP()),  # longer than the packet
    b"\x55" + bytes(40),  # version 5
    bytes(IPv6(src=A6, dst=B6) / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt()
          / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt()
          / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / UDP()),  # too many extension headers
])
def test_malformed(impl, raw):
    with pytest.raises(EspError):
        impl.packet_flow(raw)
