"""RFC 7383 fragmentation: splitting, and reassembly under loss, reordering, duplication,
forgery and hostile sizes. Runs over both SK implementations."""

import random
from collections import Counter
from types import SimpleNamespace

import pytest

from pyiked._fast import wire
from pyiked.core import fragments
from pyiked.core.errors import SilentDrop
from pyiked.core.iana import ExchangeType, PayloadType
from tests.helpers import fast_impls

KEYS = dict(encr_key=bytes(range(32)), integ_key=bytes(range(100, 132)))
IMPLS = [m for _, m in fast_impls("sk")]


def make_sa(
    sk,
    *,
    fragmentation=True,
    peer=True,
    size=0,
    remote=("10.231.0.2", 500),
    local=("10.231.0.1", 500),
):
    cipher = sk.SKCipher(12, 256, 12, **KEYS)  # AES-CBC-256 / HMAC-SHA2-256-128
    engine = SimpleNamespace(
        fragmentation=fragmentation, fragment_size=size, ike_port=500, stats=Counter()
    )
    return SimpleNamespace(
        engine=engine,
        peer_fragmentation=peer,
        sk_out=cipher,
        sk_in=cipher,
        spi_i=b"\x01" * 8,
        spi_r=b"\x02" * 8,
        remote_addr=remote,
        local_addr=local,
        frag_in=None,
    )


def big_payloads(n=1500):
    return [
        wire.IDi(2, b"a.pk.test"),
        wire.CERT(4, bytes(random.Random(n).randbytes(n))),
        wire.AUTH(14, b"s" * 256),
    ]


def split(sa, payloads, msg_id=1):
    plaintext = wire.encode_payloads(payloads)
    return fragments.seal(
        sa, ExchangeType.IKE_AUTH, msg_id, 0x08, payloads[0].payload_type, plaintext
    )


def deliver(sa, data, now=0.0):
    return fragments.receive(sa, wire.decode(data), data, now)


@pytest.mark.parametrize("sk", IMPLS)
def test_split_respects_the_size_and_marks_the_first_payload(sk):
    sa = make_sa(sk)
    pieces = split(sa, big_payloads())
    assert len(pieces) >= 4 and all(len(p) <= 576 - 28 for p in pieces)
    decoded = [wire.decode(p) for p in pieces]
    assert [m.payloads[0].fragment_number for m in decoded] == list(range(1, len(pieces) + 1))
    assert {m.payloads[0].total_fragments for m in decoded} == {len(pieces)}
    # RFC 7383 §2.5: the first fragment names the first inner payload, the others 0
    assert [m.payloads[0].next_payload for m in decoded] == [PayloadType.IDi] + [0] * (
        len(pieces) - 1
    )
    assert split(sa, [wire.IDi(2, b"small")]) is None  # it fits: sent whole


def test_sizes_follow_the_family_the_port_and_the_setting():
    sk = IMPLS[0]
    assert fragments.message_limit(make_sa(sk)) == 576 - 20 - 8
    assert fragments.message_limit(make_sa(sk, remote=("2001:db8::2", 500))) == 1280 - 40 - 8
    natt = make_sa(sk, remote=("10.231.0.2", 4500), local=("10.231.0.1", 4500))
    assert fragments.message_limit(natt) == 576 - 20 - 8 - 4  # the non-ESP marker
    assert fragments.message_limit(make_sa(sk, size=1400)) == 1400 - 28


