"""The control socket server (pyiked.daemon.control) in-process: permissions, errors as
JSON over the socket, and the daemon-side effects of commands (couple/decouple on the
kernel backend, log levels, monitor), with two daemons negotiating on loopback."""

import json
import logging
import os
import socket
import stat
import threading
import time

import pytest

from pyiked.ctl import protocol
from pyiked.ctl.client import ControlClient, ControlError
from pyiked.daemon.control import ControlServer, ControlSocketError, bind_control_socket
from tests.helpers import is_root

from .daemon_lab import Lab

# -- the socket file ---------------------------------------------------------------------------

def test_socket_is_0600_and_ours(tmp_path):
    path = str(tmp_path / "iked.sock")
    old = os.umask(0)  # a permissive umask must not leak into the socket's mode
    try:
        sock = bind_control_socket(path)
    finally:
        os.umask(old)
    try:
        st = os.stat(path)
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o600
        assert st.st_uid == os.geteuid()
        if is_root():
            assert (st.st_uid, st.st_gid) == (0, 0)
    finally:
        sock.close()


@pytest.mark.parametrize("kind", ["file", "directory", "symlink", "fifo"])
def test_refuses_a_path_that_is_not_a_socket(tmp_path, kind):
    path = tmp_path / "iked.sock"
    if kind == "file":
        path.write_text("important")
    elif kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    else:  # even a symlink to a socket: never follow it
        target = tmp_path / "real.sock"
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(target))
        s.close()
        path.symlink_to(target)
    with pytest.raises(ControlSocketError, match="exists and is not a socket"):
        bind_control_socket(str(path))
    assert os.path.lexists(path)
    if kind == "file":
        assert path.read_text() == "important"


def test_refuses_a_socket_another_daemon_listens_on(tmp_path):
    path = str(tmp_path / "iked.sock")
    live = socket.socket(socket.AF_UNIX)
    live.bind(path)
    live.listen(1)
    try:
        with pytest.raises(ControlSocketError, match="another daemon is listening"):
            bind_control_socket(path)
    finally:
        live.close()


