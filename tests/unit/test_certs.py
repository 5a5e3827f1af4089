"""The certificate store: CERTREQ hashes (checked against strongSwan's `pki --keyid`), the
OpenIKED directory layout, chain validation with CRLs, and ID/subjectAltName matching."""

import datetime
import os
import random
import shutil

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pyiked._fast import wire
from pyiked.config.identity import parse_identity
from pyiked.core import certs
from pyiked.core.certs import CertStore, CertStoreError, identity_in_cert, parse_certreq, spki_sha1
from pyiked.core.errors import AuthenticationFailed
from pyiked.core.iana import CertEncoding
from tests.engine.rw import NOW, PKI, cert, key, store

KEYIDS = dict(line.split() for line in (PKI / "keyids.txt").read_text().splitlines())


def der(name):
    return cert(name).public_bytes(serialization.Encoding.DER)


def payloads(*names):
    return [wire.CERT(CertEncoding.X509_SIGNATURE, der(n)) for n in names]


@pytest.mark.parametrize("ca", sorted(KEYIDS))
def test_certreq_hash_is_sha1_of_the_spki_as_strongswan_computes_it(ca):
    assert spki_sha1(cert(ca)).hex() == KEYIDS[ca]


def test_certreq_data_lists_every_ca_and_parses_back():
    s = store((), ("ca-ec", "ca-rsa"), ("int-ec",))
    hashes_ = parse_certreq(s.certreq_data())
    assert [h.hex() for h in hashes_] == [KEYIDS["ca-ec"], KEYIDS["ca-rsa"], KEYIDS["int-ec"]]
    assert parse_certreq(s.certreq_data()[:-1]) == []  # not a multiple of 20: ignored
    assert parse_certreq(b"") == []


# -- the directory layout --------------------------------------------------------------


def layout(
    tmp_path,
    ca=("ca-ec", "ca-rsa"),
    certs_=("a-ec", "a-rsa"),
    keys=("a-ec", "a-rsa"),
    crls=(),
    mode=0o600,
):
    root = tmp_path / "iked"
    for d in ("ca", "certs", "private", "crls"):
        (root / d).mkdir(parents=True)
    for n in ca:
        shutil.copy(PKI / f"{n}.crt", root / "ca" / f"{n}.crt")
    for n in certs_:
        shutil.copy(PKI / f"{n}.crt", root / "certs" / f"{n}.crt")
    for i, n in enumerate(keys):
        target = root / "private" / ("local.key" if i == 0 else f"{n}.key")
        shutil.copy(PKI / f"{n}.key", target)
        os.chmod(target, mode)
    for n in crls:
        shutil.copy(PKI / f"{n}.crl", root / "crls" / f"{n}.crl")
    return str(root)


def test_load_the_openiked_layout(tmp_path):
    root = layout(
        tmp_path,
        ca=("ca-ec", "ca-rsa", "int-ec"),
        certs_=("a-ec", "a-rsa", "b-ec"),
        keys=("a-ec", "a-rsa", "b-ec"),
        crls=("ca-ec",),
    )
    s = CertStore.load(root, clock=lambda: NOW)
    assert [c.subject for c in s.anchors] == [cert("ca-ec").subject, cert("ca-rsa").subject]
    assert [c.subject for c in s.intermediates] == [cert("int-ec").subject]  # not self-signed
    assert [c.cert.subject for c in s.credentials] == [
        cert(n).subject for n in ("a-ec", "a-rsa", "b-ec")
    ]
    b_ec = s.credentials[2]
    assert b_ec.chain == (cert("int-ec"),) and b_ec.der_chain == [der("b-ec"), der("int-ec")]
    assert b_ec.ca_hashes == {bytes.fromhex(KEYIDS["int-ec"]), bytes.fromhex(KEYIDS["ca-ec"])}
    assert len(s.crls) == 1


def test_a_private_key_others_may_read_is_refused(tmp_path):
    root = layout(tmp_path, mode=0o644)
    with pytest.raises(CertStoreError, match="refusing the private key"):
        CertStore.load(root)


