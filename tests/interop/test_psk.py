"""pyiked against a real strongSwan, PSK site to site, in both roles.

strongSwan runs kernel-libipsec, which fakes NAT detection, so every case also exercises
NAT-T: the float to 4500 with the non-ESP marker and ESP in UDP. pyiked runs its default
backend, which on a kernel without ESP is the userspace data plane: the pings go through
pyiked's own ESP.
"""

from __future__ import annotations

import re

import pytest

from .harness import iked_s2s

# (strongSwan IKE, strongSwan ESP, iked ikesa, iked childsa, expected strongSwan names)
SUITES = {
    "gcm-x25519": (
        "aes256gcm16-prfsha256-x25519", "aes256gcm16",
        "enc aes-256-gcm prf hmac-sha2-256 group curve25519", "enc aes-256-gcm",
        ("AES_GCM_16", 256, None, "PRF_HMAC_SHA2_256", "CURVE_25519", "AES_GCM_16", None),
    ),
    "cbc-modp2048": (
        "aes128-sha256-modp2048", "aes128-sha256",
        "enc aes-128 auth hmac-sha2-256 prf hmac-sha2-256 group modp2048",
        "enc aes-128 auth hmac-sha2-256",
        ("AES_CBC", 128, "HMAC_SHA2_256_128", "PRF_HMAC_SHA2_256", "MODP_2048", "AES_CBC",
         "HMAC_SHA2_256_128"),
    ),
    "cbc-ecp384": (
        "aes256-sha384-ecp384", "aes256-sha512",
        "enc aes-256 auth hmac-sha2-384 prf hmac-sha2-384 group ecp384",
        "enc aes-256 auth hmac-sha2-512",
        ("AES_CBC", 256, "HMAC_SHA2_384_192", "PRF_HMAC_SHA2_384", "ECP_384", "AES_CBC",
         "HMAC_SHA2_512_256"),
    ),
    "chacha-x448": (
        "chacha20poly1305-prfsha512-curve448", "chacha20poly1305",
        "enc chacha20-poly1305 prf hmac-sha2-512 group curve448", "enc chacha20-poly1305",
        ("CHACHA20_POLY1305", None, None, "PRF_HMAC_SHA2_512", "CURVE_448", "CHACHA20_POLY1305",
         None),
    ),
}

CHILD_UP = re.compile(r"CHILD SA #\d+ up \(in ([0-9a-f]{8}) out ([0-9a-f]{8})\)")


def _conf(lab, node, suite, active=False):
    _, _, ikesa, childsa, _ = SUITES[suite]
    return iked_s2s(lab.topo, node, active=active, ikesa=[ikesa], childsa=[childsa])


def _pyiked_spis(iked) -> list[tuple[str, str]]:
    """(inbound, outbound) SPIs of every CHILD SA pyiked logged as up."""
    iked.wait_for_log(CHILD_UP.pattern, timeout=10)  # strongSwan may report first
    return CHILD_UP.findall(iked.log())


def _check_sa(sa, suite):
    encr, bits, integ, prf, ke, esp_encr, esp_integ = SUITES[suite][4]
    assert sa.state == "ESTABLISHED"
    assert (sa.encr_alg, sa.encr_keysize, sa.integ_alg, sa.prf_alg, sa.dh_group) == (
        encr, bits, integ, prf, ke)
    child = sa.children[0]
    assert child.state == "INSTALLED" and child.encap and child.mode == "TUNNEL"
    assert (child.encr_alg, child.integ_alg) == (esp_encr, esp_integ)
    return child


@pytest.mark.interop
@pytest.mark.parametrize("suite", list(SUITES))
def test_strongswan_initiates_to_pyiked(lab, suite):
    swan_ike, swan_esp = SUITES[suite][:2]
    s = lab.swan_to_pyiked(_conf(lab, "b", suite), proposals=[swan_ike], esp_proposals=[swan_esp])
    cap = lab.capture("b")
    result = s.initiate()
    assert result, result
    child = _check_sa(s.sa(), suite)
    # pyiked's view of the SPIs mirrors strongSwan's
    assert (child.spi_out, child.spi_in) in _pyiked_spis(s.iked)
    ping = s.ping(count=3)
    assert ping, ping
    back = s.ping(count=2, reverse=True)  # traffic started on pyiked's side too
    assert back, back
    cap.stop()
    assert cap.esp_in_udp() >= 10 and cap.plain_esp() == 0
    assert s.swan.terminate(ike=s.ike)
    s.iked.wait_for_log(r"closed: deleted by peer", timeout=10)


@pytest.mark.interop
@pytest.mark.parametrize("suite", list(SUITES))
def test_pyiked_initiates_to_strongswan(lab, suite):
    swan_ike, swan_esp = SUITES[suite][:2]
    s = lab.pyiked_to_swan(_conf(lab, "a", suite, active=True), proposals=[swan_ike],
                           esp_proposals=[swan_esp])
    sa = s.wait_up()
    child = _check_sa(sa, suite)
    assert (child.spi_out, child.spi_in) in _pyiked_spis(s.iked)
    ping = s.ping(count=3)
    assert ping, ping
    back = s.ping(count=2, reverse=True)  # started on strongSwan's side
    assert back, back
    # a Delete from pyiked (it deletes its SAs when it stops) is seen by strongSwan
    assert s.iked.stop() == 0
    s.swan.wait_no_sa(timeout=10)


@pytest.mark.interop
def test_proposal_mismatch_gives_no_proposal_chosen(lab):
    s = lab.swan_to_pyiked(_conf(lab, "b", "gcm-x25519"), proposals=["aes128-sha256-modp2048"],
                           esp_proposals=["aes128-sha256"])
    result = s.initiate()
    assert not result
    assert "NO_PROPOSAL_CHOSEN" in result.text
    assert s.sa() is None


@pytest.mark.interop
def test_wrong_psk_gives_authentication_failed(lab):
    conf = iked_s2s(lab.topo, "b", psk="not-the-right-psk-000")
    s = lab.swan_to_pyiked(conf)
    result = s.initiate()
    assert not result
    assert "AUTHENTICATION_FAILED" in result.text
    s.iked.wait_for_log(r"AUTHENTICATION_FAILED", timeout=5)


@pytest.mark.interop
def test_pyiked_initiator_proposal_mismatch(lab):
    # the failure cases the other way round: pyiked initiates, strongSwan refuses
    s = lab.pyiked_to_swan(_conf(lab, "a", "gcm-x25519", active=True),
                           proposals=["aes128-sha256-modp2048"], esp_proposals=["aes128-sha256"])
    s.iked.wait_for_log(r"NO_PROPOSAL_CHOSEN", timeout=10)
    assert s.sa() is None


@pytest.mark.interop
def test_pyiked_initiator_wrong_psk(lab):
    conf = iked_s2s(lab.topo, "a", active=True, psk="not-the-right-psk-000")
    s = lab.pyiked_to_swan(conf)
    s.iked.wait_for_log(r"AUTHENTICATION_FAILED", timeout=10)
    assert s.sa() is None


@pytest.mark.interop
def test_strongswan_deletes_child_only(lab):
    s = lab.swan_to_pyiked()
    assert s.initiate()
    assert s.swan.terminate(child=s.child)
    s.iked.wait_for_log(r"CHILD SA #\d+ removed: deleted by peer", timeout=10)
    sa = s.sa()
    assert sa is not None and sa.state == "ESTABLISHED" and not sa.children
