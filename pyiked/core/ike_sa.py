"""One IKE SA: its state, its keys, and the message-ID discipline of RFC 7296 §2.1-§2.3.

States and who moves them (the exchange modules do the work; this table is the rule):

    state        entered when                                    leaves to
    INIT_SENT    initiator sent IKE_SA_INIT                      AUTH_SENT | CLOSED
    INIT_DONE    responder answered IKE_SA_INIT (half-open)      EAP | ESTABLISHED | CLOSED
    AUTH_SENT    initiator sent IKE_AUTH (the first, or one      ESTABLISHED | CLOSED
                 of the EAP round trips)
    EAP          responder answered an IKE_AUTH without AUTH     ESTABLISHED | CLOSED
                 with its own AUTH and an EAP request (§2.16)
    ESTABLISHED  AUTH verified on both sides                     REKEYED | DELETING | CLOSED
    REKEYED      its children moved to a new IKE SA (§2.18)      CLOSED (after its delete)
    DELETING     we sent an IKE SA Delete                        CLOSED
    CLOSED       gone from the engine's tables

Requests a peer may make, by state (anything else is dropped and logged, so for example a
CREATE_CHILD_SA before IKE_AUTH never reaches the child code):

    INIT_DONE:                 IKE_AUTH
    EAP:                       IKE_AUTH (the EAP conversation, then AUTH with the MSK)
    ESTABLISHED:               CREATE_CHILD_SA, INFORMATIONAL
    REKEYED, DELETING:         INFORMATIONAL (deletes may cross ours, §1.4.1), and
                               CREATE_CHILD_SA only to answer TEMPORARY_FAILURE (§2.25.2)

Message IDs (§2.1, §2.2): each side numbers its own requests from 0. We keep one
request outstanding (window 1, which every peer must support), queue the rest, and
retransmit with exponential backoff until a retry limit. For the peer's requests we
remember the next ID we expect and the last response we sent: a retransmitted request
gets that response again without being processed twice, and anything else outside the
window is dropped.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import Callable

from pyiked._fast import wire

from . import fragments
from .errors import IkeError, InvalidSyntax, SilentDrop
from .iana import NON_ESP_MARKER, ExchangeType, HeaderFlag, PayloadType

log = logging.getLogger("pyiked.engine")


class State(enum.Enum):
    INIT_SENT = "INIT_SENT"
    INIT_DONE = "INIT_DONE"
    AUTH_SENT = "AUTH_SENT"
    EAP = "EAP"
    ESTABLISHED = "ESTABLISHED"
    REKEYED = "REKEYED"
    DELETING = "DELETING"
    CLOSED = "CLOSED"


# §2.1: which requests a peer may send us in each state (see the module docstring)
ALLOWED_REQUESTS = {
    State.INIT_DONE: {ExchangeType.IKE_AUTH},
    State.EAP: {ExchangeType.IKE_AUTH},
    State.ESTABLISHED: {ExchangeType.CREATE_CHILD_SA, ExchangeType.INFORMATIONAL},
    State.REKEYED: {ExchangeType.INFORMATIONAL, ExchangeType.CREATE_CHILD_SA},
    State.DELETING: {ExchangeType.INFORMATIONAL, ExchangeType.CREATE_CHILD_SA},
}

HALF_OPEN = (State.INIT_SENT, State.INIT_DONE, State.AUTH_SENT, State.EAP)
_INITIATOR, _RESPONSE = int(HeaderFlag.INITIATOR), int(HeaderFlag.RESPONSE)


@dataclass(slots=True)
class Request:
    """Our outstanding request (window 1) and what to do with its answer."""

    exchange: int
    msg_id: int
    datagrams: list
    on_response: Callable
    on_timeout: Callable | None
    sent: int = 1
    deadline: float = 0.0


@dataclass(slots=True)
class Queued:
    exchange: int
    build: Callable  # () -> payloads, called when the request can be sent
    on_response: Callable
    on_timeout: Callable | None = None


class IkeSA:
    __slots__ = (
        "engine", "initiator", "spi_i", "spi_r", "state", "policy", "local_addr", "remote_addr",
        "nat_local", "nat_remote", "suite", "keys", "sk_d", "sk_in", "sk_out", "nonce_i", "nonce_r",
        "ke", "init_request", "init_response", "local_id", "remote_id", "children",
        "send_id", "recv_id", "pending", "queue", "last_response", "created", "established_at",
        "last_received", "last_sent", "timer_at", "peer_sig_hashes", "peer_fragmentation",
        "offered_sa", "cookie", "child_pending", "peer_initial_contact", "delete_reason",
        "rekey_at", "expire_at", "dpd_at", "retry_ke", "init_key", "life",
        # road warriors: multi-step IKE_AUTH, certificates, EAP, CP leases, fragments
        "auth_ctx", "peer_certreq", "eap_identity", "leases", "virtual_ips", "cp_reply", "frag_in",
    )

    def __init__(self, engine, initiator: bool, spi_i: bytes, spi_r: bytes, local_addr, remote_addr, now):
        self.engine = engine
        self.initiator = initiator  # we are the original initiator of this IKE SA
        self.spi_i = spi_i
        self.spi_r = spi_r
        self.state = State.INIT_SENT if initiator else State.INIT_DONE
        self.policy = None
        self.local_addr = local_addr  # (ip, port) as strings/ints
        self.remote_addr = remote_addr
        self.nat_local = False
        self.nat_remote = False
        self.suite = None
        self.keys = None  # IkeKeys until IKE_AUTH is done (SK_pi/SK_pr sign the AUTH octets)
        self.sk_d = b""  # §2.17, §2.18: what CREATE_CHILD_SA and rekeys derive from
        self.sk_in = None
        self.sk_out = None
        self.nonce_i = b""
        self.nonce_r = b""
        self.ke = None
        self.init_request = b""
        self.init_response = b""
        self.local_id = None
        self.remote_id = None
        self.children = {}
        self.send_id = 0  # next message ID for our requests
        self.recv_id = 0  # next message ID we expect in the peer's requests
        self.pending: Request | None = None
        # requests waiting for the window; () until there is one (most SAs never queue:
        # an empty list would cost 56 octets per SA, a deque 600)
        self.queue: list[Queued] | tuple = ()
        # (message ID, the datagram) or (message ID, (fragments...)) of our last answer
        self.last_response: tuple | None = None
        self.created = now
        self.established_at = None
        self.last_received = now
        self.last_sent = now
        self.timer_at = None
        self.peer_sig_hashes = ()
        self.peer_fragmentation = False
        self.offered_sa = None
        self.cookie = b""
        self.child_pending = None
        self.peer_initial_contact = False
        self.delete_reason = ""
        self.rekey_at = None
        self.expire_at = None
        self.dpd_at = None
        self.retry_ke = 0
        self.init_key = None  # the responder's half-open table key (SPIi, peer address)
        self.life = None  # rekey.IkeLife: rekeys in flight and their collisions
        self.auth_ctx = None  # IKE_AUTH in progress (pyiked.core.auth.AuthContext)
        self.peer_certreq = None  # CA hashes of the peer's CERTREQ in IKE_SA_INIT
        self.eap_identity = None  # the user EAP authenticated
        self.leases = ()  # [(pool, address)] given to the peer (CP); () while none
        self.virtual_ips = ()  # addresses leased to the peer, or assigned to us; () while none
        self.cp_reply = None  # initiator: the responder's CFG_REPLY values
        self.frag_in = None  # RFC 7383 reassembly (pyiked.core.fragments.Reassembler)

    # -- identity ------------------------------------------------------------------------

    @property
    def our_spi(self) -> bytes:
        return self.spi_i if self.initiator else self.spi_r

    @property
    def ike_sa_id(self) -> bytes:
        return self.spi_i + self.spi_r

    @property
    def natted(self) -> bool:
        return self.nat_local or self.nat_remote

    def __repr__(self):
        return f"<IkeSA {self.spi_i.hex()}:{self.spi_r.hex()} {self.state.value} peer {self.remote_addr}>"

    # -- sending -------------------------------------------------------------------------

    def _flags(self, response: bool) -> int:
        # plain ints: HeaderFlag's enum operators are slow
        return (_INITIATOR if self.initiator else 0) | (_RESPONSE if response else 0)

    def protect(self, exchange: int, msg_id: int, response: bool, payloads: list) -> tuple[bytes, ...]:
        """Encrypt payloads into one SK message (§3.14), or SKF fragments when it would not
        fit and both ends support them (RFC 7383); returns the datagrams to send."""
        first = payloads[0].payload_type if payloads else PayloadType.NONE
        plaintext = wire.encode_payloads(payloads) if payloads else b""
        if fragments.enabled(self):
            pieces = fragments.seal(self, exchange, msg_id, self._flags(response), first, plaintext)
            if pieces is not None:
                return tuple([self.frame(p) for p in pieces])
        header_msg = wire.Message(self.spi_i, self.spi_r, exchange, self._flags(response), msg_id,
                                  [wire.SK(first, b"")])
        header = wire.encode_header(header_msg, 0)
        return (self.frame(self.sk_out.seal(header, first, plaintext)),)

    def frame(self, message: bytes) -> bytes:
        """RFC 3948 §2.2: IKE on the NAT-T port carries the non-ESP marker."""
        if self.local_addr[1] != self.engine.ike_port:
            return NON_ESP_MARKER + message
        return message

    def transmit(self, datagrams, now: float) -> None:
        """Send a datagram (bytes) or several (a tuple or list of them)."""
        send = self.engine.send
        if type(datagrams) is bytes:
            send(datagrams, self.local_addr, self.remote_addr)
        else:
            for data in datagrams:
                send(data, self.local_addr, self.remote_addr)
        self.last_sent = now

    def send_request(self, exchange: int, build: Callable, on_response: Callable, now: float,
                     on_timeout: Callable | None = None) -> None:
        """Queue a request; it goes out when no other request of ours is outstanding."""
        item = Queued(exchange, build, on_response, on_timeout)
        if self.queue:
            self.queue.append(item)
        else:
            self.queue = [item]
        self.pump(now)

    def pump(self, now: float) -> None:
        """Send the next queued request if the window (1) is free."""
        while self.pending is None and self.queue and self.state != State.CLOSED:
            item = self.queue.pop(0)
            if not self.queue:
                self.queue = ()
            payloads = item.build()
            if payloads is None:  # the request became moot while queued
                continue
            msg_id = self.send_id
            self.send_id += 1
            datagrams = self.protect(item.exchange, msg_id, False, payloads)
            self.pending = Request(item.exchange, msg_id, datagrams, item.on_response, item.on_timeout)
            self.pending.deadline = now + self.engine.retransmit_timeout
            self.transmit(datagrams, now)
            self.engine.schedule(self, self.pending.deadline)

    def send_plain_request(self, exchange: int, message, on_response, now: float) -> None:
        """IKE_SA_INIT: the only unprotected request, always message ID 0."""
        data = self.frame(wire.encode(message))
        self.init_request = data[len(NON_ESP_MARKER):] if data.startswith(NON_ESP_MARKER) else data
        self.pending = Request(exchange, 0, [data], on_response, None)
        self.pending.deadline = now + self.engine.retransmit_timeout
        self.send_id = 1
        self.transmit([data], now)
        self.engine.schedule(self, self.pending.deadline)

    # -- receiving -----------------------------------------------------------------------

    def open(self, message, data: bytes, now: float = 0.0) -> list | None:
        """Verify and decrypt the SK payload, then decode the inner payloads.

        Anything wrong before the ICV is verified is unauthenticated: SilentDrop
        (§2.21.2). A malformed inner payload chain is authenticated: InvalidSyntax.
        An SKF fragment (RFC 7383) gives None until its message is complete.
        """
        payloads = message.payloads
        if fragments.is_fragment(message):
            return fragments.receive(self, message, data, now)
        if not payloads or payloads[-1].payload_type != PayloadType.SK:
            raise SilentDrop("protected exchange without an SK payload")
        if len(payloads) != 1:
            raise SilentDrop("unprotected payloads next to SK")  # §3.14: SK comes alone here
        sk = payloads[-1]
        try:
            plaintext = self.sk_in.open(data, sk.offset)
        except IkeError as exc:
            raise SilentDrop(f"SK payload rejected: {exc}") from None
        return wire.decode_payloads(plaintext, sk.next_payload)

    def receive(self, message, data: bytes, remote_addr, local_addr, now: float) -> None:
        """A protected message for this SA (IKE_SA_INIT is handled by the exchange module)."""
        if message.is_response:
            self._receive_response(message, data, remote_addr, local_addr, now)
        else:
            self._receive_request(message, data, remote_addr, local_addr, now)

    def _receive_response(self, message, data, remote_addr, local_addr, now):
        req = self.pending
        if req is None or message.message_id != req.msg_id or message.exchange_type != req.exchange:
            log.debug("%r: unexpected response id %d dropped", self, message.message_id)
            return
        payloads = self.open(message, data, now)  # IntegrityError propagates: silent drop
        if payloads is None:
            return  # a fragment of the response; the rest is still to come
        self.pending = None
        self.heard_from(remote_addr, local_addr, now)
        try:
            req.on_response(payloads, now)
        except IkeError as exc:
            log.info("%r: %s in response to our %s", self, exc, ExchangeType(req.exchange).name)
            self.engine.fail(self, str(exc), now)
            return
        self.pump(now)

    def _receive_request(self, message, data, remote_addr, local_addr, now):
        msg_id = message.message_id
        if self.last_response is not None and msg_id == self.last_response[0]:
            # §2.1: a retransmitted request gets the same response, processed only once,
            # after it authenticates (no reflection); RFC 7383 §2.6.1: only its first fragment
            if fragments.is_fragment(message):
                if not fragments.retransmitted_first_fragment(self, message, data):
                    return
            else:
                self.open(message, data)
            self.transmit(self.last_response[1], now)
            return
        if msg_id != self.recv_id:
            log.debug("%r: request id %d outside the window (expect %d)", self, msg_id, self.recv_id)
            return
        allowed = ALLOWED_REQUESTS.get(self.state, ())
        if message.exchange_type not in allowed:
            log.info("%r: %s request not allowed in state %s, dropped", self,
                     _exchange_name(message.exchange_type), self.state.value)
            return
        try:
            payloads = self.open(message, data, now)  # SilentDrop propagates: no answer
            if payloads is None:
                return  # a fragment (RFC 7383); the request is processed once complete
        except InvalidSyntax as exc:  # authentic, but the inner chain is malformed
            payloads, error = None, exc
        self.heard_from(remote_addr, local_addr, now)
        try:
            if payloads is None:
                raise error
            handler = self.engine.request_handler(message.exchange_type)
            response = handler(self, payloads, now)
        except IkeError as exc:
            log.info("%r: %s request refused: %s", self, _exchange_name(message.exchange_type), exc)
            response = [wire.Notify(exc.notify_type, exc.data)] if exc.notify_type else []
            self.answer(message.exchange_type, msg_id, response, now)
            if message.exchange_type == ExchangeType.IKE_AUTH:
                self.engine.fail(self, str(exc), now)  # §2.21.2: no IKE SA after a failed AUTH
            return
        after = None
        if isinstance(response, Response):
            response, after = response.payloads, response.after_send
        self.answer(message.exchange_type, msg_id, response, now)
        if after is not None:
            after(now)

    def answer(self, exchange: int, msg_id: int, payloads: list, now: float) -> None:
        datagrams = self.protect(exchange, msg_id, True, payloads)
        # one datagram is kept as itself: no tuple around it per SA
        self.last_response = (msg_id, datagrams[0] if len(datagrams) == 1 else datagrams)
        self.recv_id = msg_id + 1
        self.transmit(datagrams, now)

    def heard_from(self, remote_addr, local_addr, now: float) -> None:
        """An authenticated message arrived: liveness, and NAT mapping changes.

        RFC 7296 §2.23: once a NAT is detected, replies go to where the newest
        authenticated message came from (the initiator's float to port 4500, or a NAT
        that rebound the peer's mapping).
        """
        self.last_received = now
        if self.natted and (remote_addr != self.remote_addr or local_addr != self.local_addr):
            old = self.remote_addr
            self.remote_addr = remote_addr
            self.local_addr = local_addr
            self.engine.peer_moved(self, old, now)

    # -- timers --------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        # asked after every message: the earliest of these without building lists
        best = self.pending.deadline if self.pending is not None else None
        for t in (self.half_open_deadline(), self.keepalive_at(), self.dpd_at, self.rekey_at,
                  self.expire_at):
            if t is not None and (best is None or t < best):
                best = t
        for child in self.children.values():
            for t in (child.rekey_at, child.expire_at):
                if t is not None and (best is None or t < best):
                    best = t
        return best

    def half_open_deadline(self) -> float | None:
        if self.state in HALF_OPEN:
            return self.created + self.engine.half_open_timeout
        return None

    def keepalive_at(self) -> float | None:
        # RFC 3948 §4: only the host behind a NAT sends keepalives
        if self.state == State.ESTABLISHED and self.nat_local:
            return self.last_sent + self.engine.keepalive_interval
        return None

    def on_timer(self, now: float) -> None:
        deadline = self.half_open_deadline()
        if deadline is not None and now >= deadline:
            self.engine.fail(self, "half-open timeout", now)
            return
        req = self.pending
        if req is not None and now >= req.deadline:
            self._retransmit(req, now)
            if self.state == State.CLOSED:
                return
        at = self.keepalive_at()
        if at is not None and now >= at:
            self.engine.send(b"\xff", self.local_addr, self.remote_addr)  # RFC 3948 §2.3
            self.last_sent = now
        self.engine.lifecycle_timer(self, now)

    def _retransmit(self, req: Request, now: float) -> None:
        if req.sent > self.engine.retransmit_tries:
            self.pending = None
            if req.on_timeout is not None:
                req.on_timeout(now)
            else:
                self.engine.fail(self, f"no answer to {_exchange_name(req.exchange)} after "
                                 f"{req.sent} transmissions", now, peer_dead=True)
            return
        # §2.4: retransmit with exponential backoff
        req.deadline = now + self.engine.retransmit_timeout * (self.engine.retransmit_base ** req.sent)
        req.sent += 1
        self.engine.stats["retransmissions"] += 1
        self.transmit(req.datagrams, now)


def _exchange_name(exchange: int) -> str:
    try:
        return ExchangeType(exchange).name
    except ValueError:
        return f"exchange {exchange}"


class Response:
    """Response payloads plus an optional action once the response is on its way (e.g.
    deleting the IKE SA after answering its Delete). Handlers may also return a list."""

    __slots__ = ("payloads", "after_send")

    def __init__(self, payloads=(), after_send: Callable | None = None):
        self.payloads = list(payloads)
        self.after_send = after_send

    def append(self, payload) -> None:
        self.payloads.append(payload)

    def extend(self, payloads) -> None:
        self.payloads.extend(payloads)


