"""A blocking client for the control socket (pyikectl and the tests use it).

    with ControlClient("/var/run/iked.sock") as c:
        sas = c.call("show sa")["sas"]
        c.call("reset", target="id", identity="FQDN/peer.example")
        for event in c.monitor():        # blocks; ends when the daemon goes away
            ...
"""

from __future__ import annotations

import json
import socket

from . import protocol


class ControlError(Exception):
    """The daemon refused or failed a request (code as in pyiked.ctl.protocol), or the
    connection failed (code "connection")."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class ControlClient:
    def __init__(self, path: str = protocol.DEFAULT_SOCKET, timeout: float | None = 30.0):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except OSError as exc:
            self.sock.close()
            raise ControlError("connection", f"connect: {path}: {exc.strerror or exc}") from None
        self._buffer = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send_raw(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise ControlError("connection", f"write: {exc.strerror or exc}") from None

    def read_line(self) -> dict | None:
        """The next JSON line from the daemon, or None at end of stream."""
        while b"\n" not in self._buffer:
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                raise ControlError("connection", "timed out waiting for the daemon") from None
            except OSError as exc:
                raise ControlError("connection", f"read: {exc.strerror or exc}") from None
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            obj = json.loads(line)
        except ValueError:
            raise ControlError("connection", "the daemon sent a line that is not JSON") from None
        if not isinstance(obj, dict):
            raise ControlError("connection", "the daemon sent a line that is not an object")
        return obj

    def response(self) -> dict:
        """The result of the next response line; ControlError for an error line."""
        obj = self.read_line()
        if obj is None:
            raise ControlError("connection", "the daemon closed the connection")
        if obj.get("ok") is True:
            result = obj.get("result")
            return result if isinstance(result, dict) else {}
        err = obj.get("error") if isinstance(obj.get("error"), dict) else {}
        raise ControlError(str(err.get("code", "unknown")), str(err.get("message", obj)))

    def call(self, cmd: str, **args) -> dict:
        self.send_raw(protocol.request_line(cmd, **args))
        return self.response()

    def monitor(self):
        """Start monitoring and yield each event (a dict with "type" and "time")."""
        self.call("monitor")
        self.sock.settimeout(None)
        while (obj := self.read_line()) is not None:
            data = obj.get("event")
            if isinstance(data, dict):
                yield data
