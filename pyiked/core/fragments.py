"""IKE fragmentation (RFC 7383): splitting protected messages into SKF payloads and
putting received ones back together.

Both ends must have sent IKEV2_FRAGMENTATION_SUPPORTED in IKE_SA_INIT (§2.3), which we do
only with `set fragmentation`. Then any message after IKE_SA_INIT whose SK form would not
fit the fragment size is sent as SKF fragments (§2.5): the inner payload chain is cut
into pieces, each encrypted and authenticated on its own, the first carrying the first
inner payload type.

Fragment size: `set fragment_size N` is the largest IP datagram a fragment may make
(strongSwan's meaning); 0 takes OpenIKED's defaults, which keep a datagram within 576
octets over IPv4 and 1280 over IPv6 (§2.5.1: the minimum MTUs).

Receiving (§2.6): a fragment is verified and decrypted *before* it is stored, so forged
ones cost one failed integrity check and nothing else. Per IKE SA and direction there is
one reassembly at a time, for the message ID the window expects, bounded in fragments
(MAX_FRAGMENTS), octets (MAX_BYTES) and age (MAX_AGE). A larger Total Fragments means the
sender re-fragmented smaller and restarts the reassembly; a smaller one is discarded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pyiked._fast import wire

from .errors import InvalidSyntax, SilentDrop
from .iana import NON_ESP_MARKER, PayloadType

log = logging.getLogger("pyiked.engine")

MAX_FRAGMENTS = 111  # OpenIKED's IKED_FRAG_TOTAL_MAX
MAX_BYTES = 64 * 1024  # reassembled inner payloads of one message
MAX_AGE = 30.0  # seconds from the first stored fragment to the last
DEFAULT_SIZE = {4: 576, 6: 1280}  # IP datagram sizes, RFC 7383 §2.5.1 / OpenIKED
_IP_HEADER = {4: 20, 6: 40}
_UDP_HEADER = 8
MIN_SIZE = 256  # smaller settings would make a fragment per few payload octets


def message_limit(sa) -> int:
    """The longest IKE message (from its header) one datagram of this SA may carry."""
    version = 6 if ":" in sa.remote_addr[0] else 4
    size = sa.engine.fragment_size or DEFAULT_SIZE[version]
    limit = max(size, MIN_SIZE) - _IP_HEADER[version] - _UDP_HEADER
    if sa.local_addr[1] != sa.engine.ike_port:
        limit -= len(NON_ESP_MARKER)
    return limit


def enabled(sa) -> bool:
    return sa.engine.fragmentation and sa.peer_fragmentation


def seal(sa, exchange: int, msg_id: int, flags: int, first_type: int, plaintext: bytes):
    """The SKF messages for one protected message, or None when it fits unfragmented."""
    cipher = sa.sk_out
    limit = message_limit(sa)
    if len(plaintext) <= cipher.max_plaintext(limit):
        return None
    piece = cipher.max_plaintext(limit, fragment=True)
    total = -(-len(plaintext) // piece)
    if total > MAX_FRAGMENTS:
        log.warning(
            "%r: a %d-octet message needs %d fragments (more than %d): sent whole",
            sa,
            len(plaintext),
            total,
            MAX_FRAGMENTS,
        )
        return None
    header = wire.encode_header(
        wire.Message(
            sa.spi_i, sa.spi_r, exchange, flags, msg_id, [wire.SKF(first_type, 1, total, b"")]
        ),
        0,
    )
    out = []
    for number in range(1, total + 1):
        chunk = plaintext[(number - 1) * piece : number * piece]
        # §2.5: only the first fragment names the first inner payload; the rest say 0
        out.append(
            cipher.seal_fragment(header, first_type if number == 1 else 0, number, total, chunk)
        )
    sa.engine.stats["fragments_sent"] += total
    return out


@dataclass(slots=True)
class _Message:
    msg_id: int
    total: int
    started: float
    first_type: int = 0
    size: int = 0
    parts: dict = field(default_factory=dict)


class Reassembler:
    """Fragments of the peer's requests and of its responses to us, one message each."""

    __slots__ = ("_current", "_done")

    def __init__(self):
        self._current: dict[bool, _Message] = {}
        self._done: dict[bool, int] = {}  # the message ID completed last, per direction

    def __len__(self):
        return len(self._current)

    def add(
        self,
        is_response: bool,
        msg_id: int,
        number: int,
        total: int,
        next_payload: int,
        plaintext: bytes,
        now: float,
    ):
        """Store one verified fragment; (first payload type, whole plaintext) once every
        fragment is in, else None."""
        if total > MAX_FRAGMENTS:
            raise SilentDrop(f"fragment {number} of {total}: more than {MAX_FRAGMENTS} fragments")
        if self._done.get(is_response) == msg_id:
            return None  # a late duplicate of a message already put together
        message = self._current.get(is_response)
        if message is not None and (message.msg_id != msg_id or now - message.started > MAX_AGE):
            message = None  # another message, or one that took too long: start afresh
        if message is not None and total != message.total:
            # §2.6: a sender only re-fragments smaller (more pieces); a smaller total is stale
            if total < message.total:
                raise SilentDrop(
                    f"fragment with Total Fragments {total}, reassembling {message.total}"
                )
            message = None
        if message is None:
            message = _Message(msg_id, total, now)
            self._current[is_response] = message
        if number in message.parts:
            return None  # a duplicate (§2.6: retransmissions resend every fragment)
        if message.size + len(plaintext) > MAX_BYTES:
            del self._current[is_response]
            raise SilentDrop(f"fragmented message larger than {MAX_BYTES} octets")
        if number == 1:
            if next_payload == PayloadType.NONE:
                del self._current[is_response]
                raise SilentDrop("first fragment without a first payload type")
            message.first_type = next_payload
        message.parts[number] = bytes(plaintext)
        message.size += len(plaintext)
        if len(message.parts) < message.total:
            return None
        del self._current[is_response]
        self._done[is_response] = msg_id
        return message.first_type, b"".join(message.parts[i] for i in range(1, message.total + 1))

    def discard(self, is_response: bool) -> None:
        self._current.pop(is_response, None)


