"""Self-tests of the interop harness: two real strongSwans (and a stand-in daemon).

Each test builds its own namespaces (the `lab` fixture); together they run in well under
a minute. The first tests need nothing but Python: they check the config renderers.
"""

from __future__ import annotations

import re
import signal
import subprocess

import pytest

from .harness import (
    IDS,
    IKED_S2S_INITIATOR,
    IKED_S2S_RESPONDER,
    PSK,
    STAND_IN_MODULE,
    Auth,
    Child,
    Conn,
    HarnessError,
    Pool,
    Secret,
    Topology,
    iked_s2s,
    psk_secret,
    render_settings,
    swan_conn,
    wait_for,
)
from .harness.capture import IKE_AUTH, IKE_SA_INIT

# The iked.conf the lead's first interop test uses (pyiked responder in b), verbatim.
BRIEF_IKED_CONF = r'''ikev2 "s2s" passive esp from 10.231.2.0/24 to 10.231.1.0/24 \
    local 10.231.0.2 peer 10.231.0.1 \
    ikesa enc aes-256-gcm prf hmac-sha2-256 group curve25519 \
    ikesa enc aes-128 auth hmac-sha2-256 prf hmac-sha2-256 group modp2048 \
    childsa enc aes-256-gcm \
    childsa enc aes-128 auth hmac-sha2-256 \
    srcid b.pk.test dstid a.pk.test psk "pk-test-psk-0123456789"
'''


# ---------------------------------------------------------------- renderers (no root)


def test_iked_conf_scenarios():
    assert IKED_S2S_RESPONDER == BRIEF_IKED_CONF
    assert iked_s2s(node="b") == BRIEF_IKED_CONF
    mirror = IKED_S2S_INITIATOR
    assert mirror.startswith('ikev2 "s2s" active esp from 10.231.1.0/24 to 10.231.2.0/24 \\\n')
    assert "local 10.231.0.1 peer 10.231.0.2" in mirror
    assert f'srcid a.pk.test dstid b.pk.test psk "{PSK}"' in mirror


def test_settings_rendering_quotes_and_lists():
    text = render_settings({"s": {"id": "C=XX, O=x", "secret": 'a "b" #c', "on": True,
                                  "list": ["aes256gcm16", "aes128-sha256"], "skip": None,
                                  "n": 3}})
    assert text.splitlines() == [
        "s {",
        '    id = "C=XX, O=x"',
        '    secret = "a \\"b\\" #c"',
        "    on = yes",
        "    list = aes256gcm16, aes128-sha256",
        "    n = 3",
        "}",
    ]


def test_conn_vici_message(tmp_path):
    crt = tmp_path / "x.crt"
    crt.write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    conn = Conn("c", ["10.231.0.2"], [], Auth.pubkey("b", cert=crt),
                [Auth.pubkey(cacerts=[crt]), Auth.eap(eap_id="%any")],
                [Child("net", ["10.231.2.0/24"], [], mode="transport", rekey_time=30)],
                role="responder", pools=["p"], fragmentation=True, dpd_delay=5)
    msg = conn.vici()["c"]
    assert msg["remote_addrs"] == ["%any"]
    assert msg["fragmentation"] == "yes" and msg["dpd_delay"] == "5"
    assert msg["local"]["certs"] == [crt.read_bytes()]
    assert msg["remote-1"]["round"] == "1" and msg["remote-2"]["eap_id"] == "%any"
    assert msg["children"]["net"] == {"local_ts": ["10.231.2.0/24"],
                                      "esp_proposals": ["aes256gcm16"], "mode": "transport",
                                      "start_action": "none", "rekey_time": "30"}
    assert conn.settings()["c"]["local"]["certs"] == [str(crt.resolve())]
    assert Pool("p", "10.231.100.0/24", dns=["10.231.2.1"]).vici() == {
        "p": {"addrs": "10.231.100.0/24", "dns": ["10.231.2.1"]}}
    assert "pk-test" not in repr(psk_secret())
    with pytest.raises(ValueError):
        Conn("i", role="initiator")


# ---------------------------------------------------------------- two strongSwans


