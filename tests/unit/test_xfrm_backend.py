"""XfrmBackend's bookkeeping against a recording stand-in for the netlink socket: which
requests go out in which order, rollback on failure, policy ownership (traps, rekeys,
duplicates), NAT updates, notice filtering, cleanup and decouple."""

import errno
import ipaddress
import struct

import pytest

from pyiked.core.events import ChildSAUpdate, Encapsulation, KernelAcquire, KernelExpire
from pyiked.kernel import xfrm
from pyiked.kernel import xfrm_msg as m
from pyiked.kernel.base import KernelError
from tests import sa_events as ev
from tests.unit.test_xfrm_msg import acquire_msg, expire_msg

NAMES = {v: k for k, v in vars(m).items() if k.startswith("XFRM_MSG_")}


class FakeNetlink:
    """Answers like the kernel would, logs (type name, decoded message) per request."""

    def __init__(self):
        self.log = []
        self.fail = {}  # type name -> errno, once
        self.dumps = {}  # type name -> [(type, bytes)]
        self._seq = 0
        self._spi = 0xC0010000

    def next_seq(self):
        self._seq += 1
        return self._seq

    def request(self, data):
        mtype = struct.unpack_from("=H", data, 4)[0]
        name = NAMES[mtype]
        cls = {m.XFRM_MSG_NEWSA: m.xfrm_usersa_info, m.XFRM_MSG_UPDSA: m.xfrm_usersa_info,
               m.XFRM_MSG_DELSA: m.xfrm_usersa_id, m.XFRM_MSG_GETSA: m.xfrm_usersa_id,
               m.XFRM_MSG_NEWPOLICY: m.xfrm_userpolicy_info, m.XFRM_MSG_UPDPOLICY: m.xfrm_userpolicy_info,
               m.XFRM_MSG_DELPOLICY: m.xfrm_userpolicy_id, m.XFRM_MSG_ALLOCSPI: m.xfrm_userspi_info}.get(mtype)
        msg = None
        if cls and len(data) > 16:
            msg = cls(data)
            msg.decode()
        self.log.append((name, msg))
        if name in self.fail:
            code = self.fail.pop(name)
            raise xfrm.XfrmError(name, code, "fake refusal")
        if name == "XFRM_MSG_ALLOCSPI":
            self._spi += 1
            return [(m.XFRM_MSG_NEWSA, 0, m.build(m.xfrm_usersa_info, m.XFRM_MSG_NEWSA,
                                                  {"id_spi": self._spi, "family": 2}))]
        if name in ("XFRM_MSG_GETPOLICY", "XFRM_MSG_GETSA") and msg is None:
            return [(t, 2, d) for t, d in self.dumps.get(name, [])]
        return []

    def names(self):
        return [n.replace("XFRM_MSG_", "") for n, _ in self.log]

    def clear(self):
        self.log.clear()

    def fileno(self):
        return -1

    def close(self):
        pass


class FakeEvents:
    def __init__(self):
        self.queue = []
        self.sock = self

    def recv(self, size):
        if not self.queue:
            raise BlockingIOError
        return self.queue.pop(0)

    def fileno(self):
        return 99

    def close(self):
        pass


@pytest.fixture
def kernel():
    nl, events = FakeNetlink(), FakeEvents()
    backend = xfrm.XfrmBackend(reqid_range=(100, 199), netlink=nl, event_socket=events)
    nl.clear()
    return backend, nl, events


def test_install_rekey_remove_sequence(kernel):
    backend, nl, _ = kernel
    event = ev.install("aes256gcm16", encap=Encapsulation(4500, 4500))
    spi = backend.allocate_spi(event.protocol, event.remote_addr, event.local_addr)
    event = ev.install("aes256gcm16", spi_in=spi, encap=Encapsulation(4500, 4500))
    backend.install(event)
    # the allocated inbound SPI is filled in place, the outbound SA is new; then policies
    assert nl.names() == ["ALLOCSPI", "UPDSA", "NEWSA", "NEWPOLICY", "NEWPOLICY", "NEWPOLICY"]
    upd = nl.log[1][1]
    assert upd["id_spi"] == spi and upd.get_attr("XFRMA_ENCAP")["encap_dport"] == 4500
    assert sorted(msg["dir"] for n, msg in nl.log if n == "XFRM_MSG_NEWPOLICY") == [0, 1, 2]
    nl.clear()
    rekeyed = ev.install("aes256gcm16", child_id=2, spi_in=0xC0000301, spi_out=0xC0000401,
                         rekey_of=1)
    backend.install(rekeyed)
    assert nl.names() == ["NEWSA", "NEWSA"]  # the flow's policies stay
    nl.clear()
    backend.remove(ev.remove(event, remove_policies=False))
    assert nl.names() == ["DELSA", "DELSA"]
    assert {msg["spi"] for _, msg in nl.log} == {spi, event.outbound.spi}
    nl.clear()
    backend.remove(ev.remove(rekeyed))
    assert nl.names() == ["DELPOLICY"] * 3 + ["DELSA", "DELSA"]


