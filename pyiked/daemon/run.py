"""The daemon: asyncio around the sans-I/O engine.

It owns the UDP sockets, the clock and the kernel backend. The pump is always the same:
datagrams in -> engine -> datagrams out, events -> backend, backend notices -> engine,
then re-arm the single timer the engine asks for.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import socket
import sys
import time

from pyiked.config.store import PolicyStore
from pyiked.core.certs import CertStore, CertStoreError
from pyiked.core.engine import Engine
from pyiked.core.errors import IkeError
from pyiked.core.events import ChildSAInstall, ChildSARemove, ChildSAUpdate, IkeSADown
from pyiked.core.ike_sa import State
from pyiked.kernel import backend_class
from pyiked.kernel.base import KernelError

from . import status
from .sockets import UdpEndpoint, source_address_for

log = logging.getLogger("pyiked.daemon")

# Seconds between retries of `active` policies without an IKE SA (iked's
# IKED_INITIATOR_INTERVAL).
INITIATOR_INTERVAL = 60.0


class Daemon:
    def __init__(self, config, *, backend="memory", ike_port=500, natt_port=4500, families=(4, 6),
                 bind_address="", random=os.urandom, engine_options=None, backend_options=None,
                 config_file=None, defines=None, force_passive=False):
        from pyiked.kernel import choose_backend

        self.config = config
        self.config_file = config_file  # what `reload` (and SIGHUP) reads again
        self.defines = dict(defines or {})
        self.force_passive = force_passive  # `pyiked -S`: passive whatever the file says
        # the global mode (`set active|passive`, pyikectl active|passive) and whether SAs
        # reach the kernel (`set couple|decouple`, pyikectl couple|decouple)
        self.active = config.settings.active and not force_passive
        self.coupled = config.settings.couple
        self.listeners: list = []  # callables(event) for each engine event (monitor)
        self.installed: dict[int, ChildSAInstall] = {}  # every negotiated CHILD SA, by id
        self.loaded: set[int] = set()  # the CHILD SAs now in the kernel backend
        self.unloaded: set[int] = set()  # taken out by decouple: never loaded again
        self._reinitiate: set[bytes] = set()  # IKE SAs deleted by couple, to start afresh
        self.initiator_interval = INITIATOR_INTERVAL
        self._initiator_timer = None
        self.started_at = time.time()
        self.log_level_at_start = logging.getLogger("pyiked").getEffectiveLevel()
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
            backend_esp=(self.backend.esp_encr, self.backend.esp_integ),
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
        self.backend.coupled = self.coupled
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

    def send_datagrams(self, items) -> None:
        """The engine's output, one batch per socket (one sendmmsg when compiled)."""
        if len(items) == 1:
            self.send_datagram(*items[0])
            return
        batches: dict = {}
        for data, local, remote in items:
            batches.setdefault((6 if ":" in remote[0] else 4, local[1]), []).append((data, local[0], remote))
        for key, batch in batches.items():
            ep = self.endpoints.get(key)
            if ep is None:
                log.warning("no socket for IPv%d port %d", *key)
                continue
            ep.send_many(batch)

    def _readable(self, ep: UdpEndpoint) -> None:
        now = self.now()
        for data, local, remote in ep.receive_batch(self.engine.guard, now):
            self.engine.receive_datagram(data, local, remote, now)
        self.pump()

    def pump(self) -> None:
        engine = self.engine
        self.send_datagrams(engine.datagrams_to_send())
        while (event := engine.next_event()) is not None:
            self._handle_event(event)
        for notice in self.backend.notices():
            engine.kernel_notice(notice, self.now())
        if engine._out:
            self.send_datagrams(engine.datagrams_to_send())
        self._arm_timer()

    def _handle_event(self, event) -> None:
        log.debug("event %r", event)
        if isinstance(event, ChildSAInstall):
            self.installed[event.child_id] = event
            if self.coupled:
                self._to_backend(event)
        elif isinstance(event, ChildSARemove):
            self.installed.pop(event.child_id, None)
            self.unloaded.discard(event.child_id)
            if event.child_id in self.loaded:
                self._to_backend(event)
        elif isinstance(event, ChildSAUpdate) and event.child_id in self.installed:
            self.installed[event.child_id] = dataclasses.replace(
                self.installed[event.child_id], local_addr=event.local_addr,
                remote_addr=event.remote_addr, encap=event.encap)
            if event.child_id in self.loaded:
                self._to_backend(event)
        elif isinstance(event, IkeSADown) and event.ike_sa in self._reinitiate:
            self._reinitiate.discard(event.ike_sa)
            if self.active and self._loop is not None:
                self._loop.call_soon(self._initiate_and_pump)
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:  # an observer's bug must not stop the pump
                log.exception("event listener %r failed", listener)

    def _to_backend(self, event) -> None:
        try:
            if isinstance(event, ChildSAInstall):
                self.backend.install(event)
                self.loaded.add(event.child_id)
            elif isinstance(event, ChildSARemove):
                self.loaded.discard(event.child_id)
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
        if self.active:
            self.initiate_active()
        self._schedule_initiator()
        self.pump()

    def _tun_readable(self) -> None:
        self.backend.handle_tun_readable()
        self.pump()

    def initiate(self, policy, child_ts=None):
        peers = self.store.peer_addresses(policy)  # a single address, or a resolved name
        if not peers:
            log.error("policy %s is active but has no single peer address", policy.name)
            return None
        peer = peers[0]
        locals_ = [a for a in self.store.local_addresses(policy) if a.version == peer.version]
        local = str(locals_[0]) if locals_ else source_address_for(str(peer))
        return self.engine.initiate(policy, self.now(), (local, self.engine.ike_port),
                                    (str(peer), self.engine.ike_port), child_ts)

    def initiate_active(self) -> int:
        """Initiate every `active` policy that has no IKE SA yet; how many were started."""
        busy = {sa.policy.name for sa in self.engine.ike_sas()
                if sa.policy is not None and sa.state != State.CLOSED}
        started = 0
        for policy in self.store.policies:
            if policy.active and policy.name not in busy:
                try:
                    if self.initiate(policy) is not None:
                        started += 1
                except (ValueError, IkeError) as exc:  # one bad rule must not stop the others
                    log.error("policy %s: %s", policy.name, exc)
        return started

    def _schedule_initiator(self) -> None:
        self._initiator_timer = self._loop.call_later(self.initiator_interval, self._initiator_tick)

    def _initiator_tick(self) -> None:
        """Like iked's sc_inittmr: an active policy whose IKE SA failed or went away (DPD,
        a peer's Delete, a hard lifetime) is initiated again within the interval."""
        if self.active:
            self.initiate_active()
            self.pump()
        self._schedule_initiator()

    # -- operator commands (control socket, signals) ---------------------------------------

    def reload(self, config) -> dict:
        """Swap the policy set atomically. Established SAs survive unless their policy is
        gone; the file's global mode and coupling apply (iked's reload), and active
        policies without an SA are initiated."""
        self.config = config
        self.store = PolicyStore(config)
        certs = None
        if self.iked_dir is not None:  # certificates, keys and CRLs are read again too
            try:
                certs = load_certs(config, self.iked_dir)
            except CertStoreError as exc:
                log.error("certificates not reloaded: %s", exc)
        deleted = self.engine.reload(self.store, self.now() if self._loop else None, certs=certs)
        self.active = config.settings.active and not self.force_passive
        if config.settings.couple != self.coupled:
            self.set_coupled(config.settings.couple)
        initiated = self.initiate_active() if self.active and self._loop else 0
        if self._loop is not None:
            self.pump()
        log.info("configuration reloaded: %d policies, %d IKE SAs deleted",
                 len(config.policies), deleted)
        return {"policies": len(config.policies), "deleted": deleted, "initiated": initiated}

    def load_file(self, path=None):
        """(config, warnings) from path (default: the daemon's file); ConfigError."""
        from pyiked.config import load_config

        path = path or self.config_file
        if not path:
            raise ValueError("no configuration file to reload")
        config, warnings = load_config(path, self.defines, data_plane=type(self.backend))
        for warning in warnings:
            log.warning("%s", warning)
        return config, warnings

    def reload_file(self, path=None) -> dict:
        """`reload` / `load FILE`: a bad file raises ConfigError and changes nothing."""
        config, warnings = self.load_file(path)
        return {**self.reload(config), "file": path or self.config_file,
                "warnings": [str(w) for w in warnings]}

    def reset(self, target: str) -> dict:
        """`reset sa|policy|user|all` as OpenIKED: sa deletes every SA (Deletes to the
        peers), policy reloads with no policies, user forgets the users, all does all three."""
        result = {"deleted": 0}
        if target in ("policy", "user", "all"):
            keep_policies = target == "user"
            keep_users = target == "policy"
            config = dataclasses.replace(
                self.config,
                policies=self.config.policies if keep_policies else (),
                users=self.config.users if keep_users else (),
            )
            result = self.reload(config)
        if target in ("sa", "all"):
            result["deleted"] += self.engine.reset_sas(self.now())
            self.pump()
        return result

    def reset_ca(self) -> dict:
        """`reset ca`: read ca/, certs/, private/ and crls/ again (OpenIKED's certstore
        reset); established SAs keep their authentication. ValueError without a store."""
        certs = load_certs(self.config, self.iked_dir) if self.iked_dir else None
        if certs is None:
            raise ValueError("this daemon has no certificate store (no rule uses certificates "
                             "or EAP)")
        self.engine.certs = certs
        self.engine.signature_auth = True
        return {"cas": len(certs.anchors), "certificates": len(certs.credentials),
                "crls": len(certs.crls)}

    def reset_id(self, identity) -> int:
        """`reset id`: delete the IKE SAs whose peer authenticated as identity."""
        deleted = self.engine.delete_by_identity(identity, self.now())
        self.pump()
        return deleted

    def set_active(self, active: bool) -> dict:
        """Global mode: passive never initiates; active initiates the active policies now."""
        self.active = active
        initiated = 0
        if active:
            initiated = self.initiate_active()
            self.pump()
        log.info("mode: %s", "active" if active else "passive")
        return {"mode": "active" if active else "passive", "initiated": initiated}

    def set_coupled(self, coupled: bool) -> dict:
        """couple: load the negotiated CHILD SAs into the kernel; decouple: take them out
        and keep negotiating without loading new ones (OpenIKED's pfkey_couple).

        A CHILD SA that was loaded once is not loaded again: its sequence numbers would
        restart while the peer's replay window remembers them, and a fresh window of ours
        would accept replays of captured packets (RFC 4303 §3.3.3, §3.4.3). Its IKE SA is
        deleted instead (a Delete to the peer), and an active policy initiates anew.
        """
        changed = coupled != self.coupled
        self.coupled = coupled
        self.backend.coupled = coupled
        deleted = 0
        if changed and not coupled:
            self._unload_all()
        elif changed:
            deleted = self._load_all()
        if self._loop is not None:
            self.pump()
        log.info("kernel %s", "coupled" if coupled else "decoupled")
        return {"coupled": coupled, "child_sas": len(self.loaded), "deleted": deleted}

    def _unload_all(self) -> None:
        last_of_flow = {}
        for child_id in sorted(self.loaded):
            last_of_flow[self.installed[child_id].reqid] = child_id
        for child_id in sorted(self.loaded, reverse=True):
            event = self.installed[child_id]
            self.unloaded.add(child_id)
            self._to_backend(ChildSARemove(
                event.ike_sa, child_id, event.reqid, event.protocol, event.local_addr,
                event.remote_addr, event.inbound.spi, event.outbound.spi, event.ts_local,
                event.ts_remote, remove_policies=last_of_flow[event.reqid] == child_id,
                reason="decoupled"))

    def _load_all(self) -> int:
        stale = {self.installed[c].ike_sa for c in self.unloaded if c in self.installed}
        first_of_flow = {}
        for child_id, event in sorted(self.installed.items()):
            if event.ike_sa in stale:
                continue
            owner = first_of_flow.setdefault(event.reqid, child_id)
            # the flow's first SA brings its policies; the others ride on them
            self._to_backend(dataclasses.replace(event, rekey_of=None if owner == child_id else owner))
        deleted = 0
        for ike_sa_id in stale:
            if self.engine.delete_ike_sa(ike_sa_id, self.now(), "recoupled: its CHILD SAs "
                                         "cannot be loaded again"):
                self._reinitiate.add(ike_sa_id)
                deleted += 1
        return deleted

    def _initiate_and_pump(self) -> None:
        self.initiate_active()
        self.pump()

    def set_log_verbose(self, verbose: bool) -> str:
        """`log verbose` shows protocol detail (DEBUG); `log brief` goes back to the start
        level, at most INFO (iked's log_setverbose 2 / 0)."""
        level = logging.DEBUG if verbose else max(self.log_level_at_start, logging.INFO)
        logging.getLogger("pyiked").setLevel(level)
        return logging.getLevelName(level)

    def sa_snapshot(self) -> list[dict]:
        counters = {}
        if self.coupled:  # decoupled: nothing of ours is in the kernel
            try:
                counters = self.backend.sa_counters()
            except (KernelError, OSError) as exc:  # cannot answer: show sa without bytes
                log.warning("kernel backend %s: SA counters: %s", self.backend.name, exc)
        return status.sas(self.engine, self.now(), counters)

    def status(self) -> dict:
        return {
            "mode": "active" if self.active else "passive",
            "coupled": self.coupled,
            "log_level": logging.getLevelName(logging.getLogger("pyiked").getEffectiveLevel()),
            "backend": self.backend.name,
            "policies": len(self.config.policies),
            "config_file": self.config_file,
            "uptime": round(time.time() - self.started_at, 3),
        }

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
        for timer in (self._timer, self._initiator_timer):
            if timer is not None:
                timer.cancel()
        for ep in self.endpoints.values():
            if self._loop is not None:
                self._loop.remove_reader(ep.fileno())
            ep.close()
        self.backend.close()


