"""The Linux XFRM backend: CHILD_SAs as kernel SAs and policies, over NETLINK_XFRM.

    backend = XfrmBackend(reqid_range=(1, 0xFFFF), keep_on_close=False)
    spi = backend.allocate_spi(ProtocolId.ESP, src=peer, dst=us)     # XFRM_MSG_ALLOCSPI
    backend.install(ChildSAInstall(...))     # UPDSA/NEWSA both SAs, NEWPOLICY out/in/fwd
    backend.remove(ChildSARemove(...))       # DELPOLICY (unless rekeyed), DELSA both SAs
    backend.update(ChildSAUpdate(...))       # NAT mapping change: new encap ports/address
    backend.fileno()                         # readable when EXPIRE / ACQUIRE arrived
    backend.notices()                        # -> [KernelExpire | KernelAcquire]
    backend.close()                          # removes ours, unless keep_on_close=True

Socket helpers for the daemon: `set_udp_encap(sock)` hands ESP-in-UDP arriving on the
4500 socket to the kernel (use it with this backend only: the userspace backend must
receive those datagrams itself), and `bypass_policy(sock)` lets the IKE sockets skip the
IPsec policies. `kernel_has_esp()` probes whether ESP SAs can be installed at all.

Messages are built in xfrm_build.py on the classes of xfrm_msg.py. Every request is sent
with NLM_F_ACK on one socket and answered in order; notices arrive on a second socket that
joined the ACQUIRE and EXPIRE groups, so the daemon can poll it.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import socket
import struct

from pyroute2.netlink.exceptions import NetlinkDecodeError

from pyiked.core.events import (
    ChildSAInstall,
    ChildSARemove,
    ChildSAUpdate,
    KernelAcquire,
    KernelExpire,
)
from pyiked.core.iana import ProtocolId
from pyiked.core.ts import TS

from . import xfrm_build as b
from . import xfrm_msg as m
from .base import KernelBackend, KernelError

log = logging.getLogger("pyiked.kernel")

SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_MULTI = 0x2
NLM_F_DUMP = 0x300
NLM_F_CAPPED = 0x100
NLM_F_ACK_TLVS = 0x200
NLMSGERR_ATTR_MSG = 1
_HDR = struct.Struct("=IHHII")

DEFAULT_SPI_RANGE = (0xC0000000, 0xCFFFFFFF)  # as strongSwan: easy to tell ours apart
REQUEST_TIMEOUT = 5.0  # seconds; the kernel answers at once, so this only guards a hang


class XfrmError(KernelError):
    """A refused XFRM request: errno, the kernel's extended ack text, and what it means."""

    def __init__(self, message: str, code: int = 0, extack: str = ""):
        super().__init__(message)
        self.errno = code
        self.extack = extack


def explain(code: int, extack: str, what: str, sa: b.XfrmSA | None = None) -> str:
    """A message that names what the kernel lacks, from a failed request's errno."""
    detail = f" ({extack})" if extack else ""
    if code == errno.ENOSYS and sa is not None:
        return (f"{what}: kernel lacks ESP (CONFIG_INET_ESP) or the algorithm "
                f"{sa.algorithm_names()} ({sa.kconfig_hint()}){detail}")
    if code == errno.ENOSYS:
        return f"{what}: kernel lacks ESP (CONFIG_INET_ESP){detail}"
    if code == errno.EPROTONOSUPPORT:
        return f"{what}: kernel lacks ESP (CONFIG_INET_ESP / CONFIG_INET6_ESP){detail}"
    if code in (errno.EPERM, errno.EACCES):
        return f"{what}: not permitted (needs CAP_NET_ADMIN){detail}"
    if code == errno.EEXIST:
        return f"{what}: already in the kernel{detail}"
    if code == errno.ESRCH or code == errno.ENOENT:
        return f"{what}: not in the kernel{detail}"
    return f"{what}: {os.strerror(code)}{detail}"


