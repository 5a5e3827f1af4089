"""Legitimate initiators for bench/flood.py: pyiked's engine as the load generator.

    python -m bench.floodlegit LOCAL_IP PEER_IP RATE SECONDS [--deadline S]

Starts RATE IKE SAs per second (PSK, X25519, one CHILD SA each) for SECONDS over a real
UDP socket, answers COOKIE and retransmits as any initiator does, and waits up to
--deadline seconds after the last start. Each IKE SA is deleted once it is up, so the
responder's table stays small. Prints one JSON line: started, completed, failed, and
handshake times (median, 95th percentile).
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import time

from pyiked.config import parse_config_text
from pyiked.config.store import PolicyStore
from pyiked.core.engine import Engine
from pyiked.core.events import HandshakeFailed, IkeSAUp


def policy_text(local, peer):
    return (f'ikev2 "legit" active esp from 10.231.1.0/24 to 10.231.2.0/24 local {local} '
            f'peer {peer} srcid a.pk.test dstid b.pk.test psk "pk-test-psk-0123456789"')


def run(local: str, peer: str, rate: float, seconds: float, deadline: float) -> dict:
    config, _ = parse_config_text(policy_text(local, peer))
    policy = config.policies[0]
    engine = Engine(PolicyStore(config))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((local, 500))
    sock.setblocking(False)
    start = time.monotonic()
    started: dict[bytes, float] = {}
    done: dict[bytes, float] = {}
    failed = 0
    n = 0
    while True:
        now = time.monotonic()
        if now - start < seconds and n < int((now - start) * rate) + 1:
            sa_id = engine.initiate(policy, now, (local, 500), (peer, 500))
            started[sa_id[:8]] = now
            n += 1
        elif now - start >= seconds + deadline or (now - start >= seconds and len(done) + failed >= n):
            break
        timer = engine.get_timer()
        wait = 1.0 / rate if now - start < seconds else 0.05
        if timer is not None:
            wait = max(0.0, min(wait, timer - now))
        readable, _, _ = select.select([sock], [], [], wait)
        now = time.monotonic()
        if readable:
            for _ in range(64):
                try:
                    data, addr = sock.recvfrom(65535)
                except BlockingIOError:
                    break
                engine.receive_datagram(data, (local, 500), addr, now)
        timer = engine.get_timer()
        if timer is not None and timer <= now:
            engine.handle_timer(now)
        for data, _, remote in engine.datagrams_to_send():
            sock.sendto(data, remote)
        while (event := engine.next_event()) is not None:
            if isinstance(event, IkeSAUp):
                done[event.ike_sa[:8]] = now
                engine.delete_ike_sa(event.ike_sa, now, "bench done")
            elif isinstance(event, HandshakeFailed) and event.initiator:
                failed += 1
        for data, _, remote in engine.datagrams_to_send():
            sock.sendto(data, remote)
    times = sorted(done[k] - started[k] for k in done if k in started)
    return {
        "started": n,
        "completed": len(done),
        "failed": failed,
        "median_s": times[len(times) // 2] if times else None,
        "p95_s": times[int(len(times) * 0.95)] if times else None,
    }


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.floodlegit")
    p.add_argument("local")
    p.add_argument("peer")
    p.add_argument("rate", type=float)
    p.add_argument("seconds", type=float)
    p.add_argument("--deadline", type=float, default=20.0)
    args = p.parse_args(argv)
    print(json.dumps(run(args.local, args.peer, args.rate, args.seconds, args.deadline)), flush=True)


if __name__ == "__main__":
    main()
