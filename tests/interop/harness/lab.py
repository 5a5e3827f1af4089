"""`Lab`: one interop test's topology and everything started in it, torn down together.

    lab = Lab(tmp_path, pki)            # namespaces up (the `lab` fixture does this)
    swan = lab.strongswan("a", conns=[...], secrets=[...])   # started and loaded
    iked = lab.pyiked("b", conf_text)   # started, UDP 500 bound
    cap = lab.capture("b")              # tshark running
    lab.close()                         # stops all in reverse order, namespaces deleted

and the two ready-made PSK scenarios (one call each):

    s = lab.swan_to_pyiked()   # strongSwan initiator in a -> pyiked responder in b
    s = lab.pyiked_to_swan()   # pyiked initiator in a -> strongSwan responder in b
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from . import scenarios
from .capture import Capture
from .pki import PKI
from .pyiked_runner import DAEMON_MODULE, Pyiked
from .strongswan import CommandResult, IkeSA, StrongSwan
from .topology import PingResult, Topology


@dataclass
class S2S:
    """A running site-to-site scenario: strongSwan and pyiked on the two nodes."""

    lab: Lab
    swan: StrongSwan
    iked: Pyiked
    initiator: str  # "swan" or "pyiked"
    ike: str = scenarios.CONN
    child: str = scenarios.CHILD

    @property
    def topo(self) -> Topology:
        return self.lab.topo

    def initiate(self, timeout: float = 15.0) -> CommandResult:
        """strongSwan initiates the CHILD_SA (swan_to_pyiked); the result has its log."""
        if self.initiator != "swan":
            raise RuntimeError("pyiked initiates in this scenario: use wait_up()")
        return self.swan.initiate(self.child, self.ike, timeout=timeout)

    def wait_up(self, timeout: float = 15.0) -> IkeSA:
        """Wait until strongSwan shows the IKE_SA ESTABLISHED with the child INSTALLED."""
        return self.swan.wait_sa(self.ike, self.child, timeout=timeout)

    def sa(self) -> IkeSA | None:
        """strongSwan's view of the scenario's IKE_SA (None when there is none)."""
        sas = self.swan.list_sas(self.ike)
        return sas[0] if sas else None

    def ping(self, count: int = 2, reverse: bool = False, **kw) -> PingResult:
        """Ping from a's inner address to b's (reverse: b's to a's), through the tunnel."""
        t = self.topo
        src, dst = ("b", "a") if reverse else ("a", "b")
        return t.ping(src, t.inner_addr(src), t.inner_addr(dst), count=count, **kw)


class Lab:
    """Topology + processes of one test, under `workdir`; `close()` undoes everything.

    topology_kw go to Topology (addresses, prefix, mtu). The PKI is optional (the
    session-scoped `pki` fixture); `lab.pki` raises if none was given.
    """

    def __init__(self, workdir: Path, pki: PKI | None = None, **topology_kw):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._pki = pki
        self._stack = ExitStack()
        self.topo = Topology(**topology_kw).up()
        self._stack.callback(self.topo.down)
        self.strongswans: dict[str, StrongSwan] = {}
        self.daemons: dict[str, Pyiked] = {}

    def __repr__(self):
        return f"<Lab {self.topo!r} in {self.dir}>"

    @property
    def pki(self) -> PKI:
        if self._pki is None:
            raise RuntimeError("this Lab has no PKI (use the `lab` fixture or pass one)")
        return self._pki

    def close(self) -> None:
        """Stop everything started here (newest first), then delete the namespaces."""
        self._stack.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ building blocks
    def strongswan(self, node: str, conns=(), secrets=(), pools=(), keys=(), certs=(),
                   cacerts=(), crls=(), via: str = "vici", start: bool = True,
                   **settings) -> StrongSwan:
        """A charon in `node`, started and loaded (settings: see StrongSwan)."""
        swan = StrongSwan(self.topo, node, self.dir, **settings)
        self._stack.callback(swan.stop)
        self.strongswans[swan.name] = swan
        if start:
            swan.start()
            if conns or secrets or pools or keys or certs or cacerts or crls:
                swan.load(conns, secrets, pools, keys, certs, cacerts, crls, via=via)
        return swan

    def pyiked(self, node: str, conf: str, start: bool = True, wait_port: int | None = 500,
               **kw) -> Pyiked:
        """pyiked in `node` with iked.conf text `conf`, started (kw: see Pyiked)."""
        iked = Pyiked(self.topo, node, self.dir, conf, **kw)
        self._stack.callback(iked.stop)
        self.daemons[iked.name] = iked
        if start:
            iked.start(wait_port=wait_port)
        return iked

    def capture(self, node: str, filter: str = "udp or esp", start: bool = True,
                **kw) -> Capture:
        """tshark on node's veth (kw: iface, name); call stop() before reading."""
        cap = Capture(self.topo, node, self.dir, filter=filter, **kw)
        self._stack.callback(cap.stop, drain=False)  # teardown: nobody reads it any more
        if start:
            cap.start()
        return cap

    # ------------------------------------------------------------------ scenarios
    def swan_to_pyiked(self, iked_conf: str | None = None, *, proposals=None,
                       esp_proposals=None, swan_kw=None, conn_kw=None, child_kw=None,
                       module: str = DAEMON_MODULE, **iked_kw) -> S2S:
        """strongSwan initiator in a, pyiked responder in b, the PSK s2s scenario.

        Both are started; pyiked has bound UDP 500; nothing is initiated yet (call
        `initiate()`). iked_conf defaults to scenarios.iked_s2s(topo, "b"); proposals /
        esp_proposals override strongSwan's (default: the GCM set); swan_kw go to
        StrongSwan (keylog, fragment_size, ...), conn_kw/child_kw to the strongSwan conn.
        """
        conn = scenarios.swan_conn(self.topo, "a", "initiator", proposals=proposals,
                                   esp_proposals=esp_proposals, child_kw=child_kw,
                                   **(conn_kw or {}))
        swan = self.strongswan("a", conns=[conn], secrets=[scenarios.psk_secret()],
                               **(swan_kw or {}))
        conf = iked_conf if iked_conf is not None else scenarios.iked_s2s(self.topo, "b")
        iked = self.pyiked("b", conf, module=module, **iked_kw)
        return S2S(self, swan, iked, "swan", conn.name, conn.children[0].name)

    def pyiked_to_swan(self, iked_conf: str | None = None, *, proposals=None,
                       esp_proposals=None, swan_kw=None, conn_kw=None, child_kw=None,
                       module: str = DAEMON_MODULE, **iked_kw) -> S2S:
        """pyiked initiator in a (an `active` policy), strongSwan responder in b.

        strongSwan is started and loaded first, then pyiked (which initiates on its
        own); `wait_up()` waits for strongSwan to show the SA. iked_conf defaults to
        scenarios.iked_s2s(topo, "a", active=True); strongSwan accepts GCM and CBC.
        """
        conn = scenarios.swan_conn(self.topo, "b", "responder", proposals=proposals,
                                   esp_proposals=esp_proposals, child_kw=child_kw,
                                   **(conn_kw or {}))
        swan = self.strongswan("b", conns=[conn], secrets=[scenarios.psk_secret()],
                               **(swan_kw or {}))
        conf = (iked_conf if iked_conf is not None
                else scenarios.iked_s2s(self.topo, "a", active=True))
        iked = self.pyiked("a", conf, module=module, **iked_kw)
        return S2S(self, swan, iked, "pyiked", conn.name, conn.children[0].name)
