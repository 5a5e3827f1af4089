"""From engine events to XFRM requests: SA and policy messages, algorithm names.

Everything here is pure (no socket): it turns a ChildSAInstall into the bytes of the
NEWSA / UPDSA requests for both SAs and the NEWPOLICY requests for its flows, so the
tests can compare them with what `ip xfrm` sends for the same SA.

Conventions follow `ip xfrm` and strongSwan's kernel-netlink plugin:
  * byte and packet limits of 0 ("none") become XFRM_INF, seconds stay 0;
  * ESN, or a replay window above 32, uses XFRMA_REPLAY_ESN_VAL (the legacy 32-bit
    bitmap in xfrm_usersa_info cannot hold it), and then xfrm_usersa_info.replay_window
    is 0;
  * tunnel-mode SAs carry no selector and XFRM_STATE_AF_UNSPEC (IPv4 in IPv6 and back);
    transport-mode SAs carry the addresses of the first TS pair, without protocol/ports.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from pyiked.core.events import ChildSAInstall, Lifetime
from pyiked.core.iana import EncrId, IntegId, ProtocolId

from . import xfrm_msg as m
from .base import KernelError

# EncrId -> (attribute, kernel name, ICV bits for AEAD, octets of salt/nonce in the key)
ENCR = {
    EncrId.AES_GCM_8: ("aead", "rfc4106(gcm(aes))", 64, 4),  # RFC 4106
    EncrId.AES_GCM_12: ("aead", "rfc4106(gcm(aes))", 96, 4),
    EncrId.AES_GCM_16: ("aead", "rfc4106(gcm(aes))", 128, 4),
    EncrId.AES_CCM_8: ("aead", "rfc4309(ccm(aes))", 64, 3),  # RFC 4309
    EncrId.AES_CCM_12: ("aead", "rfc4309(ccm(aes))", 96, 3),
    EncrId.AES_CCM_16: ("aead", "rfc4309(ccm(aes))", 128, 3),
    EncrId.NULL_AUTH_AES_GMAC: ("aead", "rfc4543(gcm(aes))", 128, 4),  # RFC 4543
    EncrId.CHACHA20_POLY1305: ("aead", "rfc7539esp(chacha20,poly1305)", 128, 4),  # RFC 7634
    EncrId.AES_CBC: ("crypt", "cbc(aes)", 0, 0),  # RFC 3602
    EncrId.AES_CTR: ("crypt", "rfc3686(ctr(aes))", 0, 4),  # RFC 3686: the key ends in the nonce
    EncrId.TRIPLE_DES: ("crypt", "cbc(des3_ede)", 0, 0),  # RFC 2451
    EncrId.NULL: ("crypt", "ecb(cipher_null)", 0, 0),  # RFC 2410
}

# IntegId -> (kernel name, ICV bits): the truncation the RFC prescribes
INTEG = {
    IntegId.HMAC_MD5_96: ("hmac(md5)", 96),  # RFC 2403
    IntegId.HMAC_SHA1_96: ("hmac(sha1)", 96),  # RFC 2404
    IntegId.AES_XCBC_96: ("xcbc(aes)", 96),  # RFC 3566
    IntegId.AES_CMAC_96: ("cmac(aes)", 96),  # RFC 4494
    IntegId.HMAC_SHA2_256_128: ("hmac(sha256)", 128),  # RFC 4868 §2.3
    IntegId.HMAC_SHA2_384_192: ("hmac(sha384)", 192),
    IntegId.HMAC_SHA2_512_256: ("hmac(sha512)", 256),
}

# The kernel option behind each algorithm, for error messages
KCONFIG = {
    "gcm": "CONFIG_CRYPTO_GCM", "ccm": "CONFIG_CRYPTO_CCM", "chacha20": "CONFIG_CRYPTO_CHACHA20POLY1305",
    "ctr": "CONFIG_CRYPTO_CTR", "cbc": "CONFIG_CRYPTO_CBC", "des3_ede": "CONFIG_CRYPTO_DES",
    "sha1": "CONFIG_CRYPTO_SHA1", "sha256": "CONFIG_CRYPTO_SHA256", "sha384": "CONFIG_CRYPTO_SHA512",
    "sha512": "CONFIG_CRYPTO_SHA512", "md5": "CONFIG_CRYPTO_MD5", "xcbc": "CONFIG_CRYPTO_XCBC",
    "cmac": "CONFIG_CRYPTO_CMAC", "cipher_null": "CONFIG_CRYPTO_NULL",
}

LEGACY_REPLAY_MAX = 32  # bits in xfrm_replay_state.bitmap
POLICY_PRIORITY_BASE = 200000  # strongSwan's base for IPsec policies; more specific = lower
MAX_POLICIES_PER_PAIR = 64


@dataclass(frozen=True, slots=True)
class XfrmSA:
    """One kernel SA (one direction), ready to encode."""

    src: object
    dst: object
    spi: int
    protocol: int  # IPPROTO_ESP / IPPROTO_AH
    mode: int
    reqid: int
    esn: bool
    replay_window: int
    lifetime: Lifetime
    encap: tuple[int, int] | None  # (sport, dport) as seen from src -> dst
    encr: tuple[str, str, bytes, int] | None = field(repr=False)  # (attr, name, key, icv bits)
    integ: tuple[str, bytes, int] | None = field(repr=False)  # (name, key, trunc bits)
    selector: dict | None = None
    flags: int = 0

    def algorithm_names(self) -> str:
        names = [self.encr[1]] if self.encr else []
        if self.integ:
            names.append(self.integ[0])
        return " + ".join(names)

    def kconfig_hint(self) -> str:
        """The kernel options these algorithms need, e.g. CONFIG_CRYPTO_GCM."""
        names = self.algorithm_names()
        return "/".join(sorted({opt for word, opt in KCONFIG.items() if word in names}))


def _kernel_protocol(protocol: int) -> int:
    if protocol == ProtocolId.ESP:
        return m.IPPROTO_ESP
    if protocol == ProtocolId.AH:
        return m.IPPROTO_AH
    raise KernelError(f"protocol {protocol} cannot be installed in XFRM")


def _algorithms(keys, protocol):
    encr = integ = None
    if protocol == m.IPPROTO_ESP:
        if keys.encr_id not in ENCR:
            raise KernelError(f"encryption transform {keys.encr_id} has no XFRM algorithm")
        attr, name, icv, _ = ENCR[keys.encr_id]
        encr = (attr, name, bytes(keys.encr_key), icv)
        if attr == "aead" and keys.integ_id:
            raise KernelError("an AEAD cipher takes no integrity transform (RFC 7296 §3.3)")
    if keys.integ_id:
        if keys.integ_id not in INTEG:
            raise KernelError(f"integrity transform {keys.integ_id} has no XFRM algorithm")
        name, trunc = INTEG[keys.integ_id]
        integ = (name, bytes(keys.integ_key), trunc)
    elif protocol == m.IPPROTO_AH:
        raise KernelError("AH needs an integrity transform")
    return encr, integ


def _transport_selector(src_ts, dst_ts) -> dict:
    """strongSwan's default: the first TS pair's addresses, any protocol and port."""
    src_net, dst_net = src_ts.networks()[0], dst_ts.networks()[0]
    return {
        "sel_saddr": m.addr_bytes(src_net.network_address), "sel_prefixlen_s": src_net.prefixlen,
        "sel_daddr": m.addr_bytes(dst_net.network_address), "sel_prefixlen_d": dst_net.prefixlen,
        "sel_family": m.family_of(src_net.network_address),
    }


def sa_pair(event: ChildSAInstall, local=None, remote=None, encap=None) -> tuple[XfrmSA, XfrmSA]:
    """(inbound, outbound) kernel SAs of a CHILD_SA. local/remote/encap override the
    event's endpoints (a NAT mapping change, ChildSAUpdate)."""
    local = event.local_addr if local is None else local
    remote = event.remote_addr if remote is None else remote
    encap = event.encap if encap is None else encap
    protocol = _kernel_protocol(event.protocol)
    if event.mode == "tunnel":
        mode, flags = m.XFRM_MODE_TUNNEL, m.XFRM_STATE_AF_UNSPEC
    elif event.mode == "transport":
        mode, flags = m.XFRM_MODE_TRANSPORT, 0
    else:
        raise KernelError(f"unknown IPsec mode {event.mode!r}")
    window = event.replay_window
    if event.esn and window == 0:
        window = 64  # the kernel needs a window with ESN; RFC 4303 §3.4.3's preferred size
    result = []
    for inbound in (True, False):
        keys = event.inbound if inbound else event.outbound
        src, dst = (remote, local) if inbound else (local, remote)
        selector = None
        if mode == m.XFRM_MODE_TRANSPORT and event.ts_local and event.ts_remote:
            ts_src, ts_dst = (event.ts_remote[0], event.ts_local[0]) if inbound else (event.ts_local[0], event.ts_remote[0])
            selector = _transport_selector(ts_src, ts_dst)
        ports = None
        if encap is not None:
            ports = (encap.remote_port, encap.local_port) if inbound else (encap.local_port, encap.remote_port)
        encr, integ = _algorithms(keys, protocol)
        result.append(XfrmSA(src, dst, keys.spi, protocol, mode, event.reqid, event.esn, window,
                             event.lifetime, ports, encr, integ, selector, flags))
    return result[0], result[1]


