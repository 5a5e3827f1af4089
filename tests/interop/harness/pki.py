"""A test PKI made with strongSwan's `pki` tool (once per test session, on demand).

    ca("ec")   ECDSA P-256 CA   "C=XX, O=pk-test, CN=pk-test ECDSA CA"
    ca("rsa")  RSA-3072 CA      "C=XX, O=pk-test, CN=pk-test RSA CA"
    cert("a", "ec")   ECDSA P-256 end entity a-ec.pk.test (CN and DNS SAN), by the EC CA
    cert("b", "rsa")  RSA-2048 end entity b-rsa.pk.test, by the RSA CA
    issue(...)        any other end entity (own name, SANs, CA, key type, flags)
    unknown_cert("a") a-unknown.pk.test from a CA that no peer trusts
    revoke(cert)      put a cert on its CA's CRL and rewrite the CRL (pki --signcrl)

End entities carry serverAuth + clientAuth. Files are PEM: <name>.key (0600) and
<name>.crt in the PKI directory; every object is made once and cached.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .util import HarnessError, need_tool, run

KEY_TYPES = {
    # kind: (pki --type, size) for CAs and end entities
    "ec": ("ecdsa", 256),
    "rsa": ("rsa", 2048),
    "rsa3072": ("rsa", 3072),
    "ec384": ("ecdsa", 384),
    "ed25519": ("ed25519", 0),
}
CA_KEYS = {"ec": "ec", "rsa": "rsa3072", "unknown": "ec"}
CA_DNS = {
    "ec": "C=XX, O=pk-test, CN=pk-test ECDSA CA",
    "rsa": "C=XX, O=pk-test, CN=pk-test RSA CA",
    "unknown": "C=XX, O=pk-test-rogue, CN=pk-test unknown CA",
}


@dataclass
class Cert:
    """A certificate with its private key. `id` is the identity to configure (the SAN)."""

    name: str
    crt: Path
    key: Path
    id: str
    dn: str
    ca: str | None  # issuing CA's name (None for a CA)
    key_type: str  # ecdsa | rsa | ed25519
    serial: str = ""
    revoked: bool = field(default=False)

    def pem(self) -> bytes:
        return self.crt.read_bytes()


class PKI:
    """Session PKI in `directory`; CAs, certs and CRLs are generated when first asked for."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._cache: dict[str, Cert] = {}
        self._revoked: dict[str, list[Cert]] = {}
        self._lock = threading.RLock()
        self._pki = need_tool("pki")

    def __repr__(self):
        return f"<PKI {self.dir} {sorted(self._cache)}>"

    def _run(self, *args) -> bytes:
        # pki prints harmless TPM plugin noise on stderr: keep it out unless it fails
        cp = run([self._pki, *args], check=False, text=False)
        if cp.returncode != 0:
            raise HarnessError(f"pki {' '.join(map(str, args))} failed:\n"
                               f"{cp.stderr.decode(errors='replace')}")
        return cp.stdout

    def _write(self, path: Path, data: bytes, private: bool = False) -> Path:
        path.write_bytes(data)
        os.chmod(path, 0o600 if private else 0o644)
        return path

    def _gen_key(self, name: str, kind: str) -> tuple[Path, str]:
        ktype, size = KEY_TYPES[kind]
        args = ["--gen", "--type", ktype, "--outform", "pem"]
        if size:
            args += ["--size", str(size)]
        return self._write(self.dir / f"{name}.key", self._run(*args), private=True), ktype

    def _serial(self, crt: Path) -> str:
        out = self._run("--print", "--in", str(crt)).decode(errors="replace")
        for line in out.splitlines():
            if line.strip().startswith("serial:"):
                return line.split(":", 1)[1].strip()
        return ""

    # ------------------------------------------------------------------ CAs
    def ca(self, kind: str = "ec") -> Cert:
        """The CA "ec" (ECDSA P-256), "rsa" (RSA-3072) or "unknown" (trusted by nobody)."""
        name = f"ca-{kind}"
        with self._lock:
            if name in self._cache:
                return self._cache[name]
            key, ktype = self._gen_key(name, CA_KEYS[kind])
            crt = self._write(self.dir / f"{name}.crt", self._run(
                "--self", "--ca", "--lifetime", "3650", "--in", str(key), "--type", ktype,
                "--dn", CA_DNS[kind], "--outform", "pem"))
            c = Cert(name, crt, key, CA_DNS[kind], CA_DNS[kind], None, ktype,
                     self._serial(crt))
            self._cache[name] = c
            return c

    # ------------------------------------------------------------------ end entities
    def issue(self, name: str, key_kind: str = "ec", ca: str = "ec", sans=None,
              dn: str | None = None, flags=("serverAuth", "clientAuth"),
              lifetime: int = 1825, extra_args=()) -> Cert:
        """An end-entity cert `name` (cached by name) signed by CA `ca`.

        sans defaults to [name]; a SAN is a DNS name, an IP address, or an e-mail, as
        `pki --san` reads it. The identity (`Cert.id`) is the first SAN.
        """
        with self._lock:
            if name in self._cache:
                return self._cache[name]
            issuer = self.ca(ca)
            sans = list(sans) if sans else [name]
            dn = dn or f"C=XX, O=pk-test, CN={name}"
            key, ktype = self._gen_key(name, key_kind)
            args = ["--issue", "--in", str(key), "--type", "priv", "--cacert", str(issuer.crt),
                    "--cakey", str(issuer.key), "--dn", dn, "--lifetime", str(lifetime),
                    "--outform", "pem"]
            for san in sans:
                args += ["--san", san]
            for flag in flags:
                args += ["--flag", flag]
            args += list(extra_args)
            crt = self._write(self.dir / f"{name}.crt", self._run(*args))
            c = Cert(name, crt, key, sans[0], dn, issuer.name, ktype, self._serial(crt))
            self._cache[name] = c
            return c

    def cert(self, node: str, kind: str = "ec") -> Cert:
        """The standard cert of node "a"/"b": <node>-ec.pk.test (ECDSA P-256 by the EC CA)
        or <node>-rsa.pk.test (RSA-2048 by the RSA CA)."""
        if kind not in ("ec", "rsa"):
            raise ValueError("kind must be 'ec' or 'rsa'")
        return self.issue(f"{node}-{kind}.pk.test", key_kind=kind, ca=kind)

    def unknown_cert(self, node: str = "a") -> Cert:
        """<node>-unknown.pk.test, ECDSA, issued by a CA no peer is given."""
        return self.issue(f"{node}-unknown.pk.test", key_kind="ec", ca="unknown")

    # ------------------------------------------------------------------ revocation
    def crl_path(self, ca: str = "ec") -> Path:
        return self.dir / f"ca-{ca}.crl"

    def crl(self, ca: str = "ec") -> Path:
        """CA `ca`'s current CRL (written, empty, if nothing was revoked yet)."""
        with self._lock:
            path = self.crl_path(ca)
            if not path.exists():
                self._sign_crl(ca)
            return path

    def revoke(self, cert: Cert, reason: str = "key-compromise") -> Path:
        """Revoke `cert` and issue its CA's next CRL (every cert revoked so far; the CRL
        number grows, so a peer that has the older CRL takes the new one).

        Returns the CRL path; load it into a peer (StrongSwan.load_crl) to have it
        enforced (with revocation=strict in the remote auth round, or by default when
        a CRL for the issuer is cached).
        """
        if cert.ca is None:
            raise ValueError("revoke an end-entity cert, not a CA")
        ca = cert.ca.removeprefix("ca-")
        with self._lock:
            revoked = self._revoked.setdefault(ca, [])
            if cert in revoked:
                return self.crl(ca)
            revoked.append(cert)
            cert.revoked = True
            return self._sign_crl(ca, [cert], reason)

    def revoked(self, ca: str = "ec") -> list[Cert]:
        return list(self._revoked.get(ca, []))

    def _sign_crl(self, ca: str, new=(), reason: str = "key-compromise") -> Path:
        issuer = self.ca(ca)
        path = self.crl_path(ca)
        args = ["--signcrl", "--cacert", str(issuer.crt), "--cakey", str(issuer.key),
                "--lifetime", "30", "--outform", "pem"]
        if path.exists():
            args += ["--lastcrl", str(path)]  # keeps its entries, next CRL number
        for c in new:
            args += ["--reason", reason, "--cert", str(c.crt)]
        return self._write(path, self._run(*args))
