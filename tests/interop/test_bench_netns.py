"""The handshake bench's namespace part end to end, small: the load generator (the pyiked
initiator, bench/loadgen.py) establishes IKE SAs (PSK: distinct identities; ECDSA: one
certificate) on the pyiked daemon and on strongSwan, keeping them or deleting each, and
the responder's CPU and RSS
are sampled around the timed part (bench/netns.py). No timing is asserted."""

import pytest

from bench.netns import NetnsLab, unavailable
from bench.pair import PROFILES

pytestmark = [pytest.mark.interop,
              pytest.mark.skipif(unavailable() is not None, reason=f"interop: {unavailable()}")]


@pytest.mark.parametrize("name, mode", [("psk-x25519-gcm", "keep"), ("psk-x25519-gcm", "churn"),
                                        ("ecdsa-p256-gcm", "keep")])
def test_generator_drives_both_responders(name, mode):
    profile = PROFILES[name]
    with NetnsLab() as lab:
        for start in (lab.start_pyiked, lab.start_strongswan):
            responder = start(profile)
            try:
                run = lab.drive(responder, profile, 12, 4, warmup=2, delete=mode == "churn")
                if mode == "keep":
                    sas = responder.handle.list_sas() if responder.kind == "strongswan" else None
            finally:
                responder.stop()
            assert (run["completed"], run["children"], run["failed"]) == (12, 12, 0), run
            assert run["responder_cpu_seconds"] >= 0 and run["responder_rss_after"] > 0
            if mode == "churn":
                assert run["deleted"] == 12
            elif sas is not None:
                assert len(sas) == 14
                assert len({sa.remote_id for sa in sas}) == (1 if profile.certificates else 14)
