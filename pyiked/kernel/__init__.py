"""Kernel backends: xfrm (Linux XFRM netlink), userspace (ESP over TUN), memory (tests)."""


def choose_backend(name=None):
    """The backend named on the command line or in the config (memory until the others land)."""
    from .memory import MemoryBackend

    if name in (None, "memory"):
        return MemoryBackend()
    raise ValueError(f"kernel backend {name!r} is not available")