async def serve(daemon: Daemon, reload_config=None, *, control_path: str | None = None,
                metrics_address: str | None = None) -> None:
    """Run until SIGTERM/SIGINT: the engine, the control socket at control_path and, when
    metrics_address (host:port) is given, the Prometheus endpoint. Both are open before
    READY=1, so systemd reports a daemon that cannot bind them as failed."""
    from .control import ControlServer

    loop = asyncio.get_running_loop()
    control = metrics = None
    if control_path:
        control = ControlServer(daemon, control_path)
        await control.start()
    try:
        if metrics_address:
            from .metrics import MetricsServer, parse_listen_address

            metrics = MetricsServer(daemon, *parse_listen_address(metrics_address))
            await metrics.start()
        daemon.start(loop)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        if reload_config is None and daemon.config_file:
            reload_config = lambda: daemon.load_file()[0]
        if reload_config is not None:
            loop.add_signal_handler(signal.SIGHUP, lambda: _reload(daemon, reload_config))
        _sd_notify("READY=1")
        log.info("pyiked running (backend %s)", daemon.backend.name)
        await stop.wait()
        _sd_notify("STOPPING=1")
        await daemon.shutdown()
    finally:
        if control is not None:
            control.close()
        if metrics is not None:
            metrics.close()


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
    if args.metrics:  # refuse a bad --metrics before binding anything
        from .metrics import MetricsError, check_available, parse_listen_address

        try:
            parse_listen_address(args.metrics)
            check_available()
        except MetricsError as exc:
            print(f"pyiked: {exc}", file=sys.stderr)
            return 1
    options = {}
    if args.natt_enforce:
        options["force_udp_encap"] = True
    iked_dir = getattr(args, "iked_dir", None) or "/etc/iked"
    try:
        options["certs"] = load_certs(config, iked_dir)
    except CertStoreError as exc:
        print(f"pyiked: {exc}", file=sys.stderr)
        return 1
    backend_options = {}
    if backend_class(args.backend).name == "userspace":
        table = getattr(args, "route_table", 220)
        backend_options = {"route_table": table, "route_priority": table}
    daemon = Daemon(
        config,
        backend=args.backend,
        backend_options=backend_options,
        natt_port=args.udpencap_port or 4500,
        families=(4,) if args.no_ipv6 else (4, 6),
        engine_options={"natt": "off" if args.natt_disable else "auto", **options},
        config_file=args.file,
        defines=args.defines,
        force_passive=args.start_passive,
    )
    daemon.iked_dir = iked_dir
    from .control import ControlSocketError
    from .metrics import MetricsError

    try:
        asyncio.run(serve(daemon, control_path=args.socket, metrics_address=args.metrics))
    except (ControlSocketError, MetricsError) as exc:
        print(f"pyiked: {exc}", file=sys.stderr)
        if daemon._loop is None:
            daemon.close()
        return 1
    return 0
