"""`pyiked demo`: a pyiked initiator and a pyiked responder negotiating on loopback.

As root the demo builds two network namespaces instead (demo_netns.py) and passes traffic.

No root and no configuration needed: the responder listens on 127.0.0.2 and the initiator
on 127.0.0.1, both on unprivileged ports, each with an in-memory kernel backend. The demo
prints both sides' SAs in an `ikectl show sa`-like table and exits 0 once an IKE SA and a
CHILD SA are up on both sides (1 otherwise).
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time

from pyiked.config import parse_config_text
from pyiked.config.model import Config
from pyiked.ctl.show import format_sas

from . import status
from .run import Daemon

INITIATOR, RESPONDER = "127.0.0.1", "127.0.0.2"

RESPONDER_CONF = """\
# the responder (127.0.0.2): passive, protects 10.231.2.0/24
ikev2 "demo-responder" passive esp from 10.231.2.0/24 to 10.231.1.0/24 \\
    local 127.0.0.2 peer 127.0.0.1 \\
    ikesa enc aes-256-gcm prf hmac-sha2-256 group curve25519 \\
    childsa enc aes-256-gcm \\
    srcid responder.demo.test dstid initiator.demo.test psk "demo-psk-not-for-production"
"""

INITIATOR_CONF = """\
# the initiator (127.0.0.1): active, protects 10.231.1.0/24
ikev2 "demo-initiator" active esp from 10.231.1.0/24 to 10.231.2.0/24 \\
    local 127.0.0.1 peer 127.0.0.2 \\
    ikesa enc aes-256-gcm prf hmac-sha2-256 group curve25519 \\
    childsa enc aes-256-gcm \\
    srcid initiator.demo.test dstid responder.demo.test psk "demo-psk-not-for-production"
"""


def _free_ports() -> tuple[int, int]:
    """Two consecutive-ish free UDP ports usable on both loopback addresses."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((INITIATOR, 0))
            ike = probe.getsockname()[1]
        natt = ike + 1
        try:
            for ip in (INITIATOR, RESPONDER):
                for port in (ike, natt):
                    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                        s.bind((ip, port))
        except OSError:
            continue
        return ike, natt
    raise RuntimeError("no free UDP ports on loopback")


def _config(text: str, name: str) -> Config:
    config, _warnings = parse_config_text(text, name)
    return config


def _up(daemon: Daemon) -> bool:
    return any(sa.state.value == "ESTABLISHED" and sa.children for sa in daemon.engine.ike_sas())


async def _demo(timeout: float) -> int:
    ike, natt = _free_ports()
    loop = asyncio.get_running_loop()
    responder = Daemon(_config(RESPONDER_CONF, "responder.conf"), ike_port=ike, natt_port=natt,
                       families=(4,), bind_address=RESPONDER)
    initiator = Daemon(_config(INITIATOR_CONF, "initiator.conf"), ike_port=ike, natt_port=natt,
                       families=(4,), bind_address=INITIATOR)
    responder.start(loop)
    started = time.monotonic()
    initiator.start(loop)
    while not (_up(initiator) and _up(responder)) and time.monotonic() - started < timeout:
        await asyncio.sleep(0.01)
    elapsed = time.monotonic() - started
    ok = _up(initiator) and _up(responder)
    now = loop.time()
    print(f"pyiked demo: initiator {INITIATOR}:{ike} -> responder {RESPONDER}:{ike}, "
          f"PSK, in-memory kernel backend")
    print(format_sas(status.sas(initiator.engine, now), "== initiator (show sa)"))
    print()
    print(format_sas(status.sas(responder.engine, now), "== responder (show sa)"))
    print()
    if ok:
        print(f"IKE SA and CHILD SA established in {elapsed * 1000:.1f} ms")
    else:
        print(f"FAILED: no SA after {timeout:.0f} s", file=sys.stderr)
    await initiator.shutdown(grace=0.5)
    responder.close()
    return 0 if ok else 1


def main(args=None) -> int:
    """As root: two network namespaces and a ping through the tunnel (demo_netns);
    otherwise: both ends on loopback, no data plane. `--loopback` forces the latter."""
    import os
    import shutil

    if os.geteuid() == 0 and shutil.which("ip") and "--loopback" not in (args or []):
        from . import demo_netns

        return demo_netns.main()
    return asyncio.run(_demo(timeout=10.0))
