"""The interface every kernel backend implements.

The daemon hands the engine's ChildSAInstall / ChildSARemove / ChildSAUpdate events to a
backend and feeds the backend's notices (KernelExpire, KernelAcquire) back to
`Engine.kernel_notice`. Backends: `xfrm` (Linux XFRM netlink), `userspace` (ESP over a
TUN device), `memory` (tests and benches).
"""

from __future__ import annotations

import abc
import os

from pyiked.core.events import ChildSAInstall, ChildSARemove, ChildSAUpdate


class KernelError(Exception):
    """The kernel refused an operation. The message names what is missing."""


class KernelBackend(abc.ABC):
    name = "abstract"
    #: True when the backend can only carry ESP in UDP (RFC 3948): the engine then forces
    #: UDP encapsulation by faking NAT detection, as strongSwan's kernel-libipsec does.
    requires_udp_encap = False
    #: Whether the backend can carry transport-mode SAs.
    supports_transport = True
    #: The ESP encryption / integrity transform IDs the backend can carry; None: all of
    #: them. The engine leaves the others out of CHILD SA negotiation.
    esp_encr = None
    esp_integ = None

    def allocate_spi(self, protocol: int, src, dst) -> int:
        """An unused inbound SPI (XFRM_MSG_ALLOCSPI for xfrm). Never 0..255 (RFC 4303 §2.1).

        The SA it is for runs from src (the peer) to dst (this host). The engine calls it
        synchronously and passes the SPI back in ChildSAInstall.inbound.spi.
        """
        while True:
            spi = int.from_bytes(os.urandom(4), "big")
            if spi > 255:
                return spi

    @abc.abstractmethod
    def install(self, event: ChildSAInstall) -> None:
        """Install both SAs and, unless event.rekey_of is set, the flow's policies."""

    @abc.abstractmethod
    def remove(self, event: ChildSARemove) -> None:
        """Remove both SAs and, when event.remove_policies, the flow's policies."""

    def update(self, event: ChildSAUpdate) -> None:
        """Follow a NAT-mapping change of the peer (RFC 7296 §2.23)."""

    def prepare_socket(self, sock, natt: bool) -> None:
        """Called for every IKE socket the daemon opens (natt: the 4500 socket)."""

    def notices(self) -> list:
        """KernelExpire / KernelAcquire notices gathered since the last call."""
        return []

    def get_timer(self) -> float | None:
        """When handle_timer() should run next (on the backend's clock), or None. The
        userspace data plane times SA lifetimes itself; XFRM leaves that to the kernel."""
        return None

    def handle_timer(self, now: float) -> None:
        """Run what is due at `now` (time lifetimes -> KernelExpire notices)."""

    def fileno(self) -> int | None:
        """A descriptor the daemon should watch for notices or data-plane traffic."""
        return None

    def sa_counters(self) -> dict:
        """Traffic of each installed CHILD SA, for `pyikectl show sa`: child_id ->
        {"bytes_in", "bytes_out", "packets_in", "packets_out"}. Empty when the backend
        keeps no counters (memory)."""
        return {}

    def close(self) -> None:
        """Remove what this backend installed (unless configured to leave it)."""
