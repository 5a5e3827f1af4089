"""Road warriors against a real strongSwan: certificates (RFC 7427, ECDSA, RSA, RSA-PSS),
fragmented IKE_AUTH (RFC 7383), EAP-MSCHAPv2 with a virtual IP from a pool, the failures
a gateway must report, and pyiked as a certificate initiator.

strongSwan plays the native clients: Windows (EAP-MSCHAPv2, the gateway's RSA
certificate, its legacy AES-256/SHA-1/modp1024 proposals, which the pyiked rule enables
by naming them), macOS/iOS (certificates or EAP, AES-256/SHA2-256 with modp2048 or
ecp256) and Android's strongSwan app (ECDSA and RSA certificates). Namespaces and links
use the prefix `pkr`. The PKI is the session's (strongSwan's `pki`); pyiked reads it
from an OpenIKED layout (ca/, certs/, private/local.key, crls/) given with --iked-dir.
"""

from __future__ import annotations

import ipaddress
import os
import shutil

import pytest

from .conftest import lab_for
from .harness import Auth, Child, Conn, Secret

POOL = "10.231.100.0/24"
DNS = "10.231.2.1"
PASSWORD = "alice-pk-pass-1"
GW_NET = "10.231.2.0/24"


@pytest.fixture
def rwlab(request, tmp_path, pki):
    yield from lab_for(request, tmp_path, pki=pki, prefix="pkr")


