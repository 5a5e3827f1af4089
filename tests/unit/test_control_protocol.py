"""The control protocol (pyiked.ctl.protocol) and pyikectl's command parser: request
parsing, errors as JSON, and hostile lines (only ProtocolError ever comes out)."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyiked.ctl import protocol
from pyiked.ctl.cli import UsageError, parse_command
from pyiked.ctl.protocol import ProtocolError, parse_request


def line(obj) -> bytes:
    return json.dumps(obj).encode() + b"\n"


@pytest.mark.parametrize("obj,cmd,args", [
    ({"cmd": "show sa"}, "show sa", {}),
    ({"cmd": "show stats"}, "show stats", {}),
    ({"cmd": "reload"}, "reload", {}),
    ({"cmd": "load", "file": "/etc/iked.conf"}, "load", {"file": "/etc/iked.conf"}),
    ({"cmd": "reset", "target": "sa"}, "reset", {"target": "sa"}),
    ({"cmd": "reset", "target": "policy"}, "reset", {"target": "policy"}),
    ({"cmd": "reset", "target": "user"}, "reset", {"target": "user"}),
    ({"cmd": "reset", "target": "all"}, "reset", {"target": "all"}),
    ({"cmd": "reset", "target": "id", "identity": "FQDN/a.example"}, "reset",
     {"target": "id", "identity": "FQDN/a.example"}),
    ({"cmd": "log", "level": "verbose"}, "log", {"level": "verbose"}),
    ({"cmd": "log", "level": "brief"}, "log", {"level": "brief"}),
    ({"cmd": "monitor"}, "monitor", {}),
    ({"cmd": "active"}, "active", {}),
    ({"cmd": "passive"}, "passive", {}),
    ({"cmd": "couple"}, "couple", {}),
    ({"cmd": "decouple"}, "decouple", {}),
])
def test_every_command_parses(obj, cmd, args):
    request = parse_request(line(obj))
    assert (request.cmd, request.args, request.seq) == (cmd, args, None)


def test_every_command_in_the_table_is_tested():
    assert set(protocol.COMMANDS) == {"show sa", "show stats", "reload", "load", "reset", "log",
                                      "monitor", "active", "passive", "couple", "decouple"}


@pytest.mark.parametrize("seq", [0, 7, -1, "abc", "x" * 64])
def test_seq_is_kept(seq):
    assert parse_request(line({"cmd": "reload", "seq": seq})).seq == seq


def test_a_line_without_newline_or_with_crlf_parses():
    assert parse_request(b'{"cmd":"reload"}').cmd == "reload"
    assert parse_request(b'{"cmd":"reload"}\r\n').cmd == "reload"


@pytest.mark.parametrize("raw,code,fragment", [
    (b"not json\n", protocol.PARSE_ERROR, "not a JSON line"),
    (b"\xff\xfe{}\n", protocol.PARSE_ERROR, "not a JSON line"),
    (b'{"cmd": "reload"\n', protocol.PARSE_ERROR, "not a JSON line"),
    (b"[1, 2]\n", protocol.INVALID_REQUEST, "JSON object"),
    (b'"show sa"\n', protocol.INVALID_REQUEST, "JSON object"),
    (b"{}\n", protocol.INVALID_REQUEST, 'missing "cmd"'),
    (b'{"cmd": 5}\n', protocol.INVALID_REQUEST, 'missing "cmd"'),
    (b'{"cmd": "show"}\n', protocol.UNKNOWN_COMMAND, 'unknown command "show"'),
    (b'{"cmd": "show sa", "json": true}\n', protocol.INVALID_REQUEST, 'unexpected argument "json"'),
    (b'{"cmd": "load"}\n', protocol.INVALID_REQUEST, 'missing argument "file"'),
    (b'{"cmd": "load", "file": ""}\n', protocol.INVALID_REQUEST, "non-empty string"),
    (b'{"cmd": "load", "file": 3}\n', protocol.INVALID_REQUEST, "non-empty string"),
    (b'{"cmd": "load", "file": "a\\u0000b"}\n', protocol.INVALID_REQUEST, "non-empty string"),
    (b'{"cmd": "log", "level": "loud"}\n', protocol.INVALID_REQUEST, "one of brief, verbose"),
    (b'{"cmd": "reset", "target": "everything"}\n', protocol.INVALID_REQUEST, "one of sa"),
    (b'{"cmd": "reset", "target": "id"}\n', protocol.INVALID_REQUEST, '"identity" goes with'),
    (b'{"cmd": "reset", "target": "sa", "identity": "x"}\n', protocol.INVALID_REQUEST,
     '"identity" goes with'),
    (b'{"cmd": "reload", "seq": 1.5}\n', protocol.INVALID_REQUEST, "seq must be"),
    (b'{"cmd": "reload", "seq": true}\n', protocol.INVALID_REQUEST, "seq must be"),
    (b'{"cmd": "reload", "seq": 99999999999999999999}\n', protocol.INVALID_REQUEST, "seq must be"),
    (b'{"cmd": "reload", "seq": [1]}\n', protocol.INVALID_REQUEST, "seq must be"),
    (b"[" * 100000 + b"]" * 100000, protocol.TOO_LONG, "longer than"),
    (b"[" * 30000 + b"]" * 30000, protocol.PARSE_ERROR, "not a JSON line"),
    (b'{"cmd": "reload", "seq": 1' + b"0" * 5000 + b"}", protocol.PARSE_ERROR, "not a JSON line"),
])
def test_bad_requests_give_the_right_error(raw, code, fragment):
    with pytest.raises(ProtocolError) as info:
        parse_request(raw)
    assert info.value.code == code
    assert fragment in info.value.message


def test_errors_after_the_seq_is_known_carry_it():
    with pytest.raises(ProtocolError) as info:
        parse_request(line({"cmd": "nope", "seq": 42}))
    assert info.value.seq == 42
    reply = json.loads(protocol.error(info.value.code, info.value.message, info.value.seq))
    assert reply == {"ok": False, "seq": 42,
                     "error": {"code": "unknown_command", "message": 'unknown command "nope"'}}


def test_an_unknown_command_is_quoted_and_shortened():
    with pytest.raises(ProtocolError) as info:
        parse_request(line({"cmd": "x\n" * 500}))
    assert "\n" not in info.value.message and len(info.value.message) < 200


def test_response_lines():
    assert protocol.ok({"a": 1}, 3) == b'{"ok":true,"result":{"a":1},"seq":3}\n'
    assert protocol.ok({}) == b'{"ok":true,"result":{}}\n'
    assert protocol.event({"type": "IkeSAUp"}) == b'{"event":{"type":"IkeSAUp"}}\n'
    assert protocol.request_line("load", file="/x", seq=1) == b'{"cmd":"load","file":"/x","seq":1}\n'


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise_anything_but_protocol_error(raw):
    try:
        request = parse_request(raw)
    except ProtocolError as exc:
        assert exc.code in (protocol.PARSE_ERROR, protocol.INVALID_REQUEST,
                            protocol.UNKNOWN_COMMAND)
        return
    assert request.cmd in protocol.COMMANDS


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children,
                                                                      max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["cmd", "seq", "file", "target", "identity", "level", "x"]),
                       _json | st.sampled_from(sorted(protocol.COMMANDS) + ["sa", "id", "verbose"]),
                       max_size=5))
def test_arbitrary_objects_are_requests_or_protocol_errors(obj):
    try:
        request = parse_request(line(obj))
    except ProtocolError as exc:
        assert exc.code in (protocol.INVALID_REQUEST, protocol.UNKNOWN_COMMAND)
        json.loads(protocol.error(exc.code, exc.message, exc.seq))  # always encodable
        return
    spec = protocol.COMMANDS[request.cmd]
    assert set(request.args) <= set(spec)
    assert all(isinstance(v, str) and v for v in request.args.values())


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_encoded_lines_hold_exactly_one_newline(text):
    data = protocol.ok({"value": text, "k" + text: [text]})
    assert data.count(b"\n") == 1 and data.endswith(b"\n")
    assert json.loads(data)["result"] == {"value": text, "k" + text: [text]}


# -- pyikectl's words -> request --------------------------------------------------------------

@pytest.mark.parametrize("words,cmd,args", [
    (["show", "sa"], "show sa", {}),
    (["sh", "sa"], "show sa", {}),
    (["show", "stats"], "show stats", {}),
    (["show", "st"], "show stats", {}),
    (["reload"], "reload", {}),
    (["load", "/etc/other.conf"], "load", {"file": "/etc/other.conf"}),
    (["reset", "sa"], "reset", {"target": "sa"}),
    (["reset", "p"], "reset", {"target": "policy"}),
    (["reset", "all"], "reset", {"target": "all"}),
    (["reset", "id", "FQDN/peer.example"], "reset", {"target": "id", "identity": "FQDN/peer.example"}),
    (["log", "verbose"], "log", {"level": "verbose"}),
    (["log", "b"], "log", {"level": "brief"}),
    (["mon"], "monitor", {}),
    (["act"], "active", {}),
    (["pass"], "passive", {}),
    (["coup"], "couple", {}),
    (["dec"], "decouple", {}),
])
def test_pyikectl_commands(words, cmd, args):
    assert parse_command(words) == (cmd, args)
    parse_request(protocol.request_line(cmd, **args))  # what pyikectl sends is valid


@pytest.mark.parametrize("words,fragment", [
    ([], "missing command"),
    (["show"], "incomplete"),
    (["l"], "ambiguous command 'l' (expected: load, log)"),
    (["re"], "ambiguous command 're' (expected: reload, reset)"),
    (["reset", "id"], "expected an argument"),
    (["load"], "expected an argument"),
    (["log", "verbose", "now"], "unexpected argument"),
    (["frobnicate"], "unknown command"),
    (["show", ""], "unknown keyword"),
])
def test_pyikectl_usage_errors(words, fragment):
    with pytest.raises(UsageError) as info:
        parse_command(words)
    assert fragment in str(info.value)
