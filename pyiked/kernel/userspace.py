"""Userspace ESP (RFC 4303) over a TUN device, for kernels without ESP (as strongSwan's
kernel-libipsec). ESP travels in UDP (RFC 3948) on the daemon's port-4500 socket only.

The interface with the daemon
-----------------------------
    backend = UserspaceBackend(send, tun_name="pyiked%d", mtu=1400, route_table=220)

  send(datagram: bytes, local_addr, remote_addr)
      Given by the daemon, which owns the UDP 4500 socket: send `datagram` (the ESP packet,
      SPI first; the daemon adds nothing) from local_addr to remote_addr, both
      (ip string, port). Called from handle_tun_readable().
  backend.handle_esp(packet: bytes, local_addr, remote_addr)
      The daemon calls it for every datagram on the 4500 socket that is ESP: not a
      keepalive (one 0xFF octet) and not IKE (non-ESP marker, four zero octets, RFC 3948
      §2.2). `packet` is the UDP payload, SPI first. Never raises for bad input.
  backend.fileno()  ->  the TUN descriptor; when it is readable the daemon calls
  backend.handle_tun_readable(): read up to `batch` packets, pick each one's SA by its
      traffic selectors, protect it, send() it.
  backend.notices()  ->  [KernelExpire]: byte/packet/sequence-number limits reached
      (RFC 4303 §3.3.3), and time limits once handle_timer() saw them.
  backend.get_timer() -> float | None, backend.handle_timer(now): time lifetimes, on the
      `clock` given (time.monotonic by default), the engine's timer shape.
  backend.stats  ->  counters of packets sent, received and dropped (per reason).

What it enforces
----------------
  * requires_udp_encap: every SA must come with events.Encapsulation (the engine fakes
    NAT detection so that it does, as libipsec does); tunnel mode only: a TUN device
    carries whole IP packets, so transport mode is refused with KernelError.
  * outbound: the SA whose ts_local/ts_remote match the packet's source, destination,
    protocol and ports; no match, no packet (RFC 4301 §5.1: DISCARD).
  * inbound: after decryption, the inner packet must match the SA's selectors
    (RFC 4301 §5.2 step 4), or it is dropped.
  * rekey: a ChildSAInstall with rekey_of joins the old SA's flow; outbound switches to
    the new SA at once, the old inbound SA keeps working until its ChildSARemove.
  * routes to ts_remote go through the TUN device, in `route_table`, removed with the
    flow's last SA.
"""

from __future__ import annotations

import heapq
import ipaddress
import logging
import os
import time
from dataclasses import dataclass, field

from pyroute2.netlink.exceptions import NetlinkError

from pyiked import _fast
from pyiked.core.errors import CryptoUnavailable, EspError, IntegrityError, ReplayError
from pyiked.core.events import (
    ChildSAInstall,
    ChildSARemove,
    ChildSAUpdate,
    KernelActivity,
    KernelExpire,
)
from pyiked.core.iana import EncrId, IntegId, ProtocolId

from .base import KernelBackend, KernelError
from .tun import RouteTable, ThreadedIPRoute, TunDevice, local_address_in

log = logging.getLogger("pyiked.kernel")

NH_IPV4, NH_IPV6, NH_NONE = 4, 41, 59
_NH_FOR_VERSION = {4: NH_IPV4, 6: NH_IPV6}
ANY_PORTS = (0, 65535)
# A route's preferred source is looked up in a full address dump; every flow of a
# concentrator has the same local selectors, so the answer is kept this long (seconds).
PREFSRC_TTL = 10.0
# How often the CHILD SAs that received ESP are reported (events.KernelActivity): far
# below any dpd_check_interval, far above the packet rate.
ACTIVITY_PERIOD = 5.0


@dataclass(slots=True)
class _Selector:
    """A TS as integers, for the per-packet match."""

    version: int
    lo: int
    hi: int
    proto: int
    port_lo: int
    port_hi: int

    @classmethod
    def of(cls, ts):
        return cls(ts.version, ts.start, ts.end, ts.ip_protocol, ts.start_port, ts.end_port)

    def match(self, version, addr, proto, port) -> bool:
        if version != self.version or not self.lo <= addr <= self.hi:
            return False
        if self.proto and proto != self.proto:
            return False
        if port < 0:  # a non-initial fragment: ports are OPAQUE (RFC 4301 §4.4.1.1)
            return (self.port_lo, self.port_hi) == ANY_PORTS
        return self.port_lo <= port <= self.port_hi


