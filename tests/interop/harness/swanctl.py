"""strongSwan configuration as Python data.

`Conn`, `Child`, `Auth`, `Secret` and `Pool` describe what swanctl.conf describes. Each
renders two ways from the same fields:

* `settings()`: the swanctl.conf tree (certificates as absolute file paths), which
  `render_settings` / `render_swanctl` turn into text that `swanctl --load-all --file`
  accepts, so a failing test leaves a readable, replayable config behind;
* `vici()`: the VICI message charon's load-conn/load-shared/load-pool expect (the same
  keys; list settings as lists, certificates as PEM blobs read from the files).

Anything the dataclasses do not name goes in `extra` (a dict merged into the section).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

# ----------------------------------------------------------------------- settings syntax

_SAFE = re.compile(r"[A-Za-z0-9._:/@%+\-, ]*")


def _scalar(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Path):
        return str(value.resolve())
    if isinstance(value, (list, tuple)):
        return ", ".join(_scalar(v) for v in value)
    return str(value)


def _quote(text: str) -> str:
    # strongSwan's settings parser takes unquoted values up to the end of the line, but
    # '#', '{', '}', '"' and '=' are special; quoted strings know \" and \\ escapes.
    if text and _SAFE.fullmatch(text) and text == text.strip():
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_settings(tree: Mapping, indent: int = 0) -> str:
    """strongswan.conf / swanctl.conf text for a nested dict.

    dict values are sections, lists are joined with ", ", bools become yes/no, None
    values are left out; values with special characters are quoted.
    """
    pad = "    " * indent
    lines = []
    for key, value in tree.items():
        if value is None:
            continue
        if isinstance(value, Mapping):
            lines.append(f"{pad}{key} {{")
            body = render_settings(value, indent + 1)
            if body:
                lines.append(body)
            lines.append(f"{pad}}}")
        else:
            lines.append(f"{pad}{key} = {_quote(_scalar(value))}")
    return "\n".join(lines)


def merge(base: dict, extra: Mapping | None) -> dict:
    """Deep-merge `extra` into `base` (in place) and return base."""
    for key, value in (extra or {}).items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = dict(value) if isinstance(value, Mapping) else value
    return base


def _vici_value(value):
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return [_vici_value(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _vici_value(v) for k, v in value.items() if v is not None}
    if isinstance(value, (bytes, str)):
        return value
    return str(value)


def _list(value) -> list:
    if value is None:
        return []
    if isinstance(value, (str, Path)):
        return [value]
    return list(value)


def _section(fields: Mapping) -> dict:
    """Drop unset (None or empty-list) fields."""
    return {k: v for k, v in fields.items() if v is not None and v != [] and v != ()}


def _read_blobs(paths) -> list[bytes]:
    return [Path(p).read_bytes() for p in _list(paths)]


# ----------------------------------------------------------------------- connections


@dataclass
class Auth:
    """One authentication round (a swanctl.conf local/remote section).

    auth: "psk", "pubkey", "eap-mschapv2", "eap-identity", "eap" (remote: any EAP)...
    certs/cacerts/pubkeys are file paths (PEM or DER).
    """

    auth: str = "psk"
    id: str | None = None
    certs: Sequence = ()
    cacerts: Sequence = ()
    pubkeys: Sequence = ()
    eap_id: str | None = None
    revocation: str | None = None  # strict | ifuri | relaxed
    round: int | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def psk(cls, id: str | None = None, **kw) -> Auth:
        return cls("psk", id=id, **kw)

    @classmethod
    def pubkey(cls, id: str | None = None, cert=None, cacerts=(), **kw) -> Auth:
        """Certificate auth: our `cert` (a path) for local, `cacerts` to trust for remote."""
        return cls("pubkey", id=id, certs=_list(cert), cacerts=_list(cacerts), **kw)

    @classmethod
    def eap(cls, method: str = "eap-mschapv2", eap_id: str | None = None,
            id: str | None = None, **kw) -> Auth:
        return cls(method, id=id, eap_id=eap_id, **kw)

    def _fields(self) -> dict:
        return _section({
            "auth": self.auth, "id": self.id, "eap_id": self.eap_id,
            "revocation": self.revocation, "round": self.round,
        })

    def settings(self) -> dict:
        d = self._fields()
        for key in ("certs", "cacerts", "pubkeys"):
            paths = [str(Path(p).resolve()) for p in _list(getattr(self, key))]
            if paths:
                d[key] = paths
        return merge(d, self.extra)

    def vici(self) -> dict:
        d = self._fields()
        for key in ("certs", "cacerts", "pubkeys"):
            blobs = _read_blobs(getattr(self, key))
            if blobs:
                d[key] = blobs
        return _vici_value(merge(d, self.extra))


@dataclass
class Child:
    """A CHILD_SA config (swanctl.conf children.<name>). Times: seconds or "1h"-style."""

    name: str = "net"
    local_ts: Sequence[str] = ()
    remote_ts: Sequence[str] = ()
    esp_proposals: Sequence[str] = ("aes256gcm16",)
    mode: str = "tunnel"  # tunnel | transport | pass | drop
    start_action: str = "none"  # none | trap | start
    close_action: str | None = None
    dpd_action: str | None = None  # clear | trap | restart
    rekey_time: int | str | None = None
    life_time: int | str | None = None
    rand_time: int | str | None = None
    rekey_bytes: int | None = None
    rekey_packets: int | None = None
    inactivity: int | str | None = None
    extra: dict = field(default_factory=dict)

    def settings(self) -> dict:
        d = _section({
            "local_ts": _list(self.local_ts), "remote_ts": _list(self.remote_ts),
            "esp_proposals": _list(self.esp_proposals), "mode": self.mode,
            "start_action": self.start_action, "close_action": self.close_action,
            "dpd_action": self.dpd_action, "rekey_time": self.rekey_time,
            "life_time": self.life_time, "rand_time": self.rand_time,
            "rekey_bytes": self.rekey_bytes, "rekey_packets": self.rekey_packets,
            "inactivity": self.inactivity,
        })
        return merge(d, self.extra)

    def vici(self) -> dict:
        return _vici_value(self.settings())


def _rounds(value, side: str) -> dict:
    """local/remote sections; several rounds become <side>-1, <side>-2 with round = n."""
    auths = [value] if isinstance(value, Auth) else list(value)
    if len(auths) == 1:
        return {side: auths[0]}
    out = {}
    for n, a in enumerate(auths, 1):
        if a.round is None:
            a = replace(a, round=n)
        out[f"{side}-{n}"] = a
    return out


@dataclass
class Conn:
    """An IKE connection (swanctl.conf connections.<name>).

    role "initiator" or "responder" documents intent and sets defaults: a responder
    without remote_addrs accepts any peer (%any); an initiator needs remote_addrs. With
    `auto_start`, an initiator's children get start_action=start (charon initiates at
    load); otherwise the test calls `StrongSwan.initiate`.
    """

    name: str
    local_addrs: Sequence[str] = ()
    remote_addrs: Sequence[str] = ()
    local: Auth | Sequence[Auth] = field(default_factory=Auth)
    remote: Auth | Sequence[Auth] = field(default_factory=Auth)
    children: Sequence[Child] = ()
    proposals: Sequence[str] = ("aes256gcm16-prfsha256-x25519",)
    role: str = "initiator"
    auto_start: bool = False
    version: int = 2
    vips: Sequence[str] = ()
    pools: Sequence[str] = ()
    fragmentation: bool | str | None = None  # yes | accept | force | no
    rekey_time: int | str | None = None
    over_time: int | str | None = None
    reauth_time: int | str | None = None
    dpd_delay: int | str | None = None
    dpd_timeout: int | str | None = None
    keyingtries: int | None = None
    unique: str | None = None
    mobike: bool | None = None
    encap: bool | None = None
    send_cert: str | None = None
    send_certreq: bool | None = None
    local_port: int | None = None
    remote_port: int | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.role not in ("initiator", "responder"):
            raise ValueError(f"role must be initiator or responder, not {self.role!r}")
        if self.role == "initiator" and not _list(self.remote_addrs):
            raise ValueError(f"initiator conn {self.name!r} needs remote_addrs")

    def child(self, name: str) -> Child:
        for c in self.children:
            if c.name == name:
                return c
        raise KeyError(name)

    def _fields(self) -> dict:
        remote_addrs = _list(self.remote_addrs) or ["%any"]
        return _section({
            "version": self.version, "local_addrs": _list(self.local_addrs),
            "remote_addrs": remote_addrs, "local_port": self.local_port,
            "remote_port": self.remote_port, "proposals": _list(self.proposals),
            "vips": _list(self.vips), "pools": _list(self.pools),
            "fragmentation": self.fragmentation, "rekey_time": self.rekey_time,
            "over_time": self.over_time, "reauth_time": self.reauth_time,
            "dpd_delay": self.dpd_delay, "dpd_timeout": self.dpd_timeout,
            "keyingtries": self.keyingtries, "unique": self.unique, "mobike": self.mobike,
            "encap": self.encap, "send_cert": self.send_cert,
            "send_certreq": self.send_certreq,
        })

    def _children(self, how: str) -> dict:
        out = {}
        for c in self.children:
            d = getattr(c, how)()
            if self.auto_start and self.role == "initiator" and "start_action" not in c.extra:
                d["start_action"] = "start"
            out[c.name] = d
        return out

    def settings(self) -> dict:
        """{name: section} for swanctl.conf's connections { }."""
        d = self._fields()
        for side in ("local", "remote"):
            for key, auth in _rounds(getattr(self, side), side).items():
                d[key] = auth.settings()
        d["children"] = self._children("settings")
        return {self.name: merge(d, self.extra)}

    def vici(self) -> dict:
        """{name: section} as the VICI load-conn message."""
        d = self._fields()
        for side in ("local", "remote"):
            for key, auth in _rounds(getattr(self, side), side).items():
                d[key] = auth.vici()
        d["children"] = self._children("vici")
        return {self.name: _vici_value(merge(d, self.extra))}


