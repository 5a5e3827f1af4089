"""Admission control before any state: half-open limits, cookies, INVALID_IKE_SPI.

Every IKE_SA_INIT request passes `Guard.admit_init` on its raw bytes before the engine
decodes it. In order:

  1. hard caps: `halfopen_limit` half-open IKE SAs in all, `halfopen_limit_ip` from one
     address; beyond them the request is dropped without an answer (per-IP blocking);
  2. cookies (RFC 7296 §2.6): required from everyone in cookie mode (cookies.Cookies,
     `cookie_threshold` with hysteresis) and from an address that already holds
     `cookie_threshold_ip` half-open SAs. `pyiked._fast.dispatch.cookie_gate` checks
     the cookie and builds the COOKIE response on the raw datagram; a request without a
     usable nonce is junk and dropped.

Half-open means a responder IKE SA between our IKE_SA_INIT response and IKE_AUTH; it
lasts at most `halfopen_timeout`. All thresholds are iked.conf `set` options.

A request for an IKE SPI we do not know may get an unprotected INVALID_IKE_SPI
(§2.21.4, §1.5), never a response, and at most `set invalid_spi_rate` per second (a token
bucket), so the daemon cannot be made a reflector. Anything else unauthenticated that
does not fit is dropped silently.
"""

from __future__ import annotations

import logging

from pyiked._fast import dispatch

from .cookies import Cookies
from .iana import NON_ESP_MARKER, NotifyType

log = logging.getLogger("pyiked.engine")

_RESPONSE, _INITIATOR = 0x20, 0x08


class TokenBucket:
    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: float):
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = burst, None

    def take(self, now: float) -> bool:
        if self.stamp is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Guard:
    """The engine's gate for unauthenticated traffic, with the half-open bookkeeping."""

    __slots__ = ("engine", "stats", "cookies", "half_open", "by_ip", "limit", "limit_ip",
                 "cookie_threshold_ip", "invalid_spi")

    def __init__(self, engine, settings):
        self.engine = engine
        self.stats = engine.stats
        self.cookies = Cookies(engine.random, settings.cookie_threshold)
        self.half_open = 0
        self.by_ip: dict[str, int] = {}
        self.invalid_spi = TokenBucket(0.0, 0.0)
        self.configure(settings)

    def configure(self, settings) -> None:
        self.limit = settings.halfopen_limit
        self.limit_ip = settings.halfopen_limit_ip
        self.cookie_threshold_ip = settings.cookie_threshold_ip
        self.cookies.threshold = settings.cookie_threshold
        self.cookies.secret_lifetime = float(settings.cookie_secret_lifetime)
        self.cookies.hold = float(settings.cookie_hold)
        # `set invalid_spi_rate`: INVALID_IKE_SPI notifies per second, bursts of twice that
        rate = float(settings.invalid_spi_rate)
        bucket = self.invalid_spi
        bucket.rate, bucket.burst = rate, 2 * rate
        bucket.tokens = min(bucket.tokens, bucket.burst) if bucket.stamp is not None else bucket.burst

    # -- half-open bookkeeping (the engine calls these as responder SAs come and go) --------

    def opened(self, ip: str) -> None:
        self.half_open += 1
        self.by_ip[ip] = self.by_ip.get(ip, 0) + 1

    def closed(self, ip: str) -> None:
        self.half_open -= 1
        count = self.by_ip.get(ip, 0) - 1
        if count > 0:
            self.by_ip[ip] = count
        else:
            self.by_ip.pop(ip, None)

    # -- IKE_SA_INIT requests ----------------------------------------------------------------

    def admit_init(self, data: bytes, offset: int, local_addr, remote_addr, now: float) -> bool:
        """True: decode and process the request. False: it was answered or dropped."""
        ip = remote_addr[0]
        from_ip = self.by_ip.get(ip, 0)
        if self.half_open >= self.limit or from_ip >= self.limit_ip:
            self.stats["init_dropped_halfopen_limit"] += 1
            return False
        cookies = self.cookies
        if not (cookies.on and now < cookies.window_end) and not cookies.required(now, self.half_open) \
                and from_ip < self.cookie_threshold_ip:
            return True
        if now < cookies.rotate_at:
            version, secret, prev_version, prev_secret = cookies.current
        else:
            version, secret, prev_version, prev_secret = cookies.secrets(now)
        answer = dispatch.cookie_gate(data, offset, ip.encode(), version, secret, prev_version, prev_secret)
        if answer is None:
            self.stats["cookies_accepted"] += 1
            return True
        if answer:
            cookies.demand += 1  # a request without a valid cookie: the mode's evidence
            self.stats["cookies_sent"] += 1
            engine = self.engine
            if local_addr[1] != engine.ike_port:
                answer = NON_ESP_MARKER + answer
            engine._out.append((answer, local_addr, remote_addr))
        else:
            self.stats["init_dropped_malformed"] += 1
        return False

    @property
    def cookie_mode(self) -> bool:
        return self.cookies.on

    # -- the I/O layer's share of the cookie path ------------------------------------------

    def fast_gate(self, now: float):
        """While every IKE_SA_INIT needs a cookie (cookie mode), the parameters with which
        the socket layer (pyiked._fast.udp.Receiver.recv) answers requests without a valid
        cookie itself, so that a flood never reaches the engine; else None. Requests it
        lets through come to admit_init as usual."""
        if not self.cookies.required(now, self.half_open):
            return None
        return self.cookies.secrets(now) + (self.engine.ike_port,)

    def fast_gated(self, answered: int, junk: int) -> None:
        """What the socket layer did with a batch under fast_gate()."""
        if answered:
            self.cookies.demand += answered
            self.stats["cookies_sent"] += answered
        if junk:
            self.stats["init_dropped_malformed"] += junk

    # -- unknown IKE SPIs ----------------------------------------------------------------------

    def unknown_spi(self, data: bytes, offset: int, local_addr, remote_addr, now: float) -> None:
        """§2.21.4: a request for an IKE SA we do not have may get INVALID_IKE_SPI."""
        p = data
        if p[offset + 19] & _RESPONSE or p[offset + 17] >> 4 != 2:
            return  # never answer a response (§2.21); other versions are not ours
        if not self.invalid_spi.take(now):
            self.stats["invalid_ike_spi_suppressed"] += 1
            return
        self.stats["invalid_ike_spi_sent"] += 1
        header = p[offset:offset + 16] + bytes((
            41, 0x20, p[offset + 18], _RESPONSE | (0 if p[offset + 19] & _INITIATOR else _INITIATOR)))
        # §1.5: SPIs, exchange type and message ID copied from the request, Response set
        answer = header + p[offset + 20:offset + 24] + (36).to_bytes(4, "big") + \
            bytes((0, 0, 0, 8, 0, 0)) + NotifyType.INVALID_IKE_SPI.to_bytes(2, "big")
        engine = self.engine
        if local_addr[1] != engine.ike_port:
            answer = NON_ESP_MARKER + answer
        engine.send(answer, local_addr, remote_addr)
