"""The daemon: asyncio around the sans-I/O engine.

It owns the UDP sockets, the clock and the kernel backend. The pump is always the same:
datagrams in -> engine -> datagrams out, events -> backend, backend notices -> engine,
then re-arm the single timer the engine asks for.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys

from pyiked.config.store import PolicyStore
from pyiked.core.certs import CertStore, CertStoreError
from pyiked.core.engine import Engine
from pyiked.core.events import ChildSAInstall, ChildSARemove, ChildSAUpdate

from .sockets import UdpEndpoint, source_address_for

log = logging.getLogger("pyiked.daemon")


class Daemon:
    def __init__(self, config, *, backend="memory", ike_port=500, natt_port=4500, families=(4, 6),
                 bind_address="", random=os.urandom, engine_options=None, backend_options=None):
        from pyiked.kernel import choose_backend

        self.config = config
        self.store = PolicyStore(config)
        self.endpoints: dict[tuple[int, int], UdpEndpoint] = {}
        if backend is None or isinstance(backend, str):  # a name: "auto", "xfrm", ...
            backend = choose_backend(backend, send=self.send_datagram, **(backend_options or {}))
        self.backend = backend
        self.engine = Engine(
            self.store,
            random=random,
            spi_allocator=self.backend.allocate_spi,
            ike_port=ike_port,
            natt_port=natt_port,
            backend_supports_transport=self.backend.supports_transport,
            **{"force_udp_encap": self.backend.requires_udp_encap, **(engine_options or {})},
        )
        for family in families:
            af = socket.AF_INET if family == 4 else socket.AF_INET6
            bind = bind_address if (family == 4) == (":" not in bind_address) else ""
            for port in (ike_port, natt_port):
                try:
                    ep = UdpEndpoint(af, port, bind)
                except OSError as exc:
                    if family == 6 and exc.errno in (97, 99):  # no IPv6 here
                        log.info("IPv6 unavailable: %s", exc)
                        break
                    raise
                self.endpoints[(family, port)] = ep
                self.backend.prepare_socket(ep.sock, port == natt_port)
        self.engine.on_esp = getattr(self.backend, "handle_esp", None)
        self.iked_dir = None  # where certificates live, for reloads (run() sets it)
        self._loop = None
        self._timer = None
        self._stopped = None

    # -- I/O ---------------------------------------------------------------------------

    def now(self) -> float:
        return self._loop.time()

    def send_datagram(self, data: bytes, local_addr, remote_addr) -> None:
        family = 6 if ":" in remote_addr[0] else 4
        ep = self.endpoints.get((family, local_addr[1]))
        if ep is None:
            log.warning("no socket for %s port %d", local_addr[0], local_addr[1])
            return
        ep.send(data, local_addr[0], remote_addr)

    def _readable(self, ep: UdpEndpoint) -> None:
        now = self.now()
        for data, local, remote in ep.receive_batch():
            self.engine.receive_datagram(data, local, remote, now)
        self.pump()

    def pump(self) -> None:
        engine = self.engine
        for data, local, remote in engine.datagrams_to_send():
            self.send_datagram(data, local, remote)
        while (event := engine.next_event()) is not None:
            self._handle_event(event)
        for notice in self.backend.notices():
            engine.kernel_notice(notice, self.now())
        if engine._out:
            for data, local, remote in engine.datagrams_to_send():
                self.send_datagram(data, local, remote)
        self._arm_timer()

    def _handle_event(self, event) -> None:
        log.debug("event %r", event)
        try:
            if isinstance(event, ChildSAInstall):
                self.backend.install(event)
            elif isinstance(event, ChildSARemove):
                self.backend.remove(event)
            elif isinstance(event, ChildSAUpdate):
                self.backend.update(event)
        except Exception as exc:  # the kernel said no: tear the CHILD SA down cleanly
            log.error("kernel backend %s: %s", self.backend.name, exc)
            if isinstance(event, ChildSAInstall):
                self.engine.child_install_failed(event.child_id, str(exc), self.now())

    def _arm_timer(self) -> None:
        times = [t for t in (self.engine.get_timer(), self.backend.get_timer()) if t is not None]
        when = min(times) if times else None
        if self._timer is not None:
            if when is not None and self._timer.when() == when:
                return
            self._timer.cancel()
            self._timer = None
        if when is not None:
            self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now = self.now()
        self.engine.handle_timer(now)
        self.backend.handle_timer(now)
        self.pump()

    # -- life cycle ----------------------------------------------------------------------

    def start(self, loop) -> None:
        self._loop = loop
        self._stopped = loop.create_future()
        for ep in self.endpoints.values():
            loop.add_reader(ep.fileno(), self._readable, ep)
        tun = self.backend.fileno()
        if tun is not None and hasattr(self.backend, "handle_tun_readable"):
            loop.add_reader(tun, self._tun_readable)
        for policy in self.store.active():
            self.initiate(policy)
        self.pump()

    def _tun_readable(self) -> None:
        self.backend.handle_tun_readable()
        self.pump()

    def initiate(self, policy, child_ts=None):
        if policy.peer is None or policy.peer.num_addresses != 1:
            log.error("policy %s is active but has no single peer address", policy.name)
            return None
        peer = str(policy.peer.network_address)
        if policy.local is not None and policy.local.num_addresses == 1:
            local = str(policy.local.network_address)
        else:
            local = source_address_for(peer)
        return self.engine.initiate(policy, self.now(), (local, self.engine.ike_port),
                                    (peer, self.engine.ike_port), child_ts)

    def reload(self, config) -> None:
        self.config = config
        self.store = PolicyStore(config)
        certs = None
        if self.iked_dir is not None:  # certificates, keys and CRLs are read again too
            try:
                certs = load_certs(config, self.iked_dir)
            except CertStoreError as exc:
                log.error("certificates not reloaded: %s", exc)
        self.engine.reload(self.store, certs)
        log.info("configuration reloaded: %d policies", len(config.policies))

    async def shutdown(self, grace: float = 1.0) -> None:
        """Send a Delete for every established IKE SA, wait briefly for answers, close."""
        now = self.now()
        for sa in self.engine.ike_sas():
            self.engine.delete_ike_sa(sa.ike_sa_id, now, "shutdown")
        self.pump()
        deadline = now + grace
        while self.engine.sas and self.now() < deadline:
            await asyncio.sleep(0.05)
        self.close()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for ep in self.endpoints.values():
            if self._loop is not None:
                self._loop.remove_reader(ep.fileno())
            ep.close()
        self.backend.close()


async def serve(daemon: Daemon, reload_config=None) -> None:
    loop = asyncio.get_running_loop()
    daemon.start(loop)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    if reload_config is not None:
        loop.add_signal_handler(signal.SIGHUP, lambda: _reload(daemon, reload_config))
    _sd_notify("READY=1")
    log.info("pyiked running (backend %s)", daemon.backend.name)
    await stop.wait()
    _sd_notify("STOPPING=1")
    await daemon.shutdown()


def _reload(daemon, reload_config) -> None:
    try:
        config = reload_config()
    except Exception as exc:  # a bad file keeps the running configuration
        log.error("reload failed, keeping the running configuration: %s", exc)
        return
    daemon.reload(config)


def _sd_notify(state: str) -> None:
    """systemd Type=notify readiness, without a dependency on libsystemd."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        try:
            s.sendto(state.encode(), path)
        except OSError as exc:
            log.debug("sd_notify: %s", exc)


