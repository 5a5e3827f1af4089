"""Polling, process and environment helpers shared by the harness modules.

Every process the harness starts runs in its own session (process group), so it can be
stopped together with its children (tshark's dumpcap, say) by that one id: SIGTERM to the
group, then SIGKILL if it does not exit in time. Nothing is ever stopped by name.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

# Debian's strongSwan layout; the harness also looks the tools up on PATH.
TOOLS = {
    "charon-systemd": ("/usr/sbin/charon-systemd",),
    "swanctl": ("/usr/sbin/swanctl",),
    "ip": ("/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"),
    "tshark": ("/usr/bin/tshark",),
    "pki": ("/usr/bin/pki",),
    "ping": ("/usr/bin/ping", "/bin/ping"),
    "ss": ("/usr/bin/ss", "/bin/ss", "/usr/sbin/ss"),
}

# The tools every interop test needs; tshark/pki are checked by the fixtures using them.
REQUIRED_TOOLS = ("charon-systemd", "swanctl", "ip", "ping", "ss")

# Longest path a sockaddr_un holds (108 bytes with the terminating NUL).
UNIX_PATH_MAX = 107


class HarnessError(RuntimeError):
    """The harness could not set something up or a helper process misbehaved."""


class WaitTimeout(HarnessError, TimeoutError):
    """`wait_for` ran out of time; the message says what was awaited."""


def tool(name: str) -> str | None:
    """Absolute path of a tool the harness runs, or None when it is not installed."""
    for candidate in TOOLS.get(name, ()):
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which(name)


def need_tool(name: str) -> str:
    path = tool(name)
    if path is None:
        raise HarnessError(f"{name} is not installed (scripts/install-debian-deps.sh)")
    return path


def missing_requirements(tools=REQUIRED_TOOLS) -> list[str]:
    """Why the interop tests cannot run here: [] when root and every tool is present."""
    reasons = []
    if os.geteuid() != 0:
        reasons.append("not root (network namespaces need CAP_SYS_ADMIN)")
    absent = [t for t in tools if tool(t) is None]
    if absent:
        reasons.append("missing " + ", ".join(absent) + " (run scripts/test.sh as root)")
    try:
        import vici  # noqa: F401
    except ImportError:
        reasons.append("the 'vici' Python package is missing (pip install .[test])")
    return reasons


def wait_for(predicate, timeout: float = 10.0, what: str | None = None, interval: float = 0.02):
    """Poll `predicate()` until it returns something truthy and return that value.

    Starts polling every `interval` seconds and backs off to 0.2 s. Raises WaitTimeout
    (naming `what`, or the predicate) once `timeout` seconds have passed; the predicate is
    always tried one last time at the deadline.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        now = time.monotonic()
        if now >= deadline:
            desc = what or getattr(predicate, "__name__", repr(predicate))
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {desc}")
        time.sleep(min(interval, deadline - now))
        interval = min(interval * 1.5, 0.2)


def short_dir(base: Path, socket_name: str) -> Path:
    """Where to put UNIX socket `socket_name`: `base` when the path fits in a sockaddr_un
    (107 bytes), else a fresh mkdtemp directory under /tmp that the caller removes.
    pytest's tmp dirs fit; a long TMPDIR may not."""
    base = Path(base)
    if len(str(base / socket_name)) <= UNIX_PATH_MAX:
        base.mkdir(parents=True, exist_ok=True)
        return base
    return Path(tempfile.mkdtemp(prefix="pyk-sock-", dir="/tmp"))


def tail(path: Path | str, lines: int = 40) -> str:
    """The last lines of a log file, for error messages ('' if missing)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def grep(path: Path | str, pattern: str) -> list[str]:
    """Lines of a text file matching a regular expression (search, not match)."""
    rx = re.compile(pattern)
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if rx.search(line)]


class Proc:
    """One process the harness started, in its own process group, output to a log file.

    `argv` is the full command (usually beginning with `ip netns exec NS`, which execs the
    program: the pid is the program's own). stdout and stderr both go to `log_path`.
    """

    def __init__(self, argv, log_path: Path, env=None, cwd=None, name=None):
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self.name = name or Path(self.argv[0]).name
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed by stop())
        try:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,  # own process group: stop() reaches its children
            )
        except BaseException:
            self._log.close()
            raise
        self.pid = self.popen.pid

    def __repr__(self):
        return f"<Proc {self.name} pid={self.pid} rc={self.popen.returncode}>"

    def _peek(self) -> tuple[bool, int | None]:
        """(exited, exit code) without reaping: an unreaped leader keeps its pid, which is
        our process group id, reserved, so a later killpg can never reach a reused id."""
        if self.popen.returncode is not None:
            return True, self.popen.returncode
        try:
            r = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True, self.popen.poll()
        if r is None:
            return False, None
        return True, (r.si_status if r.si_code == os.CLD_EXITED else -r.si_status)

    @property
    def running(self) -> bool:
        return not self._peek()[0]

    @property
    def returncode(self) -> int | None:
        return self._peek()[1]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, pattern: str, timeout: float = 10.0) -> re.Match:
        """Wait until the log has a line matching `pattern`; fail early if the process died."""
        rx = re.compile(pattern, re.MULTILINE)

        def found():
            m = rx.search(self.log())
            if m is None and not self.running:
                m = rx.search(self.log())  # it may have written the line as it exited
                if m is None:
                    raise HarnessError(
                        f"{self.name} exited (rc={self.returncode}) before logging "
                        f"{pattern!r}; log tail:\n{tail(self.log_path)}"
                    )
            return m

        try:
            return wait_for(found, timeout, f"{self.name} to log {pattern!r}")
        except WaitTimeout as e:
            raise WaitTimeout(f"{e}; log tail:\n{tail(self.log_path)}") from None

    def send_signal(self, sig: int) -> None:
        """Send a signal to the process group this process leads (our own group only)."""
        if self.popen.returncode is not None:
            return  # reaped: the group id may already belong to someone else
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass

    def _wait_exit(self, timeout: float) -> bool:
        try:
            wait_for(lambda: not self.running, timeout, f"{self.name} to exit")
            return True
        except WaitTimeout:
            return False

    def stop(self, timeout: float = 5.0, sig: int = signal.SIGTERM) -> int | None:
        """`sig` (SIGTERM) to the group, SIGKILL after `timeout` s; returns the exit code.

        Children still in the group after the leader exited (while the leader is an
        unreaped zombie, so the id is still ours) get SIGKILL; then the leader is reaped.
        """
        if self.popen.returncode is None:
            if self.running:
                self.send_signal(sig)
                if not self._wait_exit(timeout):
                    self.send_signal(signal.SIGKILL)
                    self._wait_exit(5.0)
            self.send_signal(signal.SIGKILL)  # leftovers of the group
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if not self._log.closed:
            self._log.close()
        return self.popen.returncode


def run(argv, check: bool = True, timeout: float = 30.0, **kw) -> subprocess.CompletedProcess:
    """subprocess.run with output captured (text unless text=False); raises HarnessError
    with the output when check is set and the command fails."""
    argv = [str(a) for a in argv]
    kw.setdefault("text", True)
    try:
        cp = subprocess.run(argv, check=False, capture_output=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired as e:
        raise HarnessError(f"{' '.join(argv)} timed out after {timeout}s") from e
    if check and cp.returncode != 0:
        raise HarnessError(
            f"{' '.join(argv)} failed (rc={cp.returncode}):\n{cp.stdout!s}{cp.stderr!s}"
        )
    return cp