def _swan_pair(lab, a_via="vici", b_via="swanctl", a_settings=None, b_settings=None):
    """charon a (initiator, conns s2s [GCM] and cbc [CBC]) and charon b (responder)."""
    topo = lab.topo
    gcm = swan_conn(topo, "a", "initiator")
    cbc = swan_conn(topo, "a", "initiator", name="cbc", child="net-cbc",
                    proposals=["aes128-sha256-modp2048"], esp_proposals=["aes128-sha256"])
    a = lab.strongswan("a", conns=[gcm, cbc], secrets=[psk_secret()], via=a_via,
                       **(a_settings or {}))
    b = lab.strongswan("b", conns=[swan_conn(topo, "b", "responder")],
                       secrets=[psk_secret()], via=b_via, **(b_settings or {}))
    return a, b


def test_psk_gcm_tunnel_carries_esp_in_udp(lab):
    a, _ = _swan_pair(lab)  # b's config went through swanctl --load-all (rendered text)
    cap = lab.capture("b")
    r = a.initiate("net", "s2s")
    assert r, r
    assert "selected proposal: IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519" in r.text
    assert "selected proposal: ESP:AES_GCM_16_256/NO_EXT_SEQ" in r.text
    sa = a.list_sas()[0]
    ping = lab.topo.ping("a", "10.231.1.1", "10.231.2.1", count=3)
    assert ping, ping.output
    cap.stop()

    esp = cap.esp_packets()
    assert cap.esp_in_udp() == len(esp) >= 6  # 3 echo requests + 3 replies, all in UDP
    assert cap.plain_esp() == 0
    assert {(p["sport"], p["dport"]) for p in esp} == {(4500, 4500)}
    child = sa.child("net")
    assert cap.esp_spis() == {int(child.spi_in, 16), int(child.spi_out, 16)}
    assert cap.exchanges()[:4] == [(IKE_SA_INIT, False), (IKE_SA_INIT, True),
                                   (IKE_AUTH, False), (IKE_AUTH, True)]
    init, auth = cap.ike_messages()[0], cap.ike_messages()[2]
    assert init["dport"] == 500 and not init["non_esp_marker"]
    # kernel-libipsec faked a NAT, so IKE moved to 4500 behind the non-ESP marker
    assert auth["dport"] == 4500 and auth["non_esp_marker"]
    assert (init["spi_i"], init["spi_r"]) == (sa.spi_i, "0000000000000000")
    assert cap.skf_fragments() == 0


