"""Real strongSwan 5.9.8 exchanges (tests/data/strongswan): every IKE message decodes to
the payloads strongSwan sent, re-encodes to the same octets, and the SK bodies (decrypted
with the keys from the charon logs) decode as inner chains the same way."""

import pytest

from pyiked._fast import wire
from pyiked.core.iana import (
    AuthMethod,
    CertEncoding,
    EncrId,
    EsnId,
    ExchangeType,
    HashAlgorithm,
    IDType,
    IntegId,
    KeId,
    PayloadType,
    PrfId,
    ProtocolId,
    TSType,
    NotifyType as NT,
    TransformType as TT,
)
from tests.unit.wire_data import CAPTURES, decrypt_sk, ike_messages

SPIS = {
    "gcm": (bytes.fromhex("956f6e419d23e09c"), bytes.fromhex("186a67fe565be0ce")),
    "cbc": (bytes.fromhex("799c354d93e760c6"), bytes.fromhex("c7111e96e4612a60")),
}
# aes256gcm16-prfsha256-x25519 / aes128-sha256-modp2048 (tests/data/strongswan/README.md)
IKE_TRANSFORMS = {
    "gcm": [(TT.ENCR, EncrId.AES_GCM_16, 256), (TT.PRF, PrfId.HMAC_SHA2_256, None),
            (TT.KE, KeId.CURVE25519, None)],
    "cbc": [(TT.ENCR, EncrId.AES_CBC, 128), (TT.INTEG, IntegId.HMAC_SHA2_256_128, None),
            (TT.PRF, PrfId.HMAC_SHA2_256, None), (TT.KE, KeId.MODP2048, None)],
}
ESP_TRANSFORMS = {
    "gcm": [(TT.ENCR, EncrId.AES_GCM_16, 256), (TT.ESN, EsnId.NO_ESN, None)],
    "cbc": [(TT.ENCR, EncrId.AES_CBC, 128), (TT.INTEG, IntegId.HMAC_SHA2_256_128, None),
            (TT.ESN, EsnId.NO_ESN, None)],
}
KE_SIZE = {"gcm": 32, "cbc": 256}
INIT_NOTIFIES_I = [NT.NAT_DETECTION_SOURCE_IP, NT.NAT_DETECTION_DESTINATION_IP,
                   NT.IKEV2_FRAGMENTATION_SUPPORTED, NT.SIGNATURE_HASH_ALGORITHMS,
                   NT.REDIRECT_SUPPORTED]
INIT_NOTIFIES_R = [NT.NAT_DETECTION_SOURCE_IP, NT.NAT_DETECTION_DESTINATION_IP,
                   NT.IKEV2_FRAGMENTATION_SUPPORTED, NT.SIGNATURE_HASH_ALGORITHMS,
                   NT.CHILDLESS_IKEV2_SUPPORTED, NT.MULTIPLE_AUTH_SUPPORTED]
TS_I = (bytes([10, 231, 1, 0]), bytes([10, 231, 1, 255]))
TS_R = (bytes([10, 231, 2, 0]), bytes([10, 231, 2, 255]))


def messages(capture):
    return [(d, raw, wire.decode(raw)) for d, raw in ike_messages(capture)]


def transforms(proposal):
    return [(t.type, t.id, t.key_length) for t in proposal.transforms]


def notify_types(payloads):
    return [p.type for p in payloads if type(p) is wire.Notify]


@pytest.mark.parametrize("capture", CAPTURES)
def test_every_message_round_trips(capture):
    msgs = messages(capture)
    assert len(msgs) == 10
    for d, raw, m in msgs:
        assert wire.encode(m) == raw, (capture, d.index)
        spi_i, spi_r = SPIS[capture]
        assert (m.spi_i, m.spi_r) == (spi_i, bytes(8) if d.index == 0 else spi_r)
        assert m.version == 0x20
        assert m.is_initiator == (d.src == "10.231.0.1")  # the original initiator