@dataclass(slots=True, eq=False)
class _Flow:
    """The policies of one reqid: selectors, routes and the SA that sends now."""

    reqid: int
    local: list
    remote: list
    networks: list
    peer_throw: object = None
    sender: object = None  # the _Child whose outbound SA protects new packets
    children: set = field(default_factory=set)

    def allows(self, version, src, dst, proto, sport, dport) -> bool:
        """Traffic from the local side to the remote side (RFC 4301 §4.4.1)."""
        return (any(s.match(version, src, proto, sport) for s in self.local)
                and any(s.match(version, dst, proto, dport) for s in self.remote))


@dataclass(slots=True, eq=False)
class _Child:
    child_id: int
    flow: _Flow
    inbound: object  # EspSA
    outbound: object  # EspSA
    local: tuple  # (ip, port) of this host
    remote: tuple  # (ip, port) of the peer
    local_ip: object
    remote_ip: object
    soft_at: float | None
    hard_at: float | None


class UserspaceBackend(KernelBackend):
    name = "userspace"
    requires_udp_encap = True
    supports_transport = False
    # what pyiked._fast.esp implements: AES-CBC with HMAC-SHA1/SHA2, AES-GCM, ChaCha20-Poly1305
    esp_encr = frozenset({EncrId.AES_CBC, EncrId.AES_GCM_8, EncrId.AES_GCM_12, EncrId.AES_GCM_16,
                          EncrId.CHACHA20_POLY1305})
    esp_integ = frozenset({IntegId.NONE, IntegId.HMAC_SHA1_96, IntegId.HMAC_SHA2_256_128,
                           IntegId.HMAC_SHA2_384_192, IntegId.HMAC_SHA2_512_256})

    def __init__(self, send, tun_name: str = "pyiked%d", mtu: int = 1400, route_table: int = 220,
                 route_priority: int = 220, batch: int = 64, clock=time.monotonic, ipr=None):
        self._send = send
        self._clock = clock
        self.batch = batch
        self._ipr = ipr or ThreadedIPRoute()
        self._own_ipr = ipr is None
        self.tun = TunDevice(tun_name, mtu, self._ipr)
        try:
            self.routes = RouteTable(self._ipr, self.tun.index, route_table, route_priority)
        except BaseException:
            self.tun.close()
            raise
        self._inbound: dict[int, _Child] = {}  # inbound SPI -> CHILD_SA
        self._children: dict[int, _Child] = {}  # child_id -> CHILD_SA
        self._flows: dict[int, _Flow] = {}  # reqid -> flow
        self._by_host: dict[tuple, list] = {}  # (version, address) of a one-host ts_remote -> flows
        self._by_net: list[_Flow] = []  # flows whose ts_remote are ranges
        self._reserved: set[int] = set()
        self._notices: list = []
        self._active: set[int] = set()  # inbound SPIs that received ESP since the last report
        self._activity_due = 0.0
        self._deadlines: list = []  # heap of (time, child_id): lifetimes, stale entries skipped
        self._prefsrc: dict[tuple, tuple] = {}  # local selectors -> (valid until, address)
        self.stats = dict.fromkeys((
            "tx_packets", "tx_bytes", "rx_packets", "rx_bytes", "drop_no_sa", "drop_no_policy",
            "drop_replay", "drop_integrity", "drop_malformed", "drop_selector", "drop_expired",
            "drop_tun_full"), 0)

    # -- SAs -------------------------------------------------------------------------

    def allocate_spi(self, protocol: int, src, dst) -> int:
        """A random SPI that no inbound SA here uses (never 0..255, RFC 4303 §2.1)."""
        while True:
            spi = int.from_bytes(os.urandom(4), "big")
            if spi > 255 and spi not in self._inbound and spi not in self._reserved:
                self._reserved.add(spi)
                return spi

    def install(self, event: ChildSAInstall) -> None:
        if event.protocol != ProtocolId.ESP:
            raise KernelError("the userspace data plane carries ESP only")
        if event.mode != "tunnel":
            raise KernelError("the userspace data plane carries tunnel mode only (a TUN device "
                              "exchanges whole IP packets); transport mode needs kernel ESP")
        if event.encap is None:
            raise KernelError("the userspace data plane needs UDP encapsulation (RFC 3948): "
                              "a UDP socket never sees raw ESP")
        if event.inbound.spi in self._inbound:
            raise KernelError(f"inbound SPI {event.inbound.spi:08x} is in use")
        window = event.replay_window or (64 if event.esn else 0)
        try:
            inbound = self._esp_sa(event.inbound, event.esn, window, event.lifetime)
            outbound = self._esp_sa(event.outbound, event.esn, 0, event.lifetime)
        except (ValueError, CryptoUnavailable) as exc:  # an algorithm or key it cannot take
            raise KernelError(f"CHILD_SA {event.child_id}: {exc}") from None
        now = self._clock()
        lt = event.lifetime
        flow = None
        if event.rekey_of is not None:
            old = self._children.get(event.rekey_of)
            if old is None:
                log.warning("CHILD_SA %d rekeys unknown %d: installed as a new flow",
                            event.child_id, event.rekey_of)
            else:
                flow = old.flow
        if flow is None:
            flow = self._flows.get(event.reqid) or self._new_flow(event)
        child = _Child(event.child_id, flow, inbound, outbound,
                       (str(event.local_addr), event.encap.local_port),
                       (str(event.remote_addr), event.encap.remote_port),
                       event.local_addr, event.remote_addr,
                       now + lt.soft_seconds if lt.soft_seconds else None,
                       now + lt.hard_seconds if lt.hard_seconds else None)
        for at in (child.soft_at, child.hard_at):
            if at is not None:
                heapq.heappush(self._deadlines, (at, event.child_id))
        flow.children.add(event.child_id)
        flow.sender = child  # RFC 7296 §2.8: the new SA sends from now on
        self._children[event.child_id] = child
        self._inbound[event.inbound.spi] = child
        self._reserved.discard(event.inbound.spi)
        if log.isEnabledFor(logging.INFO):  # one per CHILD SA: no text unless it is logged
            log.info("userspace CHILD_SA %d reqid %d SPIs %08x in %08x out%s", event.child_id,
                     event.reqid, event.inbound.spi, event.outbound.spi,
                     f" (rekeys {event.rekey_of})" if event.rekey_of is not None else "")

    @staticmethod
    def _esp_sa(keys, esn, window, lifetime):
        sa = _fast.esp.EspSA(keys.spi, keys.encr_id, keys.encr_key, keys.integ_id, keys.integ_key,
                             esn=esn, replay_window=window)
        sa.set_limits(lifetime.soft_bytes, lifetime.hard_bytes, lifetime.soft_packets,
                      lifetime.hard_packets)
        return sa

    def _new_flow(self, event: ChildSAInstall) -> _Flow:
        networks = []
        for ts in event.ts_remote:
            networks.extend(ts.networks())
        flow = _Flow(event.reqid, [_Selector.of(t) for t in event.ts_local],
                     [_Selector.of(t) for t in event.ts_remote], networks)
        prefsrc = {v: self._prefsrc_for(event.ts_local, v) for v in {n.version for n in networks}}
        added = []
        try:
            for net in networks:
                self.routes.add(net, prefsrc[net.version])
                added.append(net)
            if any(net.version == event.remote_addr.version and event.remote_addr in net
                   for net in networks):
                self.routes.add_throw(event.remote_addr)  # ESP to the peer stays outside
                flow.peer_throw = event.remote_addr
        except (NetlinkError, OSError) as exc:
            for net in added:
                self.routes.remove(net)
            raise KernelError(f"routes for reqid {event.reqid}: {exc}") from None
        self._flows[event.reqid] = flow
        for ts in event.ts_remote:
            if ts.start == ts.end:
                self._by_host.setdefault((ts.version, ts.start), []).append(flow)
            elif flow not in self._by_net:
                self._by_net.append(flow)
        return flow

    def _prefsrc_for(self, ts_local, version):
        """An address of ours inside the local selectors (see local_address_in), cached."""
        selectors = tuple(t for t in ts_local if t.version == version)
        if not selectors:
            return None
        now = self._clock()
        hit = self._prefsrc.get(selectors)
        if hit is not None and hit[0] > now:
            return hit[1]
        if len(self._prefsrc) >= 1024:
            self._prefsrc.clear()
        address = local_address_in(self._ipr, selectors)
        self._prefsrc[selectors] = (now + PREFSRC_TTL, address)
        return address

    def _drop_flow(self, flow: _Flow):
        self._flows.pop(flow.reqid, None)
        # the keys _new_flow filed it under (its one-host remote selectors), not a scan
        # of every flow: a concentrator drops flows all day among 100k others
        for key in {(sel.version, sel.lo) for sel in flow.remote if sel.lo == sel.hi}:
            flows = [f for f in self._by_host.get(key, ()) if f is not flow]
            if flows:
                self._by_host[key] = flows
            else:
                self._by_host.pop(key, None)
        if flow in self._by_net:
            self._by_net = [f for f in self._by_net if f is not flow]
        for net in flow.networks:
            self.routes.remove(net)
        if flow.peer_throw is not None:
            self.routes.remove(flow.peer_throw, "throw")

    def remove(self, event: ChildSARemove) -> None:
        child = self._children.pop(event.child_id, None)
        self._reserved.discard(event.inbound_spi)
        if child is None:
            return
        if self._inbound.get(event.inbound_spi) is child:
            del self._inbound[event.inbound_spi]
        flow = child.flow
        flow.children.discard(child.child_id)
        if flow.sender is child:
            flow.sender = None  # no SA sends for this flow until a new one is installed
        if event.remove_policies and not flow.children:
            self._drop_flow(flow)

    def update(self, event: ChildSAUpdate) -> None:
        """The peer's address or NAT port changed (RFC 7296 §2.23, RFC 4555)."""
        child = self._children.get(event.child_id)
        if child is None:
            raise KernelError(f"update of unknown CHILD_SA {event.child_id}")
        if event.encap is None:
            raise KernelError("the userspace data plane needs UDP encapsulation")
        child.local = (str(event.local_addr), event.encap.local_port)
        child.remote = (str(event.remote_addr), event.encap.remote_port)
        child.local_ip, child.remote_ip = event.local_addr, event.remote_addr

    def sa_counters(self) -> dict:
        return {child_id: {"bytes_in": c.inbound.byte_count, "bytes_out": c.outbound.byte_count,
                           "packets_in": c.inbound.packet_count,
                           "packets_out": c.outbound.packet_count}
                for child_id, c in self._children.items()}

    # -- the data plane --------------------------------------------------------------

    def fileno(self) -> int:
        return self.tun.fileno()

    def _flow_for(self, version, src, dst, proto, sport, dport):
        for flow in self._by_host.get((version, dst), ()):
            if flow.allows(version, src, dst, proto, sport, dport):
                return flow
        for flow in self._by_net:
            if flow.allows(version, src, dst, proto, sport, dport):
                return flow
        return None

    def handle_tun_readable(self) -> int:
        """Protect and send what the TUN device holds (up to `batch` packets)."""
        packet_flow = _fast.esp.packet_flow
        stats = self.stats
        sent = 0
        for packet in self.tun.read_batch(self.batch):
            try:
                version, src, dst, proto, sport, dport, _ = packet_flow(packet)
            except EspError:
                stats["drop_malformed"] += 1
                continue
            flow = self._flow_for(version, src, dst, proto, sport, dport)
            if flow is None or flow.sender is None:
                stats["drop_no_policy"] += 1  # RFC 4301 §5.1: no SPD entry, DISCARD
                continue
            child = flow.sender
            try:
                esp = child.outbound.encap(packet, _NH_FOR_VERSION[version])
            except EspError:
                stats["drop_expired"] += 1
                self._collect(child)
                continue
            self._send(esp, child.local, child.remote)
            stats["tx_packets"] += 1
            stats["tx_bytes"] += len(packet)
            sent += 1
            if child.outbound.state:
                self._collect(child)
        return sent

    def handle_esp(self, packet: bytes, local_addr=None, remote_addr=None) -> bool:
        """One ESP packet from the 4500 socket (RFC 4303 §3.4). True when it was
        delivered to the TUN device; every failure is counted and dropped."""
        stats = self.stats
        if len(packet) < 8:
            stats["drop_malformed"] += 1
            return False
        child = self._inbound.get(int.from_bytes(packet[:4], "big"))
        if child is None:
            stats["drop_no_sa"] += 1  # RFC 4303 §3.4.2: no SA, discard (and audit)
            return False
        sa = child.inbound
        try:
            next_header, inner = sa.decap(bytes(packet))
        except ReplayError:
            stats["drop_replay"] += 1
            return False
        except IntegrityError:
            stats["drop_integrity"] += 1
            return False
        except EspError:
            stats["drop_expired" if sa.state == 2 else "drop_malformed"] += 1
            self._collect(child)
            return False
        if sa.state:
            self._collect(child)
        self._active.add(sa.spi)  # authenticated: the peer is alive, whatever comes next
        if next_header == NH_NONE:
            return False  # RFC 4303 §2.6: a dummy packet, discarded silently
        try:
            version, src, dst, proto, sport, dport, length = _fast.esp.packet_flow(inner)
        except EspError:
            stats["drop_malformed"] += 1
            return False
        if _NH_FOR_VERSION[version] != next_header:
            stats["drop_malformed"] += 1
            return False
        # RFC 4301 §5.2 step 4: the packet must be one this SA's selectors allow
        if not child.flow.allows(version, dst, src, proto, dport, sport):
            stats["drop_selector"] += 1
            return False
        if length < len(inner):
            inner = inner[:length]  # TFC padding (RFC 4303 §2.7)
        if not self.tun.write(inner):
            stats["drop_tun_full"] += 1
            return False
        stats["rx_packets"] += 1
        stats["rx_bytes"] += length
        return True

    # -- expiry ----------------------------------------------------------------------

    def _collect(self, child: _Child):
        for sa, dst in ((child.inbound, child.local_ip), (child.outbound, child.remote_ip)):
            state = sa.take_expire()
            if state:
                self._notices.append(KernelExpire(protocol=ProtocolId.ESP, spi=sa.spi, dst=dst,
                                                  hard=state == 2))

    def notices(self) -> list:
        out, self._notices = self._notices, []
        if self._active:
            now = self._clock()
            if now >= self._activity_due:
                out.append(KernelActivity(frozenset(self._active)))
                self._active = set()
                self._activity_due = now + ACTIVITY_PERIOD
        return out

    def _due(self, child_id, at) -> bool:
        child = self._children.get(child_id)
        return child is not None and at in (child.soft_at, child.hard_at)

    def get_timer(self) -> float | None:
        # the daemon asks after every datagram: the heap keeps that O(1), not O(SAs)
        deadlines = self._deadlines
        while deadlines and not self._due(deadlines[0][1], deadlines[0][0]):
            heapq.heappop(deadlines)
        return deadlines[0][0] if deadlines else None

    def handle_timer(self, now: float) -> None:
        due = {}
        while self._deadlines and self._deadlines[0][0] <= now:
            at, child_id = heapq.heappop(self._deadlines)
            if self._due(child_id, at):
                due[child_id] = self._children[child_id]
        for child in due.values():
            for attr, hard in (("hard_at", True), ("soft_at", False)):
                at = getattr(child, attr)
                if at is not None and at <= now:
                    setattr(child, attr, None)
                    if hard:
                        child.soft_at = None
                    child.inbound.expire(hard)
                    child.outbound.expire(hard)
                    self._collect(child)
                    break

    # -- stop ------------------------------------------------------------------------

    def add_address(self, address, prefixlen: int | None = None) -> None:
        """Put an address on the TUN device (a virtual IP from a CFG reply)."""
        address = ipaddress.ip_address(address)
        plen = prefixlen if prefixlen is not None else address.max_prefixlen
        self._ipr.addr("add", index=self.tun.index, address=str(address), prefixlen=plen)

    def close(self) -> None:
        try:
            for flow in list(self._flows.values()):
                self._drop_flow(flow)
            self.routes.close()
        finally:
            self.tun.close()
            if self._own_ipr:
                self._ipr.close()
