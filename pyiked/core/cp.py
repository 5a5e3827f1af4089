"""The configuration payload (RFC 7296 §2.19, §3.15): virtual addresses for remote access.

Responder: a CP(CFG_REQUEST) in IKE_AUTH asks for an internal address (and DNS, ...). The
policy's `config` options answer it: `config address NET` leases from a pool,
`config address ADDR` gives that address, the other options (netmask, name-server,
netbios-server, dhcp-server, protected-subnet, access-server) are sent as configured.
A pool with nothing left is INTERNAL_ADDRESS_FAILURE (§3.10.1: no CHILD SA, the IKE SA
stays). The leased addresses narrow the CHILD SA's `to dynamic` selectors and go back to
the pool with the IKE SA; the engine reports both as AddressLease events.

Initiator: `request OPT ADDR|any` builds the CFG_REQUEST; the CFG_REPLY's addresses are
kept on the IKE SA (`virtual_ips`, `cp_reply`).
"""

from __future__ import annotations

import ipaddress
import logging

from pyiked._fast import wire

from .errors import InternalAddressFailure, InvalidSyntax
from .iana import CfgAttr, CfgType

log = logging.getLogger("pyiked.engine")

# `config`/`request` option -> (IPv4 attribute, IPv6 attribute); None: no such form
_ATTRS = {
    "address": (CfgAttr.INTERNAL_IP4_ADDRESS, CfgAttr.INTERNAL_IP6_ADDRESS),
    "netmask": (CfgAttr.INTERNAL_IP4_NETMASK, None),
    "name-server": (CfgAttr.INTERNAL_IP4_DNS, CfgAttr.INTERNAL_IP6_DNS),
    "netbios-server": (CfgAttr.INTERNAL_IP4_NBNS, None),
    "dhcp-server": (CfgAttr.INTERNAL_IP4_DHCP, CfgAttr.INTERNAL_IP6_DHCP),
    "protected-subnet": (CfgAttr.INTERNAL_IP4_SUBNET, CfgAttr.INTERNAL_IP6_SUBNET),
    "access-server": (CfgAttr.MS_ACCESS_SERVER_IP4, CfgAttr.MS_ACCESS_SERVER_IP6),
}
_ADDRESS_ATTRS = {CfgAttr.INTERNAL_IP4_ADDRESS: 4, CfgAttr.INTERNAL_IP6_ADDRESS: 6}
# §3.15.1: the lengths a non-empty value may have
_LENGTHS = {
    CfgAttr.INTERNAL_IP4_ADDRESS: 4,
    CfgAttr.INTERNAL_IP4_NETMASK: 4,
    CfgAttr.INTERNAL_IP4_DNS: 4,
    CfgAttr.INTERNAL_IP4_NBNS: 4,
    CfgAttr.INTERNAL_IP4_DHCP: 4,
    CfgAttr.INTERNAL_IP6_ADDRESS: 17,
    CfgAttr.INTERNAL_IP6_DNS: 16,
    CfgAttr.INTERNAL_IP6_DHCP: 16,
    CfgAttr.INTERNAL_IP4_SUBNET: 8,
    CfgAttr.INTERNAL_IP6_SUBNET: 17,
    CfgAttr.MS_ACCESS_SERVER_IP4: 4,
    CfgAttr.MS_ACCESS_SERVER_IP6: 16,
}


def _encode(attr: int, value) -> bytes:
    """The attribute value of a configured address or network."""
    if attr == CfgAttr.INTERNAL_IP4_SUBNET:
        net = ipaddress.ip_network(value)
        return net.network_address.packed + net.netmask.packed
    if attr == CfgAttr.INTERNAL_IP6_SUBNET:
        net = ipaddress.ip_network(value)
        return net.network_address.packed + bytes((net.prefixlen,))
    if attr == CfgAttr.INTERNAL_IP6_ADDRESS:
        return ipaddress.ip_address(value).packed + bytes((128,))
    if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        value = value.network_address
    return ipaddress.ip_address(value).packed


def decode_attribute(attr: int, value: bytes):
    """The typed value of a known attribute: an address, a network, or None when empty.
    InvalidSyntax for a length §3.15.1 does not allow."""
    if not value:
        return None
    want = _LENGTHS.get(attr)
    if want is None:
        return bytes(value)
    if len(value) != want:
        raise InvalidSyntax(f"configuration attribute {attr} of {len(value)} octets")
    if attr == CfgAttr.INTERNAL_IP4_SUBNET:
        try:
            return ipaddress.ip_network(
                f"{ipaddress.ip_address(value[:4])}/{ipaddress.ip_address(value[4:])}", strict=False
            )
        except ValueError:
            raise InvalidSyntax("INTERNAL_IP4_SUBNET with a non-contiguous mask") from None
    if attr in (CfgAttr.INTERNAL_IP6_ADDRESS, CfgAttr.INTERNAL_IP6_SUBNET):
        if value[16] > 128:
            raise InvalidSyntax("IPv6 prefix length above 128")
        if attr == CfgAttr.INTERNAL_IP6_ADDRESS:
            return ipaddress.IPv6Address(bytes(value[:16]))
        return ipaddress.ip_network(
            f"{ipaddress.IPv6Address(bytes(value[:16]))}/{value[16]}", strict=False
        )
    return ipaddress.ip_address(bytes(value))