class XfrmSocket:
    """One NETLINK_XFRM socket: requests answered by an ack, error or dump."""

    def __init__(self, groups=()):
        try:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 6)  # NETLINK_XFRM
        except OSError as exc:
            raise XfrmError(f"kernel lacks XFRM netlink (CONFIG_XFRM_USER): {exc.strerror}",
                            exc.errno) from None
        self.sock.bind((0, 0))
        for opt in (NETLINK_EXT_ACK, NETLINK_CAP_ACK):
            try:
                self.sock.setsockopt(SOL_NETLINK, opt, 1)
            except OSError:
                pass  # older kernels: no extended ack text
        for group in groups:
            self.sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)
        if groups:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            self.sock.setblocking(False)
        else:
            self.sock.settimeout(REQUEST_TIMEOUT)
        self._seq = int.from_bytes(os.urandom(2), "big")

    def prepare_socket(self, sock, natt: bool) -> None:
        """IKE sockets bypass our policies; on 4500 the kernel takes ESP-in-UDP (RFC 3948)."""
        bypass_policy(sock)
        if natt:
            set_udp_encap(sock)

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self):
        self.sock.close()

    def next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        return self._seq

    def request(self, data: bytes) -> list[tuple[int, int, bytes]]:
        """Send one request; return the (type, flags, message) answers. Raises XfrmError
        (errno, extack) for an error answer."""
        seq = struct.unpack_from("=I", data, 8)[0]
        self.sock.send(data)
        dump = bool(struct.unpack_from("=H", data, 6)[0] & 0x100)
        answers = []
        while True:
            try:
                buf = self.sock.recv(1 << 16)
            except TimeoutError:
                raise XfrmError("no answer from the kernel", errno.ETIMEDOUT) from None
            for mtype, flags, msg in split(buf):
                if struct.unpack_from("=I", msg, 8)[0] != seq:
                    continue  # a late answer to an earlier request
                if mtype == NLMSG_ERROR:
                    code, extack = parse_error(msg, flags)
                    if code:
                        raise XfrmError(os.strerror(code), code, extack)
                    return answers
                if mtype == NLMSG_DONE:
                    return answers
                answers.append((mtype, flags, msg))
                if not dump and not flags & NLM_F_MULTI:
                    return answers


def split(buf: bytes):
    """The netlink messages in one datagram: (type, flags, message bytes)."""
    off = 0
    while off + 16 <= len(buf):
        length, mtype, flags, _, _ = _HDR.unpack_from(buf, off)
        if length < 16 or off + length > len(buf):
            return
        yield mtype, flags, buf[off:off + length]
        off += (length + 3) & ~3


def parse_error(msg: bytes, flags: int) -> tuple[int, str]:
    """errno and the NLMSGERR_ATTR_MSG text of an NLMSG_ERROR (0 for an ack)."""
    if len(msg) < 20:
        return errno.EIO, "truncated netlink error"
    code = -struct.unpack_from("=i", msg, 16)[0]
    extack = ""
    if flags & NLM_F_ACK_TLVS:
        orig_len = 16 if flags & NLM_F_CAPPED else struct.unpack_from("=I", msg, 20)[0] if len(msg) >= 24 else 0
        off = 20 + ((orig_len + 3) & ~3)
        while off + 4 <= len(msg):
            alen, atype = struct.unpack_from("=HH", msg, off)
            if alen < 4:
                break
            if atype & 0x3FFF == NLMSGERR_ATTR_MSG:
                extack = msg[off + 4:off + alen].split(b"\0", 1)[0].decode("utf-8", "replace")
            off += (alen + 3) & ~3
    return code, extack


# -- notices ------------------------------------------------------------------------------

