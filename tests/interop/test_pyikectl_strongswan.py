"""pyikectl against pyiked with a real strongSwan peer (the interop harness, namespaces
pkx<tag>a/b): show sa agrees with strongSwan's list-sas (SPIs, IDs, traffic counted by
pyiked's userspace ESP), monitor streams the SA coming up, reset id makes pyiked send a
Delete that strongSwan acts on, and /metrics counts the handshake."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from .harness import wait_for
from .harness.pyiked_runner import CTL_MODULE, REPO_ROOT

pytestmark = pytest.mark.interop

METRICS = "127.0.0.1:9172"


@pytest.fixture
def pkx_lab(tmp_path, request):
    from .conftest import lab_for

    yield from lab_for(request, tmp_path, pki=None, prefix="pkx")


def test_pyikectl_with_a_strongswan_initiator(pkx_lab):
    s = pkx_lab.swan_to_pyiked(args=["--metrics", METRICS])
    iked = s.iked
    monitor = subprocess.Popen([sys.executable, "-m", CTL_MODULE, "-s", iked.sock_path, "monitor",
                                "--json"], stdout=subprocess.PIPE, text=True, env=iked.env(),
                               cwd=REPO_ROOT)
    try:
        wait_for(lambda: _monitors(iked) == 1, 10, "pyikectl monitor connected")
        result = s.initiate()
        assert result, result
        swan_sa = s.sa()
        swan_child = swan_sa.child("net")

        up = _next_event(monitor, "IkeSAUp")
        assert up["remote_id"] == "a.pk.test" and up["initiator"] is False

        shown = json.loads(iked.ctl("show", "sa", "--json", check=True).stdout)["sas"]
        (mine,) = shown
        assert (mine["spi_i"], mine["spi_r"]) == (swan_sa.spi_i, swan_sa.spi_r)
        assert mine["remote_id_type"] == "FQDN/a.pk.test" and mine["state"] == "ESTABLISHED"
        assert mine["nat_remote"] or mine["nat_local"]  # libipsec fakes NAT (README quirks)
        (child,) = mine["children"]
        assert (child["spi_in"], child["spi_out"]) == (swan_child.spi_out, swan_child.spi_in)

        assert s.ping(count=3)
        (mine,) = json.loads(iked.ctl("show", "sa", "--json", check=True).stdout)["sas"]
        (child,) = mine["children"]
        swan_child = s.sa().child("net")
        assert child["packets_in"] == swan_child.packets_out == 3
        assert child["packets_out"] == swan_child.packets_in == 3
        assert child["bytes_in"] == swan_child.bytes_out > 0
        text = iked.ctl("show", "sa", check=True).stdout
        assert f"0x{child['spi_in']} in 10.231.0.1 -> 10.231.0.2 bytes {child['bytes_in']}" in text

        metrics = _scrape(pkx_lab, iked)
        assert metrics[("pyiked_handshakes_completed_total", ())] == 1
        assert metrics[("pyiked_ike_sas_active", ())] == 1

        out = iked.ctl("reset", "id", "FQDN/a.pk.test", check=True).stdout
        assert out.strip() == "reset done: 1 IKE SA deleted"
        s.swan.wait_no_sa(timeout=10)  # strongSwan got our Delete and dropped its SA
        assert s.swan.grep_log(r"received DELETE for IKE_SA")
        assert _next_event(monitor, "IkeSADown")["reason"] == "reset by operator"
        assert json.loads(iked.ctl("show", "sa", "--json", check=True).stdout)["sas"] == []
    finally:
        monitor.send_signal(signal.SIGINT)
        monitor.wait(5)


def _monitors(iked) -> int:
    return json.loads(iked.ctl("show", "stats", "--json", check=True).stdout)["daemon"]["monitors"]


def _next_event(monitor, kind: str) -> dict:
    while True:
        line = monitor.stdout.readline()
        if not line:
            raise AssertionError(f"monitor ended before {kind}")
        event = json.loads(line)
        if event["type"] == kind:
            return event


def _scrape(lab, iked) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    code = ("import urllib.request, sys; "
            f"sys.stdout.write(urllib.request.urlopen('http://{METRICS}/metrics').read().decode())")
    text = lab.topo.run("b", [sys.executable, "-c", code]).stdout
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_pyikectl_with_a_strongswan_responder(pkx_lab):
    """pyiked initiates (active policy). decouple takes the SA out of pyiked's userspace
    data plane (pings fail, the IKE SA stays); couple renegotiates it (its sequence numbers
    cannot restart) and traffic flows again; reset sa deletes at strongSwan too; passive
    keeps it down, active brings it up again."""
    s = pkx_lab.pyiked_to_swan()
    iked = s.iked
    first = s.wait_up()
    assert s.ping(count=2)

    assert iked.ctl("decouple", check=True).stdout.strip() == "kernel decoupled"
    assert not s.ping(count=2, wait=1)
    assert s.sa().spi_i == first.spi_i  # the IKE SA lives on
    out = iked.ctl("couple", check=True).stdout.strip()
    assert out == "kernel coupled, 1 IKE SA renegotiated"
    wait_for(lambda: (sa := s.sa()) is not None and sa.spi_i != first.spi_i
             and sa.state == "ESTABLISHED" and sa.child("net") is not None, 15, "new SA")
    assert s.ping(count=2)
    first = s.sa()

    assert iked.ctl("passive", check=True).stdout.strip() == "mode passive, 0 initiated"
    assert iked.ctl("reset", "sa", check=True).stdout.strip() == "reset done: 1 IKE SA deleted"
    s.swan.wait_no_sa(timeout=10)
    assert json.loads(iked.ctl("show", "sa", "--json", check=True).stdout)["sas"] == []
    assert iked.ctl("active", check=True).stdout.strip() == "mode active, 1 initiated"
    second = s.wait_up()
    assert second.spi_i != first.spi_i
    assert s.ping(count=2)