def _limit(value: int) -> int:
    return value if value else m.XFRM_INF


def sa_fields(sa: XfrmSA) -> dict:
    """The xfrm_usersa_info of an SA."""
    fields = {
        "id_daddr": m.addr_bytes(sa.dst), "id_spi": sa.spi, "id_proto": sa.protocol,
        "saddr": m.addr_bytes(sa.src), "family": m.family_of(sa.dst), "mode": sa.mode,
        "reqid": sa.reqid, "flags": sa.flags | (m.XFRM_STATE_ESN if sa.esn else 0),
        "lft_soft_byte_limit": _limit(sa.lifetime.soft_bytes),
        "lft_hard_byte_limit": _limit(sa.lifetime.hard_bytes),
        "lft_soft_packet_limit": _limit(sa.lifetime.soft_packets),
        "lft_hard_packet_limit": _limit(sa.lifetime.hard_packets),
        # lifetimes count from installation, not first use (as strongSwan)
        "lft_soft_add_expires_seconds": sa.lifetime.soft_seconds,
        "lft_hard_add_expires_seconds": sa.lifetime.hard_seconds,
    }
    if not (sa.esn or sa.replay_window > LEGACY_REPLAY_MAX):
        fields["replay_window"] = sa.replay_window
    if sa.selector:
        fields.update(sa.selector)
    return fields


