"""Checks that no SA leaked: the engines' tables and the event streams agree.

After a scenario settles, every engine must hold only live IKE SAs (ESTABLISHED), the two
ends must mirror each other SPI for SPI, every ChildSAInstall must be matched by either a
live CHILD SA or a ChildSARemove, and the kernel policies a backend would hold (one set
per flow, installed with the first SA of a reqid, removed with remove_policies=True)
must be exactly the flows of the live CHILD SAs.
"""

from __future__ import annotations

from collections import Counter

from pyiked.core.engine import spis_of
from pyiked.core.events import ChildSAInstall, ChildSARemove, IkeSADown, IkeSARekeyed, IkeSAUp
from pyiked.core.ike_sa import State

from .simnet import A_IP, B_IP


class KernelModel:
    """What a kernel backend holds after replaying the events: SAs and flow policies."""

    def __init__(self):
        self.sas: dict[int, ChildSAInstall] = {}
        self.policies: Counter = Counter()  # reqid -> policy sets installed (must stay 0/1)
        self.errors: list[str] = []

    def replay(self, events):
        for e in events:
            if isinstance(e, ChildSAInstall):
                if e.child_id in self.sas:
                    self.errors.append(f"child {e.child_id} installed twice")
                if e.rekey_of is None:
                    if self.policies[e.reqid]:
                        self.errors.append(f"policies of reqid {e.reqid} installed twice")
                    self.policies[e.reqid] += 1
                elif not self.policies[e.reqid]:
                    self.errors.append(f"rekey of child {e.rekey_of} installed without its flow")
                self.sas[e.child_id] = e
            elif isinstance(e, ChildSARemove):
                if self.sas.pop(e.child_id, None) is None:
                    self.errors.append(f"child {e.child_id} removed but not installed")
                if e.remove_policies:
                    self.policies[e.reqid] -= 1
                    if any(s.reqid == e.reqid for s in self.sas.values()):
                        self.errors.append(f"policies of reqid {e.reqid} removed under a live SA")
        return self


def live(engine):
    return [sa for sa in engine.ike_sas() if sa.state == State.ESTABLISHED]


def assert_consistent(net, ike_sas=1, children=None):
    """Both ends settled: `ike_sas` IKE SAs each (all ESTABLISHED) mirroring each other, and
    (if given) `children` CHILD SAs on each IKE SA, with balanced events."""
    a, b = net.engines[A_IP], net.engines[B_IP]
    for ip, engine in ((A_IP, a), (B_IP, b)):
        sas = engine.ike_sas()
        assert all(sa.state == State.ESTABLISHED for sa in sas), (ip, sas)
        assert len(sas) == ike_sas, (ip, sas)
        kernel = KernelModel().replay(net.events[ip])
        assert not kernel.errors, (ip, kernel.errors)
        live_children = {c.child_id: c for sa in sas for c in sa.children.values()}
        assert set(kernel.sas) == set(live_children), (ip, sorted(kernel.sas), sorted(live_children))
        assert {r for r, n in kernel.policies.items() if n} == {c.reqid for c in live_children.values()}
        assert all(n in (0, 1) for n in kernel.policies.values())
        # the engine's indexes hold exactly the live SAs
        assert set(engine.children_by_spi) == {c.spi_in for c in live_children.values()}
        assert all(engine.children_by_spi[c.spi_in] is c and c.ike_sa in sas for c in live_children.values())
        assert {spi for found in engine.by_peer_ip.values() for spi in spis_of(found)} == {sa.our_spi for sa in sas}
        assert {spi for found in engine.by_identity.values() for spi in spis_of(found)} == {sa.our_spi for sa in sas}
        assert not engine.half_open and engine.guard.half_open == 0 and not engine.guard.by_ip
        assert engine.stats["timer_not_advanced"] == 0
        assert engine.stats["internal_errors"] == 0
        ups, downs = len(net.of_type(ip, IkeSAUp)), len(net.of_type(ip, IkeSADown))
        assert ups - downs == len(sas), (ip, ups, downs, sas)
    ids_a = sorted(sa.ike_sa_id for sa in a.ike_sas())
    assert ids_a == sorted(sa.ike_sa_id for sa in b.ike_sas())
    for sa_a in a.ike_sas():
        (sa_b,) = [s for s in b.ike_sas() if s.ike_sa_id == sa_a.ike_sa_id]
        assert sa_a.initiator != sa_b.initiator
        assert sa_a.sk_d == sa_b.sk_d and sa_a.keys is None and sa_b.keys is None  # only SK_d kept
        assert sa_a.nonce_i == sa_a.nonce_r == b""  # IKE_SA_INIT nonces freed after IKE_AUTH
        mine = sorted((c.spi_in, c.spi_out) for c in sa_a.children.values())
        theirs = sorted((c.spi_out, c.spi_in) for c in sa_b.children.values())
        assert mine == theirs, (mine, theirs)
        if children is not None:
            assert len(sa_a.children) == children, sa_a.children
        for c in sa_a.children.values():
            (peer,) = [p for p in sa_b.children.values() if p.spi_in == c.spi_out]
            assert c.state.value == peer.state.value == "INSTALLED"
    return a, b


def rekeyed(net, ip):
    return net.of_type(ip, IkeSARekeyed)
