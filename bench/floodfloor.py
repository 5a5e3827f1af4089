"""The kernel's share of a flood datagram, for bench/flood.py (run inside namespace b).

    python -m bench.floodfloor recv SECONDS     # read what arrives on UDP 500, nothing else
    python -m bench.floodfloor send COUNT       # send 53-octet replies to 10.231.128.0/17

Both use pyiked._fast.udp exactly as the daemon does (one recvmmsg / sendmmsg per batch of
64 when compiled) and print one JSON line with the process CPU time per datagram: the
floor under what the daemon's own code adds.
"""

from __future__ import annotations

import json
import socket
import sys
import time

from pyiked._fast import udp


def _socket(port=500):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_PKTINFO", 8), 1)
    s.bind(("0.0.0.0", port))
    s.setblocking(False)
    return s


def recv(seconds: float) -> dict:
    """CPU time per datagram of draining the socket in full batches, as the daemon does
    under a flood (it never catches up): let the queue fill for 20 ms, drain it, again."""
    s = _socket()
    rx = udp.Receiver(s, 64, 65535, 500)
    print(json.dumps({"ready": True}), flush=True)
    got, cpu, start, idle = 0, 0.0, None, 0.0
    while idle < 2.0 and (start is None or time.monotonic() - start < seconds + 30):
        time.sleep(0.02)
        t0 = time.process_time()
        n = drained = 0
        while True:
            n = len(rx.recv())
            drained += n
            if n < 64:
                break
        cpu += time.process_time() - t0
        got += drained
        if drained:
            start = start or time.monotonic()
            idle = 0.0
        elif start is not None:
            idle += 0.02
    return {"received": got, "us_per_datagram": cpu / got * 1e6 if got else None}


def send(count: int) -> dict:
    s = _socket(0)
    items = [(b"\0" * 53, "0.0.0.0", (f"10.231.{128 + (i >> 8) % 64}.{i & 255}", 500)) for i in range(64)]
    sent = 0
    t0 = time.process_time()
    while sent < count:
        sent += udp.send_batch(s, items)
    return {"sent": sent, "us_per_datagram": (time.process_time() - t0) / sent * 1e6}


if __name__ == "__main__":
    mode, arg = sys.argv[1], float(sys.argv[2])
    print(json.dumps(recv(arg) if mode == "recv" else send(int(arg))), flush=True)