def test_partial_chain_trusts_every_certificate_in_ca(tmp_path):
    root = layout(tmp_path, ca=("int-ec",), certs_=(), keys=())
    assert CertStore.load(root).anchors == []
    partial = CertStore.load(root, partial_chain=True, clock=lambda: NOW)
    assert partial.anchors == [cert("int-ec")]
    assert partial.validate(cert("b-ec"))[-1] == cert("int-ec")


def test_unreadable_files_are_skipped(tmp_path):
    root = layout(tmp_path, certs_=(), keys=())
    (tmp_path / "iked" / "ca" / "junk.pem").write_text("-----BEGIN CERTIFICATE-----\nnope\n")
    assert len(CertStore.load(root).anchors) == 2


# -- choosing what we send ----------------------------------------------------------------


def test_certreq_steers_which_certificate_we_send():
    s = store(("a-ec", "a-rsa"))
    assert s.choose(None).cert == cert("a-ec")  # no CERTREQ: the first
    assert s.choose(None, [bytes.fromhex(KEYIDS["ca-rsa"])]).cert == cert("a-rsa")
    assert s.choose(None, [bytes.fromhex(KEYIDS["ca-ec"])]).cert == cert("a-ec")
    assert s.choose(None, [bytes.fromhex(KEYIDS["ca-x"])]).cert == cert("a-ec")  # a hint only
    assert s.choose(parse_identity("a-rsa.pk.test"), [bytes.fromhex(KEYIDS["ca-ec"])]).cert == cert(
        "a-rsa"
    )
    assert s.choose(parse_identity("nobody.pk.test")) is None
    assert s.choose(
        None, key_filter=lambda k: not isinstance(k, ec.EllipticCurvePrivateKey)
    ).cert == cert("a-rsa")


# -- identities ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, matches",
    [
        ("a-ec.pk.test", True),
        ("A-EC.PK.Test", True),  # DNS names compare case-insensitively
        ("b-ec.pk.test", False),
        ("C=XX, O=pk-test, CN=a-ec.pk.test", True),  # the subject DN
        ("/C=XX/O=pk-test/CN=a-ec.pk.test", True),
        ("C=XX, O=pk-test, CN=b-ec.pk.test", False),
        ("10.231.0.1", True),  # iPAddress SAN
        ("10.231.0.2", False),
        ("alice@pk.test", True),  # rfc822Name SAN
        ("alice@PK.TEST", True),  # the domain part is case-insensitive (RFC 5280 §4.2.1.6)
        ("Alice@pk.test", False),  # the local part is not
        ("keyid:#0a01", False),
    ],
)
def test_ids_match_subject_and_subject_alt_names(text, matches):
    assert identity_in_cert(parse_identity(text), cert("a-ec")) is matches


def test_subject_identity_is_the_dn():
    ident = certs.subject_identity(cert("a-ec"))
    assert str(ident) == "C=XX, O=pk-test, CN=a-ec.pk.test"
    assert identity_in_cert(ident, cert("a-ec"))


# -- validating what we receive --------------------------------------------------------------


@pytest.mark.parametrize(
    "leaf, extra",
    [("a-ec", ()), ("a-rsa", ()), ("p384", ()), ("p521", ()), ("ed", ()), ("b-ec", ("int-ec",))],
)
def test_valid_chains(leaf, extra):
    s = store()
    chain = s.validate(cert(leaf), [cert(n) for n in extra])
    assert chain[0] == cert(leaf) and chain[-1] in (cert("ca-ec"), cert("ca-rsa"))


@pytest.mark.parametrize(
    "leaf, extra, reason",
    [
        ("x", (), "not trusted"),  # unknown CA
        ("old", (), "not trusted"),  # expired in 2021
        ("b-ec", (), "not trusted"),  # the intermediate is missing
    ],
)
def test_invalid_chains(leaf, extra, reason):
    with pytest.raises(AuthenticationFailed, match=reason):
        store().validate(cert(leaf), [cert(n) for n in extra])


