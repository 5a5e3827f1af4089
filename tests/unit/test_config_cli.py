"""`pyiked -n` checks like `iked -n`; `-nv` prints the canonical form, which re-parses to
the same policies."""

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pyiked.config import parse_config_text
from pyiked.daemon import cli

ROOT = Path(__file__).resolve().parents[2]
GOOD = """\
gw = "10.231.0.1"
ikev2 "s2s" passive esp from 10.231.2.0/24 to 10.231.1.0/24 \\
    local 10.231.0.2 peer $gw \\
    ikesa enc aes-256-gcm prf hmac-sha2-256 group curve25519 \\
    ikesa enc aes-128 auth hmac-sha2-256 prf hmac-sha2-256 group modp2048 \\
    childsa enc aes-256-gcm \\
    childsa enc aes-128 auth hmac-sha2-256 \\
    srcid b.pk.test dstid a.pk.test psk "pk-test-psk-0123456789"
"""


def write(tmp_path, text, name="iked.conf", mode=0o600):
    path = tmp_path / name
    path.write_text(text)
    os.chmod(path, mode)
    return str(path)


def test_check_ok(tmp_path, capsys):
    assert cli.main(["-n", "-f", write(tmp_path, GOOD)]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err.endswith("configuration OK\n")


def test_check_fails_with_file_line_column(tmp_path, capsys):
    path = write(tmp_path, "set passive\nikev2 esp from 10.0.0.0/8 port 1 port 2 to 10.1.0.0/8\n")
    assert cli.main(["-n", "-f", path]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f'{path}:2:34: expected "to", got "port"\n'


def test_check_refuses_what_the_engine_cannot_honour(tmp_path, capsys):
    path = write(tmp_path, 'ikev2 ah from 10.0.0.0/8 to 10.1.0.0/16 peer any eap "mschap-v2"\n')
    assert cli.main(["-n", "-f", path]) == 1
    assert capsys.readouterr().err == f'{path}:1:7: rule "policy1": AH is not supported yet\n'


def test_missing_file(tmp_path, capsys):
    assert cli.main(["-n", "-f", str(tmp_path / "none.conf")]) == 1
    assert "cannot open: No such file or directory" in capsys.readouterr().err


def test_verbose_check_prints_canonical_form_that_reparses(tmp_path, capsys):
    path = write(tmp_path, GOOD)
    assert cli.main(["-nv", "-f", path]) == 0
    out, err = capsys.readouterr()
    assert "configuration OK" in err and "warning" in err  # MOBIKE is on by default
    printed, _ = parse_config_text(out, check=False)
    original, _ = parse_config_text(GOOD, check=False)
    assert [dataclasses.replace(p, source="") for p in printed.policies] == [
        dataclasses.replace(p, source="") for p in original.policies
    ]
    assert printed.settings == original.settings
    # And the printed form is itself a valid file for `pyiked -n`.
    assert cli.main(["-n", "-f", write(tmp_path, out, "printed.conf")]) == 0


def test_defines_override_macros(tmp_path, capsys):
    path = write(tmp_path, GOOD)
    assert cli.main(["-nv", "-D", "gw=192.0.2.99", "-f", path]) == 0
    assert "peer 192.0.2.99" in capsys.readouterr().out


def test_bad_define_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["-n", "-D", "novalue", "-f", write(tmp_path, GOOD)])
    assert exc.value.code == 2
    assert "could not parse macro definition" in capsys.readouterr().err


def test_flags_parse_like_iked():
    args = cli.build_parser().parse_args(
        ["-dvvS6", "-t", "-D", "a=b", "-D", "c=d=e", "-f", "x.conf", "-p", "4501",
         "-s", "/run/p.sock", "--backend", "userspace", "--metrics", "127.0.0.1:9100"]
    )
    assert (args.foreground, args.verbose, args.start_passive, args.no_ipv6) == (
        True, 2, True, True)
    assert (args.natt_enforce, args.natt_disable) == (True, False)
    assert args.defines == [("a", "b"), ("c", "d=e")]
    assert (args.file, args.udpencap_port, args.socket) == ("x.conf", 4501, "/run/p.sock")
    assert (args.backend, args.metrics) == ("userspace", "127.0.0.1:9100")
    defaults = cli.build_parser().parse_args([])
    assert (defaults.file, defaults.socket, defaults.backend) == (
        "/etc/iked.conf", "/var/run/iked.sock", "auto")
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["-T", "-t"])
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["-p", "70000"])


def test_run_gets_the_effective_config(tmp_path, monkeypatch):
    import types

    seen = {}
    fake = types.ModuleType("pyiked.daemon.run")

    def run(args, config, warnings):
        seen.update(args=args, config=config, warnings=warnings)
        return 0

    fake.run = run
    monkeypatch.setitem(sys.modules, "pyiked.daemon.run", fake)
    path = write(tmp_path, GOOD.replace("passive esp", "ipcomp esp"))
    assert cli.main(["-S", "-f", path]) == 0
    assert seen["config"].settings.active is False  # -S
    assert seen["config"].settings.mobike is False  # not built yet: switched off
    assert seen["config"].policies[0].ipcomp is False
    assert any("IPcomp" in w for w in seen["warnings"])


