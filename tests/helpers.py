"""Helpers shared by the tests (import as `from tests.helpers import ...`)."""

import os

import pytest

from pyiked import _fast


def fast_impls(name):
    """The pure twin and, when built, the compiled module: [("py", m), ("c", m)]."""
    found = _fast.implementations(name)
    return [(k, m) for k, m in found.items() if m is not None]


def both_impls(name):
    """(pure, compiled) for a differential test; skips when the compiled one is missing."""
    found = _fast.implementations(name)
    if found["c"] is None:
        pytest.skip(f"compiled _fast.{name} not built")
    return found["py"], found["c"]


def is_root():
    return os.geteuid() == 0
