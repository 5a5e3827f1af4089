"""The `pyiked` command line, iked(8)'s flags plus pyiked's own.

    pyiked [-dnSTtVv6] [-D macro=value] [-f file] [-p udpencap_port] [-s socket]
           [--backend xfrm|userspace|memory] [--route-table N] [--metrics ADDR]
    pyiked demo [ARGS...]

-n checks the configuration and exits 0 (valid) or 1 (errors), like `iked -n`, including
what the data plane of --backend (auto: as at start, by probing this kernel) cannot carry;
with -v it also prints the configuration in canonical form on stdout. Otherwise the daemon runs
(pyiked.daemon.run.run). `pyiked demo ARGS` hands ARGS to pyiked.daemon.demo.main.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import sys

from pyiked.config.errors import ConfigError
from pyiked.config.loader import parse_file
from pyiked.config.printer import format_config
from pyiked.kernel import KernelError, backend_class

DEFAULT_CONFIG = "/etc/iked.conf"
DEFAULT_SOCKET = "/var/run/iked.sock"
DEFAULT_IKED_DIR = "/etc/iked"  # OpenIKED's IKED_CONFIG_DIR


def _define(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"could not parse macro definition {text!r}")
    return name, value


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} outside 1..65535")
    return port


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pyiked",
        description="IKEv2 daemon (RFC 7296) modelled on OpenIKED. "
        "`pyiked demo ...` runs the demo instead.",
    )
    p.add_argument("-6", dest="no_ipv6", action="store_true",
                   help="do not use IPv6 sockets")
    p.add_argument("-d", dest="foreground", action="store_true",
                   help="do not daemonize; log to stderr")
    p.add_argument("-D", dest="defines", action="append", type=_define, default=[],
                   metavar="macro=value", help="define a macro (overrides the file)")
    p.add_argument("-f", dest="file", default=DEFAULT_CONFIG, metavar="file",
                   help=f"configuration file (default {DEFAULT_CONFIG})")
    p.add_argument("-n", dest="check_only", action="store_true",
                   help="check the configuration and exit")
    p.add_argument("-p", dest="udpencap_port", type=_port, default=None,
                   metavar="udpencap_port", help="NAT-T port (default 4500)")
    p.add_argument("-S", dest="start_passive", action="store_true",
                   help="start in passive mode (set passive)")
    p.add_argument("-s", dest="socket", default=DEFAULT_SOCKET, metavar="socket",
                   help=f"control socket (default {DEFAULT_SOCKET})")
    natt = p.add_mutually_exclusive_group()
    natt.add_argument("-T", dest="natt_disable", action="store_true",
                      help="disable NAT-Traversal")
    natt.add_argument("-t", dest="natt_enforce", action="store_true",
                      help="enforce NAT-Traversal (always encapsulate in UDP)")
    p.add_argument("-V", dest="version", action="store_true", help="print the version")
    p.add_argument("-v", dest="verbose", action="count", default=0,
                   help="more verbose (repeatable)")
    p.add_argument("--backend", choices=("auto", "xfrm", "userspace", "memory"), default="auto",
                   help="how SAs reach the data plane: kernel XFRM, userspace ESP over TUN, "
                   "or memory (no data plane); auto picks xfrm when the kernel has ESP, "
                   "else userspace (default auto)")
    p.add_argument("--iked-dir", dest="iked_dir", default=DEFAULT_IKED_DIR, metavar="DIR",
                   help="certificates and keys: DIR/ca, DIR/certs, DIR/private/local.key, "
                   f"DIR/crls (default {DEFAULT_IKED_DIR})")
    p.add_argument("--route-table", dest="route_table", type=int, default=220, metavar="N",
                   help="userspace data plane: the routing table (and rule priority) of the "
                   "tunnel routes; strongSwan's charon also uses 220 (default 220)")
    p.add_argument("--metrics", metavar="ADDR", default=None,
                   help="serve Prometheus metrics on ADDR (host:port)")
    return p


def _print_warnings(warnings) -> None:
    for warning in warnings:
        print(warning, file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "demo":
        try:
            demo = importlib.import_module("pyiked.daemon.demo")
        except ModuleNotFoundError as exc:
            if exc.name != "pyiked.daemon.demo":
                raise
            print("pyiked: the demo is not part of this build", file=sys.stderr)
            return 1
        return demo.main(argv[1:]) or 0
    args = build_parser().parse_args(argv)
    if args.version:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"pyiked {version('pyiked')}")
        except PackageNotFoundError:
            print("pyiked (not installed)")
        return 0
    args.defines = dict(args.defines)
    data_plane = None
    if args.check_only and args.backend == "auto" and os.geteuid() != 0:
        # only root may probe XFRM: an unprivileged answer would be "no ESP" here
        print("pyiked: not root, so the kernel was not probed and the rules were not checked "
              "against its data plane (give --backend to check)", file=sys.stderr)
    else:
        try:
            data_plane = backend_class(args.backend)  # "auto" probes this kernel, as at start
        except (KernelError, ImportError) as exc:
            print(f"pyiked: kernel backend {args.backend}: {exc}", file=sys.stderr)
            return 1
    try:
        result = parse_file(args.file, args.defines)
        config, warnings = result.check(data_plane)
    except ConfigError as exc:
        print(exc.describe(), file=sys.stderr)
        if not args.check_only:
            print(f"pyiked: {args.file}: configuration invalid", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug in the parser: still one line, never a traceback
        print(f"{args.file}: internal error while reading the configuration "
              f"({type(exc).__name__}: {exc}); please report it", file=sys.stderr)
        return 1
    if args.start_passive:
        config = dataclasses.replace(
            config, settings=dataclasses.replace(config.settings, active=False)
        )
    if args.check_only:
        _print_warnings(warnings)
        if args.verbose:
            try:
                sys.stdout.write(format_config(result.config))
            except ValueError as exc:  # a string iked.conf quoting cannot express
                print(f"pyiked: cannot print the configuration: {exc}", file=sys.stderr)
                return 1
        print("configuration OK", file=sys.stderr)
        return 0
    _print_warnings(warnings)
    try:
        run = importlib.import_module("pyiked.daemon.run")
    except ModuleNotFoundError as exc:
        if exc.name != "pyiked.daemon.run":
            raise
        print("pyiked: the daemon (pyiked.daemon.run) is not part of this build",
              file=sys.stderr)
        return 1
    return run.run(args, config, warnings) or 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
