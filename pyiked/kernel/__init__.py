"""pyiked.kernel: backends that carry out the engine's CHILD_SA events.

    backend = choose_backend(name, send=send_4500, **options)

name is "xfrm" (Linux XFRM, kernel ESP), "userspace" (ESP in this process over a TUN
device), "memory" (tests, benches) or None / "auto": xfrm when the kernel can hold ESP SAs
(`kernel_has_esp()`), else userspace, with a log line saying why. `send` is the daemon's
sender on the 4500 socket, which the userspace backend needs (see userspace.py); the
xfrm backend ignores it. Other keyword options go to the chosen backend's constructor.
"""

from __future__ import annotations

import logging

from .base import KernelBackend, KernelError

log = logging.getLogger("pyiked.kernel")

BACKENDS = ("xfrm", "userspace", "memory")


def kernel_has_esp() -> bool:
    """Whether this kernel can hold ESP SAs (see xfrm.kernel_has_esp)."""
    from .xfrm import kernel_has_esp as probe

    return probe()


def backend_class(name: str | None) -> type[KernelBackend]:
    """The backend class `name` means; "auto" (or None) probes the kernel: xfrm when it
    can hold ESP SAs, otherwise userspace. Its class attributes tell what it carries."""
    if name in (None, "", "auto"):
        name = "xfrm" if kernel_has_esp() else "userspace"
    if name == "xfrm":
        from .xfrm import XfrmBackend

        return XfrmBackend
    if name == "userspace":
        from .userspace import UserspaceBackend

        return UserspaceBackend
    if name == "memory":
        from .memory import MemoryBackend

        return MemoryBackend
    raise KernelError(f"unknown kernel backend {name!r} (one of {', '.join(BACKENDS)}, auto)")


def choose_backend(name: str | None, send=None, **options) -> KernelBackend:
    cls = backend_class(name)
    if cls.name == "userspace":
        if name in (None, "", "auto"):
            log.warning("the kernel cannot hold ESP SAs (no CONFIG_INET_ESP, or no XFRM "
                        "access): using the userspace ESP data plane over TUN, which forces "
                        "UDP encapsulation")
        if send is None:
            raise KernelError("the userspace backend needs the daemon's send() on the 4500 socket")
        return cls(send, **options)
    return cls(**options)


__all__ = ["BACKENDS", "KernelBackend", "KernelError", "backend_class", "choose_backend",
           "kernel_has_esp"]
