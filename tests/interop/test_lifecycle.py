"""SA lifecycle against a real strongSwan: CHILD and IKE SA rekeys started by either
side (swanctl --rekey, pyiked's lifetimes), PFS, short lifetimes rekeying again and
again, DPD after strongSwan dies, and strongSwan establishing through a flood of spoofed
IKE_SA_INIT requests that puts pyiked in cookie mode.

Namespaces use the prefix `pkl`. The pings go through pyiked's userspace ESP, so they
prove the keys of each new SA, not only the exchange.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from .harness import iked_s2s, wait_for

ROOT = Path(__file__).resolve().parents[2]
CHILD_UP = re.compile(r"CHILD SA #(\d+) up \(in ([0-9a-f]{8}) out ([0-9a-f]{8})\)")


@pytest.fixture
def plab(request, tmp_path):
    """A Lab on namespaces named pkl<tag>a / pkl<tag>b (this area's prefix)."""
    from .conftest import _need_daemon, lab_for

    _need_daemon()
    yield from lab_for(request, tmp_path, prefix="pkl")


def iked_conf(topo, node, active=False, lifetimes="", settings="", childsa=None):
    """The scenario's iked.conf (harness.iked_s2s) with `ikelifetime`/`lifetime` where
    iked.conf(5) wants them (after srcid/dstid) and `set` lines in front."""
    kw = {} if childsa is None else {"childsa": childsa}
    conf = iked_s2s(topo, node, active=active, **kw)
    if lifetimes:
        conf = conf.replace(' psk "', f' {lifetimes} psk "')
    return settings + conf


def scenario(lab, who, extra="", childsa=None, esp=None, swan_kw=None, child_kw=None, conn_kw=None):
    """pyiked and strongSwan up with one IKE SA and one CHILD SA; `who` initiates."""
    node = "a" if who == "pyiked" else "b"
    conf = iked_conf(lab.topo, node, active=who == "pyiked", lifetimes=extra, childsa=childsa)
    common = dict(esp_proposals=esp, swan_kw={"retransmit_tries": 4, **(swan_kw or {})},
                  child_kw=child_kw, conn_kw=conn_kw)
    if who == "pyiked":
        s = lab.pyiked_to_swan(conf, **common)
        sa = s.wait_up(timeout=20)
    else:
        s = lab.swan_to_pyiked(conf, **common)
        result = s.initiate()
        assert result, result
        sa = s.swan.wait_sa(s.ike, s.child, timeout=10)
    s.iked.wait_for_log(CHILD_UP.pattern, timeout=10)
    return s, sa


def pyiked_children(iked):
    return CHILD_UP.findall(iked.log())


def only_sa(s):
    sas = s.swan.list_sas(s.ike)
    assert len(sas) == 1, sas
    return sas[0]


def ping(s):
    result = s.ping(count=2)
    assert result, result


@pytest.mark.interop
@pytest.mark.parametrize("who", ["strongswan", "pyiked"])
@pytest.mark.parametrize("pfs", [False, True])
def test_strongswan_rekeys_the_child_sa(plab, who, pfs):
    """swanctl --rekey --child, with pyiked as the IKE SA's responder or initiator."""
    esp = ["aes256gcm16-x25519"] if pfs else None
    childsa = ["enc aes-256-gcm group curve25519"] if pfs else None
    s, sa = scenario(plab, who, esp=esp, childsa=childsa)
    old = sa.child(s.child)
    ping(s)
    assert s.swan.rekey(child=s.child) == 1
    new_sa = s.swan.wait_sa(s.ike, s.child, timeout=15, predicate=lambda x: len(x.children) == 1
                            and x.children[0].spi_in != old.spi_in and x.children[0].state == "INSTALLED")
    new = new_sa.child(s.child)
    assert new_sa.spi_i == sa.spi_i and new_sa.state == "ESTABLISHED"  # the same IKE SA
    assert new.spi_out != old.spi_out
    if pfs:
        assert new.dh_group == "CURVE_25519"
    # pyiked installed the mirror SA and removed the old one (deleted by strongSwan)
    wait_for(lambda: (new.spi_out, new.spi_in) in [(i, o) for _, i, o in pyiked_children(s.iked)], 10,
             "pyiked's CHILD SA with strongSwan's new SPIs")
    s.iked.wait_for_log(r"CHILD SA #1 removed: deleted by peer", timeout=10)
    ping(s)


@pytest.mark.interop
@pytest.mark.parametrize("who", ["strongswan", "pyiked"])
def test_child_rekey_during_pings_loses_at_most_the_packets_in_flight(plab, who):
    """A CHILD SA rekey while traffic flows: pyiked keeps the old inbound SA until the
    Delete, so only packets in flight at the switch may be lost."""
    s, sa = scenario(plab, who)
    old = sa.child(s.child)
    ping(s)
    result = {}
    pinger = threading.Thread(target=lambda: result.update(r=s.ping(count=40, interval=0.1, wait=1)))
    pinger.start()
    time.sleep(1.0)
    assert s.swan.rekey(child=s.child) == 1
    s.swan.wait_sa(s.ike, s.child, timeout=15, predicate=lambda x: len(x.children) == 1
                   and x.children[0].spi_in != old.spi_in and x.children[0].state == "INSTALLED")
    pinger.join(30)
    r = result["r"]
    assert r.sent == 40 and r.received >= 38, r.output


@pytest.mark.interop
@pytest.mark.parametrize("who", ["strongswan", "pyiked"])
def test_strongswan_rekeys_the_ike_sa(plab, who):
    """swanctl --rekey --ike: new IKE SPIs, the CHILD SA moves along, the old SA is gone."""
    s, sa = scenario(plab, who)
    old_child = sa.child(s.child)
    assert s.swan.rekey(ike=s.ike) == 1
    new_sa = s.swan.wait_sa(s.ike, s.child, timeout=15, predicate=lambda x: x.spi_i != sa.spi_i)
    wait_for(lambda: len(s.swan.list_sas(s.ike)) == 1, 10, "strongSwan to drop the old IKE_SA")
    new_sa = only_sa(s)
    assert new_sa.state == "ESTABLISHED" and new_sa.spi_r != sa.spi_r
    assert new_sa.child(s.child).spi_in == old_child.spi_in  # the same CHILD SA, moved
    s.iked.wait_for_log(rf"{sa.spi_i}:{sa.spi_r} REKEYED.*closed: deleted by peer|"
                        rf"{sa.spi_i}:{sa.spi_r}.*rekeyed: now <IkeSA {new_sa.spi_i}:{new_sa.spi_r}",
                        timeout=10)
    ping(s)
    # the new IKE SA carries exchanges: rekey the CHILD SA over it, then delete it
    assert s.swan.rekey(child=s.child) == 1
    s.swan.wait_sa(s.ike, s.child, timeout=15,
                   predicate=lambda x: x.children and x.children[0].spi_in != old_child.spi_in)
    ping(s)
    assert s.swan.terminate(ike=s.ike)
    s.iked.wait_for_log(r"closed: deleted by peer", timeout=10)


@pytest.mark.interop
def test_pyiked_rekeys_on_its_lifetimes(plab):
    """pyiked initiates: `ikelifetime 24 lifetime 12` make it rekey the CHILD SA every
    10-11.5 s and the IKE SA after 20-23 s, on its own; strongSwan follows each time."""
    s, sa = scenario(plab, "pyiked", extra="ikelifetime 24 lifetime 12")
    first = sa.child(s.child)
    ping(s)
    s.iked.wait_for_log(r"rekeyed: now", timeout=30)  # the IKE SA rekey (pyiked's timer)
    wait_for(lambda: len(pyiked_children(s.iked)) >= 3, 20, "two CHILD SA rekeys by pyiked")
    wait_for(lambda: len(s.swan.list_sas(s.ike)) == 1 and len(only_sa(s).children) == 1, 10,
             "one IKE SA and one CHILD SA left on strongSwan")
    now = only_sa(s)
    assert now.spi_i != sa.spi_i and now.state == "ESTABLISHED"
    assert now.child(s.child).spi_in != first.spi_in
    # pyiked started the rekeys: it deleted the old SAs itself
    assert re.search(r"CHILD SA #1 removed: rekeyed", s.iked.log())
    ping(s)


@pytest.mark.interop
@pytest.mark.slow
def test_short_lifetimes_on_both_sides_rekey_again_and_again(plab):
    """Both ends with ~20 s lifetimes for 80 s: rekeys from either side and collisions;
    at the end one IKE SA and one CHILD SA on each side, and traffic flows."""
    s, sa = scenario(plab, "strongswan", extra="ikelifetime 30 lifetime 20",
                     child_kw={"rekey_time": 17, "rand_time": 3}, conn_kw={"rekey_time": 27})
    for _ in range(4):
        time.sleep(20)  # let the lifetimes run: there is nothing to wait for but time
        ping(s)
    assert len(pyiked_children(s.iked)) >= 4
    wait_for(lambda: len(s.swan.list_sas(s.ike)) == 1 and len(only_sa(s).children) == 1, 30,
             "strongSwan back to one IKE SA with one CHILD SA")
    sas_log = s.iked.log()
    assert "internal error" not in sas_log


@pytest.mark.interop
@pytest.mark.slow
def test_dpd_tears_down_after_strongswan_dies(plab):
    """strongSwan is killed (SIGKILL: no Delete): pyiked's liveness check after 5 s of
    silence goes unanswered, and after its retransmissions the SAs are removed."""
    conf = iked_conf(plab.topo, "b", settings="set dpd_check_interval 5\nset retransmit_timeout 1\n"
                                               "set retransmit_tries 3\n")
    s = plab.swan_to_pyiked(conf)
    assert s.initiate()
    s.iked.wait_for_log(CHILD_UP.pattern, timeout=10)
    os.killpg(s.swan.proc.pid, signal.SIGKILL)
    s.iked.wait_for_log(r"liveness check", timeout=15)
    # 1 + 2 + 4 + 8 s of retransmissions (set retransmit_timeout 1, retransmit_tries 3)
    s.iked.wait_for_log(r"CHILD SA #1 removed: no answer to INFORMATIONAL", timeout=40)
    s.iked.wait_for_log(r"closed: no answer to INFORMATIONAL", timeout=5)


@pytest.mark.interop
def test_strongswan_answers_pyikeds_cookie(plab):
    """`set cookie_threshold 0`: every IKE_SA_INIT needs a cookie (RFC 7296 §2.6);
    strongSwan retries with it and the SA comes up."""
    conf = iked_conf(plab.topo, "b", settings="set cookie_threshold 0\n")
    s = plab.swan_to_pyiked(conf)
    cap = plab.capture("b")
    assert s.initiate()
    ping(s)
    cap.stop()
    init = [m for m in cap.ike_messages() if m["exchange"] == 34]
    requests = [m["first_payload"] for m in init if not m["response"]]
    responses = [m["first_payload"] for m in init if m["response"]]
    # first payloads, SA = 33, N = 41: the first request has no cookie and gets only the
    # COOKIE notify; every later one starts with the COOKIE (§2.6) and the last answer is the
    # full response. Retransmissions on a busy machine may repeat either.
    assert requests[0] == 33 and len(requests) >= 2 and set(requests[1:]) == {41}, requests
    assert responses[0] == 41 and responses[-1] == 33 and responses.count(33) <= 2, responses


GEN_RATE = 20000  # datagrams/s: far above the thresholds, within what the responder takes


@pytest.mark.interop
def test_strongswan_establishes_during_a_spoofed_flood(plab):
    """A flood of IKE_SA_INIT requests from 32768 spoofed addresses: pyiked goes into
    cookie mode, its half-open SAs stay under the threshold, its memory stays flat, and
    strongSwan (which answers the cookie) still gets its SA."""
    topo = plab.topo
    conf = (f'set cookie_threshold 30\n'
            f'ikev2 "s2s" passive esp from 10.231.2.0/24 to 10.231.1.0/24 local {topo.addr("b")} '
            f'peer any srcid b.pk.test dstid a.pk.test psk "pk-test-psk-0123456789"\n')
    s = plab.swan_to_pyiked(conf)
    topo.run("b", ["ip", "route", "add", "10.231.128.0/17", "via", topo.addr("a")])
    rss = lambda: int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{s.iked.pid}/status").read_text())[1])
    before = rss()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    gen = topo.popen("a", [sys.executable, "-m", "bench.floodgen", topo.addr("b"), "12", "--rate",
                           str(GEN_RATE)], plab.dir / "floodgen.log", env=env, cwd=ROOT, name="floodgen")
    s.iked.wait_for_log(r"cookie mode on: (\d+) half-open", timeout=15)
    result = s.initiate(timeout=20)
    assert result, result
    sa = s.swan.wait_sa(s.ike, s.child, timeout=10)
    assert sa.state == "ESTABLISHED"
    assert s.swan.grep_log(r"IKE_SA_INIT response 0 \[ N\(COOKIE\) \]")  # it had to answer one
    wait_for(lambda: not gen.running, 30, "the generator to finish")
    sent = gen.log().strip().splitlines()[-1]
    assert '"sent"' in sent and int(re.search(r'"sent": (\d+)', sent)[1]) >= GEN_RATE * 8
    log = s.iked.log()
    half_open = [int(m) for m in re.findall(r"(\d+) half-open", log)]
    assert half_open and max(half_open) <= 40  # the threshold (30) and a few in flight
    assert rss() - before < 20 * 1024  # KiB: no state per spoofed request
    ping(s)
