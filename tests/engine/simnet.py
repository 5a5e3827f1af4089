"""A simulated network for engine-to-engine tests: loss, duplication, reordering, NAT.

Everything is deterministic: the network's choices come from a seeded random.Random, and
each engine gets its own seeded byte source, so a failing seed reproduces exactly.
"""

from __future__ import annotations

import heapq
import ipaddress
import random as _random

from pyiked.config.model import Auth, Config, Flow, Identity, Policy, Settings
from pyiked.config.store import PolicyStore
from pyiked.core.engine import Engine
from pyiked.core.iana import IDType


def seeded_bytes(seed):
    rng = _random.Random(seed)
    return rng.randbytes


class Nat:
    """A NAT in front of one host: rewrites its source (ip, port) to public_ip and a new port
    per inside port, and maps answers back."""

    def __init__(self, inside_ip, public_ip, port_base=40000):
        self.inside_ip = inside_ip
        self.public_ip = public_ip
        self.port_base = port_base
        self.out_map: dict[int, int] = {}

    def outbound(self, src):
        if src[0] != self.inside_ip:
            return src
        port = self.out_map.setdefault(src[1], self.port_base + len(self.out_map))
        return (self.public_ip, port)

    def inbound(self, dst):
        if dst[0] != self.public_ip:
            return dst
        for inside, public in self.out_map.items():
            if public == dst[1]:
                return (self.inside_ip, inside)
        return None

    def rebind(self):
        """The NAT forgets its mappings (a new public port on the next packet)."""
        self.port_base += 1000
        self.out_map.clear()


class SimNet:
    def __init__(self, seed=1, loss=0.0, duplicate=0.0, reorder=0.0, latency=0.005):
        self.rng = _random.Random(seed)
        self.loss, self.duplicate, self.reorder, self.latency = loss, duplicate, reorder, latency
        self.now = 0.0
        self.engines: dict[str, Engine] = {}
        self.events: dict[str, list] = {}
        self.queue: list = []
        self._seq = 0
        self.nat: Nat | None = None
        self.delivered = 0
        self.blackhole: set[str] = set()  # hosts whose packets vanish (a dead peer)
        self.tap = None  # callable(data, src, dst) -> data or None, to tamper with packets

    def add(self, ip: str, engine: Engine) -> Engine:
        self.engines[ip] = engine
        self.events[ip] = []
        return engine

    def _schedule(self, data, src, dst, delay):
        self._seq += 1
        heapq.heappush(self.queue, (self.now + delay, self._seq, data, src, dst))

    def flush(self) -> None:
        for ip, engine in self.engines.items():
            for data, local, remote in engine.datagrams_to_send():
                if ip in self.blackhole:
                    continue
                src = self.nat.outbound(local) if self.nat else local
                if self.rng.random() < self.loss:
                    continue
                copies = 2 if self.rng.random() < self.duplicate else 1
                for _ in range(copies):
                    delay = self.latency
                    if self.rng.random() < self.reorder:
                        delay += self.rng.random() * 0.05
                    self._schedule(data, src, remote, delay)
            while (event := engine.next_event()) is not None:
                self.events[ip].append(event)

    def _deliver(self, data, src, dst):
        if self.nat:
            dst = self.nat.inbound(dst)
            if dst is None:
                return
        if self.tap is not None:
            data = self.tap(data, src, dst)
            if data is None:
                return
        engine = self.engines.get(dst[0])
        if engine is None or dst[0] in self.blackhole:
            return
        self.delivered += 1
        engine.receive_datagram(data, dst, src, self.now)

    def step(self) -> bool:
        """Deliver the next datagram or fire the next timer. False when nothing is left."""
        self.flush()
        timers = [(t, ip) for ip, e in self.engines.items() if (t := e.get_timer()) is not None]
        next_packet = self.queue[0][0] if self.queue else None
        next_timer = min(timers) if timers else None
        if next_packet is None and next_timer is None:
            return False
        if next_timer is None or (next_packet is not None and next_packet <= next_timer[0]):
            when, _, data, src, dst = heapq.heappop(self.queue)
            self.now = max(self.now, when)
            self._deliver(data, src, dst)
        else:
            self.now = max(self.now, next_timer[0])
            self.engines[next_timer[1]].handle_timer(self.now)
        self.flush()
        return True

    def run(self, until: float | None = None, max_steps: int = 100000) -> None:
        for _ in range(max_steps):
            if until is not None:
                nxt = self._next_time()
                if nxt is None or nxt > until:
                    self.now = max(self.now, until)
                    self.flush()
                    return
            if not self.step():
                return
        raise AssertionError("simulation did not settle")

    def _next_time(self):
        times = [t for e in self.engines.values() if (t := e.get_timer()) is not None]
        if self.queue:
            times.append(self.queue[0][0])
        return min(times) if times else None

    def of_type(self, ip, cls):
        return [e for e in self.events[ip] if isinstance(e, cls)]


# -- configuration builders -----------------------------------------------------------------

def fqdn(name: str) -> Identity:
    return Identity(IDType.ID_FQDN, name.encode(), name)


def psk_policy(name, local_ip, peer_ip, local_net, remote_net, srcid, dstid, psk=b"pk-test-psk-0123456789",
               **kw) -> Policy:
    """A PSK site-to-site policy; kw override any Policy field (srcid/dstid may be text)."""
    fields = dict(
        name=name,
        local=ipaddress.ip_network(local_ip),
        peer=ipaddress.ip_network(peer_ip),
        flows=(Flow(ipaddress.ip_network(local_net), ipaddress.ip_network(remote_net)),),
        srcid=srcid,
        dstid=dstid,
        auth=Auth("psk", psk),
    )
    fields.update(kw)
    for key in ("srcid", "dstid"):
        if isinstance(fields[key], str):
            fields[key] = fqdn(fields[key])
    return Policy(**fields)


def engine_for(policies, seed, settings=None, **kw) -> Engine:
    config = Config(settings=settings or Settings(), policies=tuple(policies))
    return Engine(PolicyStore(config), random=seeded_bytes(seed), strict=True, **kw)


A_IP, B_IP = "10.231.0.1", "10.231.0.2"
A_NET, B_NET = "10.231.1.0/24", "10.231.2.0/24"


def pair(seed=1, a_kw=None, b_kw=None, net_kw=None, a_engine=None, b_engine=None):
    """Initiator A (10.231.0.1) and responder B (10.231.0.2), the interop topology."""
    net = SimNet(seed=seed, **(net_kw or {}))
    a_kw = {"srcid": "a.pk.test", "dstid": "b.pk.test", "active": True, **(a_kw or {})}
    b_kw = {"srcid": "b.pk.test", "dstid": "a.pk.test", **(b_kw or {})}
    pa = psk_policy("a", A_IP, B_IP, A_NET, B_NET, **a_kw)
    pb = psk_policy("b", B_IP, A_IP, B_NET, A_NET, **b_kw)
    net.add(A_IP, engine_for([pa], seed * 2 + 1, **(a_engine or {})))
    net.add(B_IP, engine_for([pb], seed * 2 + 2, **(b_engine or {})))
    return net, pa, pb