def _ts(sel: dict, side: str) -> TS:
    family = sel["sel_family"]
    raw, plen = (sel["sel_saddr"], sel["sel_prefixlen_s"]) if side == "s" else (sel["sel_daddr"], sel["sel_prefixlen_d"])
    if family not in (socket.AF_INET, socket.AF_INET6):
        raise ValueError(f"selector family {family}")
    addr = m.addr_from(raw, family)
    net = ipaddress.ip_network(f"{addr}/{plen}", strict=False)
    proto = sel["sel_proto"]
    if proto in (1, 58):
        # XFRM holds the ICMP type in sport and the code in dport; a TS carries both in
        # its ports, type << 8 | code (RFC 4301 §4.4.1.1), on the source side
        if side == "d" or not sel["sel_sport_mask"]:
            lo, hi = 0, 65535
        else:
            code = sel["sel_dport"] & sel["sel_dport_mask"] & 0xFF
            code_hi = code | (~sel["sel_dport_mask"] & 0xFF)
            lo, hi = (sel["sel_sport"] & 0xFF) << 8 | code, (sel["sel_sport"] & 0xFF) << 8 | code_hi
        return TS(net.version, int(net.network_address), int(net.broadcast_address), proto, lo, hi)
    port, mask = (sel["sel_sport"], sel["sel_sport_mask"]) if side == "s" else (sel["sel_dport"], sel["sel_dport_mask"])
    lo = port & mask
    hi = lo | (~mask & 0xFFFF)
    return TS(net.version, int(net.network_address), int(net.broadcast_address), proto, lo, hi)


_DECODE_ERRORS = (struct.error, ValueError, KeyError, IndexError, TypeError, AttributeError,
                  NetlinkDecodeError)


def parse_notice(mtype: int, data: bytes):
    """(KernelExpire | KernelAcquire, reqid) from one EXPIRE / ACQUIRE message, or None
    for other types. Raises ValueError, and nothing else, for a malformed message."""
    if mtype not in (m.XFRM_MSG_EXPIRE, m.XFRM_MSG_ACQUIRE):
        return None
    cls = m.MESSAGE_CLASSES[mtype]
    if len(data) < 16 + m.SIZES[cls]:
        raise ValueError(f"XFRM message {mtype} too short")
    try:
        msg = cls(data)
        msg.decode()
        if mtype == m.XFRM_MSG_EXPIRE:
            family = msg["state_family"]
            dst = m.addr_from(msg["state_id_daddr"], family)
            if dst is None:
                raise ValueError("EXPIRE of an SA without an address family")
            notice = KernelExpire(protocol=_ike_protocol(msg["state_id_proto"]),
                                  spi=msg["state_id_spi"], dst=dst, hard=bool(msg["hard"]))
            return notice, msg["state_reqid"]
        templates = (msg.get_attr("XFRMA_TMPL") or {}).get("templates") or [{}]
        reqid = int(templates[0].get("reqid", 0))
        # the selector of the packet that hit the policy: RFC 7296 §2.9 wants it as the
        # first TS pair of the CREATE_CHILD_SA the engine starts
        return KernelAcquire(reqid=reqid, ts_local=_ts(msg, "s"), ts_remote=_ts(msg, "d")), reqid
    except _DECODE_ERRORS as exc:
        raise ValueError(f"undecodable XFRM message {mtype}: {exc!r}") from None


def _ike_protocol(proto: int) -> int:
    return {m.IPPROTO_ESP: ProtocolId.ESP, m.IPPROTO_AH: ProtocolId.AH}.get(proto, proto)


# -- socket helpers -----------------------------------------------------------------------

def set_udp_encap(sock: socket.socket) -> None:
    """UDP_ENCAP_ESPINUDP on the 4500 socket: the kernel then takes ESP-in-UDP (RFC 3948)
    from it and hands up only IKE (non-ESP marker) and keepalives. XFRM backend only."""
    sock.setsockopt(socket.IPPROTO_UDP, m.UDP_ENCAP, m.UDP_ENCAP_ESPINUDP)


def bypass_policy(sock: socket.socket) -> None:
    """Let an IKE socket's traffic skip the IPsec policies (in and out), as every IKE
    daemon must: IKE itself is never protected by the SAs it negotiates."""
    families = [socket.AF_INET] if sock.family == socket.AF_INET else [socket.AF_INET6, socket.AF_INET]
    for family in families:
        level, opt = (socket.IPPROTO_IP, m.IP_XFRM_POLICY) if family == socket.AF_INET else (socket.IPPROTO_IPV6, m.IPV6_XFRM_POLICY)
        for direction in (m.XFRM_POLICY_IN, m.XFRM_POLICY_OUT):
            try:
                sock.setsockopt(level, opt, b.bypass_policy(family, direction))
            except OSError as exc:
                if family != sock.family:
                    continue  # the IPv4 half of a v6-only socket
                raise XfrmError(explain(exc.errno, "", "IPsec bypass on the IKE socket"), exc.errno) from None