def _open(sa, message, data):
    """(number, total, next payload, plaintext) of an SKF message, verified (§2.6)."""
    payloads = message.payloads
    if len(payloads) != 1:
        raise SilentDrop("unprotected payloads next to SKF")
    if not enabled(sa):
        raise SilentDrop("SKF payload but fragmentation was not negotiated")
    skf = payloads[0]
    try:
        number, total, plaintext = sa.sk_in.open_fragment(data, skf.offset)
    except InvalidSyntax as exc:
        raise SilentDrop(f"SKF payload rejected: {exc}") from None
    except SilentDrop:
        sa.engine.stats["fragments_forged"] += 1
        raise
    return number, total, skf.next_payload, plaintext


def receive(sa, message, data, now):
    """The inner payloads once a fragmented message is complete, None until then.
    A fragment that does not verify is a SilentDrop; a malformed whole is InvalidSyntax."""
    number, total, next_payload, plaintext = _open(sa, message, data)
    if sa.frag_in is None:
        sa.frag_in = Reassembler()
    sa.engine.stats["fragments_received"] += 1
    done = sa.frag_in.add(
        message.is_response, message.message_id, number, total, next_payload, plaintext, now
    )
    if done is None:
        return None
    first_type, whole = done
    return wire.decode_payloads(whole, first_type)


def retransmitted_first_fragment(sa, message, data) -> bool:
    """RFC 7383 §2.6.1: a retransmitted fragmented request gets the response again only
    for its first fragment (once it verifies), never for the others."""
    number, _, _, _ = _open(sa, message, data)
    return number == 1


def is_fragment(message) -> bool:
    payloads = message.payloads
    return bool(payloads) and payloads[-1].payload_type == PayloadType.SKF


__all__ = [
    "Reassembler",
    "enabled",
    "is_fragment",
    "message_limit",
    "receive",
    "retransmitted_first_fragment",
    "seal",
    "MAX_FRAGMENTS",
    "MAX_BYTES",
    "MAX_AGE",
]
