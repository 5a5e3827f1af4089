"""choose_backend: by name, and automatically by the ESP probe (with a log line)."""

import logging

import pytest

from pyiked.kernel import KernelError, choose_backend, kernel_has_esp
from pyiked.kernel.memory import MemoryBackend
from pyiked.kernel.userspace import UserspaceBackend
from pyiked.kernel.xfrm import XfrmBackend

from . import nsutil as ns


def test_by_name_and_automatic(netns, caplog):
    sent = []
    with ns.inside(netns):
        has_esp = kernel_has_esp()
        assert isinstance(choose_backend("memory"), MemoryBackend)
        x = choose_backend("xfrm", reqid_range=(100, 199))
        assert isinstance(x, XfrmBackend)
        x.close()
        with caplog.at_level(logging.WARNING, logger="pyiked.kernel"):
            auto = choose_backend(None, send=lambda *a: sent.append(a), tun_name="pkk-t%d")
        try:
            if has_esp:
                assert isinstance(auto, XfrmBackend)
            else:
                assert isinstance(auto, UserspaceBackend)
                assert auto.requires_udp_encap
                assert "userspace ESP" in caplog.text and "CONFIG_INET_ESP" in caplog.text
        finally:
            auto.close()
    with pytest.raises(KernelError, match="unknown kernel backend"):
        choose_backend("pfkey")
    with pytest.raises(KernelError, match="send"):
        choose_backend("userspace")
