"""The sans-I/O IKEv2 engine: every IKE SA of this host, driven from outside.

    engine.receive_datagram(data, local_addr, remote_addr, now)
    engine.datagrams_to_send() -> [(data, local_addr, remote_addr)]
    engine.next_event() -> Event | None
    engine.get_timer() -> float | None;  engine.handle_timer(now)
    engine.initiate(policy, now), engine.delete_ike_sa(id, now), engine.delete_child_sa(...),
    engine.rekey_ike_sa(id, now), engine.rekey_child_sa(child_id, now),
    engine.create_child_sa(id, now, ts_local, ts_remote),
    engine.kernel_notice(notice, now), engine.child_install_failed(child_id, reason, now)

Addresses are (ip string, port) tuples. Time is always passed in; randomness comes from
the injected `random(n)` so tests are deterministic. Nothing raises out of the engine: a
protocol error becomes the RFC reaction (a notify or a silent drop), and an unexpected
internal error is logged and counted without touching other SAs.
"""

from __future__ import annotations

import functools
import heapq
import ipaddress
import itertools
import logging
import os
from collections import Counter, deque

from pyiked import __version__
from pyiked._fast import dispatch, sk, wire

from . import auth, child_sa, cp, events, lifecycle, proposals, rekey
from .errors import IkeError, SilentDrop
from .exchanges import create_child_sa, ike_auth, ike_sa_init, informational
from .limits import Guard
from .iana import IKE_PORT, NAT_T_PORT, ExchangeType, NotifyType, ProtocolId
from .identity import identity_matches
from .ike_sa import HALF_OPEN, IkeSA, State
from .child_sa import ChildState
from .pool import Pools
from .randomness import RandomPool
from .reqids import Reqids

log = logging.getLogger("pyiked.engine")

# The Vendor ID payload of `set vendorid` (§3.12: opaque to peers), named like OpenIKED's
# "OpenIKED-<version>" so an operator reading a peer's log knows what answered.
VENDOR_ID = b"pyiked-" + __version__.encode()


