"""Packet capture with tshark in a namespace, and readers for the pcap it writes.

`Capture(topo, "b").start()` captures on b's veth end (capture filter "udp or esp" by
default) to a pcap in the work dir; `stop()` ends it, then `fields()`, `count()` and the
IKE/ESP helpers read the file with `tshark -r`. Wireshark decodes UDP 4500 as
ESP-in-UDP (RFC 3948) when the first four bytes are a non-zero SPI, and as IKE after the
non-ESP marker.

Draining: libpcap hands packets to dumpcap in blocks, up to its 250 ms read timeout
late, and a stopped dumpcap drops what it has not read yet. So before stopping, the
capture sends a sentinel datagram (UDP to port 9 of the peer, payload SENTINEL) across the
link and waits until tshark has printed it (tshark runs with -P -l): every packet sent
before it is then in the file. The readers leave sentinel frames out.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from .topology import Topology
from .util import HarnessError, Proc, need_tool, run, tail

# IKEv2 exchange types (RFC 7296 §3.1, IANA): numbers as tshark prints them.
IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA, INFORMATIONAL = 34, 35, 36, 37
IKE_INTERMEDIATE = 43
SKF = 53  # Encrypted and Authenticated Fragment payload (RFC 7383 §2.5)

SENTINEL = b"pyk-capture-sentinel"
SENTINEL_PORT = 9  # discard
_NOT_SENTINEL = f'!(frame contains "{SENTINEL.decode()}")'
# how long dumpcap may hold packets when no sentinel can be sent (libpcap's 250 ms
# read timeout plus dumpcap's 500 ms update interval)
_SETTLE = 1.0


class Capture:
    """tshark on `iface` (default: node's veth end) in node's namespace.

    filter is a capture (BPF) filter; "" captures everything. The sentinel needs the
    veth (or "any"); on another iface, stop() waits a fixed 1 s instead.
    """

    def __init__(self, topo: Topology, node: str, workdir: Path, filter: str = "udp or esp",
                 iface: str | None = None, name: str | None = None):
        self.topo = topo
        self.node = topo.node(node)
        self.iface = iface or topo.veth(self.node)
        self.filter = filter
        self.sentinel = self.iface in (topo.veth(self.node), "any")
        self.name = name or f"capture-{self.node}"
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pcap = self.dir / f"{self.name}.pcap"
        self.log_path = self.dir / f"{self.name}.log"
        self.proc: Proc | None = None
        self._packets: list[dict] | None = None

    def __repr__(self):
        return f"<Capture {self.iface}@{self.topo.ns(self.node)} -> {self.pcap}>"

    def start(self, timeout: float = 15.0) -> Capture:
        """Start tshark and wait until dumpcap is capturing."""
        if self.pcap.exists():
            self.pcap.unlink()
        self._packets = None
        bpf = self.filter
        if self.sentinel and bpf:
            bpf = f"({bpf}) or (udp dst port {SENTINEL_PORT})"
        argv = [need_tool("tshark"), "-n", "-i", self.iface, "-w", str(self.pcap),
                "-P", "-l", "-T", "fields", "-e", "frame.number", "-e", "data.data"]
        if bpf:
            argv += ["-f", bpf]
        self.proc = self.topo.popen(self.node, argv, self.log_path, name=self.name)
        # tshark prints "Capturing on" before it even starts dumpcap; "Capture started"
        # comes once dumpcap has opened the interface and set the filter
        self.proc.wait_for_log(r"Capture started", timeout)
        return self

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until everything sent so far is in the pcap (see the module docstring)."""
        if not self.sentinel:
            import time

            time.sleep(_SETTLE)
            return
        peer = self.topo.addr(self.topo.peer(self.node))
        code = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
                f"s.sendto({SENTINEL!r}, ({peer!r}, {SENTINEL_PORT}))")
        self.topo.run(self.node, [sys.executable, "-c", code])
        self.proc.wait_for_log(SENTINEL.hex(), timeout)

    def stop(self, drain: bool = True) -> Path:
        """Drain (unless told not to), stop tshark (SIGINT: it closes the pcap properly),
        return the pcap path."""
        if self.proc is None:
            return self.pcap
        if drain and self.proc.running:
            self.drain()
        self.proc.stop(timeout=10, sig=signal.SIGINT)
        self.topo.forget(self.proc)
        self.proc = None
        if not self.pcap.exists():
            raise HarnessError(f"{self.name}: no pcap written:\n{tail(self.log_path)}")
        return self.pcap

    def __enter__(self):
        return self.start() if self.proc is None else self

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------------ reading
    def _read(self, args, timeout: float = 60.0) -> str:
        if self.proc is not None:
            raise HarnessError(f"{self.name}: stop() the capture before reading it")
        env = {**os.environ, "WIRESHARK_CONFIG_DIR": str(self.dir / "wireshark-empty")}
        cp = run([need_tool("tshark"), "-n", "-r", str(self.pcap), *args], timeout=timeout,
                 env=env)
        return cp.stdout

    def fields(self, *fields: str, display_filter: str | None = None,
               decode_as: tuple[str, ...] = ()) -> list[list[str]]:
        """One row per packet with the given tshark fields (a multi-occurrence field is
        comma-joined in its cell); e.g. fields("frame.number", "isakmp.exchangetype")."""
        args = ["-T", "fields", "-E", "separator=\t", "-E", "occurrence=a",
                "-E", "aggregator=,"]
        for f in fields:
            args += ["-e", f]
        args += ["-Y", f"({display_filter}) && {_NOT_SENTINEL}" if display_filter
                 else _NOT_SENTINEL]
        for d in decode_as:
            args += ["-d", d]
        out = self._read(args)
        return [line.split("\t") for line in out.splitlines()]

    def count(self, display_filter: str | None = None) -> int:
        """Number of packets matching a Wireshark display filter (all if None; the
        sentinel is never counted)."""
        return len(self.fields("frame.number", display_filter=display_filter))

    def packets(self) -> list[dict]:
        """Every captured packet (sentinels left out) as a dict of PACKET_FIELDS, parsed:
        ints for numbers, bools for flags, None when absent. Read once, then cached."""
        if self._packets is None:
            keys = list(PACKET_FIELDS)
            rows = self.fields(*PACKET_FIELDS.values())
            self._packets = []
            for r in rows:
                r += [""] * (len(keys) - len(r))
                self._packets.append({k: _CONVERT.get(k, _text)(v) for k, v in zip(keys, r)})
        return self._packets

    def esp_packets(self) -> list[dict]:
        """ESP packets (encapsulated in UDP or not)."""
        return [p for p in self.packets() if p["esp_spi"] is not None]

    def esp_in_udp(self) -> int:
        """Number of ESP-in-UDP packets (RFC 3948: a UDP datagram carrying ESP)."""
        return sum(1 for p in self.esp_packets() if p["dport"] is not None)

    def plain_esp(self) -> int:
        """Number of ESP packets directly over IP (protocol 50)."""
        return sum(1 for p in self.esp_packets() if p["ip_proto"] == 50)

    def esp_spis(self) -> set[int]:
        """The distinct ESP SPIs seen."""
        return {p["esp_spi"] for p in self.esp_packets()}

    def ike_messages(self) -> list[dict]:
        """IKE messages (packets with an IKE header), in capture order. Keys: see
        PACKET_FIELDS; exchange is the number (34 IKE_SA_INIT ... 37 INFORMATIONAL),
        first_payload the header's Next Payload (53 for an SKF fragment)."""
        return [p for p in self.packets() if p["exchange"] is not None]

    def exchanges(self) -> list[tuple[int, bool]]:
        """(exchange type, is response) for every IKE message, in capture order."""
        return [(m["exchange"], m["response"]) for m in self.ike_messages()]

    def skf_fragments(self) -> int:
        """IKE messages carried as SKF fragments (RFC 7383): first payload type 53."""
        return sum(1 for m in self.ike_messages() if m["first_payload"] == SKF)