def kernel_has_esp(family: int = socket.AF_INET) -> bool:
    """Whether this kernel can hold ESP SAs, without installing one.

    It asks for an ESP SA with an integrity algorithm and no cipher: a kernel with ESP
    accepts the request up to esp_init_state, which refuses it (EINVAL, "AEAD or CRYPT
    must be provided"); a kernel without the ESP type answers EPROTONOSUPPORT first.
    """
    try:
        nl = XfrmSocket()
    except (XfrmError, OSError):
        return False
    probe_addr = "192.0.2.1" if family == socket.AF_INET else "2001:db8::1"  # RFC 5737/3849
    fields = {"id_daddr": m.addr_bytes(probe_addr), "id_spi": 0x100, "id_proto": m.IPPROTO_ESP,
              "saddr": m.addr_bytes(probe_addr), "family": family, "mode": m.XFRM_MODE_TUNNEL,
              "lft_soft_byte_limit": m.XFRM_INF, "lft_hard_byte_limit": m.XFRM_INF,
              "lft_soft_packet_limit": m.XFRM_INF, "lft_hard_packet_limit": m.XFRM_INF}
    attrs = [("XFRMA_ALG_AUTH_TRUNC", {"alg_name": b"hmac(sha256)", "alg_key_len": 256,
                                       "alg_trunc_len": 128, "alg_key": bytes(32)})]
    try:
        nl.request(m.build(m.xfrm_usersa_info, m.XFRM_MSG_NEWSA, fields, attrs, seq=nl.next_seq()))
    except XfrmError as exc:
        return exc.errno == errno.EINVAL
    except OSError:
        return False
    else:  # an older kernel took it: ESP is there; remove the probe
        try:
            nl.request(b.sa_id_message(m.XFRM_MSG_DELSA, probe_addr, 0x100, m.IPPROTO_ESP, seq=nl.next_seq()))
        except OSError:
            pass
        return True
    finally:
        nl.close()


# -- the backend --------------------------------------------------------------------------

