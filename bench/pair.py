"""What the handshake and memory benches share: the profiles, the configurations of both
sides, and two engines talking in memory.

Addresses (inside 10.231.0.0/16, as the interop harness uses them):
    responder   10.231.0.2, ID b.pk.test, protects 10.231.2.0/24
    generator   10.231.0.1 (and more source addresses if asked), one FQDN ID per IKE SA
                (c<k>.bench.test), CHILD SA selector: the host 10.231.128.0 + k (mod 2^15)

Every IKE SA of the generator has its own SPIs, its own identity and its own CHILD SA
selector, as thousands of road warriors would; the responder accepts any of them with the
one PSK (`peer any`, no dstid). A profile is the proposal and auth both sides use.

Certificate profiles use the test PKI (tests/data/pki, made with strongSwan's `pki`): the
responder is b-ec.pk.test (chained through int-ec to ca-ec), every generator SA
a-ec.pk.test (one certificate; the IKE SAs still differ in SPIs and selectors).
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
PKI = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "data", "pki")
# certificate profiles: (our certificate, its intermediates, the CA we trust), per side
CERTS = {"responder": ("b-ec", ("int-ec",), "ca-ec"), "generator": ("a-ec", (), "ca-ec")}


@dataclass(frozen=True)
class Profile:
    name: str
    ikesa: str  # iked.conf transform line
    childsa: str
    swan_ike: str  # the same proposal in strongSwan's words
    swan_esp: str
    auth: str  # "psk" or "ecdsa256"
    floor: str  # bench.crypto_floor suite of the same crypto

    @property
    def certificates(self) -> bool:
        return self.auth != "psk"

    @property
    def responder_id(self) -> str:
        return f"{CERTS['responder'][0]}.pk.test" if self.certificates else RESPONDER_ID

    def unsupported(self) -> str | None:
        """Why this profile cannot run here (None when it can)."""
        if not self.certificates:
            return None
        from pyiked.config.errors import ConfigError

        try:
            responder_config(self)
        except ConfigError as exc:
            return f"pyiked refuses `{self.auth}` authentication: {exc.describe().splitlines()[0]}"
        if not os.path.exists(os.path.join(PKI, "b-ec.crt")):
            return f"the test PKI is missing ({PKI})"
        return None

    def cert_store(self, side: str):
        """The engine's CertStore for `side` ("responder" or "generator"), or None."""
        if not self.certificates:
            return None
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        from pyiked.core.certs import CertStore

        own, intermediates, ca = CERTS[side]

        def cert(name):
            with open(os.path.join(PKI, f"{name}.crt"), "rb") as f:
                return x509.load_pem_x509_certificate(f.read())

        with open(os.path.join(PKI, f"{own}.key"), "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
        return CertStore([cert(ca)], [cert(i) for i in intermediates], [key], [cert(own)])


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
                "x25519-gcm-ecdsa"),
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
        f"    srcid {profile.responder_id} {_auth(profile)}",
        "",
    ])


def generator_conf(profile, peer_ip=RESPONDER_IP) -> str:
    """iked.conf of the generator's template policy (srcid and selectors change per SA)."""
    return "\n".join([
        f'ikev2 "gen" passive esp from {GENERATOR_NET} to {RESPONDER_NET} \\',
        f"    peer {peer_ip} \\",
        f"    ikesa {profile.ikesa} \\",
        f"    childsa {profile.childsa} \\",
        f"    srcid {_generator_id(profile, 0)} dstid {profile.responder_id} {_auth(profile)}",
        "",
    ])


def _generator_id(profile, k: int) -> str:
    return f"{CERTS['generator'][0]}.pk.test" if profile.certificates else f"c{k}.bench.test"


def responder_config(profile, local_ip=RESPONDER_IP):
    from pyiked.config.loader import parse_config_text

    return parse_config_text(responder_conf(profile, local_ip))[0]


def generator_config(profile, peer_ip=RESPONDER_IP):
    from pyiked.config.loader import parse_config_text

    return parse_config_text(generator_conf(profile, peer_ip))[0]


class Initiations:
    """The per-SA policy (own FQDN, for PSK) and CHILD SA selectors of the k-th IKE SA."""

    def __init__(self, config, per_sa_ids=True):
        from pyiked.config.model import Identity
        from pyiked.core.iana import IDType
        from pyiked.core.ts import TS

        self._identity, self._fqdn, self._ts = Identity, IDType.ID_FQDN, TS
        self.template = config.policies[0]
        self.remote_ts = [TS.from_network(ipaddress.ip_network(RESPONDER_NET))]
        self._base = int(ipaddress.ip_network(GENERATOR_NET).network_address)
        self.per_sa_ids = per_sa_ids

    def __call__(self, k: int):
        policy = self.template
        if self.per_sa_ids:
            name = f"c{k}.bench.test"
            policy = replace(policy, srcid=self._identity(self._fqdn, name.encode(), name))
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

        self.responder = Engine(PolicyStore(responder_config(profile)), force_udp_encap=True,
                                certs=profile.cert_store("responder"))
        self._new_initiator = lambda store=PolicyStore(generator_config(profile)), \
            certs=profile.cert_store("generator"): generator_engine(store, certs)
        self.initiator = self._new_initiator()
        self.initiations = Initiations(self.initiator.store.config, not profile.certificates)
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


def generator_engine(store, certs=None, **kw):
    """The initiator engine of the load generator. Its IKE SAs are concurrent sessions,
    not a restart: no INITIAL_CONTACT (RFC 7296 §2.4), which would make a responder drop
    the others of the same identity."""
    from pyiked.core.engine import Engine

    engine = Engine(store, certs=certs, **kw)
    engine.first_contact = lambda sa: False
    return engine


def rss_bytes() -> int:
    """Resident set size of this process (/proc/self/statm)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
