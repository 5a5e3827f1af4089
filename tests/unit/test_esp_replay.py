"""The anti-replay window (RFC 4303 §3.4.3) and ESN high-bit inference (Appendix A2.2),
at its edges, in both `_fast.esp` implementations."""

import pytest

from pyiked.core.errors import EspError, ReplayError
from tests.helpers import fast_impls

IMPLS = fast_impls("esp")
impls = pytest.mark.parametrize("impl", [m for _, m in IMPLS], ids=[k for k, _ in IMPLS])


def receive(win, seq_low):
    seq = win.check(seq_low)
    win.update(seq)
    return seq


@impls
def test_window_edges_32bit(impl):
    win = impl.ReplayWindow(64, False)
    assert receive(win, 1) == 1
    with pytest.raises(ReplayError, match="duplicate"):
        win.check(1)
    assert receive(win, 100) == 100
    assert win.check(37) == 37  # T - W + 1: the left edge is inside
    assert win.check(37) == 37  # check alone changes nothing
    with pytest.raises(ReplayError, match="left of the replay window"):
        win.check(36)
    receive(win, 37)
    with pytest.raises(ReplayError, match="duplicate"):
        win.check(37)
    with pytest.raises(ReplayError, match="duplicate"):
        win.check(100)
    assert receive(win, 99) == 99
    # one step right: 37 falls out, 38 is now the left edge
    receive(win, 101)
    with pytest.raises(ReplayError, match="left"):
        win.check(37)
    assert win.check(38) == 38


@impls
@pytest.mark.parametrize("size", [32, 64, 128, 1024])
def test_window_sizes(impl, size):
    win = impl.ReplayWindow(size, False)
    top = size * 3
    receive(win, top)
    assert win.check(top - size + 1) == top - size + 1
    with pytest.raises(ReplayError):
        win.check(top - size)
    for seq in range(top - size + 1, top):
        receive(win, seq)
    for seq in range(top - size + 1, top + 1):
        with pytest.raises(ReplayError):
            win.check(seq)


@impls
def test_big_jump_resets_the_bitmap(impl):
    win = impl.ReplayWindow(64, False)
    receive(win, 5)
    receive(win, 10_000)
    assert win.check(9_999) == 9_999
    assert win.check(10_000 - 63) == 10_000 - 63
    with pytest.raises(ReplayError):
        win.check(5)


@impls
def test_sequence_zero_and_32bit_wrap(impl):
    win = impl.ReplayWindow(64, False)
    with pytest.raises(ReplayError, match="sequence number 0"):
        win.check(0)
    receive(win, 0xFFFFFFFF)
    # without ESN the counter never cycles (RFC 4303 §3.3.3): 0 and 1 are old, not new
    with pytest.raises(ReplayError):
        win.check(0)
    with pytest.raises(ReplayError):
        win.check(1)


@impls
def test_disabled_window_accepts_duplicates(impl):
    win = impl.ReplayWindow(0, False)
    receive(win, 9)
    assert receive(win, 9) == 9
    assert receive(win, 1) == 1
    with pytest.raises(ReplayError):
        win.check(0)


@impls
def test_esn_case_a(impl):
    # RFC 4303 Appendix A2.2 Case A: Tl >= W - 1, the window inside one subspace
    win = impl.ReplayWindow(64, True)
    win.top = (2 << 32) | 0x1000
    bl = 0x1000 - 64 + 1
    assert win.check(bl) == (2 << 32) | bl  # Seql >= Bl: Seqh = Th
    assert win.check(0x1001) == (2 << 32) | 0x1001
    assert win.check(bl - 1) == (3 << 32) | (bl - 1)  # Seql < Bl: Seqh = Th + 1


@impls
def test_esn_case_b(impl):
    # Case B: Tl < W - 1, the window spans the end of the previous subspace
    win = impl.ReplayWindow(64, True)
    win.top = (1 << 32) | 5
    win.bitmap = 1
    assert win.check(0xFFFFFFF0) == 0xFFFFFFF0  # Seql >= Bl (mod 2^32): Seqh = Th - 1
    assert win.check(3) == (1 << 32) | 3  # Seql < Bl: Seqh = Th
    assert win.check(6) == (1 << 32) | 6
    bl = (5 - 64 + 1) & 0xFFFFFFFF
    assert win.check(bl) == bl  # the left edge, in the previous subspace
    with pytest.raises(ReplayError):
        win.check(5)


@impls
def test_esn_crosses_the_32bit_boundary(impl):
    win = impl.ReplayWindow(64, True)
    win.top = 0xFFFFFFF0
    receive(win, 0xFFFFFFFE)
    receive(win, 0xFFFFFFFF)
    assert receive(win, 0) == 1 << 32  # seq low 0 after the wrap: Seqh = 1
    assert receive(win, 1) == (1 << 32) | 1
    # late packets from before the wrap still map to Seqh = 0, and are duplicates
    with pytest.raises(ReplayError, match="duplicate"):
        win.check(0xFFFFFFFF)
    assert receive(win, 0xFFFFFFFD) == 0xFFFFFFFD


@impls
def test_esn_limits(impl):
    win = impl.ReplayWindow(64, True)
    # at the start (T = 0) the top of the 32-bit space belongs to Seqh = -1: invalid
    with pytest.raises(ReplayError, match="ESN space"):
        win.check(0xFFFFFFFF)
    assert win.check(1) == 1
    win.top = 0xFFFFFFFF_00001000
    with pytest.raises(ReplayError, match="ESN space"):
        win.check(5)  # Seqh would be 2^32


@impls
def test_window_size_bounds(impl):
    with pytest.raises(ValueError):
        impl.ReplayWindow(-1, False)
    with pytest.raises(ValueError):
        impl.ReplayWindow(impl.MAX_REPLAY_WINDOW + 1, False)


@impls
@pytest.mark.parametrize("esn", [False, True])
def test_sender_sequence_exhaustion(impl, esn):
    # RFC 4303 §3.3.3: the counter must not cycle; soft expiry comes before the end
    sa = impl.EspSA(0x1234, 20, bytes(36), esn=esn)
    top = 0xFFFFFFFFFFFFFFFF if esn else 0xFFFFFFFF
    sa.seq = top - impl.SEQ_SOFT_MARGIN - 2
    sa.encap(b"x" * 20, 4)
    assert sa.take_expire() == 0
    sa.encap(b"x" * 20, 4)
    assert sa.take_expire() == 1
    sa.seq = top - 1
    sa.encap(b"x" * 20, 4)
    assert sa.seq == top
    with pytest.raises(EspError, match="exhausted"):
        sa.encap(b"x" * 20, 4)
    assert sa.take_expire() == 2
    with pytest.raises(EspError, match="hard lifetime"):
        sa.encap(b"x" * 20, 4)
