"""Prometheus metrics (`pyiked --metrics host:port`, needs the `metrics` extra).

Nothing is counted for the metrics: a scrape reads the engine's `stats` Counter (which
the engine keeps anyway) and walks the SA table once for the gauges, on the event loop
like any command, so a datagram never pays for a metric and the numbers are consistent.
The HTTP side is a small asyncio server for GET /metrics (no threads touching the
engine); it answers in Prometheus text format, or OpenMetrics when the scraper asks.

Metric                                           from
pyiked_handshakes_started_total                  stats handshakes_started
pyiked_handshakes_completed_total                stats handshakes_completed
pyiked_handshakes_failed_total{reason}           stats handshakes_failed_<reason>
pyiked_ike_sa_init_refused_total{reason}         stats init_refused_<notify>
pyiked_child_sa_failures_total                   stats child_failed
pyiked_child_sas_created_total / _removed_total  stats child_sas_created / child_sas_removed
pyiked_ike_sas_removed_total                     stats ike_sas_removed
pyiked_ike_sas_rekeyed_total                     stats ike_sas_rekeyed
pyiked_cookies_sent_total                        stats cookies_sent
pyiked_retransmissions_total                     stats retransmissions
pyiked_datagrams_dropped_total{reason}           stats dropped_<reason> (not KEEPALIVE)
pyiked_nat_keepalives_received_total             stats dropped_KEEPALIVE
pyiked_internal_errors_total                     stats internal_errors
pyiked_ike_sas{state}                            SAs by state, now
pyiked_ike_sas_active                            established IKE SAs, now
pyiked_ike_sas_half_open{role}                   IKE SAs before AUTH completed, now
pyiked_child_sas_active                          CHILD SAs, now
pyiked_mode_active / pyiked_kernel_coupled       1 or 0 (pyikectl active|passive, couple|decouple)
"""

from __future__ import annotations

import asyncio
import logging

from . import status

log = logging.getLogger("pyiked.metrics")

# (metric name without _total, stats key, help)
_COUNTERS = (
    ("pyiked_handshakes_started", "handshakes_started", "IKE SA negotiations started (both roles)"),
    ("pyiked_handshakes_completed", "handshakes_completed", "IKE SAs established"),
    ("pyiked_child_sa_failures", "child_failed", "CHILD SAs refused or failed while the IKE SA came up"),
    ("pyiked_child_sas_created", "child_sas_created", "CHILD SAs created"),
    ("pyiked_child_sas_removed", "child_sas_removed", "CHILD SAs removed"),
    ("pyiked_ike_sas_removed", "ike_sas_removed", "established IKE SAs removed"),
    ("pyiked_ike_sas_rekeyed", "ike_sas_rekeyed", "IKE SAs rekeyed"),
    ("pyiked_cookies_sent", "cookies_sent", "IKE_SA_INIT requests answered with a COOKIE"),
    ("pyiked_retransmissions", "retransmissions", "requests retransmitted"),
    ("pyiked_nat_keepalives_received", None, "NAT-T keepalives received"),
    ("pyiked_internal_errors", "internal_errors", "unexpected internal errors (bugs)"),
)


class EngineCollector:
    """A prometheus_client collector over a Daemon (or anything with .engine)."""

    def __init__(self, daemon):
        self.daemon = daemon

    def describe(self):
        return []  # no fixed description: registration must not collect

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        engine = self.daemon.engine
        split = status.counters(engine)
        plain = split["counters"]
        dropped = dict(split["dropped_by_reason"])
        keepalives = dropped.pop("KEEPALIVE", 0)
        for name, key, doc in _COUNTERS:
            value = keepalives if key is None else plain.get(key, 0)
            yield CounterMetricFamily(name, doc, value=value)
        yield _by_reason("pyiked_handshakes_failed",
                         "IKE SA negotiations that ended without an SA, by reason",
                         split["handshakes_failed_by_reason"])
        yield _by_reason("pyiked_ike_sa_init_refused",
                         "IKE_SA_INIT requests refused, by the notify sent",
                         split["init_refused_by_reason"])
        yield _by_reason("pyiked_datagrams_dropped",
                         "datagrams dropped before reaching an SA, by reason",
                         {r.lower().removeprefix("drop_"): v for r, v in dropped.items()})

        now = status.gauges(engine)
        by_state = GaugeMetricFamily("pyiked_ike_sas", "IKE SAs by state", labels=["state"])
        for state, value in now["ike_sas_by_state"].items():
            by_state.add_metric([state], value)
        yield by_state
        yield GaugeMetricFamily("pyiked_ike_sas_active", "established IKE SAs",
                                value=now["ike_sas_established"])
        half = GaugeMetricFamily("pyiked_ike_sas_half_open",
                                 "IKE SAs whose IKE_AUTH has not completed", labels=["role"])
        for role, value in now["half_open"].items():
            half.add_metric([role], value)
        yield half
        yield GaugeMetricFamily("pyiked_child_sas_active", "CHILD SAs", value=now["child_sas"])
        daemon = self.daemon
        if hasattr(daemon, "active"):
            yield GaugeMetricFamily("pyiked_mode_active", "1 in active mode, 0 when passive",
                                    value=int(bool(daemon.active)))
            yield GaugeMetricFamily("pyiked_kernel_coupled",
                                    "1 when SAs are loaded into the kernel (couple)",
                                    value=int(bool(daemon.coupled)))


