"""Shared fixtures.

The suite runs twice (scripts/test.sh): once with the compiled `_fast` modules, once with
PYIKED_NO_EXTENSIONS=1. Differential tests use `fast_impls(name)` to get both twins in
one process.
"""

import os

import pytest

from pyiked import _fast


def pytest_report_header(config):
    mode = "compiled" if _fast.EXTENSIONS else "pure"
    return f"pyiked._fast: {mode} (PYIKED_NO_EXTENSIONS={os.environ.get('PYIKED_NO_EXTENSIONS', '')})"
