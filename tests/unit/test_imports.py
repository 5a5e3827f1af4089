"""Every module imports first, in a fresh interpreter: no import cycle that only works
in the order the rest of the suite happens to import things."""

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import pyiked

ROOT = Path(pyiked.__file__).resolve().parents[1]
MODULES = sorted(m.name for m in pkgutil.walk_packages(pyiked.__path__, "pyiked.")
                 if not m.name.rsplit(".", 1)[-1].startswith("_") or m.name.endswith("_py"))


def test_every_module_imports_on_its_own():
    assert "pyiked.core.lifecycle" in MODULES and "pyiked.config.capabilities" in MODULES
    # one interpreter per module, 8 at a time
    failed = {}
    for start in range(0, len(MODULES), 8):
        procs = {name: subprocess.Popen([sys.executable, "-c", f"import {name}"], cwd=ROOT,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for name in MODULES[start:start + 8]}
        for name, proc in procs.items():
            _, err = proc.communicate(timeout=60)
            if proc.returncode:
                failed[name] = err.strip().splitlines()[-1]
    assert not failed, failed