# ----------------------------------------------------------------------- credentials


@dataclass
class Secret:
    """A shared secret: kind "ike" (PSK), "eap", "xauth" or "ntlm", for `ids`."""

    kind: str
    secret: str
    ids: Sequence[str] = ()
    name: str | None = None

    @classmethod
    def psk(cls, secret: str, *ids: str, name: str | None = None) -> Secret:
        return cls("ike", secret, ids, name)

    @classmethod
    def eap(cls, user: str, password: str, name: str | None = None) -> Secret:
        return cls("eap", password, (user,), name)

    def __repr__(self):  # keep secrets out of test reports
        return f"Secret({self.kind!r}, ***, ids={list(self.ids)!r})"

    def key(self, index: int) -> str:
        return f"{self.kind}-{self.name or index}"

    def settings(self, index: int) -> dict:
        d = {"secret": self.secret}
        for n, ident in enumerate(self.ids, 1):
            d[f"id-{n}"] = ident
        return {self.key(index): d}

    def vici(self, index: int) -> dict:
        return {"id": self.key(index), "type": self.kind.upper(), "data": self.secret,
                "owners": list(self.ids)}


@dataclass
class Pool:
    """A virtual IP pool (swanctl.conf pools.<name>): addrs "10.231.100.0/24" or a range."""

    name: str
    addrs: str
    dns: Sequence[str] = ()
    extra: dict = field(default_factory=dict)

    def settings(self) -> dict:
        return {self.name: merge(_section({"addrs": self.addrs, "dns": _list(self.dns)}),
                                 self.extra)}

    def vici(self) -> dict:
        # attribute values are lists in VICI even when there is one
        body = {"addrs": self.addrs}
        if _list(self.dns):
            body["dns"] = _list(self.dns)
        for k, v in self.extra.items():
            body[k] = _list(v) if k != "addrs" else v
        return {self.name: _vici_value(body)}


def render_swanctl(conns=(), secrets=(), pools=()) -> str:
    """swanctl.conf text for the given objects.

    Private keys are not named in swanctl.conf (its secrets.private* sections only give
    passphrases): swanctl loads every key in the private/ directory next to the file.
    """
    tree: dict = {}
    if conns:
        tree["connections"] = {}
        for c in conns:
            tree["connections"].update(c.settings())
    if secrets:
        tree["secrets"] = {}
        for i, s in enumerate(secrets, 1):
            tree["secrets"].update(s.settings(i))
    if pools:
        tree["pools"] = {}
        for p in pools:
            tree["pools"].update(p.settings())
    return render_settings(tree) + "\n"