def setup_logging(verbose: int) -> None:
    """iked's levels: quiet by default, -v for SA events, -vv for protocol detail."""
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s",
                        stream=sys.stderr)
    logging.getLogger("pyiked").setLevel(level)  # libraries (pyroute2) stay at WARNING


def load_certs(config, iked_dir: str):
    """The certificate store when a policy authenticates with certificates or EAP (whose
    server side signs); None for a PSK-only configuration. CertStoreError for a private
    key others may read, as iked refuses it."""
    if all(p.auth.method == "psk" for p in config.policies):
        return None
    store = CertStore.load(iked_dir, partial_chain=config.settings.cert_partial_chain)
    if not store.credentials:
        log.warning("%s: no certificate with its private key (private/local.key): "
                    "certificate and EAP policies cannot authenticate us", iked_dir)
    if not store.has_cas:
        log.warning("%s/ca holds no CA certificate: peers' certificates cannot be verified",
                    iked_dir)
    return store


def run(args, config, warnings=()) -> int:
    """Entry point from `pyiked` (pyiked.daemon.cli, which already printed the warnings)."""
    setup_logging(args.verbose)
    options = {}
    if args.natt_enforce:
        options["force_udp_encap"] = True
    iked_dir = getattr(args, "iked_dir", None) or "/etc/iked"
    try:
        options["certs"] = load_certs(config, iked_dir)
    except CertStoreError as exc:
        print(f"pyiked: {exc}", file=sys.stderr)
        return 1
    daemon = Daemon(
        config,
        backend=args.backend,
        backend_options={} if args.backend != "xfrm" else {"decouple": not config.settings.couple},
        natt_port=args.udpencap_port or 4500,
        families=(4,) if args.no_ipv6 else (4, 6),
        engine_options={"natt": "off" if args.natt_disable else "auto", **options},
    )
    daemon.iked_dir = iked_dir

    def reload_config():
        from pyiked.config import load_config

        cfg, warns = load_config(args.file, args.defines)
        for w in warns:
            log.warning("%s", w)
        return cfg

    asyncio.run(serve(daemon, reload_config))
    return 0