def sa_attrs(sa: XfrmSA) -> list:
    attrs = []
    if sa.encr:
        kind, name, key, icv = sa.encr
        if kind == "aead":
            attrs.append(("XFRMA_ALG_AEAD", {"alg_name": name.encode(), "alg_key_len": len(key) * 8,
                                             "alg_icv_len": icv, "alg_key": key}))
        else:
            attrs.append(("XFRMA_ALG_CRYPT", {"alg_name": name.encode(), "alg_key_len": len(key) * 8,
                                              "alg_key": key}))
    if sa.integ:
        name, key, trunc = sa.integ
        attrs.append(("XFRMA_ALG_AUTH_TRUNC", {"alg_name": name.encode(), "alg_key_len": len(key) * 8,
                                               "alg_trunc_len": trunc, "alg_key": key}))
    if sa.encap:
        attrs.append(("XFRMA_ENCAP", {"encap_type": m.UDP_ENCAP_ESPINUDP, "encap_sport": sa.encap[0],
                                      "encap_dport": sa.encap[1], "encap_oa": bytes(16)}))
    if sa.esn or sa.replay_window > LEGACY_REPLAY_MAX:
        # as `ip xfrm`: the header alone, the kernel allocates the bitmap itself
        attrs.append(("XFRMA_REPLAY_ESN_VAL", {"bmp_len": (sa.replay_window + 31) // 32,
                                               "replay_window": sa.replay_window}))
    return attrs


def sa_message(sa: XfrmSA, msg_type: int = m.XFRM_MSG_NEWSA, seq: int = 0) -> bytes:
    return m.build(m.xfrm_usersa_info, msg_type, sa_fields(sa), sa_attrs(sa), seq=seq)


