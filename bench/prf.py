"""prf+ for one IKE SA's key schedule against the raw-HMAC floor (and compiled vs pure).

The schedule is that of an AES-256-GCM-16 / PRF-HMAC-SHA2-256 IKE SA: SKEYSEED = prf(Ni |
Nr, g^ir), then prf+(SKEYSEED, Ni | Nr | SPIi | SPIr) for SK_d, SK_ei, SK_er, SK_pi, SK_pr
(32 + 36 + 36 + 32 + 32 = 168 octets, six SHA-256 blocks; no SK_a for AEAD). The floor is a
tight loop of raw OpenSSL HMAC calls producing the same bytes, in the cheapest form we know
(an HMAC object per SKEYSEED, its keyed state copied per prf+ block: with OpenSSL 3 the
one-shot `hmac.digest` looks the digest up by name at every call and costs ~1.5x more):
the least any Python code can spend. Goal: pyiked's public path (pyiked.core.keys) within 1.3x of the floor.
"""

from __future__ import annotations

import os
from _hashlib import hmac_new

from bench.common import main_args, rate, table, write_result

NONCE_I, NONCE_R = os.urandom(32), os.urandom(32)
SPI_I, SPI_R = os.urandom(8), os.urandom(8)
SHARED = os.urandom(32)
LENGTHS = (32, 0, 0, 36, 36, 32, 32)
PRF_SHA256 = 5


def floor_schedule():
    """SKEYSEED and the 168 key octets with nothing but OpenSSL's HMAC."""
    skeyseed = hmac_new(NONCE_I + NONCE_R, SHARED, "sha256").digest()
    seed = NONCE_I + NONCE_R + SPI_I + SPI_R
    keyed = hmac_new(skeyseed, None, "sha256")
    t = b""
    out = []
    for i in range(1, 7):
        mac = keyed.copy()
        mac.update(t + seed + bytes((i,)))
        t = mac.digest()
        out.append(t)
    return b"".join(out)[:168]


def keys_schedule():
    """The public path the engine calls."""
    from pyiked.core import keys

    skeyseed = keys.skeyseed(PRF_SHA256, NONCE_I, NONCE_R, SHARED)
    return keys.derive_ike_keys(PRF_SHA256, 20, 256, None, skeyseed, NONCE_I, NONCE_R, SPI_I, SPI_R)


def impl_schedule(impl):
    def run():
        skeyseed = impl.prf(PRF_SHA256, NONCE_I + NONCE_R, SHARED)
        return impl.prf_plus_split(PRF_SHA256, skeyseed, NONCE_I + NONCE_R + SPI_I + SPI_R, LENGTHS)

    return run


def paired(paths, seconds, rounds=9):
    """Rates of several paths measured in alternation, so that a slow moment of the shared
    machine hits all of them: per path the best rate, and the median of its per-round
    time ratio to the first path (the floor)."""
    per = seconds / (rounds * len(paths))
    samples = {name: [] for name in paths}
    for _ in range(rounds):
        for name, fn in paths.items():
            samples[name].append(rate(fn, per))
    floor_name = next(iter(paths))
    out = {}
    for name, rates in samples.items():
        ratios = sorted(f / r for f, r in zip(samples[floor_name], rates))
        out[name] = (max(rates), ratios[len(ratios) // 2])
    return out


def run(quick: bool = False) -> str:
    from pyiked import _fast

    seconds = 1.0 if quick else 6.0
    impls = _fast.implementations("prf")
    k = keys_schedule()
    assert k.sk_d + k.sk_ei + k.sk_er + k.sk_pi + k.sk_pr == floor_schedule()  # same bytes

    mode = "compiled" if _fast.EXTENSIONS else "pure"
    paths = {"raw OpenSSL HMAC floor": floor_schedule, f"pyiked.core.keys ({mode})": keys_schedule}
    for name in ("c", "py"):
        if impls[name] is not None:
            paths["_fast.prf compiled" if name == "c" else "_fast.prf pure"] = impl_schedule(impls[name])
    results = paired(paths, seconds)
    rows = [[name, best, 1e6 / best, ratio] for name, (best, ratio) in results.items()]
    figures = {name: {"per_s": best, "x_floor": ratio} for name, (best, ratio) in results.items()}
    keys_ratio = results[f"pyiked.core.keys ({mode})"][1]
    figures["keys_vs_floor"] = keys_ratio
    note = f"pyiked.core.keys is {keys_ratio:.2f}x the floor (goal <= 1.3)"
    if "_fast.prf compiled" in results:
        speedup = results["_fast.prf pure"][1] / results["_fast.prf compiled"][1]
        figures["compiled_speedup_over_pure"] = speedup
        note += f"; compiled _fast.prf {speedup:.2f}x faster than pure"
    write_result("prf", figures, quick)
    return table(
        "prf: SKEYSEED + SK_* of an AES-256-GCM / PRF-SHA256 IKE SA (x floor = time / floor time, median of rounds)",
        ["path", "schedules/s (best)", "us each", "x floor"],
        rows,
    ) + "\n" + note


if __name__ == "__main__":
    print(run(main_args().quick))
