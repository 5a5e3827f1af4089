"""pyikectl: control a running pyiked, as ikectl(8) controls iked.

    pyikectl [-q] [-s socket] [--json] command [arg ...]

    show sa | show stats            IKE and CHILD SAs / counters (--json: the raw data)
    reload | load FILE              read the configuration file again / another file
    reset sa|policy|user|all        delete every SA / flush the policies / the users / all
    reset id ID                     delete the IKE SAs of that peer identity
    log brief|verbose               logging level of the daemon
    monitor                         stream events until interrupted
    active | passive                global mode: initiate active policies / never initiate
    couple | decouple               load negotiated SAs into the kernel / keep them out

Keywords may be abbreviated to any unique prefix (`sh sa`), as ikectl allows. The exit
status is 0 on success and 1 when the daemon refused or failed the request.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import protocol, show
from .client import ControlClient, ControlError

ARG = object()  # a free-form word (a file, an identity)

# keyword tree: a leaf is (command, argument name or None, fixed arguments)
GRAMMAR = {
    "show": {"sa": ("show sa", None, {}), "stats": ("show stats", None, {})},
    "reload": ("reload", None, {}),
    "load": {ARG: ("load", "file", {})},
    "reset": {
        **{t: ("reset", None, {"target": t}) for t in ("sa", "policy", "user", "all", "ca")},
        "id": {ARG: ("reset", "identity", {"target": "id"})},
    },
    "log": {level: ("log", None, {"level": level}) for level in protocol.LOG_LEVELS},
    "monitor": ("monitor", None, {}),
    "active": ("active", None, {}),
    "passive": ("passive", None, {}),
    "couple": ("couple", None, {}),
    "decouple": ("decouple", None, {}),
}


class UsageError(Exception):
    pass


def parse_command(words: list[str]) -> tuple[str, dict]:
    """Command words -> (protocol command, arguments). UsageError names what is wrong."""
    node, args, consumed = GRAMMAR, {}, []
    arg_value = None
    for word in words:
        if isinstance(node, tuple):
            raise UsageError(f"unexpected argument {word!r} after {' '.join(consumed)!r}")
        if ARG in node:
            arg_value = word
            node = node[ARG]
        else:
            matches = [k for k in node if k.startswith(word)] if word else []
            if word in node:
                matches = [word]
            if len(matches) != 1:
                expected = ", ".join(matches or [k for k in node if k is not ARG])
                what = "ambiguous" if matches else "unknown"
                raise UsageError(f"{what} {'keyword' if consumed else 'command'} {word!r}"
                                 f" (expected: {expected})")
            node = node[matches[0]]
        consumed.append(word)
    if not isinstance(node, tuple):
        if not consumed:
            raise UsageError("missing command")
        expected = "an argument" if ARG in node else ", ".join(node)
        raise UsageError(f"{' '.join(consumed)}: incomplete (expected {expected})")
    command, arg_name, fixed = node
    args.update(fixed)
    if arg_name is not None:
        args[arg_name] = arg_value
    return command, args


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pyikectl", description="Control a running pyiked (ikectl(8) commands).",
        usage="%(prog)s [-q] [-s socket] [--json] command [arg ...]",
        epilog=__doc__.split("\n\n")[2], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-q", dest="quiet", action="store_true",
                   help="show stats: leave out counters that are zero")
    p.add_argument("-s", dest="socket", default=protocol.DEFAULT_SOCKET, metavar="socket",
                   help=f"control socket (default {protocol.DEFAULT_SOCKET})")
    p.add_argument("--json", action="store_true", help="print the daemon's answer as JSON")
    p.add_argument("words", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return p


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def render(command: str, args: dict, result: dict, quiet: bool) -> str | None:
    """Text for a successful command (None: print nothing)."""
    if command == "show sa":
        return show.format_sas(result.get("sas", []))
    if command == "show stats":
        return show.format_stats(result, quiet)
    if command in ("reload", "load"):
        return (f"configuration {result.get('file')} loaded: "
                f"{_count(result.get('policies', 0), 'policy', 'policies')}, "
                f"{_count(result.get('deleted', 0), 'IKE SA')} deleted, "
                f"{result.get('initiated', 0)} initiated")
    if command == "reset":
        return f"reset done: {_count(result.get('deleted', 0), 'IKE SA')} deleted"
    if command == "log":
        return f"logging level {result.get('level')}"
    if command in ("active", "passive"):
        return f"mode {result.get('mode')}, {result.get('initiated', 0)} initiated"
    if command in ("couple", "decouple"):
        text = f"kernel {'coupled' if result.get('coupled') else 'decoupled'}"
        if result.get("deleted"):
            text += f", {_count(result['deleted'], 'IKE SA')} renegotiated"
        return text
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    opts = parser.parse_args(sys.argv[1:] if argv is None else argv)
    words = list(opts.words)
    if "--json" in words:  # allowed after the command too: `pyikectl show sa --json`
        words = [w for w in words if w != "--json"]
        opts.json = True
    if "-q" in words:
        words = [w for w in words if w != "-q"]
        opts.quiet = True
    try:
        command, args = parse_command(words)
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"pyikectl: {exc}", file=sys.stderr)
        return 1
    try:
        with ControlClient(opts.socket, timeout=None if command == "monitor" else 60.0) as client:
            if command == "monitor":
                return _monitor(client, opts.json)
            result = client.call(command, **args)
    except ControlError as exc:
        print(f"pyikectl: {exc.message}", file=sys.stderr)
        return 1
    if opts.json:
        print(json.dumps(result, indent=2))
    else:
        text = render(command, args, result, opts.quiet)
        if text:
            print(text)
        for warning in result.get("warnings", []) if isinstance(result, dict) else []:
            print(warning, file=sys.stderr)
    return 0


def _monitor(client: ControlClient, as_json: bool) -> int:
    try:
        for event in client.monitor():
            print(json.dumps(event, separators=(",", ":")) if as_json else show.format_event(event),
                  flush=True)
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:  # `pyikectl monitor | head`
        return 0
    print("pyikectl: the daemon closed the connection", file=sys.stderr)
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
