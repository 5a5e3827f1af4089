"""Certificate authentication between two engines: every AUTH method, CERTREQ steering,
chains with intermediates, refusals, and RFC 7383 fragmented IKE_AUTH."""

import pytest

from pyiked._fast import wire
from pyiked.config.model import Auth, Settings
from pyiked.core.auth import signature
from pyiked.core.events import ChildSAInstall, HandshakeFailed, IkeSAUp
from pyiked.core.iana import AuthMethod, PayloadType
from pyiked.core.ike_sa import State

from .rw import cert_pair, store
from .simnet import A_IP, B_IP


@pytest.fixture
def verified(monkeypatch):
    """The (AUTH method, scheme) of every signature an engine verified."""
    seen = []
    real = signature.verify

    def spy(public_key, method, data, octets):
        scheme = real(public_key, method, data, octets)
        seen.append((method, scheme))
        return scheme

    monkeypatch.setattr(signature, "verify", spy)
    return seen


def establish(net, pa, until=30):
    net.engines[A_IP].initiate(pa, 0.0)
    net.run(until=until)
    return net.of_type(A_IP, IkeSAUp), net.of_type(B_IP, IkeSAUp)


def assert_up(net):
    (up_a,), (up_b,) = net.of_type(A_IP, IkeSAUp), net.of_type(B_IP, IkeSAUp)
    (ca,), (cb,) = net.of_type(A_IP, ChildSAInstall), net.of_type(B_IP, ChildSAInstall)
    assert ca.inbound.spi == cb.outbound.spi and ca.inbound.encr_key == cb.outbound.encr_key
    return up_a, up_b


@pytest.mark.parametrize(
    "a_own, b_own, method, expected",
    [
        ("a-ec", "b-ec", "signature", [(14, "RFC 7427 ecdsa SHA2_256")] * 2),
        ("a-ec", "b-ec", "ecdsa256", [(9, "ECDSA secp256r1")] * 2),
        ("a-rsa", "b-rsa", "rsa", [(1, "RSA PKCS#1 v1.5 SHA-1")] * 2),
        ("a-rsa", "b-rsa", "rfc7427", [(14, "RFC 7427 rsa SHA2_256")] * 2),
        (
            "p384",
            "p521",
            "signature",
            [(14, "RFC 7427 ecdsa SHA2_384"), (14, "RFC 7427 ecdsa SHA2_512")],
        ),
        (
            "ed",
            "b-ec",
            "signature",
            [(14, "RFC 7427 ed25519 IDENTITY"), (14, "RFC 7427 ecdsa SHA2_256")],
        ),
    ],
)
def test_certificate_handshakes(verified, a_own, b_own, method, expected):
    net, pa, pb = cert_pair(
        (a_own,), (b_own,), a_kw={"auth": _auth(method)}, b_kw={"auth": _auth(method)}
    )
    establish(net, pa)
    up_a, up_b = assert_up(net)
    assert up_a.remote_id == f"{b_own}.pk.test" and up_b.remote_id == f"{a_own}.pk.test"
    assert verified == expected  # B verifies A first, then A verifies B


def _auth(method):
    return Auth(method)


def test_rfc7427_with_rsa_pss(verified):
    net, pa, pb = cert_pair(("a-rsa",), ("b-rsa",), settings=Settings(rsa_pss=True))
    establish(net, pa)
    assert_up(net)
    assert verified == [(14, "RFC 7427 rsa-pss SHA2_256")] * 2


def test_without_rfc7427_announcement_the_classic_methods_are_used(verified):
    net, pa, pb = cert_pair(("a-rsa",), ("b-ec",))
    for engine in net.engines.values():
        engine.signature_auth = False  # neither sends SIGNATURE_HASH_ALGORITHMS
    establish(net, pa)
    assert_up(net)
    assert [m for m, _ in verified] == [AuthMethod.RSA_SIG, AuthMethod.ECDSA_SHA256_P256]


@pytest.mark.parametrize("trusted, expected", [(("ca-rsa",), "b-rsa"), (("ca-ec",), "b-ec")])
def test_certreq_chooses_the_responder_certificate(trusted, expected):
    # B holds b-ec (first) and b-rsa; A's CERTREQ names only the CA it trusts
    b_store = store(("b-ec", "b-rsa"), intermediates=("int-ec",))
    net, pa, pb = cert_pair(
        ("a-ec",),
        ("b-ec",),
        a_cas=trusted,
        b_store=b_store,
        a_kw={"dstid": None},
        b_kw={"srcid": None},
    )
    establish(net, pa)
    up_a, up_b = assert_up(net)
    assert up_a.remote_id == f"C=XX, O=pk-test, CN={expected}.pk.test"  # its subject DN
    assert up_b.local_id == up_a.remote_id


def test_the_intermediate_travels_with_the_chain():
    # A knows only the root ca-ec; b-ec is issued by int-ec, which B must send as a CERT
    net, pa, pb = cert_pair(("a-ec",), ("b-ec",), a_cas=("ca-ec",))
    assert net.engines[A_IP].certs.intermediates == []
    establish(net, pa)
    assert_up(net)