def test_demo_subcommand(monkeypatch):
    import types

    fake = types.ModuleType("pyiked.daemon.demo")
    fake.main = lambda argv: len(argv)
    monkeypatch.setitem(sys.modules, "pyiked.daemon.demo", fake)
    assert cli.main(["demo", "a", "b"]) == 2


def test_etc_example_passes_the_command(capsys):
    assert cli.main(["-n", "-f", str(ROOT / "etc" / "iked.conf")]) == 0


def test_console_entry_point(tmp_path):
    path = write(tmp_path, GOOD)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "pyiked.daemon.cli", "-n", "-f", path],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    assert done.returncode == 0 and "configuration OK" in done.stderr
    bad = write(tmp_path, "ikev2 esp from\n", "bad.conf")
    done = subprocess.run([sys.executable, "-m", "pyiked.daemon.cli", "-n", "-f", bad],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    assert done.returncode == 1
    assert done.stderr == f"{bad}:1:15: expected an address, got end of line\n"
    assert "Traceback" not in done.stderr


def test_a_parser_bug_is_one_line_not_a_traceback(tmp_path, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise KeyError("boom")

    monkeypatch.setattr(cli, "parse_file", broken)
    assert cli.main(["-n", "-f", write(tmp_path, GOOD)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error" in err and "KeyError" in err


DATA_PLANE = """\
ikev2 "host" passive transport esp from 10.231.0.2 to 10.231.0.1 peer 10.231.0.1 psk "k"
ikev2 "ctr" passive esp from 10.231.1.0/24 to 10.231.2.0/24 peer 10.231.0.1 \\
    childsa enc aes-256-ctr auth hmac-sha2-256 psk "k"
"""
MIXED = """\
set nomobike
ikev2 "mixed" passive esp from 10.231.3.0/24 to 10.231.4.0/24 peer 10.231.0.1 \\
    childsa enc aes-256-ctr auth hmac-sha2-256 childsa enc aes-256-gcm psk "k"
"""


def test_check_against_the_data_plane_of_the_backend(tmp_path, capsys):
    # issue 7: a mode or transforms the chosen data plane cannot carry are refused by -n,
    # with the place in the file
    path = write(tmp_path, DATA_PLANE)
    assert cli.main(["-n", "--backend", "userspace", "-f", path]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f'{path}:1:22: rule "host": the userspace data plane has no transport mode',
        f'{path}:2:1: rule "ctr": none of its childsa transforms is carried by the userspace '
        "data plane",
    ]
    assert cli.main(["-n", "--backend", "xfrm", "-f", path]) == 0  # XFRM carries them all
    assert capsys.readouterr().err.endswith("configuration OK\n")


def test_transforms_the_data_plane_lacks_beside_ones_it_has_are_left_out(tmp_path, capsys):
    path = write(tmp_path, MIXED)
    assert cli.main(["-n", "--backend", "userspace", "-f", path]) == 0
    assert capsys.readouterr().err.splitlines() == [
        f'{path}:3:17: warning: rule "mixed": childsa aes-256-ctr is not carried by the '
        "userspace data plane: left out",
        "configuration OK",
    ]


@pytest.mark.parametrize("backend, table, expected", [
    ("userspace", None, {"route_table": 220, "route_priority": 220}),
    ("userspace", "100", {"route_table": 100, "route_priority": 100}),  # beside a strongSwan
    ("memory", "100", {}),
])
def test_route_table_reaches_the_userspace_data_plane(tmp_path, monkeypatch, backend, table, expected):
    from pyiked.daemon import run

    seen = {}

    class Stop(Exception):
        pass

    def fake_daemon(config, **kw):
        seen.update(kw)
        raise Stop

    monkeypatch.setattr(run, "Daemon", fake_daemon)
    argv = ["-f", write(tmp_path, GOOD), "--backend", backend, "--iked-dir", str(tmp_path)]
    if table:
        argv += ["--route-table", table]
    with pytest.raises(Stop):
        cli.main(argv)
    assert seen["backend_options"] == expected


def test_unprivileged_check_does_not_guess_the_data_plane(tmp_path, monkeypatch, capsys):
    # without root the XFRM probe would say "no ESP": -n must not refuse on that guess
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    path = write(tmp_path, DATA_PLANE)
    assert cli.main(["-n", "-f", path]) == 0
    err = capsys.readouterr().err
    assert "not root, so the kernel was not probed" in err and err.endswith("configuration OK\n")
    assert cli.main(["-n", "--backend", "userspace", "-f", path]) == 1  # named: checked
