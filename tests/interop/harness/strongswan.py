"""A strongSwan charon (charon-systemd) in one namespace, controlled over VICI.

Each instance gets its own strongswan.conf (rendered here), VICI socket and filelog in
its work directory. kernel-libipsec is loaded before kernel-netlink: this kernel has no
ESP, so charon does ESP in userspace over a TUN device (ipsec0), which only supports
UDP encapsulation and therefore fakes a NAT (RFC 7296 §2.23 detection payloads with a
wrong hash) in either role. A peer must follow it to port 4500 and do ESP-in-UDP.

Control is the `vici` PyPI package (one short-lived session per call, so a timed-out
request never leaves a half-read stream behind); `swanctl()` runs the CLI for tests
that want its text output (the command option first, then --uri: swanctl rejects --uri
before the command).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .swanctl import Conn, Pool, Secret, merge, render_settings, render_swanctl
from .topology import Topology
from .util import HarnessError, Proc, grep, need_tool, run, short_dir, tail, wait_for

PLUGIN_DIRS = (
    "/usr/lib/ipsec/plugins",
    "/usr/lib/x86_64-linux-gnu/ipsec/plugins",
    "/usr/lib/aarch64-linux-gnu/ipsec/plugins",
    "/usr/local/lib/ipsec/plugins",
)

# Order matters: kernel-libipsec before kernel-netlink (the first kernel IPsec backend
# wins; kernel-netlink still does addresses, routes and interfaces).
WANTED_PLUGINS = (
    "random", "nonce", "openssl", "aes", "sha1", "sha2", "md5", "hmac", "xcbc", "cmac",
    "ctr", "ccm", "gcm", "chapoly", "gmp", "curve25519", "x509", "pem", "pkcs1", "pkcs8",
    "pubkey", "revocation", "constraints", "kdf", "eap-identity", "eap-mschapv2",
    "kernel-libipsec", "kernel-netlink", "socket-default", "vici",
)


def available_plugins() -> set[str] | None:
    """Names of the charon plugins installed, or None when no plugin dir is found."""
    for d in PLUGIN_DIRS:
        if os.path.isdir(d):
            return {m.group(1) for f in os.listdir(d)
                    if (m := re.fullmatch(r"libstrongswan-(.+)\.so", f))}
    return None


def charon_plugins(wanted: Sequence[str] = WANTED_PLUGINS) -> list[str]:
    """`wanted` minus what is not installed (chapoly, say), in the same order."""
    have = available_plugins()
    return [p for p in wanted if have is None or p in have]


# ----------------------------------------------------------------------- VICI data


def _decode(value):
    """VICI message (OrderedDicts of bytes) -> plain dicts/lists of str."""
    if isinstance(value, Mapping):
        return {(k.decode() if isinstance(k, bytes) else k): _decode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_decode(v) for v in value]
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


_DUMP_HEAD = re.compile(r"\[(?:IKE|CHD|ENC|CFG)\] (?:<[^>]*> )?(\S.*?) => (\d+) bytes @ 0x[0-9a-f]+$")
_DUMP_LINE = re.compile(r"\[(?:IKE|CHD|ENC|CFG)\] (?:<[^>]*> )?\s*\d+: ((?:[0-9A-F]{2} )+)")


def logged_secrets(text: str) -> list[tuple[str, bytes]]:
    """(label, bytes) for every hex dump in a charon log, in order: with keylog (level
    4) these are "shared Diffie Hellman secret", "SKEYSEED", "Sk_d secret", "Sk_ei
    secret", ..., "encryption initiator key", "integrity responder key" ..."""
    out: list[tuple[str, bytes]] = []
    label, want, data = None, 0, b""
    for line in text.splitlines():
        m = _DUMP_HEAD.search(line)
        if m:
            label, want, data = m.group(1), int(m.group(2)), b""
            if want == 0:
                out.append((label, b""))
                label = None
            continue
        m = _DUMP_LINE.search(line) if label else None
        if m:
            data += bytes.fromhex(m.group(1))
            if len(data) >= want:
                out.append((label, data[:want]))
                label = None
    return out


