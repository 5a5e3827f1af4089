"""_fast.udp: batched receive with the local address (IP_PKTINFO) and batched send from a
chosen source address, both twins, on loopback sockets."""

import socket

import pytest

from tests.helpers import fast_impls

IMPLS = fast_impls("udp")


@pytest.fixture(params=[name for name, _ in IMPLS])
def udp(request):
    return dict(IMPLS)[request.param]


def wildcard(family=socket.AF_INET):
    s = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        s.bind(("::", 0))
    else:
        s.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_PKTINFO", 8), 1)
        s.bind(("0.0.0.0", 0))
    s.setblocking(False)
    return s


def plain(address, family=socket.AF_INET):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((address, 0))
    s.setblocking(False)
    return s


def drain(sock):
    out = []
    while True:
        try:
            out.append(sock.recvfrom(65535))
        except BlockingIOError:
            return out


def test_receive_with_local_addresses(udp):
    rx = wildcard()
    port = rx.getsockname()[1]
    tx = plain("127.0.0.1")
    for i in range(100):
        tx.sendto(b"x%d" % i, ("127.0.0.1" if i % 2 else "127.0.0.2", port))
    r = udp.Receiver(rx, batch=64, bufsize=2048)
    first, second, third = r.recv(), r.recv(), r.recv()
    assert (len(first), len(second), third) == (64, 36, [])
    got = first + second
    assert [d for d, _, _ in got] == [b"x%d" % i for i in range(100)]
    assert [loc for _, loc, _ in got] == ["127.0.0.1" if i % 2 else "127.0.0.2" for i in range(100)]
    assert {rem for _, _, rem in got} == {tx.getsockname()}
    rx.close()
    tx.close()


def test_local_address_with_the_port(udp):
    rx = wildcard()
    tx = plain("127.0.0.1")
    tx.sendto(b"p", ("127.0.0.5", rx.getsockname()[1]))
    tx.sendto(b"q", ("127.0.0.5", rx.getsockname()[1]))
    (a, b) = udp.Receiver(rx, port=4500).recv()
    assert a == (b"p", ("127.0.0.5", 4500), tx.getsockname()) and b[1] is a[1]  # cached


def test_truncated_datagrams_are_dropped(udp):
    rx = wildcard()
    tx = plain("127.0.0.1")
    tx.sendto(b"a" * 300, ("127.0.0.1", rx.getsockname()[1]))
    tx.sendto(b"b" * 10, ("127.0.0.1", rx.getsockname()[1]))
    r = udp.Receiver(rx, batch=8, bufsize=100)
    assert r.recv() == [(b"b" * 10, "127.0.0.1", tx.getsockname())]
    assert r.truncated == 1


def test_send_from_a_chosen_address_and_skip_bad_items(udp):
    sender = wildcard()
    sink = plain("127.0.0.1")
    dst = sink.getsockname()
    items = [
        (b"one", "127.0.0.2", dst),
        (b"bad-ip", "127.0.0.1", ("not-an-ip", dst[1])),
        (b"bad-port", "127.0.0.1", ("127.0.0.1", 70000)),
        (b"bad-local", "fe80::1", dst),
        (b"two", "0.0.0.0", dst),
        (bytearray(b"three"), "127.0.0.3", dst),
    ]
    assert udp.send_batch(sender, items) == 3
    got = drain(sink)
    assert [(d, a[0]) for d, a in got] == [(b"one", "127.0.0.2"), (b"two", "127.0.0.1"),
                                          (b"three", "127.0.0.3")]
    assert udp.send_batch(sender, []) == 0


def test_unreachable_destinations_do_not_stop_the_batch(udp):
    sender = wildcard()
    sink = plain("127.0.0.1")
    closed = plain("127.0.0.1")
    closed_addr = closed.getsockname()
    closed.close()
    items = [(b"%d" % i, "127.0.0.1", closed_addr if i % 3 == 0 else sink.getsockname()) for i in range(30)]
    sent = udp.send_batch(sender, items)
    got = drain(sink)
    assert [d for d, _ in got] == [b"%d" % i for i in range(30) if i % 3]
    assert sent >= len(got)
    # an ICMP port unreachable reported on the socket does not break the next recv()
    r = udp.Receiver(sender, batch=4)
    assert r.recv() == []


