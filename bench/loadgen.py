"""The pyiked initiator as an IKEv2 load generator: one process, one engine, many IKE SAs.

    python -m bench.loadgen --peer 10.231.0.2 --count 2000 --concurrency 64 \\
        [--profile psk-x25519-gcm] [--rate 500] [--sources 10.231.0.1,10.231.0.11] \\
        [--delete | --forget] [--warmup 20] [--time-limit 60]

Each IKE SA gets fresh SPIs, its own identity (c<k>.bench.test; with certificates all are
a-ec.pk.test) and its own CHILD SA selector (bench.pair.Initiations), and is initiated by
the engine as the daemon
would (IKE_SA_INIT, NAT-T float to 4500 when the responder reports a NAT, IKE_AUTH with
the first CHILD SA). At most `concurrency` handshakes are in flight; `rate` caps how many
start per second. Source addresses are used in turn, for responders that limit per IP.
With --delete each IKE SA is deleted (INFORMATIONAL) once it is up; otherwise it stays,
and with --forget only on the responder (the generator drops its side silently, so that
it can hold the responder at 100k SAs without holding 100k itself).

With --warmup K it first establishes K SAs, prints {"warm": K} and waits for a line on
stdin before the timed run, so that a caller can sample the responder in between.

The result is one JSON object on stdout: counts (started, completed, failed,
retransmissions, deleted), the wall time from the first initiation to the last
completion, this process's CPU time over the same span, and handshake latencies.
Run it where it can bind UDP 500 and 4500 (bench.handshake runs it in a namespace).
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import sys
import time


def _percentile(values, q):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


class Generator:
    def __init__(self, peer, profile_name="psk-x25519-gcm", sources=None, port=500, natt_port=4500):
        from pyiked.config.store import PolicyStore
        from pyiked.daemon.sockets import UdpEndpoint, source_address_for

        from bench.pair import PROFILES, Initiations, generator_config, generator_engine

        profile = PROFILES[profile_name]
        config = generator_config(profile, peer)
        self.peer, self.profile, self.port = peer, profile_name, port
        self.engine = generator_engine(PolicyStore(config), profile.cert_store("generator"),
                                       ike_port=port, natt_port=natt_port)
        self.initiations = Initiations(config, not profile.certificates)
        self.sources = list(sources or []) or [source_address_for(peer)]
        self.endpoints = {p: UdpEndpoint(socket.AF_INET, p, "", rcvbuf=16 << 20) for p in (port, natt_port)}
        self.selector = selectors.DefaultSelector()
        for ep in self.endpoints.values():
            self.selector.register(ep.fileno(), selectors.EVENT_READ, ep)

    def close(self):
        for ep in self.endpoints.values():
            ep.close()

    def _flush(self):
        for data, local, remote in self.engine.datagrams_to_send():
            self.endpoints[local[1]].send(data, local[0], remote)

    def _receive(self, timeout):
        for key, _ in self.selector.select(timeout):
            now = time.monotonic()
            for data, local, remote in key.data.receive_batch():
                self.engine.receive_datagram(data, local, remote, now)

    def drive(self, count, concurrency, offset=0, rate=None, delete=False, forget=False,
              time_limit=120.0) -> dict:
        from pyiked.core.events import ChildSAInstall, HandshakeFailed, IkeSADown, IkeSAUp

        engine = self.engine
        retransmissions0 = engine.stats["retransmissions"]
        started = completed = failed = deleted = children = 0
        begun: dict[bytes, float] = {}  # spi_i -> when initiated
        latencies, reasons, forgotten = [], {}, []
        cpu0, t0 = time.process_time(), time.monotonic()
        last_done, deadline = t0, t0 + time_limit
        while completed + failed < count:
            now = time.monotonic()
            if now > deadline:
                break
            allowed = count if rate is None else min(count, int(rate * (now - t0)) + 1)
            while started < allowed and started - completed - failed < concurrency:
                policy, child_ts = self.initiations(offset + started)
                src = self.sources[started % len(self.sources)]
                sa_id = engine.initiate(policy, now, (src, self.port), (self.peer, self.port), child_ts)
                begun[sa_id[:8]] = now
                started += 1
            self._flush()
            while (event := engine.next_event()) is not None:
                if isinstance(event, IkeSAUp):
                    completed += 1
                    last_done = now
                    t = begun.pop(event.ike_sa[:8], None)
                    if t is not None:
                        latencies.append(now - t)
                    if delete:
                        engine.delete_ike_sa(event.ike_sa, now, "bench")
                    elif forget:
                        forgotten.append(event.ike_sa)
                elif isinstance(event, ChildSAInstall):
                    children += 1
                elif isinstance(event, HandshakeFailed):
                    failed += 1
                    last_done = now
                    reasons[event.reason] = reasons.get(event.reason, 0) + 1
                elif isinstance(event, IkeSADown):
                    deleted += 1
            for ike_sa in forgotten:  # keep nothing here; the responder keeps its SA
                sa = engine.sas.get(ike_sa[:8])
                if sa is not None:
                    engine.destroy(sa, "forgotten by the generator", now)
            forgotten.clear()
            self._flush()
            timeout = 0.05
            timer = engine.get_timer()
            if timer is not None:
                timeout = min(timeout, max(0.0, timer - now))
            if rate is not None and started < count:
                timeout = min(timeout, max(0.0, (started + 1) / rate - (now - t0)))
            self._receive(timeout)
            now = time.monotonic()
            timer = engine.get_timer()
            if timer is not None and timer <= now:
                engine.handle_timer(now)
        wall, cpu = last_done - t0, time.process_time() - cpu0
        if delete:  # let the last deletes finish (not timed)
            end = time.monotonic() + 2.0
            while deleted < completed and time.monotonic() < end:
                self._flush()
                self._receive(0.05)
                while (event := engine.next_event()) is not None:
                    deleted += isinstance(event, IkeSADown)
                engine.handle_timer(time.monotonic())
        return {
            "profile": self.profile,
            "peer": self.peer,
            "sources": self.sources,
            "count": count,
            "concurrency": concurrency,
            "rate": rate,
            "delete": delete,
            "forget": forget,
            "started": started,
            "completed": completed,
            "children": children,
            "failed": failed,
            "unfinished": started - completed - failed,
            "failure_reasons": reasons,
            "retransmissions": engine.stats["retransmissions"] - retransmissions0,
            "deleted": deleted,
            "wall_seconds": wall,
            "cpu_seconds": cpu,
            "latency_median_ms": (_percentile(latencies, 0.5) or 0) * 1e3,
            "latency_p95_ms": (_percentile(latencies, 0.95) or 0) * 1e3,
        }


def run(peer, count, concurrency, profile_name="psk-x25519-gcm", rate=None, sources=None,
        delete=False, time_limit=120.0, offset=0, forget=False) -> dict:
    gen = Generator(peer, profile_name, sources)
    try:
        return gen.drive(count, concurrency, offset, rate, delete, forget, time_limit)
    finally:
        gen.close()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__.split("\n\n")[0])
    p.add_argument("--peer", required=True, help="responder address")
    p.add_argument("--count", type=int, default=1000, help="IKE SAs to establish")
    p.add_argument("--concurrency", type=int, default=64, help="handshakes in flight at most")
    p.add_argument("--rate", type=float, default=None, help="initiations per second at most")
    p.add_argument("--profile", default="psk-x25519-gcm")
    p.add_argument("--sources", default="", help="comma-separated source addresses, used in turn")
    p.add_argument("--delete", action="store_true", help="delete each IKE SA once it is up")
    p.add_argument("--forget", action="store_true",
                   help="drop our side of each IKE SA once it is up (no Delete is sent)")
    p.add_argument("--warmup", type=int, default=0,
                   help="establish this many first, then print {\"warm\": N} and wait for a line on stdin")
    p.add_argument("--time-limit", type=float, default=120.0, help="give up after this many seconds")
    p.add_argument("--offset", type=int, default=0,
                   help="number of the first IKE SA (identities and selectors follow it)")
    args = p.parse_args(argv)
    gen = Generator(args.peer, args.profile, [s for s in args.sources.split(",") if s])
    try:
        if args.warmup:
            warm = gen.drive(args.warmup, args.concurrency, args.offset, delete=args.delete,
                             forget=args.forget, time_limit=args.time_limit)
            print(json.dumps({"warm": warm["completed"]}), flush=True)
            sys.stdin.readline()
        result = gen.drive(args.count, args.concurrency, args.offset + args.warmup, args.rate,
                           args.delete, args.forget, args.time_limit)
    finally:
        gen.close()
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0 if result["completed"] == args.count else 1


if __name__ == "__main__":
    sys.exit(main())
