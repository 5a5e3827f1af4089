"""The daemon's certificate store: `--iked-dir`, loaded only for certificate/EAP rules, and
a private key others may read stops the daemon before it binds anything (as iked)."""

import os
import shutil

from pyiked.config import parse_config_text
from pyiked.daemon import cli, run
from tests.engine.rw import PKI

CERT_RULE = "ikev2 esp from 10.0.0.0/8 to 10.1.0.0/16 peer 192.0.2.1 srcid a-ec.pk.test ecdsa256\n"
PSK_RULE = 'ikev2 esp from 10.0.0.0/8 to 10.1.0.0/16 peer 192.0.2.1 psk "k"\n'


def layout(tmp_path, mode=0o600):
    root = tmp_path / "iked"
    for d in ("ca", "certs", "private", "crls"):
        (root / d).mkdir(parents=True)
    shutil.copy(PKI / "ca-ec.crt", root / "ca")
    shutil.copy(PKI / "a-ec.crt", root / "certs")
    shutil.copy(PKI / "a-ec.key", root / "private" / "local.key")
    os.chmod(root / "private" / "local.key", mode)
    return str(root)


def test_iked_dir_flag():
    assert cli.build_parser().parse_args([]).iked_dir == "/etc/iked"
    assert cli.build_parser().parse_args(["--iked-dir", "/srv/iked"]).iked_dir == "/srv/iked"


def test_psk_only_needs_no_store(tmp_path):
    config, _ = parse_config_text(PSK_RULE)
    assert run.load_certs(config, str(tmp_path / "absent")) is None


def test_certificate_rules_load_the_layout(tmp_path):
    config, _ = parse_config_text(CERT_RULE)
    store = run.load_certs(config, layout(tmp_path))
    assert len(store.credentials) == 1 and store.has_cas


def test_a_readable_private_key_stops_the_daemon(tmp_path, capsys):
    config, _ = parse_config_text(CERT_RULE)
    args = cli.build_parser().parse_args(["--iked-dir", layout(tmp_path, 0o644)])
    assert run.run(args, config) == 1
    assert "refusing the private key" in capsys.readouterr().err
