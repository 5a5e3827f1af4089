"""RandomPool: OS randomness read in chunks, each byte handed out once, reset after fork."""

import os

from pyiked.core import randomness
from pyiked.core.ke import KeyExchange
from pyiked.core.randomness import CHUNK, RandomPool, from_os


def _counting_urandom(monkeypatch):
    """os.urandom replaced by a stream 0, 1, 2, ... (mod 251) that remembers its calls."""
    calls = []

    def fake(n):
        start = sum(calls)
        calls.append(n)
        return bytes((start + i) % 251 for i in range(n))

    monkeypatch.setattr(randomness.os, "urandom", fake)
    return calls


def test_draws_are_consecutive_runs_of_whole_chunks(monkeypatch):
    calls = _counting_urandom(monkeypatch)
    pool = RandomPool()
    sizes = [8, 32, 20, 8, 8, 4, 2] * 200  # a responder handshake's draws, 200 times
    stream_pos = 0  # where the next draw must start in the fake OS stream
    for n in sizes:
        chunk_start = sum(calls[:-1]) if calls else 0
        out = pool(n)
        if sum(calls[:-1]) != chunk_start or stream_pos + n > sum(calls):
            stream_pos = sum(calls[:-1])  # a new chunk: the last one's short tail is dropped
        assert out == bytes((stream_pos + i) % 251 for i in range(n))
        stream_pos += n
    assert set(calls) == {CHUNK} and len(calls) <= sum(sizes) // CHUNK + 2


def test_no_byte_is_reused(monkeypatch):
    served = []
    counter = iter(range(1 << 30))

    def fake(n):
        return b"".join(next(counter).to_bytes(4, "big") for _ in range(n // 4))

    monkeypatch.setattr(randomness.os, "urandom", fake)
    pool = RandomPool()
    for _ in range(5000):
        served.append(pool(4))  # 4-octet draws line up with the counter's words
    assert len(set(served)) == len(served)


def test_large_requests_go_straight_to_the_os(monkeypatch):
    calls = _counting_urandom(monkeypatch)
    pool = RandomPool()
    assert len(pool(CHUNK)) == CHUNK and calls == [CHUNK]
    assert len(pool(8)) == 8 and calls == [CHUNK, CHUNK]


def test_a_forked_child_starts_empty():
    pool = RandomPool()
    pool(8)
    assert pool._buf
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports whether its pool forgot the parent's bytes
        os.write(w, b"1" if pool._buf == b"" and pool._pos == 0 else b"0")
        os._exit(0)
    os.close(w)
    answer = os.read(r, 1)
    os.close(r)
    os.waitpid(pid, 0)
    assert answer == b"1"
    assert pool._buf  # the parent keeps its own


def test_key_exchange_keys_come_from_the_library():
    assert from_os(os.urandom) and from_os(RandomPool()) and not from_os(lambda n: bytes(n))
    seen = []

    class Spy(RandomPool):
        __slots__ = ()

        def __call__(self, n):
            seen.append(n)
            return super().__call__(n)

    for group in (31, 19, 14):  # X25519, ECP-256, MODP-2048
        KeyExchange(group, random=Spy()).public_value()
    assert seen == []  # private keys never come from the pool


def test_engine_uses_a_pool_for_os_randomness():
    from tests.engine.simnet import engine_for, psk_policy
    from pyiked.core.engine import Engine

    injected = engine_for([psk_policy("p", "10.0.0.1", "10.0.0.2", "10.1.0.0/16", "10.2.0.0/16",
                                      "a.test", "b.test")], 1)
    assert not isinstance(injected.random, RandomPool)  # tests stay deterministic
    engine = Engine(injected.store)
    assert isinstance(engine.random, RandomPool) and len(engine.new_spi()) == 8
