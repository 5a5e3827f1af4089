"""pyiked's interop harness: real strongSwan peers in network namespaces.

Modules (all importable from here):
    util        wait_for, Proc (process group runner), tool detection, HarnessError
    topology    Topology: two netns "a"/"b" on a veth, inner addresses on lo, run/popen/ping
    swanctl     Conn/Child/Auth/Secret/Pool: swanctl.conf as data (text and VICI forms)
    strongswan  StrongSwan: charon-systemd + VICI control; IkeSA/ChildSA from list-sas
    capture     Capture: tshark in a namespace, pcap readers (ESP-in-UDP, IKE, SKF)
    pki         PKI: CAs, end-entity certs, CRLs with strongSwan's `pki`
    pyiked_runner  Pyiked: the daemon (or a stand-in) as a process in a namespace
    scenarios   the PSK site-to-site scenario: strongSwan conns and iked.conf text
    lab         Lab: one test's topology + processes, and the two s2s scenarios

See tests/interop/README.md for how to write a test.
"""

from .capture import Capture
from .lab import S2S, Lab
from .pki import PKI, Cert
from .pyiked_runner import DAEMON_MODULE, STAND_IN_MODULE, Pyiked, module_available
from .scenarios import (
    CHILD,
    CONN,
    IDS,
    IKED_S2S_INITIATOR,
    IKED_S2S_RESPONDER,
    PSK,
    iked_s2s,
    psk_secret,
    swan_conn,
)
from .strongswan import (
    ChildSA,
    CommandResult,
    Events,
    IkeSA,
    StrongSwan,
    charon_plugins,
    logged_secrets,
)
from .swanctl import Auth, Child, Conn, Pool, Secret, render_settings, render_swanctl
from .topology import PingResult, Topology
from .util import HarnessError, Proc, WaitTimeout, missing_requirements, tool, wait_for

__all__ = [
    "CHILD",
    "CONN",
    "DAEMON_MODULE",
    "IDS",
    "IKED_S2S_INITIATOR",
    "IKED_S2S_RESPONDER",
    "PKI",
    "PSK",
    "S2S",
    "STAND_IN_MODULE",
    "Auth",
    "Capture",
    "Cert",
    "Child",
    "ChildSA",
    "CommandResult",
    "Conn",
    "Events",
    "HarnessError",
    "IkeSA",
    "Lab",
    "PingResult",
    "Pool",
    "Proc",
    "Pyiked",
    "Secret",
    "StrongSwan",
    "Topology",
    "WaitTimeout",
    "charon_plugins",
    "iked_s2s",
    "logged_secrets",
    "missing_requirements",
    "module_available",
    "psk_secret",
    "render_settings",
    "render_swanctl",
    "swan_conn",
    "tool",
    "wait_for",
]