def sa_id_message(msg_type: int, dst, spi: int, protocol: int, src=None, seq: int = 0) -> bytes:
    """DELSA / GETSA by (daddr, spi, proto), with the source address when known."""
    attrs = [("XFRMA_SRCADDR", {"addr": m.addr_bytes(src)})] if src is not None else []
    fields = {"daddr": m.addr_bytes(dst), "spi": spi, "family": m.family_of(dst), "proto": protocol}
    flags = m.NLM_F_REQUEST | (m.NLM_F_ACK if msg_type == m.XFRM_MSG_DELSA else 0)
    return m.build(m.xfrm_usersa_id, msg_type, fields, attrs, flags=flags, seq=seq)


def allocspi_message(src, dst, protocol: int, spi_min: int, spi_max: int, reqid: int = 0,
                     mode: int = m.XFRM_MODE_TUNNEL, seq: int = 0) -> bytes:
    """ALLOCSPI: a larval SA (dst, proto) from src with an SPI in [spi_min, spi_max]."""
    fields = {"info_id_daddr": m.addr_bytes(dst), "info_id_proto": protocol,
              "info_saddr": m.addr_bytes(src), "info_family": m.family_of(dst),
              "info_mode": mode, "info_reqid": reqid, "min": spi_min, "max": spi_max}
    return m.build(m.xfrm_userspi_info, m.XFRM_MSG_ALLOCSPI, fields, flags=m.NLM_F_REQUEST, seq=seq)


# -- policies -----------------------------------------------------------------------------

def port_masks(start: int, end: int) -> list[tuple[int, int]]:
    """The (port, mask) blocks that cover exactly start..end (XFRM selectors hold one)."""
    if (start, end) == (0, 65535):
        return [(0, 0)]
    blocks = []
    while start <= end:
        size = start & -start if start else 1 << 16
        while start + size - 1 > end:
            size >>= 1
        blocks.append((start, (0xFFFF & ~(size - 1))))
        start += size
    return blocks


def _icmp_ports(src_ts, dst_ts) -> list[tuple[int, int, int, int]]:
    """RFC 4301 §4.4.1.1: ICMP type/code sit in the port fields of a TS (type << 8 | code);
    XFRM matches the type in sport and the code in dport. The side that narrows them wins."""
    ts = src_ts if (src_ts.start_port, src_ts.end_port) != (0, 65535) else dst_ts
    lo, hi = ts.start_port, ts.end_port
    if (lo, hi) == (0, 65535):
        return [(0, 0, 0, 0)]
    out = []
    for icmp_type in range(lo >> 8, (hi >> 8) + 1):
        first = lo & 0xFF if icmp_type == lo >> 8 else 0
        last = hi & 0xFF if icmp_type == hi >> 8 else 0xFF
        for code, code_mask in port_masks(first, last):
            out.append((icmp_type, 0xFFFF, code, code_mask))
    return out


def selectors(src_ts, dst_ts) -> list[dict]:
    """The xfrm_selector fields covering traffic from src_ts to dst_ts."""
    if src_ts.version != dst_ts.version:
        return []
    if src_ts.ip_protocol and dst_ts.ip_protocol and src_ts.ip_protocol != dst_ts.ip_protocol:
        return []
    proto = src_ts.ip_protocol or dst_ts.ip_protocol
    if proto in (1, 58):
        ports = _icmp_ports(src_ts, dst_ts)
    else:
        ports = [(s, sm, d, dm) for (s, sm), (d, dm) in itertools.product(
            port_masks(src_ts.start_port, src_ts.end_port), port_masks(dst_ts.start_port, dst_ts.end_port))]
    out = []
    for src_net, dst_net, (sport, smask, dport, dmask) in itertools.product(
            src_ts.networks(), dst_ts.networks(), ports):
        out.append({
            "sel_saddr": m.addr_bytes(src_net.network_address), "sel_prefixlen_s": src_net.prefixlen,
            "sel_daddr": m.addr_bytes(dst_net.network_address), "sel_prefixlen_d": dst_net.prefixlen,
            "sel_family": m.family_of(src_net.network_address), "sel_proto": proto,
            "sel_sport": sport, "sel_sport_mask": smask, "sel_dport": dport, "sel_dport_mask": dmask,
        })
        if len(out) > MAX_POLICIES_PER_PAIR:
            raise KernelError(f"traffic selectors {src_ts} -> {dst_ts} need more than "
                              f"{MAX_POLICIES_PER_PAIR} XFRM policies")
    return out


