"""A TUN device for the userspace ESP data plane, and the routes that send traffic into it.

    tun = TunDevice("pyiked%d", mtu=1400)     # IFF_TUN | IFF_NO_PI, non-blocking, up
    packets = tun.read_batch(64)               # whole IPv4/IPv6 packets
    tun.write(packet)
    routes = RouteTable(ipr, tun.index, table=220, priority=220)
    routes.add(network, prefsrc)               # refcounted: two flows may share a route
    routes.remove(network)

Routes live in their own table (220, as strongSwan's) reached by one `ip rule`, so a
remote traffic selector of 0.0.0.0/0 does not swallow the ESP datagrams to the peer
itself: the peer gets a `throw` route there, which sends its lookup back to the main table.
"""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import logging
import os
import socket
import struct

from pyroute2.netlink.exceptions import NetlinkError

log = logging.getLogger("pyiked.kernel")

class ThreadedIPRoute:
    """pyroute2's IPRoute with every call run in one worker thread that owns it.

    pyroute2 0.9's synchronous API drives its own asyncio loop, which cannot run inside
    the daemon's running loop. Route and address changes are rare (one per flow), so a
    blocking hand-off to a worker thread costs little.
    """

    def __init__(self):
        from concurrent.futures import ThreadPoolExecutor

        from pyroute2 import IPRoute

        self._pool = ThreadPoolExecutor(1, thread_name_prefix="pyiked-rtnl")
        self._ipr = self._pool.submit(IPRoute).result()

    def _call(self, name, args, kwargs):
        result = getattr(self._ipr, name)(*args, **kwargs)
        # results that iterate lazily must be drained where the socket lives
        return list(result) if hasattr(result, "__next__") else result

    def __getattr__(self, name):
        def call(*args, **kwargs):
            return self._pool.submit(self._call, name, args, kwargs).result()

        return call

    def close(self) -> None:
        try:
            self._pool.submit(self._ipr.close).result()
        finally:
            self._pool.shutdown(wait=True)


TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000  # no 4-octet packet info: the version nibble tells IPv4 from IPv6
RTN_UNICAST = 1
RTN_THROW = 9
MAX_PACKET = 65535


class TunDevice:
    def __init__(self, name: str = "pyiked%d", mtu: int = 1400, ipr=None):
        if len(name.encode()) > 15:
            raise ValueError("interface names have at most 15 characters")
        self.fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            ifr = struct.pack("16sH22x", name.encode(), IFF_TUN | IFF_NO_PI)
            answer = fcntl.ioctl(self.fd, TUNSETIFF, ifr)
            self.name = answer[:16].split(b"\0", 1)[0].decode()
            self.index = None
            if ipr is not None:
                self.index = ipr.link_lookup(ifname=self.name)[0]
                ipr.link("set", index=self.index, mtu=mtu, state="up")
        except BaseException:
            os.close(self.fd)
            raise
        self.mtu = mtu

    def fileno(self) -> int:
        return self.fd

    def read_batch(self, limit: int) -> list[bytes]:
        """Up to `limit` packets that are waiting; [] when none."""
        out = []
        for _ in range(limit):
            try:
                out.append(os.read(self.fd, MAX_PACKET))
            except BlockingIOError:
                break
        return out

    def write(self, packet: bytes) -> bool:
        """Hand one packet to the kernel; False when its queue is full (the packet is lost)."""
        try:
            os.write(self.fd, packet)
            return True
        except BlockingIOError:
            return False
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.EIO):  # not an IP packet the kernel takes
                return False
            raise

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)  # a non-persistent TUN device goes away with its last fd
            self.fd = -1


NETLINK_ROUTE = 0
RTM_NEWROUTE, RTM_DELROUTE = 24, 25
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_REPLACE, NLM_F_CREATE = 0x1, 0x4, 0x100, 0x400
RTA_DST, RTA_OIF, RTA_PREFSRC, RTA_TABLE = 1, 4, 7, 15
RTPROT_STATIC = 4
RT_SCOPE_UNIVERSE, RT_SCOPE_NOWHERE = 0, 255
RT_TABLE_COMPAT = 252
_NLMSGHDR = struct.Struct("=IHHII")
_RTMSG = struct.Struct("=BBBBBBBBI")


def _network(value):
    """value as an ip_network (ip_network() of a network object parses its text again)."""
    if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return value
    return ipaddress.ip_network(value)


def _rtattr(kind: int, data: bytes) -> bytes:
    size = 4 + len(data)
    return struct.pack("=HH", size, kind) + data + bytes(-size % 4)


