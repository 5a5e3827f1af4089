"""Malformed input: truncation at every offset, bad lengths, critical bits, bad versions,
overlong chains, broken substructures. Each gives its typed IkeError (with the RFC
reaction and the offset) and never any other exception."""

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyiked._fast import wire
from pyiked.core.errors import (
    IkeError,
    InvalidMajorVersion,
    InvalidSyntax,
    SilentDrop,
    UnsupportedCriticalPayload,
)
from pyiked.core.iana import NotifyType as NT
from tests.unit.test_wire_codec import (
    SA_BODY,
    VECTORS,
    chain,
    generic,
    message,
    proposal,
    transform,
)
from tests.unit.wire_data import CAPTURES, decrypt_sk, ike_messages


def error(data, fn=None, *args):
    fn = fn or wire.decode
    with pytest.raises(IkeError) as info:
        fn(data, *args)
    return info.value


def refit(raw):
    """raw with its header Length set to its real size (to reach the payload checks)."""
    return raw[:24] + struct.pack("!I", len(raw)) + raw[28:]


def real_messages():
    return [raw for cap in CAPTURES for _, raw in ike_messages(cap)]


def real_inner_chains():
    out = []
    for cap in CAPTURES:
        for _, raw in ike_messages(cap):
            m = wire.decode(raw)
            sk = m.payloads[-1]
            if type(sk) is wire.SK and sk.next_payload:
                out.append((decrypt_sk(cap, raw, sk.offset, m.is_initiator), sk.next_payload))
    return out


def test_truncation_at_every_offset_of_real_messages():
    for raw in real_messages():
        for k in range(len(raw)):
            cut = raw[:k]
            exc = error(cut)
            if k < 28:
                assert type(exc) is SilentDrop and exc.offset == 0
            else:
                assert type(exc) is InvalidSyntax and exc.offset == 24  # Length != datagram
            if k >= 28:
                exc = error(refit(cut))  # the payload chain itself is cut short
                assert type(exc) is InvalidSyntax and 28 <= exc.offset <= k, k


def test_truncation_at_every_offset_of_real_inner_chains():
    chains = real_inner_chains()
    assert len(chains) >= 8
    for inner, first in chains:
        for k in range(len(inner)):
            exc = error(inner[:k], wire.decode_payloads, first)
            assert type(exc) is InvalidSyntax and 0 <= exc.offset <= k


def test_header_errors():
    ok = message(b"", 0)
    assert type(error(ok[:27])) is SilentDrop
    assert error(ok + b"\x00") == InvalidSyntax("header Length 28, message of 29 octets", 24)
    assert error(ok[:24] + struct.pack("!I", 27)) == InvalidSyntax(
        "header Length 27, message of 28 octets", 24)
    assert error(bytes(8) + ok[8:]) == SilentDrop("SPI_i is zero", 0)


def test_versions():
    # §2.5: IKEv1 is dropped silently; a higher major version gets INVALID_MAJOR_VERSION,
    # except in reply to a response
    assert error(message(b"", 0, version=0x10)) == SilentDrop("major version 1", 17)
    assert error(message(b"", 0, version=0x00)) == SilentDrop("major version 0", 17)
    exc = error(message(b"", 0, version=0x30))
    assert exc == InvalidMajorVersion("major version 3", 17)
    assert exc.notify_type == NT.INVALID_MAJOR_VERSION
    assert error(message(b"", 0, version=0x30, flags=0x20)) == SilentDrop("major version 3", 17)
    assert error(message(b"", 0, version=0xF0, flags=0x28)) == SilentDrop("major version 15", 17)
    # a higher version is rejected before any other check (its format may differ)
    assert type(error(message(b"", 0, version=0x30)[:40])) is InvalidMajorVersion


def test_generic_header_lengths():
    nonce = generic(0, bytes(16))
    for bad_len in (0, 3, len(nonce) + 1, 0xFFFF):
        raw = message(nonce[:2] + struct.pack("!H", bad_len) + nonce[4:], 40)
        assert error(raw) == InvalidSyntax(
            f"payload 40 Payload Length {bad_len}, 20 octets left", 30)
    # the chain ends (Next Payload 0) before the message does
    raw = message(nonce + generic(0, b"x"), 40)
    assert error(raw) == InvalidSyntax("5 octets after the last payload", 48)
    # the chain continues past the end of the message
    raw = message(generic(40, bytes(16)), 40)
    assert error(raw) == InvalidSyntax("payload 40 truncated in its generic header", 48)