class Engine:
    # §2.4: retransmissions double (OpenIKED: first after 2 s, 5 tries; `set retransmit_*`)
    retransmit_base = 2.0
    keepalive_interval = 20.0  # RFC 3948 §4, OpenIKED's 20 s
    max_child_sas = 64  # per IKE SA; more are refused with NO_ADDITIONAL_SAS (§1.3)

    def __init__(self, store, *, random=os.urandom, spi_allocator=None, ike_port=IKE_PORT,
                 natt_port=NAT_T_PORT, force_udp_encap=False, natt="auto",
                 backend_supports_transport=True, strict=False, certs=None, backend_esp=(None, None)):
        self.store = store
        # OS randomness comes through a pool (one getrandom per ~50 handshakes instead of
        # seven per handshake); an injected source (tests) is used as given
        self.random = RandomPool() if random is os.urandom else random
        self.spi_allocator = spi_allocator
        self.ike_port = ike_port
        self.natt_port = natt_port
        # a userspace data plane sees ESP only inside UDP: make the peer encapsulate
        self.force_udp_encap = force_udp_encap
        self.natt = natt != "off"  # `pyiked -T`: no NAT detection, never float to 4500
        self.backend_supports_transport = backend_supports_transport
        self.backend_esp = backend_esp  # (encr IDs, integ IDs) the data plane carries; None: any
        self._child_specs: dict = {}
        self.strict = strict  # tests: re-raise internal errors instead of logging them
        self.certs = certs  # pyiked.core.certs.CertStore: our certificates, CAs, CRLs
        self.signature_auth = certs is not None  # RFC 7427: announce signature hashes
        self._apply_settings(store.settings)
        self.pools = Pools()  # configuration payload address pools (pyiked.core.pool)
        self.on_esp = None  # callable(packet, local_addr, remote_addr) for ESP-in-UDP
        self.sas: dict[bytes, IkeSA] = {}  # our SPI -> IKE SA
        self.half_open: dict[tuple, IkeSA] = {}  # (spi_i, remote addr) -> responder SA
        # established SAs by the peer's identity (its remote_id) and by its IP: our SPI,
        # or a set of them once a second SA shares the key (see spis_of)
        self.by_identity: dict = {}
        self.by_peer_ip: dict = {}
        self.children_by_spi: dict[int, object] = {}  # inbound SPI -> CHILD SA (its .ike_sa)
        self.stats = Counter()
        self.guard = Guard(self, store.settings)  # cookies and half-open limits (§2.6)
        self._out: list = []
        self._events: deque = deque()
        self._timers: list = []  # heap of (deadline, our SPI); stale entries are skipped
        self._child_ids = itertools.count(1)
        self.reqids = Reqids()  # flows' reqids, counted by the CHILD SAs carrying them
        self._handlers = {
            ExchangeType.IKE_AUTH: ike_auth.respond,
            ExchangeType.INFORMATIONAL: informational.respond,
            ExchangeType.CREATE_CHILD_SA: create_child_sa.respond,
        }

    # -- the sans-I/O surface ----------------------------------------------------------

    def receive_datagram(self, data: bytes, local_addr, remote_addr, now: float) -> None:
        try:
            self._receive(data, local_addr, remote_addr, now)
        except Exception:
            if self.strict:
                raise
            self.stats["internal_errors"] += 1
            log.exception("internal error on a datagram from %s", remote_addr)

    def datagrams_to_send(self) -> list:
        out, self._out = self._out, []
        return out

    def next_event(self):
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        return self._timers[0][0] if self._timers else None

    def handle_timer(self, now: float) -> None:
        while self._timers and self._timers[0][0] <= now:
            deadline, spi = heapq.heappop(self._timers)
            sa = self.sas.get(spi)
            if sa is None or sa.timer_at != deadline:
                continue  # stale entry: the SA is gone or has a different deadline
            sa.timer_at = None
            try:
                sa.on_timer(now)
            except Exception:
                if self.strict:
                    raise
                self.stats["internal_errors"] += 1
                log.exception("internal error in a timer of %r", sa)
            if sa.state != State.CLOSED:
                deadline = sa.next_deadline()
                if deadline is not None and deadline <= now:
                    # a deadline that did not move would spin this loop: defer and count it
                    self.stats["timer_not_advanced"] += 1
                    deadline = now + 0.001
                self.schedule(sa, deadline)

    # -- commands ------------------------------------------------------------------------

    def initiate(self, policy, now: float, local_addr=None, remote_addr=None, child_ts=None) -> bytes:
        """Start an IKE SA (and its first CHILD SA) with the policy's peer.

        Returns the new SA's ike_sa id (spi_i + 8 zero bytes until the responder answers).
        """
        remote = remote_addr or (_single_host(policy.peer, "peer"), self.ike_port)
        local = local_addr or (_single_host(policy.local, "local"), self.ike_port)
        sa = ike_sa_init.initiate(self, policy, local, remote, now, child_ts)
        self.stats["handshakes_started"] += 1
        return sa.ike_sa_id

    def delete_ike_sa(self, ike_sa_id: bytes, now: float, reason="deleted by operator") -> bool:
        sa = self.find(ike_sa_id)
        if sa is None:
            return False
        if sa.state in HALF_OPEN:
            self.destroy(sa, reason, now)
        else:
            informational.delete_ike(sa, now, reason)
            self.schedule(sa, sa.next_deadline())
        return True

    def delete_child_sa(self, child_id: int, now: float, reason="deleted by operator") -> bool:
        found = self._child(child_id)
        if found is None:
            return False
        sa, child = found
        if child.state != ChildState.DELETING:
            informational.delete_child(sa, child, now, reason)
            self.schedule(sa, sa.next_deadline())
        return True

    def rekey_child_sa(self, child_id: int, now: float) -> bool:
        """Rekey a CHILD SA now (§2.8); False if unknown or not in a state to rekey."""
        found = self._child(child_id)
        if found is None or not rekey.start_child_rekey(*found, now):
            return False
        self.schedule(found[0], found[0].next_deadline())
        return True

    def rekey_ike_sa(self, ike_sa_id: bytes, now: float) -> bool:
        """Rekey an IKE SA (§2.18); it starts once its exchanges in flight are done."""
        sa = self.find(ike_sa_id)
        if sa is None or sa.state != State.ESTABLISHED or rekey.ike_rekey_in_flight(sa):
            return False
        rekey.start_ike_rekey(sa, now)
        self.schedule(sa, sa.next_deadline())
        return True

    def create_child_sa(self, ike_sa_id: bytes, now: float, ts_local=None, ts_remote=None,
                        policy=None) -> bool:
        """Another CHILD SA on an IKE SA (§1.3.1), for the policy's flows or the given TS."""
        sa = self.find(ike_sa_id)
        if sa is None or sa.state != State.ESTABLISHED:
            return False
        create_child_sa.send_child(sa, policy or sa.policy, now, ts_local, ts_remote)
        self.schedule(sa, sa.next_deadline())
        return True

    def _child(self, child_id: int):
        for sa in self.sas.values():
            child = sa.children.get(child_id)
            if child is not None:
                return sa, child
        return None

    def child_install_failed(self, child_id: int, reason: str, now: float) -> None:
        """The kernel refused a CHILD SA: tear it down and tell the peer with a Delete."""
        log.error("CHILD SA #%d could not be installed: %s", child_id, reason)
        self.delete_child_sa(child_id, now, f"install failed: {reason}")

    def kernel_notice(self, notice, now: float) -> None:
        if isinstance(notice, events.KernelExpire):
            lifecycle.kernel_expire(self, notice, now)
        elif isinstance(notice, events.KernelActivity):
            lifecycle.esp_activity(self, notice, now)

    def reload(self, store, now: float | None = None, certs=None) -> int:
        """Swap the policy set (and the certificate store, when given); established SAs
        keep running unless their policy is gone.

        An SA whose policy (by name) is in the new set moves to the new Policy object, so
        later rekeys and INITIAL_CONTACT see the new set. One whose policy is gone is
        deleted with a Delete to the peer (half-open initiations silently). A responder's
        half-open SA stays: IKE_AUTH selects its policy from the new store anyway.
        Returns the number of IKE SAs deleted (needs `now`; without it none are).
        """
        self.store = store
        self._child_specs.clear()  # held the old policies' proposals
        self.guard.configure(store.settings)
        self._apply_settings(store.settings)
        if certs is not None:
            self.certs = certs
            self.signature_auth = True
        deleted = 0
        for sa in self.ike_sas():
            if sa.policy is None or sa.state in (State.CLOSED, State.DELETING):
                continue
            policy = store.get(sa.policy.name)
            if policy is not None:
                sa.policy = policy
            elif now is not None and (sa.initiator or sa.state not in HALF_OPEN):
                if self.delete_ike_sa(sa.ike_sa_id, now, f"policy {sa.policy.name} removed"):
                    deleted += 1
        return deleted

    def _apply_settings(self, settings) -> None:
        """The global `set` options the engine reads (at start and on every reload)."""
        self.half_open_timeout = float(settings.halfopen_timeout)
        self.retransmit_timeout = float(settings.retransmit_timeout)
        self.retransmit_tries = settings.retransmit_tries
        self.fragmentation = settings.fragmentation  # RFC 7383, only with `set fragmentation`
        self.fragment_size = settings.fragment_size  # 0: OpenIKED's per-family defaults
        self.rsa_pss = settings.rsa_pss  # RFC 7427 RSA signatures with PSS padding
        self.vendor_id = VENDOR_ID if settings.vendorid else None  # sent in IKE_SA_INIT
        self.single_ike_sa = settings.enforcesingleikesa  # one IKE SA per peer identity

    def reset_sas(self, now: float, reason="reset by operator") -> int:
        """Delete every IKE SA (`ikectl reset sa`): a Delete to each established peer
        (§1.4.1), half-open ones silently. Returns how many were deleted."""
        return sum(self.delete_ike_sa(sa.ike_sa_id, now, reason) for sa in self.ike_sas()
                   if sa.state not in (State.CLOSED, State.DELETING))

    def delete_by_identity(self, identity, now: float, reason="reset by operator") -> int:
        """Delete the established IKE SAs whose peer authenticated as `identity` (an
        Identity; FQDNs and DNs compare as identity_matches does). `ikectl reset id`."""
        spis = [spi for remote_id, found in self.by_identity.items()
                if identity_matches(identity, remote_id) for spi in spis_of(found)]
        deleted = 0
        for spi in spis:
            sa = self.sas.get(spi)
            if sa is not None and sa.state != State.DELETING and \
                    self.delete_ike_sa(sa.ike_sa_id, now, reason):
                deleted += 1
        return deleted

    def find(self, ike_sa_id: bytes) -> IkeSA | None:
        spi_i, spi_r = ike_sa_id[:8], ike_sa_id[8:16]
        sa = self.sas.get(spi_r) or self.sas.get(spi_i)
        return sa if sa is not None and sa.spi_i == spi_i else None

    def ike_sas(self):
        return list(self.sas.values())

    # -- receiving -------------------------------------------------------------------------

    def _receive(self, data, local_addr, remote_addr, now):
        # dispatch knows the standard ports; ours may differ (`-p`, the demo)
        info = dispatch.classify(data, IKE_PORT if local_addr[1] == self.ike_port else NAT_T_PORT)
        kind = info[0]
        if kind != _KIND_IKE:
            if kind == _KIND_ESP:
                if self.on_esp is not None:
                    self.on_esp(data, local_addr, remote_addr)
                return
            self.stats["dropped_" + dispatch.KIND_NAMES.get(kind, "junk")] += 1
            return
        if info[4] == _IKE_SA_INIT:
            # §2.6: cookies and half-open limits on the raw bytes, before any object
            if not info[5] & 0x20 and info[3] == _ZERO_SPI and \
                    not self.guard.admit_init(data, info[1], local_addr, remote_addr, now):
                return
        elif (info[3] if info[5] & 0x08 else info[2]) not in self.sas:
            self.stats["dropped_unknown_spi"] += 1
            self.guard.unknown_spi(data, info[1], local_addr, remote_addr, now)  # §2.21.4
            return
        raw = data[info[1]:] if info[1] else data
        try:
            message = wire.decode(raw)
        except IkeError as exc:
            self._undecodable(raw, info, exc, local_addr, remote_addr)
            return
        if message.exchange_type == ExchangeType.IKE_SA_INIT:
            self._receive_init(message, raw, local_addr, remote_addr, now)
            return
        our_spi = message.spi_r if message.is_initiator else message.spi_i
        sa = self.sas.get(our_spi)
        if sa is None or (sa.spi_i, sa.spi_r) != (message.spi_i, message.spi_r) or \
                message.is_initiator == sa.initiator:
            self.stats["dropped_unknown_spi"] += 1
            return
        try:
            sa.receive(message, raw, remote_addr, local_addr, now)
        except SilentDrop as exc:
            self.stats["dropped_unauthenticated"] += 1
            log.debug("%r: dropped: %s", sa, exc)
        except IkeError as exc:
            self.stats["dropped_invalid"] += 1
            log.info("%r: dropped: %s", sa, exc)
        if sa.state != State.CLOSED:
            self.schedule(sa, sa.next_deadline())

    def _undecodable(self, raw, info, exc, local_addr, remote_addr):
        """A message the codec refused: the RFC reaction for unprotected requests only."""
        self.stats["dropped_malformed"] += 1
        log.debug("malformed message from %s: %s", remote_addr, exc)
        is_response = bool(info[5] & 0x20)
        if exc.notify_type is None or is_response or info[4] != ExchangeType.IKE_SA_INIT:
            return  # §2.21: never answer a response; protected junk is dropped
        if exc.notify_type in (NotifyType.INVALID_MAJOR_VERSION, NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD,
                               NotifyType.INVALID_SYNTAX):
            header = wire.Message(info[2], b"\0" * 8, ExchangeType.IKE_SA_INIT, 0x20, info[6],
                                  [wire.Notify(exc.notify_type, exc.data)])
            self.send(_marker(local_addr, self.ike_port) + wire.encode(header), local_addr, remote_addr)

    def _receive_init(self, message, raw, local_addr, remote_addr, now):
        if message.is_response:
            sa = self.sas.get(message.spi_i)
            if sa is None or not sa.initiator or sa.state != State.INIT_SENT or sa.pending is None \
                    or remote_addr[0] != sa.remote_addr[0]:
                self.stats["dropped_unexpected_response"] += 1
                return
            request, sa.pending = sa.pending, None
            try:
                request.on_response(message, raw, now)
            except SilentDrop as exc:  # a duplicate of an answer we already acted on
                if sa.pending is None:
                    sa.pending = request
                log.debug("%r: %s", sa, exc)
                return
            except IkeError as exc:
                self.fail(sa, str(exc), now)
                return
            if sa.state != State.CLOSED:
                self.schedule(sa, sa.next_deadline())
            return
        if message.spi_r != b"\0" * 8 or not message.is_initiator:
            self.stats["dropped_invalid"] += 1
            return
        key = (message.spi_i, remote_addr)
        existing = self.half_open.get(key)
        if existing is not None:
            if existing.init_request == raw and existing.last_response:
                existing.transmit(existing.last_response[1], now)  # §2.1 retransmission
            return
        try:
            sa = ike_sa_init.respond(self, message, raw, local_addr, remote_addr, now)
        except IkeError as exc:
            self.stats["init_refused_" + (exc.notify_type.name if exc.notify_type else "drop")] += 1
            log.info("IKE_SA_INIT from %s refused: %s", remote_addr, exc)
            if exc.notify_type is not None:
                self.send(_marker(local_addr, self.ike_port) + ike_sa_init.error_response(message, exc),
                          local_addr, remote_addr)
            self._events.append(events.HandshakeFailed(remote_addr, exc.notify_type.name if exc.notify_type else str(exc), False))
            return
        self.register(sa)
        sa.init_key = key
        self.half_open[key] = sa
        self.guard.opened(remote_addr[0])
        self.stats["handshakes_started"] += 1
        self.schedule(sa, sa.next_deadline())

    def request_handler(self, exchange: int):
        return self._handlers[exchange]

    def _half_open_done(self, sa) -> None:
        key = sa.init_key
        if key is not None:
            sa.init_key = None
            if self.half_open.get(key) is sa:
                del self.half_open[key]
                self.guard.closed(key[1][0])

    # -- services for IKE SAs and exchanges ------------------------------------------------

    def send(self, data: bytes, local_addr, remote_addr) -> None:
        self._out.append((data, local_addr, remote_addr))

    def schedule(self, sa: IkeSA, deadline: float | None) -> None:
        if deadline is None:
            return
        if sa.timer_at is None or deadline < sa.timer_at:
            sa.timer_at = deadline
            heapq.heappush(self._timers, (deadline, sa.our_spi))  # SPIs differ: no tie

    def register(self, sa: IkeSA) -> None:
        self.sas[sa.our_spi] = sa

    def new_spi(self) -> bytes:
        while True:
            spi = self.random(8)
            if spi != b"\0" * 8 and spi not in self.sas:
                return spi

    def allocate_spi(self, protocol: int, sa: IkeSA) -> int:
        if self.spi_allocator is not None:
            return self.spi_allocator(protocol, sa.remote_addr[0], sa.local_addr[0])
        while True:
            spi = int.from_bytes(self.random(4), "big")
            if spi > 255 and spi not in self.children_by_spi:  # RFC 4303 §2.1: 1..255 reserved
                return spi

    def next_child_id(self) -> int:
        return next(self._child_ids)

    def reqid_for(self, policy_name, ts_local: tuple, ts_remote: tuple) -> int:
        return self.reqids.lookup(policy_name, ts_local, ts_remote)

    def child_lifetime(self, policy):
        # 256 steps of jitter spread rekeys enough (10,800 s: 4 s apart) and keep the
        # distinct Lifetime objects few, so CHILD SAs share them (child_sa.lifetime_for)
        jitter = self.random(1)[0] / 255
        return child_sa.lifetime_for(policy, jitter)

    def make_sk_ciphers(self, sa: IkeSA) -> None:
        s, k = sa.suite, sa.keys
        i_to_r = sk.SKCipher(s.encr_id, s.encr_key_bits, s.integ_id, k.sk_ei, k.sk_ai, random=self.random)
        r_to_i = sk.SKCipher(s.encr_id, s.encr_key_bits, s.integ_id, k.sk_er, k.sk_ar, random=self.random)
        sa.sk_out, sa.sk_in = (i_to_r, r_to_i) if sa.initiator else (r_to_i, i_to_r)

    def suite_allowed(self, policy, suite) -> bool:
        """Whether a policy's IKE proposals accept an already negotiated suite (asked at
        every IKE_AUTH; policies and the shared suites are immutable: remembered)."""
        key = (id(policy), id(suite))
        hit = _ALLOWED.get(key)
        if hit is not None and hit[0] is policy and hit[1] is suite:
            return hit[2]
        try:
            proposals.select(_as_sa(suite), policy.ike_proposals_or_default, ProtocolId.IKE,
                             allow_legacy=True)
            allowed = True
        except IkeError:
            allowed = False
        if len(_ALLOWED) >= 4096:
            _ALLOWED.clear()
        _ALLOWED[key] = (policy, suite, allowed)  # holds both: their ids stay theirs
        return allowed

    def child_specs(self, policy) -> tuple:
        """The policy's CHILD proposals cut to what the data plane can carry, so that we
        never agree on a transform (ESP only) the kernel backend would then refuse."""
        specs = policy.child_proposals_or_default
        encr_ok, integ_ok = self.backend_esp
        if (encr_ok is None and integ_ok is None) or policy.protocol != ProtocolId.ESP:
            return specs
        cut = self._child_specs.get(id(specs))
        if cut is None or cut[0] is not specs:  # keyed by id: the entry holds specs alive
            cut = (specs, proposals.carried_specs(specs, encr_ok, integ_ok))
            self._child_specs[id(specs)] = cut
        return cut[1]

    def extra_init_payloads(self, sa) -> list:
        # §3.7: CERTREQ in the IKE_SA_INIT response when the peer is to show a certificate
        return auth.certreq(sa, sa.policy)

    def start_auth(self, sa, now) -> None:
        ike_auth.start(sa, now)

    def first_contact(self, sa) -> bool:
        """§2.4: INITIAL_CONTACT when we hold no other established IKE SA with this peer."""
        return sa.remote_addr[0] not in self.by_peer_ip

    def established(self, sa: IkeSA, now: float) -> None:
        sa.state = State.ESTABLISHED
        sa.established_at = now
        sa.init_request = sa.init_response = b""  # AUTH is done: free the SA_INIT bytes
        sa.auth_ctx = None  # and what a multi-step IKE_AUTH kept (EAP state, the MSK)
        self._half_open_done(sa)
        if sa.peer_initial_contact:
            self._initial_contact(sa, sa.remote_id, now)
        if self.single_ike_sa:
            self._replace_same_identity(sa, now)
        self.index_established(sa)
        lifecycle.on_established(sa, now)
        self.stats["handshakes_completed"] += 1
        self._events.append(events.IkeSAUp(
            ike_sa=sa.ike_sa_id, initiator=sa.initiator, local_addr=sa.local_addr,
            remote_addr=sa.remote_addr, local_id=str(sa.local_id), remote_id=str(sa.remote_id),
            policy=sa.policy.name, algorithms=sa.suite.describe(), nat_local=sa.nat_local,
            nat_remote=sa.nat_remote,
        ))
        log.info("%r established with %s (%s)", sa, sa.remote_id, sa.policy.name)

    def auth_done(self, sa) -> None:
        """IKE_AUTH is over (its CHILD SA made or refused): keep only what later exchanges
        need. SK_d derives CHILD SA keys and a rekey's SKEYSEED (§2.17, §2.18), which use
        the nonces of their own CREATE_CHILD_SA exchange; SK_e/SK_a live in the SK
        ciphers. SK_pi/SK_pr, the IKE_SA_INIT nonces and the peer's CERTREQ served
        only the AUTH payloads (§2.15)."""
        sa.keys = None
        sa.nonce_i = sa.nonce_r = b""
        sa.peer_certreq = None
        sa.offered_sa = None

    def index_established(self, sa) -> None:
        _index_add(self.by_peer_ip, sa.remote_addr[0], sa.our_spi)
        if sa.remote_id is not None:
            _index_add(self.by_identity, sa.remote_id, sa.our_spi)

    def unindex(self, sa) -> None:
        _index_discard(self.by_peer_ip, sa.remote_addr[0], sa.our_spi)
        if sa.remote_id is not None:
            _index_discard(self.by_identity, sa.remote_id, sa.our_spi)

    def emit(self, event) -> None:
        self._events.append(event)

    def _initial_contact(self, sa, key, now):
        """§2.4: the peer lost its state: the older IKE SAs of this identity are stale."""
        for spi in spis_of(self.by_identity.get(key)):
            other = self.sas.get(spi)
            if other is not None and other is not sa and other.policy is sa.policy:
                self.destroy(other, "replaced after INITIAL_CONTACT", now)

    def _replace_same_identity(self, sa, now):
        """`set enforcesingleikesa`, as OpenIKED: the newest IKE SA of a peer identity
        wins, whatever its policy; the older ones are deleted with a Delete (§1.4.1)."""
        for spi in spis_of(self.by_identity.get(sa.remote_id)):
            other = self.sas.get(spi)
            if other is not None and other is not sa and other.state == State.ESTABLISHED:
                self.delete_ike_sa(other.ike_sa_id, now, "replaced by a newer IKE SA of this identity")

    def add_child(self, sa, child, event) -> None:
        sa.children[child.child_id] = child
        child.ike_sa = sa
        self.children_by_spi[child.spi_in] = child
        self.reqids.hold(child.reqid)
        self.stats["child_sas_created"] += 1
        self._events.append(event)
        if log.isEnabledFor(logging.INFO):  # the selectors' text costs more than the rest
            log.info("%r: CHILD SA #%d up (in %08x out %08x) %s === %s", sa, child.child_id, child.spi_in,
                     child.spi_out, ", ".join(map(str, child.ts_local)), ", ".join(map(str, child.ts_remote)))

    def address_leased(self, sa, address, released: bool) -> None:
        self.stats["addresses_released" if released else "addresses_leased"] += 1
        self._events.append(events.AddressLease(sa.ike_sa_id, sa.eap_identity or str(sa.remote_id),
                                                address, released))

    def child_failed(self, sa, reason: str) -> None:
        self.stats["child_failed"] += 1
        self._events.append(events.HandshakeFailed(sa.remote_addr, "CHILD SA: " + reason, sa.initiator))

    def delete_unwanted_child(self, sa, proposal, sa_p, now) -> None:
        """§2.21.3: delete a CHILD SA the responder created but we cannot accept."""
        if sa_p.proposals and len(sa_p.proposals[0].spi) == 4:
            spi = sa_p.proposals[0].spi
            sa.send_request(ExchangeType.INFORMATIONAL, lambda: [wire.Delete(proposal.policy.protocol, [spi])],
                            lambda payloads, t: None, now)

    def mark_child_deleting(self, child) -> None:
        child.state = ChildState.DELETING

    def child_delete_crossed(self, sa, child) -> bool:
        """§1.4.1: if we are deleting it too, the response carries no Delete for it."""
        return child.state == ChildState.DELETING

    def remove_child(self, sa, child, reason: str, now: float, remove_policies=True) -> None:
        if sa.children.pop(child.child_id, None) is None:
            return
        self.children_by_spi.pop(child.spi_in, None)
        # the flow keeps its policies while another CHILD SA (its rekey, or one of another
        # IKE SA with the same selectors) carries it
        last = self.reqids.release(child.reqid)
        remove_policies = remove_policies and last
        self.stats["child_sas_removed"] += 1
        self._events.append(child_sa.remove_event(sa, child, remove_policies, reason))
        log.info("%r: CHILD SA #%d removed: %s", sa, child.child_id, reason)

    def child_soft_expired(self, sa, child, now) -> None:
        lifecycle.soft_expired(sa, child, now)

    def lifecycle_timer(self, sa, now: float) -> None:
        lifecycle.timer(sa, now)

    def peer_moved(self, sa, old_addr, now) -> None:
        log.info("%r: peer moved from %s to %s", sa, old_addr, sa.remote_addr)
        if old_addr[0] != sa.remote_addr[0] and sa.state == State.ESTABLISHED:
            _index_discard(self.by_peer_ip, old_addr[0], sa.our_spi)
            _index_add(self.by_peer_ip, sa.remote_addr[0], sa.our_spi)
        encap = events.Encapsulation(sa.local_addr[1], sa.remote_addr[1]) if sa.natted else None
        for child in sa.children.values():
            self._events.append(events.ChildSAUpdate(
                sa.ike_sa_id, child.child_id, ipaddress.ip_address(sa.local_addr[0]),
                ipaddress.ip_address(sa.remote_addr[0]), encap))

    def fail(self, sa, reason: str, now: float, peer_dead=False) -> None:
        """End an SA after an error or a dead peer."""
        if sa.state in HALF_OPEN:
            self.stats["handshakes_failed"] += 1
            self.stats["handshakes_failed_" + failure_kind(reason, peer_dead)] += 1
            self._events.append(events.HandshakeFailed(sa.remote_addr, reason, sa.initiator))
        log.info("%r failed: %s", sa, reason)
        self.destroy(sa, reason, now)

    def destroy(self, sa, reason: str, now: float) -> None:
        """Forget an IKE SA and everything under it (no message is sent)."""
        if sa.state == State.CLOSED:
            return
        # announced (IkeSAUp, IkeSARekeyed) and not replaced by a successor that lives on
        was_up = sa.established_at is not None and sa.state != State.REKEYED
        for child in list(sa.children.values()):
            self.remove_child(sa, child, reason, now)
        if sa.leases:
            cp.release(sa, now)  # the addresses go back to their pools with the IKE SA
        sa.state = State.CLOSED
        sa.pending = None
        sa.queue = ()
        if self.sas.get(sa.our_spi) is sa:
            del self.sas[sa.our_spi]
        self._half_open_done(sa)
        self.unindex(sa)
        rekey.forget(sa, now)
        if was_up:
            self.stats["ike_sas_removed"] += 1
            self._events.append(events.IkeSADown(sa.ike_sa_id, reason, sa.remote_addr))
            log.info("%r closed: %s", sa, reason)


