"""The certificate store: OpenIKED's directory layout, CERTREQ hashes, chain validation.

Layout under a root (OpenIKED: /etc/iked; pyiked's `--iked-dir`):

    ca/                 trusted CA certificates (PEM or DER, several per PEM file)
    certs/              our certificates and intermediate CAs; also peers' certificates,
                        used when a peer sends none
    private/local.key   our private key (more *.key files may sit next to it: a gateway
                        with an RSA and an ECDSA certificate); refused if others may read it
    crls/               certificate revocation lists (PEM or DER)

Self-signed certificates in ca/ are the trust anchors; other CA certificates there or in
certs/ are intermediates (with `set cert_partial_chain`, every certificate in ca/ is an
anchor, as OpenIKED's X509_V_FLAG_PARTIAL_CHAIN).

RFC 7296 §3.7: a CERTREQ of encoding X.509 Signature carries the SHA-1 hashes of the
SubjectPublicKeyInfo of the CAs we trust; the peer's CERTREQ steers which of our
certificates we send (§3.6: with the intermediates up to, not including, the anchor).

Peer validation uses cryptography.x509.verification (RFC 5280 path building, validity,
the web PKI's CA rules), with the end-entity rules relaxed to what IKE needs (RFC 4945
§5.1.3: no subjectAltName or EKU requirement, digitalSignature when keyUsage is present),
then CRLs from crls/. An Ed25519/Ed448 *CA* is refused by cryptography's verifier (its
web PKI profile has no EdDSA); Ed25519 end-entity keys (RFC 8420) work.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import logging
import os
import warnings
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import verification
from cryptography.x509.oid import NameOID

from pyiked.config.model import Identity
from pyiked.config.values import secrecy_problem

from .errors import AuthenticationFailed
from .iana import CertEncoding, IDType
from .identity import dn_attributes, identity_from_payload

log = logging.getLogger("pyiked.ca")

DEFAULT_ROOT = "/etc/iked"
CERTREQ_HASH_LEN = 20
MAX_PEER_CERTS = 16  # CERT payloads we look at in one message
MAX_CHAIN_DEPTH = 8


# What cryptography raises, at load time or lazily when a field is first read, for a
# certificate that is not well formed (an unknown string tag in a name is a KeyError).
_PARSE_ERRORS = (
    ValueError,
    KeyError,
    TypeError,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
)


class CertStoreError(Exception):
    """A problem with the store's files (not a protocol error)."""


def spki_sha1(cert: x509.Certificate) -> bytes:
    """RFC 7296 §3.7: SHA-1 of the DER SubjectPublicKeyInfo."""
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha1(spki).digest()


def parse_certreq(data: bytes) -> list[bytes]:
    """The CA hashes of one X.509 Signature CERTREQ; a length that is not a multiple of 20
    makes the whole payload meaningless, so it is ignored (empty list)."""
    data = bytes(data)
    if len(data) % CERTREQ_HASH_LEN:
        return []
    return [data[i : i + CERTREQ_HASH_LEN] for i in range(0, len(data), CERTREQ_HASH_LEN)]


def _is_ca(cert) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except (x509.ExtensionNotFound, *_PARSE_ERRORS):
        return False


def _self_signed(cert) -> bool:
    return _issued_by(cert, cert)


def _issued_by(cert, issuer) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def _load_certs(path: str) -> list[x509.Certificate]:
    with open(path, "rb") as fh:
        data = fh.read()
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificates(data)
    return [x509.load_der_x509_certificate(data)]


def _load_crl(path: str) -> x509.CertificateRevocationList:
    with open(path, "rb") as fh:
        data = fh.read()
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_crl(data)
    return x509.load_der_x509_crl(data)


def _files(directory: str) -> list[str]:
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return []
    return [
        os.path.join(directory, n)
        for n in names
        if not n.startswith(".") and os.path.isfile(os.path.join(directory, n))
    ]


def load_private_key(path: str, check_secrecy: bool = True):
    """A PEM or DER private key; CertStoreError when others may read it (as iked)."""
    with open(path, "rb") as fh:
        st = os.fstat(fh.fileno())
        problem = secrecy_problem(path, st) if check_secrecy else None
        if problem:
            raise CertStoreError(f"{path}: {problem}: refusing the private key")
        data = fh.read()
    try:
        if b"-----BEGIN" in data:
            return serialization.load_pem_private_key(data, password=None)
        return serialization.load_der_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise CertStoreError(f"{path}: not a usable unencrypted private key ({exc})") from None


