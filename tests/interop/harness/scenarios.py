"""The standard site-to-site PSK scenario, as strongSwan conns and as iked.conf text.

Node a (10.231.0.1, ID a.pk.test) protects 10.231.1.0/24, node b (10.231.0.2, ID
b.pk.test) protects 10.231.2.0/24; PSK "pk-test-psk-0123456789" (the same as
/work/shared/peers and the captures in tests/data/strongswan/). Builders take the
addresses from a Topology, so a test on other 10.231.x.y subnets gets matching configs.
"""

from __future__ import annotations

from .swanctl import Auth, Child, Conn, Secret
from .topology import Topology

PSK = "pk-test-psk-0123456789"
IDS = {"a": "a.pk.test", "b": "b.pk.test"}
CONN = "s2s"  # IKE conn / policy name on both sides
CHILD = "net"  # strongSwan's child name

# strongSwan proposals: the initiator offers GCM (like the peers recipe's conn gcm), a
# responder accepts GCM and CBC like the peers recipe's conn resp.
SWAN_INIT_PROPOSALS = ("aes256gcm16-prfsha256-x25519",)
SWAN_INIT_ESP = ("aes256gcm16",)
SWAN_RESP_PROPOSALS = ("aes256gcm16-prfsha256-x25519", "aes128-sha256-modp2048")
SWAN_RESP_ESP = ("aes256gcm16", "aes128-sha256")

# iked.conf transform lines matching the strongSwan proposals above
IKED_IKESA = (
    "enc aes-256-gcm prf hmac-sha2-256 group curve25519",
    "enc aes-128 auth hmac-sha2-256 prf hmac-sha2-256 group modp2048",
)
IKED_CHILDSA = (
    "enc aes-256-gcm",
    "enc aes-128 auth hmac-sha2-256",
)


def psk_secret() -> Secret:
    return Secret.psk(PSK, IDS["a"], IDS["b"], name="s2s")


def swan_conn(topo: Topology, node: str, role: str, *, name: str = CONN, child: str = CHILD,
              proposals=None, esp_proposals=None, child_kw=None, **conn_kw) -> Conn:
    """strongSwan's side of the scenario on `node`: PSK, IDs <node>.pk.test, TS from the
    topology's inner networks. conn_kw go to Conn (rekey_time, dpd_delay, ...), child_kw
    to Child (mode, rekey_time, ...)."""
    me, peer = topo.node(node), topo.peer(node)
    init = role == "initiator"
    if proposals is None:
        proposals = SWAN_INIT_PROPOSALS if init else SWAN_RESP_PROPOSALS
    if esp_proposals is None:
        esp_proposals = SWAN_INIT_ESP if init else SWAN_RESP_ESP
    return Conn(
        name,
        local_addrs=[topo.addr(me)],
        remote_addrs=[topo.addr(peer)],
        local=Auth.psk(IDS[me]),
        remote=Auth.psk(IDS[peer]),
        children=[Child(child, local_ts=[topo.inner_net(me)], remote_ts=[topo.inner_net(peer)],
                        esp_proposals=list(esp_proposals), **(child_kw or {}))],
        proposals=list(proposals),
        role=role,
        **conn_kw,
    )


def iked_s2s(topo: Topology | None = None, node: str = "b", *, active: bool = False,
             name: str = CONN, ikesa=IKED_IKESA, childsa=IKED_CHILDSA, psk: str = PSK,
             extra: str = "") -> str:
    """iked.conf for pyiked on `node` in the scenario (passive responder by default).

    Without a topology the default addresses are used. `extra` is appended to the
    policy (before the ids), e.g. "ikelifetime 30 lifetime 20".
    """
    topo = topo or _DEFAULT_TOPO
    me = topo.node(node)
    peer = "a" if me == "b" else "b"
    lines = [
        (f'ikev2 "{name}" {"active" if active else "passive"} esp '
         f"from {topo.inner_net(me)} to {topo.inner_net(peer)}"),
        f"local {topo.addr(me)} peer {topo.addr(peer)}",
        *(f"ikesa {t}" for t in ikesa),
        *(f"childsa {t}" for t in childsa),
    ]
    if extra:
        lines.append(extra)
    lines.append(f'srcid {IDS[me]} dstid {IDS[peer]} psk "{psk}"')
    return " \\\n    ".join(lines) + "\n"


class _Defaults:
    """The default Topology addresses, without creating namespaces (for the constants)."""

    def addr(self, node):
        return {"a": "10.231.0.1", "b": "10.231.0.2"}[node]

    def inner_net(self, node):
        return {"a": "10.231.1.0/24", "b": "10.231.2.0/24"}[node]

    def node(self, node):
        if node not in ("a", "b"):
            raise ValueError(f"unknown node {node!r}")
        return node


_DEFAULT_TOPO = _Defaults()

# pyiked as responder in b, strongSwan initiates from a (the lead's first interop test)
IKED_S2S_RESPONDER = iked_s2s(node="b", active=False)
# the mirror: pyiked in a initiates to strongSwan in b
IKED_S2S_INITIATOR = iked_s2s(node="a", active=True)
