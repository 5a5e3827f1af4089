"""What operators' reads cost: `python -m bench control [--quick]`.

A Prometheus scrape and `pyikectl show sa` walk the SA table on the event loop, where
datagrams wait meanwhile, so their cost is stated in handshakes: how many IKE_SA_INIT +
IKE_AUTH exchanges (both engines, in-process, measured in the same run) the daemon could
have completed in the time one scrape or one `show sa` of N established SAs takes.
Nothing is counted per datagram for the metrics (they read engine.stats), so there is no
per-packet figure to give.
"""

from __future__ import annotations

import ipaddress
import json
import time

from bench.common import rate, table, write_result
from pyiked.config.model import Auth, Config, Flow, Identity, Policy, ProposalSpec
from pyiked.config.store import PolicyStore
from pyiked.core.engine import Engine
from pyiked.core.iana import EncrId, EsnId, IDType, KeId, PrfId, ProtocolId
from pyiked.daemon import status

A, B = "10.231.0.1", "10.231.0.2"
IKE = ProposalSpec(ProtocolId.IKE, ((EncrId.AES_GCM_16, 256),), (PrfId.HMAC_SHA2_256,), (),
                   (KeId.CURVE25519,))
ESP = ProposalSpec(ProtocolId.ESP, ((EncrId.AES_GCM_16, 256),), esn=(EsnId.NO_ESN,))


def _policy(name, local, peer, src, dst, me, them) -> Policy:
    def fqdn(n):
        return Identity(IDType.ID_FQDN, n.encode(), n)

    return Policy(name=name, local=ipaddress.ip_network(local), peer=ipaddress.ip_network(peer),
                  flows=(Flow(ipaddress.ip_network(src), ipaddress.ip_network(dst)),),
                  srcid=fqdn(me), dstid=fqdn(them), auth=Auth("psk", b"bench-psk-0123456789"),
                  ike_proposals=(IKE,), child_proposals=(ESP,))


def _pair():
    pa = _policy("a", A, B, "10.231.1.0/24", "10.231.2.0/24", "a.bench", "b.bench")
    pb = _policy("b", B, A, "10.231.2.0/24", "10.231.1.0/24", "b.bench", "a.bench")
    a = Engine(PolicyStore(Config(policies=(pa,))))
    b = Engine(PolicyStore(Config(policies=(pb,))))
    return a, b, pa


def _shuttle(a, b, now) -> None:
    engines = {A: a, B: b}
    moved = True
    while moved:
        moved = False
        for engine in engines.values():
            for data, local, remote in engine.datagrams_to_send():
                engines[remote[0]].receive_datagram(data, remote, local, now)
                moved = True
            while engine.next_event() is not None:
                pass


def _establish(n: int):
    a, b, pa = _pair()
    start = time.perf_counter()
    for _ in range(n):
        a.initiate(pa, 0.0, (A, 500), (B, 500))
        _shuttle(a, b, 0.0)
    elapsed = time.perf_counter() - start
    assert status.gauges(b)["ike_sas_established"] == n
    return a, b, n / elapsed


def run(quick: bool) -> str:
    from prometheus_client import generate_latest

    from pyiked.daemon.metrics import make_registry

    seconds = 0.3 if quick else 1.0
    sizes = (10, 100, 500) if quick else (10, 100, 1000, 3000)
    rows, figures = [], {}
    for n in sizes:
        _, b, handshakes = _establish(n)
        registry = make_registry(type("D", (), {"engine": b, "active": True, "coupled": True})())
        scrape = rate(lambda r=registry: generate_latest(r), seconds)
        show = rate(lambda e=b: json.dumps(status.sas(e, 0.0)), seconds)
        figures[str(n)] = {
            "handshakes_per_s": handshakes,
            "scrapes_per_s": scrape,
            "show_sa_json_per_s": show,
            "scrape_in_handshakes": handshakes / scrape,
            "show_sa_in_handshakes": handshakes / show,
        }
        rows.append([n, handshakes, scrape, handshakes / scrape, show, handshakes / show])
    write_result("control", figures, quick)
    return table(
        "metrics scrape and show sa --json over N established SAs, in handshakes (IKE_SA_INIT\n"
        "+ IKE_AUTH, both engines in-process, same run) the loop could have done meanwhile",
        ["SAs", "handshakes/s", "scrapes/s", "scrape = N hs", "show sa/s", "show sa = N hs"],
        rows,
    )


if __name__ == "__main__":
    from bench.common import main_args

    print(run(main_args().quick))
