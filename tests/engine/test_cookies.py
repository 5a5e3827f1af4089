"""Stateless cookies (RFC 7296 §2.6, §2.6.1), half-open limits and INVALID_IKE_SPI
(§2.21.4) at the engine, with spoofed IKE_SA_INIT requests fed as raw datagrams."""

import ipaddress
import os

import pytest

from pyiked._fast import wire
from pyiked.config.model import ProposalSpec, Settings
from pyiked.core import cookies as cookies_mod
from pyiked.core import engine as engine_mod
from pyiked.core.events import IkeSAUp
from pyiked.core.iana import EncrId, ExchangeType, KeId, NotifyType, PrfId, ProtocolId

from .floodkit import cookie_of, spoofed, template, with_cookie, with_spi
from .invariants import assert_consistent
from .simnet import A_IP, B_IP, engine_for, pair, psk_policy

LOCAL = (B_IP, 500)


def responder(**settings):
    policy = psk_policy("b", B_IP, "0.0.0.0/0", "10.231.2.0/24", "10.231.1.0/24", "b.pk.test", "a.pk.test")
    return engine_for([policy], 5, settings=Settings(**settings))


def feed(engine, items, now):
    """Deliver raw requests; returns the answer to each (None: no answer)."""
    answers = []
    for data, src in items:
        engine.receive_datagram(data, LOCAL, src, now)
        out = engine.datagrams_to_send()
        assert len(out) <= 1
        answers.append(out[0][0] if out else None)
    return answers


def is_full_answer(data):
    return data is not None and cookie_of(data) is None and data[8:16] != b"\0" * 8


def test_cookies_engage_at_the_threshold_without_decoding(monkeypatch):
    b = responder(cookie_threshold=5)
    answers = feed(b, spoofed(5), 0.0)
    assert all(is_full_answer(a) for a in answers) and b.guard.half_open == 5
    decoded = []
    real = wire.decode
    monkeypatch.setattr(engine_mod.wire, "decode", lambda data: decoded.append(data) or real(data))
    flood = spoofed(200)[5:]
    answers = feed(b, flood, 0.1)
    assert not decoded  # the cookie path builds no Message (and no SA)
    assert all(cookie_of(a) is not None for a in answers)
    assert b.guard.half_open == 5 and len(b.ike_sas()) == 5
    assert b.stats["cookies_sent"] == 195 and b.guard.cookie_mode
    reply = wire.decode(answers[0])  # a well-formed IKE_SA_INIT response
    assert reply.exchange_type == ExchangeType.IKE_SA_INIT and reply.is_response and not reply.is_initiator
    assert reply.spi_i == flood[0][0][:8] and reply.spi_r == b"\0" * 8
    (n,) = reply.payloads
    assert n.type == NotifyType.COOKIE and len(n.data) == 17


def test_a_legitimate_initiator_gets_through_in_cookie_mode():
    net, pa, pb = pair(b_engine={"settings": Settings(cookie_threshold=3)},
                       b_kw={"peer": ipaddress.ip_network("10.231.0.0/16")})
    b = net.engines[B_IP]
    feed(b, spoofed(3), 0.0)
    assert b.guard.cookie_mode is False and b.guard.half_open == 3
    feed(b, spoofed(4)[3:], 0.0)  # the fourth request sees the threshold: cookie
    assert b.guard.cookie_mode
    net.engines[A_IP].initiate(pa, 0.0)
    net.run(until=5)
    assert len(net.of_type(A_IP, IkeSAUp)) == 1
    assert b.stats["cookies_accepted"] == 1 and b.stats["cookies_sent"] == 2
    # once the spoofed half-open SAs time out and the demand is gone, cookie mode ends
    net.run(until=200)
    feed(b, spoofed(1, base=with_spi(template(), b"\x77" * 8)), net.now)
    assert not b.guard.cookie_mode
    net.run(until=net.now + 100)
    assert_consistent(net)