def test_list_sas_parsed(lab):
    a, b = _swan_pair(lab, a_via="swanctl", b_via="vici", a_settings={"keylog": True},
                      b_settings={"dos_protection": False})
    assert "dos_protection = no" in b.conf_path.read_text()
    plugins = set(a.stats()["plugins"])
    assert {"kernel-libipsec", "kernel-netlink", "eap-mschapv2", "curve25519", "gcm"} <= plugins
    assert a.initiate("net", "s2s")
    assert lab.topo.ping("a", "10.231.1.1", "10.231.2.1", count=1)
    # same traffic selectors: from here on, traffic would take the newer CHILD_SA
    assert a.initiate("net-cbc", "cbc")

    sas_a = {sa.name: sa for sa in a.list_sas()}
    assert set(sas_a) == {"s2s", "cbc"}
    g = sas_a["s2s"]
    assert (g.state, g.version, g.initiator) == ("ESTABLISHED", 2, True)
    assert (g.local_id, g.remote_id) == (IDS["a"], IDS["b"])
    assert (g.local_host, g.remote_host, g.remote_port) == ("10.231.0.1", "10.231.0.2", 4500)
    assert (g.encr_alg, g.encr_keysize, g.integ_alg) == ("AES_GCM_16", 256, None)
    assert (g.prf_alg, g.dh_group) == ("PRF_HMAC_SHA2_256", "CURVE_25519")
    assert re.fullmatch(r"[0-9a-f]{16}", g.spi_i) and re.fullmatch(r"[0-9a-f]{16}", g.spi_r)
    c = g.child("net")
    assert (c.state, c.protocol, c.mode, c.encap) == ("INSTALLED", "ESP", "TUNNEL", True)
    assert (c.encr_alg, c.encr_keysize, c.integ_alg) == ("AES_GCM_16", 256, None)
    assert (c.local_ts, c.remote_ts) == (["10.231.1.0/24"], ["10.231.2.0/24"])
    assert c.packets_out >= 1 and c.bytes_out > 0

    cbc = sas_a["cbc"]
    assert (cbc.encr_alg, cbc.encr_keysize, cbc.integ_alg, cbc.dh_group) == (
        "AES_CBC", 128, "HMAC_SHA2_256_128", "MODP_2048")
    cc = cbc.child("net-cbc")
    assert (cc.encr_alg, cc.integ_alg) == ("AES_CBC", "HMAC_SHA2_256_128")

    # the responder sees the same SAs from the other side
    sas_b = {sa.spi_i: sa for sa in b.list_sas()}
    rb = sas_b[g.spi_i]
    assert (rb.initiator, rb.spi_r, rb.remote_id) == (False, g.spi_r, IDS["a"])
    assert (rb.child().spi_in, rb.child().spi_out) == (c.spi_out, c.spi_in)
    # keylog: a's filelog has the IKE and ESP keys (level 4), b's has none
    sk_ei = a.logged_keys("Sk_ei secret")
    assert [len(k) for k in sk_ei] == [36, 16]  # AES-GCM-256 key + salt, AES-128-CBC key
    assert len(a.logged_keys("encryption initiator key")) == 2
    assert not b.grep_log(r"Sk_ei secret") and not b.logged_keys()
    # and swanctl's text output agrees (command first, then --uri)
    out = a.swanctl("--list-sas", "--ike", "s2s").stdout
    assert f"{g.spi_i}_i* {g.spi_r}_r" in out and "TUNNEL-in-UDP" in out


def test_terminate_child_then_ike(lab):
    a, b = _swan_pair(lab)
    assert a.initiate("net", "s2s")
    ike_id = a.list_sas()[0].uniqueid
    with b.events("ike-updown", "child-updown") as ev:
        r = a.terminate(child="net")
        assert r, r
        assert a.list_sas()[0].children == []  # IKE_SA stays, CHILD_SA gone
        ev.wait("child-updown", lambda m: "up" not in m)  # a down event has no up=yes
        assert a.terminate(ike_id=ike_id)
        assert a.list_sas() == []
        b.wait_no_sa()
        ev.wait("ike-updown")
    # the deleted SA is gone for good: a second terminate finds nothing
    assert not a.terminate(ike="s2s")


def test_rekey_child_then_ike(lab):
    a, b = _swan_pair(lab)
    assert a.initiate("net", "s2s")
    old = a.list_sas()[0]
    old_spi = old.child("net").spi_in
    with a.events("child-rekey", "ike-rekey") as ev:
        assert a.rekey(child="net") == 1
        ev.wait("child-rekey")
        a.wait_sa("s2s", "net", predicate=lambda sa: any(
            c.state == "INSTALLED" and c.spi_in != old_spi for c in sa.children))
        assert a.rekey(ike="s2s") == 1
        ev.wait("ike-rekey")
    new = a.wait_sa("s2s", "net", predicate=lambda sa: sa.spi_i != old.spi_i)
    assert new.uniqueid != old.uniqueid
    wait_for(lambda: len(b.list_sas()) == 1 and len(a.list_sas()) == 1, 10, "old IKE_SA gone")
    assert lab.topo.ping("a", "10.231.1.1", "10.231.2.1", count=1)


