"""Road-warrior handshakes in the engine: what certificates, EAP and fragmentation cost
compared with a PSK handshake, measured in the same run.

Each row is a complete IKE_SA_INIT + IKE_AUTH (+ CHILD SA) between two engines over the
simulated network (no sleeping: CPU only, both ends), fresh engines per handshake, the
default proposal (AES-GCM-256, X25519). The certificates are the unit tests' (strongSwan's
`pki`, tests/data/pki), each store loaded once as a daemon does. Rates are per second of
both ends' work together; the ratio is the PSK rate over the row's rate, so "3.0" means a
handshake costs three PSK handshakes.

The second table isolates RFC 7383: sealing and reassembling one 3 kB IKE_AUTH-sized
message as 548-octet SKF fragments against one SK payload, with the compiled and pure SK
twins.
"""

from __future__ import annotations

import datetime
import random
import sys
from pathlib import Path

from bench.common import main_args, rate, table, write_result

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NOW = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)


def _rows():
    import functools

    from pyiked.config.model import Settings
    from tests.engine import rw
    from tests.engine.simnet import A_IP, B_IP, pair

    # a daemon loads its certificate store once: keep store construction out of the rate
    rw.store = functools.lru_cache(maxsize=None)(rw.store)

    def psk():
        net, pa, _ = pair()
        return net, pa

    def certs(a, b, settings=None):
        def make():
            net, pa, _ = rw.cert_pair((a,), (b,), settings=settings)
            return net, pa

        return make

    def eap():
        net, pa, _ = rw.eap_pair()
        return net, pa

    rows = {
        "PSK": psk,
        "ECDSA P-256 certificates (RFC 7427)": certs("a-ec", "b-ec"),
        "RSA-2048 certificates (RFC 7427)": certs("a-rsa", "b-rsa"),
        "RSA-2048, fragmented (RFC 7383)": certs("a-rsa", "b-rsa", Settings(fragmentation=True)),
        "EAP-MSCHAPv2 + ECDSA gateway + CP lease": eap,
    }

    def handshake(make):
        def run():
            net, pa = make()
            net.engines[A_IP].initiate(pa, 0.0)
            net.run(until=30)
            if not net.engines[B_IP].stats["handshakes_completed"]:
                raise RuntimeError("handshake failed in the bench")

        return run

    return {name: handshake(make) for name, make in rows.items()}


def _fragment_rows():
    from pyiked._fast import implementations, wire

    plaintext = random.Random(7).randbytes(3000)
    payloads = [wire.CERT(4, plaintext)]
    chain = wire.encode_payloads(payloads)
    out = {}
    for label, sk in (
        ("compiled", implementations("sk")["c"]),
        ("pure", implementations("sk")["py"]),
    ):
        if sk is None:
            continue
        out[label] = _fragment_paths(sk, chain)
    return out


def _fragment_paths(sk, chain):
    """(whole, fragmented) for one SK implementation (a function, so each binds its own)."""
    from collections import Counter
    from types import SimpleNamespace

    from pyiked._fast import wire
    from pyiked.core import fragments

    cipher = sk.SKCipher(20, 256, 0, bytes(36))
    engine = SimpleNamespace(fragmentation=True, fragment_size=0, ike_port=500, stats=Counter())
    sa = SimpleNamespace(engine=engine, peer_fragmentation=True, sk_out=cipher, sk_in=cipher,
                         spi_i=b"\1" * 8, spi_r=b"\2" * 8, remote_addr=("10.0.0.2", 500),
                         local_addr=("10.0.0.1", 500), frag_in=None)
    header = wire.encode_header(wire.Message(sa.spi_i, sa.spi_r, 35, 8, 1, [wire.SK(37, b"")]), 0)

    def whole():
        message = cipher.seal(header, 37, chain)
        return cipher.open(message, 28)

    def fragmented():
        sa.frag_in = None
        done = None
        for piece in fragments.seal(sa, 35, 1, 8, 37, chain):
            done = fragments.receive(sa, wire.decode(piece), piece, 0.0) or done
        return done

    return whole, fragmented


def run(quick: bool = False) -> str:
    seconds = 1.0 if quick else 4.0
    handshakes = _rows()
    rates = {name: rate(fn, seconds) for name, fn in handshakes.items()}
    base = rates["PSK"]
    rows = [[name, r, base / r] for name, r in rates.items()]
    figures = {
        "handshakes_per_second": rates,
        "cost_vs_psk": {n: base / r for n, r in rates.items()},
    }
    text = table(
        "road-warrior handshakes, both engines, per second (cost = PSK rate / rate)",
        ["handshake", "per s", "cost vs PSK"],
        rows,
    )
    frag_rows = []
    figures["fragments"] = {}
    for label, (whole, fragmented) in _fragment_rows().items():
        w, f = rate(whole, seconds / 2), rate(fragmented, seconds / 2)
        frag_rows.append([f"{label}: 3 kB as one SK payload", w, 1.0])
        frag_rows.append([f"{label}: 3 kB as 548-octet SKF fragments", f, w / f])
        figures["fragments"][label] = {
            "whole_per_second": w,
            "fragmented_per_second": f,
            "cost": w / f,
        }
    text += "\n\n" + table(
        "RFC 7383: seal + verify + reassemble one message (cost = whole / fragmented)",
        ["message", "per s", "cost"],
        frag_rows,
    )
    write_result("roadwarrior", figures, quick)
    return text


if __name__ == "__main__":
    print(run(main_args().quick))
