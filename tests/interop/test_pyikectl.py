"""Every pyikectl command end to end: two pyiked daemons (initiator a, responder b) in
network namespaces of their own, PSK, memory kernel backend, controlled through their
control sockets by the real pyikectl command line. The responder runs with only the
capabilities etc/pyiked.service leaves it (setpriv), and serves /metrics."""

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import is_root
from tests.unit.test_systemd_unit import unit_capabilities

from .pyiked_pair import CONF_B, REPO, Pair, env

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not is_root() or shutil.which("ip") is None,
                       reason="needs root and iproute2 (network namespaces)"),
]

CAP_NUMBERS = {"CAP_NET_BIND_SERVICE": 10, "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13}
UNIT_CAPS = sorted(unit_capabilities())  # etc/pyiked.service's CapabilityBoundingSet
SETPRIV = ["setpriv", "--bounding-set",
           ",".join(["-all"] + ["+" + c.lower().removeprefix("cap_") for c in UNIT_CAPS]),
           "--no-new-privs"]
METRICS = "127.0.0.1:9171"


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    wrapper = SETPRIV if shutil.which("setpriv") else []
    p = Pair(tmp_path_factory.mktemp("pkx"), b_extra=["--metrics", METRICS], b_wrapper=wrapper)
    try:
        p.start()
        p.wait(p.both_up, what="first IKE SA")
        yield p
    finally:
        p.close()


def test_ready_after_the_control_socket_and_socket_is_root_only(pair):
    assert pair.a.ready_socket_existed and pair.b.ready_socket_existed
    if shutil.which("setpriv"):  # b runs with the unit's capability bounding set only
        text = Path(f"/proc/{pair.b.proc.pid}/status").read_text()
        status = dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)
        assert int(status["CapBnd"], 16) == sum(1 << CAP_NUMBERS[c] for c in UNIT_CAPS)
        assert status["NoNewPrivs"].strip() == "1"
    for daemon in (pair.a, pair.b):
        st = os.stat(daemon.sock)
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
        assert (st.st_uid, st.st_gid) == (0, 0)


def test_show_sa_text_and_json(pair):
    pair.ensure_up()
    (sa_a,), (sa_b,) = pair.a.sas(), pair.b.sas()
    assert (sa_a["spi_i"], sa_a["spi_r"]) == (sa_b["spi_i"], sa_b["spi_r"])
    assert sa_a["initiator"] is True and sa_b["initiator"] is False
    assert sa_b["remote_id_type"] == "FQDN/a.pkx.test" and sa_b["local_id"] == "b.pkx.test"
    assert sa_b["remote"] == "10.231.0.1:500" and sa_b["policy"] == "to-a"
    assert sa_b["algorithms"] == {"encr": "AES_GCM_16_256", "prf": "PRF_HMAC_SHA2_256",
                                  "ke": "CURVE_25519"}
    (child_a,), (child_b,) = sa_a["children"], sa_b["children"]
    assert (child_a["spi_in"], child_a["spi_out"]) == (child_b["spi_out"], child_b["spi_in"])
    assert child_b["ts_local"] == ["10.231.2.0/24"] and child_b["ts_remote"] == ["10.231.1.0/24"]
    assert child_b["lifetime"]["hard_seconds"] == 10800 and 0 < child_b["expires_in"] <= 10800
    assert child_b["algorithms"]["encr"] == "AES_GCM_16_256"
    assert child_b["bytes_in"] is None  # the memory backend counts no bytes

    text = pair.b.ctl("show", "sa").stdout
    lines = text.splitlines()
    assert lines[0] == (f"iked_sas: rspi 0x{sa_b['spi_r']} ispi 0x{sa_b['spi_i']} "
                        '10.231.0.2:500->10.231.0.1:500<FQDN/a.pkx.test>[] ESTABLISHED r pol "to-a"')
    assert f"sa_childsas: #{child_b['child_id']} ESP 0x{child_b['spi_out']} out 10.231.0.2 -> 10.231.0.1" in text
    assert f"ESP 0x{child_b['spi_in']} in 10.231.0.1 -> 10.231.0.2" in text
    assert "sa_flows: ESP out 10.231.2.0/24 -> 10.231.1.0/24" in text
    assert "local <FQDN/b.pkx.test>" in text and "AES_GCM_16_256" in text


def test_show_stats_text_and_json(pair):
    pair.ensure_up()
    stats = pair.b.ctl_json("show", "stats")
    assert stats["ike_sas_established"] == 1 and stats["child_sas"] == 1
    assert stats["counters"]["handshakes_completed"] >= 1
    assert stats["daemon"]["backend"] == "memory" and stats["daemon"]["policies"] == 1
    text = pair.b.ctl("show", "stats").stdout
    assert text.startswith("ike:\n") and "\t1 IKE SA currently established" in text
    quiet = pair.b.ctl("-q", "show", "stats").stdout
    assert "0 " not in quiet.split("daemon:")[0]


