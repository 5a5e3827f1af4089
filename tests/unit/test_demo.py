"""`pyiked demo` establishes SAs (loopback) and, as root, passes traffic (namespaces)."""

import os
import shutil
import subprocess
import sys

import pytest


def _demo(*args):
    return subprocess.run([sys.executable, "-m", "pyiked.daemon.cli", "demo", *args],
                          capture_output=True, text=True, timeout=60, env=os.environ.copy())


def test_loopback_demo():
    out = _demo("--loopback")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("ESTABLISHED") == 2 and out.stdout.count("INSTALLED") == 2
    assert "IKE SA and CHILD SA established" in out.stdout


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"), reason="needs root and iproute2")
def test_namespace_demo_pings_through_the_tunnel():
    out = _demo()
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 received, 0% packet loss" in out.stdout
    assert out.stdout.count("ESTABLISHED") == 2
    remaining = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "pyikeddemo" not in remaining