def test_replaces_a_stale_socket(tmp_path):
    path = str(tmp_path / "iked.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()  # the file stays, nobody listens
    os.chmod(path, 0o666)
    sock = bind_control_socket(path)
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        sock.listen(1)
        with socket.socket(socket.AF_UNIX) as probe:
            probe.connect(path)  # the new socket is the one at the path
    finally:
        sock.close()


# -- two daemons on loopback, each with a control socket -----------------------------------------

@pytest.fixture
def lab(tmp_path):
    lab = Lab(tmp_path)
    lab.wait(lambda: lab.established(lab.responder) and lab.established(lab.initiator))
    yield lab
    lab.close()


def raw_exchange(path, data: bytes, lines: int, half_close=False):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        buf = b""
        while buf.count(b"\n") < lines:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        return [json.loads(x) for x in buf.splitlines()]


def test_errors_come_back_as_json_and_the_connection_stays_usable(lab):
    replies = raw_exchange(lab.r_sock, b'garbage\n{"cmd":"nope","seq":1}\n\n{"cmd":"show sa","seq":2}\n', 3)
    assert replies[0]["ok"] is False and replies[0]["error"]["code"] == "parse_error"
    assert replies[1] == {"ok": False, "seq": 1,
                          "error": {"code": "unknown_command", "message": 'unknown command "nope"'}}
    assert replies[2]["ok"] is True and replies[2]["seq"] == 2
    assert len(replies[2]["result"]["sas"]) == 1


def test_an_overlong_line_is_refused_and_closes(lab):
    replies = raw_exchange(lab.r_sock, b"x" * (protocol.MAX_LINE + 10) + b'\n{"cmd":"show sa"}\n', 2)
    assert replies == [{"ok": False, "error": {"code": "too_long",
                                               "message": f"request longer than {protocol.MAX_LINE} bytes"}}]


def test_a_last_request_without_newline_is_answered(lab):
    (reply,) = raw_exchange(lab.r_sock, b'{"cmd":"show stats"}', 1, half_close=True)
    assert reply["ok"] is True and reply["result"]["ike_sas_established"] == 1


def test_failed_commands_are_json_errors(lab):
    with ControlClient(lab.r_sock) as c:
        with pytest.raises(ControlError) as info:
            c.call("load", file=str(lab.tmp / "missing.conf"))
        assert info.value.code == "failed" and "cannot open" in info.value.message
        with pytest.raises(ControlError) as info:
            c.call("reset", target="id", identity="IPV4/not-an-address")
        assert info.value.code == "failed" and "invalid identity" in info.value.message
        with pytest.raises(ControlError) as info:
            c.call("reset", target="ca")
        assert info.value.code == "failed"
        bad = lab.tmp / "bad.conf"
        bad.write_text("ikev2 frobnicate\n")
        with pytest.raises(ControlError) as info:
            c.call("load", file=str(bad))
        assert info.value.code == "failed" and "bad.conf:1:" in info.value.message
        assert c.call("show stats")["daemon"]["policies"] == 1  # nothing changed


@pytest.mark.skipif(not is_root(), reason="needs root to act as another user")
def test_other_users_are_refused(lab):
    """0600 keeps them out; with the mode opened up, SO_PEERCRED still does."""

    def as_nobody(path):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: drop to nobody, try the socket, report, exit
            try:
                os.setgid(65534)
                os.setuid(65534)
                with socket.socket(socket.AF_UNIX) as s:
                    s.settimeout(5)
                    try:
                        s.connect(path)
                        try:
                            s.sendall(b'{"cmd":"reset","target":"sa"}\n')
                        except BrokenPipeError:  # refused before we spoke: read why
                            pass
                        out = s.recv(4096)
                    except OSError as exc:
                        out = f"OSError {exc.errno}".encode()
                os.write(write_fd, out)
            finally:
                os._exit(0)
        os.close(write_fd)
        os.waitpid(pid, 0)
        with os.fdopen(read_fd, "rb") as f:
            return f.read()

    import errno
    import shutil
    import tempfile

    where = tempfile.mkdtemp(prefix="pkx-ctl-")  # pytest's tmp dirs are closed to others
    os.chmod(where, 0o711)
    path = os.path.join(where, "iked.sock")
    server = ControlServer(lab.responder, path)
    try:
        lab.call(server.start())
        assert as_nobody(path) == f"OSError {errno.EACCES}".encode()
        os.chmod(path, 0o666)
        reply = json.loads(as_nobody(path))
        assert reply["error"]["code"] == "permission_denied"
        assert lab.established(lab.responder) == 1  # the reset was not carried out
    finally:
        lab.on_loop(server.close)
        shutil.rmtree(where)


def test_decouple_takes_sas_out_of_the_kernel_and_couple_renegotiates_them(lab):
    backend = lab.responder.backend
    (old,) = lab.on_loop(lambda: list(backend.sas.values()))
    with ControlClient(lab.r_sock) as c:
        assert c.call("decouple") == {"coupled": False, "child_sas": 0, "deleted": 0}
        assert lab.on_loop(lambda: (dict(backend.sas), backend.coupled)) == ({}, False)
        assert c.call("show stats")["daemon"]["coupled"] is False
        assert lab.established(lab.responder) == 1  # the engine keeps negotiating
        # loading the same SA again would restart its sequence numbers: its IKE SA goes
        assert c.call("couple") == {"coupled": True, "child_sas": 0, "deleted": 1}
    lab.wait(lambda: not lab.established(lab.responder) and not lab.established(lab.initiator))
    assert backend.coupled is True and lab.on_loop(lambda: dict(backend.sas)) == {}
    assert [op for op, _ in backend.log] == ["install", "remove"]  # never installed twice
    with ControlClient(lab.i_sock) as c:
        c.call("active")
    lab.wait(lambda: lab.established(lab.responder))
    (new,) = lab.on_loop(lambda: list(backend.sas.values()))
    assert new.inbound.spi != old.inbound.spi and new.inbound.encr_key != old.inbound.encr_key


def test_couple_renegotiates_as_initiator_of_an_active_policy(lab):
    backend = lab.initiator.backend
    before = lab.on_loop(lambda: lab.initiator.engine.ike_sas()[0].ike_sa_id)
    with ControlClient(lab.i_sock) as c:
        c.call("decouple")
        assert c.call("couple")["deleted"] == 1
    lab.wait(lambda: lab.on_loop(lambda: [sa.ike_sa_id for sa in lab.initiator.engine.ike_sas()
                                          if sa.state.value == "ESTABLISHED" and sa.children])
             not in ([], [before]))
    (child,) = lab.on_loop(lambda: list(backend.sas))
    assert [op for op, _ in backend.log] == ["install", "remove", "install"]
    assert child == lab.on_loop(lambda: next(iter(lab.initiator.engine.ike_sas()[0].children)))


def test_sas_negotiated_while_decoupled_are_loaded_on_couple(lab):
    backend = lab.initiator.backend
    with ControlClient(lab.i_sock) as c:
        c.call("decouple")
        c.call("reset", target="sa")
        lab.wait(lambda: not lab.established(lab.initiator))
        assert c.call("active")["initiated"] == 1
        lab.wait(lambda: lab.established(lab.initiator))
        assert lab.on_loop(lambda: dict(backend.sas)) == {}
        c.call("couple")
    (child,) = lab.on_loop(lambda: list(backend.sas))
    assert child == lab.on_loop(lambda: next(iter(lab.initiator.engine.ike_sas()[0].children)))


def test_log_levels(lab):
    logger = logging.getLogger("pyiked")
    before = logger.level
    try:
        with ControlClient(lab.r_sock) as c:
            assert c.call("log", level="verbose") == {"level": "DEBUG"}
            assert logger.getEffectiveLevel() == logging.DEBUG
            assert c.call("show stats")["daemon"]["log_level"] == "DEBUG"
            brief = c.call("log", level="brief")["level"]
            assert logging.getLevelName(brief) >= logging.INFO
            assert logger.getEffectiveLevel() == logging.getLevelName(brief)
    finally:
        logger.setLevel(before)


def test_monitor_streams_events_without_keys(lab):
    events = []
    ready = threading.Event()

    def watch():
        with ControlClient(lab.r_sock) as c:
            stream = c.monitor()
            ready.set()
            for event in stream:
                events.append(event)
                if event["type"] == "ChildSAInstall":
                    return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    ready.wait(5)
    time.sleep(0.1)  # the monitor is registered once "started" is read
    with ControlClient(lab.i_sock) as c:
        c.call("reset", target="sa")
        lab.wait(lambda: not lab.established(lab.initiator))
        c.call("active")
    watcher.join(10)
    types = [e["type"] for e in events]
    assert "IkeSADown" in types and "ChildSARemove" in types
    assert types.index("IkeSAUp") < types.index("ChildSAInstall")
    install = events[-1]
    assert set(install["inbound"]) == {"spi", "encr_id", "encr_key_bits", "integ_id"}
    text = json.dumps(events)
    assert '"encr_key"' not in text and '"integ_key"' not in text
    keys = lab.on_loop(lambda: lab.responder.backend.sas[install["child_id"]])
    for direction in (keys.inbound, keys.outbound):
        assert direction.encr_key.hex() not in text
    assert install["ts_local"] == ["10.231.2.0/24"] and install["ts_remote"] == ["10.231.1.0/24"]
    up = next(e for e in events if e["type"] == "IkeSAUp")
    assert up["remote_id"] == "initiator.demo.test" and isinstance(up["time"], float)


def test_a_slow_monitor_is_dropped(lab):
    server = lab.controls[0]
    with ControlClient(lab.r_sock) as c:
        c.call("monitor")
        lab.wait(lambda: lab.on_loop(lambda: len(server.monitors)) == 1)

        def flood():
            for _ in range(5000):
                server.publish_data({"type": "Filler", "padding": "x" * 1000})
            return len(server.monitors)
        assert lab.on_loop(flood) == 0  # we never read: it fell behind and was cut off