def test_ecdsa_certificates_and_revocation(lab, pki):
    ca = pki.ca("ec")
    ca_a, ca_b = pki.cert("a", "ec"), pki.cert("b", "ec")
    topo = lab.topo

    def conn(node, cert, peer_id, role):
        me, peer = node, topo.peer(node)
        return Conn("ec", [topo.addr(me)], [topo.addr(peer)] if role == "initiator" else [],
                    Auth.pubkey(cert.id, cert=cert.crt),
                    Auth.pubkey(peer_id, cacerts=[ca.crt], revocation="strict"),
                    [Child("net", [topo.inner_net(me)], [topo.inner_net(peer)])], role=role)

    b = lab.strongswan("b", conns=[conn("b", ca_b, "%any", "responder")], keys=[ca_b.key],
                       via="swanctl")  # cert paths and the key file via swanctl.conf
    a = lab.strongswan("a", conns=[conn("a", ca_a, ca_b.id, "initiator")], keys=[ca_a.key],
                       crls=[pki.crl("ec")])  # an empty, valid CRL: strict passes
    b.load_crl(pki.crl("ec"))
    r = a.initiate("net", "ec")
    assert r, r
    assert re.search(r"authentication of 'b-ec\.pk\.test' with ECDSA\S* successful", r.text)
    sa = b.list_sas()[0]
    assert (sa.local_id, sa.remote_id) == ("b-ec.pk.test", "a-ec.pk.test")
    assert a.terminate(ike="ec")

    # a client cert from a CA nobody trusts is refused
    rogue = pki.unknown_cert("a")
    a.unload_conn("ec")
    a.load(conns=[conn("a", rogue, ca_b.id, "initiator")], keys=[rogue.key])
    assert not a.initiate("net", "ec", timeout=10)
    b.wait_for_log(r"no trusted ECDSA public key found for 'a-unknown\.pk\.test'")

    # a revoked cert is refused once b has the new CRL
    revoked = pki.issue("a-revoked.pk.test")
    a.unload_conn("ec")
    a.load(conns=[conn("a", revoked, ca_b.id, "initiator")], keys=[revoked.key])
    b.load_crl(pki.revoke(revoked))
    assert not a.initiate("net", "ec", timeout=10)
    b.wait_for_log(r"certificate was revoked")


def test_eap_mschapv2_with_pool_and_fragmentation(lab, pki):
    """RSA gateway cert + EAP-MSCHAPv2 client + virtual IP; IKE_AUTH fragmented (RFC 7383)."""
    gw = pki.cert("b", "rsa")
    topo = lab.topo
    b = lab.strongswan("b", keys=[gw.key], fragment_size=600, conns=[Conn(
        "rw", ["10.231.0.2"], [], Auth.pubkey(gw.id, cert=gw.crt), Auth.eap(eap_id="%any"),
        [Child("net", ["10.231.2.0/24"])], role="responder", pools=["rw"],
        fragmentation=True)], pools=[Pool("rw", "10.231.100.0/24", dns=["10.231.2.1"])],
        secrets=[Secret.eap("alice", "alice-pk-pass-1")])
    a = lab.strongswan("a", fragment_size=600, conns=[Conn(
        "rw", ["10.231.0.1"], ["10.231.0.2"], Auth.eap(eap_id="alice"),
        Auth.pubkey(gw.id, cacerts=[pki.ca("rsa").crt]), [Child("net", [], ["10.231.2.0/24"])],
        vips=["0.0.0.0"], fragmentation=True)], secrets=[Secret.eap("alice", "alice-pk-pass-1")])
    cap = lab.capture("b")
    r = a.initiate("net", "rw")
    assert r, r
    cap.stop()
    sa = b.list_sas()[0]
    assert sa.remote_eap_id == "alice" and sa.remote_vips == ["10.231.100.1"]
    assert a.list_sas()[0].local_vips == ["10.231.100.1"]
    frags = [m for m in cap.ike_messages() if m["first_payload"] == 53]
    assert frags and cap.skf_fragments() == len(frags)
    assert {m["exchange"] for m in frags} == {IKE_AUTH}
    assert all(m["frag_total"] >= 2 and 1 <= m["frag_number"] <= m["frag_total"]
               for m in frags)
    assert topo.udp_listening("b", 4500)


# ---------------------------------------------------------------- topology, runner