def test_unknown_payloads_and_the_critical_bit():
    # §3.2: unknown + critical -> UNSUPPORTED_CRITICAL_PAYLOAD carrying the type
    raw = message(chain((40, bytes(16)), (200, b"abc", 0x80)), 40)
    exc = error(raw)
    assert exc == UnsupportedCriticalPayload("payload type 200 is critical and not supported",
                                             48, b"\xc8")
    assert exc.notify_type == NT.UNSUPPORTED_CRITICAL_PAYLOAD and exc.data == bytes([200])
    # unknown, not critical: skipped but kept; the chain goes on after it
    raw = message(chain((200, b"abc"), (40, bytes(16))), 200)
    m = wire.decode(raw)
    assert m.payloads == [wire.Unknown(200, False, b"abc"), wire.Nonce(bytes(16))]
    assert wire.encode(m) == raw
    # the same inside an SK body
    exc = error(chain((49, b"", 0x80)), wire.decode_payloads, 49)
    assert type(exc) is UnsupportedCriticalPayload and exc.data == b"\x31"
    # an Unknown built with critical=True encodes the bit
    crit = wire.encode_payloads([wire.Unknown(99, True, b"z")])
    assert crit == bytes([0, 0x80, 0, 5]) + b"z"


def test_sk_must_be_last_and_not_nested():
    sk_then_nonce = chain((46, bytes(20)), (40, bytes(16)))
    exc = error(message(sk_then_nonce, 46))
    assert exc == InvalidSyntax("payloads after the SK payload", 28 + 24)
    skf_then = chain((53, struct.pack("!HH", 1, 1) + bytes(8)), (43, b"v"))
    assert type(error(message(skf_then, 53))) is InvalidSyntax
    exc = error(generic(0, bytes(20)), wire.decode_payloads, 46)
    assert exc == InvalidSyntax("SK payload inside an SK payload", 0)
    assert type(error(generic(0, bytes(8)), wire.decode_payloads, 53)) is InvalidSyntax


def test_nonce_length_bounds():
    # §3.9: 16..256 octets
    for size in (16, 256):
        assert wire.decode(message(generic(0, bytes(size)), 40)).payloads[0].data == bytes(size)
    for size in (0, 15, 257):
        assert error(message(generic(0, bytes(size)), 40)) == InvalidSyntax(
            f"nonce of {size} octets", 28)


@pytest.mark.parametrize("ptype,minimum", [
    (33, 12), (34, 8), (35, 8), (36, 8), (37, 5), (38, 5), (39, 8), (41, 8), (42, 8),
    (44, 8), (45, 8), (47, 8), (48, 8), (53, 8)])
def test_each_payload_minimum_length(ptype, minimum):
    for size in range(4, minimum):
        exc = error(message(generic(0, bytes(size - 4)), ptype))
        assert type(exc) is InvalidSyntax and exc.offset >= 28, (ptype, size)


def test_payload_count_limit():
    limit = wire.MAX_PAYLOADS
    assert limit == 128
    at_limit = chain(*[(43, b"") for _ in range(limit)])
    assert len(wire.decode(message(at_limit, 43)).payloads) == limit
    over = chain(*[(43, b"") for _ in range(limit + 1)])
    assert error(message(over, 43)) == InvalidSyntax(f"more than {limit} payloads", 28 + 4 * limit)
    assert type(error(over, wire.decode_payloads, 43)) is InvalidSyntax


def sa_message(body):
    return message(generic(0, body), 33)


def test_sa_substructure_errors():
    t_last = transform(1, 12, last=True)
    cases = {
        b"": "SA payload without a proposal",
        proposal(1, 1, b"", [t_last], last=False): "SA payload ends before its last proposal",
        proposal(1, 1, b"", [t_last]) * 2: "data after the last proposal",
        b"\x01" + proposal(1, 1, b"", [t_last])[1:]: "proposal Last Substruc 1",
        proposal(1, 1, b"", [t_last])[:7]: "proposal truncated",
        proposal(1, 1, b"\x00" * 4, [t_last]): "SPI Size 4 for protocol 1",
        proposal(1, 3, b"", [t_last]): "SPI Size 0 for protocol 3",
        proposal(1, 3, b"\x01" * 8, [t_last]): "SPI Size 8 for protocol 3",
        proposal(1, 1, b"", [transform(1, 12)]): "proposal ends before its last transform",
        proposal(1, 1, b"", [t_last, t_last]): "data after the last transform",
        proposal(1, 1, b"", [b"\x05" + t_last[1:]]): "transform Last Substruc 5",
        # Num Transforms says 2, one is present
        SA_BODY[:7] + b"\x09" + SA_BODY[8:]: "4 transforms, Num Transforms 9",
        proposal(1, 1, b"", [transform(1, 12, b"\x80\x0e\x00\x80\x80\x0e\x01\x00", last=True)]):
            "two Key Length attributes",
        proposal(1, 1, b"", [transform(1, 12, b"\x00\x0e\x00\x02\x01\x00", last=True)]):
            "Key Length attribute in TLV format",
        proposal(1, 1, b"", [transform(1, 12, b"\x00\x05\x00\x09abc", last=True)]):
            "attribute Length 9, 3 octets left",
        proposal(1, 1, b"", [transform(1, 12, b"\x80\x0e\x01", last=True)]):
            "transform attribute truncated",
    }
    for body, reason in cases.items():
        exc = error(sa_message(body))
        assert type(exc) is InvalidSyntax and exc.reason == reason, (reason, exc)
    too_many = proposal(1, 1, b"", [transform(1, 12, b"\x80\x01\x00\x00" * 17, last=True)])
    assert "more than 16 transform attributes" in error(sa_message(too_many)).reason
    props = b"".join(proposal(i, 1, b"", [t_last], last=False) for i in range(64))
    exc = error(sa_message(props + proposal(65, 1, b"", [t_last])))
    assert exc.reason == "more than 64 proposals"


