"""Hand-built CHILD_SA events for the kernel-backend tests (the engine makes these in real
life). Keys are fixed patterns, never secrets; `mirror` gives the peer's view."""

from __future__ import annotations

import ipaddress

from pyiked.core.events import ChildSAInstall, ChildSARemove, Encapsulation, Lifetime, SAKeys
from pyiked.core.iana import EncrId, IntegId, ProtocolId
from pyiked.core.ts import TS

# name: (encr id, key bits, encr key octets incl. salt/nonce, integ id, integ key octets)
SUITES = {
    "aes256gcm16": (EncrId.AES_GCM_16, 256, 36, 0, 0),
    "aes128gcm16": (EncrId.AES_GCM_16, 128, 20, 0, 0),
    "aes128gcm8": (EncrId.AES_GCM_8, 128, 20, 0, 0),
    "aes256gcm12": (EncrId.AES_GCM_12, 256, 36, 0, 0),
    "chacha20poly1305": (EncrId.CHACHA20_POLY1305, 0, 36, 0, 0),
    "aes128-sha256": (EncrId.AES_CBC, 128, 16, IntegId.HMAC_SHA2_256_128, 32),
    "aes256-sha384": (EncrId.AES_CBC, 256, 32, IntegId.HMAC_SHA2_384_192, 48),
    "aes256-sha512": (EncrId.AES_CBC, 256, 32, IntegId.HMAC_SHA2_512_256, 64),
    "aes128-sha1": (EncrId.AES_CBC, 128, 16, IntegId.HMAC_SHA1_96, 20),
    "aes128ctr-sha256": (EncrId.AES_CTR, 128, 20, IntegId.HMAC_SHA2_256_128, 32),
    "3des-sha1": (EncrId.TRIPLE_DES, 0, 24, IntegId.HMAC_SHA1_96, 20),
    "aes128-xcbc": (EncrId.AES_CBC, 128, 16, IntegId.AES_XCBC_96, 16),
    "aes128-cmac": (EncrId.AES_CBC, 128, 16, IntegId.AES_CMAC_96, 16),
}


def keys(suite: str, spi: int, seed: int) -> SAKeys:
    encr_id, bits, elen, integ_id, ilen = SUITES[suite]
    return SAKeys(spi=spi, encr_id=encr_id, encr_key_bits=bits, integ_id=integ_id,
                  encr_key=bytes((seed + i) & 0xFF for i in range(elen)),
                  integ_key=bytes((seed * 3 + i) & 0xFF for i in range(ilen)))


def install(suite="aes256gcm16", *, child_id=1, reqid=101, spi_in=0xC0000101, spi_out=0xC0000201,
            local="10.231.40.1", remote="10.231.40.2", ts_local=("10.231.41.0/24",),
            ts_remote=("10.231.42.0/24",), mode="tunnel", esn=False, replay_window=32,
            lifetime=Lifetime(), encap=None, rekey_of=None, seed_in=0x10, seed_out=0x80,
            protocol=ProtocolId.ESP) -> ChildSAInstall:
    as_ts = lambda nets: tuple(n if isinstance(n, TS) else TS.from_network(n) for n in nets)
    return ChildSAInstall(
        ike_sa=bytes(16), child_id=child_id, reqid=reqid, protocol=protocol, mode=mode,
        local_addr=ipaddress.ip_address(local), remote_addr=ipaddress.ip_address(remote),
        inbound=keys(suite, spi_in, seed_in), outbound=keys(suite, spi_out, seed_out),
        ts_local=as_ts(ts_local), ts_remote=as_ts(ts_remote), esn=esn, replay_window=replay_window,
        lifetime=lifetime, encap=encap, rekey_of=rekey_of)


def mirror(event: ChildSAInstall, **changes) -> ChildSAInstall:
    """The same CHILD_SA as the peer installs it: in and out, local and remote swapped."""
    encap = event.encap and Encapsulation(event.encap.remote_port, event.encap.local_port)
    fields = dict(
        ike_sa=event.ike_sa, child_id=event.child_id, reqid=event.reqid, protocol=event.protocol,
        mode=event.mode, local_addr=event.remote_addr, remote_addr=event.local_addr,
        inbound=event.outbound, outbound=event.inbound, ts_local=event.ts_remote,
        ts_remote=event.ts_local, esn=event.esn, replay_window=event.replay_window,
        lifetime=event.lifetime, encap=encap, rekey_of=event.rekey_of, initiator=not event.initiator)
    fields.update(changes)
    return ChildSAInstall(**fields)


def remove(event: ChildSAInstall, remove_policies=True) -> ChildSARemove:
    return ChildSARemove(
        ike_sa=event.ike_sa, child_id=event.child_id, reqid=event.reqid, protocol=event.protocol,
        local_addr=event.local_addr, remote_addr=event.remote_addr,
        inbound_spi=event.inbound.spi, outbound_spi=event.outbound.spi,
        ts_local=event.ts_local, ts_remote=event.ts_remote, remove_policies=remove_policies)
