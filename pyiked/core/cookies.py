"""Stateless cookies (RFC 7296 §2.6): when to ask for them, and the secrets behind them.

    Cookie = <VersionIDofSecret> | BLAKE2s-128(key=<secret>, Ni | SPIi | IPi)

A keyed BLAKE2s is a MAC, so the cookie is the RFC's `Hash(Ni | IPi | SPIi | <secret>)`
with the secret as the key; KEi is deliberately not covered, so a cookie stays valid
across an INVALID_KE_PAYLOAD retry (§2.6.1, the shorter exchange). The check and the
COOKIE response are built on the raw datagram by `pyiked._fast.dispatch.cookie_gate`,
before any object or state exists; this module only holds the secrets and the mode.

Secrets: 32 random octets, replaced every SECRET_LIFETIME seconds; the previous one is
still accepted, so a cookie handed out just before a change works for one more period.
The version octet tells the two apart (§2.6: "<VersionIDofSecret> should be changed
whenever <secret> is regenerated").

Mode, with hysteresis: cookies are required from everyone once the half-open IKE SAs
reach `cookie_threshold`. They stay required until, at the end of a HOLD-second window,
both the half-open count and the number of requests that came without a valid cookie
during that window are below half the threshold: a flood that goes on keeps the mode on,
even after its half-open SAs timed out, and the mode does not flap at the threshold.
"""

from __future__ import annotations

import logging

log = logging.getLogger("pyiked.engine")

SECRET_LEN = 32
SECRET_LIFETIME = 60.0  # seconds a secret makes cookies (`set cookie_secret_lifetime`)
HOLD = 10.0  # seconds of a demand window, the hysteresis (`set cookie_hold`)


class Cookies:
    __slots__ = ("random", "threshold", "version", "secret", "prev_version", "prev_secret",
                 "rotate_at", "on", "window_end", "demand", "last_demand", "engaged", "current",
                 "secret_lifetime", "hold")

    def __init__(self, random, threshold: int):
        self.random = random
        self.threshold = threshold
        self.version = 0
        self.secret = random(SECRET_LEN)
        self.prev_version = -1  # none yet: no version octet matches
        self.prev_secret = b""
        self.rotate_at = 0.0  # set with the first cookie
        self.on = threshold <= 0
        self.window_end = 0.0
        self.demand = 0  # requests without a valid cookie in the current window (Guard counts)
        self.last_demand = 0
        self.engaged = 0  # how often the mode went on (stats, tests)
        self.current = (self.version, self.secret, self.prev_version, self.prev_secret)
        self.secret_lifetime = SECRET_LIFETIME
        self.hold = HOLD

    def secrets(self, now: float):
        """(version, secret, previous version, previous secret), rotating when due."""
        if not self.rotate_at:
            self.rotate_at = now + self.secret_lifetime
        elif now >= self.rotate_at:
            self.rotate(now)
        return self.current

    def rotate(self, now: float) -> None:
        self.prev_version, self.prev_secret = self.version, self.secret
        self.version = (self.version + 1) & 0xFF
        self.secret = self.random(SECRET_LEN)
        self.rotate_at = now + self.secret_lifetime
        self.current = (self.version, self.secret, self.prev_version, self.prev_secret)
        log.debug("cookie secret rotated (version %d)", self.version)

    def required(self, now: float, half_open: int) -> bool:
        """Whether every IKE_SA_INIT needs a cookie now (global mode)."""
        if self.on:
            if now < self.window_end or self.threshold <= 0:
                return True
            # the window just ended; if a whole one passed since, no request came at all
            self.last_demand = self.demand if now < self.window_end + self.hold else 0
            self.demand = 0
            self.window_end = now + self.hold
            low = self.threshold / 2
            if half_open < low and self.last_demand < low:
                self.on = False
                log.info("cookie mode off (%d half-open)", half_open)
            else:
                log.info("cookie mode: %d requests without a cookie in %.0f s, %d half-open",
                         self.last_demand, self.hold, half_open)
            return self.on
        if half_open >= self.threshold:
            self.on = True
            self.engaged += 1
            self.demand = 0
            self.window_end = now + self.hold
            log.warning("cookie mode on: %d half-open IKE SAs (threshold %d)", half_open, self.threshold)
        return self.on
