"""The crypto a responder cannot avoid per handshake, measured raw: the floor later benches
divide by. Also SK seal/open compiled vs pure.

Per IKE_SA_INIT + IKE_AUTH (PSK, aes256gcm16-prfsha256-x25519, as the strongSwan captures):
  - a 32-octet nonce from the OS
  - X25519: key generation (with its public value) and the exchange
  - prf/prf+: SKEYSEED, the 168 octets of SK_*, and the AUTH prfs: for each direction
    prf(SK_p, ID') and prf(prf(PSK, "Key Pad for IKEv2"), octets)
  - two AEAD operations on ~300-octet bodies: open the IKE_AUTH request, seal the response
    (each with its AES-GCM key set up, once per direction per SA)

`floor_seconds(quick)` returns seconds per handshake; `run(quick)` returns the table.
`floor_seconds(quick, "modp2048-cbc")` is the same for aes128-sha256-modp2048: a MODP
2048 key pair (as pyiked.core.ke makes it: OpenSSL's short exponent for the RFC 3526
group) and its exchange, the same prfs (192 octets of SK_* are six SHA-256 blocks too),
and AES-128-CBC + HMAC-SHA-256-128 open and seal. "x25519-gcm-ecdsa" adds what an ECDSA
P-256 certificate handshake must do: parse the peer's certificate, verify its CA signature
and the peer's AUTH signature, sign our AUTH (RFC 4754, RFC 7427).
"""

from __future__ import annotations

import hmac
from _hashlib import hmac_new
import os

from cryptography.hazmat.primitives.asymmetric import dh, x25519
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bench.common import main_args, rate, table, write_result

NONCE_I = os.urandom(32)
SPI_I, SPI_R = os.urandom(8), os.urandom(8)
PSK = b"pk-test-psk-0123456789"
ID_I, ID_R = b"\x02\x00\x00\x00a.pk.test", b"\x02\x00\x00\x00b.pk.test"
INIT_REQ, INIT_RESP = os.urandom(232), os.urandom(285)  # sizes of the captured messages
PEER_PUBLIC = x25519.X25519PrivateKey.generate().public_key()
AAD = os.urandom(32)
KEY = os.urandom(32)
SALT = os.urandom(4)
REQUEST_CT = AESGCM(KEY).encrypt(SALT + bytes(8), os.urandom(300), AAD)
RESPONSE_BODY = os.urandom(300)


def nonce():
    return os.urandom(32)


def x25519_keygen():
    key = x25519.X25519PrivateKey.generate()
    key.public_key().public_bytes_raw()
    return key


def x25519_exchange(key=x25519.X25519PrivateKey.generate()):
    return key.exchange(PEER_PUBLIC)


def _hmac(key, data, name="sha256"):
    # OpenSSL's HMAC as an object: with OpenSSL 3 the one-shot hmac.digest looks the
    # digest up by name on every call and costs ~0.5 us more per HMAC
    return hmac_new(key, data, name).digest()


def prfs(shared=os.urandom(32), nonce_r=os.urandom(32)):
    digest = _hmac
    ninr = NONCE_I + nonce_r
    skeyseed = digest(ninr, shared)
    seed = ninr + SPI_I + SPI_R
    keyed = hmac_new(skeyseed, None, "sha256")
    t, out = b"", []
    for i in range(1, 7):  # 168 octets of SK_d | SK_ei | SK_er | SK_pi | SK_pr
        mac = keyed.copy()
        mac.update(t + seed + bytes((i,)))
        t = mac.digest()
        out.append(t)
    keys = b"".join(out)
    sk_pi, sk_pr = keys[104:136], keys[136:168]
    octets_i = INIT_REQ + nonce_r + digest(sk_pi, ID_I)
    octets_r = INIT_RESP + NONCE_I + digest(sk_pr, ID_R)
    return digest(digest(PSK, b"Key Pad for IKEv2"), octets_i), \
        digest(digest(PSK, b"Key Pad for IKEv2"), octets_r)


def aead_pair():
    AESGCM(KEY).decrypt(SALT + bytes(8), REQUEST_CT, AAD)
    return AESGCM(KEY).encrypt(SALT + b"\x00" * 7 + b"\x01", RESPONSE_BODY, AAD)


def handshake():
    nonce()
    key = x25519_keygen()
    shared = key.exchange(PEER_PUBLIC)
    prfs(shared)
    aead_pair()


def _modp2048():
    from pyiked.core import modp

    numbers = dh.DHParameterNumbers(modp.PRIMES[14], modp.GENERATOR)
    params = numbers.parameters()
    peer = params.generate_private_key().public_key()
    return params, peer


MODP_PARAMS, MODP_PEER = _modp2048()
CBC_KEY, CBC_IV, HMAC_KEY = os.urandom(16), os.urandom(16), os.urandom(32)
CBC_REQUEST = os.urandom(304)


def modp_keygen():
    key = MODP_PARAMS.generate_private_key()
    key.public_key().public_numbers().y.to_bytes(256, "big")
    return key


def cbc_pair():
    """Open the IKE_AUTH request (ICV check, decrypt), seal the response (RFC 7296 §3.14)."""
    icv = _hmac(HMAC_KEY, AAD + CBC_IV + CBC_REQUEST)[:16]
    hmac.compare_digest(icv, icv)
    dec = Cipher(algorithms.AES(CBC_KEY), modes.CBC(CBC_IV)).decryptor()
    dec.update(CBC_REQUEST) + dec.finalize()
    enc = Cipher(algorithms.AES(CBC_KEY), modes.CBC(CBC_IV)).encryptor()
    body = enc.update(RESPONSE_BODY + bytes(4)) + enc.finalize()
    return _hmac(HMAC_KEY, AAD + CBC_IV + body)[:16]


