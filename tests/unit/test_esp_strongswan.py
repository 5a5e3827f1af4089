"""Real ESP-in-UDP (RFC 3948) from strongSwan 5.9.8 (kernel-libipsec): the pings in
tests/data/strongswan/{gcm,cbc}.pcap decrypt with the CHILD_SA keys the initiator logged,
and re-protecting the plaintext with the same sequence number and IV gives the captured
bytes. Both `_fast.esp` implementations.
"""

import re
import struct
from pathlib import Path

import pytest

from pyiked.core.errors import IntegrityError, ReplayError
from tests.helpers import fast_impls

DATA = Path(__file__).parent.parent / "data" / "strongswan"
IMPLS = fast_impls("esp")

# (capture, ESP encr id, integ id)
CAPTURES = [("gcm", 20, 0), ("cbc", 12, 12)]


def logged_key(log, label):
    """The bytes of `label => N bytes @ ...` followed by charon's hex dump lines."""
    lines = log.splitlines()
    for i, line in enumerate(lines):
        m = re.search(re.escape(label) + r" => (\d+) bytes", line)
        if m:
            size, out = int(m.group(1)), b""
            for dump in lines[i + 1:]:
                d = re.match(r".*\]\s+\d+: ((?:[0-9A-F]{2} ){1,16})", dump)
                if not d or len(out) >= size:
                    break
                out += bytes.fromhex(d.group(1))
            assert len(out) == size, label
            return out
    raise AssertionError(f"{label} not in the log")


def child_sa(name):
    log = (DATA / f"{name}.initiator.log").read_text()
    m = re.search(r"CHILD_SA \S+ established with SPIs ([0-9a-f]{8})_i ([0-9a-f]{8})_o", log)
    spi_in, spi_out = int(m.group(1), 16), int(m.group(2), 16)
    keys = {}
    for who in ("initiator", "responder"):
        keys[who] = (logged_key(log, f"encryption {who} key"),
                     logged_key(log, f"integrity {who} key") if "integrity" in log else b"")
    # the initiator sends with the initiator keys to the responder's SPI (RFC 7296 §2.17)
    return {spi_out: keys["initiator"], spi_in: keys["responder"]}


def esp_datagrams(name):
    """UDP payloads to/from port 4500 that are ESP (no non-ESP marker), from the capture."""
    from scapy.all import UDP, rdpcap

    out = []
    for frame in rdpcap(str(DATA / f"{name}.pcap")):
        if UDP in frame and 4500 in (frame[UDP].sport, frame[UDP].dport):
            payload = bytes(frame[UDP].payload)
            if len(payload) > 8 and payload[:4] != b"\0\0\0\0":  # RFC 3948 §2.2
                out.append(payload)
    return out


@pytest.mark.parametrize("impl", [m for _, m in IMPLS], ids=[k for k, _ in IMPLS])
@pytest.mark.parametrize("name,encr_id,integ_id", CAPTURES)
def test_captured_pings_decrypt_and_reencrypt(impl, name, encr_id, integ_id):
    keys = child_sa(name)
    packets = esp_datagrams(name)
    assert len(packets) == 4  # two echo requests, two replies
    inbound = {spi: impl.EspSA(spi, encr_id, ek, integ_id, ik) for spi, (ek, ik) in keys.items()}
    outbound = {spi: impl.EspSA(spi, encr_id, ek, integ_id, ik) for spi, (ek, ik) in keys.items()}
    iv_len = 8 if encr_id == 20 else 16
    seen = set()
    for packet in packets:
        spi, seq = struct.unpack_from(">II", packet)
        next_header, inner = inbound[spi].decap(packet)
        assert next_header == 4  # tunnel mode, IPv4 (RFC 4303 §2.6)
        # an ICMP echo between the protected subnets 10.231.1.0/24 and 10.231.2.0/24
        assert inner[0] == 0x45 and inner[9] == 1 and inner[20] in (0, 8)
        assert {inner[12:15], inner[16:19]} == {bytes([10, 231, 1]), bytes([10, 231, 2])}
        seen.add((inner[20], seq))
        sa = outbound[spi]
        sa.seq = seq - 1
        assert sa.encap(inner, next_header, iv=packet[8:8 + iv_len]) == packet
        with pytest.raises(ReplayError):
            inbound[spi].decap(packet)
    assert seen == {(8, 1), (0, 1), (8, 2), (0, 2)}


@pytest.mark.parametrize("impl", [m for _, m in IMPLS], ids=[k for k, _ in IMPLS])
@pytest.mark.parametrize("name,encr_id,integ_id", CAPTURES)
def test_captured_packet_with_wrong_key_fails(impl, name, encr_id, integ_id):
    keys = child_sa(name)
    packet = esp_datagrams(name)[0]
    spi = struct.unpack_from(">I", packet)[0]
    other = next(k for s, k in keys.items() if s != spi)  # the other direction's keys
    with pytest.raises(IntegrityError):
        impl.EspSA(spi, encr_id, other[0], integ_id, other[1]).decap(packet)
