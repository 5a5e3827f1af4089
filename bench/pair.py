"""What the handshake and memory benches share: the profiles, the configurations of both
sides, and two engines talking in memory.

Addresses (inside 10.231.0.0/16, as the interop harness uses them):
    responder   10.231.0.2, ID b.pk.test, protects 10.231.2.0/24
    generator   10.231.0.1 (and more source addresses if asked), one FQDN ID per IKE SA
                (c<k>.bench.test), CHILD SA selector: the host 10.231.128.0 + k (mod 2^15)

Every IKE SA of the generator has its own SPIs, its own identity and its own CHILD SA
selector, as thousands of road warriors would; the responder accepts any of them with the
one PSK (`peer any`, no dstid). A profile is the proposal and auth both sides use.
"""

from __future__ import annotations

import ipaddress
import os
import time
from dataclasses import dataclass, replace

PSK = "pk-test-psk-0123456789"
RESPONDER_IP = "10.231.0.2"
GENERATOR_IP = "10.231.0.1"
RESPONDER_ID = "b.pk.test"
RESPONDER_NET = "10.231.2.0/24"
GENERATOR_NET = "10.231.128.0/17"  # one /32 per IKE SA
_HOSTS = 1 << 15


@dataclass(frozen=True)
class Profile:
    name: str
    ikesa: str  # iked.conf transform line
    childsa: str
    swan_ike: str  # the same proposal in strongSwan's words
    swan_esp: str
    auth: str  # "psk" or "ecdsa256"
    floor: str  # bench.crypto_floor suite of the same crypto

    def unsupported(self) -> str | None:
        """Why this profile cannot run yet (None when it can)."""
        if self.auth == "psk":
            return None
        from pyiked.config.errors import ConfigError

        try:
            responder_config(self)
        except ConfigError as exc:
            return f"pyiked refuses `{self.auth}` authentication: {exc.describe().splitlines()[0]}"
        return f"the bench does not provision certificates for `{self.auth}` yet"


PROFILES = {
    p.name: p
    for p in (
        Profile("psk-x25519-gcm", "enc aes-256-gcm prf hmac-sha2-256 group curve25519",
                "enc aes-256-gcm", "aes256gcm16-prfsha256-x25519", "aes256gcm16", "psk",
                "x25519-gcm"),
        Profile("psk-modp2048-cbc", "enc aes-128 auth hmac-sha2-256 prf hmac-sha2-256 group modp2048",
                "enc aes-128 auth hmac-sha2-256", "aes128-sha256-modp2048", "aes128-sha256", "psk",
                "modp2048-cbc"),
        Profile("ecdsa-p256-gcm", "enc aes-256-gcm prf hmac-sha2-256 group curve25519",
                "enc aes-256-gcm", "aes256gcm16-prfsha256-x25519", "aes256gcm16", "ecdsa256",
                "x25519-gcm"),
    )
}
HEADLINE = "psk-x25519-gcm"


# -- configurations ---------------------------------------------------------------------

def _auth(profile) -> str:
    return f'psk "{PSK}"' if profile.auth == "psk" else profile.auth


def responder_conf(profile, local_ip=RESPONDER_IP) -> str:
    """iked.conf of the pyiked responder: DoS thresholds out of the way (strongSwan runs
    with dos_protection off), any peer, any identity, one /32 per peer inside
    GENERATOR_NET."""
    return "\n".join([
        "set dpd_check_interval 0",  # idle SAs stay (the memory bench keeps them)
        "set cookie_threshold 10000000",
        "set cookie_threshold_ip 10000000",
        "set halfopen_limit 10000000",
        "set halfopen_limit_ip 10000000",
        f'ikev2 "bench" passive esp from {RESPONDER_NET} to {GENERATOR_NET} \\',
        f"    local {local_ip} peer any \\",
        f"    ikesa {profile.ikesa} \\",
        f"    childsa {profile.childsa} \\",
        f"    srcid {RESPONDER_ID} {_auth(profile)}",
        "",
    ])