def priority(sel: dict, base: int = POLICY_PRIORITY_BASE) -> int:
    """Smaller is preferred: more specific selectors win (as strongSwan)."""
    specific = (sel["sel_prefixlen_s"] + sel["sel_prefixlen_d"]) * 4
    specific += 2 if sel["sel_proto"] else 0
    specific += 1 if sel["sel_sport_mask"] or sel["sel_dport_mask"] else 0
    return base - specific


@dataclass(frozen=True, slots=True)
class XfrmPolicy:
    direction: int
    selector: dict
    template: dict
    priority: int

    @property
    def key(self) -> tuple:
        return (self.direction,) + tuple(sorted(self.selector.items()))


def policies(reqid: int, protocol: int, mode: str, ts_local, ts_remote, local, remote,
             base: int = POLICY_PRIORITY_BASE) -> list[XfrmPolicy]:
    """out, in and (tunnel mode) fwd policies for every TS pair of a flow (RFC 4301 §4.4.1)."""
    protocol = _kernel_protocol(protocol)
    tunnel = mode == "tunnel"
    kmode = m.XFRM_MODE_TUNNEL if tunnel else m.XFRM_MODE_TRANSPORT
    out = []
    seen = set()
    for ts_l, ts_r in itertools.product(ts_local, ts_remote):
        for direction in ([m.XFRM_POLICY_OUT, m.XFRM_POLICY_IN] + ([m.XFRM_POLICY_FWD] if tunnel else [])):
            outbound = direction == m.XFRM_POLICY_OUT
            src_ts, dst_ts = (ts_l, ts_r) if outbound else (ts_r, ts_l)
            t_src, t_dst = (local, remote) if outbound else (remote, local)
            template = {"id_proto": protocol, "family": m.family_of(t_dst), "reqid": reqid,
                        "mode": kmode, "aalgos": 0xFFFFFFFF, "ealgos": 0xFFFFFFFF, "calgos": 0xFFFFFFFF}
            if tunnel:
                template["id_daddr"] = m.addr_bytes(t_dst)
                template["saddr"] = m.addr_bytes(t_src)
            for sel in selectors(src_ts, dst_ts):
                pol = XfrmPolicy(direction, sel, template, priority(sel, base))
                if pol.key not in seen:
                    seen.add(pol.key)
                    out.append(pol)
    return out


def event_policies(event: ChildSAInstall, base: int = POLICY_PRIORITY_BASE) -> list[XfrmPolicy]:
    return policies(event.reqid, event.protocol, event.mode, event.ts_local, event.ts_remote,
                    event.local_addr, event.remote_addr, base)


def policy_message(pol: XfrmPolicy, msg_type: int = m.XFRM_MSG_NEWPOLICY, seq: int = 0) -> bytes:
    fields = dict(pol.selector)
    fields.update({
        "priority": pol.priority, "dir": pol.direction, "action": m.XFRM_POLICY_ALLOW,
        "lft_soft_byte_limit": m.XFRM_INF, "lft_hard_byte_limit": m.XFRM_INF,
        "lft_soft_packet_limit": m.XFRM_INF, "lft_hard_packet_limit": m.XFRM_INF,
    })
    attrs = [("XFRMA_TMPL", {"templates": [pol.template]})]
    return m.build(m.xfrm_userpolicy_info, msg_type, fields, attrs, seq=seq)


def delpolicy_message(direction: int, selector: dict, extra_attrs=(), seq: int = 0) -> bytes:
    fields = dict(selector)
    fields["dir"] = direction
    return m.build(m.xfrm_userpolicy_id, m.XFRM_MSG_DELPOLICY, fields, list(extra_attrs), seq=seq)


def bypass_policy(family: int, direction: int) -> bytes:
    """The xfrm_userpolicy_info a socket's IP_XFRM_POLICY takes to skip IPsec policies."""
    return m.struct_bytes(m.xfrm_userpolicy_info, {
        "sel_family": family, "dir": direction, "action": m.XFRM_POLICY_ALLOW,
        "lft_soft_byte_limit": m.XFRM_INF, "lft_hard_byte_limit": m.XFRM_INF,
        "lft_soft_packet_limit": m.XFRM_INF, "lft_hard_packet_limit": m.XFRM_INF,
    })