_ZERO_SPI = b"\0" * 8
_KIND_IKE, _KIND_ESP = dispatch.IKE, dispatch.ESP
_IKE_SA_INIT = int(ExchangeType.IKE_SA_INIT)
_NOTIFY_NAMES = frozenset(t.name for t in NotifyType)


def failure_kind(reason: str, peer_dead: bool = False) -> str:
    """A bounded label for a failed handshake (stats key handshakes_failed_<kind>): the
    notify name an IkeError carried, "timeout" when the peer stopped answering,
    "half_open_timeout", or "other"."""
    if peer_dead:
        return "timeout"
    if reason == "half-open timeout":
        return "half_open_timeout"
    head = reason.split(":", 1)[0].split(" ", 1)[0]
    return head if head in _NOTIFY_NAMES else "other"


def _single_host(network, what) -> str:
    if network is None or network.num_addresses != 1:
        raise ValueError(f"initiating needs a single `{what}` address in the policy (or pass one)")
    return str(network.network_address)


# by_identity and by_peer_ip map a key to our SPI (bytes) while one SA has it, and to a
# set of SPIs only from the second on: most peers hold one IKE SA, and an empty set costs
# 216 octets.

def _index_add(index: dict, key, spi: bytes) -> None:
    found = index.get(key)
    if found is None:
        index[key] = spi
    elif type(found) is bytes:
        if found != spi:
            index[key] = {found, spi}
    else:
        found.add(spi)


def _index_discard(index: dict, key, spi: bytes) -> None:
    found = index.get(key)
    if found is None:
        return
    if type(found) is bytes:
        if found == spi:
            del index[key]
        return
    found.discard(spi)
    if len(found) == 1:
        index[key] = next(iter(found))
    elif not found:
        del index[key]


def spis_of(found) -> tuple:
    """The SPIs of one by_identity / by_peer_ip value (None: none)."""
    if found is None:
        return ()
    if type(found) is bytes:
        return (found,)
    return tuple(found)


def _marker(local_addr, ike_port) -> bytes:
    return b"\0\0\0\0" if local_addr[1] != ike_port else b""


# (id(policy), id(suite)) -> (policy, suite, allowed): Engine.suite_allowed
_ALLOWED: dict[tuple, tuple] = {}


@functools.lru_cache(maxsize=256)
def _as_sa(suite):
    """The SA payload offering exactly `suite` (IKE_AUTH asks once per handshake)."""
    return wire.SA([wire.Proposal(1, suite.protocol, b"", suite.transforms())])


