"""Hostile datagrams never raise out of the engine, never touch an established SA, and get
the RFC reaction (a notify for unprotected requests, silence otherwise).

The engines run with strict=True, so an internal error would raise here instead of being
logged and counted.
"""

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyiked.core.iana import ExchangeType, NotifyType
from pyiked.core.ike_sa import State
from pyiked._fast import wire

from .simnet import A_IP, B_IP, pair

B_ADDR, A_ADDR = (B_IP, 500), (A_IP, 500)


def _recorded_handshake(seed=3):
    """A complete A->B handshake; returns the net and every datagram A sent to B."""
    net, pa, pb = pair(seed=seed)
    sent = []
    net.tap = lambda data, src, dst: (sent.append((data, src, dst)) if src[0] == A_IP else None, data)[1]
    net.engines[A_IP].initiate(pa, 0.0)
    net.run(until=10)
    return net, pa, sent


NET, POLICY, SENT = _recorded_handshake()
INIT_REQUEST = SENT[0][0]
AUTH_REQUEST = SENT[1]


def _established(net):
    (sa,) = net.engines[B_IP].ike_sas()
    assert sa.state == State.ESTABLISHED and len(sa.children) == 1
    return sa


def _mutate(data: bytes, rng: random.Random, ops: int) -> bytes:
    buf = bytearray(data)
    for _ in range(ops):
        choice = rng.randrange(4)
        if choice == 0 and buf:
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
        elif choice == 1 and buf:
            del buf[rng.randrange(len(buf)):]
        elif choice == 2:
            buf.insert(rng.randrange(len(buf) + 1), rng.randrange(256))
        elif buf:
            buf[rng.randrange(len(buf))] = rng.randrange(256)
    return bytes(buf)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), ops=st.integers(1, 6),
       which=st.sampled_from(["init", "auth"]))
def test_mutated_handshake_messages_never_raise(seed, ops, which):
    net, pa, pb = pair(seed=11)
    b = net.engines[B_IP]
    rng = random.Random(seed)
    if which == "init":
        data, local, remote = _mutate(INIT_REQUEST, rng, ops), B_ADDR, A_ADDR
    else:
        data, src, dst = AUTH_REQUEST
        data, local, remote = _mutate(data, rng, ops), dst, src
    b.receive_datagram(data, local, remote, 1.0)
    for out, _, _ in b.datagrams_to_send():
        reply = wire.decode(out[4:] if out[:4] == b"\0\0\0\0" else out)
        assert reply.is_response  # only ever an answer, never a request of our own
    # whatever it was, B's tables stay consistent
    for sa in b.ike_sas():
        assert sa.state in (State.INIT_DONE, State.ESTABLISHED)


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), ops=st.integers(1, 8))
def test_forged_traffic_never_disturbs_an_established_sa(seed, ops):
    """Mutations of the real IKE_AUTH hit B's established SA: dropped, SA intact."""
    net, pa, pb = pair(seed=3)
    net.engines[A_IP].initiate(pa, 0.0)
    net.run(until=10)
    sa = _established(net)
    b = net.engines[B_IP]
    data, src, dst = AUTH_REQUEST
    b.receive_datagram(_mutate(data, random.Random(seed), ops), dst, src, net.now)
    assert _established(net) is sa
    assert sa.recv_id == 2  # no request was processed


def test_random_bytes_on_both_ports():
    net, pa, pb = pair(seed=5)
    b = net.engines[B_IP]
    rng = random.Random(1)
    for i in range(2000):
        data = rng.randbytes(rng.randrange(0, 200))
        port = 500 if i % 2 else 4500
        b.receive_datagram(data, (B_IP, port), (A_IP, 30000 + i), float(i))
    assert not b.ike_sas()
    assert b.stats["internal_errors"] == 0


def test_unsupported_critical_payload_in_init_is_answered():
    # a payload type nobody knows (200) with the critical bit, first in the chain
    msg = wire.decode(INIT_REQUEST)
    msg.payloads.insert(0, wire.Unknown(200, True, b"junk"))
    net, pa, pb = pair(seed=9)
    b = net.engines[B_IP]
    b.receive_datagram(wire.encode(msg), B_ADDR, A_ADDR, 0.0)
    (out, _, _), = b.datagrams_to_send()
    reply = wire.decode(out)
    (n,) = reply.payloads
    assert n.type == NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD and n.data == bytes([200])
    assert reply.exchange_type == ExchangeType.IKE_SA_INIT and not b.ike_sas()


def test_higher_major_version_gets_invalid_major_version():
    data = bytearray(INIT_REQUEST)
    data[17] = 0x30  # IKEv3
    net, pa, pb = pair(seed=9)
    b = net.engines[B_IP]
    b.receive_datagram(bytes(data), B_ADDR, A_ADDR, 0.0)
    (out, _, _), = b.datagrams_to_send()
    (n,) = wire.decode(out).payloads
    assert n.type == NotifyType.INVALID_MAJOR_VERSION
    # but never in reply to a response (§2.5)
    data[19] |= 0x20
    b.receive_datagram(bytes(data), B_ADDR, A_ADDR, 0.1)
    assert b.datagrams_to_send() == []


def test_ikev1_is_dropped_silently():
    data = bytearray(INIT_REQUEST)
    data[17] = 0x10
    net, pa, pb = pair(seed=9)
    b = net.engines[B_IP]
    b.receive_datagram(bytes(data), B_ADDR, A_ADDR, 0.0)
    assert b.datagrams_to_send() == []
