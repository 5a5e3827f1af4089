"""Run the pyiked daemon (or a stand-in) in a namespace.

    python -m pyiked.daemon.cli -d -vv -f <workdir>/iked.conf -s <sock> [args...]

runs from the repository root with the repository on PYTHONPATH, so the tree under test
is what runs (no install needed). PYIKED_NO_EXTENSIONS passes through from the test's
environment (the interop suite runs compiled and pure, like every other test) unless
`no_extensions` says otherwise. stdout and stderr go to <workdir>/<name>.log.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import sys
from pathlib import Path

from .topology import Topology
from .util import HarnessError, Proc, grep, run, short_dir

REPO_ROOT = Path(__file__).resolve().parents[3]
DAEMON_MODULE = "pyiked.daemon.cli"
CTL_MODULE = "pyiked.ctl.cli"
STAND_IN_MODULE = "tests.interop.stand_in_daemon"


def module_available(module: str = DAEMON_MODULE) -> bool:
    """True when `module` can be imported from the repository (the daemon exists yet)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


class Pyiked:
    """One daemon process in `node`'s namespace; conf is the iked.conf text.

    args are extra command-line arguments; env adds/overrides environment variables;
    no_extensions None passes PYIKED_NO_EXTENSIONS through, True sets it, False unsets it.
    `module` runs something else with the same command line (the self-tests use the
    stand-in daemon).
    """

    def __init__(self, topo: Topology, node: str, workdir: Path, conf: str, *,
                 name: str = "pyiked", args=(), env=None, no_extensions: bool | None = None,
                 module: str = DAEMON_MODULE, verbosity: str = "-vv",
                 python: str = sys.executable):
        self.topo = topo
        self.node = topo.node(node)
        self.name = name
        self.dir = Path(workdir) / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf_path = self.dir / "iked.conf"
        self.log_path = self.dir / f"{name}.log"
        self.sock_dir = short_dir(self.dir, "pyiked.sock")
        self.sock_path = str(self.sock_dir / "pyiked.sock")
        self.module = module
        self.args = [str(a) for a in args]
        self.verbosity = verbosity
        self.python = python
        self.extra_env = dict(env or {})
        self.no_extensions = no_extensions
        self.proc: Proc | None = None
        self.write_conf(conf)

    def __repr__(self):
        return f"<Pyiked {self.name} ({self.module}) in {self.topo.ns(self.node)} pid={self.pid}>"

    # ------------------------------------------------------------------ setup
    def write_conf(self, conf: str) -> Path:
        """(Re)write iked.conf (0600: it holds PSKs); a running daemon reloads on `reload()`."""
        self.conf = conf
        self.conf_path.write_text(conf if conf.endswith("\n") else conf + "\n")
        os.chmod(self.conf_path, 0o600)
        return self.conf_path

    def argv(self) -> list[str]:
        argv = [self.python, "-m", self.module, "-d"]
        if self.verbosity:
            argv.append(self.verbosity)
        return argv + ["-f", str(self.conf_path), "-s", self.sock_path, *self.args]

    def env(self) -> dict:
        env = dict(os.environ)
        path = env.get("PYTHONPATH")
        env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + path if path else "")
        env["PYTHONUNBUFFERED"] = "1"
        if self.no_extensions is True:
            env["PYIKED_NO_EXTENSIONS"] = "1"
        elif self.no_extensions is False:
            env.pop("PYIKED_NO_EXTENSIONS", None)
        env.update(self.extra_env)
        return env

    # ------------------------------------------------------------------ lifecycle
    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.running

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode if self.proc else None

    def start(self, wait_port: int | None = 500, timeout: float = 15.0) -> Pyiked:
        """Start the process; with wait_port, wait until that UDP port is bound in the
        namespace (the daemon is ready to receive IKE), failing early if it exits."""
        if self.proc is not None:
            raise HarnessError(f"{self.name} already started")
        self.proc = self.topo.popen(self.node, self.argv(), self.log_path, env=self.env(),
                                    cwd=REPO_ROOT, name=self.name)
        if wait_port is not None:
            self.topo.wait_udp_listening(self.node, wait_port, timeout, proc=self.proc)
        return self

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM by pid (its process group), SIGKILL after `timeout`; the exit code."""
        if self.proc is None:
            return None
        rc = self.proc.stop(timeout=timeout)
        self.topo.forget(self.proc)
        if self.sock_dir != self.dir:  # the short /tmp fallback for a long work dir
            shutil.rmtree(self.sock_dir, ignore_errors=True)
        return rc

    def send_signal(self, sig: int) -> None:
        if self.proc is None:
            raise HarnessError(f"{self.name} not started")
        self.proc.send_signal(sig)

    def reload(self, conf: str | None = None) -> None:
        """Optionally rewrite iked.conf, then SIGHUP (OpenIKED's reload signal)."""
        if conf is not None:
            self.write_conf(conf)
        self.send_signal(signal.SIGHUP)

    def __enter__(self):
        return self.start() if self.proc is None else self

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------------ output
    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def grep_log(self, pattern: str) -> list[str]:
        return grep(self.log_path, pattern)

    def wait_for_log(self, pattern: str, timeout: float = 10.0):
        """Wait for a log line matching the regex; fails early if the daemon exits."""
        if self.proc is None:
            raise HarnessError(f"{self.name} not started")
        return self.proc.wait_for_log(pattern, timeout)

    def ctl(self, *args, check: bool = False, timeout: float = 15.0, module: str = CTL_MODULE):
        """`python -m pyiked.ctl.cli -s <sock> args...` (the control socket is a file, so
        it runs in the root namespace); CompletedProcess with text output."""
        return run([self.python, "-m", module, "-s", self.sock_path, *args], check=check,
                   timeout=timeout, env=self.env(), cwd=REPO_ROOT)