@pytest.mark.interop
def test_topologies_are_isolated(tmp_path):
    with Topology() as t1, Topology(outer_a="10.231.50.1/24", outer_b="10.231.50.2/24",
                                    inner_a="10.231.51.1", inner_b="10.231.52.1") as t2:
        names = [t1.ns_a, t1.ns_b, t2.ns_a, t2.ns_b]
        listed = _netns_list()
        assert len(set(names)) == 4 and all(n in listed for n in names)
        assert max(len(t.veth(n)) for t in (t1, t2) for n in "ab") <= 15
        assert t1.ping("a", "10.231.0.1", "10.231.0.2", count=1)
        assert t2.ping("b", "10.231.50.2", "10.231.50.1", count=1)
        assert t2.inner_net("a") == "10.231.51.0/24"
        lost = t2.ping("a", "10.231.50.1", "10.231.0.2", count=1, wait=0.5)  # t1's address
        assert (lost.sent, lost.received) == (1, 0) and not lost
        proc = t1.popen("a", ["sleep", "60"], tmp_path / "sleep.log")
        assert proc.running
    assert proc.returncode == -signal.SIGTERM
    listed = _netns_list()
    assert not any(n in listed for n in names)


def _netns_list() -> str:
    return subprocess.run(["ip", "netns", "list"], check=False, capture_output=True,
                          text=True).stdout


def test_pyiked_runner_with_stand_in(lab, monkeypatch):
    monkeypatch.setenv("PYIKED_NO_EXTENSIONS", "1")
    iked = lab.pyiked("b", IKED_S2S_RESPONDER, module=STAND_IN_MODULE,
                      env={"PYIKED_TEST_MARK": "mark-1"})
    assert iked.running and lab.topo.udp_listening("b", 4500)
    iked.wait_for_log(r"listening on udp 500,4500")
    log = iked.log()
    assert "PYIKED_NO_EXTENSIONS='1'" in log and "PYIKED_TEST_MARK='mark-1'" in log
    assert iked.conf_path.read_text() == IKED_S2S_RESPONDER
    assert f"-s {iked.sock_path}" in " ".join(iked.argv())
    # a datagram from a to b:500 comes back: the stand-in really runs in namespace b
    code = ("import socket; s = socket.socket(2, 2); s.settimeout(5); "
            "s.sendto(b'hello', ('10.231.0.2', 500)); print(s.recvfrom(99)[0].decode())")
    assert lab.topo.run("a", ["python3", "-c", code]).stdout.strip() == "hello"
    iked.wait_for_log(r"echo 5 bytes from 10\.231\.0\.1:\d+ on port 500")
    iked.reload(IKED_S2S_INITIATOR)
    iked.wait_for_log(r"SIGHUP, reloaded")
    assert iked.stop() == 0 and "SIGTERM, exiting" in iked.log()

    # pure/compiled mode is passed through as set; one that ignores SIGTERM gets SIGKILL
    monkeypatch.delenv("PYIKED_NO_EXTENSIONS")
    stubborn = lab.pyiked("a", "# empty\n", name="stubborn", module=STAND_IN_MODULE,
                          args=["--ignore-term"])
    assert "PYIKED_NO_EXTENSIONS=None" in stubborn.log()
    assert stubborn.stop(timeout=0.5) == -signal.SIGKILL
    # a daemon that dies is reported with its log, not waited for until the timeout
    dup = lab.pyiked("a", "# port taken\n", name="dup", module=STAND_IN_MODULE,
                     args=["--ports", "4500,4500"], wait_port=None)
    with pytest.raises(HarnessError, match=r"(?s)exited \(rc=1\).*Address already in use"):
        dup.wait_for_log("never", 10)


def test_scenarios_with_stand_in(lab):
    s = lab.swan_to_pyiked(module=STAND_IN_MODULE)
    assert s.initiator == "swan" and s.iked.conf_path.read_text() == IKED_S2S_RESPONDER
    conn = s.swan.list_conns()["s2s"]
    assert conn["local_addrs"] == ["10.231.0.1"] and conn["remote_addrs"] == ["10.231.0.2"]
    assert conn["children"]["net"]["local-ts"] == ["10.231.1.0/24"]
    assert lab.topo.udp_listening("b", 500)


def test_mirror_scenario_with_stand_in(lab):
    s = lab.pyiked_to_swan(module=STAND_IN_MODULE)
    assert s.initiator == "pyiked" and s.iked.conf_path.read_text() == IKED_S2S_INITIATOR
    assert s.swan.list_conns()["s2s"]["remote_addrs"] == ["10.231.0.1"]
    assert lab.topo.udp_listening("a", 500) and s.sa() is None