@dataclass
class ChildSA:
    """One CHILD_SA from list-sas. SPIs are the hex strings charon prints (8 digits)."""

    name: str
    uniqueid: int
    state: str  # INSTALLED, REKEYING, REKEYED, DELETING, ...
    mode: str  # TUNNEL / TRANSPORT
    protocol: str  # ESP / AH
    encap: bool  # UDP encapsulation (always with kernel-libipsec)
    spi_in: str
    spi_out: str
    encr_alg: str | None
    encr_keysize: int | None
    integ_alg: str | None
    dh_group: str | None
    esn: bool
    bytes_in: int
    bytes_out: int
    packets_in: int
    packets_out: int
    rekey_time: int | None
    life_time: int | None
    install_time: int | None
    local_ts: list[str]
    remote_ts: list[str]
    raw: dict = field(repr=False)

    @classmethod
    def parse(cls, d: dict) -> ChildSA:
        return cls(
            name=d.get("name", ""), uniqueid=_int(d.get("uniqueid")) or 0,
            state=d.get("state", ""), mode=d.get("mode", ""), protocol=d.get("protocol", ""),
            encap=d.get("encap") == "yes", spi_in=d.get("spi-in", ""),
            spi_out=d.get("spi-out", ""), encr_alg=d.get("encr-alg"),
            encr_keysize=_int(d.get("encr-keysize")), integ_alg=d.get("integ-alg"),
            dh_group=d.get("dh-group"), esn=d.get("esn") == "1",
            bytes_in=_int(d.get("bytes-in")) or 0, bytes_out=_int(d.get("bytes-out")) or 0,
            packets_in=_int(d.get("packets-in")) or 0,
            packets_out=_int(d.get("packets-out")) or 0,
            rekey_time=_int(d.get("rekey-time")), life_time=_int(d.get("life-time")),
            install_time=_int(d.get("install-time")),
            local_ts=list(d.get("local-ts", [])), remote_ts=list(d.get("remote-ts", [])),
            raw=d,
        )


@dataclass
class IkeSA:
    """One IKE_SA from list-sas with its CHILD_SAs. spi_i/spi_r are 16 hex digits."""

    name: str
    uniqueid: int
    state: str  # CONNECTING, ESTABLISHED, REKEYING, DELETING, ...
    version: int
    initiator: bool  # this charon initiated the IKE_SA
    local_host: str
    local_port: int
    local_id: str
    remote_host: str
    remote_port: int
    remote_id: str
    spi_i: str
    spi_r: str
    nat_local: bool
    nat_remote: bool
    nat_fake: bool
    encr_alg: str | None
    encr_keysize: int | None
    integ_alg: str | None
    prf_alg: str | None
    dh_group: str | None
    established: int | None
    rekey_time: int | None
    reauth_time: int | None
    remote_eap_id: str | None
    local_vips: list[str]
    remote_vips: list[str]
    children: list[ChildSA]
    raw: dict = field(repr=False)

    @classmethod
    def parse(cls, name: str, d: dict) -> IkeSA:
        kids = d.get("child-sas") or {}
        return cls(
            name=name, uniqueid=_int(d.get("uniqueid")) or 0, state=d.get("state", ""),
            version=_int(d.get("version")) or 0, initiator=d.get("initiator") == "yes",
            local_host=d.get("local-host", ""), local_port=_int(d.get("local-port")) or 0,
            local_id=d.get("local-id", ""), remote_host=d.get("remote-host", ""),
            remote_port=_int(d.get("remote-port")) or 0, remote_id=d.get("remote-id", ""),
            spi_i=d.get("initiator-spi", ""), spi_r=d.get("responder-spi", ""),
            nat_local=d.get("nat-local") == "yes", nat_remote=d.get("nat-remote") == "yes",
            nat_fake=d.get("nat-fake") == "yes", encr_alg=d.get("encr-alg"),
            encr_keysize=_int(d.get("encr-keysize")), integ_alg=d.get("integ-alg"),
            prf_alg=d.get("prf-alg"), dh_group=d.get("dh-group"),
            established=_int(d.get("established")), rekey_time=_int(d.get("rekey-time")),
            reauth_time=_int(d.get("reauth-time")), remote_eap_id=d.get("remote-eap-id"),
            local_vips=list(d.get("local-vips", [])), remote_vips=list(d.get("remote-vips", [])),
            children=[ChildSA.parse(c) for c in kids.values()], raw=d,
        )

    def child(self, name: str | None = None) -> ChildSA | None:
        """The first CHILD_SA (named `name`, if given), or None."""
        for c in self.children:
            if name is None or c.name == name:
                return c
        return None


