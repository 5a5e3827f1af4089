"""The memos on the responder's handshake path (bench/handshake.py measured them) answer
exactly what the uncached code answers: proposal selection per offer, a policy's flow
selectors, address keys, NAT detection hashes."""

import dataclasses
import hashlib
import ipaddress

import pytest

from pyiked._fast import wire
from pyiked.config import PolicyStore, flow_selectors, parse_config_text
from pyiked.config.store import _addr_key
from pyiked.core import nat, proposals
from pyiked.core.errors import NoProposalChosen
from pyiked.core.iana import EncrId, EsnId, IntegId, KeId, PrfId, ProtocolId, TransformType as T

CONF = """\
ikev2 "a" passive esp from 10.1.0.0/16 to 10.2.0.0/16 peer any \\
    ikesa enc aes-256-gcm prf hmac-sha2-256 group curve25519 \\
    childsa enc aes-256-gcm \\
    childsa enc aes-128 auth hmac-sha2-256 \\
    psk "x"
"""


def policy():
    config, _ = parse_config_text(CONF)
    return config.policies[0]


def esp_offer(spi: bytes, gcm=True):
    if gcm:
        transforms = [wire.Transform(T.ENCR, EncrId.AES_GCM_16, 256)]
    else:
        transforms = [wire.Transform(T.ENCR, EncrId.AES_CBC, 128),
                      wire.Transform(T.INTEG, IntegId.HMAC_SHA2_256_128)]
    transforms.append(wire.Transform(T.ESN, EsnId.NO_ESN))
    return wire.SA([wire.Proposal(1, ProtocolId.ESP, spi, transforms)])


def test_repeated_offers_keep_their_own_spi():
    specs = policy().child_proposals_or_default
    first = proposals.select(esp_offer(b"\x01\x02\x03\x04"), specs, ProtocolId.ESP)
    second = proposals.select(esp_offer(b"\x05\x06\x07\x08"), specs, ProtocolId.ESP)
    assert first.spi == b"\x01\x02\x03\x04" and second.spi == b"\x05\x06\x07\x08"
    assert dataclasses.replace(first, spi=b"") == dataclasses.replace(second, spi=b"")
    assert first.encr_id == EncrId.AES_GCM_16 and first.encr_key_bits == 256


def test_a_different_offer_gets_its_own_answer():
    specs = policy().child_proposals_or_default
    gcm = proposals.select(esp_offer(b"\x00\x00\x01\x00"), specs, ProtocolId.ESP)
    cbc = proposals.select(esp_offer(b"\x00\x00\x01\x00", gcm=False), specs, ProtocolId.ESP)
    assert (gcm.encr_id, gcm.integ_id) == (EncrId.AES_GCM_16, 0)
    assert (cbc.encr_id, cbc.encr_key_bits, cbc.integ_id) == (
        EncrId.AES_CBC, 128, IntegId.HMAC_SHA2_256_128)


def test_a_refused_offer_stays_refused():
    specs = policy().ike_proposals_or_default
    offer = wire.SA([wire.Proposal(1, ProtocolId.IKE, b"", [
        wire.Transform(T.ENCR, EncrId.AES_CBC, 128),
        wire.Transform(T.PRF, PrfId.HMAC_SHA2_256),
        wire.Transform(T.INTEG, IntegId.HMAC_SHA2_256_128),
        wire.Transform(T.KE, KeId.MODP2048)])])
    for _ in range(2):
        with pytest.raises(NoProposalChosen):
            proposals.select(offer, specs, ProtocolId.IKE)


def test_the_answer_belongs_to_the_configuration():
    offer = esp_offer(b"\x00\x00\x02\x00", gcm=False)
    specs = policy().child_proposals_or_default
    assert proposals.select(offer, specs, ProtocolId.ESP).encr_id == EncrId.AES_CBC
    gcm_only = tuple(s for s in specs if s.encr[0][0] == EncrId.AES_GCM_16)
    with pytest.raises(NoProposalChosen):
        proposals.select(offer, gcm_only, ProtocolId.ESP)


def test_flow_selectors_are_computed_once_but_handed_out_fresh():
    p = policy()
    local, remote = flow_selectors(p)
    assert [str(t) for t in local] == ["10.1.0.0/16"] and [str(t) for t in remote] == ["10.2.0.0/16"]
    local.clear()
    again = flow_selectors(p)
    assert [str(t) for t in again[0]] == ["10.1.0.0/16"]
    other = dataclasses.replace(p, flows=(dataclasses.replace(p.flows[0], dst=ipaddress.ip_network("10.3.0.0/16")),))
    assert [str(t) for t in flow_selectors(other)[1]] == ["10.3.0.0/16"]
    assert [str(t) for t in flow_selectors(p)[1]] == ["10.2.0.0/16"]
    store = PolicyStore(parse_config_text(CONF)[0])
    assert store.flow_selectors(store.policies[0]) == flow_selectors(store.policies[0])


@pytest.mark.parametrize("text", ["10.231.0.2", "192.0.2.255", "2001:db8::1", "::ffff:10.0.0.1"])
def test_address_keys(text):
    ip = ipaddress.ip_address(text)
    assert _addr_key(text) == (ip.version, int(ip)) == _addr_key(ip) == _addr_key((text, 500))


