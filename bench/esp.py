"""Userspace ESP: packets/s and MB/s of encap + decap, compiled vs pure, per transform.

One "op" is one packet protected by an outbound EspSA and verified + decrypted by the
inbound one, the whole per-packet path of `_fast.esp`. The floor is the bare AEAD / CBC +
HMAC calls of `cryptography` for the same packet, so the table shows what the ESP framing
(header, IV, padding, replay window, counters) costs on top of the crypto. MB/s counts the
inner packet bytes, once per op.

    python -m bench esp [--quick]
"""

from __future__ import annotations

import os
import sys

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from bench.common import main_args, rate, table, write_result
from pyiked import _fast

# name: (encr id, encr key octets incl. salt, integ id, integ key octets)
SUITES = {
    "AES-256-GCM-16": (20, 36, 0, 0),
    "AES-128-CBC+SHA256": (12, 16, 12, 32),
    "ChaCha20-Poly1305": (28, 36, 0, 0),
}
SIZES = (64, 1400)


def _pair(module, suite):
    encr_id, ek, integ_id, ik = suite
    key, ikey = os.urandom(ek), os.urandom(ik)
    return (module.EspSA(0x1001, encr_id, key, integ_id, ikey, replay_window=1024),
            module.EspSA(0x1001, encr_id, key, integ_id, ikey, replay_window=1024))


def _esp_op(module, suite, inner):
    out, inb = _pair(module, suite)
    encap, decap = out.encap, inb.decap

    def op():
        decap(encap(inner, 4))

    return op


def _floor_op(suite, inner):
    """The crypto calls alone: seal + open of the same plaintext, no ESP framing."""
    encr_id, ek, _, ik = suite
    key = os.urandom(ek)
    nonce, aad = os.urandom(12), os.urandom(8)
    if encr_id == 12:
        ikey = os.urandom(ik)
        mac = hmac.HMAC(ikey, hashes.SHA256())
        aes = algorithms.AES(key)
        enc = Cipher(aes, modes.CBC(bytes(16))).encryptor()
        dec = Cipher(aes, modes.CBC(bytes(16))).decryptor()
        plain = inner + bytes(16 - len(inner) % 16)

        def op():
            ct = enc.update(plain)
            m = mac.copy()
            m.update(ct)
            tag = m.finalize()
            m = mac.copy()
            m.update(ct)
            m.finalize() == tag
            dec.update(ct)

        return op
    aead = ChaCha20Poly1305(key[:32]) if encr_id == 28 else AESGCM(key[:32])

    def op():
        aead.decrypt(nonce, aead.encrypt(nonce, inner, aad), aad)

    return op


def run(quick: bool = False) -> str:
    impls = _fast.implementations("esp")
    seconds = 0.3 if quick else 1.0
    rows, figures = [], {}
    for name, suite in SUITES.items():
        for size in SIZES:
            inner = os.urandom(size)
            floor = rate(_floor_op(suite, inner), seconds)
            pure = rate(_esp_op(impls["py"], suite, inner), seconds)
            comp = rate(_esp_op(impls["c"], suite, inner), seconds) if impls["c"] else None
            key = f"{name}/{size}"
            figures[key] = {
                "pure_pps": pure, "compiled_pps": comp, "crypto_floor_pps": floor,
                "pure_MBps": pure * size / 1e6,
                "compiled_MBps": comp * size / 1e6 if comp else None,
                "compiled_vs_pure": comp / pure if comp else None,
                "compiled_vs_floor": comp / floor if comp else None,
            }
            rows.append([
                name, size, pure, pure * size / 1e6,
                comp if comp else "-", comp * size / 1e6 if comp else "-",
                comp / pure if comp else "-", floor, comp / floor if comp else pure / floor,
            ])
    write_result("esp", figures, quick)
    return table(
        "ESP encap+decap per packet (one core; MB/s of inner bytes)",
        ["transform", "bytes", "pure pkt/s", "pure MB/s", "compiled pkt/s", "compiled MB/s",
         "c/py", "crypto floor pkt/s", "vs floor"],
        rows,
    )


if __name__ == "__main__":
    print(run(main_args().quick))
    sys.exit(0)
