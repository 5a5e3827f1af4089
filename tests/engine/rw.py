"""Road-warrior fixtures for engine tests: certificate stores from tests/data/pki (made by
strongSwan's `pki`, see make.sh), certificate and EAP policies, the A/B pair with them."""

from __future__ import annotations

import datetime
import ipaddress
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pyiked.config.identity import parse_identity
from pyiked.config.model import Auth, CfgOption, Config, Flow, Policy, Settings, User
from pyiked.config.store import PolicyStore
from pyiked.core.certs import CertStore
from pyiked.core.engine import Engine

from .simnet import A_IP, A_NET, B_IP, B_NET, SimNet, seeded_bytes

PKI = Path(__file__).resolve().parent.parent / "data" / "pki"
NOW = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)


@lru_cache(maxsize=None)
def cert(name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((PKI / f"{name}.crt").read_bytes())


@lru_cache(maxsize=None)
def key(name: str):
    return serialization.load_pem_private_key((PKI / f"{name}.key").read_bytes(), password=None)


@lru_cache(maxsize=None)
def crl(name: str):
    return x509.load_pem_x509_crl((PKI / f"{name}.crl").read_bytes())


def store(
    own=(), cas=("ca-ec", "ca-rsa"), intermediates=(), others=(), crls=(), clock=None
) -> CertStore:
    """A CertStore holding our certificates `own` (with their keys), trusting `cas`."""
    return CertStore(
        [cert(c) for c in cas],
        [cert(c) for c in intermediates],
        [key(n) for n in own],
        [cert(n) for n in (*own, *others)],
        [crl(c) for c in crls],
        clock=clock or (lambda: NOW),
    )


def rw_policy(
    name, local_ip, peer_ip, local_net, remote_net, srcid=None, dstid=None, method="signature", **kw
) -> Policy:
    fields = dict(
        name=name,
        local=ipaddress.ip_network(local_ip),
        peer=ipaddress.ip_network(peer_ip),
        flows=(
            Flow(
                ipaddress.ip_network(local_net) if local_net else None,
                ipaddress.ip_network(remote_net) if remote_net else None,
                src_dynamic=local_net is None,
                dst_dynamic=remote_net is None,
            ),
        ),
        srcid=parse_identity(srcid) if srcid else None,
        dstid=parse_identity(dstid) if dstid else None,
        auth=Auth(method, eap="mschap-v2" if method == "eap" else None),
    )
    fields.update(kw)
    return Policy(**fields)


def engine(policies, seed, certs=None, settings=None, users=()) -> Engine:
    config = Config(
        settings=settings or Settings(),
        policies=tuple(policies),
        users=tuple(User(n, p) for n, p in users),
    )
    return Engine(PolicyStore(config), random=seeded_bytes(seed), strict=True, certs=certs)


def cert_pair(
    a_own=("a-ec",),
    b_own=("b-ec",),
    a_cas=("ca-ec", "ca-rsa"),
    b_cas=("ca-ec", "ca-rsa"),
    a_kw=None,
    b_kw=None,
    settings=None,
    a_settings=None,
    b_settings=None,
    seed=1,
    net_kw=None,
    a_store=None,
    b_store=None,
    b_intermediates=("int-ec",),
):
    """A initiates to B, both with certificates (B's b-ec chains through int-ec)."""
    net = SimNet(seed=seed, **(net_kw or {}))
    a_kw = {
        "srcid": f"{a_own[0]}.pk.test" if a_own else None,
        "dstid": f"{b_own[0]}.pk.test",
        **(a_kw or {}),
    }
    b_kw = {
        "srcid": f"{b_own[0]}.pk.test" if b_own else None,
        "dstid": f"{a_own[0]}.pk.test" if a_own else None,
        **(b_kw or {}),
    }
    pa = rw_policy("a", A_IP, B_IP, A_NET, B_NET, active=True, **a_kw)
    pb = rw_policy("b", B_IP, A_IP, B_NET, A_NET, **b_kw)
    net.add(
        A_IP, engine([pa], seed * 2 + 1, a_store or store(a_own, a_cas), a_settings or settings)
    )
    net.add(
        B_IP,
        engine(
            [pb],
            seed * 2 + 2,
            b_store or store(b_own, b_cas, b_intermediates),
            b_settings or settings,
        ),
    )
    return net, pa, pb


POOL = "10.231.100.0/24"
DNS = "10.231.2.1"


def eap_pair(
    password=b"alice-pk-pass-1",
    pool=POOL,
    b_own=("b-ec",),
    settings=None,
    seed=1,
    net_kw=None,
    b_kw=None,
    a_kw=None,
    request=True,
    users=(("alice", b"alice-pk-pass-1"),),
):
    """A road warrior (EAP-MSCHAPv2 as alice, asks for an address) to gateway B (certificate,
    `from 10.231.2.0/24 to dynamic`, a pool and a name server)."""
    net = SimNet(seed=seed, **(net_kw or {}))
    requests = (CfgOption("address", None), CfgOption("name-server", None)) if request else ()
    pa = rw_policy(
        "rw",
        A_IP,
        B_IP,
        None,
        B_NET,
        srcid="alice",
        dstid=f"{b_own[0]}.pk.test",
        method="eap",
        active=True,
        request=requests,
        **(a_kw or {}),
    )
    config = (
        CfgOption(
            "address", ipaddress.ip_network(pool) if "/" in pool else ipaddress.ip_address(pool)
        ),
        CfgOption("name-server", ipaddress.ip_address(DNS)),
    )
    pb = rw_policy(
        "gw",
        B_IP,
        "0.0.0.0/0",
        B_NET,
        None,
        srcid=f"{b_own[0]}.pk.test",
        method="eap",
        config=config,
        **(b_kw or {}),
    )
    net.add(
        A_IP,
        engine(
            [pa],
            seed * 2 + 1,
            store((), ("ca-ec", "ca-rsa")),
            settings,
            users=(("alice", password),),
        ),
    )
    net.add(
        B_IP,
        engine(
            [pb],
            seed * 2 + 2,
            store(b_own, ("ca-ec", "ca-rsa"), ("int-ec",)),
            settings,
            users=users,
        ),
    )
    return net, pa, pb
