"""Raw-datagram classification, before any object is built.

classify(datagram, local_port) -> (kind, offset, spi_i, spi_r, exchange_type, flags, message_id)

kind:
  IKE (1)        an IKE message starts at datagram[offset:]; offset is 0 on port 500 and
                 4 behind the non-ESP marker elsewhere (RFC 3948 §2.2, RFC 7296 §2.23).
                 spi_i and spi_r are the 8-octet header SPIs, flags keeps only the
                 Initiator and Response bits, message_id is an int. A higher major
                 version is IKE too: wire.decode answers it with INVALID_MAJOR_VERSION.
  ESP (2)        ESP in UDP (RFC 3948 §2.1): spi_i is the 4-octet ESP SPI, offset 0.
  KEEPALIVE (3)  a NAT-keepalive, the single octet 0xFF (RFC 3948 §2.3).
  DROP_* (< 0)   junk, to be dropped without a reply; the value says why.
For anything but IKE the unused fields are b"" and 0. Drops reuse constant tuples and
never raise: every datagram gets a kind.

Port 500 carries IKE only, with no marker. Any other port (4500) is NAT-T framing: four
zero octets then IKE, a nonzero first four octets is ESP, 0xFF alone is a keepalive.

cookie_gate(datagram, offset, ip, version, secret, prev_version, prev_secret)
    -> None | bytes

The stateless cookie check of RFC 7296 §2.6 on the raw bytes of an IKE_SA_INIT request
that classify() called IKE (the IKE message starts at `offset`), before any object is
built. ip is the source address as bytes (any stable spelling); secret/prev_secret are
the current and previous secrets with their version octets (prev_version -1: none).

    Cookie = version | BLAKE2s-128(key=secret, Ni | SPIi | ip)      (17 octets)

  None          the first payload is N(COOKIE) with a cookie made by one of the two
                secrets for this Ni, SPIi and address: process the request.
  bytes         the IKE_SA_INIT response HDR(SPIi, 0), N(COOKIE) with a fresh cookie
                from the current secret, to send back (no marker added). A missing,
                stale or forged cookie gets one (§2.6: "ignore the cookie and process
                the message as if no cookie had been included").
  b""           junk without a usable nonce (no major version 2, a payload length that
                leaves the message, no Ni of 16..256 octets): drop it silently.
"""

from hashlib import blake2s
from hmac import compare_digest

IKE = 1
ESP = 2
KEEPALIVE = 3
DROP_SHORT = -1  # too short for what its first octets claim
DROP_LENGTH = -2  # IKE header Length differs from the datagram
DROP_VERSION = -3  # IKEv1 (or major version 0): not ours, no reply (RFC 7296 §2.5)
DROP_ZERO_SPI = -4  # an IKE header with SPI_i zero (RFC 7296 §3.1)

KIND_NAMES = {
    IKE: "IKE", ESP: "ESP", KEEPALIVE: "KEEPALIVE", DROP_SHORT: "DROP_SHORT",
    DROP_LENGTH: "DROP_LENGTH", DROP_VERSION: "DROP_VERSION", DROP_ZERO_SPI: "DROP_ZERO_SPI",
}

_IKE_PORT = 500
_HEADER_LEN = 28
_ESP_HEADER_LEN = 8  # SPI + Sequence Number (RFC 4303 §2)
_FLAG_MASK = 0x28  # Initiator | Response, as wire.decode keeps them

_KEEPALIVE = (KEEPALIVE, 0, b"", b"", 0, 0, 0)
_SHORT = (DROP_SHORT, 0, b"", b"", 0, 0, 0)
_LENGTH = (DROP_LENGTH, 0, b"", b"", 0, 0, 0)
_VERSION = (DROP_VERSION, 0, b"", b"", 0, 0, 0)
_ZERO_SPI = (DROP_ZERO_SPI, 0, b"", b"", 0, 0, 0)


def classify(datagram, local_port):
    """Classify one UDP payload received on local_port (see the module docstring)."""
    if type(datagram) is not bytes:
        datagram = bytes(memoryview(datagram))
    p = datagram
    n = len(datagram)
    if local_port == _IKE_PORT:
        return _read_header(datagram, 0, n)
    if n < 4:
        if n == 1 and p[0] == 0xFF:
            return _KEEPALIVE
        return _SHORT
    if p[0] | p[1] | p[2] | p[3]:
        if n < _ESP_HEADER_LEN:
            return _SHORT
        return (ESP, 0, p[0:4], b"", 0, 0, 0)
    return _read_header(datagram, 4, n)


