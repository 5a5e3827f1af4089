"""Spoofed IKE_SA_INIT flood generator for bench/flood.py (run inside a network namespace).

    python -m bench.floodgen DST_IP SECONDS [--sources CIDR] [--rate N]

Sends IKE_SA_INIT requests (a real X25519 request made by pyiked's initiator, copied
with a new SPIi each) in hand-built IPv4/UDP packets through a raw socket, from source
addresses spread over --sources (default 10.231.128.0/17), as fast as it can (or at
--rate per second). The packets are built before the clock starts; the loop only
calls sendto. Prints one JSON line: {"sent": n, "seconds": s, "rate": n/s}.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import socket
import struct
import time

POOL = 8192  # distinct packets (source address and SPI), sent round robin


def ike_sa_init() -> bytes:
    from pyiked.config import parse_config_text
    from pyiked.config.store import PolicyStore
    from pyiked.core.engine import Engine

    config, _ = parse_config_text(
        'ikev2 "gen" active esp from 10.231.1.0/24 to 10.231.2.0/24 local 10.231.0.1 '
        'peer 10.231.0.2 srcid a.pk.test dstid b.pk.test psk "pk-test-psk-0123456789"')
    engine = Engine(PolicyStore(config))
    engine.initiate(config.policies[0], 0.0, ("10.231.0.1", 500), ("10.231.0.2", 500))
    ((data, _, _),) = engine.datagrams_to_send()
    return data


def _checksum(header: bytes) -> int:
    s = sum(struct.unpack(f"!{len(header) // 2}H", header))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def packets(dst: str, sources: str, count: int = POOL) -> list[bytes]:
    template = ike_sa_init()
    net = ipaddress.ip_network(sources)
    dst_packed = socket.inet_aton(dst)
    out = []
    for i in range(count):
        src = net.network_address + 1 + (i * 7919) % (net.num_addresses - 2)
        payload = os.urandom(8) + template[8:]  # a fresh SPIi per packet
        udp = struct.pack("!HHHH", 500, 500, 8 + len(payload), 0)  # IPv4: no UDP checksum
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp) + len(payload), i & 0xFFFF, 0,
                         64, socket.IPPROTO_UDP, 0, src.packed, dst_packed)
        ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
        out.append(ip + udp + payload)
    return out


def flood(dst: str, seconds: float, sources: str, rate: float | None = None) -> dict:
    pkts = packets(dst, sources)
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    target = (dst, 0)
    send = sock.sendto
    sent = 0
    n = len(pkts)
    start = time.monotonic()
    end = start + seconds
    gap = 1.0 / rate if rate else 0.0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        burst = 256
        if gap:
            due = int((now - start) / gap) - sent
            if due <= 0:
                time.sleep(gap)
                continue
            burst = min(burst, due)
        for _ in range(burst):
            try:
                send(pkts[sent % n], target)
            except OSError:  # ENOBUFS: the veth queue is full; count only what went out
                continue
            sent += 1
    elapsed = time.monotonic() - start
    return {"sent": sent, "seconds": elapsed, "rate": sent / elapsed}


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.floodgen")
    p.add_argument("dst")
    p.add_argument("seconds", type=float)
    p.add_argument("--sources", default="10.231.128.0/17")
    p.add_argument("--rate", type=float, default=None)
    args = p.parse_args(argv)
    print(json.dumps(flood(args.dst, args.seconds, args.sources, args.rate)), flush=True)


if __name__ == "__main__":
    main()