@pytest.mark.parametrize("capture", CAPTURES)
def test_ike_sa_init(capture):
    (_, _, req), (_, _, resp) = messages(capture)[:2]
    for m, notifies, mid in ((req, INIT_NOTIFIES_I, 0), (resp, INIT_NOTIFIES_R, 0)):
        assert m.exchange_type == ExchangeType.IKE_SA_INIT and m.message_id == mid
        sa, ke, nonce = m.payloads[:3]
        assert type(sa) is wire.SA and len(sa.proposals) == 1
        prop = sa.proposals[0]
        assert (prop.num, prop.protocol_id, prop.spi) == (1, ProtocolId.IKE, b"")
        assert transforms(prop) == IKE_TRANSFORMS[capture]
        assert ke.group == IKE_TRANSFORMS[capture][-1][1] and len(ke.data) == KE_SIZE[capture]
        assert len(nonce.data) == 32
        assert notify_types(m.payloads) == notifies
        assert m.notify(NT.SIGNATURE_HASH_ALGORITHMS).value == [
            HashAlgorithm.SHA2_256, HashAlgorithm.SHA2_384, HashAlgorithm.SHA2_512,
            HashAlgorithm.IDENTITY]
        assert len(m.notify(NT.NAT_DETECTION_SOURCE_IP).value) == 20
        assert m.notify(NT.IKEV2_FRAGMENTATION_SUPPORTED).value is None
    assert (req.is_initiator, req.is_response) == (True, False)
    assert (resp.is_initiator, resp.is_response) == (False, True)
    certreq = resp.get(wire.CERTREQ)
    # two trusted CAs (RSA, ECDSA): two SHA-1 hashes of their public keys (§3.7)
    assert certreq.encoding == CertEncoding.X509_SIGNATURE and len(certreq.data) == 40
    assert req.get(wire.CERTREQ) is None


def _inner(capture, raw, m):
    sk = m.payloads[-1]
    assert type(sk) is wire.SK and len(m.payloads) == 1
    assert sk.offset == 28
    inner = decrypt_sk(capture, raw, sk.offset, m.is_initiator)
    payloads = wire.decode_payloads(inner, sk.next_payload)
    assert wire.encode_payloads(payloads) == inner
    if payloads:
        assert payloads[0].payload_type == sk.next_payload
    return sk, payloads


@pytest.mark.parametrize("capture", CAPTURES)
def test_ike_auth(capture):
    (_, raw_i, req), (_, raw_r, resp) = [m for m in messages(capture)
                                         if m[2].exchange_type == ExchangeType.IKE_AUTH]
    assert (req.message_id, resp.message_id) == (1, 1)
    sk, inner = _inner(capture, raw_i, req)
    assert sk.next_payload == PayloadType.IDi
    assert [type(p).__name__ for p in inner] == [
        "IDi", "Notify", "CERTREQ", "IDr", "AUTH", "SA", "TSi", "TSr",
        "Notify", "Notify", "Notify", "Notify", "Notify"]
    idi, idr, auth = inner[0], inner[3], inner[4]
    assert (idi.id_type, idi.value) == (IDType.ID_FQDN, "a.pk.test")
    assert (idr.id_type, idr.value) == (IDType.ID_FQDN, "b.pk.test")
    assert auth.method == AuthMethod.SHARED_KEY_MIC and len(auth.data) == 32  # prf SHA2-256
    assert notify_types(inner) == [NT.INITIAL_CONTACT, NT.MOBIKE_SUPPORTED,
                                   NT.NO_ADDITIONAL_ADDRESSES, NT.MULTIPLE_AUTH_SUPPORTED,
                                   NT.EAP_ONLY_AUTHENTICATION, NT.IKEV2_MESSAGE_ID_SYNC_SUPPORTED]
    _check_child(capture, inner)

    sk, inner = _inner(capture, raw_r, resp)
    assert sk.next_payload == PayloadType.IDr
    assert [type(p).__name__ for p in inner] == [
        "IDr", "AUTH", "SA", "TSi", "TSr", "Notify", "Notify"]
    assert inner[1].method == AuthMethod.SHARED_KEY_MIC
    _check_child(capture, inner)


def _check_child(capture, inner):
    sa = next(p for p in inner if type(p) is wire.SA)
    (prop,) = sa.proposals
    assert prop.protocol_id == ProtocolId.ESP and len(prop.spi) == 4
    assert transforms(prop) == ESP_TRANSFORMS[capture]
    for cls, (start, end) in ((wire.TSi, TS_I), (wire.TSr, TS_R)):
        (ts,) = next(p for p in inner if type(p) is cls).selectors
        assert (ts.ts_type, ts.ip_protocol, ts.start_port, ts.end_port) == (
            TSType.TS_IPV4_ADDR_RANGE, 0, 0, 65535)
        assert (ts.start_addr, ts.end_addr) == (start, end)


@pytest.mark.parametrize("capture", CAPTURES)
def test_informational(capture):
    infos = [m for m in messages(capture) if m[2].exchange_type == ExchangeType.INFORMATIONAL]
    assert len(infos) == 6
    seen = []
    for _, raw, m in infos:
        sk, inner = _inner(capture, raw, m)
        if m.is_response:
            assert sk.next_payload == 0 and inner == []  # empty acknowledgements
        else:
            seen.append([type(p).__name__ for p in inner])
            if inner and type(inner[0]) is wire.Notify:
                assert inner[0].type == NT.NO_ADDITIONAL_ADDRESSES  # MOBIKE update
            if inner and type(inner[0]) is wire.Delete:
                assert (inner[0].protocol_id, inner[0].spis) == (ProtocolId.IKE, [])
    assert seen == [["Notify"], ["Notify"], ["Delete"]]
