"""The compiled and the pure twin, fed the same octets, give the same result or the same
error (IkeError equality: type, reason, offset, data); the same message encodes to the
same octets in both."""

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import both_impls
from tests.unit.wire_data import (
    CAPTURES,
    chain_strategy,
    ike_messages,
    message_strategy,
    outcome,
)

SEEDS = [raw for cap in CAPTURES for _, raw in ike_messages(cap)]


def rebuild(obj, w):
    """The same payload/message built from the classes of twin `w`."""
    if isinstance(obj, list):
        return [rebuild(o, w) for o in obj]
    if isinstance(obj, tuple):
        return tuple(rebuild(o, w) for o in obj)
    fields = getattr(type(obj), "_fields", None)
    if fields is None:
        return obj
    cls = getattr(w, type(obj).__name__)
    if cls is w.Message:
        return w.Message(*(rebuild(getattr(obj, f), w) for f in
                           ("spi_i", "spi_r", "exchange_type", "flags", "message_id",
                            "payloads", "version")))
    return cls(*(rebuild(getattr(obj, f), w) for f in fields))


def _same(py, c, fn, *args):
    a = outcome(getattr(py, fn), *args)
    b = outcome(getattr(c, fn), *args)
    assert a == b, (fn, a, b)
    return a


def test_real_messages_and_every_truncation():
    py, c = both_impls("wire")
    for raw in SEEDS:
        _same(py, c, "decode", raw)
        for k in range(0, len(raw), 7):
            _same(py, c, "decode", raw[:k])
            _same(py, c, "decode", raw[:24] + len(raw[:k]).to_bytes(4, "big") + raw[28:k])


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_generated_messages_encode_and_decode_alike(data):
    py, c = both_impls("wire")
    m = data.draw(message_strategy(py))
    raw = py.encode(m)
    assert c.encode(rebuild(m, c)) == raw
    _same(py, c, "decode", raw)
    assert py.decode(raw) == m


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_messages_fail_alike(data):
    py, c = both_impls("wire")
    if data.draw(st.booleans()):
        raw = data.draw(st.sampled_from(SEEDS))
    else:
        raw = py.encode(data.draw(message_strategy(py)))
    buf = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 6))):
        op = data.draw(st.sampled_from(["set", "cut", "insert"]))
        pos = data.draw(st.integers(0, max(len(buf) - 1, 0)))
        if op == "set" and buf:
            buf[pos] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del buf[pos:pos + data.draw(st.integers(1, 8))]
        else:
            buf[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
    mutated = bytes(buf)
    if data.draw(st.booleans()) and len(mutated) >= 28:
        mutated = mutated[:24] + len(mutated).to_bytes(4, "big") + mutated[28:]
    _same(py, c, "decode", mutated)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_inner_chains_alike(data):
    py, c = both_impls("wire")
    payloads = data.draw(chain_strategy(py))
    raw = py.encode_payloads(payloads)
    assert c.encode_payloads(rebuild(payloads, c)) == raw
    first = data.draw(st.integers(0, 255))
    _same(py, c, "decode_payloads", raw, first)
    cut = data.draw(st.integers(0, len(raw)))
    _same(py, c, "decode_payloads", raw[:cut], first)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.integers(0, 255))
def test_random_octets_alike(data, first):
    py, c = both_impls("wire")
    _same(py, c, "decode", data)
    _same(py, c, "decode_payloads", data, first)
