"""The bench's drivers do what their figures claim: every handshake of the in-memory pair
establishes a distinct IKE SA with its own CHILD SA (PSK: its own identity too; the
certificate profile: one identity), `forget` leaves only the responder's
state, and the in-process figures count what they say (bench/pair.py, bench/handshake.py,
bench/memory.py). No timing is asserted."""

import ipaddress

import pytest

from bench import handshake, memory
from bench.pair import GENERATOR_NET, PROFILES, Pair
from pyiked.core.events import ChildSAInstall

RUNNABLE = [name for name, p in PROFILES.items() if p.unsupported() is None]


@pytest.mark.parametrize("name", RUNNABLE)
def test_each_handshake_is_a_distinct_peer(name):
    installs = []
    pair = Pair(PROFILES[name], sink=lambda e: installs.append(e) if isinstance(e, ChildSAInstall) else None)
    for k in range(4):
        assert pair.handshake(k)
    sas = list(pair.responder.sas.values())
    assert [sa.state.name for sa in sas] == ["ESTABLISHED"] * 4
    ids = sorted(str(sa.remote_id) for sa in sas)
    if PROFILES[name].certificates:  # one certificate for all (bench/pair.py)
        assert ids == ["a-ec.pk.test"] * 4 and {str(sa.local_id) for sa in sas} == {"b-ec.pk.test"}
    else:
        assert ids == [f"c{k}.bench.test" for k in range(4)]
    assert len({sa.spi_r for sa in sas}) == 4 and all(len(sa.children) == 1 for sa in sas)
    hosts = sorted(str(e.ts_remote[0].start_addr) for e in installs)
    base = ipaddress.ip_network(GENERATOR_NET).network_address
    assert hosts == [str(base + k) for k in range(4)]
    assert all(e.encap is not None for e in installs)  # the responder made the peer use UDP
    assert pair.responder_cpu > 0 and pair.established == 4


def test_forget_keeps_only_the_responders_state():
    pair = Pair(PROFILES["psk-x25519-gcm"], forget=True)
    for k in range(3):
        assert pair.handshake(k)
    assert len(pair.responder.sas) == 3 and not pair.initiator.sas


def test_every_profile_runs_here():
    # the certificate profile needs the test PKI and certificate support in the engine
    assert [name for name, p in PROFILES.items() if p.unsupported()] == []


def test_inprocess_figure_counts_every_handshake():
    r = handshake.inprocess("psk-x25519-gcm", 10)
    assert r["established"] == 10 and r["responder_us"] > 0


@pytest.mark.parametrize("traced", [False, True])
def test_memory_measure_holds_n_sas(traced):
    r = memory.measure(20, traced)
    assert (r["established"], r["children"], r["installed"]) == (20, 20, 20)
    if traced:
        assert r["traced_engine_per_sa"] > 0 and r["traced_backend_per_sa"] > 0
    else:
        assert "rss_per_sa" in r