@pytest.mark.parametrize("ip", ["10.231.0.1", "2001:db8::5"])
def test_nat_hash_is_sha1_of_spis_address_port(ip):
    # RFC 7296 §2.23: SHA-1(SPIi | SPIr | IP | Port), the address in network order
    spi_i, spi_r = bytes(range(8)), bytes(range(8, 16))
    expected = hashlib.sha1(spi_i + spi_r + ipaddress.ip_address(ip).packed + (4500).to_bytes(2, "big")).digest()
    assert nat.nat_hash(spi_i, spi_r, ip, 4500) == expected


def test_child_offers_are_remembered_ignoring_ke(monkeypatch):
    # IKE_AUTH's CHILD SA ignores KE transforms on both sides (§1.2): an offer with a KE
    # method and one without choose alike, and the second of each is a cache hit
    calls = []
    real = proposals._select
    monkeypatch.setattr(proposals, "_select", lambda *a: calls.append(a) or real(*a))
    specs = policy().child_proposals_or_default
    with_ke = esp_offer(b"\x00\x00\x03\x00")
    with_ke.proposals[0].transforms.insert(1, wire.Transform(T.KE, KeId.CURVE25519))
    first, spi1 = proposals.choose(esp_offer(b"\x00\x00\x03\x01"), specs, ProtocolId.ESP, ignore_ke=True)
    second, spi2 = proposals.choose(esp_offer(b"\x00\x00\x03\x02"), specs, ProtocolId.ESP, ignore_ke=True)
    third, spi3 = proposals.choose(with_ke, specs, ProtocolId.ESP, ignore_ke=True)
    assert first is second is third and first.spi == b"" and first.ke_id == 0
    assert (spi1, spi2, spi3) == (b"\x00\x00\x03\x01", b"\x00\x00\x03\x02", b"\x00\x00\x03\x00")
    assert len(calls) == 2  # one per distinct offer
    with pytest.raises(NoProposalChosen):  # without ignore_ke a KE offer needs a PFS spec
        proposals.choose(with_ke, specs, ProtocolId.ESP)


def test_suite_allowed_is_remembered_and_right():
    from pyiked.core.engine import Engine

    store = PolicyStore(parse_config_text(CONF)[0])
    engine = Engine(store)
    p = store.policies[0]
    offer = wire.SA([wire.Proposal(1, ProtocolId.IKE, b"", [
        wire.Transform(T.ENCR, EncrId.AES_GCM_16, 256), wire.Transform(T.PRF, PrfId.HMAC_SHA2_256),
        wire.Transform(T.KE, KeId.CURVE25519)])])
    suite = proposals.select(offer, p.ike_proposals_or_default, ProtocolId.IKE)
    assert engine.suite_allowed(p, suite) and engine.suite_allowed(p, suite)
    other = dataclasses.replace(suite, encr_id=EncrId.AES_CBC, encr_key_bits=128,
                                integ_id=IntegId.HMAC_SHA2_256_128)
    assert not engine.suite_allowed(p, other) and not engine.suite_allowed(p, other)


def test_psk_pad_key_is_the_key_pad_prf():
    from pyiked.core import keys

    psk, octets = b"pk-test-psk-0123456789", bytes(range(200))
    for prf_id in (PrfId.HMAC_SHA2_256, PrfId.HMAC_SHA2_512, PrfId.AES128_XCBC):
        pad = keys.psk_pad_key(prf_id, psk)
        assert pad == keys.prf(prf_id, psk, b"Key Pad for IKEv2") and keys.psk_pad_key(prf_id, psk) is pad
        assert keys.prf(prf_id, pad, octets) == keys.psk_auth(prf_id, psk, octets)


def test_certificate_memos_answer_as_before():
    import os as _os

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    from pyiked.config.identity import parse_identity
    from pyiked.core.auth import signature
    from pyiked.core.certs import CertStore

    pki = _os.path.join(_os.path.dirname(__file__), "..", "data", "pki")

    def cert(name):
        with open(_os.path.join(pki, f"{name}.crt"), "rb") as f:
            return x509.load_pem_x509_certificate(f.read())

    with open(_os.path.join(pki, "b-ec.key"), "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    store = CertStore([cert("ca-ec")], [cert("int-ec")], [key], [cert("b-ec")])
    (cred,) = store.credentials
    expected = [c.public_bytes(serialization.Encoding.DER) for c in (cred.cert, *cred.chain)]
    assert cred.der_chain == expected and cred.der_chain == expected  # encoded once, same bytes
    ident = parse_identity("b-ec.pk.test")
    fits = lambda k: signature.key_fits_policy(k, "ecdsa256")  # noqa: E731
    assert store.choose(ident, key_filter=fits, cache_key=("fits", "ecdsa256")) is cred
    assert store.choose(ident, key_filter=fits, cache_key=("fits", "ecdsa256")) is cred
    assert store.choose(parse_identity("other.test"), key_filter=fits, cache_key=("fits", "ecdsa256")) is None
    refuse = lambda k: False  # noqa: E731
    assert store.choose(ident, key_filter=refuse, cache_key=("none",)) is None
    for k in (key, key.public_key(), ec.generate_private_key(ec.SECP384R1()),
              ed25519.Ed25519PrivateKey.generate()):
        assert signature.key_kind(k) == signature.key_kind(k) == (
            "ed25519" if isinstance(k, ed25519.Ed25519PrivateKey) else "ec:" + k.curve.name)
