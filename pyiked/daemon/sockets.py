"""UDP sockets for IKE (500) and NAT-T (4500), IPv4 and IPv6.

The engine needs to know which local address a datagram arrived on (for NAT detection
and to answer from the same address), and to send from a chosen source address. A
wildcard-bound socket gives both through IP_PKTINFO / IPV6_PKTINFO ancillary data.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import struct

log = logging.getLogger("pyiked.daemon")

IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)
RECV_BUFFER = 65535
BATCH = 64  # datagrams read per wake-up, so one busy socket cannot starve the rest


class UdpEndpoint:
    """One bound UDP socket that reports and chooses local addresses."""

    def __init__(self, family: int, port: int, address: str = "", rcvbuf: int = 4 << 20):
        self.family = family
        self.port = port
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        except OSError:
            pass
        if family == socket.AF_INET6:
            self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            self.sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
        else:
            self.sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        self.sock.bind((address, port))
        self.port = self.sock.getsockname()[1]
        self.sock.setblocking(False)
        self._cmsg_space = socket.CMSG_SPACE(64)
        self._sources: dict[str, list] = {}  # local IP -> ancillary data for sendmsg

    def fileno(self) -> int:
        return self.sock.fileno()

    def receive_batch(self):
        """Up to BATCH (data, local_addr, remote_addr) without blocking."""
        out = []
        for _ in range(BATCH):
            try:
                data, ancdata, _flags, remote = self.sock.recvmsg(RECV_BUFFER, self._cmsg_space)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # e.g. ICMP port unreachable reported on the socket
                log.debug("receive on port %d: %s", self.port, exc)
                continue
            local_ip = self._local_ip(ancdata)
            out.append((data, (local_ip, self.port), (_plain_ip(remote[0]), remote[1])))
        return out

    def _local_ip(self, ancdata) -> str:
        for level, ctype, cdata in ancdata:
            if level == socket.IPPROTO_IP and ctype == IP_PKTINFO and len(cdata) >= 12:
                return socket.inet_ntop(socket.AF_INET, cdata[8:12])
            if level == socket.IPPROTO_IPV6 and ctype == IPV6_PKTINFO and len(cdata) >= 16:
                return _plain_ip(socket.inet_ntop(socket.AF_INET6, cdata[:16]))
        return self.sock.getsockname()[0]

    def _source(self, local_ip: str) -> list:
        """The ancillary data choosing local_ip as the source (none for a wildcard)."""
        if local_ip in ("0.0.0.0", "::"):
            return []
        if self.family == socket.AF_INET6:
            info = struct.pack("16sI", ipaddress.IPv6Address(local_ip).packed, 0)
            return [(socket.IPPROTO_IPV6, IPV6_PKTINFO, info)]
        info = struct.pack("I4s4s", 0, ipaddress.IPv4Address(local_ip).packed, b"\0" * 4)
        return [(socket.IPPROTO_IP, IP_PKTINFO, info)]

    def send(self, data: bytes, local_ip: str, remote_addr) -> None:
        anc = self._sources.get(local_ip)
        if anc is None:  # a host has few addresses: build each one's once, not per datagram
            if len(self._sources) >= 256:
                self._sources.clear()
            anc = self._sources[local_ip] = self._source(local_ip)
        try:
            self.sock.sendmsg([data], anc, 0, remote_addr)
        except OSError as exc:
            # a full buffer or an unreachable peer must not stop the daemon; the engine
            # retransmits what matters
            log.debug("send to %s from %s: %s", remote_addr, local_ip, exc)

    def close(self) -> None:
        self.sock.close()


def _plain_ip(ip: str) -> str:
    return ip.split("%", 1)[0]


def source_address_for(remote_ip: str) -> str:
    """The local address the kernel routes to remote_ip from (no packet is sent)."""
    family = socket.AF_INET6 if ":" in remote_ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect((remote_ip, 9))
        return _plain_ip(probe.getsockname()[0])