def test_cookie_mode_does_not_flap():
    # threshold 10, half-open SAs time out after 20 s; a flood of 3 requests/s goes on for
    # 100 s: the mode engages once and stays on after the half-open SAs are gone, then
    # ends in the first quiet window
    b = responder(cookie_threshold=10, halfopen_timeout=20)
    feed(b, spoofed(10), 0.0)
    flood = spoofed(1000)[10:]
    t, i = 0.0, 0
    modes = []
    while t < 100:
        t += 1 / 3
        b.handle_timer(t)
        feed(b, [flood[i]], t)
        i += 1
        modes.append(b.guard.cookie_mode)
    assert all(modes) and b.guard.cookies.engaged == 1
    assert b.guard.half_open == 0  # the spoofed SAs expired meanwhile
    b.handle_timer(t + 15)
    feed(b, [flood[i]], t + 15)  # the window after the flood ended was quiet
    b.handle_timer(t + 30)
    answers = feed(b, [flood[i + 1]], t + 30)
    assert not b.guard.cookie_mode and is_full_answer(answers[0])


def test_cookies_per_source_address():
    b = responder(cookie_threshold=100, cookie_threshold_ip=2)
    base = template()
    same = [(with_spi(base, bytes([1, i]) * 4), ("10.231.70.1", 500)) for i in range(3)]
    answers = feed(b, same, 0.0)
    assert is_full_answer(answers[0]) and is_full_answer(answers[1]) and cookie_of(answers[2])
    (other,) = feed(b, [(with_spi(base, b"\x09" * 8), ("10.231.70.2", 500))], 0.0)
    assert is_full_answer(other) and not b.guard.cookie_mode
    # the address with its cookie gets through
    (ok,) = feed(b, [(with_cookie(same[2][0], cookie_of(answers[2])), same[2][1])], 0.1)
    assert is_full_answer(ok) and b.guard.by_ip["10.231.70.1"] == 3


@pytest.mark.parametrize("lifetime", [cookies_mod.SECRET_LIFETIME, 5])
def test_secret_rotation_keeps_the_previous_secret(lifetime):
    # `set cookie_secret_lifetime` (default 60 s)
    b = responder(cookie_threshold=0, cookie_secret_lifetime=int(lifetime))  # 0: cookies always
    base = template()
    reqs = [(with_spi(base, bytes([i]) * 8), ("10.231.71.1", 500)) for i in (1, 2, 3)]
    cookies = [cookie_of(a) for a in feed(b, reqs, 0.0)]
    assert len({c[0] for c in cookies}) == 1  # one version octet
    (a1,) = feed(b, [(with_cookie(reqs[0][0], cookies[0]), reqs[0][1])], 1.0)
    assert is_full_answer(a1)
    # one rotation later, a cookie from the previous secret still works
    (a2,) = feed(b, [(with_cookie(reqs[1][0], cookies[1]), reqs[1][1])], lifetime + 1)
    assert is_full_answer(a2)
    # two rotations later it does not: a fresh cookie with a new version comes back
    (a3,) = feed(b, [(with_cookie(reqs[2][0], cookies[2]), reqs[2][1])], 2 * lifetime + 2)
    fresh = cookie_of(a3)
    assert fresh is not None and fresh[0] == (cookies[2][0] + 2) % 256
    (a4,) = feed(b, [(with_cookie(reqs[2][0], fresh), reqs[2][1])], 2 * lifetime + 3)
    assert is_full_answer(a4)
    assert b.stats["cookies_accepted"] == 3


@pytest.mark.parametrize("change", ["flip", "other_ip", "other_spi", "other_nonce", "truncated", "not_first"])
def test_forged_or_misused_cookies_are_not_accepted(change):
    b = responder(cookie_threshold=0)
    base = template()
    (answer,) = feed(b, [(base, ("10.231.72.1", 500))], 0.0)
    cookie = cookie_of(answer)
    data, src = with_cookie(base, cookie), ("10.231.72.1", 500)
    if change == "flip":
        data = with_cookie(base, cookie[:5] + bytes([cookie[5] ^ 1]) + cookie[6:])
    elif change == "other_ip":
        src = ("10.231.72.2", 500)
    elif change == "other_spi":
        data = with_spi(data, b"\x42" * 8)
    elif change == "other_nonce":
        data = _other_nonce(data)
    elif change == "truncated":
        data = with_cookie(base, cookie[:-1])
    elif change == "not_first":
        data = _cookie_second(base, cookie)
    (reply,) = feed(b, [(data, src)], 0.1)
    assert reply is not None and cookie_of(reply) is not None  # §2.6: treated as no cookie
    assert not b.ike_sas() and b.stats["cookies_accepted"] == 0


def _other_nonce(data):
    msg = wire.decode(data)
    nonce = next(p for p in msg.payloads if p.payload_type == wire.Nonce.payload_type)
    return data.replace(nonce.data, bytes(b ^ 0xFF for b in nonce.data))