def test_reset_id_removes_the_sa_on_both_and_monitor_sees_it_come_back(pair):
    pair.ensure_up()
    monitor = subprocess.Popen([sys.executable, "-m", "pyiked.ctl.cli", "-s", pair.a.sock,
                                "monitor", "--json"], stdout=subprocess.PIPE, text=True, env=env(),
                               cwd=REPO)
    text_monitor = subprocess.Popen([sys.executable, "-m", "pyiked.ctl.cli", "-s", pair.b.sock,
                                     "monitor"], stdout=subprocess.PIPE, text=True, env=env(),
                                    cwd=REPO)
    try:
        pair.wait(lambda: (pair.a.ctl_json("show", "stats")["daemon"]["monitors"],
                           pair.b.ctl_json("show", "stats")["daemon"]["monitors"]) == (1, 1),
                  what="both monitors connected")
        out = pair.b.ctl("reset", "id", "FQDN/a.pkx.test").stdout
        assert out.strip() == "reset done: 1 IKE SA deleted"
        pair.wait(pair.none, what="SA gone on both daemons")
        pair.a.ctl("active")
        pair.wait(pair.both_up, what="SA up again")
        events = []
        while not any(e["type"] == "ChildSAInstall" for e in events):
            events.append(json.loads(monitor.stdout.readline()))
        types = [e["type"] for e in events]
        assert "IkeSADown" in types and "ChildSARemove" in types
        up = next(e for e in events if e["type"] == "IkeSAUp")
        assert up["remote_id"] == "b.pkx.test" and up["policy"] == "to-b" and up["initiator"]
        assert types.index("IkeSADown") < types.index("IkeSAUp")
        assert '"encr_key"' not in json.dumps(events)
        line = ""
        while " IkeSAUp " not in line:
            line = text_monitor.stdout.readline()
        assert "remote_id=a.pkx.test" in line and "policy=to-a" in line
    finally:
        for proc in (monitor, text_monitor):
            proc.send_signal(signal.SIGINT)
            proc.wait(5)


def test_reset_id_of_an_unknown_identity_deletes_nothing(pair):
    pair.ensure_up()
    assert pair.b.ctl("reset", "id", "nobody.pkx.test").stdout.strip() == "reset done: 0 IKE SAs deleted"
    assert pair.both_up()


def test_reload_keeps_sas_whose_policy_remains_and_drops_the_others(pair):
    pair.ensure_up()
    (before,) = pair.b.sas()
    extra = CONF_B + 'ikev2 "other" passive esp from 10.231.3.0/24 to 10.231.4.0/24 peer 10.231.0.9 psk "x-0123456789abcdef"\n'
    pair.b.write_conf(extra)
    out = pair.b.ctl("reload").stdout
    assert "2 policies, 0 IKE SAs deleted" in out
    (after,) = pair.b.sas()
    assert (after["spi_i"], after["spi_r"], after["state"]) == (before["spi_i"], before["spi_r"],
                                                                "ESTABLISHED")
    pair.b.write_conf(CONF_B.replace('"to-a"', '"renamed"'))
    assert "1 policy, 1 IKE SA deleted" in pair.b.ctl("reload").stdout
    pair.wait(pair.none, what="SA of the removed policy gone on both daemons")
    pair.b.write_conf(CONF_B)
    pair.b.ctl("reload")
    pair.ensure_up()


def test_a_bad_file_fails_the_reload_and_changes_nothing(pair):
    pair.ensure_up()
    pair.b.write_conf("ikev2 frobnicate\n")
    try:
        result = pair.b.ctl("reload", check=False)
        assert result.returncode == 1 and "iked.conf:1:" in result.stderr
        assert pair.both_up()
    finally:
        pair.b.write_conf(CONF_B)
    missing = pair.b.ctl("load", str(pair.tmp / "missing.conf"), check=False)
    assert missing.returncode == 1 and "cannot open" in missing.stderr


def test_load_another_file(pair):
    pair.ensure_up()
    other = pair.tmp / "other.conf"
    other.write_text(CONF_B.replace('"to-a"', '"loaded"'))
    os.chmod(other, 0o600)
    out = pair.b.ctl("load", str(other)).stdout
    assert out.startswith(f"configuration {other} loaded: 1 policy, 1 IKE SA deleted")
    pair.wait(pair.none, what="SAs of the old policy gone")
    pair.ensure_up()
    assert pair.b.sas()[0]["policy"] == "loaded"
    pair.b.ctl("reload")  # back to the daemon's own file (-f): policy "to-a" again
    pair.wait(pair.none, what="SAs of the loaded policy gone")
    pair.ensure_up()
    assert pair.b.sas()[0]["policy"] == "to-a"