@pytest.mark.parametrize("sk", IMPLS)
@pytest.mark.parametrize("seed", range(6))
def test_reassembly_under_reordering_and_duplication(sk, seed):
    rng = random.Random(seed)
    sender, receiver = make_sa(sk), make_sa(sk)
    payloads = big_payloads(1000 + 300 * seed)
    pieces = split(sender, payloads)
    arrivals = pieces + rng.sample(pieces, k=len(pieces) // 2)  # duplicates
    rng.shuffle(arrivals)
    results = [deliver(receiver, p) for p in arrivals]
    done = [r for r in results if r is not None]
    assert done == [payloads]  # exactly once, when the last missing piece came in
    assert len(receiver.frag_in) == 0


@pytest.mark.parametrize("sk", IMPLS)
def test_loss_leaves_it_incomplete_until_the_retransmission(sk):
    sender, receiver = make_sa(sk), make_sa(sk)
    payloads = big_payloads()
    pieces = split(sender, payloads)
    assert all(deliver(receiver, p) is None for p in pieces[:-1])
    # the sender retransmits every fragment (§2.6); the stored ones are duplicates
    assert [deliver(receiver, p) for p in pieces][-1] == payloads


@pytest.mark.parametrize("sk", IMPLS)
def test_forged_fragments_are_dropped_before_they_are_stored(sk):
    sender, receiver = make_sa(sk), make_sa(sk)
    payloads = big_payloads()
    pieces = split(sender, payloads)
    for piece in pieces:
        forged = bytearray(piece)
        forged[-20] ^= 1
        with pytest.raises(SilentDrop):
            deliver(receiver, bytes(forged))
    assert receiver.frag_in is None or len(receiver.frag_in) == 0  # nothing was kept
    assert receiver.engine.stats["fragments_forged"] == len(pieces)
    results = [deliver(receiver, p) for p in pieces]
    assert results[-1] == payloads


@pytest.mark.parametrize("sk", IMPLS)
def test_a_forged_fragment_in_the_middle_does_not_spoil_the_message(sk):
    sender, receiver = make_sa(sk), make_sa(sk)
    payloads = big_payloads()
    pieces = split(sender, payloads)
    deliver(receiver, pieces[0])
    other_key = make_sa(sk)
    other_key.sk_out = sk.SKCipher(12, 256, 12, bytes(32), bytes(32))
    impostor = split(other_key, big_payloads(999))[1]  # right SPIs and message ID, wrong key
    with pytest.raises(SilentDrop):
        deliver(receiver, impostor)
    assert [deliver(receiver, p) for p in pieces[1:]][-1] == payloads


def test_bounds_on_fragments_bytes_and_age():
    sk = IMPLS[0]
    sender, receiver = make_sa(sk), make_sa(sk)
    cipher = sender.sk_out
    header = wire.encode_header(
        wire.Message(b"\x01" * 8, b"\x02" * 8, 35, 0x08, 1, [wire.SKF(35, 1, 200, b"")]), 0
    )
    too_many = cipher.seal_fragment(header, 35, 1, fragments.MAX_FRAGMENTS + 1, b"x" * 16)
    with pytest.raises(SilentDrop, match="more than"):
        deliver(receiver, too_many)
    r = fragments.Reassembler()
    r.add(False, 1, 1, 3, 35, b"a" * 40000, now=0.0)
    with pytest.raises(SilentDrop, match="larger than"):
        r.add(False, 1, 2, 3, 0, b"b" * 40000, now=0.0)
    assert len(r) == 0
    r.add(False, 2, 1, 2, 35, b"first", now=0.0)
    assert (
        r.add(False, 2, 2, 2, 0, b"late", now=fragments.MAX_AGE + 1) is None
    )  # too old: restarted
    assert r.add(False, 2, 1, 2, 35, b"first", now=fragments.MAX_AGE + 2) == (35, b"firstlate")


def test_total_fragments_changes():
    r = fragments.Reassembler()
    assert r.add(False, 1, 1, 2, 35, b"a", 0.0) is None
    # §2.6: a larger total means the sender re-fragmented smaller: start over
    assert r.add(False, 1, 1, 3, 35, b"A", 0.0) is None
    with pytest.raises(SilentDrop):
        r.add(False, 1, 2, 2, 0, b"b", 0.0)  # a smaller total is stale
    assert r.add(False, 1, 2, 3, 0, b"B", 0.0) is None
    assert r.add(False, 1, 3, 3, 0, b"C", 0.0) == (35, b"ABC")


def test_requests_and_responses_reassemble_separately_and_a_new_message_id_restarts():
    r = fragments.Reassembler()
    assert r.add(False, 4, 1, 2, 35, b"req", 0.0) is None
    assert r.add(True, 9, 1, 2, 36, b"resp", 0.0) is None
    assert r.add(False, 4, 2, 2, 0, b"uest", 0.0) == (35, b"request")
    assert r.add(True, 10, 1, 1, 41, b"other", 0.0) == (41, b"other")  # id 9 abandoned


def test_first_fragment_must_name_a_payload():
    r = fragments.Reassembler()
    with pytest.raises(SilentDrop):
        r.add(False, 1, 1, 2, 0, b"x", 0.0)


def test_skf_without_negotiation_is_dropped():
    sk = IMPLS[0]
    sender, receiver = make_sa(sk), make_sa(sk, peer=False)
    piece = split(sender, big_payloads())[0]
    with pytest.raises(SilentDrop, match="not negotiated"):
        deliver(receiver, piece)


def test_only_the_first_fragment_of_a_retransmitted_request_is_answered():
    sk = IMPLS[0]
    sender, receiver = make_sa(sk), make_sa(sk)
    pieces = split(sender, big_payloads())
    answers = [fragments.retransmitted_first_fragment(receiver, wire.decode(p), p) for p in pieces]
    assert answers == [True] + [False] * (len(pieces) - 1)
    forged = bytearray(pieces[0])
    forged[-1] ^= 1
    with pytest.raises(SilentDrop):
        fragments.retransmitted_first_fragment(receiver, wire.decode(bytes(forged)), bytes(forged))
