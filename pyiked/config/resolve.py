"""Names in iked.conf: interface names first, then DNS (parse.y host(): host_if, host_dns).

Used for host names in `from`/`to` (resolved when the file is read, as iked does) and by
the PolicyStore for `peer NAME` / `local NAME` (resolved when a store is built).
"""

from __future__ import annotations

import ipaddress
import logging
import socket

log = logging.getLogger("pyiked.config")


def interface_addresses(name: str) -> list | None:
    """The addresses of interface `name`, or None when no such interface exists."""
    try:
        index = socket.if_nametoindex(name)
    except OSError:
        return None
    try:
        from pyroute2 import IPRoute
    except ImportError:  # pragma: no cover - pyroute2 is a dependency
        return []
    addresses = []
    try:
        with IPRoute() as ipr:
            for msg in ipr.get_addr(index=index):
                value = msg.get_attr("IFA_ADDRESS")
                if value:
                    address = ipaddress.ip_address(value)
                    # parse.y skips link-local IPv6 addresses: they need a scope.
                    if not (address.version == 6 and address.is_link_local):
                        addresses.append(address)
    except OSError as exc:
        log.warning("cannot list the addresses of %s: %s", name, exc)
    return addresses


def resolve_name(name: str) -> list:
    """Addresses for an interface or host name; [] when there are none."""
    found = interface_addresses(name)
    if found is not None:
        return found
    try:
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_DGRAM)
    except (OSError, UnicodeError):
        return []
    out = []
    for family, _type, _proto, _canon, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            address = ipaddress.ip_address(sockaddr[0].split("%")[0])
            if address not in out:
                out.append(address)
    return out
