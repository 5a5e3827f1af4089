"""XFRM message layouts, EXPIRE/ACQUIRE parsing from constructed netlink messages, error
parsing, and the selector helpers (no kernel needed)."""

import errno
import ipaddress
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyiked.core.events import KernelAcquire, KernelExpire
from pyiked.core.iana import ProtocolId
from pyiked.core.ts import TS
from pyiked.kernel import xfrm
from pyiked.kernel import xfrm_build as b
from pyiked.kernel import xfrm_msg as m


def test_struct_sizes_match_the_kernel():
    for cls, size in m.SIZES.items():
        assert m.struct_size(cls.fields) == size, cls.__name__
    # and the encoded message is header + struct, nothing more
    assert len(m.build(m.xfrm_usersa_info, m.XFRM_MSG_NEWSA, {})) == 16 + 224
    assert len(m.build(m.xfrm_user_acquire, m.XFRM_MSG_ACQUIRE, {})) == 16 + 280


def expire_msg(spi, dst, hard, reqid=101, family=socket.AF_INET, proto=m.IPPROTO_ESP):
    return m.build(m.xfrm_user_expire, m.XFRM_MSG_EXPIRE, {
        "state_id_daddr": m.addr_bytes(dst), "state_id_spi": spi, "state_id_proto": proto,
        "state_family": family, "state_reqid": reqid, "state_mode": 1, "hard": int(hard),
    }, flags=0)


def acquire_msg(reqid, src, dst, plen_s=32, plen_d=32, proto=17, sport=0, smask=0, dport=0,
                dmask=0, family=socket.AF_INET):
    tmpl = {"id_daddr": m.addr_bytes("10.231.40.2"), "id_proto": m.IPPROTO_ESP, "family": family,
            "saddr": m.addr_bytes("10.231.40.1"), "reqid": reqid, "mode": 1,
            "aalgos": 0xFFFFFFFF, "ealgos": 0xFFFFFFFF, "calgos": 0xFFFFFFFF}
    return m.build(m.xfrm_user_acquire, m.XFRM_MSG_ACQUIRE, {
        "id_daddr": m.addr_bytes("10.231.40.2"), "id_proto": m.IPPROTO_ESP,
        "saddr": m.addr_bytes("10.231.40.1"),
        "sel_saddr": m.addr_bytes(src), "sel_daddr": m.addr_bytes(dst), "sel_family": family,
        "sel_prefixlen_s": plen_s, "sel_prefixlen_d": plen_d, "sel_proto": proto,
        "sel_sport": sport, "sel_sport_mask": smask, "sel_dport": dport, "sel_dport_mask": dmask,
        "policy_dir": m.XFRM_POLICY_OUT, "seq": 77,
    }, [("XFRMA_TMPL", {"templates": [tmpl]})], flags=0)


@pytest.mark.parametrize("hard", [False, True])
def test_expire_parses(hard):
    notice, reqid = xfrm.parse_notice(m.XFRM_MSG_EXPIRE, expire_msg(0xC0001234, "10.231.40.1", hard))
    assert notice == KernelExpire(protocol=ProtocolId.ESP, spi=0xC0001234,
                                  dst=ipaddress.ip_address("10.231.40.1"), hard=hard)
    assert reqid == 101


def test_expire_ipv6():
    data = expire_msg(0x1000, "fd00:231:40::1", True, family=socket.AF_INET6)
    notice, _ = xfrm.parse_notice(m.XFRM_MSG_EXPIRE, data)
    assert notice.dst == ipaddress.ip_address("fd00:231:40::1")


def test_acquire_parses_the_packet_selector():
    data = acquire_msg(101, "10.231.41.1", "10.231.42.7", sport=40000, smask=0xFFFF,
                       dport=53, dmask=0xFFFF)
    notice, reqid = xfrm.parse_notice(m.XFRM_MSG_ACQUIRE, data)
    assert reqid == 101
    assert notice == KernelAcquire(
        reqid=101,
        ts_local=TS.host("10.231.41.1", 17, 40000, 40000),
        ts_remote=TS.host("10.231.42.7", 17, 53, 53))