class XfrmBackend(KernelBackend):
    """CHILD_SAs in the kernel's SAD and SPD (see the module docstring).

    reqid_range: the reqids this daemon owns. At start, SAs and policies in that range
      left over from an earlier run are removed (cleanup=True).
    keep_on_close: leave our SAs and policies in the kernel on close() (traffic keeps flowing
      while the daemon restarts); otherwise close() removes them.
    spi_range: where ALLOCSPI draws inbound SPIs (RFC 4303 §2.1: never 1..255).
    """

    name = "xfrm"
    requires_udp_encap = False
    supports_transport = True

    def __init__(self, reqid_range=(1, 0xFFFF), keep_on_close=False, cleanup=True,
                 spi_range=DEFAULT_SPI_RANGE, priority_base=b.POLICY_PRIORITY_BASE,
                 netlink=None, event_socket=None):
        lo, hi = reqid_range
        if not 0 < lo <= hi:
            raise ValueError("reqid range must be 1..N")
        if not 0x100 <= spi_range[0] <= spi_range[1] <= 0xFFFFFFFF:
            raise ValueError("SPI range must lie in 256..2^32-1 (RFC 4303 §2.1)")
        self.reqid_range = (lo, hi)
        self.keep_on_close = keep_on_close
        self.spi_range = spi_range
        self.priority_base = priority_base
        # netlink / event_socket: stand-ins for tests (XfrmSocket's interface)
        self._nl = netlink or XfrmSocket()
        self._events = event_socket or XfrmSocket(groups=(m.XFRMNLGRP_ACQUIRE, m.XFRMNLGRP_EXPIRE))
        self._children: dict[int, ChildSAInstall] = {}  # child_id -> install (current endpoints)
        self._endpoints: dict[int, tuple] = {}  # child_id -> (local, remote, encap)
        self._sas: dict[tuple, tuple] = {}  # (dst, spi) -> (child_id, protocol, src)
        self._larval: dict[tuple, int] = {}  # (dst, spi) from ALLOCSPI -> protocol, until installed
        # A policy can have several owners: a trap ("trap", reqid) and the CHILD_SA that
        # answered it ("child", reqid), or two CHILD_SAs with equal selectors. The newest
        # owner's version is in the kernel; the last owner to go deletes it.
        self._policies: dict[tuple, list] = {}  # policy key -> [(owner, XfrmPolicy)]
        self._flows: dict[tuple, set] = {}  # owner -> policy keys
        if cleanup:
            self.cleanup()

    def _ours(self, reqid: int) -> bool:
        return self.reqid_range[0] <= reqid <= self.reqid_range[1]

    def _send(self, data: bytes, what: str, sa=None):
        try:
            return self._nl.request(data)
        except XfrmError as exc:
            raise XfrmError(explain(exc.errno, exc.extack, what, sa), exc.errno, exc.extack) from None

    # -- SPIs ------------------------------------------------------------------------

    def allocate_spi(self, protocol: int, src, dst) -> int:
        """A kernel-unique inbound SPI for an SA from src (the peer) to dst (this host),
        reserved by a larval SA until install() fills it (XFRM_MSG_ALLOCSPI)."""
        proto = b._kernel_protocol(protocol)
        data = b.allocspi_message(src, dst, proto, self.spi_range[0], self.spi_range[1],
                                  seq=self._nl.next_seq())
        answers = self._send(data, f"ALLOCSPI {src} -> {dst}")
        for mtype, _, msg in answers:
            if mtype == m.XFRM_MSG_NEWSA:
                sa = m.xfrm_usersa_info(msg)
                sa.decode()
                spi = sa["id_spi"]
                self._larval[(ipaddress.ip_address(dst), spi)] = proto
                return spi
        raise XfrmError("ALLOCSPI: the kernel answered without an SA")

    # -- install / remove ------------------------------------------------------------

    def install(self, event: ChildSAInstall) -> None:
        if not self._ours(event.reqid):
            raise KernelError(f"reqid {event.reqid} is outside this daemon's range {self.reqid_range}")
        inbound, outbound = b.sa_pair(event)
        done = []
        try:
            self._add_sa(inbound, event.child_id, done)
            self._add_sa(outbound, event.child_id, done)
            if event.rekey_of is None:
                self._add_policies(("child", event.reqid), b.event_policies(event, self.priority_base))
        except KernelError:
            for sa in reversed(done):
                self._del_sa(sa.dst, sa.spi, sa.protocol, sa.src, quiet=True)
            raise
        self._children[event.child_id] = event
        self._endpoints[event.child_id] = (event.local_addr, event.remote_addr, event.encap)
        if log.isEnabledFor(logging.INFO):  # algorithm_names() only when it is logged
            log.info("installed CHILD_SA %d reqid %d SPIs %08x in %08x out (%s)", event.child_id,
                     event.reqid, inbound.spi, outbound.spi, inbound.algorithm_names())

    def _add_sa(self, sa: b.XfrmSA, child_id: int, done: list):
        key = (ipaddress.ip_address(sa.dst), sa.spi)
        what = f"SA {sa.spi:08x} {sa.src} -> {sa.dst}"
        if key in self._larval:
            # the SPI came from ALLOCSPI: fill the larval SA in place
            try:
                self._send(b.sa_message(sa, m.XFRM_MSG_UPDSA, self._nl.next_seq()), what, sa)
            except XfrmError as exc:
                if exc.errno not in (errno.ESRCH, errno.ENOENT):
                    raise
                # the larval SA expired meanwhile (net.core.xfrm_acq_expires)
                self._send(b.sa_message(sa, m.XFRM_MSG_NEWSA, self._nl.next_seq()), what, sa)
            self._larval.pop(key, None)
        else:
            self._send(b.sa_message(sa, m.XFRM_MSG_NEWSA, self._nl.next_seq()), what, sa)
        self._sas[key] = (child_id, sa.protocol, sa.src)
        done.append(sa)

    def _del_sa(self, dst, spi, protocol, src=None, quiet=False) -> bool:
        self._sas.pop((ipaddress.ip_address(dst), spi), None)
        try:
            self._send(b.sa_id_message(m.XFRM_MSG_DELSA, dst, spi, protocol, src, self._nl.next_seq()),
                       f"delete SA {spi:08x} -> {dst}")
        except XfrmError as exc:
            if exc.errno in (errno.ESRCH, errno.ENOENT):
                return True  # already gone (hard expiry)
            if not quiet:
                log.warning("%s", exc)
            return False
        return True

    def _add_policies(self, owner: tuple, pols: list):
        added = []
        try:
            for pol in pols:
                owners = self._policies.get(pol.key, [])
                active = owners[-1][1] if owners else None
                if active is None:
                    self._send(b.policy_message(pol, m.XFRM_MSG_NEWPOLICY, self._nl.next_seq()),
                               f"policy {self._describe(pol)}")
                elif active != pol:
                    self._send(b.policy_message(pol, m.XFRM_MSG_UPDPOLICY, self._nl.next_seq()),
                               f"policy {self._describe(pol)}")
                self._policies[pol.key] = [o for o in owners if o[0] != owner] + [(owner, pol)]
                self._flows.setdefault(owner, set()).add(pol.key)
                added.append(pol.key)
        except KernelError:
            for key in added:
                self._release_policy(key, owner)
            raise

    def _release_policy(self, key: tuple, owner: tuple) -> bool:
        """Drop one owner; delete the policy with its last owner, else put the newest
        remaining owner's version back if it differs (UPDPOLICY)."""
        owners = self._policies.get(key, [])
        active = owners[-1][1] if owners else None
        owners[:] = [o for o in owners if o[0] != owner]
        keys = self._flows.get(owner)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._flows[owner]
        try:
            if not owners:
                self._policies.pop(key, None)
                if active is not None:
                    self._send(b.delpolicy_message(active.direction, active.selector, seq=self._nl.next_seq()),
                               f"delete policy {self._describe(active)}")
            elif owners[-1][1] != active:
                self._send(b.policy_message(owners[-1][1], m.XFRM_MSG_UPDPOLICY, self._nl.next_seq()),
                           f"policy {self._describe(owners[-1][1])}")
        except XfrmError as exc:
            if exc.errno not in (errno.ESRCH, errno.ENOENT):
                log.warning("%s", exc)
                return False
        return True

    def _release_owner(self, owner: tuple) -> bool:
        ok = True
        for key in list(self._flows.pop(owner, ())):
            ok &= self._release_policy(key, owner)
        return ok

    def install_trap(self, reqid: int, ts_local, ts_remote, local_addr, remote_addr,
                     mode: str = "tunnel", protocol: int = ProtocolId.ESP) -> None:
        """Policies without SAs for an active policy: the first packet that matches makes
        the kernel send ACQUIRE, which notices() returns as KernelAcquire (OpenIKED
        installs its flows this way; strongSwan calls it a trap)."""
        if not self._ours(reqid):
            raise KernelError(f"reqid {reqid} is outside this daemon's range {self.reqid_range}")
        self._add_policies(("trap", reqid), b.policies(reqid, protocol, mode, ts_local, ts_remote,
                                                       local_addr, remote_addr, self.priority_base))

    def remove_trap(self, reqid: int) -> None:
        if not self._release_owner(("trap", reqid)):
            raise KernelError(f"trap policies of reqid {reqid}: some could not be removed")

    @staticmethod
    def _describe(pol: b.XfrmPolicy) -> str:
        s = pol.selector
        src = m.addr_from(s["sel_saddr"], s["sel_family"])
        dst = m.addr_from(s["sel_daddr"], s["sel_family"])
        names = {m.XFRM_POLICY_IN: "in", m.XFRM_POLICY_OUT: "out", m.XFRM_POLICY_FWD: "fwd"}
        return f"{src}/{s['sel_prefixlen_s']} -> {dst}/{s['sel_prefixlen_d']} dir {names[pol.direction]}"

    def remove(self, event: ChildSARemove) -> None:
        ok = True
        if event.remove_policies:
            # policies first: traffic must not meet a policy whose SA is gone
            ok &= self._release_owner(("child", event.reqid))
        proto = b._kernel_protocol(event.protocol)
        self._children.pop(event.child_id, None)
        endpoints = self._endpoints.pop(event.child_id, None)
        local, remote = (endpoints[0], endpoints[1]) if endpoints else (event.local_addr, event.remote_addr)
        ok &= self._del_sa(remote, event.outbound_spi, proto, local)
        ok &= self._del_sa(local, event.inbound_spi, proto, remote)
        if not ok:
            raise KernelError(f"CHILD_SA {event.child_id}: some kernel entries could not be removed")

    def update(self, event: ChildSAUpdate) -> None:
        """The peer moved (NAT mapping, RFC 7296 §2.23; MOBIKE): new ports are updated in
        place (UPDSA); a new address means new SAs and new policy templates."""
        install = self._children.get(event.child_id)
        if install is None:
            raise KernelError(f"update of unknown CHILD_SA {event.child_id}")
        old_local, old_remote, _ = self._endpoints[event.child_id]
        new = b.sa_pair(install, event.local_addr, event.remote_addr, event.encap)
        moved = (old_local, old_remote) != (event.local_addr, event.remote_addr)
        for sa in new:
            what = f"update SA {sa.spi:08x}"
            if not moved:
                self._send(b.sa_message(sa, m.XFRM_MSG_UPDSA, self._nl.next_seq()), what, sa)
                continue
            inbound = sa.dst == event.local_addr
            old_src, old_dst = (old_remote, old_local) if inbound else (old_local, old_remote)
            self._del_sa(old_dst, sa.spi, sa.protocol, old_src)
            self._add_sa(sa, event.child_id, [])
        if moved:
            owner = ("child", install.reqid)
            for key in list(self._flows.get(owner, ())):
                owners = self._policies.get(key, [])
                for i, (who, pol) in enumerate(owners):
                    if who == owner:
                        owners[i] = (who, self._retarget(pol, event.local_addr, event.remote_addr))
                if owners and owners[-1][0] == owner:
                    self._send(b.policy_message(owners[-1][1], m.XFRM_MSG_UPDPOLICY, self._nl.next_seq()),
                               f"policy {self._describe(owners[-1][1])}")
        self._endpoints[event.child_id] = (event.local_addr, event.remote_addr, event.encap)

    @staticmethod
    def _retarget(pol: b.XfrmPolicy, local, remote) -> b.XfrmPolicy:
        if "id_daddr" not in pol.template:
            return pol  # transport mode: the template names no addresses
        src, dst = (local, remote) if pol.direction == m.XFRM_POLICY_OUT else (remote, local)
        template = dict(pol.template, id_daddr=m.addr_bytes(dst), saddr=m.addr_bytes(src),
                        family=m.family_of(dst))
        return b.XfrmPolicy(pol.direction, pol.selector, template, pol.priority)

    def query(self, dst, spi: int, protocol: int = ProtocolId.ESP) -> dict:
        """The kernel's counters of one SA (XFRM_MSG_GETSA): bytes, packets, add_time, use_time."""
        data = b.sa_id_message(m.XFRM_MSG_GETSA, dst, spi, b._kernel_protocol(protocol), seq=self._nl.next_seq())
        for mtype, _, msg in self._send(data, f"GETSA {spi:08x}"):
            if mtype == m.XFRM_MSG_NEWSA:
                sa = m.xfrm_usersa_info(msg)
                sa.decode()
                return {k: sa[f"curlft_{k}"] for k in ("bytes", "packets", "add_time", "use_time")}
        raise KernelError(f"GETSA {spi:08x}: no answer")

    def sa_counters(self) -> dict:
        """The kernel's counters of every CHILD SA (two GETSA each; `show sa` only)."""
        out = {}
        for child_id, event in self._children.items():
            local, remote, _ = self._endpoints.get(child_id, (event.local_addr, event.remote_addr, None))
            try:
                rx = self.query(local, event.inbound.spi, event.protocol)
                tx = self.query(remote, event.outbound.spi, event.protocol)
            except KernelError as exc:
                log.debug("counters of CHILD_SA %d: %s", child_id, exc)
                continue
            out[child_id] = {"bytes_in": rx["bytes"], "bytes_out": tx["bytes"],
                             "packets_in": rx["packets"], "packets_out": tx["packets"]}
        return out

    # -- notices ---------------------------------------------------------------------

    def fileno(self) -> int:
        return self._events.fileno()

    def notices(self) -> list:
        out = []
        while True:
            try:
                buf = self._events.sock.recv(1 << 16)
            except BlockingIOError:
                return out
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    log.warning("kernel notices were lost (socket buffer overrun)")
                    continue
                raise
            out.extend(self.parse_notices(buf))

    def parse_notices(self, buf: bytes) -> list:
        """The notices in one netlink datagram that concern this daemon's SAs/policies."""
        out = []
        for mtype, _, msg in split(buf):
            try:
                parsed = parse_notice(mtype, msg)
            except ValueError as exc:
                log.warning("malformed XFRM notice dropped: %s", exc)
                continue
            if parsed is None:
                continue
            notice, reqid = parsed
            if isinstance(notice, KernelExpire):
                key = (notice.dst, notice.spi)
                if key in self._larval:
                    self._larval.pop(key, None)  # an unused ALLOCSPI reservation timed out
                    continue
                if notice.spi == 0 or (key not in self._sas and not self._ours(reqid)):
                    continue  # an ACQUIRE's larval SA, or not ours
                if notice.hard:
                    self._sas.pop(key, None)
            elif not self._ours(reqid):
                continue
            out.append(notice)
        return out

    # -- start / stop ----------------------------------------------------------------

    def cleanup(self) -> int:
        """Remove SAs and policies in our reqid range (left by an earlier run)."""
        removed = 0
        dump = m.build(m.xfrm_dump_request, m.XFRM_MSG_GETPOLICY, {},
                       flags=m.NLM_F_REQUEST | NLM_F_DUMP, seq=self._nl.next_seq())
        for mtype, _, data in self._send(dump, "dump policies"):
            if mtype != m.XFRM_MSG_NEWPOLICY:
                continue
            pol = m.xfrm_userpolicy_info(data)
            pol.decode()
            templates = (pol.get_attr("XFRMA_TMPL") or {}).get("templates", [])
            if not any(self._ours(t["reqid"]) for t in templates):
                continue
            sel = {k: v for k, v in pol.items() if isinstance(k, str) and k.startswith("sel_")}
            extra = [(name, pol.get_attr(name)) for name in ("XFRMA_MARK", "XFRMA_IF_ID")
                     if pol.get_attr(name) is not None]
            try:
                self._send(b.delpolicy_message(pol["dir"], sel, extra, self._nl.next_seq()), "delete stale policy")
                removed += 1
            except XfrmError as exc:
                log.warning("%s", exc)
        dump = m.build(m.xfrm_dump_request, m.XFRM_MSG_GETSA, {},
                       flags=m.NLM_F_REQUEST | NLM_F_DUMP, seq=self._nl.next_seq())
        for mtype, _, data in self._send(dump, "dump SAs"):
            if mtype != m.XFRM_MSG_NEWSA:
                continue
            sa = m.xfrm_usersa_info(data)
            sa.decode()
            if self._ours(sa["reqid"]):
                dst = m.addr_from(sa["id_daddr"], sa["family"])
                removed += self._del_sa(dst, sa["id_spi"], sa["id_proto"])
        if removed:
            log.info("removed %d stale kernel entries in reqid range %s", removed, self.reqid_range)
        return removed

    def close(self) -> None:
        try:
            if not self.keep_on_close:
                for owner in list(self._flows):
                    self._release_owner(owner)
                for (dst, spi), (_, protocol, src) in list(self._sas.items()):
                    self._del_sa(dst, spi, protocol, src)
                for (dst, spi), protocol in list(self._larval.items()):  # unused ALLOCSPI reservations
                    self._del_sa(dst, spi, protocol, quiet=True)
                self._larval.clear()
                self._children.clear()
        finally:
            self._nl.close()
            self._events.close()
