"""Values inside iked.conf statements: addresses, config payload values, hex keys, and
the file-permission check iked applies to files that hold secrets."""

from __future__ import annotations

import ipaddress
import os
import stat

from . import names


def secrecy_problem(path: str, st: os.stat_result | None = None) -> str | None:
    """What iked's check_file_secrecy objects to about a file holding secrets, or None."""
    st = st or os.stat(path)
    if st.st_uid not in (0, os.getuid()):
        return "owner not root or current user"
    if st.st_mode & (stat.S_IWGRP | stat.S_IXGRP | stat.S_IRWXO):
        return "group writable or world read/writable"
    return None


def reason(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not valid UTF-8"
    return getattr(exc, "strerror", None) or str(exc)


def looks_numeric(text: str) -> bool:
    """Digits and dots, or a colon: a malformed address, never a host name to look up."""
    host = text.partition("/")[0]
    return ":" in host or all(c.isdigit() or c == "." for c in host)


def hex_key(text: str) -> bytes | None:
    if len(text) % 2 or not all(c in "0123456789abcdefABCDEF" for c in text):
        return None
    return bytes.fromhex(text)


def parse_network(text: str):
    """An address (as a host network) or `address/prefix`; None if it is neither."""
    try:
        if "/" in text:
            return ipaddress.ip_network(text, strict=False)
        address = ipaddress.ip_address(text)
        return ipaddress.ip_network(address)
    except ValueError:
        return None


def parse_cfg_value(option: str, text: str):
    """The value of `config OPT ADDR`, or an error message (a str)."""
    ipv4, ipv6, network_ok = names.CFG_OPTIONS[option]
    if "/" in text:
        value = parse_network(text)
        if value is None or not network_ok:
            return f"{option} takes an address, not {text!r}"
    else:
        try:
            value = ipaddress.ip_address(text)
        except ValueError:
            return f"{option} takes an address, not {text!r}"
        if option == "protected-subnet":
            value = ipaddress.ip_network(value)
    if (value.version == 4 and not ipv4) or (value.version == 6 and not ipv6):
        return f"not a valid ikecfg option: {option} has no IPv{value.version} form"
    if option == "netmask":
        try:
            ipaddress.ip_network(f"0.0.0.0/{text}")
        except ValueError:
            return f"netmask {text!r} is not a contiguous IPv4 mask"
    return value


def default_resolver(name: str) -> list:
    """Addresses of a host or interface name (parse.y tries interfaces, then DNS)."""
    from .resolve import resolve_name

    return resolve_name(name)
