"""Compiled and pure _fast.sk open the same mutated messages to the same result or error."""

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from pyiked.core.crypto import encr_info, integ_info
from tests.helpers import both_impls

SUITES = [(20, 256, None), (19, 128, None), (16, 128, None), (28, None, None),
          (12, 128, 12), (12, 256, 14), (13, 128, 5), (3, None, 8)]


def _outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except Exception as exc:  # IkeError compares by type, reason, offset, data
        return ("err", type(exc), str(exc), getattr(exc, "offset", None))


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(min_value=0, max_value=2000), st.integers(1, 255)),
    st.tuples(st.just("cut"), st.integers(min_value=0, max_value=2000), st.just(0)),
    st.tuples(st.just("grow"), st.integers(min_value=1, max_value=40), st.just(0)),
    st.tuples(st.just("none"), st.just(0), st.just(0)),
)


@settings(max_examples=200, deadline=None)
@given(suite=st.sampled_from(SUITES), plain=st.binary(max_size=400), fragment=st.booleans(),
       mutations=st.lists(mutation, max_size=3), seed=st.binary(min_size=8, max_size=8))
def test_open_same_on_mutated_messages(suite, plain, fragment, mutations, seed):
    py, c = both_impls("sk")
    encr, bits, integ = suite
    e = encr_info(encr, bits)
    i = integ_info(0 if e.aead else integ)
    keymat = (seed * 12)[: e.keymat_len], (seed[::-1] * 8)[: i.key_len]
    sealer = py.SKCipher(encr, bits, integ, *keymat)
    hdr = os.urandom(16) + bytes((53 if fragment else 46, 0x20, 37, 8, 0, 0, 0, 1, 0, 0, 0, 0))
    msg = sealer.seal_fragment(hdr, 41, 1, 2, plain) if fragment else sealer.seal(hdr, 41, plain)
    msg = bytearray(msg)
    for kind, pos, val in mutations:
        if kind == "flip" and msg:
            msg[pos % len(msg)] ^= val
        elif kind == "cut":
            del msg[pos % (len(msg) + 1):]
        elif kind == "grow":
            msg += os.urandom(pos)
    msg = bytes(msg)
    readers = (py.SKCipher(encr, bits, integ, *keymat), c.SKCipher(encr, bits, integ, *keymat))
    if fragment:
        results = [_outcome(r.open_fragment, msg, 28) for r in readers]
    else:
        results = [_outcome(r.open, msg, 28) for r in readers]
    assert results[0] == results[1]
    if not mutations:
        assert results[0][0] == "ok"
    for result in results:
        if result[0] == "err":
            assert result[1].__name__ in ("IntegrityError", "InvalidSyntax")


@settings(max_examples=60, deadline=None)
@given(suite=st.sampled_from(SUITES), plain=st.binary(max_size=300))
def test_seal_same_with_same_randomness(suite, plain):
    py, c = both_impls("sk")
    encr, bits, integ = suite
    e = encr_info(encr, bits)
    i = integ_info(0 if e.aead else integ)
    keymat = bytes(range(e.keymat_len)), bytes(range(i.key_len))
    hdr = bytes(16) + bytes((46, 0x20, 37, 8, 0, 0, 0, 1, 0, 0, 0, 0))

    def rnd(n):
        return b"\x5a" * n

    a = py.SKCipher(encr, bits, integ, *keymat, random=rnd)
    b = c.SKCipher(encr, bits, integ, *keymat, random=rnd)
    assert a.seal(hdr, 41, plain) == b.seal(hdr, 41, plain)
    assert a.max_plaintext(1280) == b.max_plaintext(1280)
    assert a.max_plaintext(1280, True) == b.max_plaintext(1280, True)
