"""The `_fast` facade picks the implementation the environment asks for."""

import os

from pyiked import _fast


def test_mode_matches_environment():
    if os.environ.get("PYIKED_NO_EXTENSIONS"):
        assert not _fast.EXTENSIONS
        for name in _fast.__all__:
            mod = getattr(_fast, name)
            if hasattr(mod, "__file__"):
                assert mod.__file__.endswith(".py"), name
    if os.environ.get("PYIKED_EXPECT_EXTENSIONS"):
        # scripts/test.sh sets this for the compiled run: a failed build must not pass
        # silently as a second pure run.
        assert _fast.EXTENSIONS, "compiled _fast modules were not built"


def test_every_present_module_has_a_pure_twin():
    for name in _fast.MODULES:
        impls = _fast.implementations(name) if name in _fast.__all__ else None
        if impls is not None:
            assert impls["py"].__file__.endswith(".py")