def _cookie_second(base, cookie):
    msg = wire.decode(base)
    payloads = list(msg.payloads)
    payloads.insert(1, wire.Notify(NotifyType.COOKIE, cookie))
    return wire.encode(wire.Message(msg.spi_i, msg.spi_r, msg.exchange_type, msg.flags, 0, payloads))


IKE_BOTH = ProposalSpec(ProtocolId.IKE, ((EncrId.AES_GCM_16, 256),), (PrfId.HMAC_SHA2_256,), (),
                        (KeId.MODP2048, KeId.CURVE25519))
IKE_X25519 = ProposalSpec(ProtocolId.IKE, ((EncrId.AES_GCM_16, 256),), (PrfId.HMAC_SHA2_256,), (),
                          (KeId.CURVE25519,))


def test_cookie_and_invalid_ke_payload_shorter_exchange():
    # §2.6.1: SAi1 KEi Ni -> N(COOKIE); N(COOKIE) SAi1 KEi Ni -> N(INVALID_KE_PAYLOAD);
    # N(COOKIE) SAi1 KEi' Ni (same cookie, same Ni) -> the SA
    net, pa, pb = pair(a_kw={"ike_proposals": (IKE_BOTH,)}, b_kw={"ike_proposals": (IKE_X25519,)},
                       b_engine={"settings": Settings(cookie_threshold=0)})
    requests = []
    net.tap = lambda data, src, dst: (requests.append(data) if src[0] == A_IP and data[18] == 34 else None) or data
    net.engines[A_IP].initiate(pa, 0.0)
    net.run(until=5)
    assert len(net.of_type(A_IP, IkeSAUp)) == 1
    b = net.engines[B_IP]
    assert b.stats["cookies_sent"] == 1 and b.stats["cookies_accepted"] == 2
    assert b.stats["init_refused_INVALID_KE_PAYLOAD"] == 1
    msgs = [wire.decode(r) for r in requests]
    assert len(msgs) == 3
    first_payload = [m.payloads[0] for m in msgs]
    assert first_payload[0].payload_type != wire.Notify.payload_type
    assert first_payload[1].type == first_payload[2].type == NotifyType.COOKIE
    assert first_payload[1].data == first_payload[2].data  # the cookie survives the KE retry
    nonces = [next(p.data for p in m.payloads if p.payload_type == wire.Nonce.payload_type) for m in msgs]
    assert nonces[0] == nonces[1] == nonces[2] and len({m.spi_i for m in msgs}) == 1
    kes = [next(p.group for p in m.payloads if p.payload_type == wire.KE.payload_type) for m in msgs]
    assert kes == [KeId.MODP2048, KeId.MODP2048, KeId.CURVE25519]


@pytest.mark.parametrize("kind", ["cookie", "ke"])
def test_duplicated_retry_responses_are_not_fatal(kind):
    # every datagram arrives twice: the second COOKIE / INVALID_KE_PAYLOAD answer is a
    # duplicate of one already acted on, not a reason to give up
    kw = {"b_engine": {"settings": Settings(cookie_threshold=0)}} if kind == "cookie" else \
        {"a_kw": {"ike_proposals": (IKE_BOTH,)}, "b_kw": {"ike_proposals": (IKE_X25519,)}}
    net, pa, pb = pair(net_kw={"duplicate": 1.0}, **kw)
    net.engines[A_IP].initiate(pa, 0.0)
    net.run(until=30)
    assert len(net.of_type(A_IP, IkeSAUp)) == 1
    assert_consistent(net, children=1)


@pytest.mark.parametrize("seed", range(4))
def test_cookies_on_a_duplicating_lossy_network(seed):
    net, pa, pb = pair(seed=seed, b_engine={"settings": Settings(cookie_threshold=0)},
                       net_kw={"duplicate": 0.5, "loss": 0.1, "reorder": 0.3})
    net.engines[A_IP].initiate(pa, 0.0)
    net.run(until=200)
    net.loss = net.duplicate = net.reorder = 0.0
    net.run(until=600)
    if net.of_type(A_IP, IkeSAUp):
        assert_consistent(net, children=1)
        assert len(net.of_type(B_IP, IkeSAUp)) == 1
    else:
        assert_consistent(net, ike_sas=0)