def _public_der(key) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# -- identities and certificates -------------------------------------------------------


def _san(cert):
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None


def identity_in_cert(ident: Identity, cert: x509.Certificate) -> bool:
    """Whether an IKE ID names the certificate's subject (RFC 4945 §3.1, as OpenIKED and
    strongSwan match): a DN against the subject (attribute by attribute) or a directoryName
    SAN; an FQDN, USER_FQDN or IP address against the subjectAltName of that type."""
    id_type = ident.id_type
    san = _san(cert)
    if id_type == IDType.ID_DER_ASN1_DN:
        wanted = dn_attributes(ident.data)
        if wanted is None:
            return False
        names = [cert.subject] + (san.get_values_for_type(x509.DirectoryName) if san else [])
        return any(dn_attributes(n.public_bytes()) == wanted for n in names)
    if san is None:
        return False
    try:
        text = ident.data.decode("ascii")
    except UnicodeDecodeError:
        text = None
    if id_type == IDType.ID_FQDN and text is not None:
        return any(
            text.rstrip(".").lower() == n.rstrip(".").lower()
            for n in san.get_values_for_type(x509.DNSName)
        )
    if id_type == IDType.ID_RFC822_ADDR and text is not None:
        local, _, domain = text.rpartition("@")
        for name in san.get_values_for_type(x509.RFC822Name):
            n_local, _, n_domain = name.rpartition("@")
            if n_local == local and n_domain.lower() == domain.lower():  # RFC 5280 §4.2.1.6
                return True
        return False
    if id_type in (IDType.ID_IPV4_ADDR, IDType.ID_IPV6_ADDR) and len(ident.data) in (4, 16):
        address = ipaddress.ip_address(ident.data)
        return address in san.get_values_for_type(x509.IPAddress)
    return False


def subject_identity(cert: x509.Certificate) -> Identity:
    """The ID a certificate holder uses when none is configured: its subject DN."""
    return identity_from_payload(IDType.ID_DER_ASN1_DN, cert.subject.public_bytes())


def describe(cert: x509.Certificate) -> str:
    """The certificate's CN (or subject) for logs; never raises on a malformed name."""
    try:
        cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        text = str(cn[0].value) if cn else cert.subject.rfc4514_string()
    except _PARSE_ERRORS:
        return "<malformed subject>"
    return '"' + "".join(c if c.isprintable() else "?" for c in text[:128]) + '"'


@dataclass(slots=True, eq=False)
class Credential:
    """One of our certificates, its private key and the intermediates we send with it."""

    cert: x509.Certificate
    key: object = field(repr=False)
    chain: tuple = ()  # intermediates, leaf's issuer first
    ca_hashes: frozenset = frozenset()  # SPKI SHA-1 of every CA above the leaf
    _der: tuple = field(default=(), repr=False, compare=False)

    @property
    def der_chain(self) -> list[bytes]:
        # sent in every IKE_AUTH: encoded once (~18 us per certificate)
        if not self._der:
            self._der = tuple(c.public_bytes(serialization.Encoding.DER) for c in (self.cert, *self.chain))
        return list(self._der)


# -- the store ---------------------------------------------------------------------------


def _ee_key_usage(policy, cert, ext) -> None:
    # RFC 5280 §4.2.1.3, RFC 4945 §5.1.3.2: a keyUsage that is present must allow signing
    if ext is not None and not (ext.digital_signature or ext.content_commitment):
        raise ValueError("keyUsage does not allow digitalSignature")


