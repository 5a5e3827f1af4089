"""The control socket: how pyikectl reaches the daemon (iked's /var/run/iked.sock).

A Unix stream socket, mode 0600 and owned by root (the daemon's user), speaking the JSON
lines of pyiked.ctl.protocol. Startup refuses a path that exists and is not a socket
(a file, a directory or a symlink is never replaced) and a socket another daemon still
listens on; a stale socket is removed. Each connection's peer credentials (SO_PEERCRED)
must be root's or the daemon's own user's, on top of the file permissions.

Commands run on the event loop between datagrams, so they see and change a consistent
engine; each one ends with a pump so the Deletes and initiations it caused go out at once.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import stat
import struct
import time

from pyiked.config.errors import ConfigError
from pyiked.config.identity import parse_identity
from pyiked.ctl import protocol
from pyiked.ctl.protocol import ProtocolError
from pyiked.core.certs import CertStoreError

from . import status

log = logging.getLogger("pyiked.control")

MONITOR_BUFFER_LIMIT = 1 << 20  # a monitor that falls this far behind is disconnected
_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class ControlSocketError(Exception):
    """The control socket cannot be set up (the message says why)."""


class CommandFailed(Exception):
    """A valid request the daemon cannot carry out; its message goes to the client."""


def bind_control_socket(path: str) -> socket.socket:
    """A listening-ready Unix socket at path, 0600, owned by root when we are root."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise ControlSocketError(f"{path}: {exc.strerror}") from None
    if st is not None:
        if not stat.S_ISSOCK(st.st_mode):
            raise ControlSocketError(f"{path} exists and is not a socket; not replacing it")
        _remove_stale(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # never visible with wider permissions, not even briefly
    try:
        sock.bind(path)
    except OSError as exc:
        sock.close()
        raise ControlSocketError(f"{path}: {exc.strerror or exc}") from None
    finally:
        os.umask(old_umask)
    try:
        os.chmod(path, 0o600)
        st = os.stat(path)
        if os.geteuid() == 0 and (st.st_uid, st.st_gid) != (0, 0):
            os.chown(path, 0, 0)  # only when needed: CAP_CHOWN is not in the unit's set
    except OSError as exc:
        sock.close()
        raise ControlSocketError(f"{path}: {exc.strerror}") from None
    sock.setblocking(False)
    return sock


def _remove_stale(path: str) -> None:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except ConnectionRefusedError:  # nobody listens: a leftover of a daemon that died
        os.unlink(path)
        return
    except OSError as exc:
        raise ControlSocketError(f"{path}: {exc.strerror or exc}") from None
    finally:
        probe.close()
    raise ControlSocketError(f"{path}: another daemon is listening on it")


def peer_uid(sock: socket.socket) -> int | None:
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    except OSError:
        return None
    return _UCRED.unpack(raw)[1]


# -- identities for `reset id` ---------------------------------------------------------------

_IKECTL_TYPES = {name: t for t, name in status.ID_TYPE_NAMES.items()}


def parse_reset_id(text: str):
    """An Identity from `TYPE/value` (as `show sa` prints it: FQDN/gw.example, IPV4/192.0.2.1,
    UFQDN/a@b, ASN1_DN/C=.., KEY_ID/hex) or from iked.conf srcid/dstid syntax."""
    kind, sep, value = text.partition("/")
    if sep and kind.upper() in _IKECTL_TYPES and value:
        prefix = {"FQDN": "fqdn:", "UFQDN": "ufqdn:", "IPV4": "ipv4:", "IPV6": "ipv6:",
                  "ASN1_DN": "asn1dn:", "KEY_ID": "keyid:#"}.get(kind.upper())
        if prefix is None:
            raise CommandFailed(f"reset id: {kind} identities are not supported")
        text = prefix + value
    try:
        return parse_identity(text)
    except ValueError as exc:
        raise CommandFailed(f"reset id: invalid identity: {exc}") from None


# -- the server ------------------------------------------------------------------------------

class ControlServer:
    def __init__(self, daemon, path: str):
        self.daemon = daemon
        self.path = path
        self.allowed_uids = {0, os.geteuid()}
        self.monitors: set = set()
        self._server = None
        self._inode = None
        self._handlers = {
            "show sa": self._show_sa,
            "show stats": self._show_stats,
            "reload": self._reload,
            "load": self._load,
            "reset": self._reset,
            "log": self._log,
            "active": lambda args: daemon.set_active(True),
            "passive": lambda args: daemon.set_active(False),
            "couple": lambda args: daemon.set_coupled(True),
            "decouple": lambda args: daemon.set_coupled(False),
        }

    async def start(self) -> None:
        sock = bind_control_socket(self.path)
        self._inode = os.stat(self.path).st_ino
        self._server = await asyncio.start_unix_server(self._connection, sock=sock,
                                                       limit=protocol.MAX_LINE)
        self.daemon.listeners.append(self.publish)
        log.info("control socket %s", self.path)

    def close(self) -> None:
        if self.publish in self.daemon.listeners:
            self.daemon.listeners.remove(self.publish)
        for writer in list(self.monitors):
            writer.close()
        self.monitors.clear()
        if self._server is not None:
            self._server.close()
            self._server = None
            try:  # remove our socket, not one a successor may have put there
                if os.stat(self.path).st_ino == self._inode:
                    os.unlink(self.path)
            except OSError:
                pass

    # -- connections -------------------------------------------------------------------------

    async def _connection(self, reader, writer) -> None:
        try:
            uid = peer_uid(writer.get_extra_info("socket"))
            if uid not in self.allowed_uids:
                log.warning("control connection from uid %s refused", uid)
                writer.write(protocol.error(protocol.PERMISSION_DENIED,
                                            "the control socket is for root only"))
                await writer.drain()
                return
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except OSError as exc:
            if exc.errno not in (errno.EPIPE, errno.ECONNRESET):
                log.warning("control connection: %s", exc)
        finally:
            self.monitors.discard(writer)
            writer.close()

    async def _serve(self, reader, writer) -> None:
        while True:
            try:
                line = await reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:
                if not exc.partial.strip():
                    return
                line = exc.partial  # the last request may lack its newline
            except asyncio.LimitOverrunError:
                writer.write(protocol.error(protocol.TOO_LONG,
                                            f"request longer than {protocol.MAX_LINE} bytes"))
                await writer.drain()
                return
            if not line.strip():
                continue
            try:
                request = protocol.parse_request(line)
            except ProtocolError as exc:
                writer.write(protocol.error(exc.code, exc.message, exc.seq))
                await writer.drain()
                continue
            if request.cmd == "monitor":
                await self._monitor(request, reader, writer)
                return
            writer.write(self.execute(request))
            await writer.drain()
            if line[-1:] != b"\n":
                return

    async def _monitor(self, request, reader, writer) -> None:
        writer.write(protocol.ok({"monitor": "started"}, request.seq))
        await writer.drain()
        self.monitors.add(writer)
        while await reader.read(4096):  # monitoring: input is ignored until the client leaves
            pass

    # -- commands ----------------------------------------------------------------------------

    def execute(self, request) -> bytes:
        """Run one parsed request and return its response line (never raises)."""
        handler = self._handlers[request.cmd]
        try:
            result = handler(request.args)
        except CommandFailed as exc:
            return protocol.error(protocol.FAILED, str(exc), request.seq)
        except Exception:
            log.exception("control command %r failed", request.cmd)
            return protocol.error(protocol.INTERNAL_ERROR, f"{request.cmd}: internal error "
                                  "(see the daemon's log)", request.seq)
        if not request.cmd.startswith("show "):
            log.info("control: %s %s", request.cmd, " ".join(request.args.values()))
            self.publish_data({"type": "Command", "command": request.cmd, **request.args,
                               "result": result})
        return protocol.ok(result, request.seq)

    def _show_sa(self, args) -> dict:
        return {"sas": self.daemon.sa_snapshot()}

    def _show_stats(self, args) -> dict:
        return {**status.stats(self.daemon.engine),
                "daemon": {**self.daemon.status(), "monitors": len(self.monitors)}}

    def _reload(self, args) -> dict:
        return self._load_file(None)

    def _load(self, args) -> dict:
        return self._load_file(args["file"])

    def _load_file(self, path) -> dict:
        try:
            return self.daemon.reload_file(path)
        except ConfigError as exc:
            raise CommandFailed(exc.describe()) from None
        except ValueError as exc:  # no configuration file known
            raise CommandFailed(str(exc)) from None

    def _reset(self, args) -> dict:
        target = args["target"]
        if target == "id":
            return {"deleted": self.daemon.reset_id(parse_reset_id(args["identity"]))}
        if target == "ca":
            try:
                return self.daemon.reset_ca()
            except (ValueError, CertStoreError) as exc:
                raise CommandFailed(f"reset ca: {exc}") from None
        return self.daemon.reset(target)

    def _log(self, args) -> dict:
        return {"level": self.daemon.set_log_verbose(args["level"] == "verbose")}

    # -- monitor -----------------------------------------------------------------------------

    def publish(self, event) -> None:
        """Daemon listener: hand an engine event to every monitoring client."""
        if self.monitors:
            self.publish_data(status.event(event))

    def publish_data(self, data: dict) -> None:
        if not self.monitors:
            return
        line = protocol.event({**data, "time": round(time.time(), 3)})
        for writer in list(self.monitors):
            if writer.is_closing():
                self.monitors.discard(writer)
                continue
            if writer.transport.get_write_buffer_size() > MONITOR_BUFFER_LIMIT:
                log.warning("monitor client too slow, disconnected")
                self.monitors.discard(writer)
                writer.transport.abort()
                continue
            writer.write(line)
