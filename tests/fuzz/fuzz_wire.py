"""atheris harness for the wire codec and dispatch: hostile octets may only raise IkeError.

    python tests/fuzz/fuzz_wire.py [CORPUS_DIR] [libFuzzer options, e.g. -max_total_time=3600]

It fuzzes whichever twin pyiked._fast picks (PYIKED_NO_EXTENSIONS=1 for the pure one,
which atheris instruments for coverage). Each input drives wire.decode,
wire.decode_payloads and dispatch.classify; whatever decodes must re-encode and decode
back to an equal message. tests/fuzz/test_fuzz_wire.py runs it for a few seconds.
"""

import sys

import atheris

with atheris.instrument_imports(include=["pyiked"]):
    from pyiked._fast import dispatch, wire
    from pyiked.core.errors import IkeError


def check_decode(data):
    try:
        m = wire.decode(data)
    except IkeError:
        return
    again = wire.decode(wire.encode(m))
    if again != m:
        raise AssertionError(f"re-encoding changed the message: {m!r} -> {again!r}")


def check_chain(data, first):
    try:
        payloads = wire.decode_payloads(data, first)
    except IkeError:
        return
    if wire.decode_payloads(wire.encode_payloads(payloads), first if payloads else 0) != payloads:
        raise AssertionError("re-encoding changed the payload chain")


def test_one_input(data):
    if len(data) < 2:
        return
    check_decode(data)
    check_decode(data[1:])
    check_chain(data[2:], data[0])
    for port in (500, 4500):
        kind, offset = dispatch.classify(data, port)[:2]
        if kind == dispatch.IKE:
            check_decode(data[offset:])


def main():
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
