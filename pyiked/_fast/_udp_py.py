"""Batched UDP I/O for the IKE sockets: the local address of each datagram in, a chosen
source address out (IP_PKTINFO / IPV6_PKTINFO on a wildcard-bound socket).

    rx = Receiver(sock, batch=64, bufsize=65535, port=None)
    rx.recv() -> [(data, local_ip, (remote_ip, remote_port)), ...]   # up to `batch`
                 (with port given, local_ip is the tuple (local_ip, port) instead)
    rx.recv(gate) -> the same, but IKE_SA_INIT requests without a valid cookie are answered
                 here and left out: gate = (version, secret, prev_version, prev_secret,
                 ike_port) of dispatch.cookie_gate, given while every request needs a
                 cookie (RFC 7296 §2.6); the flood never reaches the engine
    rx.truncated                       # datagrams dropped for not fitting in bufsize
    rx.answered, rx.junk               # gated requests answered with a COOKIE / dropped
    send_batch(sock, [(data, local_ip, (remote_ip, remote_port)), ...]) -> sent

The socket is non-blocking, bound, and has IP_PKTINFO (IPv4) or IPV6_RECVPKTINFO (IPv6)
set. recv() returns what is queued now, at most `batch`, and never blocks or raises for
a single bad datagram; local_ip is the text form of the address the datagram was sent to.
send_batch() sends each datagram from local_ip ("0.0.0.0"/"::": the kernel chooses) to
remote_addr; a datagram the kernel refuses (unreachable, a full buffer) is skipped, the
rest still go, and the count of those sent is returned.

This is the pure twin: one recvmsg/sendmsg per datagram. The compiled one, _udp_c.pyx,
moves the whole batch with one recvmmsg/sendmmsg (Linux), which is what keeps a flood of
spoofed IKE_SA_INIT requests cheap (bench/flood.py).
"""

import ipaddress
import socket
import struct

from pyiked._fast._dispatch_py import cookie_gate as _cookie_gate

IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)
_CACHE_MAX = 256  # local addresses: a host has few
_MSG_TRUNC = int(socket.MSG_TRUNC)  # a plain int: IntFlag arithmetic per datagram is slow


def _plain(ip):
    return ip.split("%", 1)[0]


class Receiver:
    """Reads up to `batch` datagrams per recv() from a non-blocking UDP socket."""

    def __init__(self, sock, batch=64, bufsize=65535, port=None):
        self.sock = sock
        self.port = port
        self.batch = batch
        self.bufsize = bufsize
        self.family = sock.family
        self.truncated = 0
        self.answered = 0
        self.junk = 0
        self._space = socket.CMSG_SPACE(64)
        self._local = {}  # pktinfo bytes -> local address text

    def recv(self, gate=None):
        out = []
        replies = []
        sock = self.sock
        for _ in range(self.batch):
            try:
                data, ancdata, flags, remote = sock.recvmsg(self.bufsize, self._space)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # e.g. an ICMP error reported on the socket: next datagram
                continue
            if flags & _MSG_TRUNC:
                self.truncated += 1
                continue
            local, remote = self._local_ip(ancdata), (_plain(remote[0]), remote[1])
            if gate is not None:
                version, secret, prev_version, prev_secret, ike_port = gate
                off = _init_request(data, self.port == ike_port)
                if off >= 0:
                    answer = _cookie_gate(data, off, remote[0].encode("ascii"), version, secret,
                                          prev_version, prev_secret)
                    if answer is not None:
                        if answer:
                            self.answered += 1
                            replies.append((b"\0\0\0\0" + answer if off else answer,
                                            local[0] if type(local) is tuple else local, remote))
                        else:
                            self.junk += 1
                        continue
            out.append((data, local, remote))
        if replies:
            send_batch(sock, replies)
        return out

    def _local_ip(self, ancdata):
        for level, ctype, cdata in ancdata:
            local = self._local.get(cdata)
            if local is not None:
                return local
            if level == socket.IPPROTO_IP and ctype == IP_PKTINFO and len(cdata) >= 12:
                local = socket.inet_ntop(socket.AF_INET, cdata[8:12])
            elif level == socket.IPPROTO_IPV6 and ctype == IPV6_PKTINFO and len(cdata) >= 16:
                local = _plain(socket.inet_ntop(socket.AF_INET6, cdata[:16]))
            else:
                continue
            if self.port is not None:
                local = (local, self.port)
            if len(self._local) < _CACHE_MAX:
                self._local[cdata] = local
            return local
        local = self.sock.getsockname()[0]
        return local if self.port is None else (local, self.port)


def _init_request(p, ike_port):
    """Offset of an IKE_SA_INIT request with SPIr zero in the datagram, or -1."""
    off = 0
    if not ike_port:
        if len(p) < 4 or p[:4] != b"\0\0\0\0":
            return -1
        off = 4
    if len(p) < off + 28 or p[off + 18] != 34 or p[off + 19] & 0x20 or any(p[off + 8:off + 16]):
        return -1
    return off


_ANCILLARY = {}  # (family, local address) -> sendmsg ancillary data


def _ancillary(family, local_ip):
    key = (family, local_ip)
    anc = _ANCILLARY.get(key)
    if anc is None:
        if local_ip in ("0.0.0.0", "::"):
            anc = []
        elif family == socket.AF_INET6:
            info = struct.pack("16sI", ipaddress.IPv6Address(local_ip).packed, 0)
            anc = [(socket.IPPROTO_IPV6, IPV6_PKTINFO, info)]
        else:
            info = struct.pack("I4s4s", 0, ipaddress.IPv4Address(local_ip).packed, b"\0" * 4)
            anc = [(socket.IPPROTO_IP, IP_PKTINFO, info)]
        if len(_ANCILLARY) < _CACHE_MAX:
            _ANCILLARY[key] = anc
    return anc


def send_batch(sock, items):
    """Send (data, local_ip, remote_addr) datagrams; returns how many went out."""
    sent = 0
    family = sock.family
    for data, local_ip, remote in items:
        try:
            sock.sendmsg([data], _ancillary(family, local_ip), 0, remote)
        except (OSError, ValueError, OverflowError, TypeError):
            continue  # unreachable, a full buffer, a bad address or port
        sent += 1
    return sent
