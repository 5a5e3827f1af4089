"""pyiked.config: iked.conf -> frozen Config / Policy objects, and the PolicyStore.

    from pyiked.config import load_config, PolicyStore
    config, warnings = load_config("/etc/iked.conf")
    store = PolicyStore(config)
"""

from .capabilities import CAPABILITIES, check_capabilities, effective_config, honoured
from .errors import ConfigError, ConfigWarning
from .identity import identity_from_payload, identity_matches, parse_identity
from .loader import load_config, parse_config_text, parse_file, parse_text
from .model import (
    Auth,
    CfgOption,
    Config,
    Flow,
    Identity,
    Policy,
    ProposalSpec,
    Settings,
    User,
)
from .printer import format_config, format_policy
from .store import PolicyStore, flow_selectors

__all__ = [
    "CAPABILITIES",
    "Auth",
    "CfgOption",
    "Config",
    "ConfigError",
    "ConfigWarning",
    "Flow",
    "Identity",
    "Policy",
    "PolicyStore",
    "ProposalSpec",
    "Settings",
    "User",
    "check_capabilities",
    "effective_config",
    "flow_selectors",
    "format_config",
    "format_policy",
    "honoured",
    "identity_from_payload",
    "identity_matches",
    "load_config",
    "parse_config_text",
    "parse_file",
    "parse_identity",
    "parse_text",
]
