"""etc/pyiked.service: Type=notify with the daemon's own command lines, and hardening that
leaves what the daemon needs (tests/interop/test_pyikectl.py runs a daemon under the same
capability bounding set, read from this file)."""

import configparser
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from pyiked.ctl.cli import parse_command
from pyiked.daemon.cli import build_parser

UNIT = Path(__file__).resolve().parents[2] / "etc" / "pyiked.service"


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string(UNIT.read_text())
    return parser


def unit_capabilities() -> set[str]:
    return set(unit()["Service"]["CapabilityBoundingSet"].split())


def test_notify_service_with_the_daemons_command_lines():
    service = unit()["Service"]
    assert service["Type"] == "notify" and service["NotifyAccess"] == "main"
    start = shlex.split(service["ExecStart"])
    assert start[0] == "pyiked" and start[-1] == "$PYIKED_OPTS"
    args = build_parser().parse_args(start[1:-1])
    assert args.foreground and args.file == "/etc/iked.conf" and args.socket == "/var/run/iked.sock"
    check = build_parser().parse_args(shlex.split(service["ExecStartPre"])[1:])
    assert check.check_only and check.file == args.file
    reload = shlex.split(service["ExecReload"])
    assert reload[:3] == ["pyikectl", "-s", args.socket]
    assert parse_command(reload[3:]) == ("reload", {})


def test_hardening_leaves_what_the_daemon_needs():
    service = unit()["Service"]
    assert unit_capabilities() == {"CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"}
    assert service["ProtectSystem"] == "strict" and service["NoNewPrivileges"] == "yes"
    # the control socket's directory stays writable (/var/run is a link to /run)
    socket_dir = os.path.realpath(os.path.dirname("/var/run/iked.sock"))
    writable = service["ReadWritePaths"].split()
    assert any(socket_dir == w or socket_dir.startswith(w.rstrip("/") + "/") for w in writable)
    # netlink (XFRM, routes), UDP and the control socket
    assert set(service["RestrictAddressFamilies"].split()) == {"AF_UNIX", "AF_INET", "AF_INET6",
                                                               "AF_NETLINK"}
    assert "/dev/net/tun rw" in service["DeviceAllow"]  # the userspace ESP backend


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_accepts_the_unit(tmp_path):
    copy = tmp_path / "pyiked.service"
    copy.write_text(UNIT.read_text())
    result = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True,
                            text=True, check=False, timeout=60)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if line.strip() and "is not executable" not in line  # not installed here
                and "Failed to " not in line.split(":", 1)[0]]
    assert problems == [], problems