# name -> tshark field for Capture.packets(); a field seen several times in one packet
# (nested payloads) keeps its first occurrence.
PACKET_FIELDS = {
    "frame": "frame.number",
    "time": "frame.time_relative",
    "length": "frame.len",
    "src": "ip.src",
    "dst": "ip.dst",
    "ip_proto": "ip.proto",
    "sport": "udp.srcport",
    "dport": "udp.dstport",
    "esp_spi": "esp.spi",
    "esp_seq": "esp.sequence",
    "non_esp_marker": "udpencap.non_esp_marker",
    "keepalive": "udpencap.nat_keepalive",
    "spi_i": "isakmp.ispi",
    "spi_r": "isakmp.rspi",
    "first_payload": "isakmp.nextpayload",
    "exchange": "isakmp.exchangetype",
    "response": "isakmp.flag_r",
    "initiator": "isakmp.flag_i",
    "msgid": "isakmp.messageid",
    "frag_number": "isakmp.frag.number",
    "frag_total": "isakmp.frag.total",
    "notify": "isakmp.notify.msgtype",
}


def _first(cell: str) -> str:
    return cell.split(",")[0].strip()


def _text(cell: str):
    return _first(cell) or None


def _int(cell: str):
    cell = _first(cell)
    if not cell:
        return None
    return int(cell, 16) if cell.startswith("0x") else int(cell)


def _all_ints(cell: str) -> list[int]:
    return [int(c, 16) if c.startswith("0x") else int(c) for c in cell.split(",") if c]


def _flag(cell: str):
    cell = _first(cell)
    return None if not cell else cell in ("1", "True", "true")


_CONVERT = {
    "frame": _int, "time": lambda c: float(_first(c) or 0), "length": _int,
    "ip_proto": _int, "sport": _int, "dport": _int, "esp_spi": _int, "esp_seq": _int,
    "non_esp_marker": lambda c: bool(_first(c)), "keepalive": lambda c: bool(_first(c)),
    "first_payload": _int, "exchange": _int, "response": _flag, "initiator": _flag,
    "msgid": _int, "frag_number": _int, "frag_total": _int, "notify": _all_ints,
}
