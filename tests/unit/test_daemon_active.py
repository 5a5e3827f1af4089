"""Policies in the daemon: `active` initiation by peer host name, iked's periodic retry of
an active policy whose IKE SA went away, and warnings for rules the data plane cannot carry."""

import logging

from pyiked.config import resolve
from pyiked.daemon import demo

from .daemon_lab import Lab


def _their_spis(lab, daemon):
    return lab.on_loop(lambda: {sa.our_spi for sa in daemon.engine.ike_sas()
                                if sa.state.value == "ESTABLISHED"})


def test_active_policy_with_a_peer_host_name(tmp_path, monkeypatch):
    conf = demo.INITIATOR_CONF.replace("peer 127.0.0.2", "peer responder.demo.test") \
                              .replace("local 127.0.0.1", "local initiator.demo.test")
    assert "peer responder.demo.test" in conf and "local initiator.demo.test" in conf
    names = {"responder.demo.test": ["127.0.0.2"], "initiator.demo.test": ["127.0.0.1"]}
    monkeypatch.setattr(resolve, "resolve_name", lambda name: names[name])
    monkeypatch.setattr(demo, "INITIATOR_CONF", conf)
    lab = Lab(tmp_path)
    try:
        lab.wait(lambda: lab.established(lab.responder) and lab.established(lab.initiator))
        (sa,) = lab.on_loop(lab.initiator.engine.ike_sas)
        assert sa.local_addr[0] == "127.0.0.1" and sa.remote_addr[0] == "127.0.0.2"
    finally:
        lab.close()


def test_active_policy_is_initiated_again_after_its_sa_is_deleted(tmp_path):
    lab = Lab(tmp_path)
    try:
        lab.wait(lambda: lab.established(lab.responder) and lab.established(lab.initiator))
        first = _their_spis(lab, lab.initiator)

        def faster_retries():
            lab.initiator.initiator_interval = 0.2
            lab.initiator._initiator_timer.cancel()
            lab.initiator._schedule_initiator()
        lab.on_loop(faster_retries)
        # the responder deletes the IKE SA (§1.4.1); the initiator's active policy has none
        assert lab.on_loop(lambda: lab.responder.reset("sa"))["deleted"] == 1
        lab.wait(lambda: (spis := _their_spis(lab, lab.initiator)) and not spis & first)
        lab.wait(lambda: lab.established(lab.initiator) == 1 and lab.established(lab.responder) == 1)
    finally:
        lab.close()


def test_rules_the_data_plane_cannot_carry_are_named_at_load(caplog):
    from pyiked.config import parse_config_text
    from pyiked.core.iana import EncrId, IntegId
    from pyiked.daemon.run import Daemon
    from pyiked.kernel.memory import MemoryBackend

    class GcmOnlyTunnels(MemoryBackend):
        name = "test"
        supports_transport = False
        esp_encr = frozenset({EncrId.AES_GCM_16})
        esp_integ = frozenset({IntegId.NONE})

    text = """
ikev2 "ctr" passive esp from 10.231.1.0/24 to 10.231.2.0/24 peer 10.231.0.1 childsa enc aes-256-ctr auth hmac-sha2-256 psk "k"
ikev2 "transport" passive transport esp from 10.231.0.2 to 10.231.0.1 peer 10.231.0.1 psk "k"
ikev2 "fine" passive esp from 10.231.3.0/24 to 10.231.4.0/24 peer 10.231.0.1 childsa enc aes-256-gcm psk "k"
"""
    config, _ = parse_config_text(text, "iked.conf")
    with caplog.at_level(logging.WARNING, logger="pyiked.daemon"):
        daemon = Daemon(config, backend=GcmOnlyTunnels(), ike_port=0, natt_port=0, families=(4,),
                        bind_address="127.0.0.1")
    daemon.close()
    warned = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("policy ctr: none of its childsa transforms") for m in warned), warned
    assert any(m.startswith("policy transport: the test data plane has no transport") for m in warned)
    assert not any("policy fine" in m for m in warned)
