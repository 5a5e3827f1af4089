"""Build the compiled twins of pyiked/_fast.

For each hot-path module NAME:
  - `pyiked/_fast/_NAME_c.pyx` exists: compile it (its twin is `_NAME_py.py`);
  - else `_NAME_py.py` is compiled a second time as `_NAME_c`, with `_NAME_c.pxd` typing it
    (Cython pure-Python mode). The source is copied into build/cython so the tree never
    holds a generated `_NAME_c.py`.

PYIKED_NO_EXTENSIONS=1 skips compiling. A missing Cython or compiler gives a pure install
with a warning, never a failed one.
"""

import os
import shutil
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent
FAST = Path("pyiked") / "_fast"
STAGE = Path("build") / "cython"
MODULES = ("wire", "dispatch", "prf", "sk", "esp", "udp")

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "initializedcheck": False,
    "cdivision": True,
    "embedsignature": True,
}


def _stage(name):
    """Copy the pure source and its .pxd to build/cython as `_NAME_c.py`."""
    stage = STAGE / FAST
    stage.mkdir(parents=True, exist_ok=True)
    target = stage / f"_{name}_c.py"
    shutil.copyfile(FAST / f"_{name}_py.py", target)
    pxd = FAST / f"_{name}_c.pxd"
    if pxd.exists():
        shutil.copyfile(pxd, stage / pxd.name)
    return target


def extensions():
    if os.environ.get("PYIKED_NO_EXTENSIONS"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("pyiked: Cython not available, installing the pure-Python twins", file=sys.stderr)
        return []
    exts = []
    for name in MODULES:
        pyx = FAST / f"_{name}_c.pyx"
        if pyx.exists():
            source = pyx
        elif (FAST / f"_{name}_py.py").exists():
            source = _stage(name)
        else:
            continue
        exts.append(Extension(f"pyiked._fast._{name}_c", [str(source)]))
    if not exts:
        return []
    return cythonize(exts, compiler_directives=DIRECTIVES, build_dir=str(STAGE / "c"), quiet=True)


class OptionalBuildExt(build_ext):
    """A module that fails to compile falls back to its pure twin at import time."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # no compiler at all
            print(f"pyiked: compiled modules not built ({exc}); pure twins in use", file=sys.stderr)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:
            print(f"pyiked: {ext.name} not compiled ({exc}); its pure twin is used", file=sys.stderr)


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