def test_failed_install_rolls_back_and_names_the_cause(kernel):
    backend, nl, _ = kernel
    nl.fail["XFRM_MSG_NEWSA"] = errno.ENOSYS
    nl.fail["XFRM_MSG_NEWSA"] = errno.ENOSYS
    event = ev.install("chacha20poly1305")
    # first NEWSA (inbound) fails: nothing to roll back
    with pytest.raises(KernelError, match=r"kernel lacks ESP \(CONFIG_INET_ESP\)") as info:
        backend.install(event)
    assert info.value.errno == errno.ENOSYS
    assert "rfc7539esp(chacha20,poly1305)" in str(info.value)
    assert "CONFIG_CRYPTO_CHACHA20POLY1305" in str(info.value)
    assert nl.names() == ["NEWSA"]
    nl.clear()
    # outbound fails after inbound went in: the inbound SA is deleted again
    calls = {"n": 0}
    original = nl.request

    def second_newsa_fails(data):
        if struct.unpack_from("=H", data, 4)[0] == m.XFRM_MSG_NEWSA:
            calls["n"] += 1
            if calls["n"] == 2:
                nl.log.append(("XFRM_MSG_NEWSA", None))
                raise xfrm.XfrmError("x", errno.EPROTONOSUPPORT, "Requested type not found")
        return original(data)

    nl.request = second_newsa_fails
    with pytest.raises(KernelError, match="kernel lacks ESP"):
        backend.install(event)
    assert nl.names() == ["NEWSA", "NEWSA", "DELSA"]
    assert backend._sas == {} and backend._policies == {}


def test_failed_policy_rolls_back_policies_and_sas(kernel):
    backend, nl, _ = kernel
    original = nl.request
    count = {"n": 0}

    def third_policy_fails(data):
        if struct.unpack_from("=H", data, 4)[0] == m.XFRM_MSG_NEWPOLICY:
            count["n"] += 1
            if count["n"] == 3:
                raise xfrm.XfrmError("x", errno.EINVAL, "")
        return original(data)

    nl.request = third_policy_fails
    with pytest.raises(KernelError):
        backend.install(ev.install())
    assert nl.names() == ["NEWSA", "NEWSA", "NEWPOLICY", "NEWPOLICY", "DELPOLICY", "DELPOLICY",
                          "DELSA", "DELSA"]
    assert backend._policies == {} and backend._flows == {}


def test_trap_then_child_then_removals(kernel):
    backend, nl, _ = kernel
    event = ev.install()
    backend.install_trap(event.reqid, event.ts_local, event.ts_remote, event.local_addr, event.remote_addr)
    assert nl.names() == ["NEWPOLICY"] * 3
    nl.clear()
    backend.install(event)  # the same policies: nothing to change
    assert nl.names() == ["NEWSA", "NEWSA"]
    nl.clear()
    backend.remove(ev.remove(event))  # the trap still owns the policies
    assert nl.names() == ["DELSA", "DELSA"]
    nl.clear()
    backend.remove_trap(event.reqid)
    assert nl.names() == ["DELPOLICY"] * 3


def test_two_children_with_equal_selectors(kernel):
    backend, nl, _ = kernel
    first = ev.install(reqid=101)
    second = ev.install(child_id=2, reqid=102, spi_in=0xC0000501, spi_out=0xC0000601)
    backend.install(first)
    nl.clear()
    backend.install(second)  # a duplicate CHILD_SA: its reqid takes over the policies
    assert nl.names() == ["NEWSA", "NEWSA", "UPDPOLICY", "UPDPOLICY", "UPDPOLICY"]
    nl.clear()
    backend.remove(ev.remove(second))  # back to the first one's templates
    assert nl.names() == ["UPDPOLICY"] * 3 + ["DELSA", "DELSA"]
    assert {msg.get_attr("XFRMA_TMPL")["templates"][0]["reqid"] for _, msg in nl.log[:3]} == {101}
    nl.clear()
    backend.remove(ev.remove(first))
    assert nl.names() == ["DELPOLICY"] * 3 + ["DELSA", "DELSA"]


def test_reqid_outside_the_range_is_refused(kernel):
    backend, nl, _ = kernel
    with pytest.raises(KernelError, match="outside"):
        backend.install(ev.install(reqid=500))
    assert nl.log == []


def test_nat_port_change_updates_in_place(kernel):
    backend, nl, _ = kernel
    event = ev.install(encap=Encapsulation(4500, 4500))
    backend.install(event)
    nl.clear()
    backend.update(ChildSAUpdate(event.ike_sa, event.child_id, event.local_addr, event.remote_addr,
                                 Encapsulation(4500, 31000)))
    assert nl.names() == ["UPDSA", "UPDSA"]
    encaps = [msg.get_attr("XFRMA_ENCAP") for _, msg in nl.log]
    assert (encaps[0]["encap_sport"], encaps[0]["encap_dport"]) == (31000, 4500)  # inbound
    assert (encaps[1]["encap_sport"], encaps[1]["encap_dport"]) == (4500, 31000)


