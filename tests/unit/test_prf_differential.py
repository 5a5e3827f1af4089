"""The compiled and pure _fast.prf give identical bytes and identical errors."""

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import both_impls

PRF_IDS = st.sampled_from([1, 2, 4, 5, 6, 7, 8])


def _call(fn, *args):
    try:
        return ("ok", fn(*args))
    except Exception as exc:  # compared by type and message
        return ("err", type(exc), str(exc))


@settings(max_examples=150, deadline=None)
@given(prf_id=PRF_IDS, key=st.binary(max_size=80), data=st.binary(max_size=300))
def test_prf_same(prf_id, key, data):
    py, c = both_impls("prf")
    assert _call(py.prf, prf_id, key, data) == _call(c.prf, prf_id, key, data)


@settings(max_examples=150, deadline=None)
@given(prf_id=PRF_IDS, key=st.binary(max_size=80), seed=st.binary(max_size=200),
       length=st.integers(min_value=0, max_value=600))
def test_prf_plus_same(prf_id, key, seed, length):
    py, c = both_impls("prf")
    assert _call(py.prf_plus, prf_id, key, seed, length) == _call(c.prf_plus, prf_id, key, seed, length)


@settings(max_examples=80, deadline=None)
@given(prf_id=PRF_IDS, key=st.binary(max_size=64), seed=st.binary(max_size=100),
       lengths=st.lists(st.integers(min_value=0, max_value=70), max_size=8))
def test_prf_plus_split_same(prf_id, key, seed, lengths):
    py, c = both_impls("prf")
    assert _call(py.prf_plus_split, prf_id, key, seed, lengths) == _call(
        c.prf_plus_split, prf_id, key, seed, lengths
    )
