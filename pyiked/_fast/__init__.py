"""Hot paths: one API, two implementations.

Each module NAME has a pure-Python source `_NAME_py.py`. setup.py compiles it a second
time with Cython, as `_NAME_c`, using the declarations in `_NAME_c.pxd` (one source
compiled twice, as aiohttp does), or compiles a hand-written `_NAME_c.pyx` whose twin is
`_NAME_py.py`. `pyiked._fast.NAME` is the compiled module when it was built and
PYIKED_NO_EXTENSIONS is not set, else the pure twin.

    from pyiked._fast import wire        # the chosen implementation
    pyiked._fast.EXTENSIONS              # True when every module is compiled
    pyiked._fast.implementations("wire") # {"py": module, "c": module or None}, for tests
"""

import importlib
import os

MODULES = ("wire", "dispatch", "prf", "sk", "esp", "udp")

NO_EXTENSIONS = bool(os.environ.get("PYIKED_NO_EXTENSIONS"))


def _is_compiled(module):
    return not module.__file__.endswith((".py", ".pyc"))


def _import_compiled(name):
    try:
        module = importlib.import_module(f"{__name__}._{name}_c")
    except ImportError:
        return None
    return module if _is_compiled(module) else None


def implementations(name):
    """Both implementations of one module: {"py": pure, "c": compiled or None}."""
    return {
        "py": importlib.import_module(f"{__name__}._{name}_py"),
        "c": _import_compiled(name),
    }


def _load(name):
    if not NO_EXTENSIONS:
        compiled = _import_compiled(name)
        if compiled is not None:
            return compiled
    return importlib.import_module(f"{__name__}._{name}_py")


def _present():
    here = os.path.dirname(__file__)
    return [m for m in MODULES if os.path.exists(os.path.join(here, f"_{m}_py.py"))]


_loaded = {name: _load(name) for name in _present()}
globals().update(_loaded)

EXTENSIONS = bool(_loaded) and all(_is_compiled(m) for m in _loaded.values())
"""True when every hot-path module in use is the compiled one."""

__all__ = ["EXTENSIONS", "NO_EXTENSIONS", "implementations", *_loaded]