class CertStore:
    def __init__(
        self,
        anchors=(),
        intermediates=(),
        keys=(),
        certs=(),
        crls=(),
        *,
        clock=None,
        root: str | None = None,
    ):
        self.root = root
        self.anchors = list(anchors)
        self.intermediates = list(intermediates)
        self.crls = list(crls)
        self.others = [c for c in certs if not _is_ca(c)]  # end-entity certificates
        self._clock = clock or (lambda: datetime.datetime.now(datetime.timezone.utc))
        self.credentials = self._credentials(keys)
        self._chosen: dict = {}  # choose(): (ident, cache_key) -> candidate credentials
        self._certreq = b"".join(
            dict.fromkeys(spki_sha1(c) for c in self.anchors + self.intermediates)
        )

    # -- loading ------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        root: str = DEFAULT_ROOT,
        *,
        partial_chain: bool = False,
        clock=None,
        check_secrecy: bool = True,
    ) -> CertStore:
        """Read ca/, certs/, private/ and crls/ under root. Unreadable certificates and
        CRLs are logged and skipped; a private key others may read is an error."""
        ca_certs, other_certs, keys, crls = [], [], [], []
        for path in _files(os.path.join(root, "ca")):
            ca_certs += _try(path, _load_certs, [])
        for path in _files(os.path.join(root, "certs")):
            other_certs += _try(path, _load_certs, [])
        for path in _files(os.path.join(root, "crls")):
            crl = _try(path, _load_crl, None)
            if crl is not None:
                crls.append(crl)
        for path in _files(os.path.join(root, "private")):
            if path.endswith((".key", ".pem", ".der")):
                keys.append(load_private_key(path, check_secrecy))
        if partial_chain:
            anchors = ca_certs
            intermediates = [c for c in other_certs if _is_ca(c)]
        else:
            anchors = [c for c in ca_certs if _self_signed(c)]
            intermediates = [c for c in ca_certs + other_certs if _is_ca(c) and c not in anchors]
        store = cls(anchors, intermediates, keys, other_certs, crls, clock=clock, root=root)
        log.info(
            "certificate store %s: %d CAs, %d intermediates, %d own certificates, %d CRLs",
            root,
            len(anchors),
            len(intermediates),
            len(store.credentials),
            len(crls),
        )
        return store

    def _credentials(self, keys) -> list[Credential]:
        by_public = {_public_der(k.public_key()): k for k in keys}
        out = []
        for cert in self.others:
            key = by_public.get(_public_der(cert.public_key()))
            if key is None:
                continue
            chain = self._chain_of(cert)
            hashes = frozenset(spki_sha1(c) for c in chain) | frozenset(
                spki_sha1(a) for a in self.anchors if _issued_by(chain[-1] if chain else cert, a)
            )
            out.append(Credential(cert, key, tuple(chain), hashes))
        return out

    def _chain_of(self, cert) -> list:
        """Intermediates from cert's issuer up to, not including, an anchor."""
        chain, current = [], cert
        for _ in range(MAX_CHAIN_DEPTH):
            if any(_issued_by(current, a) for a in self.anchors):
                break
            issuer = next(
                (c for c in self.intermediates if c not in chain and _issued_by(current, c)), None
            )
            if issuer is None:
                break
            chain.append(issuer)
            current = issuer
        return chain

    # -- what we send ---------------------------------------------------------------------

    @property
    def has_cas(self) -> bool:
        return bool(self.anchors)

    def certreq_data(self) -> bytes:
        """The CERTREQ body: SPKI hashes of every CA we accept chains through (§3.7)."""
        return self._certreq

    def choose(
        self, ident: Identity | None, wanted: list[bytes] | None = None, key_filter=None,
        cache_key=None,
    ) -> Credential | None:
        """Our certificate for an exchange: it must carry `ident` (when one is configured)
        and have a key `key_filter` accepts; among those, one chaining to a CA the peer
        asked for (its CERTREQ hashes) comes first (RFC 7296 §3.7 makes CERTREQ a hint).

        cache_key: a hashable name for what key_filter accepts; with it the candidates are
        remembered per (ident, cache_key) (the credentials never change in a store)."""
        candidates = self._candidates(ident, key_filter, cache_key)
        if wanted:
            wanted_set = set(wanted)
            for cred in candidates:
                if cred.ca_hashes & wanted_set:
                    return cred
        return candidates[0] if candidates else None

    def _candidates(self, ident, key_filter, cache_key) -> list:
        key = (ident, cache_key) if cache_key is not None else None
        if key is not None:
            found = self._chosen.get(key)
            if found is not None:
                return found
        found = [
            c
            for c in self.credentials
            if (ident is None or identity_in_cert(ident, c.cert))
            and (key_filter is None or key_filter(c.key))
        ]
        if key is not None:
            if len(self._chosen) >= 256:  # identities come from our configuration
                self._chosen.clear()
            self._chosen[key] = found
        return found

    # -- what we receive --------------------------------------------------------------------

    def peer_certificate(self, cert_payloads, peer_id: Identity):
        """Validate the peer's certificate chain; returns the end-entity certificate.

        cert_payloads are the CERT payloads in order (the first is the peer's own,
        RFC 7296 §3.6). Without any, a certificate for peer_id in certs/ is used.
        Raises AuthenticationFailed with the reason, also for certificates that parse
        but whose extensions or names do not (cryptography decodes those lazily).
        """
        x509_payloads = [p for p in cert_payloads if p.encoding == CertEncoding.X509_SIGNATURE]
        if len(x509_payloads) > MAX_PEER_CERTS:
            raise AuthenticationFailed(f"more than {MAX_PEER_CERTS} CERT payloads")
        with warnings.catch_warnings():  # hostile input: no warning spam, just a refusal
            warnings.simplefilter("ignore")
            try:
                return self._peer_certificate(x509_payloads, peer_id)
            except _PARSE_ERRORS as exc:
                raise AuthenticationFailed(f"malformed certificate: {_short(exc)}") from None

    def _peer_certificate(self, x509_payloads, peer_id):
        received = [x509.load_der_x509_certificate(bytes(p.data)) for p in x509_payloads]
        if received:
            leaf, extra = received[0], received[1:]
        else:
            leaf = next((c for c in self.others if identity_in_cert(peer_id, c)), None)
            if leaf is None:
                raise AuthenticationFailed(
                    f"no certificate from the peer, none on file for {peer_id}"
                )
            extra = []
        if not identity_in_cert(peer_id, leaf):
            raise AuthenticationFailed(
                f"certificate {describe(leaf)} does not contain the peer ID {peer_id}"
            )
        chain = self.validate(leaf, extra)
        return chain[0]

    def validate(self, leaf, untrusted=()) -> list:
        """RFC 5280 path validation to one of our anchors, then CRLs; the chain, leaf first."""
        if not self.anchors:
            raise AuthenticationFailed("no trusted CA certificates (ca/ is empty)")
        now = self._clock()
        ee_policy = verification.ExtensionPolicy.permit_all().may_be_present(
            x509.KeyUsage, verification.Criticality.AGNOSTIC, _ee_key_usage
        )
        builder = (
            verification.PolicyBuilder()
            .store(verification.Store(self.anchors))
            .time(now.replace(tzinfo=None) if now.tzinfo else now)
            .max_chain_depth(MAX_CHAIN_DEPTH)
            .extension_policies(
                ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee_policy
            )
        )
        try:
            verified = builder.build_client_verifier().verify(
                leaf, list(untrusted) + self.intermediates
            )
        except verification.VerificationError as exc:
            raise AuthenticationFailed(
                f"certificate {describe(leaf)} not trusted: {_short(exc)}"
            ) from None
        chain = list(verified.chain)
        self._check_revocation(chain, now)
        return chain

    def _check_revocation(self, chain, now) -> None:
        for cert, issuer in zip(chain, chain[1:], strict=False):
            for crl in self.crls:
                if crl.issuer != issuer.subject or not crl.is_signature_valid(issuer.public_key()):
                    continue
                next_update = crl.next_update_utc
                if next_update is not None and next_update < now:
                    # strongSwan's non-strict policy: a stale CRL still revokes what it lists
                    log.warning("CRL of %s expired at %s", describe(issuer), next_update)
                if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
                    raise AuthenticationFailed(
                        f"certificate {describe(cert)} is revoked (CRL of {describe(issuer)})"
                    )


def _short(exc) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "..."


def _try(path, loader, default):
    try:
        return loader(path)
    except (OSError, ValueError) as exc:
        log.error("%s: skipped: %s", path, exc)
        return default


__all__ = [
    "CertStore",
    "CertStoreError",
    "Credential",
    "DEFAULT_ROOT",
    "describe",
    "identity_in_cert",
    "load_private_key",
    "parse_certreq",
    "spki_sha1",
    "subject_identity",
]