def _by_reason(name: str, doc: str, values: dict):
    """A counter family with one sample per reason."""
    from prometheus_client.core import CounterMetricFamily

    family = CounterMetricFamily(name, doc, labels=["reason"])
    for reason, value in values.items():
        family.add_metric([reason], value)
    return family


def make_registry(daemon):
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector(daemon))
    return registry


class MetricsError(Exception):
    """The metrics endpoint cannot be set up (the message says why)."""


def parse_listen_address(text: str) -> tuple[str, int]:
    """`host:port`, `[v6]:port` or `:port` (all addresses) -> (host, port); MetricsError."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit():
        raise MetricsError(f"metrics address {text!r}: expected host:port")
    port = int(port_text)
    if not 0 < port < 65536:
        raise MetricsError(f"metrics address {text!r}: port outside 1..65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise MetricsError(f"metrics address {text!r}: write an IPv6 address as [addr]:port")
    return host, port


def check_available() -> None:
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        raise MetricsError("--metrics needs prometheus-client: pip install 'pyiked[metrics]'") from None


# -- HTTP ------------------------------------------------------------------------------------

MAX_HEADER = 8192
READ_TIMEOUT = 10.0


class MetricsServer:
    """GET /metrics over HTTP/1.0-style connections (one request, then close)."""

    def __init__(self, daemon, host: str, port: int):
        check_available()
        self.daemon = daemon
        self.host = host
        self.port = port
        self.registry = make_registry(daemon)
        self._server = None

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(self._connection, self.host or None,
                                                      self.port, limit=MAX_HEADER)
        except OSError as exc:
            raise MetricsError(f"metrics on {self.host or '*'}:{self.port}: "
                               f"{exc.strerror or exc}") from None
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("metrics on http://%s:%d/metrics", self.host or "*", self.port)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def render(self, accept: str = "") -> tuple[bytes, str]:
        from prometheus_client.exposition import choose_encoder

        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type

    async def _connection(self, reader, writer) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
            status_line, headers, body = self._respond(head)
        except (TimeoutError, asyncio.LimitOverrunError, asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        except ValueError:
            status_line, headers, body = "400 Bad Request", {}, b"bad request\n"
        head_only = head.startswith(b"HEAD ")
        lines = [f"HTTP/1.1 {status_line}", f"Content-Length: {len(body)}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (b"" if head_only else body))
        try:
            await writer.drain()
        except ConnectionError:
            pass
        writer.close()

    def _respond(self, head: bytes):
        text = head.decode("latin-1")
        request_line, *header_lines = text.split("\r\n")
        parts = request_line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            raise ValueError("bad request line")
        method, target, _version = parts
        headers = {}
        for line in header_lines:
            if line:
                name, sep, value = line.partition(":")
                if not sep:
                    raise ValueError("bad header")
                headers[name.strip().lower()] = value.strip()
        path = target.split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", {"Allow": "GET, HEAD"}, b"method not allowed\n"
        if path != "/metrics":
            return "404 Not Found", {"Content-Type": "text/plain"}, b"metrics are at /metrics\n"
        body, content_type = self.render(headers.get("accept", ""))
        return "200 OK", {"Content-Type": content_type}, body