# -- responder ------------------------------------------------------------------------------


def wants_address(request) -> set[int]:
    """The families (4, 6) a CFG_REQUEST asks an address for."""
    if request is None or request.cfg_type != CfgType.CFG_REQUEST:
        return set()
    return {_ADDRESS_ATTRS[a] for a, _ in request.attributes if a in _ADDRESS_ATTRS}


def respond(sa, policy, request, now):
    """The CFG_REPLY for a CFG_REQUEST (None when there is nothing to say), leasing the
    addresses it asked for. Raises InternalAddressFailure when a pool is exhausted."""
    if request is None or request.cfg_type != CfgType.CFG_REQUEST or not policy.config:
        return None
    families = wants_address(request)
    attributes = []
    for option in policy.config:
        if (
            option.option != "address"
            or option.value is None
            or option.value.version not in families
        ):
            continue
        address = lease(sa, policy, option.value, now)
        if address is None:
            release(sa, now)
            raise InternalAddressFailure(
                f"address pool {option.value} of policy {policy.name!r} is exhausted"
            )
        families.discard(option.value.version)  # one address per family
        attr = _ATTRS["address"][0 if address.version == 4 else 1]
        attributes.append((attr, _encode(attr, address)))
    for option in policy.config:
        if option.option == "address" or option.value is None:
            continue
        attr = _ATTRS[option.option][0 if option.value.version == 4 else 1]
        if attr is not None:
            attributes.append((attr, _encode(attr, option.value)))
    if families:
        log.info(
            "%r: peer asked for an IPv%s address the policy does not give",
            sa,
            "/".join(map(str, sorted(families))),
        )
    return wire.CP(CfgType.CFG_REPLY, attributes)


def lease(sa, policy, value, now):
    """Lease an address from the pool (or static address) `value` for this IKE SA."""
    engine = sa.engine
    pool = engine.pools.get(policy.name, value)
    identity = _identity_key(sa)

    def steal(holder):
        other = engine.sas.get(holder)
        if other is not None:
            _forget(other, pool, now)

    address = pool.acquire(
        sa.our_spi, identity, engine.random, engine.store.settings.stickyaddress, steal
    )
    if address is None:
        return None
    sa.leases = [*sa.leases, (pool, address)]
    sa.virtual_ips = [*sa.virtual_ips, address]
    engine.address_leased(sa, address, False)
    log.info("%r: leased %s to %s", sa, address, _identity_text(sa))
    return address


def _forget(other, pool, now):
    """An older SA of the same identity loses its sticky address to a newer one."""
    for entry in list(other.leases):
        if entry[0] is pool:
            other.leases.remove(entry)
            if entry[1] in other.virtual_ips:
                other.virtual_ips.remove(entry[1])
            other.engine.address_leased(other, entry[1], True)


def release(sa, now) -> None:
    """Give back every address of this IKE SA (it is going away)."""
    leases, sa.leases = sa.leases, ()
    for pool, address in leases:
        if pool.release(sa.our_spi, address):
            sa.engine.address_leased(sa, address, True)
    sa.virtual_ips = ()


def _identity_key(sa):
    if sa.eap_identity:
        return ("eap", sa.eap_identity)
    return (
        (sa.remote_id.id_type, sa.remote_id.data)
        if sa.remote_id is not None
        else ("spi", sa.our_spi)
    )


def _identity_text(sa) -> str:
    return sa.eap_identity or str(sa.remote_id)


def requires_address(policy) -> bool:
    """Whether the policy's remote side is `dynamic` (§2.19: only a leased address fills it)."""
    return any(f.dst_dynamic for f in policy.flows)


# -- initiator ------------------------------------------------------------------------------


def request_payload(policy):
    """CP(CFG_REQUEST) from the policy's `request` options; None without any."""
    if not policy.request:
        return None
    attributes = []
    for option in policy.request:
        value = option.value
        version = value.version if value is not None else 4  # `any`: the IPv4 form
        attr = _ATTRS[option.option][0 if version == 4 else 1]
        if attr is None:
            continue
        # §3.15.1: an empty value asks for one (`any`, or the unspecified address picks the
        # family); another value is a suggestion
        networks = (ipaddress.IPv4Network, ipaddress.IPv6Network)
        empty = value is None or (not isinstance(value, networks) and value.is_unspecified)
        attributes.append((attr, b"" if empty else _encode(attr, value)))
    return wire.CP(CfgType.CFG_REQUEST, attributes)


def handle_reply(sa, reply) -> None:
    """Keep what the responder assigned (§2.19); malformed attributes are InvalidSyntax."""
    if reply is None or reply.cfg_type != CfgType.CFG_REPLY:
        return
    values = {}
    for attr, raw in reply.attributes:
        value = decode_attribute(attr, raw)
        if value is None:
            continue
        values.setdefault(attr, []).append(value)
        if attr in _ADDRESS_ATTRS:
            sa.virtual_ips = [*sa.virtual_ips, value]
    sa.cp_reply = values
    if sa.virtual_ips:
        log.info("%r: assigned %s", sa, ", ".join(map(str, sa.virtual_ips)))


__all__ = [
    "decode_attribute",
    "handle_reply",
    "lease",
    "release",
    "request_payload",
    "requires_address",
    "respond",
    "wants_address",
]