def test_revoked_by_crl():
    s = store(crls=("ca-ec",))
    with pytest.raises(AuthenticationFailed, match="revoked"):
        s.validate(cert("revoked"))
    s.validate(cert("a-ec"))  # the same CRL does not list it


def test_a_crl_not_signed_by_the_issuer_revokes_nothing():
    other = ec.generate_private_key(ec.SECP256R1())
    forged = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(cert("ca-ec").subject)
        .last_update(NOW - datetime.timedelta(days=1))
        .next_update(NOW + datetime.timedelta(days=1))
        .add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(cert("a-ec").serial_number)
            .revocation_date(NOW - datetime.timedelta(days=1))
            .build()
        )
        .sign(other, hashes.SHA256())
    )
    s = store()
    s.crls.append(forged)
    s.validate(cert("a-ec"))


def test_key_usage_without_digital_signature_is_refused():
    ca_key = key("ca-ec")
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "encipher-only.pk.test")])
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(cert("ca-ec").subject)
        .public_key(leaf_key.public_key())
        .serial_number(77)
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=1))
        .add_extension(
            x509.KeyUsage(False, False, True, False, False, False, False, False, False), True
        )
        .sign(ca_key, hashes.SHA256())
    )
    with pytest.raises(AuthenticationFailed, match="not trusted"):
        store().validate(leaf)


def test_peer_certificate_from_cert_payloads():
    s = store()
    ident = parse_identity("b-ec.pk.test")
    assert s.peer_certificate(payloads("b-ec", "int-ec"), ident) == cert("b-ec")
    with pytest.raises(AuthenticationFailed, match="does not contain the peer ID"):
        s.peer_certificate(payloads("a-ec"), ident)
    with pytest.raises(AuthenticationFailed, match="malformed certificate"):
        s.peer_certificate([wire.CERT(CertEncoding.X509_SIGNATURE, b"\x30\x03junk")], ident)
    with pytest.raises(AuthenticationFailed, match="none on file"):
        s.peer_certificate([], ident)
    on_file = store(others=("b-ec",), intermediates=("int-ec",))
    assert on_file.peer_certificate([], ident) == cert("b-ec")  # OpenIKED's certs/ lookup
    # other encodings are skipped (hash and URL is not supported)
    with pytest.raises(AuthenticationFailed):
        s.peer_certificate([wire.CERT(CertEncoding.HASH_AND_URL_X509_CERT, b"x" * 20)], ident)


def test_no_trusted_ca():
    with pytest.raises(AuthenticationFailed, match="no trusted CA"):
        store(cas=()).validate(cert("a-ec"))


# -- hostile input --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_mutated_certificates_only_fail_authentication(seed):
    """Byte mutations of real certificates: whatever cryptography makes of them (at load
    or lazily, when an extension or a name is first read), the answer is a refusal."""
    rng = random.Random(seed)
    s = store(intermediates=("int-ec",), crls=("ca-ec",))
    outcomes = set()
    for _ in range(1000):
        name = rng.choice(["a-ec", "b-ec", "a-rsa", "ed"])
        blob = bytearray(der(name))
        for _ in range(rng.randint(1, 3)):
            blob[rng.randrange(len(blob))] = rng.randrange(256)
        if bytes(blob) == der(name):
            continue  # the "mutation" wrote the same octets
        try:
            s.peer_certificate(payloads_of(bytes(blob)), parse_identity(f"{name}.pk.test"))
            outcomes.add("accepted")
        except AuthenticationFailed as exc:
            outcomes.add(str(exc).split(":")[1].strip().split(" ")[0])
    assert "accepted" not in outcomes
    assert {"malformed", "certificate"} <= outcomes  # parse errors, and refused chains


def payloads_of(blob):
    return [wire.CERT(CertEncoding.X509_SIGNATURE, blob)]