def test_half_open_limits():
    b = responder(cookie_threshold=1000, halfopen_limit=5, halfopen_limit_ip=2, halfopen_timeout=30)
    base = template()
    same = [(with_spi(base, bytes([3, i]) * 4), ("10.231.73.1", 500)) for i in range(3)]
    answers = feed(b, same, 0.0)
    assert [a is not None for a in answers] == [True, True, False]  # per-address block
    others = [(with_spi(base, bytes([4, i]) * 4), (f"10.231.73.{10 + i}", 500)) for i in range(5)]
    answers = feed(b, others, 0.0)
    assert [a is not None for a in answers] == [True, True, True, False, False]  # global cap
    assert b.guard.half_open == 5 and len(b.half_open) == 5
    assert b.stats["init_dropped_halfopen_limit"] == 3
    b.handle_timer(31.0)  # halfopen_timeout
    assert b.guard.half_open == 0 and not b.ike_sas() and not b.guard.by_ip
    (again,) = feed(b, same[2:], 31.0)
    assert is_full_answer(again)


def _request(exchange, flags, spi_i=b"\x11" * 8, spi_r=b"\x22" * 8, msg_id=7):
    body = b"\x00\x00\x00\x08" + b"\x00" * 4  # SK-less junk after the header is fine here
    return spi_i + spi_r + bytes((46, 0x20, exchange, flags)) + msg_id.to_bytes(4, "big") + \
        (28 + len(body)).to_bytes(4, "big") + body


def test_invalid_ike_spi_for_unknown_requests_only_and_rate_limited():
    b = responder()
    (answer,) = feed(b, [(_request(ExchangeType.INFORMATIONAL, 0x08), ("10.231.74.1", 500))], 0.0)
    msg = wire.decode(answer)
    assert (msg.spi_i, msg.spi_r, msg.exchange_type, msg.message_id) == (b"\x11" * 8, b"\x22" * 8, 37, 7)
    assert msg.is_response and not msg.is_initiator  # §1.5: a response, Response bit set
    (n,) = msg.payloads
    assert n.type == NotifyType.INVALID_IKE_SPI
    # never to a response (§2.21)
    assert feed(b, [(_request(ExchangeType.INFORMATIONAL, 0x20), ("10.231.74.1", 500))], 0.0) == [None]
    # at most twice `set invalid_spi_rate` (10) at once, then that many per second
    burst = feed(b, [(_request(ExchangeType.CREATE_CHILD_SA, 0), ("10.231.74.2", 500))] * 100, 0.0)
    assert sum(a is not None for a in burst) == 19
    later = feed(b, [(_request(ExchangeType.CREATE_CHILD_SA, 0), ("10.231.74.2", 500))] * 100, 1.0)
    assert sum(a is not None for a in later) == 10
    assert not b.ike_sas() and b.stats["invalid_ike_spi_suppressed"] == 171


@pytest.mark.parametrize("rate, first_second", [(3, 6 + 3), (0, 0)])
def test_invalid_spi_rate_is_configurable(rate, first_second):
    b = responder(invalid_spi_rate=rate)  # 0: never answer an unknown SPI
    answers = [feed(b, [(_request(ExchangeType.INFORMATIONAL, 0x08), ("10.231.74.3", 500))] * 50, t)
               for t in (0.0, 1.0)]
    assert sum(a is not None for batch in answers for a in batch) == first_second


@pytest.mark.parametrize("threshold", [0, 100])
def test_junk_gets_no_answer_and_no_state(threshold):
    b = responder(cookie_threshold=threshold)
    base = template()
    junk = [os.urandom(n) for n in (1, 27, 28, 100, 400)]
    junk += [base[:40] + b"\0" * 10, base[:28], base[:-1], base[:30] + b"\xff\xff" + base[32:]]
    junk += [base[:17] + b"\x10" + base[18:]]  # IKEv1
    junk += [b"\0" * 8 + base[8:]]  # SPIi zero
    for i, data in enumerate(junk):
        b.receive_datagram(data, LOCAL, (f"10.231.75.{i}", 500), 0.0)
    assert not b.ike_sas() and b.guard.half_open == 0
    answers = b.datagrams_to_send()
    # at most a stateless INVALID_SYNTAX for an undecodable request outside cookie mode
    for data, _, _ in answers:
        assert threshold and wire.decode(data).payloads[0].type == NotifyType.INVALID_SYNTAX