def _read_header(data, off, n):
    """The IKE header at data[off:], checked against the datagram length."""
    p = data
    if n - off < _HEADER_LEN:
        return _SHORT
    major = p[off + 17] >> 4
    if major < 2:
        return _VERSION
    if major == 2:
        length = _u32(p, off + 24)
        if length != n - off:
            return _LENGTH
    if not (p[off] | p[off + 1] | p[off + 2] | p[off + 3]
            | p[off + 4] | p[off + 5] | p[off + 6] | p[off + 7]):
        return _ZERO_SPI
    return (
        IKE, off, p[off:off + 8], p[off + 8:off + 16], p[off + 18],
        p[off + 19] & _FLAG_MASK, _u32(p, off + 20),
    )


_COOKIE_MAC_LEN = 16
_COOKIE_LEN = 17
_PT_NOTIFY = 41
_PT_NONCE = 40
_COOKIE_TYPE = 16390  # NotifyType.COOKIE
# Response header after the SPIs: next payload N, version 2.0, IKE_SA_INIT, Response, ID 0,
# length 28 + 8 + 17; then the Notify header: last payload, length 25, no SPI, COOKIE.
_COOKIE_REPLY_HEAD = bytes((0,) * 8 + (41, 0x20, 34, 0x20, 0, 0, 0, 0, 0, 0, 0, 53))
_COOKIE_NOTIFY_HEAD = bytes((0, 0, 0, 25, 0, 0, 0x40, 0x06))


def cookie_gate(datagram, off, ip, version, secret, prev_version, prev_secret):
    """The stateless cookie check on a raw IKE_SA_INIT request (see the module docstring)."""
    if type(datagram) is not bytes:
        datagram = bytes(memoryview(datagram))
    p = datagram
    n = len(datagram)
    if off < 0 or n - off < _HEADER_LEN or p[off + 17] >> 4 != 2:
        return b""
    np = p[off + 16]
    pos = off + _HEADER_LEN
    first = True
    cookie_at = -1
    cookie_end = -1
    nonce_at = -1
    nonce_end = -1
    while np != 0:
        if n - pos < 4:
            return b""
        plen = (p[pos + 2] << 8) | p[pos + 3]
        if plen < 4 or plen > n - pos:
            return b""
        if first and np == _PT_NOTIFY and plen >= 8 and p[pos + 5] == 0 \
                and ((p[pos + 6] << 8) | p[pos + 7]) == _COOKIE_TYPE:
            cookie_at = pos + 8  # §2.6: the cookie is the first payload
            cookie_end = pos + plen
        elif np == _PT_NONCE and nonce_at < 0:
            nonce_at = pos + 4
            nonce_end = pos + plen
        first = False
        np = p[pos]
        pos += plen
    if nonce_at < 0 or not 16 <= nonce_end - nonce_at <= 256:
        return b""
    message = p[nonce_at:nonce_end] + p[off:off + 8] + ip
    if cookie_end - cookie_at == _COOKIE_LEN:
        v = p[cookie_at]
        key = secret if v == version else prev_secret if v == prev_version else b""
        if key:
            mac = _mac(key, message)
            if compare_digest(mac, p[cookie_at + 1:cookie_end]):
                return None
    mac = _mac(secret, message)
    return p[off:off + 8] + _COOKIE_REPLY_HEAD + _COOKIE_NOTIFY_HEAD + bytes((version,)) + mac


_KEYED = {}  # secret -> BLAKE2s state keyed with it (copied per cookie: no key setup)


def _mac(key, message):
    state = _KEYED.get(key)
    if state is None:
        if len(_KEYED) >= 4:  # the current and the previous secret are all that is in use
            _KEYED.clear()
        state = _KEYED[key] = blake2s(key=key, digest_size=_COOKIE_MAC_LEN)
    state = state.copy()
    state.update(message)
    return state.digest()


def _u32(p, o):
    v = p[o]
    return (v << 24) | (p[o + 1] << 16) | (p[o + 2] << 8) | p[o + 3]
