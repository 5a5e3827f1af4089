"""The control socket's protocol: JSON lines over a Unix stream socket.

A client sends one request object per line (UTF-8, at most MAX_LINE bytes with the
newline) and reads one response line per request, in order, on the same connection:

    {"cmd": "show sa"}                       -> {"ok": true, "result": {"sas": [...]}}
    {"cmd": "load", "file": "/etc/x.conf"}   -> {"ok": true, "result": {...}}
    {"cmd": "reset", "target": "id", "identity": "FQDN/peer.example"}
    {"cmd": "nope"}                          -> {"ok": false, "error": {"code":
                                                 "unknown_command", "message": "..."}}

`seq` (an integer or a short string) may be added to any request and is echoed in its
response. `monitor` answers once ({"ok": true, "result": {"monitor": "started"}}) and
then streams {"event": {"type": "IkeSAUp", "time": ..., ...}} lines until the client
closes the connection; nothing else is read on a monitoring connection.

Requests are validated strictly: unknown commands, unknown or missing arguments and
wrong types are refused with an error line, and the connection stays usable. Only a line
over MAX_LINE closes it (after an error line), since the rest of it cannot be framed.
This module is shared by the daemon and pyikectl and imports nothing else of pyiked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

MAX_LINE = 64 * 1024
MAX_TEXT = 4096  # longest string argument (a path, an identity)
DEFAULT_SOCKET = "/var/run/iked.sock"

# error codes
PARSE_ERROR = "parse_error"  # not UTF-8 JSON
INVALID_REQUEST = "invalid_request"  # JSON, but not a valid request
UNKNOWN_COMMAND = "unknown_command"
TOO_LONG = "too_long"
PERMISSION_DENIED = "permission_denied"
FAILED = "failed"  # a valid request the daemon could not carry out (e.g. a config error)
INTERNAL_ERROR = "internal_error"

RESET_TARGETS = ("sa", "policy", "user", "all", "ca", "id")
LOG_LEVELS = ("brief", "verbose")


@dataclass(frozen=True)
class Arg:
    choices: tuple[str, ...] = ()
    required: bool = True


# command -> its arguments (all strings); ikectl(8)'s commands
COMMANDS: dict[str, dict[str, Arg]] = {
    "show sa": {},
    "show stats": {},
    "reload": {},
    "load": {"file": Arg()},
    "reset": {"target": Arg(RESET_TARGETS), "identity": Arg(required=False)},
    "log": {"level": Arg(LOG_LEVELS)},
    "monitor": {},
    "active": {},
    "passive": {},
    "couple": {},
    "decouple": {},
}


class ProtocolError(Exception):
    """A request the daemon refuses, with its error code (sent as a JSON error line)."""

    def __init__(self, code: str, message: str, seq=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.seq = seq


@dataclass(frozen=True)
class Request:
    cmd: str
    args: dict = field(default_factory=dict)
    seq: int | str | None = None


def _seq(obj):
    seq = obj.get("seq")
    if seq is None or (isinstance(seq, int) and not isinstance(seq, bool)
                       and -(2**63) <= seq < 2**63):
        return seq
    if isinstance(seq, str) and len(seq) <= 64:
        return seq
    raise ProtocolError(INVALID_REQUEST, "seq must be an integer or a string of up to 64 characters")


def parse_request(line: bytes) -> Request:
    """One request line -> Request, or ProtocolError (never any other exception)."""
    if len(line) > MAX_LINE:
        raise ProtocolError(TOO_LONG, f"request longer than {MAX_LINE} bytes")
    try:
        obj = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError(PARSE_ERROR, f"not a JSON line: {_short(exc)}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(INVALID_REQUEST, "a request is a JSON object")
    seq = _seq(obj)
    cmd = obj.get("cmd")
    if not isinstance(cmd, str):
        raise ProtocolError(INVALID_REQUEST, 'missing "cmd" (a string)', seq)
    spec = COMMANDS.get(cmd)
    if spec is None:
        raise ProtocolError(UNKNOWN_COMMAND, f"unknown command {_quote(cmd)}", seq)
    args = {}
    for name, value in obj.items():
        if name in ("cmd", "seq"):
            continue
        arg = spec.get(name)
        if arg is None:
            raise ProtocolError(INVALID_REQUEST, f"{cmd}: unexpected argument {_quote(name)}", seq)
        if not isinstance(value, str) or not value or len(value) > MAX_TEXT or "\0" in value:
            raise ProtocolError(INVALID_REQUEST,
                                f"{cmd}: {name} must be a non-empty string of up to {MAX_TEXT} "
                                "characters", seq)
        if arg.choices and value not in arg.choices:
            raise ProtocolError(INVALID_REQUEST,
                                f"{cmd}: {name} must be one of {', '.join(arg.choices)}", seq)
        args[name] = value
    for name, arg in spec.items():
        if arg.required and name not in args:
            raise ProtocolError(INVALID_REQUEST, f"{cmd}: missing argument {_quote(name)}", seq)
    if cmd == "reset" and (args["target"] == "id") != ("identity" in args):
        raise ProtocolError(INVALID_REQUEST, 'reset: "identity" goes with target "id", and only there',
                            seq)
    return Request(cmd, args, seq)


def _short(exc) -> str:
    return str(exc)[:200] if not isinstance(exc, RecursionError) else "nested too deeply"


def _quote(text: str) -> str:
    return json.dumps(text[:64])


# -- lines ---------------------------------------------------------------------------------

def encode(obj) -> bytes:
    """One JSON line (compact; JSON escapes keep any newline out of the payload)."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode() + b"\n"


def request_line(cmd: str, seq=None, **args) -> bytes:
    obj = {"cmd": cmd, **args}
    if seq is not None:
        obj["seq"] = seq
    return encode(obj)


def ok(result, seq=None) -> bytes:
    obj = {"ok": True, "result": result}
    if seq is not None:
        obj["seq"] = seq
    return encode(obj)


def error(code: str, message: str, seq=None) -> bytes:
    obj = {"ok": False, "error": {"code": code, "message": message}}
    if seq is not None:
        obj["seq"] = seq
    return encode(obj)


def event(data: dict) -> bytes:
    return encode({"event": data})