def test_reset_sa_policy_user_all(pair):
    pair.ensure_up()
    assert "1 IKE SA deleted" in pair.a.ctl("reset", "sa").stdout
    pair.wait(pair.none, what="reset sa")
    pair.ensure_up()
    assert "1 IKE SA deleted" in pair.b.ctl("reset", "policy").stdout
    pair.wait(pair.none, what="reset policy")
    assert pair.b.ctl_json("show", "stats")["daemon"]["policies"] == 0
    pair.b.ctl("reload")
    pair.ensure_up()
    assert "0 IKE SAs deleted" in pair.b.ctl("reset", "user").stdout
    assert pair.both_up()
    assert "1 IKE SA deleted" in pair.b.ctl("reset", "all").stdout
    pair.wait(pair.none, what="reset all")
    pair.b.ctl("reload")
    pair.ensure_up()


def test_log_verbose_and_brief(pair):
    pair.ensure_up()
    assert pair.b.ctl("log", "verbose").stdout.strip() == "logging level DEBUG"
    assert pair.b.ctl_json("show", "stats")["daemon"]["log_level"] == "DEBUG"
    mark = len(pair.b.log_text())
    pair.a.ctl("reset", "sa")
    pair.wait(pair.none, what="reset sa")
    pair.ensure_up()
    assert "event " in pair.b.log_text()[mark:]  # the daemon's DEBUG lines now show
    assert pair.b.ctl("log", "brief").stdout.strip() == "logging level INFO"  # started with -v
    mark = len(pair.b.log_text())
    pair.a.ctl("reset", "sa")
    pair.wait(pair.none, what="reset sa")
    pair.ensure_up()
    later = pair.b.log_text()[mark:]
    assert "established" in later and "event " not in later


def test_passive_does_not_initiate_and_active_does(pair):
    pair.ensure_up()
    assert pair.a.ctl("passive").stdout.strip() == "mode passive, 0 initiated"
    assert pair.a.ctl_json("show", "stats")["daemon"]["mode"] == "passive"
    pair.a.ctl("reset", "sa")
    pair.wait(pair.none, what="reset sa")
    pair.b.ctl("reload")  # would not bring anything up either: b is passive by policy
    time.sleep(1.0)
    assert pair.none()
    assert pair.a.ctl("active").stdout.strip() == "mode active, 1 initiated"
    pair.wait(pair.both_up, what="SA after active")
    assert pair.a.ctl_json("show", "stats")["daemon"]["mode"] == "active"


def test_couple_and_decouple(pair):
    pair.ensure_up()
    assert pair.b.ctl("decouple").stdout.strip() == "kernel decoupled"
    assert pair.b.ctl_json("show", "stats")["daemon"]["coupled"] is False
    assert pair.both_up()  # the engine keeps running
    assert "kernel decoupled" in pair.b.log_text()
    assert pair.b.ctl("couple").stdout.strip() == "kernel coupled, 1 IKE SA renegotiated"
    assert pair.b.ctl_json("show", "stats")["daemon"]["coupled"] is True
    pair.wait(pair.none, what="the recoupled SA deleted on both daemons")
    pair.ensure_up()


def test_metrics_after_handshakes(pair):
    from prometheus_client.parser import text_string_to_metric_families

    pair.ensure_up()
    text = pair.b.netns_python(
        "import urllib.request, sys; "
        f"sys.stdout.write(urllib.request.urlopen('http://{METRICS}/metrics').read().decode())")
    values = {(s.name, tuple(sorted(s.labels.items()))): s.value
              for family in text_string_to_metric_families(text) for s in family.samples}
    stats = pair.b.ctl_json("show", "stats")
    assert values[("pyiked_ike_sas_active", ())] == 1
    assert values[("pyiked_child_sas_active", ())] == 1
    assert values[("pyiked_handshakes_completed_total", ())] == stats["counters"]["handshakes_completed"] >= 1
    assert values[("pyiked_handshakes_started_total", ())] == stats["counters"]["handshakes_started"]
    assert values[("pyiked_ike_sas_half_open", (("role", "responder"),))] == 0
    assert values[("pyiked_kernel_coupled", ())] == 1


def test_pyikectl_errors(pair, tmp_path):
    missing = subprocess.run([sys.executable, "-m", "pyiked.ctl.cli", "-s", str(tmp_path / "none"),
                              "show", "sa"], check=False, capture_output=True, text=True, env=env(),
                             cwd=REPO)
    assert missing.returncode == 1 and "connect:" in missing.stderr
    assert pair.b.ctl("reset", "ca", check=False).returncode == 1


def test_a_second_daemon_refuses_the_socket_in_use(pair):
    result = subprocess.run(["ip", "netns", "exec", pair.ns_b, sys.executable, "-m",
                             "pyiked.daemon.cli", "-d", "-f", str(pair.b.conf), "-s", pair.b.sock,
                             "--backend", "memory"], check=False, capture_output=True, text=True,
                            env=env(),
                            cwd=REPO, timeout=30)
    assert result.returncode != 0
    assert "another daemon is listening" in result.stderr or "Address already in use" in result.stderr
    assert pair.b.ctl_json("show", "stats")["daemon"]["backend"] == "memory"  # still serving
