"""`active` policies in the daemon: initiation by peer host name, and iked's periodic
retry of an active policy whose IKE SA went away."""

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
