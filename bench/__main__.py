"""Run the bench suite: `python -m bench [--quick] [name ...]`.

Each bench is a module bench/<name>.py with `run(quick: bool) -> str` that prints nothing,
returns its table and writes bench/results/<name>.json. The suite prints every table.
"""

import argparse
import importlib
import sys
import time

SUITE = ("parse", "prf", "crypto_floor", "esp", "tunnel", "handshake", "memory", "flood", "control",
         "roadwarrior")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="finish in under a minute")
    parser.add_argument("names", nargs="*", help=f"benches to run (default: all of {', '.join(SUITE)})")
    args = parser.parse_args(argv)
    failed = []
    for name in args.names or SUITE:
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"bench.{name}" and not args.names:
                continue  # not written yet
            raise
        start = time.perf_counter()
        try:
            print(module.run(quick=args.quick))
        except Exception as exc:  # one broken bench must not hide the others' figures
            failed.append(name)
            print(f"[{name}] FAILED: {exc!r}")
        print(f"[{name}: {time.perf_counter() - start:.1f} s]\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