def generator_conf(profile, peer_ip=RESPONDER_IP) -> str:
    """iked.conf of the generator's template policy (srcid and selectors change per SA)."""
    return "\n".join([
        f'ikev2 "gen" passive esp from {GENERATOR_NET} to {RESPONDER_NET} \\',
        f"    peer {peer_ip} \\",
        f"    ikesa {profile.ikesa} \\",
        f"    childsa {profile.childsa} \\",
        f"    srcid c0.bench.test dstid {RESPONDER_ID} {_auth(profile)}",
        "",
    ])


def responder_config(profile, local_ip=RESPONDER_IP):
    from pyiked.config.loader import parse_config_text

    return parse_config_text(responder_conf(profile, local_ip))[0]


def generator_config(profile, peer_ip=RESPONDER_IP):
    from pyiked.config.loader import parse_config_text

    return parse_config_text(generator_conf(profile, peer_ip))[0]


class Initiations:
    """The per-SA policy (own FQDN) and CHILD SA selectors of the k-th IKE SA."""

    def __init__(self, config):
        from pyiked.config.model import Identity
        from pyiked.core.iana import IDType
        from pyiked.core.ts import TS

        self._identity, self._fqdn, self._ts = Identity, IDType.ID_FQDN, TS
        self.template = config.policies[0]
        self.remote_ts = [TS.from_network(ipaddress.ip_network(RESPONDER_NET))]
        self._base = int(ipaddress.ip_network(GENERATOR_NET).network_address)

    def __call__(self, k: int):
        name = f"c{k}.bench.test"
        policy = replace(self.template, srcid=self._identity(self._fqdn, name.encode(), name))
        host = self._ts.host(ipaddress.IPv4Address(self._base + k % _HOSTS))
        return policy, ([host], self.remote_ts)


# -- two engines in memory -----------------------------------------------------------------

class Pair:
    """A pyiked responder and a pyiked initiator joined by a list: no sockets, no clock.

    The responder is set up as the daemon sets it up for the userspace backend (it makes
    the initiator encapsulate in UDP). `handshake(k)` runs IKE_SA_INIT and IKE_AUTH to the
    end and adds the responder's thread CPU time to `responder_cpu`. With forget=True the
    initiator drops its side of each SA at once, so that memory grows by the responder's
    state only.
    """

    def __init__(self, profile, sink=None, forget=False):
        from pyiked.config.store import PolicyStore
        from pyiked.core.engine import Engine

        self.responder = Engine(PolicyStore(responder_config(profile)), force_udp_encap=True)
        self._new_initiator = lambda store=PolicyStore(generator_config(profile)): Engine(store)
        self.initiator = self._new_initiator()
        self.initiations = Initiations(self.initiator.store.config)
        self.sink = sink  # callable(event) for the responder's events (a kernel backend)
        self.forget = forget
        self.responder_cpu = 0.0
        self.established = 0
        self._local = (GENERATOR_IP, 500)
        self._remote = (RESPONDER_IP, 500)

    def handshake(self, k: int, now: float = 0.0) -> bool:
        from pyiked.core.events import ChildSAInstall, IkeSAUp

        initiator, responder = self.initiator, self.responder
        policy, child_ts = self.initiations(k)
        sa_id = initiator.initiate(policy, now, self._local, self._remote, child_ts)
        clock = time.thread_time
        cpu = 0.0
        while True:
            out = initiator.datagrams_to_send()
            if not out:
                break
            for data, local, remote in out:
                start = clock()
                responder.receive_datagram(data, remote, local, now)
                cpu += clock() - start
            for data, local, remote in responder.datagrams_to_send():
                initiator.receive_datagram(data, remote, local, now)
        self.responder_cpu += cpu
        sink = self.sink
        while (event := responder.next_event()) is not None:
            if sink is not None:
                sink(event)
        up = False
        while (event := initiator.next_event()) is not None:
            if isinstance(event, (IkeSAUp, ChildSAInstall)):
                up = True
        if self.forget:
            sa = initiator.sas.get(sa_id[:8])  # the initiator's SAs are keyed by SPIi
            if sa is not None:
                initiator.destroy(sa, "bench", now)
            while initiator.next_event() is not None:
                pass
            if k % 500 == 499:  # what else it keeps per SA (stale timers, reqids) goes too
                self.initiator = self._new_initiator()
        self.established += up
        return up


def rss_bytes() -> int:
    """Resident set size of this process (/proc/self/statm)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