class RouteSocket:
    """RTM_NEWROUTE / RTM_DELROUTE on a plain NETLINK_ROUTE socket, answered by an ACK.

    The userspace data plane adds a route for every new flow, so route changes sit on the
    handshake path: pyroute2 spends about half a millisecond of Python on each request
    (and a thread hand-off), one datagram here costs tens of microseconds. The requests
    are those of pyroute2's route("replace") / route("del") (and `ip route`): proto
    static, scope universe, unicast or throw; deletes match any scope and protocol.
    """

    def __init__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self._seq = 0

    def replace(self, network, table: int, oif: int | None = None, prefsrc=None,
                rtype: int = RTN_UNICAST) -> None:
        self._route(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, network, table, oif, prefsrc,
                    rtype, RTPROT_STATIC, RT_SCOPE_UNIVERSE)

    def delete(self, network, table: int, oif: int | None = None, rtype: int = 0) -> None:
        self._route(RTM_DELROUTE, 0, network, table, oif, None, rtype, 0, RT_SCOPE_NOWHERE)

    def _route(self, msg_type, flags, network, table, oif, prefsrc, rtype, proto, scope):
        network = _network(network)
        family = socket.AF_INET if network.version == 4 else socket.AF_INET6
        body = _RTMSG.pack(family, network.prefixlen, 0, 0, table if table < 256 else RT_TABLE_COMPAT,
                           proto, scope, rtype, 0)
        body += _rtattr(RTA_DST, network.network_address.packed) + _rtattr(RTA_TABLE, struct.pack("=I", table))
        if oif is not None:
            body += _rtattr(RTA_OIF, struct.pack("=I", oif))
        if prefsrc is not None:
            body += _rtattr(RTA_PREFSRC, ipaddress.ip_address(prefsrc).packed)
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        self.sock.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(body), msg_type,
                                      NLM_F_REQUEST | NLM_F_ACK | flags, self._seq, 0) + body)
        self._wait_ack(self._seq)

    def _wait_ack(self, seq: int) -> None:
        while True:
            data = self.sock.recv(65536)
            offset = 0
            while offset + _NLMSGHDR.size <= len(data):
                length, msg_type, _flags, msg_seq, _pid = _NLMSGHDR.unpack_from(data, offset)
                if length < _NLMSGHDR.size:
                    raise OSError(errno.EPROTO, "truncated netlink message")
                if msg_type == NLMSG_ERROR and msg_seq == seq:
                    code = -struct.unpack_from("=i", data, offset + _NLMSGHDR.size)[0]
                    if code:
                        raise NetlinkError(code, os.strerror(code))
                    return
                offset += (length + 3) & ~3

    def close(self) -> None:
        self.sock.close()


class RouteTable:
    """Routes to remote subnets through the TUN device, in a table of their own."""

    def __init__(self, ipr, oif: int, table: int = 220, priority: int = 220):
        self.ipr = ipr  # pyroute2 (through ThreadedIPRoute): the rules
        self.rtnl = RouteSocket()  # the routes, one per flow
        self.oif = oif
        self.table = table
        self.priority = priority
        self._routes: dict[tuple, int] = {}  # (network, kind) -> users
        self._rules = []
        if table not in (0, 254):
            for family in (2, 10):
                try:
                    self.ipr.rule("add", table=table, priority=priority, family=family)
                    self._rules.append(family)
                except (NetlinkError, OSError) as exc:  # EEXIST: another instance put it there
                    if getattr(exc, "code", None) != errno.EEXIST:
                        log.warning("routing rule for table %d (family %d): %s", table, family, exc)

    def _table_id(self) -> int:
        return 254 if self.table == 0 else self.table  # 0: the main table (RT_TABLE_MAIN)

    def add(self, network, prefsrc=None) -> None:
        network = _network(network)
        key = (network, "via-tun")
        if self._routes.get(key):
            self._routes[key] += 1
            return
        self.rtnl.replace(network, self._table_id(), self.oif, prefsrc)
        self._routes[key] = 1

    def add_throw(self, address) -> None:
        """Keep traffic to `address` (the peer) out of the tunnel (a `throw` route)."""
        if self.table in (0, 254):
            return  # main table: the more specific route to the peer already wins
        network = _network(address)
        key = (network, "throw")
        if self._routes.get(key):
            self._routes[key] += 1
            return
        self.rtnl.replace(network, self._table_id(), rtype=RTN_THROW)
        self._routes[key] = 1

    def remove(self, network, kind: str = "via-tun") -> None:
        network = _network(network)
        key = (network, kind)
        users = self._routes.get(key, 0)
        if users > 1:
            self._routes[key] = users - 1
            return
        self._routes.pop(key, None)
        if not users:
            return
        try:
            if kind == "throw":
                self.rtnl.delete(network, self._table_id(), rtype=RTN_THROW)
            else:
                self.rtnl.delete(network, self._table_id(), self.oif)
        except (NetlinkError, OSError) as exc:
            if getattr(exc, "code", None) not in (errno.ESRCH, errno.ENOENT, errno.ENODEV):
                log.warning("removing route %s: %s", network, exc)

    def close(self):
        for network, kind in list(self._routes):
            self._routes[(network, kind)] = 1
            self.remove(network, kind)
        for family in self._rules:
            try:
                self.ipr.rule("del", table=self.table, priority=self.priority, family=family)
            except (NetlinkError, OSError) as exc:
                log.debug("routing rule for table %d: %s", self.table, exc)
        self._rules = []
        self.rtnl.close()


def local_address_in(ipr, ts_list):
    """An address of this host inside one of the traffic selectors (the routes' source,
    so locally sent packets match the CHILD_SA), or None."""
    for msg in ipr.get_addr():
        addr = ipaddress.ip_address(msg.get_attr("IFA_ADDRESS") or msg.get_attr("IFA_LOCAL"))
        if addr.is_link_local:
            continue
        for ts in ts_list:
            if ts.version == addr.version and ts.start <= int(addr) <= ts.end:
                return addr
    return None