def iked_dir(lab, own, cas, crls=(), name="iked"):
    """An OpenIKED directory layout with our certificate and key, trusted CAs and CRLs."""
    root = lab.dir / name
    for d in ("ca", "certs", "private", "crls"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for ca in cas:
        shutil.copy(ca.crt, root / "ca" / ca.crt.name)
    if own is not None:
        shutil.copy(own.crt, root / "certs" / own.crt.name)
        shutil.copy(own.key, root / "private" / "local.key")
        os.chmod(root / "private" / "local.key", 0o600)
    for crl in crls:
        shutil.copy(crl, root / "crls" / crl.name)
    return str(root)


def cert_gateway(topo, me, peer, own, dstid, *, extra="", settings="", proposals=(), childsa=()):
    ikesa = "".join(f" \\\n    ikesa {p}" for p in proposals)
    ikesa += "".join(f" \\\n    childsa {p}" for p in childsa)
    return (
        f'{settings}ikev2 "rw" passive esp from {topo.inner_net(me)} to {topo.inner_net(peer)} \\\n'
        f"    local {topo.addr(me)} peer {topo.addr(peer)}{ikesa} \\\n"
        f"    srcid {own.id} dstid {dstid} {extra}\n"
    )


def swan_cert_client(
    topo,
    own,
    ca,
    remote_id,
    *,
    proposals=("aes256gcm16-prfsha256-x25519",),
    esp=("aes256gcm16",),
    **kw,
):
    return Conn(
        "rw",
        local_addrs=[topo.addr("a")],
        remote_addrs=[topo.addr("b")],
        local=Auth.pubkey(own.id, cert=own.crt),
        remote=Auth.pubkey(remote_id, cacerts=[ca.crt]),
        children=[
            Child(
                "net",
                local_ts=[topo.inner_net("a")],
                remote_ts=[topo.inner_net("b")],
                esp_proposals=list(esp),
            )
        ],
        proposals=list(proposals),
        **kw,
    )


def start_cert_case(
    lab,
    kind,
    *,
    iked_settings="",
    swan_settings=None,
    fragment_size=None,
    proposals=("aes256gcm16-prfsha256-x25519",),
    esp=("aes256gcm16",),
    iked_extra="",
    iked_proposals=(),
    iked_childsa=(),
    crls=(),
    client=None,
    gateway_cas=None,
):
    pki, topo = lab.pki, lab.topo
    a = client or pki.cert("a", kind)
    b = pki.cert("b", kind)
    root = iked_dir(lab, b, gateway_cas or [pki.ca("ec"), pki.ca("rsa")], crls)
    iked = lab.pyiked(
        "b",
        cert_gateway(
            topo,
            "b",
            "a",
            b,
            a.id,
            settings=iked_settings,
            extra=iked_extra,
            proposals=iked_proposals,
            childsa=iked_childsa,
        ),
        args=["--iked-dir", root],
    )
    swan = lab.strongswan(
        "a",
        conns=[swan_cert_client(topo, a, pki.ca(kind), b.id, proposals=proposals, esp=esp)],
        keys=[a.key],
        fragment_size=fragment_size,
        settings=swan_settings,
    )
    return swan, iked, a, b


# -- certificates ---------------------------------------------------------------------


def test_ecdsa_certificates_both_sides(rwlab):
    """Android's strongSwan app with an ECDSA certificate; RFC 7427 both ways."""
    swan, iked, a, b = start_cert_case(rwlab, "ec")
    r = swan.initiate("net", "rw")
    assert r, r
    assert "authentication of 'b-ec.pk.test' with ECDSA_WITH_SHA256_DER successful" in r.text
    sa = swan.wait_sa("rw", "net")
    assert (sa.remote_id, sa.local_id) == ("b-ec.pk.test", "a-ec.pk.test")
    assert sa.child("net").remote_ts == [GW_NET]
    iked.wait_for_log(r"authenticated by certificate \"a-ec.pk.test\" \(RFC 7427 ecdsa SHA2_256\)")
    reset = iked.ctl("reset", "ca")  # ikectl reset ca: the store is read again
    assert reset.returncode == 0, reset.stderr


def test_rsa_certificates_both_sides_fragmented(rwlab):
    """RSA on both sides: the IKE_AUTH messages (~1.7 kB) go as RFC 7383 fragments."""
    cap = rwlab.capture("b")
    swan, iked, a, b = start_cert_case(rwlab, "rsa", iked_settings="set fragmentation\n")
    r = swan.initiate("net", "rw")
    assert r, r
    assert "authentication of 'b-rsa.pk.test' with RSA_EMSA_PKCS1_SHA2_256 successful" in r.text
    cap.stop()
    ike = cap.ike_messages()
    from_pyiked = [m for m in ike if m["src"] == rwlab.topo.addr("b") and m["first_payload"] == 53]
    from_swan = [m for m in ike if m["src"] == rwlab.topo.addr("a") and m["first_payload"] == 53]
    # pyiked's 576-octet IPv4 default cuts its IKE_AUTH answer into several fragments,
    # strongSwan's 1280 cuts its request in two
    assert len(from_pyiked) >= 3 and {m["exchange"] for m in from_pyiked} == {35}
    assert len(from_swan) >= 2 and cap.skf_fragments() == len(from_pyiked) + len(from_swan)
    assert all(m["length"] - 14 <= 576 for m in from_pyiked)  # the IP datagram, without Ethernet
    assert {m["frag_total"] for m in from_pyiked} == {len(from_pyiked)}
    assert swan.wait_sa("rw", "net")


def test_rfc7427_rsa_pss_macos_profile(rwlab):
    """RSASSA-PSS in both directions (strongSwan's rsa_pss, pyiked's `set rsa_pss`), with the
    macOS/iOS proposal AES-256/SHA2-256/modp2048."""
    swan, iked, a, b = start_cert_case(
        rwlab,
        "rsa",
        iked_settings="set rsa_pss\n",
        swan_settings={"rsa_pss": True},
        proposals=("aes256-sha256-modp2048",),
        esp=("aes256-sha256",),
        iked_proposals=("enc aes-256 auth hmac-sha2-256 prf hmac-sha2-256 group modp2048",),
        iked_childsa=("enc aes-256 auth hmac-sha2-256",),
    )
    r = swan.initiate("net", "rw")
    assert r, r
    assert (
        "authentication of 'b-rsa.pk.test' with RSA_EMSA_PSS_SHA2_256_SALT_32 successful" in r.text
    )
    iked.wait_for_log(r"\(RFC 7427 rsa-pss SHA2_256\)")
    sa = swan.wait_sa("rw", "net")
    assert (sa.encr_alg, sa.encr_keysize, sa.dh_group) == ("AES_CBC", 256, "MODP_2048")


@pytest.mark.parametrize("case", ["revoked", "unknown-ca"])
def test_refused_client_certificates(rwlab, case):
    pki = rwlab.pki
    if case == "revoked":
        client = pki.issue("a-revoked.pk.test", key_kind="ec", ca="ec")
        crls = [pki.revoke(client)]
        reason = r"is revoked"
    else:
        client = pki.unknown_cert("a")
        crls = []
        reason = r"not trusted"
    swan, iked, a, b = start_cert_case(rwlab, "ec", client=client, crls=crls)
    r = swan.initiate("net", "rw", timeout=6)
    assert not r
    swan.wait_for_log(r"received AUTHENTICATION_FAILED notify error")
    iked.wait_for_log(reason)
    assert not swan.list_sas("rw")


def test_pyiked_initiates_with_a_certificate(rwlab):
    pki, topo = rwlab.pki, rwlab.topo
    a, b = pki.cert("a", "ec"), pki.cert("b", "ec")
    swan = rwlab.strongswan(
        "b",
        conns=[
            Conn(
                "rw",
                local_addrs=[topo.addr("b")],
                remote_addrs=[topo.addr("a")],
                local=Auth.pubkey(b.id, cert=b.crt),
                remote=Auth.pubkey(a.id, cacerts=[pki.ca("ec").crt]),
                children=[
                    Child("net", local_ts=[topo.inner_net("b")], remote_ts=[topo.inner_net("a")])
                ],
                role="responder",
            )
        ],
        keys=[b.key],
    )
    conf = (
        f'ikev2 "rw" active esp from {topo.inner_net("a")} to {topo.inner_net("b")} \\\n'
        f"    local {topo.addr('a')} peer {topo.addr('b')} \\\n"
        f"    srcid {a.id} dstid {b.id} ecdsa256\n"
    )
    iked = rwlab.pyiked("a", conf, args=["--iked-dir", iked_dir(rwlab, a, [pki.ca("ec")])])
    sa = swan.wait_sa("rw", "net", timeout=15)
    assert (sa.remote_id, sa.local_id, sa.initiator) == ("a-ec.pk.test", "b-ec.pk.test", False)
    swan.wait_for_log(r"authentication of 'a-ec.pk.test' with ECDSA-256 signature successful")
    iked.wait_for_log(r"authenticated by certificate \"b-ec.pk.test\"")


# -- EAP-MSCHAPv2 and the configuration payload ---------------------------------------------

PROFILES = {
    # Windows: EAP-MSCHAPv2, RSA server certificate, the legacy default proposals
    "windows": dict(
        kind="rsa",
        proposals=("aes256-sha1-modp1024",),
        esp=("aes256-sha1",),
        ikesa="enc aes-256 auth hmac-sha1 prf hmac-sha1 group modp1024",
        childsa="enc aes-256 auth hmac-sha1",
    ),
    # macOS/iOS with EAP: AES-256/SHA2-256/ecp256, an ECDSA server certificate
    "macos": dict(
        kind="ec",
        proposals=("aes256-sha256-ecp256",),
        esp=("aes256-sha256",),
        ikesa="enc aes-256 auth hmac-sha2-256 prf hmac-sha2-256 group ecp256",
        childsa="enc aes-256 auth hmac-sha2-256",
    ),
}


def eap_gateway(
    topo, gw, profile, pool=POOL, users=(("alice", PASSWORD),), settings="set fragmentation\n"
):
    p = PROFILES[profile]
    lines = [settings.rstrip("\n")] if settings else []
    lines += [f'user "{u}" "{pw}"' for u, pw in users]
    lines.append(
        f'ikev2 "rw" passive esp from {GW_NET} to dynamic \\\n'
        f"    local {topo.addr('b')} peer any \\\n"
        f"    ikesa {p['ikesa']} \\\n    childsa {p['childsa']} \\\n"
        f'    srcid {gw.id} eap "mschap-v2" \\\n'
        f"    config address {pool} config name-server {DNS}"
    )
    return "\n".join(lines) + "\n"


def eap_client(topo, gw, ca, profile, name="rw", user="alice", local_id=None):
    p = PROFILES[profile]
    return Conn(
        name,
        local_addrs=[topo.addr("a")],
        remote_addrs=[topo.addr("b")],
        local=Auth.eap("eap-mschapv2", eap_id=user, id=local_id),
        remote=Auth.pubkey(gw.id, cacerts=[ca.crt]),
        children=[Child("net", remote_ts=[GW_NET], esp_proposals=list(p["esp"]))],
        proposals=list(p["proposals"]),
        vips=["0.0.0.0"],
    )


def start_eap(lab, profile, *, password=PASSWORD, pool=POOL, conns=None, secrets=None, users=None):
    pki, topo = lab.pki, lab.topo
    kind = PROFILES[profile]["kind"]
    gw = pki.cert("b", kind)
    root = iked_dir(lab, gw, [pki.ca(kind)])
    iked = lab.pyiked(
        "b",
        eap_gateway(topo, gw, profile, pool, users or (("alice", PASSWORD),)),
        args=["--iked-dir", root],
    )
    swan = lab.strongswan(
        "a",
        conns=conns or [eap_client(topo, gw, pki.ca(kind), profile)],
        secrets=secrets or [Secret.eap("alice", password)],
    )
    return swan, iked, gw


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_eap_mschapv2_client_gets_a_virtual_ip_and_dns(rwlab, profile):
    swan, iked, gw = start_eap(rwlab, profile)
    r = swan.initiate("net", "rw")
    assert r, r
    text = r.text
    assert f"authentication of '{gw.id}' with" in text  # the gateway's certificate first (§2.16)
    assert "EAP method EAP_MSCHAPV2 succeeded, MSK established" in text
    assert (
        "authentication of '10.231.0.2' with EAP successful" in text
        or f"authentication of '{gw.id}' with EAP successful" in text
    )
    sa = swan.wait_sa("rw", "net")
    (vip,) = sa.local_vips
    assert ipaddress.ip_address(vip) in ipaddress.ip_network(POOL)
    assert sa.child("net").local_ts == [f"{vip}/32"]  # `to dynamic`, narrowed to the lease
    assert sa.child("net").remote_ts == [GW_NET]
    swan.wait_for_log(r"installing new virtual IP " + vip.replace(".", r"\."))
    swan.wait_for_log(r"processing INTERNAL_IP4_DNS attribute")
    iked.wait_for_log(rf"leased {vip.replace('.', '.')} to alice")
    iked.wait_for_log(r"EAP-MSCHAPv2 user 'alice' authenticated")
    # from the virtual IP through the tunnel to the gateway's network (pyiked's userspace ESP)
    topo = rwlab.topo
    ping = topo.ping("a", vip, topo.inner_addr("b"), count=3)
    assert ping, ping


def test_wrong_eap_password(rwlab):
    swan, iked, gw = start_eap(rwlab, "windows", password="not the password")
    r = swan.initiate("net", "rw", timeout=6)
    assert not r
    swan.wait_for_log(
        r"received EAP_FAILURE, EAP authentication failed|received AUTHENTICATION_FAILED"
    )
    swan.wait_for_log(r"received AUTHENTICATION_FAILED notify error")
    iked.wait_for_log(r"EAP failed: wrong password for EAP user 'alice'")
    assert not swan.list_sas("rw")


def test_exhausted_pool(rwlab):
    pki, topo = rwlab.pki, rwlab.topo
    gw, ca = pki.cert("b", "ec"), pki.ca("ec")
    conns = [
        eap_client(topo, gw, ca, "macos", "rw", "alice", local_id="alice@pk.test"),
        eap_client(topo, gw, ca, "macos", "rw2", "bob", local_id="bob@pk.test"),
    ]
    swan, iked, _ = start_eap(
        rwlab,
        "macos",
        pool="10.231.100.7/32",
        conns=conns,
        secrets=[Secret.eap("alice", PASSWORD), Secret.eap("bob", "bob-pk-pass-2")],
        users=(("alice", PASSWORD), ("bob", "bob-pk-pass-2")),
    )
    assert swan.initiate("net", "rw"), "alice takes the only address"
    assert swan.wait_sa("rw", "net").local_vips == ["10.231.100.7"]
    r = swan.initiate("net", "rw2", timeout=6)
    assert not r
    swan.wait_for_log(r"received INTERNAL_ADDRESS_FAILURE notify")
    iked.wait_for_log(r"is exhausted")