def test_large_batch_send(udp):
    sender = wildcard()
    sink = plain("127.0.0.1")
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    items = [(b"%05d" % i, "127.0.0.1", sink.getsockname()) for i in range(500)]
    assert udp.send_batch(sender, items) == 500
    assert [d for d, _ in drain(sink)] == [b"%05d" % i for i in range(500)]


def _ipv6():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6(), reason="no IPv6 loopback here")
def test_ipv6(udp):
    rx = wildcard(socket.AF_INET6)
    tx = plain("::1", socket.AF_INET6)
    tx.sendto(b"six", ("::1", rx.getsockname()[1]))
    (got,) = udp.Receiver(rx).recv()
    assert got == (b"six", "::1", tx.getsockname()[:2])
    assert udp.send_batch(rx, [(b"back", "::1", tx.getsockname()[:2])]) == 1
    assert drain(tx)[0][0] == b"back"


def test_twins_agree():
    if len(IMPLS) < 2:
        pytest.skip("compiled _fast.udp not built")
    results = []
    for _, module in IMPLS:
        rx = wildcard()
        tx = plain("127.0.0.1")
        for i in range(20):
            tx.sendto(bytes([i]) * i, ("127.0.0.%d" % (1 + i % 3), rx.getsockname()[1]))
        got = module.Receiver(rx, batch=7).recv()
        results.append([(d, loc, rem[1] == tx.getsockname()[1]) for d, loc, rem in got])
    assert results[0] == results[1] and len(results[0]) == 7


GATE = (7, b"S" * 32, 6, b"P" * 32, 500)


def _init_request():
    from tests.engine.floodkit import template

    return template()


def test_gated_receive_answers_cookieless_requests(udp):
    from tests.engine.floodkit import cookie_of, with_cookie

    rx = wildcard()
    port = rx.getsockname()[1]
    tx = plain("127.0.0.1")
    request = _init_request()
    junk = request[:28] + b"\0" * 4  # an IKE_SA_INIT request header without a nonce
    junk = junk[:24] + (32).to_bytes(4, "big") + junk[28:]
    for data in (request, b"not ike at all", junk):
        tx.sendto(data, ("127.0.0.1", port))
    r = udp.Receiver(rx, batch=8, port=500)
    got = r.recv(GATE)
    assert [d for d, _, _ in got] == [b"not ike at all"]  # the rest never reaches the engine
    assert (r.answered, r.junk) == (1, 1)
    ((reply, _),) = drain(tx)
    cookie = cookie_of(reply)
    assert cookie is not None and cookie[0] == 7 and reply[:8] == request[:8]
    # with the cookie it passes, to be processed as usual
    tx.sendto(with_cookie(request, cookie), ("127.0.0.1", port))
    ((data, local, remote),) = r.recv(GATE)
    assert data == with_cookie(request, cookie) and local == ("127.0.0.1", 500)
    # no gate: everything passes
    tx.sendto(request, ("127.0.0.1", port))
    assert [d for d, _, _ in r.recv()] == [request] and r.answered == 1


def test_gated_receive_behind_the_non_esp_marker(udp):
    from tests.engine.floodkit import cookie_of

    rx = wildcard()
    tx = plain("127.0.0.1")
    request = _init_request()
    tx.sendto(b"\0\0\0\0" + request, ("127.0.0.1", rx.getsockname()[1]))
    tx.sendto(b"\x01\x02\x03\x04" + b"\0" * 20, ("127.0.0.1", rx.getsockname()[1]))  # ESP
    r = udp.Receiver(rx, batch=8, port=4500)
    got = r.recv(GATE)
    assert len(got) == 1 and got[0][0][:4] == b"\x01\x02\x03\x04" and r.answered == 1
    ((reply, _),) = drain(tx)
    assert reply[:4] == b"\0\0\0\0" and cookie_of(reply[4:]) is not None
