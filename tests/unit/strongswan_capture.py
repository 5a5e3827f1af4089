"""Read the real strongSwan captures in tests/data/strongswan (test helper, no pyiked code).

The pcaps hold IKE_SA_INIT in clear (nonces, SPIs, KE data) and the encrypted IKE_AUTH
exchange on port 4500; the charon logs (ike=4 chd=4) hold the secrets both sides derived.
Parsing here uses struct only, so the tests never depend on pyiked's wire codec.
"""

import re
import struct
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "strongswan"
PSK = b"pk-test-psk-0123456789"

_DUMP_HEAD = re.compile(r"\] (.+?) => (\d+) bytes @")
_DUMP_LINE = re.compile(r"\]\s+(\d+): ((?:[0-9A-F]{2} )+)")


def log_values(name, side):
    """{label: [bytes, ...]} for every hex dump in `<name>.<side>.log`, in log order."""
    values = {}
    lines = (DATA / f"{name}.{side}.log").read_text().splitlines()
    i = 0
    while i < len(lines):
        m = _DUMP_HEAD.search(lines[i])
        i += 1
        if not m:
            continue
        label, size = m.group(1), int(m.group(2))
        out = bytearray()
        while len(out) < size and i < len(lines):
            d = _DUMP_LINE.search(lines[i])
            if not d:
                break
            out += bytes.fromhex(d.group(2).replace(" ", ""))
            i += 1
        values.setdefault(label, []).append(bytes(out))
    return values


def ike_messages(name):
    """The IKE messages of `<name>.pcap` in capture order, as raw bytes."""
    from scapy.all import UDP, rdpcap

    out = []
    for pkt in rdpcap(str(DATA / f"{name}.pcap")):
        if UDP not in pkt:
            continue
        udp = pkt[UDP]
        payload = bytes(udp.payload)
        if 4500 in (udp.sport, udp.dport):
            if payload[:4] != b"\x00\x00\x00\x00":
                continue  # ESP in UDP
            payload = payload[4:]  # RFC 3948 §2.2 non-ESP marker
        elif 500 not in (udp.sport, udp.dport):
            continue
        if len(payload) < 28:
            continue  # NAT keepalive
        out.append(payload)
    return out


def header(msg):
    spi_i, spi_r, np, ver, exch, flags, mid, length = struct.unpack("!8s8sBBBBII", msg[:28])
    return {"spi_i": spi_i, "spi_r": spi_r, "next": np, "exchange": exch, "flags": flags,
            "message_id": mid, "length": length}


def payloads(msg, start=28, first=None):
    """[(type, offset, body)] walking the generic payload headers (RFC 7296 §3.2)."""
    np = msg[16] if first is None else first
    pos = start
    out = []
    while np and pos + 4 <= len(msg):
        nxt, _crit, plen = struct.unpack("!BBH", msg[pos:pos + 4])
        out.append((np, pos, msg[pos + 4:pos + plen]))
        if np in (46, 53):
            break  # SK / SKF: the rest is encrypted
        np, pos = nxt, pos + plen
    return out


def exchange(name):
    """The facts of one capture: SPIs, nonces, KE data, the two IKE_SA_INIT and the two
    IKE_AUTH messages."""
    msgs = ike_messages(name)
    init_req = next(m for m in msgs if header(m)["exchange"] == 34 and not header(m)["flags"] & 0x20)
    init_resp = next(m for m in msgs if header(m)["exchange"] == 34 and header(m)["flags"] & 0x20)
    auth_req = next(m for m in msgs if header(m)["exchange"] == 35 and not header(m)["flags"] & 0x20)
    auth_resp = next(m for m in msgs if header(m)["exchange"] == 35 and header(m)["flags"] & 0x20)

    def body(msg, ptype):
        return next(b for t, _, b in payloads(msg) if t == ptype)

    return {
        "spi_i": header(init_resp)["spi_i"],
        "spi_r": header(init_resp)["spi_r"],
        "nonce_i": body(init_req, 40),
        "nonce_r": body(init_resp, 40),
        "ke_i": body(init_req, 34),
        "ke_r": body(init_resp, 34),
        "init_req": init_req,
        "init_resp": init_resp,
        "auth_req": auth_req,
        "auth_resp": auth_resp,
        "informational": [m for m in msgs if header(m)["exchange"] == 37],
    }