@dataclass
class CommandResult:
    """Outcome of initiate/terminate: ok, charon's errmsg, and the control-log lines."""

    ok: bool
    errmsg: str
    log: list[str]

    def __bool__(self):
        return self.ok

    @property
    def text(self) -> str:
        return "\n".join(self.log)

    def __str__(self):
        status = "ok" if self.ok else f"FAILED: {self.errmsg}"
        return f"{status}\n{self.text}"


class Events:
    """Records VICI events (ike-updown, child-rekey, log, ...) in a background thread.

    Registration is complete when the constructor returns, so nothing that happens after
    is missed. `wait(type, predicate, timeout)` returns the first matching event (decoded
    dict) recorded so far or later. Close it (or use `with`) to stop the thread.
    """

    def __init__(self, sock_path: str, types: Sequence[str]):
        import vici
        from vici.protocol import Message, Packet

        self._Message, self._Packet = Message, Packet
        self.types = list(types)
        self.events: list[tuple[str, dict]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_UNIX)
        self._sock.settimeout(10)
        self._sock.connect(sock_path)
        self._session = vici.Session(self._sock)
        for t in self.types:
            self._session._register_unregister(t, True)
        self._thread = threading.Thread(target=self._loop, daemon=True, name="vici-events")
        self._thread.start()

    def _loop(self):
        while not self._stop.is_set():
            try:
                raw = self._session.transport.receive(0.2)
            except TimeoutError:
                continue
            except OSError:
                return
            pkt = self._Packet.parse(raw)
            if pkt.response_type == self._Packet.EVENT:
                msg = _decode(self._Message.deserialize(pkt.payload))
                with self._lock:
                    self.events.append((pkt.event_type.decode(), msg))

    def of(self, event_type: str) -> list[dict]:
        with self._lock:
            return [m for t, m in self.events if t == event_type]

    def wait(self, event_type: str, predicate=None, timeout: float = 10.0) -> dict:
        def match():
            for m in self.of(event_type):
                if predicate is None or predicate(m):
                    return m
            return None

        return wait_for(match, timeout, f"VICI event {event_type}")

    def close(self):
        self._stop.set()
        self._thread.join(2)
        self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ----------------------------------------------------------------------- the daemon


