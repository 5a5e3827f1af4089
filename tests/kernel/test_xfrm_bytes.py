"""The XFRM requests we build are the ones `ip xfrm` sends for the same SA / policy.

`ip xfrm state add ...` runs under strace inside a namespace of ours; this kernel refuses
ESP SAs, but strace shows the request bytes anyway (`-e write=all` dumps every buffer
sent). Normalised: the sequence number and port ID are zeroed and the attributes sorted
(ip adds them in command-line order). The ip command is written from the event here,
independently of xfrm_build, from iproute2's syntax and the kernel's algorithm names.
"""

import re
import shutil
import struct
import subprocess

import pytest

from pyiked.core.events import Encapsulation, Lifetime
from pyiked.core.iana import EncrId, IntegId
from pyiked.kernel import xfrm_build as b
from pyiked.kernel import xfrm_msg as m
from tests import sa_events as ev

pytestmark = pytest.mark.skipif(not shutil.which("strace"), reason="needs strace")

IP_ENCR = {
    EncrId.AES_GCM_8: ("aead", "rfc4106(gcm(aes))", 64),
    EncrId.AES_GCM_12: ("aead", "rfc4106(gcm(aes))", 96),
    EncrId.AES_GCM_16: ("aead", "rfc4106(gcm(aes))", 128),
    EncrId.CHACHA20_POLY1305: ("aead", "rfc7539esp(chacha20,poly1305)", 128),
    EncrId.AES_CBC: ("enc", "cbc(aes)", None),
    EncrId.AES_CTR: ("enc", "rfc3686(ctr(aes))", None),
    EncrId.TRIPLE_DES: ("enc", "cbc(des3_ede)", None),
}
IP_INTEG = {
    IntegId.HMAC_SHA1_96: ("hmac(sha1)", 96),
    IntegId.HMAC_SHA2_256_128: ("hmac(sha256)", 128),
    IntegId.HMAC_SHA2_384_192: ("hmac(sha384)", 192),
    IntegId.HMAC_SHA2_512_256: ("hmac(sha512)", 256),
    IntegId.AES_XCBC_96: ("xcbc(aes)", 96),
    IntegId.AES_CMAC_96: ("cmac(aes)", 96),
}