def test_acquire_icmp_type_and_code_become_ts_ports():
    # XFRM: type in sport, code in dport; a TS: type << 8 | code (RFC 4301 §4.4.1.1)
    data = acquire_msg(5, "10.231.41.1", "10.231.42.7", proto=1, sport=8, smask=0xFFFF,
                       dport=0, dmask=0xFFFF)
    notice, _ = xfrm.parse_notice(m.XFRM_MSG_ACQUIRE, data)
    assert (notice.ts_local.start_port, notice.ts_local.end_port) == (0x0800, 0x0800)
    assert (notice.ts_remote.start_port, notice.ts_remote.end_port) == (0, 65535)


def test_acquire_network_selector():
    data = acquire_msg(9, "10.231.41.0", "10.231.42.0", plen_s=24, plen_d=24, proto=0)
    notice, _ = xfrm.parse_notice(m.XFRM_MSG_ACQUIRE, data)
    assert notice.ts_local == TS.from_network("10.231.41.0/24")
    assert notice.ts_remote == TS.from_network("10.231.42.0/24")


def test_other_messages_are_not_notices():
    assert xfrm.parse_notice(m.XFRM_MSG_NEWSA, m.build(m.xfrm_usersa_info, m.XFRM_MSG_NEWSA, {})) is None


@pytest.mark.parametrize("mtype,data", [
    (m.XFRM_MSG_EXPIRE, expire_msg(1, "10.0.0.1", True)[:100]),
    (m.XFRM_MSG_ACQUIRE, acquire_msg(1, "10.0.0.1", "10.0.0.2")[:200]),
    (m.XFRM_MSG_EXPIRE, expire_msg(1, "10.0.0.1", True, family=0)),
    (m.XFRM_MSG_ACQUIRE, acquire_msg(1, "10.0.0.1", "10.0.0.2", family=77)),
])
def test_malformed_notices_raise_value_error(mtype, data):
    with pytest.raises(ValueError):
        xfrm.parse_notice(mtype, data)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(min_size=16, max_size=400), mtype=st.sampled_from([m.XFRM_MSG_EXPIRE, m.XFRM_MSG_ACQUIRE]))
def test_hostile_notices_raise_only_value_error(data, mtype):
    data = struct.pack("=IHHII", len(data), mtype, 0, 0, 0) + data[16:]
    try:
        xfrm.parse_notice(mtype, data)
    except ValueError:
        pass


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300))
def test_split_never_overruns(data):
    for mtype, flags, msg in xfrm.split(data):
        assert len(msg) >= 16 and struct.unpack_from("=I", msg)[0] == len(msg)


def test_parse_error_reads_the_extended_ack():
    text = b"Requested AEAD algorithm not found\0"
    tlv = struct.pack("=HH", 4 + len(text), 1) + text + bytes((4 - len(text) % 4) % 4)
    orig = struct.pack("=IHHII", 436, m.XFRM_MSG_NEWSA, 5, 9, 0)
    body = struct.pack("=i", -errno.ENOSYS) + orig + tlv
    msg = struct.pack("=IHHII", 16 + len(body), 2, xfrm.NLM_F_ACK_TLVS | xfrm.NLM_F_CAPPED, 9, 0) + body
    assert xfrm.parse_error(msg, xfrm.NLM_F_ACK_TLVS | xfrm.NLM_F_CAPPED) == (
        errno.ENOSYS, "Requested AEAD algorithm not found")
    ack = struct.pack("=IHHII", 36, 2, 0, 9, 0) + struct.pack("=i", 0) + orig
    assert xfrm.parse_error(ack, 0) == (0, "")


