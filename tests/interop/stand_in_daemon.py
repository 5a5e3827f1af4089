"""A stand-in for `python -m pyiked.daemon.cli`, used by the harness self-tests only.

It takes the daemon's command line (-d, -v..., -f CONF, -s SOCK), logs what it was given
(config, environment), binds UDP 500 and 4500 and echoes every datagram back, creates the
control socket, and exits 0 on SIGTERM. It proves the `Pyiked` runner's start, stop, log
capture and environment pass-through without the real daemon. --ignore-term makes it
ignore SIGTERM (to prove the SIGKILL escalation).
"""

import argparse
import hashlib
import os
import select
import signal
import socket
import sys


def main(argv=None):
    ap = argparse.ArgumentParser(prog="stand-in-iked")
    ap.add_argument("-d", action="store_true", help="foreground (always)")
    ap.add_argument("-v", action="count", default=0)
    ap.add_argument("-f", required=True, dest="conf")
    ap.add_argument("-s", required=True, dest="sock")
    ap.add_argument("--ports", default="500,4500")
    ap.add_argument("--ignore-term", action="store_true")
    args = ap.parse_args(argv)

    log = lambda *a: print("stand-in:", *a, flush=True)
    log(f"pid={os.getpid()} verbosity={args.v} foreground={args.d}")
    log(f"PYIKED_NO_EXTENSIONS={os.environ.get('PYIKED_NO_EXTENSIONS')!r}")
    log(f"PYIKED_TEST_MARK={os.environ.get('PYIKED_TEST_MARK')!r}")
    with open(args.conf, "rb") as f:
        conf = f.read()
    log(f"config {args.conf} sha256={hashlib.sha256(conf).hexdigest()}")

    def on_term(signum, frame):
        log("SIGTERM, exiting")
        sys.exit(0)

    def on_hup(signum, frame):
        with open(args.conf, "rb") as f:
            log(f"SIGHUP, reloaded sha256={hashlib.sha256(f.read()).hexdigest()}")

    signal.signal(signal.SIGTERM, signal.SIG_IGN if args.ignore_term else on_term)
    signal.signal(signal.SIGHUP, on_hup)

    ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if os.path.exists(args.sock):
        os.unlink(args.sock)
    ctl.bind(args.sock)
    ctl.listen(4)
    udp = []
    for port in (int(p) for p in args.ports.split(",")):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", port))
        udp.append(s)
    log(f"listening on udp {args.ports}, control {args.sock}")

    try:
        while True:
            ready, _, _ = select.select([*udp, ctl], [], [])
            for s in ready:
                if s is ctl:
                    conn, _ = ctl.accept()
                    with conn:
                        conn.sendall(b"stand-in\n")
                    continue
                data, peer = s.recvfrom(65535)
                log(f"echo {len(data)} bytes from {peer[0]}:{peer[1]} "
                    f"on port {s.getsockname()[1]}")
                s.sendto(data, peer)
    finally:
        os.unlink(args.sock)


if __name__ == "__main__":
    main()