def traced(netns, *args) -> list[bytes]:
    """Every buffer `ip` sent on a socket, from strace's hex dump."""
    cmd = ["ip", "netns", "exec", netns, "strace", "-f", "-qq", "-e", "trace=sendmsg,sendto",
           "-e", "write=all", "-xx", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stderr
    buffers, current = [], None
    for line in out.splitlines():
        if re.match(r"^ \* \d+ bytes in buffer", line):
            current = bytearray()
            buffers.append(current)
        elif current is not None and (m_ := re.match(r"^ \| [0-9a-f]{5}  ((?:[0-9a-f]{2} {1,2}){1,16})", line)):
            current += bytes.fromhex(m_.group(1).replace(" ", ""))
    return [bytes(x) for x in buffers]


def normalise(msg: bytes, fixed: int):
    """(type, flags, struct with seq/pid zeroed, sorted attributes)."""
    length, mtype, flags = struct.unpack_from("=IHH", msg)
    assert length == len(msg)
    body = msg[16:16 + fixed]
    attrs, off = [], 16 + fixed
    while off < length:
        alen, atype = struct.unpack_from("=HH", msg, off)
        attrs.append((atype, msg[off + 4:off + alen]))
        off += (alen + 3) & ~3
    return mtype, flags, body, sorted(attrs)


def ip_sa_args(event, inbound: bool) -> list[str]:
    k = event.inbound if inbound else event.outbound
    src, dst = (event.remote_addr, event.local_addr) if inbound else (event.local_addr, event.remote_addr)
    args = ["ip", "xfrm", "state", "add", "src", str(src), "dst", str(dst), "proto", "esp",
            "spi", f"0x{k.spi:08x}", "reqid", str(event.reqid), "mode", event.mode,
            "replay-window", str(event.replay_window)]
    flags = (["esn"] if event.esn else []) + (["af-unspec"] if event.mode == "tunnel" else [])
    if flags:
        args += ["flag", *flags]
    kind, name, icv = IP_ENCR[k.encr_id]
    args += [kind, name, "0x" + k.encr_key.hex()] + ([str(icv)] if icv else [])
    if k.integ_id:
        iname, trunc = IP_INTEG[k.integ_id]
        args += ["auth-trunc", iname, "0x" + k.integ_key.hex(), str(trunc)]
    if event.encap:
        ports = (event.encap.remote_port, event.encap.local_port) if inbound else (event.encap.local_port, event.encap.remote_port)
        args += ["encap", "espinudp", str(ports[0]), str(ports[1]), "0.0.0.0"]
    lt = event.lifetime
    for opt, value in (("time-soft", lt.soft_seconds), ("time-hard", lt.hard_seconds),
                       ("byte-soft", lt.soft_bytes), ("byte-hard", lt.hard_bytes),
                       ("packet-soft", lt.soft_packets), ("packet-hard", lt.hard_packets)):
        if value:
            args += ["limit", opt, str(value)]
    if event.mode == "transport":
        ts_src, ts_dst = (event.ts_remote[0], event.ts_local[0]) if inbound else (event.ts_local[0], event.ts_remote[0])
        args += ["sel", "src", str(ts_src.networks()[0]), "dst", str(ts_dst.networks()[0])]
    return args


CASES = {
    "gcm256": ev.install("aes256gcm16"),
    "gcm128-esn-window128": ev.install("aes128gcm16", esn=True, replay_window=128),
    "gcm8": ev.install("aes128gcm8", replay_window=64),
    "gcm12-encap": ev.install("aes256gcm12", encap=Encapsulation(4500, 4501)),
    "chacha20": ev.install("chacha20poly1305", esn=True, replay_window=64),
    "cbc-sha256": ev.install("aes128-sha256"),
    "cbc-sha384-lifetimes": ev.install("aes256-sha384", lifetime=Lifetime(
        soft_seconds=3000, hard_seconds=3600, soft_bytes=10**9, hard_bytes=2 * 10**9,
        soft_packets=10**6, hard_packets=2 * 10**6)),
    "cbc-sha512-esn-encap": ev.install("aes256-sha512", esn=True, replay_window=256,
                                       encap=Encapsulation(4500, 61234)),
    "cbc-sha1-window0": ev.install("aes128-sha1", replay_window=0),
    "ctr-sha256": ev.install("aes128ctr-sha256"),
    "3des-sha1": ev.install("3des-sha1"),
    "cbc-xcbc": ev.install("aes128-xcbc"),
    "cbc-cmac": ev.install("aes128-cmac"),
    "transport-v6": ev.install("aes256gcm16", mode="transport", local="fd00:231:40::1",
                               remote="fd00:231:40::2", ts_local=("fd00:231:40::1/128",),
                               ts_remote=("fd00:231:40::2/128",)),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("inbound", [True, False], ids=["in", "out"])
def test_newsa_bytes_equal_ip_xfrm(netns, name, inbound):
    event = CASES[name]
    sa = b.sa_pair(event)[0 if inbound else 1]
    ours = b.sa_message(sa, m.XFRM_MSG_NEWSA, seq=12345)
    sent = [x for x in traced(netns, *ip_sa_args(event, inbound))
            if len(x) >= 16 and struct.unpack_from("=H", x, 4)[0] == m.XFRM_MSG_NEWSA]
    assert len(sent) == 1, "ip sent no NEWSA (is strace working?)"
    assert normalise(ours, 224)[:3] == normalise(sent[0], 224)[:3]
    assert normalise(ours, 224)[3] == normalise(sent[0], 224)[3]


def test_allocspi_bytes_equal_ip_xfrm(netns):
    ours = b.allocspi_message("10.231.40.2", "10.231.40.1", m.IPPROTO_ESP, 0xC0000000, 0xCFFFFFFF,
                              reqid=7, seq=1)
    sent = [x for x in traced(netns, "ip", "xfrm", "state", "allocspi", "src", "10.231.40.2",
                              "dst", "10.231.40.1", "proto", "esp", "mode", "tunnel", "reqid", "7",
                              "min", "0xc0000000", "max", "0xcfffffff")
            if struct.unpack_from("=H", x, 4)[0] == m.XFRM_MSG_ALLOCSPI]
    assert normalise(ours, 232) == normalise(sent[0], 232)


def test_delsa_bytes_equal_ip_xfrm(netns):
    ours = b.sa_id_message(m.XFRM_MSG_DELSA, "10.231.40.2", 0xC0000201, m.IPPROTO_ESP, "10.231.40.1", seq=1)
    sent = [x for x in traced(netns, "ip", "xfrm", "state", "delete", "src", "10.231.40.1",
                              "dst", "10.231.40.2", "proto", "esp", "spi", "0xc0000201")
            if struct.unpack_from("=H", x, 4)[0] == m.XFRM_MSG_DELSA]
    assert normalise(ours, 24) == normalise(sent[0], 24)


def test_policy_bytes_equal_ip_xfrm(netns):
    event = ev.install("aes256gcm16")
    pols = b.event_policies(event)
    assert sorted(p.direction for p in pols) == [0, 1, 2]
    for pol in pols:
        ours = b.policy_message(pol, m.XFRM_MSG_NEWPOLICY, seq=1)
        out = pol.direction == m.XFRM_POLICY_OUT
        src, dst = ("10.231.41.0/24", "10.231.42.0/24") if out else ("10.231.42.0/24", "10.231.41.0/24")
        t_src, t_dst = ("10.231.40.1", "10.231.40.2") if out else ("10.231.40.2", "10.231.40.1")
        direction = {0: "in", 1: "out", 2: "fwd"}[pol.direction]
        sent = [x for x in traced(netns, "ip", "xfrm", "policy", "add", "src", src, "dst", dst,
                                  "dir", direction, "priority", str(pol.priority), "tmpl", "src", t_src,
                                  "dst", t_dst, "proto", "esp", "reqid", "101", "mode", "tunnel")
                if struct.unpack_from("=H", x, 4)[0] == m.XFRM_MSG_NEWPOLICY]
        assert normalise(ours, 168) == normalise(sent[0], 168)


def test_delpolicy_bytes_equal_ip_xfrm(netns):
    pol = [p for p in b.event_policies(ev.install()) if p.direction == m.XFRM_POLICY_OUT][0]
    ours = b.delpolicy_message(pol.direction, pol.selector, seq=1)
    sent = [x for x in traced(netns, "ip", "xfrm", "policy", "delete", "src", "10.231.41.0/24",
                              "dst", "10.231.42.0/24", "dir", "out")
            if struct.unpack_from("=H", x, 4)[0] == m.XFRM_MSG_DELPOLICY]
    assert normalise(ours, 64) == normalise(sent[0], 64)