def test_notify_delete_ts_cp_skf_errors():
    cases = [
        (41, struct.pack("!BBH", 3, 5, 16393) + b"abcd", InvalidSyntax,
         "SPI Size 5 exceeds the Notify payload"),
        (42, struct.pack("!BBH", 1, 4, 0), InvalidSyntax, "Delete of protocol 1 with SPI Size 4"),
        (42, struct.pack("!BBH", 1, 0, 3), InvalidSyntax, "Delete of protocol 1 with SPI Size 0"),
        (42, struct.pack("!BBH", 3, 8, 1) + bytes(8), InvalidSyntax,
         "Delete of protocol 3 with SPI Size 8"),
        (42, struct.pack("!BBH", 3, 4, 2) + bytes(4), InvalidSyntax,
         "Delete payload does not hold 2 SPIs of 4 octets"),
        (44, bytes.fromhex("02000000") + struct.pack("!BBHHH", 7, 0, 16, 0, 0) + bytes(8),
         InvalidSyntax, "traffic selector truncated"),
        (44, bytes.fromhex("01000000") + struct.pack("!BBHHH", 7, 0, 40, 0, 0) + bytes(32),
         InvalidSyntax, "Selector Length 40 for TS type 7"),
        (45, bytes.fromhex("01000000") + struct.pack("!BBHHH", 8, 0, 16, 0, 0) + bytes(8),
         InvalidSyntax, "Selector Length 16 for TS type 8"),
        (44, bytes.fromhex("01000000") + struct.pack("!BBH", 9, 0, 3), InvalidSyntax,
         "Selector Length 3, 4 octets left"),
        (44, bytes.fromhex("00000000") + b"\x07", InvalidSyntax,
         "1 octets after 0 traffic selectors"),
        (47, bytes.fromhex("01000000") + bytes.fromhex("0001 0005 ab"), InvalidSyntax,
         "attribute Length 5, 1 octets left"),
        (47, bytes.fromhex("01000000") + b"\x00\x01", InvalidSyntax,
         "configuration attribute truncated"),
        # RFC 7383 §2.5: Fragment Number and Total Fragments nonzero, number <= total
        (53, struct.pack("!HH", 0, 1), SilentDrop, "fragment 0 of 1"),
        (53, struct.pack("!HH", 1, 0), SilentDrop, "fragment 1 of 0"),
        (53, struct.pack("!HH", 3, 2), SilentDrop, "fragment 3 of 2"),
    ]
    for ptype, body, cls, reason in cases:
        raw = message(generic(0, body), ptype) if ptype != 53 else message(generic(0, body), 53)
        exc = error(raw)
        assert type(exc) is cls and exc.reason == reason, (reason, exc)
    many = bytes.fromhex("01000000") + bytes.fromhex("00010000") * 129
    assert "more than 128 configuration attributes" in error(message(generic(0, many), 47)).reason


def test_first_payload_type_out_of_range():
    for first in (-1, 256, 1 << 70):
        assert error(b"", wire.decode_payloads, first) == InvalidSyntax(
            f"first payload type {first}", 0)


def test_decode_accepts_bytes_like_input():
    raw = message(generic(0, bytes(16)), 40)
    assert wire.decode(bytearray(raw)) == wire.decode(memoryview(raw)) == wire.decode(raw)
    assert wire.decode_payloads(bytearray(generic(0, bytes(16))), 40) == [wire.Nonce(bytes(16))]


def _mutations():
    seeds = real_messages() + [message(chain(*[(t, b) for t, b, _ in VECTORS]), 33)]
    return st.tuples(
        st.sampled_from(seeds),
        st.lists(st.tuples(st.integers(0, 600), st.integers(0, 255)), min_size=1, max_size=6),
        st.booleans(),
    )


@settings(max_examples=300, deadline=None)
@given(_mutations())
def test_mutated_real_messages_give_only_typed_errors(case):
    raw, edits, fix_length = case
    data = bytearray(raw)
    for pos, value in edits:
        data[pos % len(data)] = value
    data = refit(bytes(data)) if fix_length else bytes(data)
    try:
        m = wire.decode(data)
    except IkeError:
        return
    assert isinstance(m, wire.Message)
    wire.encode(m)  # whatever decodes, encodes


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 255))
def test_random_octets_give_only_typed_errors(data, first):
    for fn, args in ((wire.decode, ()), (wire.decode_payloads, (first,))):
        try:
            fn(data, *args)
        except IkeError:
            pass
