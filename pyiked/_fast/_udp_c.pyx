# cython: language_level=3
"""Batched UDP I/O, compiled twin of _udp_py.py (same API, see its docstring).

One recvmmsg(2) reads up to `batch` datagrams with their IP_PKTINFO / IPV6_PKTINFO, one
sendmmsg(2) sends a whole batch, each with its own source address in a PKTINFO control
message. The buffers live as long as the Receiver; nothing is allocated per datagram
but the Python objects handed back.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING
from libc.errno cimport errno, EAGAIN, EINTR
from libc.stdlib cimport malloc, free
from libc.string cimport memset, memcpy
from libc.stdint cimport uint8_t, uint16_t, uint32_t

import socket as _socket

try:  # the cookie check on raw bytes (the compiled one, as this module is)
    from pyiked._fast._dispatch_c import cookie_gate as _cookie_gate
except ImportError:
    from pyiked._fast._dispatch_py import cookie_gate as _cookie_gate

cdef extern from "<sys/uio.h>":
    struct iovec:
        void *iov_base
        size_t iov_len

cdef extern from "<sys/socket.h>":
    ctypedef unsigned int socklen_t
    ctypedef unsigned short sa_family_t
    struct sockaddr_storage:
        sa_family_t ss_family
    struct msghdr:
        void *msg_name
        socklen_t msg_namelen
        iovec *msg_iov
        size_t msg_iovlen
        void *msg_control
        size_t msg_controllen
        int msg_flags
    struct mmsghdr:
        msghdr msg_hdr
        unsigned int msg_len
    struct cmsghdr:
        size_t cmsg_len
        int cmsg_level
        int cmsg_type
    cmsghdr *CMSG_FIRSTHDR(msghdr *msg)
    cmsghdr *CMSG_NXTHDR(msghdr *msg, cmsghdr *cmsg)
    unsigned char *CMSG_DATA(cmsghdr *cmsg)
    size_t CMSG_SPACE(size_t length)
    size_t CMSG_LEN(size_t length)
    int recvmmsg(int fd, mmsghdr *vec, unsigned int vlen, int flags, void *timeout) nogil
    int sendmmsg(int fd, mmsghdr *vec, unsigned int vlen, int flags) nogil
    int AF_INET
    int AF_INET6
    int MSG_DONTWAIT
    int MSG_TRUNC

cdef extern from "<netinet/in.h>":
    int IPPROTO_IP
    int IPPROTO_IPV6
    int IP_PKTINFO
    int IPV6_PKTINFO
    struct in_addr:
        uint32_t s_addr
    struct in6_addr:
        uint8_t s6_addr[16]
    struct sockaddr_in:
        sa_family_t sin_family
        uint16_t sin_port
        in_addr sin_addr
    struct sockaddr_in6:
        sa_family_t sin6_family
        uint16_t sin6_port
        uint32_t sin6_flowinfo
        in6_addr sin6_addr
        uint32_t sin6_scope_id
    struct in_pktinfo:
        int ipi_ifindex
        in_addr ipi_spec_dst
        in_addr ipi_addr
    struct in6_pktinfo:
        in6_addr ipi6_addr
        unsigned int ipi6_ifindex
    uint16_t htons(uint16_t)
    uint16_t ntohs(uint16_t)

cdef extern from "<arpa/inet.h>":
    const char *inet_ntop(int af, const void *src, char *dst, socklen_t size)
    int inet_pton(int af, const char *src, void *dst)

cdef enum:
    CONTROL_LEN = 64  # room for one in6_pktinfo (or in_pktinfo) control message
    CACHE_MAX = 256


cdef class Receiver:
    cdef int fd
    cdef int family
    cdef readonly object sock
    cdef readonly int batch
    cdef readonly Py_ssize_t bufsize
    cdef readonly object port
    cdef public long truncated
    cdef public long answered
    cdef public long junk
    cdef char *buffers
    cdef char *controls
    cdef mmsghdr *msgs
    cdef iovec *iovs
    cdef sockaddr_storage *names
    cdef dict _local

    def __cinit__(self, sock, int batch=64, Py_ssize_t bufsize=65535, port=None):
        if batch < 1 or bufsize < 1:
            raise ValueError("batch and bufsize must be positive")
        self.sock = sock
        self.port = port
        self.fd = sock.fileno()
        self.family = sock.family
        self.batch = batch
        self.bufsize = bufsize
        self.truncated = 0
        self.answered = 0
        self.junk = 0
        self._local = {}
        self.buffers = <char *>malloc(<size_t>batch * bufsize)
        self.controls = <char *>malloc(<size_t>batch * CONTROL_LEN)
        self.msgs = <mmsghdr *>malloc(batch * sizeof(mmsghdr))
        self.iovs = <iovec *>malloc(batch * sizeof(iovec))
        self.names = <sockaddr_storage *>malloc(batch * sizeof(sockaddr_storage))
        if not (self.buffers and self.controls and self.msgs and self.iovs and self.names):
            raise MemoryError()

    def __dealloc__(self):
        free(self.buffers)
        free(self.controls)
        free(self.msgs)
        free(self.iovs)
        free(self.names)

    cdef void _arm(self):
        cdef int i
        memset(self.msgs, 0, self.batch * sizeof(mmsghdr))
        for i in range(self.batch):
            self.iovs[i].iov_base = self.buffers + <size_t>i * self.bufsize
            self.iovs[i].iov_len = self.bufsize
            self.msgs[i].msg_hdr.msg_name = &self.names[i]
            self.msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage)
            self.msgs[i].msg_hdr.msg_iov = &self.iovs[i]
            self.msgs[i].msg_hdr.msg_iovlen = 1
            self.msgs[i].msg_hdr.msg_control = self.controls + i * CONTROL_LEN
            self.msgs[i].msg_hdr.msg_controllen = CONTROL_LEN

    def recv(self, gate=None):
        cdef int n, i, off
        cdef list out = []
        cdef list replies = []
        cdef msghdr *hdr
        cdef const unsigned char *p
        cdef unsigned int length
        cdef int version = 0, prev_version = 0, ike_port = 0
        cdef bytes secret = b"", prev_secret = b"", data
        if gate is not None:
            version, secret, prev_version, prev_secret, ike_port = gate
        self._arm()
        with nogil:
            n = recvmmsg(self.fd, self.msgs, self.batch, MSG_DONTWAIT, NULL)
        if n <= 0:
            return out  # EAGAIN (nothing queued), EINTR, or an ICMP error: try next time
        for i in range(n):
            hdr = &self.msgs[i].msg_hdr
            if hdr.msg_flags & MSG_TRUNC:
                self.truncated += 1
                continue
            remote = _address(<const sockaddr_storage *>hdr.msg_name)
            if remote is None:
                continue
            p = <const unsigned char *>self.iovs[i].iov_base
            length = self.msgs[i].msg_len
            data = PyBytes_FromStringAndSize(<char *>p, length)
            local = self._local_ip(hdr)
            if gate is not None:
                off = _init_request(p, length, self.port == ike_port)
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
            send_batch(self.sock, replies)
        return out

    cdef object _local_ip(self, msghdr *hdr):
        cdef cmsghdr *c = CMSG_FIRSTHDR(hdr)
        cdef in_pktinfo *p4
        cdef in6_pktinfo *p6
        cdef bytes key
        while c != NULL:
            if c.cmsg_level == IPPROTO_IP and c.cmsg_type == IP_PKTINFO:
                p4 = <in_pktinfo *>CMSG_DATA(c)
                key = PyBytes_FromStringAndSize(<char *>&p4.ipi_addr, 4)
                return self._cached(key, AF_INET)
            if c.cmsg_level == IPPROTO_IPV6 and c.cmsg_type == IPV6_PKTINFO:
                p6 = <in6_pktinfo *>CMSG_DATA(c)
                key = PyBytes_FromStringAndSize(<char *>&p6.ipi6_addr, 16)
                return self._cached(key, AF_INET6)
            c = CMSG_NXTHDR(hdr, c)
        local = self.sock.getsockname()[0]
        return local if self.port is None else (local, self.port)

    cdef object _cached(self, bytes key, int af):
        local = self._local.get(key)
        if local is None:
            local = _socket.inet_ntop(af, key)
            if self.port is not None:
                local = (local, self.port)
            if len(self._local) < CACHE_MAX:
                self._local[key] = local
        return local


cdef int _init_request(const unsigned char *p, unsigned int n, bint ike_port):
    """Offset of an IKE_SA_INIT request with SPIr zero (the cookie gate's business) in the
    datagram, or -1 (RFC 3948 §2.2: behind the non-ESP marker off the IKE port)."""
    cdef int off = 0
    cdef int k
    if not ike_port:
        if n < 4 or p[0] or p[1] or p[2] or p[3]:
            return -1
        off = 4
    if n < <unsigned int>(off + 28) or p[off + 18] != 34 or p[off + 19] & 0x20:
        return -1
    for k in range(8):
        if p[off + 8 + k]:
            return -1
    return off


cdef object _address(const sockaddr_storage *sa):
    cdef char text[64]
    cdef const sockaddr_in *a4
    cdef const sockaddr_in6 *a6
    if sa.ss_family == AF_INET:
        a4 = <const sockaddr_in *>sa
        if inet_ntop(AF_INET, &a4.sin_addr, text, sizeof(text)) == NULL:
            return None
        return (text.decode("ascii"), ntohs(a4.sin_port))
    if sa.ss_family == AF_INET6:
        a6 = <const sockaddr_in6 *>sa
        if inet_ntop(AF_INET6, &a6.sin6_addr, text, sizeof(text)) == NULL:
            return None
        return (text.decode("ascii"), ntohs(a6.sin6_port))
    return None


cdef dict _PACKED = {}  # (family, address text) -> packed address, or b"" for "any"


cdef bytes _packed(int family, str ip):
    cdef unsigned char buf[16]
    cdef bytes text
    key = (family, ip)
    found = _PACKED.get(key)
    if found is not None:
        return found
    if ip in ("0.0.0.0", "::"):
        found = b""
    elif inet_pton(family, (text := ip.encode("ascii")), buf) == 1:
        found = PyBytes_FromStringAndSize(<char *>buf, 4 if family == AF_INET else 16)
    else:
        raise ValueError(f"not an IPv{4 if family == AF_INET else 6} address: {ip!r}")
    if len(_PACKED) < CACHE_MAX:
        _PACKED[key] = found
    return found


def send_batch(sock, items):
    """Send (data, local_ip, remote_addr) datagrams with sendmmsg; returns how many went."""
    cdef int fd = sock.fileno()
    cdef int family = sock.family
    cdef Py_ssize_t count = len(items), i, j, start = 0, filled
    cdef int n, sent = 0
    cdef mmsghdr *msgs
    cdef iovec *iovs
    cdef sockaddr_storage *names
    cdef char *controls
    cdef cmsghdr *c
    cdef in_pktinfo *p4
    cdef in6_pktinfo *p6
    cdef sockaddr_in *a4
    cdef sockaddr_in6 *a6
    cdef bytes data, local, remote_text
    cdef list keep
    if count == 0:
        return 0
    msgs = <mmsghdr *>malloc(count * sizeof(mmsghdr))
    iovs = <iovec *>malloc(count * sizeof(iovec))
    names = <sockaddr_storage *>malloc(count * sizeof(sockaddr_storage))
    controls = <char *>malloc(count * CONTROL_LEN)
    if not (msgs and iovs and names and controls):
        free(msgs); free(iovs); free(names); free(controls)
        raise MemoryError()
    keep = []  # the bytes objects the iovecs point into stay alive until sendmmsg returns
    try:
        memset(msgs, 0, count * sizeof(mmsghdr))
        memset(names, 0, count * sizeof(sockaddr_storage))
        memset(controls, 0, count * CONTROL_LEN)
        filled = 0
        for i in range(count):
            try:
                payload, local_ip, remote = items[i]
                data = bytes(payload)
                local = _packed(family, local_ip)
                remote_ip, port = remote
                if not 0 <= port <= 65535:
                    raise ValueError("port out of range")
                j = filled
                if family == AF_INET:
                    a4 = <sockaddr_in *>&names[j]
                    a4.sin_family = AF_INET
                    a4.sin_port = htons(port)
                    remote_text = remote_ip.encode("ascii")
                    if inet_pton(AF_INET, remote_text, &a4.sin_addr) != 1:
                        raise ValueError("bad IPv4 address")
                    msgs[j].msg_hdr.msg_namelen = sizeof(sockaddr_in)
                else:
                    a6 = <sockaddr_in6 *>&names[j]
                    a6.sin6_family = AF_INET6
                    a6.sin6_port = htons(port)
                    remote_text = remote_ip.encode("ascii")
                    if inet_pton(AF_INET6, remote_text, &a6.sin6_addr) != 1:
                        raise ValueError("bad IPv6 address")
                    msgs[j].msg_hdr.msg_namelen = sizeof(sockaddr_in6)
            except (ValueError, TypeError, UnicodeError, OverflowError):
                continue  # the pure twin skips such a datagram too
            keep.append(data)
            iovs[j].iov_base = PyBytes_AS_STRING(data)
            iovs[j].iov_len = len(data)
            msgs[j].msg_hdr.msg_name = &names[j]
            msgs[j].msg_hdr.msg_iov = &iovs[j]
            msgs[j].msg_hdr.msg_iovlen = 1
            if len(local):
                msgs[j].msg_hdr.msg_control = controls + j * CONTROL_LEN
                if family == AF_INET:
                    msgs[j].msg_hdr.msg_controllen = CMSG_SPACE(sizeof(in_pktinfo))
                    c = CMSG_FIRSTHDR(&msgs[j].msg_hdr)
                    c.cmsg_level = IPPROTO_IP
                    c.cmsg_type = IP_PKTINFO
                    c.cmsg_len = CMSG_LEN(sizeof(in_pktinfo))
                    p4 = <in_pktinfo *>CMSG_DATA(c)
                    memcpy(&p4.ipi_spec_dst, PyBytes_AS_STRING(local), 4)
                else:
                    msgs[j].msg_hdr.msg_controllen = CMSG_SPACE(sizeof(in6_pktinfo))
                    c = CMSG_FIRSTHDR(&msgs[j].msg_hdr)
                    c.cmsg_level = IPPROTO_IPV6
                    c.cmsg_type = IPV6_PKTINFO
                    c.cmsg_len = CMSG_LEN(sizeof(in6_pktinfo))
                    p6 = <in6_pktinfo *>CMSG_DATA(c)
                    memcpy(&p6.ipi6_addr, PyBytes_AS_STRING(local), 16)
            filled += 1
        while start < filled:
            with nogil:
                n = sendmmsg(fd, msgs + start, <unsigned int>(filled - start), MSG_DONTWAIT)
            if n > 0:
                sent += n
                start += n
            elif errno == EINTR:
                continue
            elif errno == EAGAIN:  # (EWOULDBLOCK on Linux)
                break  # the socket buffer is full: the rest is dropped, as UDP would
            else:
                start += 1  # this datagram was refused (unreachable, ...): skip it
    finally:
        free(msgs)
        free(iovs)
        free(names)
        free(controls)
    return sent
