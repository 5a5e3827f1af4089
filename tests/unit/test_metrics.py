"""Prometheus metrics (pyiked.daemon.metrics): scraped over HTTP after a real handshake
between two daemons on loopback and parsed with prometheus_client's own parser."""

import asyncio
import socket
import urllib.error
import urllib.request
from collections import Counter
from types import SimpleNamespace

import pytest

pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families

from pyiked.ctl.client import ControlClient
from pyiked.daemon import demo
from pyiked.daemon.metrics import (
    EngineCollector,
    MetricsError,
    MetricsServer,
    make_registry,
    parse_listen_address,
)

from .daemon_lab import Lab


def samples(text: str) -> dict:
    """{(sample name, frozenset(labels)): value} from exposition text."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(table, name, **labels):
    return table[(name, frozenset(labels.items()))]


@pytest.fixture
def lab(tmp_path):
    lab = Lab(tmp_path)
    lab.wait(lambda: lab.established(lab.responder) and lab.established(lab.initiator))
    lab.metrics = MetricsServer(lab.responder, "127.0.0.1", 0)
    lab.call(lab.metrics.start())
    lab.url = f"http://127.0.0.1:{lab.metrics.port}/metrics"
    yield lab
    lab.on_loop(lab.metrics.close)
    lab.close()


def scrape(lab, **headers):
    request = urllib.request.Request(lab.url, headers=headers)
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.headers.get("Content-Type"), response.read().decode()


def test_metrics_after_a_handshake(lab):
    content_type, text = scrape(lab)
    assert content_type.startswith("text/plain")
    m = samples(text)
    assert value(m, "pyiked_handshakes_started_total") == 1
    assert value(m, "pyiked_handshakes_completed_total") == 1
    assert value(m, "pyiked_ike_sas_active") == 1
    assert value(m, "pyiked_ike_sas", state="ESTABLISHED") == 1
    assert value(m, "pyiked_ike_sas", state="INIT_DONE") == 0
    assert value(m, "pyiked_child_sas_active") == 1
    assert value(m, "pyiked_child_sas_created_total") == 1
    assert value(m, "pyiked_ike_sas_half_open", role="responder") == 0
    assert value(m, "pyiked_ike_sas_half_open", role="initiator") == 0
    assert value(m, "pyiked_cookies_sent_total") == 0
    assert value(m, "pyiked_retransmissions_total") == 0
    assert value(m, "pyiked_mode_active") == 1 and value(m, "pyiked_kernel_coupled") == 1
    assert not [k for k in m if k[0] in ("pyiked_handshakes_failed_total",
                                         "pyiked_datagrams_dropped_total")]


def test_failures_and_drops_by_reason(lab, tmp_path):
    # the responder now wants another PSK: the initiator's next AUTH fails
    conf = tmp_path / "other-psk.conf"
    conf.write_text(demo.RESPONDER_CONF.replace("demo-psk-not-for-production", "another-psk-0123456789"))
    with ControlClient(lab.r_sock) as c:
        assert c.call("load", file=str(conf))["deleted"] == 0  # same policy name: SA kept
    with ControlClient(lab.i_sock) as c:
        c.call("reset", target="sa")
        lab.wait(lambda: not lab.established(lab.initiator))
        c.call("active")
    lab.wait(lambda: lab.on_loop(lambda: lab.responder.engine.stats["handshakes_failed"]) == 1)
    # junk at the responder's IKE port: too short, and a header with an unknown SPI
    ike_port = lab.on_loop(lambda: lab.responder.engine.ike_port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((demo.INITIATOR, 0))
        s.sendto(b"\x01\x02\x03", (demo.RESPONDER, ike_port))
        header = bytes(range(1, 17)) + bytes([46, 0x20, 0x2e, 0x08]) + (1).to_bytes(4, "big")
        s.sendto(header + (28 + 4).to_bytes(4, "big") + b"\0\0\0\0", (demo.RESPONDER, ike_port))
    lab.wait(lambda: sum(v for k, v in lab.on_loop(lambda: dict(lab.responder.engine.stats)).items()
                         if k.startswith("dropped_")) >= 2)
    m = samples(scrape(lab)[1])
    assert value(m, "pyiked_handshakes_failed_total", reason="AUTHENTICATION_FAILED") == 1
    assert value(m, "pyiked_handshakes_started_total") == 2
    assert value(m, "pyiked_handshakes_completed_total") == 1
    assert value(m, "pyiked_ike_sas_active") == 0
    assert value(m, "pyiked_ike_sas_removed_total") == 1
    assert value(m, "pyiked_datagrams_dropped_total", reason="short") == 1
    dropped = {dict(k[1])["reason"]: v for k, v in m.items() if k[0] == "pyiked_datagrams_dropped_total"}
    assert sum(dropped.values()) == 2, dropped


def test_every_engine_counter_maps_to_its_metric():
    stats = Counter({
        "handshakes_started": 11, "handshakes_completed": 7, "handshakes_failed": 3,
        "handshakes_failed_timeout": 2, "handshakes_failed_NO_PROPOSAL_CHOSEN": 1,
        "init_refused_INVALID_KE_PAYLOAD": 5, "child_failed": 4, "child_sas_created": 9,
        "child_sas_removed": 8, "ike_sas_removed": 6, "ike_sas_rekeyed": 13, "cookies_sent": 21,
        "retransmissions": 17, "dropped_KEEPALIVE": 19, "dropped_DROP_SHORT": 23,
        "dropped_unknown_spi": 29, "internal_errors": 31,
    })
    daemon = SimpleNamespace(engine=SimpleNamespace(stats=stats, sas={}), active=False, coupled=False)
    from prometheus_client import generate_latest

    m = samples(generate_latest(make_registry(daemon)).decode())
    expected = {
        ("pyiked_handshakes_started_total", ()): 11,
        ("pyiked_handshakes_completed_total", ()): 7,
        ("pyiked_handshakes_failed_total", (("reason", "timeout"),)): 2,
        ("pyiked_handshakes_failed_total", (("reason", "NO_PROPOSAL_CHOSEN"),)): 1,
        ("pyiked_ike_sa_init_refused_total", (("reason", "INVALID_KE_PAYLOAD"),)): 5,
        ("pyiked_child_sa_failures_total", ()): 4,
        ("pyiked_child_sas_created_total", ()): 9,
        ("pyiked_child_sas_removed_total", ()): 8,
        ("pyiked_ike_sas_removed_total", ()): 6,
        ("pyiked_ike_sas_rekeyed_total", ()): 13,
        ("pyiked_cookies_sent_total", ()): 21,
        ("pyiked_retransmissions_total", ()): 17,
        ("pyiked_nat_keepalives_received_total", ()): 19,
        ("pyiked_datagrams_dropped_total", (("reason", "short"),)): 23,
        ("pyiked_datagrams_dropped_total", (("reason", "unknown_spi"),)): 29,
        ("pyiked_internal_errors_total", ()): 31,
        ("pyiked_ike_sas_active", ()): 0,
        ("pyiked_child_sas_active", ()): 0,
        ("pyiked_mode_active", ()): 0,
        ("pyiked_kernel_coupled", ()): 0,
    }
    for (name, labels), want in expected.items():
        assert m[(name, frozenset(labels))] == want, name
    counters = {k for k in m if k[0].endswith("_total")}
    assert counters == {k for k in ((n, frozenset(lb)) for n, lb in expected) if k[0].endswith("_total")}


def test_collect_reads_the_engine_at_scrape_time():
    stats = Counter()
    daemon = SimpleNamespace(engine=SimpleNamespace(stats=stats, sas={}))
    collector = EngineCollector(daemon)
    first = {f.name: f.samples[0].value for f in collector.collect() if f.samples}
    stats["handshakes_started"] += 5
    second = {f.name: f.samples[0].value for f in collector.collect() if f.samples}
    assert first["pyiked_handshakes_started"] == 0 and second["pyiked_handshakes_started"] == 5


def test_openmetrics_on_request(lab):
    content_type, text = scrape(lab, Accept="application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert text.rstrip().endswith("# EOF")


def raw_http(lab, data: bytes, half_close=False) -> bytes:
    with socket.create_connection(("127.0.0.1", lab.metrics.port), timeout=5) as s:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


@pytest.mark.parametrize("request_bytes,status", [
    (b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", b"200"),
    (b"GET /metrics?x=1 HTTP/1.0\r\n\r\n", b"200"),
    (b"HEAD /metrics HTTP/1.1\r\n\r\n", b"200"),
    (b"GET / HTTP/1.1\r\n\r\n", b"404"),
    (b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", b"405"),
    (b"GARBAGE\r\n\r\n", b"400"),
    (b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n", b"400"),
])
def test_http_answers(lab, request_bytes, status):
    reply = raw_http(lab, request_bytes)
    assert reply.split(b" ")[1] == status
    if request_bytes.startswith(b"HEAD"):
        assert reply.endswith(b"\r\n\r\n")  # headers only


def test_oversized_or_unfinished_requests_are_closed(lab):
    assert raw_http(lab, b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n") == b""
    assert raw_http(lab, b"GET /metr", half_close=True) == b""  # client half-closes: nothing to answer


@pytest.mark.parametrize("text,expected", [
    ("127.0.0.1:9100", ("127.0.0.1", 9100)),
    (":9100", ("", 9100)),
    ("[::1]:9200", ("::1", 9200)),
    ("localhost:1", ("localhost", 1)),
])
def test_listen_addresses(text, expected):
    assert parse_listen_address(text) == expected


@pytest.mark.parametrize("text", ["9100", "host:", "host:0", "host:65536", "::1:9100", "h:x"])
def test_bad_listen_addresses(text):
    with pytest.raises(MetricsError):
        parse_listen_address(text)


def test_a_busy_port_is_a_metrics_error():
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    try:
        server = MetricsServer(SimpleNamespace(engine=None), "127.0.0.1", holder.getsockname()[1])
        with pytest.raises(MetricsError, match="metrics on 127.0.0.1"):
            asyncio.run(server.start())
    finally:
        holder.close()