def test_peer_address_change_moves_sas_and_templates(kernel):
    backend, nl, _ = kernel
    event = ev.install(encap=Encapsulation(4500, 4500))
    backend.install(event)
    nl.clear()
    new_remote = ipaddress.ip_address("10.231.40.9")
    backend.update(ChildSAUpdate(event.ike_sa, event.child_id, event.local_addr, new_remote,
                                 Encapsulation(4500, 4500)))
    assert nl.names() == ["DELSA", "NEWSA", "DELSA", "NEWSA", "UPDPOLICY", "UPDPOLICY", "UPDPOLICY"]
    out_sa = nl.log[3][1]
    assert m.addr_from(out_sa["id_daddr"], 2) == new_remote
    for _, pol in nl.log[4:]:
        tmpl = pol.get_attr("XFRMA_TMPL")["templates"][0]
        ends = {m.addr_from(tmpl["saddr"], 2), m.addr_from(tmpl["id_daddr"], 2)}
        assert new_remote in ends
    nl.clear()
    backend.remove(ev.remove(event))  # deletes at the new address
    dels = [msg for n, msg in nl.log if n == "XFRM_MSG_DELSA"]
    assert m.addr_from(dels[0]["daddr"], 2) == new_remote


def test_notices_are_filtered_to_ours(kernel):
    backend, nl, events = kernel
    event = ev.install()
    backend.install(event)
    spi = backend.allocate_spi(event.protocol, event.remote_addr, event.local_addr)
    events.queue += [
        expire_msg(event.inbound.spi, "10.231.40.1", False),  # ours: soft -> rekey
        expire_msg(event.outbound.spi, "10.231.40.2", True),  # ours: hard -> delete
        expire_msg(spi, "10.231.40.1", True, reqid=0),  # an unused ALLOCSPI timing out
        expire_msg(0, "10.231.40.2", True),  # the larval SA of an ACQUIRE
        expire_msg(0x5555, "10.231.40.1", True, reqid=7),  # another daemon's
        acquire_msg(101, "10.231.41.1", "10.231.42.1") + acquire_msg(300, "10.0.0.1", "10.0.0.2"),
        b"\x10\x00\x00\x00\x18\x00\x00\x00" + bytes(8),  # a truncated EXPIRE
    ]
    notices = backend.notices()
    assert notices == [
        KernelExpire(3, event.inbound.spi, ipaddress.ip_address("10.231.40.1"), False),
        KernelExpire(3, event.outbound.spi, ipaddress.ip_address("10.231.40.2"), True),
        KernelAcquire(101, ev.TS.host("10.231.41.1", 17), ev.TS.host("10.231.42.1", 17)),
    ]
    assert backend.notices() == []
    assert backend.fileno() == 99


def test_cleanup_removes_only_our_reqids():
    nl, events = FakeNetlink(), FakeEvents()
    def pol(reqid, net):
        return m.build(m.xfrm_userpolicy_info, m.XFRM_MSG_NEWPOLICY, {
            "sel_saddr": m.addr_bytes(net), "sel_prefixlen_s": 24, "sel_family": 2, "dir": 1},
            [("XFRMA_TMPL", {"templates": [{"reqid": reqid, "family": 2}]})], flags=2)
    def sa(reqid, spi):
        return m.build(m.xfrm_usersa_info, m.XFRM_MSG_NEWSA, {
            "id_daddr": m.addr_bytes("10.231.40.1"), "id_spi": spi, "id_proto": 50,
            "family": 2, "reqid": reqid}, flags=2)
    nl.dumps["XFRM_MSG_GETPOLICY"] = [(m.XFRM_MSG_NEWPOLICY, pol(150, "10.1.0.0")),
                                      (m.XFRM_MSG_NEWPOLICY, pol(300, "10.2.0.0"))]
    nl.dumps["XFRM_MSG_GETSA"] = [(m.XFRM_MSG_NEWSA, sa(150, 0x1111)), (m.XFRM_MSG_NEWSA, sa(30, 0x2222))]
    xfrm.XfrmBackend(reqid_range=(100, 199), netlink=nl, event_socket=events)
    assert nl.names() == ["GETPOLICY", "DELPOLICY", "GETSA", "DELSA"]
    assert m.addr_from(nl.log[1][1]["sel_saddr"], 2) == ipaddress.ip_address("10.1.0.0")
    assert nl.log[3][1]["spi"] == 0x1111


@pytest.mark.parametrize("decouple", [False, True])
def test_close_removes_ours_unless_decoupled(decouple):
    nl, events = FakeNetlink(), FakeEvents()
    backend = xfrm.XfrmBackend(reqid_range=(100, 199), keep_on_close=decouple, netlink=nl, event_socket=events)
    event = ev.install()
    backend.install(event)
    backend.allocate_spi(event.protocol, event.remote_addr, event.local_addr)
    nl.clear()
    backend.close()
    if decouple:
        assert nl.names() == []
    else:
        assert sorted(nl.names()) == ["DELPOLICY"] * 3 + ["DELSA"] * 3
