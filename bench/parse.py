"""Wire codec throughput: decode + encode per message, compiled vs pure vs scapy.

Messages:
  IKE_SA_INIT request  SA with four proposals (15 transforms), 32-octet KE (X25519),
                       32-octet nonce, both NAT_DETECTION notifies and two more notifies
  IKE_AUTH request     header + one SK payload (IDi, AUTH, SA, TSi, TSr sealed: 300 octets)
  both                 one of each (a responder's two inbound messages per handshake)
Also dispatch.classify of the IKE_AUTH datagram on port 4500 (marker + header read).

scapy does decode = IKEv2(octets) and encode = bytes() after clear_cache(), so that it
really rebuilds. Each figure is the best of three runs; ratios come from the same run.
Goal: compiled >= 20x pure, >= 50x scapy.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import main_args, rate, table, write_result  # noqa: E402
from pyiked import _fast  # noqa: E402
from pyiked.core.iana import (  # noqa: E402
    EncrId,
    ExchangeType,
    IntegId,
    KeId,
    NotifyType,
    PrfId,
    ProtocolId,
    TransformType as TT,
)

GOAL_PURE, GOAL_SCAPY = 20.0, 50.0
REPEAT = 3  # best of REPEAT runs, as timeit does: other processes only ever slow a run


def best_rate(fn, seconds):
    return max(rate(fn, seconds / REPEAT) for _ in range(REPEAT))


def ike_sa_init(w):
    """A typical initiator's IKE_SA_INIT request (AEAD and classic proposals)."""
    prf = [w.Transform(TT.PRF, PrfId.HMAC_SHA2_256), w.Transform(TT.PRF, PrfId.HMAC_SHA2_384)]
    ke = [w.Transform(TT.KE, KeId.CURVE25519), w.Transform(TT.KE, KeId.ECP256)]
    integ = [w.Transform(TT.INTEG, IntegId.HMAC_SHA2_256_128)]
    encr = [
        [w.Transform(TT.ENCR, EncrId.AES_GCM_16, 256)] + prf + ke,
        [w.Transform(TT.ENCR, EncrId.CHACHA20_POLY1305)] + prf[:1] + ke[:1],
        [w.Transform(TT.ENCR, EncrId.AES_CBC, 256)] + integ + prf + ke,
        [w.Transform(TT.ENCR, EncrId.AES_CBC, 128)] + integ + prf[:1],
    ]
    proposals = [w.Proposal(i + 1, ProtocolId.IKE, b"", t) for i, t in enumerate(encr)]
    payloads = [
        w.SA(proposals),
        w.KE(KeId.CURVE25519, os.urandom(32)),
        w.Nonce(os.urandom(32)),
        w.Notify(NotifyType.NAT_DETECTION_SOURCE_IP, os.urandom(20)),
        w.Notify(NotifyType.NAT_DETECTION_DESTINATION_IP, os.urandom(20)),
        w.Notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED),
        w.Notify(NotifyType.SIGNATURE_HASH_ALGORITHMS, bytes.fromhex("0002000300040005")),
    ]
    return w.encode(w.Message(os.urandom(8), bytes(8), ExchangeType.IKE_SA_INIT, 0x08, 0, payloads))


def ike_auth(w):
    sk = w.SK(35, os.urandom(300))  # inner IDi; IV | ciphertext | ICV
    return w.encode(w.Message(os.urandom(8), os.urandom(8), ExchangeType.IKE_AUTH, 0x08, 1, [sk]))


def _scapy_round_trip():
    try:
        from scapy.contrib.ikev2 import IKEv2
    except ImportError:
        return None

    def round_trip(raw):
        pkt = IKEv2(raw)
        pkt.clear_cache()
        return bytes(pkt)
    return round_trip


def run(quick: bool = False) -> str:
    seconds = 0.3 if quick else 1.5
    impls = _fast.implementations("wire")
    wire_c, wire_py = impls["c"], impls["py"]
    messages = {"IKE_SA_INIT": ike_sa_init(wire_py), "IKE_AUTH (SK)": ike_auth(wire_py)}
    scapy_rt = _scapy_round_trip()

    def codec(w, raw):
        return lambda: w.encode(w.decode(raw))

    times = {}  # (message, impl) -> seconds per decode+encode
    for name, raw in messages.items():
        for label, w in (("c", wire_c), ("py", wire_py)):
            if w is not None:
                assert w.encode(w.decode(raw)) == raw
                times[name, label] = 1 / best_rate(codec(w, raw), seconds)
        if scapy_rt is not None:
            times[name, "scapy"] = 1 / best_rate(lambda raw=raw: scapy_rt(raw), seconds)
    for label in ("c", "py", "scapy"):
        if all((n, label) in times for n in messages):
            times["both", label] = sum(times[n, label] for n in messages)

    rows, figures = [], {}
    for name in list(messages) + ["both"]:
        t = {label: times.get((name, label)) for label in ("c", "py", "scapy")}
        per_s = {k: (1 / v if v else None) for k, v in t.items()}
        vs_py = t["py"] / t["c"] if t["c"] and t["py"] else None
        vs_scapy = t["scapy"] / t["c"] if t["c"] and t["scapy"] else None
        size = len(messages[name]) if name in messages else sum(map(len, messages.values()))
        rows.append([name, size] + [_n(per_s[k]) for k in ("c", "py", "scapy")]
                    + [_x(vs_py), _x(vs_scapy)])
        figures[name] = {"octets": size, "msgs_per_s": per_s,
                         "compiled_vs_pure": vs_py, "compiled_vs_scapy": vs_scapy}

    dispatch = _fast.implementations("dispatch")
    datagram = b"\0\0\0\0" + messages["IKE_AUTH (SK)"]
    d_rate = {k: best_rate(lambda m=m: m.classify(datagram, 4500), seconds)
              for k, m in dispatch.items() if m is not None}
    d_ratio = d_rate["c"] / d_rate["py"] if "c" in d_rate else None
    rows.append(["dispatch.classify", len(datagram), _n(d_rate.get("c")), _n(d_rate["py"]),
                 "-", _x(d_ratio), "-"])
    figures["dispatch.classify"] = {"per_s": d_rate, "compiled_vs_pure": d_ratio}
    figures["goal"] = {"compiled_vs_pure": GOAL_PURE, "compiled_vs_scapy": GOAL_SCAPY}

    write_result("parse", figures, quick)
    return table(
        "wire decode+encode (messages/s; ratios from this run; goal c/py >= 20x, c/scapy >= 50x)",
        ["message", "octets", "compiled/s", "pure/s", "scapy/s", "c/py", "c/scapy"], rows)


def _n(value):
    return "-" if value is None else float(value)


def _x(value):
    return "-" if value is None else f"{value:.1f}x"


if __name__ == "__main__":
    print(run(quick=main_args().quick))
