"""KernelBackend.sa_counters(), what `pyikectl show sa` prints as bytes: the memory backend
has none, XfrmBackend reads the kernel's counters with GETSA (here from a stand-in that
answers like the kernel), per direction."""

import struct

from pyiked.kernel import xfrm
from pyiked.kernel import xfrm_msg as m
from pyiked.kernel.memory import MemoryBackend
from tests import sa_events as ev
from tests.unit.test_xfrm_backend import FakeEvents, FakeNetlink


class CountingNetlink(FakeNetlink):
    """GETSA answers with curlft counters per (daddr, spi), as the kernel's NEWSA reply."""

    def __init__(self, counters):
        super().__init__()
        self.counters = counters  # (dst ip, spi) -> (bytes, packets)

    def request(self, data):
        mtype = struct.unpack_from("=H", data, 4)[0]
        if mtype != m.XFRM_MSG_GETSA or len(data) <= 16:
            return super().request(data)
        query = m.xfrm_usersa_id(data)
        query.decode()
        key = (m.addr_from(query["daddr"], query["family"]), query["spi"])
        if key not in self.counters:
            raise xfrm.XfrmError("XFRM_MSG_GETSA", 3, "no such SA")
        nbytes, packets = self.counters[key]
        reply = m.build(m.xfrm_usersa_info, m.XFRM_MSG_NEWSA,
                        {"id_spi": query["spi"], "family": 2, "curlft_bytes": nbytes,
                         "curlft_packets": packets})
        return [(m.XFRM_MSG_NEWSA, 0, reply)]


def test_memory_backend_keeps_no_counters():
    backend = MemoryBackend()
    backend.install(ev.install())
    assert backend.sa_counters() == {}


def test_xfrm_counters_per_direction():
    event = ev.install("aes128-sha256", child_id=7)
    local, remote = event.local_addr, event.remote_addr
    nl = CountingNetlink({(local, event.inbound.spi): (1500, 10),
                          (remote, event.outbound.spi): (3000, 20)})
    backend = xfrm.XfrmBackend(reqid_range=(100, 199), netlink=nl, event_socket=FakeEvents())
    backend.install(event)
    assert backend.sa_counters() == {7: {"bytes_in": 1500, "bytes_out": 3000,
                                         "packets_in": 10, "packets_out": 20}}


def test_xfrm_counters_skip_an_sa_the_kernel_lost():
    event = ev.install("aes128-sha256", child_id=7)
    other = ev.install("aes128-sha256", child_id=8, reqid=102, spi_in=0xC0000102,
                       spi_out=0xC0000202, ts_local=("10.231.43.0/24",))
    nl = CountingNetlink({(other.local_addr, other.inbound.spi): (1, 1),
                          (other.remote_addr, other.outbound.spi): (2, 2)})
    backend = xfrm.XfrmBackend(reqid_range=(100, 199), netlink=nl, event_socket=FakeEvents())
    backend.install(event)
    backend.install(other)
    assert set(backend.sa_counters()) == {8}