class StrongSwan:
    """charon-systemd in `node`'s namespace of `topo`, files under workdir/<name>/.

    Settings: keylog (filelog ike=4 chd=4: SK_* and ESP keys in the log),
    dos_protection (bool: cookies/limits, charon's default is yes), fragment_size (bytes),
    retransmit_* (charon's timers; the defaults fail an exchange after ~12 s), plugins
    (default: `charon_plugins()`), settings (extra charon.* dict merged into the conf),
    log_levels (override filelog levels, e.g. {"net": 2}).
    """

    def __init__(
        self,
        topo: Topology,
        node: str,
        workdir: Path,
        *,
        name: str | None = None,
        keylog: bool = False,
        dos_protection: bool | None = None,
        fragment_size: int | None = None,
        retransmit_tries: int = 2,
        retransmit_timeout: float = 2.0,
        retransmit_base: float | None = None,
        plugins: Sequence[str] | None = None,
        settings: Mapping | None = None,
        log_levels: Mapping | None = None,
    ):
        self.topo = topo
        self.node = topo.node(node)
        self.name = name or f"charon-{self.node}"
        self.dir = Path(workdir) / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.sock_dir = short_dir(self.dir, "charon.vici")
        self.vici_path = str(self.sock_dir / "charon.vici")
        self.conf_path = self.dir / "strongswan.conf"
        self.swanctl_conf_path = self.dir / "swanctl.conf"
        self.log_path = self.dir / "charon.log"
        self.stdout_path = self.dir / "stdout.log"
        self.keylog = keylog
        self.options = {
            "dos_protection": dos_protection, "fragment_size": fragment_size,
            "retransmit_tries": retransmit_tries, "retransmit_timeout": retransmit_timeout,
            "retransmit_base": retransmit_base,
        }
        self.plugins = list(plugins) if plugins is not None else charon_plugins()
        self.settings = dict(settings or {})
        self.log_levels = dict(log_levels or {})
        self.proc: Proc | None = None
        # what was loaded, for the swanctl.conf record (conns by name)
        self.loaded: dict = {"conns": {}, "secrets": [], "pools": []}

    def __repr__(self):
        return f"<StrongSwan {self.name} in {self.topo.ns(self.node)} pid={self.pid}>"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def uri(self) -> str:
        return f"unix://{self.vici_path}"

    # ------------------------------------------------------------------ config
    def render_conf(self) -> str:
        """This instance's strongswan.conf text."""
        levels = {"default": 1, "ike": 2, "cfg": 2, "knl": 2, "esp": 1, "net": 1}
        if self.keylog:
            levels.update(ike=4, chd=4)  # level 4 = "private": keys, SKEYSEED, AUTH data
        levels.update(self.log_levels)
        o = self.options
        charon = {
            "load_modular": False,
            "load": " ".join(self.plugins),
            "port": 500,
            "port_nat_t": 4500,
            "retransmit_tries": o["retransmit_tries"],
            "retransmit_timeout": o["retransmit_timeout"],
            "retransmit_base": o["retransmit_base"],
            "dos_protection": o["dos_protection"],
            "fragment_size": o["fragment_size"],
            "filelog": {"pklog": {
                "path": str(self.log_path), "time_format": "%H:%M:%S", "append": False,
                "flush_line": True, "ike_name": True, **levels,
            }},
            "syslog": {"daemon": {"default": -1}},
            "plugins": {"vici": {"socket": self.uri}},
        }
        merge(charon, self.settings)
        # charon-systemd reads charon.* as a fallback for its own section; only its
        # journal logger lives under charon-systemd.
        tree = {"charon": charon, "charon-systemd": {"journal": {"default": -1}}}
        return (f"# {self.name}: rendered by tests/interop/harness/strongswan.py\n"
                + render_settings(tree) + "\n")

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 10.0) -> StrongSwan:
        """Write strongswan.conf, start charon-systemd, wait for the VICI socket."""
        if self.proc is not None:
            raise HarnessError(f"{self.name} already started")
        self.conf_path.write_text(self.render_conf())
        os.chmod(self.conf_path, 0o600)
        try:
            os.unlink(self.vici_path)
        except FileNotFoundError:
            pass
        env = {**os.environ, "STRONGSWAN_CONF": str(self.conf_path)}
        self.proc = self.topo.popen(self.node, [need_tool("charon-systemd")],
                                    self.stdout_path, env=env, name=self.name)

        def ready():
            if not self.proc.running:
                raise HarnessError(
                    f"{self.name} exited (rc={self.proc.returncode}):\n"
                    f"{tail(self.stdout_path)}\n{tail(self.log_path)}")
            if not os.path.exists(self.vici_path):
                return False
            try:
                with self.session(timeout=2) as s:
                    return s.version()
            except OSError:
                return False

        wait_for(ready, timeout, f"{self.name}'s VICI socket")
        return self

    def stop(self) -> None:
        """SIGTERM (then SIGKILL) by pid; charon deletes its SAs as it goes down."""
        if self.proc is None:
            return
        self.proc.stop(timeout=5)
        self.topo.forget(self.proc)
        if self.sock_dir != self.dir:  # the short /tmp fallback for a long work dir
            shutil.rmtree(self.sock_dir, ignore_errors=True)

    def __enter__(self):
        return self.start() if self.proc is None else self

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------------ logs
    def log(self) -> str:
        """charon's filelog so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def grep_log(self, pattern: str) -> list[str]:
        return grep(self.log_path, pattern)

    def logged_keys(self, label: str | None = None) -> list[bytes]:
        """Key material charon logged (needs keylog=True), oldest first; with `label`
        (e.g. "Sk_ei secret", "encryption initiator key") only those dumps."""
        return [data for lbl, data in logged_secrets(self.log()) if label in (None, lbl)]

    def wait_for_log(self, pattern: str, timeout: float = 10.0) -> re.Match:
        rx = re.compile(pattern, re.MULTILINE)
        return wait_for(lambda: rx.search(self.log()), timeout,
                        f"{self.name} to log {pattern!r}")

    # ------------------------------------------------------------------ VICI
    @contextmanager
    def session(self, timeout: float = 10.0):
        """A fresh vici.Session on this charon's socket (closed afterwards)."""
        import vici

        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(timeout)
        try:
            sock.connect(self.vici_path)
            yield vici.Session(sock)
        finally:
            sock.close()

    def request(self, command: str, message: dict | None = None, timeout: float = 10.0) -> dict:
        """One plain VICI request; the decoded response (raises on success=no)."""
        with self.session(timeout) as s:
            return _decode(s.request(command, message))

    def _streamed(self, command: str, event: str, message: dict, timeout: float) -> CommandResult:
        from vici.exception import CommandException

        log = []
        ok, errmsg = True, ""
        with self.session(timeout) as s:
            try:
                for msg in s.streamed_request(command, event, message):
                    m = _decode(msg)
                    if "msg" in m:
                        log.append(f"[{m.get('group', '')}] {m['msg']}")
            except CommandException as e:
                ok, errmsg = False, str(e).removeprefix("Command failed: ")
        return CommandResult(ok, errmsg, log)

    def load(self, conns: Sequence[Conn] = (), secrets: Sequence[Secret] = (),
             pools: Sequence[Pool] = (), keys: Sequence = (), certs: Sequence = (),
             cacerts: Sequence = (), crls: Sequence = (), via: str = "vici") -> None:
        """Load credentials and connections (a conn replaces one of the same name).

        keys: private key files; certs/cacerts: certificate files (end-entity / CA);
        crls: CRL files. via="vici" loads over VICI; via="swanctl" renders everything
        loaded so far to swanctl.conf and runs `swanctl --load-all` on it (swanctl
        then unloads conns it loaded before that are no longer in the file). Either way
        the rendered swanctl.conf, with the keys copied to private/ beside it, stays in
        the work dir: the record of what charon has, loadable with swanctl again.
        """
        if via not in ("vici", "swanctl"):
            raise ValueError("via must be 'vici' or 'swanctl'")
        first_secret = len(self.loaded["secrets"]) + 1
        for c in conns:
            self.loaded["conns"][c.name] = c
        self.loaded["secrets"] += list(secrets)
        self.loaded["pools"] += list(pools)
        for k in keys:  # where swanctl --load-all looks for them
            private = self.dir / "private"
            private.mkdir(mode=0o700, exist_ok=True)
            shutil.copyfile(k, private / Path(k).name)
            os.chmod(private / Path(k).name, 0o600)
        self._write_swanctl_conf()
        for c in cacerts:
            self.load_cert(c, ca=True)
        for c in certs:
            self.load_cert(c)
        for c in crls:
            self.load_crl(c)
        if via == "swanctl":
            cp = self.swanctl("--load-all", "--noprompt", "--file", self.swanctl_conf_path)
            # swanctl also scans x509/, private/, ... next to the file: those don't exist
            out = [line for line in (cp.stdout + cp.stderr).splitlines()
                   if not line.startswith("opening directory")]
            if any("fail" in line or "error" in line for line in out):
                raise HarnessError("swanctl --load-all:\n" + "\n".join(out))
            return
        for k in keys:
            self.load_key(k)
        for i, secret in enumerate(secrets, first_secret):
            self.request("load-shared", secret.vici(i))  # id = its swanctl.conf name
        for p in pools:
            self.request("load-pool", p.vici())
        for c in conns:
            self.request("load-conn", c.vici())

    def _write_swanctl_conf(self) -> None:
        text = render_swanctl(list(self.loaded["conns"].values()), self.loaded["secrets"],
                              self.loaded["pools"])
        self.swanctl_conf_path.write_text(text)
        os.chmod(self.swanctl_conf_path, 0o600)

    def load_key(self, path) -> None:
        self.request("load-key", {"type": "any", "data": Path(path).read_bytes()})

    def load_cert(self, path, ca: bool = False) -> None:
        self.request("load-cert", {"type": "X509", "flag": "CA" if ca else "NONE",
                                   "data": Path(path).read_bytes()})

    def load_crl(self, path, flush_cache: bool = True) -> None:
        """Load a CRL. charon's revocation check takes the first valid CRL it finds, and
        its certificate cache (searched first) still holds the previous one it used: so
        flush that cache, or a newer CRL is ignored until the old one expires."""
        self.request("load-cert", {"type": "X509_CRL", "flag": "NONE",
                                   "data": Path(path).read_bytes()})
        if flush_cache:
            self.request("flush-certs", {"type": "X509_CRL"})

    def unload_conn(self, name: str) -> None:
        self.request("unload-conn", {"name": name})
        self.loaded["conns"].pop(name, None)
        self._write_swanctl_conf()

    def initiate(self, child: str | None = None, ike: str | None = None,
                 timeout: float = 15.0, loglevel: int = 1) -> CommandResult:
        """Initiate `child` (of conn `ike`); waits until it is up or failed.

        Returns ok and charon's log lines (e.g. "selected proposal: ..."); a failure is
        a result, not an exception, so tests can assert on the log.
        """
        msg = {"timeout": str(int(timeout * 1000)), "loglevel": str(loglevel)}
        if child:
            msg["child"] = child
        if ike:
            msg["ike"] = ike
        return self._streamed("initiate", "control-log", msg, timeout + 5)

    def terminate(self, ike: str | None = None, child: str | None = None,
                  ike_id: int | None = None, child_id: int | None = None,
                  force: bool = False, timeout: float = 10.0) -> CommandResult:
        """Delete an IKE_SA (with its children) or one CHILD_SA; waits for the exchange."""
        msg = {"timeout": str(int(timeout * 1000)), "loglevel": "1"}
        for k, v in (("ike", ike), ("child", child), ("ike-id", ike_id), ("child-id", child_id)):
            if v is not None:
                msg[k] = str(v)
        if force:
            msg["force"] = "yes"
        return self._streamed("terminate", "control-log", msg, timeout + 5)

    def rekey(self, ike: str | None = None, child: str | None = None,
              ike_id: int | None = None, child_id: int | None = None,
              reauth: bool = False) -> int:
        """Start rekeying (or reauth) an IKE_SA/CHILD_SA; returns how many matched.

        charon returns at once: wait for the result with `wait_sa`/`events`.
        """
        msg = {}
        for k, v in (("ike", ike), ("child", child), ("ike-id", ike_id), ("child-id", child_id)):
            if v is not None:
                msg[k] = str(v)
        if reauth:
            msg["reauth"] = "yes"
        return _int(self.request("rekey", msg).get("matches")) or 0

    def list_sas(self, ike: str | None = None, ike_id: int | None = None,
                 noblock: bool = False) -> list[IkeSA]:
        """Current IKE_SAs (with CHILD_SAs), parsed; `raw` keeps charon's full dict."""
        msg = {}
        if ike:
            msg["ike"] = ike
        if ike_id is not None:
            msg["ike-id"] = str(ike_id)
        if noblock:
            msg["noblock"] = "yes"
        out = []
        with self.session() as s:
            for event in s.list_sas(msg or None):
                for name, d in _decode(event).items():
                    out.append(IkeSA.parse(name, d))
        return out

    def list_conns(self) -> dict:
        with self.session() as s:
            out = {}
            for event in s.list_conns():
                out.update(_decode(event))
            return out

    def stats(self) -> dict:
        return self.request("stats")

    def wait_sa(self, ike: str | None = None, child: str | None = None,
                state: str = "ESTABLISHED", child_state: str = "INSTALLED",
                timeout: float = 10.0, predicate=None) -> IkeSA:
        """Wait for an IKE_SA in `state` (with a CHILD_SA `child` in child_state, if
        named) for which predicate(sa) holds, if given; returns that IkeSA."""

        def find():
            for sa in self.list_sas(ike):
                if sa.state != state:
                    continue
                if child is not None and not any(
                        c.name == child and c.state == child_state for c in sa.children):
                    continue
                if predicate is None or predicate(sa):
                    return sa
            return None

        return wait_for(find, timeout, f"{self.name}: IKE_SA {ike or '*'} {state}"
                        + (f" with {child} {child_state}" if child else ""))

    def wait_no_sa(self, ike: str | None = None, timeout: float = 10.0) -> None:
        wait_for(lambda: not self.list_sas(ike), timeout, f"{self.name}: no IKE_SA {ike or ''}")

    def events(self, *types: str) -> Events:
        """Record VICI events, e.g. events("ike-updown", "child-updown", "child-rekey")."""
        return Events(self.vici_path, types)

    # ------------------------------------------------------------------ CLI
    def swanctl(self, *args, check: bool = True, timeout: float = 30.0):
        """Run `swanctl <args...> --uri <ours>`; CompletedProcess with text output."""
        env = {**os.environ, "STRONGSWAN_CONF": str(self.conf_path)}
        return run([need_tool("swanctl"), *args, "--uri", self.uri], check=check,
                   timeout=timeout, env=env)
