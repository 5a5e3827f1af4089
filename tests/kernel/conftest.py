"""Root tests in network namespaces (pkk-*). Skipped without root or without `ip`."""

import os
import shutil

import pytest

from . import nsutil


def pytest_collection_modifyitems(config, items):
    reason = None
    if os.geteuid() != 0:
        reason = "needs root (network namespaces, XFRM, TUN)"
    elif not shutil.which("ip"):
        reason = "needs iproute2"
    for item in items:
        if "tests/kernel" in str(item.fspath):
            item.add_marker(pytest.mark.root)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def netns():
    """A fresh namespace `pkk-x`, deleted afterwards."""
    nsutil.create("pkk-x")
    yield "pkk-x"
    nsutil.delete("pkk-x")
