"""UDP sockets for IKE (500) and NAT-T (4500), IPv4 and IPv6.

The engine needs to know which local address a datagram arrived on (for NAT detection
and to answer from the same address), and to send from a chosen source address. A
wildcard-bound socket gives both through IP_PKTINFO / IPV6_PKTINFO ancillary data.
"""

from __future__ import annotations

import logging
import socket

from pyiked._fast import udp

log = logging.getLogger("pyiked.daemon")

IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
RECV_BUFFER = 65535
BATCH = 64  # datagrams read per wake-up, so one busy socket cannot starve the rest


class UdpEndpoint:
    """One bound UDP socket that reports and chooses local addresses."""

    def __init__(self, family: int, port: int, address: str = "", rcvbuf: int = 4 << 20):
        self.family = family
        self.port = port
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:  # as root, past net.core.rmem_max: a flood's bursts must not crowd out peers
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
        except OSError:
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
        # one recvmmsg/sendmmsg per batch when compiled (pyiked._fast.udp): a flood of
        # spoofed requests answered with cookies costs few system calls per datagram
        self._receiver = udp.Receiver(self.sock, BATCH, RECV_BUFFER, self.port)

    def fileno(self) -> int:
        return self.sock.fileno()

    def receive_batch(self, guard=None, now: float = 0.0):
        """Up to BATCH (data, local_addr, remote_addr) without blocking.

        With the engine's guard (core/limits.py) in cookie mode, IKE_SA_INIT requests
        without a valid cookie are answered by the receiver itself (RFC 7296 §2.6) and not
        returned: a spoofed flood costs a system call share and a MAC per datagram.
        """
        rx = self._receiver
        gate = guard.fast_gate(now) if guard is not None else None
        if gate is None:
            return rx.recv()
        answered, junk = rx.answered, rx.junk
        out = rx.recv(gate)
        guard.fast_gated(rx.answered - answered, rx.junk - junk)
        return out

    def send(self, data: bytes, local_ip: str, remote_addr) -> None:
        # a full buffer or an unreachable peer must not stop the daemon; the engine
        # retransmits what matters
        if not udp.send_batch(self.sock, [(data, local_ip, remote_addr)]):
            log.debug("send to %s from %s failed", remote_addr, local_ip)

    def send_many(self, items) -> None:
        """Send [(data, local_ip, remote_addr)] at once (what one engine pump produced)."""
        sent = udp.send_batch(self.sock, items)
        if sent < len(items):
            log.debug("port %d: %d of %d datagrams not sent", self.port, len(items) - sent, len(items))

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
