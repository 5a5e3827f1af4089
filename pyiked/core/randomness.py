"""The engine's default randomness: OS random bytes read in chunks.

A responder handshake draws seven small random values (our SPI, the nonce, the NAT-D
decoy, the SK IV masks, the CHILD SA's SPI, the lifetime jitter); each os.urandom call
is a getrandom(2) system call. RandomPool reads CHUNK octets at a time and hands them
out in order: every byte once, never again. After fork() a child's pools start empty,
so parent and child never share bytes.

Key exchange private keys do not come from here: a source marked `from_os` lets the
crypto library generate them from its own OS-seeded generator (pyiked.core.ke), as
os.urandom does.
"""

from __future__ import annotations

import os
import weakref

CHUNK = 4096

_pools: weakref.WeakSet = weakref.WeakSet()


class RandomPool:
    """random(n) -> n fresh OS random octets (callable like os.urandom)."""

    __slots__ = ("_buf", "_pos", "__weakref__")
    from_os = True  # pyiked.core.ke: the library may generate keys itself

    def __init__(self):
        self._buf = b""
        self._pos = 0
        _pools.add(self)

    def __call__(self, n: int) -> bytes:
        pos = self._pos
        end = pos + n
        if end > len(self._buf):
            if n > CHUNK // 4:
                return os.urandom(n)  # large requests are rare: straight from the OS
            self._buf = os.urandom(CHUNK)
            pos, end = 0, n
        self._pos = end
        return self._buf[pos:end]

    def _forget(self) -> None:
        self._buf = b""
        self._pos = 0

    def __repr__(self):
        return "RandomPool()"

    def __reduce__(self):
        raise TypeError("RandomPool holds unused random octets and cannot be pickled")


def from_os(random) -> bool:
    """Whether `random` is the operating system's randomness (os.urandom or a pool of it)."""
    return random is os.urandom or getattr(random, "from_os", False) is True


def _after_fork() -> None:
    for pool in list(_pools):
        pool._forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