@pytest.mark.parametrize(
    "a_own, b_kw, reason",
    [
        ("x", {}, "not trusted"),  # A's CA is unknown to B
        ("old", {}, "not trusted"),  # expired
        ("revoked", {}, "revoked"),  # B has ca-ec's CRL
        ("a-ec", {"dstid": "someone-else.pk.test"}, "no policy"),
    ],
)
def test_refused_certificates_leave_no_sa(a_own, b_kw, reason):
    b_store = store(("b-ec",), intermediates=("int-ec",), crls=("ca-ec",))
    a_cas = ("ca-ec", "ca-rsa", "ca-x")
    net, pa, pb = cert_pair((a_own,), ("b-ec",), a_cas=a_cas, b_store=b_store, b_kw=b_kw)
    establish(net, pa)
    assert not net.of_type(A_IP, IkeSAUp) and not net.of_type(B_IP, IkeSAUp)
    assert net.engines[A_IP].ike_sas() == [] and net.engines[B_IP].ike_sas() == []
    (failed_b,) = net.of_type(B_IP, HandshakeFailed)
    assert reason in failed_b.reason
    (failed_a,) = net.of_type(A_IP, HandshakeFailed)
    assert "AUTHENTICATION_FAILED" in failed_a.reason


def test_initiator_refuses_an_untrusted_responder():
    net, pa, pb = cert_pair(("a-ec",), ("b-ec",), a_cas=("ca-rsa",))
    establish(net, pa)
    (failed,) = net.of_type(A_IP, HandshakeFailed)
    assert "not trusted" in failed.reason and net.engines[A_IP].ike_sas() == []


def test_no_matching_certificate_fails_before_sending_auth():
    net, pa, pb = cert_pair(("a-ec",), ("b-ec",), a_kw={"srcid": "nobody.pk.test"})
    establish(net, pa)
    (failed,) = net.of_type(A_IP, HandshakeFailed)
    assert "no certificate" in failed.reason


# -- fragmentation (RFC 7383) -------------------------------------------------------------


def skf_counter(net):
    counts = {"skf": 0, "sk": 0, "sizes": []}

    def tap(data, src, dst):
        message = wire.decode(data)
        kind = message.payloads[-1].payload_type if message.payloads else None
        counts["skf"] += kind == PayloadType.SKF
        counts["sk"] += kind == PayloadType.SK
        counts["sizes"].append(len(data))
        return data

    net.tap = tap
    return counts


@pytest.mark.parametrize("seed", range(5))
def test_fragmented_rsa_ike_auth_under_loss_and_reordering(seed):
    net, pa, pb = cert_pair(
        ("a-rsa",),
        ("b-rsa",),
        settings=Settings(fragmentation=True),
        seed=seed,
        net_kw={"loss": 0.15, "reorder": 0.4, "duplicate": 0.2},
    )
    counts = skf_counter(net)
    establish(net, pa, until=120)
    if not net.of_type(A_IP, IkeSAUp):  # loss can exhaust the retransmissions: both clean up
        assert not [s for s in net.engines[A_IP].ike_sas() if s.state == State.ESTABLISHED]
        return
    assert_up(net)
    assert counts["skf"] >= 6 and max(counts["sizes"]) <= 576 - 28
    assert (
        net.engines[B_IP].stats["fragments_sent"] >= 3
        and net.engines[A_IP].stats["fragments_sent"] >= 3
    )


def test_no_fragments_unless_both_announce():
    net, pa, pb = cert_pair(("a-rsa",), ("b-rsa",), a_settings=Settings(fragmentation=True))
    counts = skf_counter(net)
    establish(net, pa)
    assert_up(net)
    assert counts["skf"] == 0 and max(counts["sizes"]) > 1000


def test_fragment_size_setting():
    net, pa, pb = cert_pair(
        ("a-rsa",), ("b-rsa",), settings=Settings(fragmentation=True, fragment_size=1280)
    )
    counts = skf_counter(net)
    establish(net, pa)
    assert_up(net)
    assert 0 < counts["skf"] <= 6 and max(counts["sizes"]) == 1280 - 28


def test_replayed_fragments_resend_the_response_only_for_the_first():
    net, pa, pb = cert_pair(("a-rsa",), ("b-rsa",), settings=Settings(fragmentation=True))
    requests = []

    def tap(data, src, dst):
        message = wire.decode(data)
        if (
            dst[0] == B_IP
            and message.payloads[-1].payload_type == PayloadType.SKF
            and message.message_id == 1
        ):
            requests.append((data, src, dst))
        return data

    net.tap = tap
    establish(net, pa)
    assert_up(net)
    b = net.engines[B_IP]
    assert len(requests) >= 3
    for data, src, dst in sorted(
        requests, key=lambda r: -wire.decode(r[0]).payloads[-1].fragment_number
    ):
        b.receive_datagram(data, dst, src, net.now)
        sent = b.datagrams_to_send()
        number = wire.decode(data).payloads[-1].fragment_number
        # RFC 7383 §2.6.1: the whole (fragmented) response again for fragment 1 only
        assert (len(sent) > 1) == (number == 1), number
    assert len(net.of_type(B_IP, IkeSAUp)) == 1
