"""Test data for the wire/dispatch tests: the real strongSwan captures, their SK bodies
decrypted with the keys from the charon logs, and hypothesis strategies for messages.

The decryption here is test scaffolding (cryptography's AEAD/CBC), so the inner payload
chains strongSwan really sent (IDi, AUTH, SA for ESP, TSi/TSr, Delete, ...) can be fed to
`decode_payloads`. It is not the project's SK implementation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import strategies as st

DATA = Path(__file__).resolve().parent.parent / "data" / "strongswan"
CAPTURES = ("gcm", "cbc")


@dataclass(frozen=True)
class Datagram:
    capture: str
    index: int
    src: str
    sport: int
    dport: int
    payload: bytes  # the UDP payload as received


def datagrams(capture):
    from scapy.all import IP, UDP, rdpcap

    out = []
    for i, pkt in enumerate(rdpcap(str(DATA / f"{capture}.pcap"))):
        udp = pkt[UDP]
        out.append(Datagram(capture, i, pkt[IP].src, udp.sport, udp.dport, bytes(udp.payload)))
    return out


def ike_messages(capture):
    """(datagram, IKE message bytes) for every IKE datagram (marker stripped on 4500)."""
    out = []
    for d in datagrams(capture):
        if d.dport == 500:
            out.append((d, d.payload))
        elif d.payload[:4] == b"\0\0\0\0":
            out.append((d, d.payload[4:]))
    return out


def _log_secret(log, name):
    """The hex dump following `<name> secret => N bytes` in a charon log."""
    lines = (DATA / log).read_text().splitlines()
    for i, line in enumerate(lines):
        m = re.search(rf"\b{name} secret => (\d+) bytes", line)
        if not m:
            continue
        size, octets = int(m.group(1)), b""
        for dump in lines[i + 1:]:
            h = re.match(r".*\]\s+\d+: ((?:[0-9A-F]{2} ){1,16})", dump)
            if not h:
                break
            octets += bytes.fromhex(h.group(1))
        assert len(octets) == size, (name, len(octets), size)
        return octets
    raise KeyError(name)


def sk_keys(capture):
    log = f"{capture}.initiator.log"
    return {name: _log_secret(log, name) for name in ("Sk_ei", "Sk_er")}


def decrypt_sk(capture, message: bytes, sk_offset: int, from_initiator: bool) -> bytes:
    """The inner payload chain of an SK payload (padding and Pad Length removed)."""
    keys = sk_keys(capture)
    key = keys["Sk_ei" if from_initiator else "Sk_er"]
    body = message[sk_offset + 4:]
    if capture == "gcm":
        # RFC 5282 §3-5: 8-octet IV, 16-octet ICV, salt = last 4 key octets, AAD = the
        # message from the IKE header through the SK payload's generic header
        iv, sealed = body[:8], body[8:]
        plain = AESGCM(key[:-4]).decrypt(key[-4:] + iv, sealed, message[:sk_offset + 4])
    else:
        # RFC 7296 §3.14 with AES-CBC (16-octet IV) and HMAC-SHA2-256-128 (16-octet ICV)
        iv, ciphertext = body[:16], body[16:-16]
        dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        plain = dec.update(ciphertext) + dec.finalize()
    pad = plain[-1]
    return plain[:-1 - pad]


# ---------------------------------------------------------------- hypothesis strategies

KNOWN_TYPES = frozenset(range(33, 49)) | {53}
UNKNOWN_TYPES = [t for t in range(1, 256) if t not in KNOWN_TYPES]


def _octets(lo=0, hi=48):
    return st.binary(min_size=lo, max_size=hi)


def _u(bits):
    return st.integers(0, (1 << bits) - 1)


def payload_strategies(w):
    """{name: strategy} of every payload class of wire module `w`, canonical values only
    (what decode gives back: RESERVED zero, Protocol ID 0 with an empty Notify SPI, ...)."""
    attr = st.one_of(
        st.tuples(_u(15).filter(lambda t: t != 14), _u(16)),
        st.tuples(_u(15).filter(lambda t: t != 14), _octets(0, 12)),
    )
    transform = st.builds(
        w.Transform, _u(8), _u(16), st.none() | _u(16), st.lists(attr, max_size=3))

    @st.composite
    def proposal(draw):
        protocol_id = draw(st.integers(0, 255))
        if protocol_id == 1:
            spi = draw(st.sampled_from([b"", b"\x01" * 8]) | _octets(8, 8))
        elif protocol_id in (2, 3):
            spi = draw(_octets(4, 4))
        else:
            spi = draw(_octets(0, 16))
        return w.Proposal(draw(st.integers(1, 255)), protocol_id, spi,
                          draw(st.lists(transform, max_size=6)))

    @st.composite
    def notify(draw):
        spi = draw(_octets(0, 16))
        protocol_id = draw(st.integers(0, 255)) if spi else 0
        return w.Notify(draw(_u(16)), draw(_octets(0, 40)), protocol_id, spi)

    @st.composite
    def delete(draw):
        protocol_id = draw(st.integers(0, 255))
        if protocol_id == 1:
            return w.Delete(1, [])
        size = 4 if protocol_id in (2, 3) else draw(st.integers(1, 8))
        return w.Delete(protocol_id, draw(st.lists(_octets(size, size), max_size=4)))

    @st.composite
    def selector(draw):
        ts_type = draw(st.sampled_from([7, 8, 9, 10, 200]))
        if ts_type in (7, 8):
            size = 4 if ts_type == 7 else 16
            return w.TrafficSelector(ts_type, draw(_u(8)), draw(_u(16)), draw(_u(16)),
                                     draw(_octets(size, size)), draw(_octets(size, size)))
        return w.RawSelector(ts_type, draw(_octets(0, 20)))

    @st.composite
    def skf(draw):
        total = draw(st.integers(1, 0xFFFF))
        number = draw(st.integers(1, total))
        return w.SKF(draw(_u(8)), number, total, draw(_octets(0, 64)))

    return {
        "SA": st.builds(w.SA, st.lists(proposal(), min_size=1, max_size=4)),
        "KE": st.builds(w.KE, _u(16), _octets(0, 64)),
        "IDi": st.builds(w.IDi, _u(8), _octets()),
        "IDr": st.builds(w.IDr, _u(8), _octets()),
        "CERT": st.builds(w.CERT, _u(8), _octets()),
        "CERTREQ": st.builds(w.CERTREQ, _u(8), _octets()),
        "AUTH": st.builds(w.AUTH, _u(8), _octets()),
        "Nonce": st.builds(w.Nonce, _octets(16, 256)),
        "Notify": notify(),
        "Delete": delete(),
        "VendorID": st.builds(w.VendorID, _octets()),
        "TSi": st.builds(w.TSi, st.lists(selector(), max_size=4)),
        "TSr": st.builds(w.TSr, st.lists(selector(), max_size=4)),
        "CP": st.builds(w.CP, _u(8), st.lists(st.tuples(_u(15), _octets(0, 16)), max_size=4)),
        "EAP": st.builds(w.EAP, _octets(4, 40)),
        "Unknown": st.builds(w.Unknown, st.sampled_from(UNKNOWN_TYPES), st.just(False), _octets()),
        "SK": st.builds(w.SK, _u(8), _octets(0, 64)),
        "SKF": skf(),
    }


def chain_strategy(w, max_size=8):
    """An inner chain: any payloads but SK/SKF."""
    inner = [s for name, s in payload_strategies(w).items() if name not in ("SK", "SKF")]
    return st.lists(st.one_of(inner), max_size=max_size)


@st.composite
def message_strategy(draw, w):
    """A canonical message: header fields as decode keeps them, an optional SK/SKF last."""
    strategies = payload_strategies(w)
    payloads = draw(chain_strategy(w))
    tail = draw(st.sampled_from([None, "SK", "SKF"]))
    if tail:
        payloads.append(draw(strategies[tail]))
    spi_i = draw(_octets(8, 8).filter(any))
    return w.Message(spi_i, draw(_octets(8, 8)), draw(_u(8)), draw(st.sampled_from([0, 8, 32, 40])),
                     draw(_u(32)), payloads, draw(st.integers(0x20, 0x2F)))


def snapshot(obj):
    """A value comparable across the two twins: class names and fields, nested."""
    if isinstance(obj, list):
        return [snapshot(o) for o in obj]
    if isinstance(obj, tuple):
        return tuple(snapshot(o) for o in obj)
    fields = getattr(type(obj), "_fields", None)
    if fields is None:
        return obj
    extra = ("offset",) if type(obj).__name__ in ("SK", "SKF") else ()
    return (type(obj).__name__,) + tuple(snapshot(getattr(obj, f)) for f in fields + extra)


def outcome(fn, *args):
    """fn(*args) as ("ok", snapshot) or ("error", the IkeError); anything else propagates."""
    from pyiked.core.errors import IkeError

    try:
        return ("ok", snapshot(fn(*args)))
    except IkeError as exc:
        return ("error", exc)