def test_explain_names_the_missing_kernel_support():
    from tests import sa_events as ev

    sa = b.sa_pair(ev.install("aes256gcm16"))[0]
    text = xfrm.explain(errno.ENOSYS, "Requested AEAD algorithm not found", "SA c0000101", sa)
    assert "kernel lacks ESP (CONFIG_INET_ESP)" in text and "CONFIG_CRYPTO_GCM" in text
    assert "rfc4106(gcm(aes))" in text and "Requested AEAD algorithm not found" in text
    text = xfrm.explain(errno.EPROTONOSUPPORT, "Requested type not found", "SA c0000101")
    assert "kernel lacks ESP (CONFIG_INET_ESP" in text
    assert "CAP_NET_ADMIN" in xfrm.explain(errno.EPERM, "", "policy")


@settings(max_examples=300, deadline=None)
@given(a=st.integers(0, 65535), b_=st.integers(0, 65535))
def test_port_masks_cover_exactly(a, b_):
    lo, hi = min(a, b_), max(a, b_)
    blocks = b.port_masks(lo, hi)
    covered = set()
    for port, mask in blocks:
        size = (~mask & 0xFFFF) + 1
        assert port & ~mask & 0xFFFF == 0  # aligned
        block = set(range(port, port + size))
        assert not covered & block
        covered |= block
    assert covered == set(range(lo, hi + 1))
    assert len(blocks) <= 32


def test_selectors_for_ranges_and_families():
    src = TS.range(ipaddress.ip_address("10.231.41.1"), ipaddress.ip_address("10.231.41.6"))
    dst = TS.from_network("10.231.42.0/24", 6, 80, 80)
    sels = b.selectors(src, dst)
    # .1-.6 is /32 + /31 + /30 ... exactly: 1, 2-3, 4-5, 6
    assert len(sels) == 4
    assert {s["sel_proto"] for s in sels} == {6}
    assert {(s["sel_dport"], s["sel_dport_mask"]) for s in sels} == {(80, 0xFFFF)}
    assert b.selectors(src, TS.from_network("fd00::/64")) == []
    assert b.selectors(TS.from_network("10.0.0.0/8", 6), TS.from_network("10.0.0.0/8", 17)) == []


def test_icmp_selector_uses_type_and_code():
    src = TS.from_network("10.231.41.0/24", 1, 0x0800, 0x08FF)  # echo request, any code
    sels = b.selectors(src, TS.from_network("10.231.42.0/24", 1))
    assert [(s["sel_sport"], s["sel_sport_mask"], s["sel_dport"], s["sel_dport_mask"]) for s in sels] == \
        [(8, 0xFFFF, 0, 0xFF00)]


def test_bypass_policy_struct():
    raw = b.bypass_policy(socket.AF_INET, m.XFRM_POLICY_OUT)
    assert len(raw) == 168
    assert struct.unpack_from("=H", raw, 40)[0] == socket.AF_INET  # sel.family
    assert raw[160] == m.XFRM_POLICY_OUT and raw[161] == m.XFRM_POLICY_ALLOW


@settings(max_examples=300, deadline=None)
@given(base=st.sampled_from(["acquire", "acquire6", "expire"]),
       edits=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), min_size=1, max_size=8),
       cut=st.integers(0, 400))
def test_mutated_notices_raise_only_value_error(base, edits, cut):
    data = bytearray({
        "acquire": acquire_msg(101, "10.0.0.1", "10.0.0.2"),
        "acquire6": acquire_msg(7, "fd00::1", "fd00::2", family=socket.AF_INET6, plen_s=128, plen_d=64),
        "expire": expire_msg(5, "10.0.0.1", True),
    }[base])
    for at, value in edits:
        if at < len(data):
            data[at] = value
    data = bytes(data[:max(cut, 16)])
    for mtype in (m.XFRM_MSG_EXPIRE, m.XFRM_MSG_ACQUIRE):
        try:
            xfrm.parse_notice(mtype, data)
        except ValueError:
            pass
