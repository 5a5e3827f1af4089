"""Fixtures for the interop tests (real strongSwan in network namespaces).

Tests here that use a harness fixture (or carry the `interop` marker) need root and
Debian's strongSwan (charon-systemd, swanctl), iproute2, ping, ss and the `vici`
package; without them they are skipped with the reason. scripts/test.sh installs the
Debian packages when run as root. Tests that only render configs run everywhere.

Fixtures:
    pki             session PKI (strongSwan's `pki`): CAs, certs, CRLs
    topology        a bare Topology (namespaces a/b), deleted afterwards
    lab             Lab: topology + factories for StrongSwan/Pyiked/Capture, closed after
    swan_to_pyiked  strongSwan initiator (a) -> pyiked responder (b), PSK s2s, started
    pyiked_to_swan  pyiked initiator (a) -> strongSwan responder (b), PSK s2s, started

When a test fails, the tails of every charon/pyiked log in its Lab are printed (pytest
shows them under "Captured stdout teardown"); the full files stay in the test's tmp dir.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .harness import PKI, HarnessError, Lab, Topology, module_available
from .harness.pyiked_runner import DAEMON_MODULE
from .harness.util import missing_requirements, tail, tool

HERE = Path(__file__).resolve().parent
HARNESS_FIXTURES = {"pki", "topology", "lab", "swan_to_pyiked", "pyiked_to_swan"}


def _needs_interop(item) -> bool:
    return bool(HARNESS_FIXTURES & set(getattr(item, "fixturenames", ()))) or \
        item.get_closest_marker("interop") is not None


def pytest_collection_modifyitems(config, items):
    reasons = None
    for item in items:
        if HERE not in Path(str(item.fspath)).resolve().parents:
            continue
        if not _needs_interop(item):
            continue
        item.add_marker(pytest.mark.interop)
        if reasons is None:
            reasons = missing_requirements()
        if reasons and os.environ.get("PYIKED_REQUIRE_INTEROP"):
            # scripts/test.sh as root: a missing package must fail the run, not skip it
            raise pytest.UsageError("interop tests cannot run: " + "; ".join(reasons))
        if reasons:
            item.add_marker(pytest.mark.skip(reason="interop: " + "; ".join(reasons)))


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


def _failed(request) -> bool:
    return any(getattr(getattr(request.node, f"rep_{w}", None), "failed", False)
               for w in ("setup", "call"))


def _skip_if_no_netns(e: HarnessError):
    if "Operation not permitted" in str(e) or "Permission denied" in str(e):
        pytest.skip(f"interop: cannot create network namespaces here: {e}")
    raise e


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> PKI:
    if tool("pki") is None:
        pytest.skip("interop: strongSwan's pki tool is missing (strongswan-pki)")
    return PKI(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def topology():
    try:
        topo = Topology().up()
    except HarnessError as e:
        _skip_if_no_netns(e)
    yield topo
    topo.down()


def lab_report(lab: Lab, lines: int = 60) -> str:
    """Tails of every log in the lab, for a failed test's output."""
    out = [f"==== {lab!r}"]
    for swan in lab.strongswans.values():
        out += [f"---- {swan.name}: {swan.log_path}", tail(swan.log_path, lines),
                tail(swan.stdout_path, 10)]
    for iked in lab.daemons.values():
        out += [f"---- {iked.name}: {iked.log_path}", tail(iked.log_path, lines)]
    return "\n".join(out)


_SESSION_PKI = object()


def lab_for(request, tmp_path, pki=_SESSION_PKI, **lab_kw):
    """A Lab for one test (a generator for fixtures): `pki`, by default the session PKI
    when the `pki` tool exists; a skip without network namespaces; its report printed
    when the test failed."""
    if pki is _SESSION_PKI:
        pki = request.getfixturevalue("pki") if tool("pki") else None
    try:
        the_lab = Lab(tmp_path, pki, **lab_kw)
    except HarnessError as e:
        _skip_if_no_netns(e)
    yield the_lab
    if _failed(request):
        print(lab_report(the_lab))
    the_lab.close()


@pytest.fixture
def lab(request, tmp_path):
    yield from lab_for(request, tmp_path)


def _need_daemon():
    if not module_available(DAEMON_MODULE):
        pytest.skip(f"{DAEMON_MODULE} does not exist yet")


@pytest.fixture
def swan_to_pyiked(lab):
    """strongSwan (a, conn s2s, child net) will initiate to pyiked (b, IKED_S2S_RESPONDER);
    both are running, nothing initiated yet: call .initiate()."""
    _need_daemon()
    return lab.swan_to_pyiked()


@pytest.fixture
def pyiked_to_swan(lab):
    """pyiked (a, IKED_S2S_INITIATOR, active) initiates to strongSwan (b, conn s2s);
    call .wait_up() for the established SA."""
    _need_daemon()
    return lab.pyiked_to_swan()