def handshake_modp2048_cbc():
    nonce()
    key = modp_keygen()
    shared = key.exchange(MODP_PEER)
    prfs(shared)
    cbc_pair()


def _ecdsa_material():
    """A P-256 CA and a peer certificate it signed, and our own P-256 key."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key, peer_key, own_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    now = datetime.datetime.now(datetime.timezone.utc)
    peer_cert = (x509.CertificateBuilder().subject_name(name("peer")).issuer_name(name("ca"))
                 .public_key(peer_key.public_key()).serial_number(1).not_valid_before(now)
                 .not_valid_after(now + datetime.timedelta(days=1)).sign(ca_key, hashes.SHA256()))
    der = peer_cert.public_bytes(serialization.Encoding.DER)
    peer_auth = peer_key.sign(INIT_REQ, ec.ECDSA(hashes.SHA256()))
    return ca_key.public_key(), der, peer_auth, own_key


ECDSA_CA, ECDSA_PEER_DER, ECDSA_PEER_AUTH, ECDSA_OWN = _ecdsa_material()


def ecdsa_auth():
    """RFC 7296 §2.15 / RFC 4754 with a certificate: read the peer's certificate, check
    the CA's signature on it and the peer's AUTH signature, sign our own AUTH."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    cert = x509.load_der_x509_certificate(ECDSA_PEER_DER)
    ECDSA_CA.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
    cert.public_key().verify(ECDSA_PEER_AUTH, INIT_REQ, ec.ECDSA(hashes.SHA256()))
    return ECDSA_OWN.sign(INIT_RESP, ec.ECDSA(hashes.SHA256()))


def handshake_ecdsa():
    handshake()
    ecdsa_auth()


SUITES = {"x25519-gcm": handshake, "modp2048-cbc": handshake_modp2048_cbc,
          "x25519-gcm-ecdsa": handshake_ecdsa}


def floor_seconds(quick: bool = False, suite: str = "x25519-gcm") -> float:
    """Seconds of unavoidable crypto per responder handshake (best of a few runs)."""
    seconds = 0.3 if quick else 1.5
    return 1.0 / max(rate(SUITES[suite], seconds / 3) for _ in range(3))


def _sk_rates(seconds):
    from pyiked import _fast

    rows, figures = [], {}
    impls = _fast.implementations("sk")
    header = os.urandom(16) + bytes((46, 0x20, 35, 0x20, 0, 0, 0, 1, 0, 0, 0, 0))
    body = os.urandom(300)
    for suite, (encr, bits, integ, ekey, ikey) in {
        "aes256gcm16": (20, 256, None, os.urandom(36), b""),
        "aes128-sha256": (12, 128, 12, os.urandom(16), os.urandom(32)),
    }.items():
        per = {}
        ops = {}
        for name in ("py", "c"):
            impl = impls[name]
            if impl is None:
                continue
            cipher = impl.SKCipher(encr, bits, integ, ekey, ikey)
            message = cipher.seal(header, 36, body)
            ops[name] = (lambda c=cipher: c.seal(header, 36, body), lambda c=cipher, m=message: c.open(m, 28))
        best = {name: [0.0, 0.0] for name in ops}
        for _ in range(5):  # alternate so both see the same machine; keep the best of each
            for name, (seal, opened) in ops.items():
                best[name][0] = max(best[name][0], rate(seal, seconds / 5))
                best[name][1] = max(best[name][1], rate(opened, seconds / 5))
        for name, (seal, opened) in best.items():
            per[name] = (seal, opened)
            label = "compiled" if name == "c" else "pure"
            figures[f"sk_{suite}_{label}_seal_per_s"] = seal
            figures[f"sk_{suite}_{label}_open_per_s"] = opened
        if "c" in per:
            rows.append([f"sk seal {suite}", per["py"][0], per["c"][0], per["c"][0] / per["py"][0]])
            rows.append([f"sk open {suite}", per["py"][1], per["c"][1], per["c"][1] / per["py"][1]])
        else:
            rows.append([f"sk seal {suite}", per["py"][0], "-", "-"])
            rows.append([f"sk open {suite}", per["py"][1], "-", "-"])
    return rows, figures


def run(quick: bool = False) -> str:
    seconds = 0.2 if quick else 1.0
    parts = {
        "nonce (32 octets)": nonce,
        "X25519 keygen": x25519_keygen,
        "X25519 exchange": x25519_exchange,
        "prf: SKEYSEED, SK_*, 2x AUTH": prfs,
        "AES-256-GCM open + seal (300 B)": aead_pair,
    }
    rows, figures = [], {}
    for name, fn in parts.items():
        r = rate(fn, seconds)
        rows.append([name, 1e6 / r])
        figures[name] = {"us": 1e6 / r}
    total = floor_seconds(quick)
    rows.append(["whole handshake floor", total * 1e6])
    figures["floor_seconds"] = total
    figures["floor_handshakes_per_s"] = 1 / total
    sk_rows, sk_figures = _sk_rates(seconds)
    figures.update(sk_figures)
    write_result("crypto_floor", figures, quick)
    return (
        table("crypto floor: unavoidable responder crypto per handshake", ["part", "us"], rows)
        + f"\n=> at most {1 / total:,.0f} handshakes/s per core from crypto alone\n\n"
        + table("SK payload, 300-octet body (messages/s)", ["operation", "pure", "compiled", "speedup"],
                sk_rows)
    )


if __name__ == "__main__":
    print(run(main_args().quick))
