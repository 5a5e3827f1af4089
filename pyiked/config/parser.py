"""iked.conf parser: statements, global settings, users and `ikev2` rules.

The grammar is OpenIKED's parse.y (iked.conf(5)); a rule's parts come in its fixed order:

    ikev2 [name] [quick|skip|default] [passive|active] [ipcomp] [tunnel|transport] [natt]
          [esp|ah] [inet|inet6] [proto P | proto { P, ... }] [rdomain N]
          from SRC [(NAT)] [port P] to DST [port P] [[,] from ... to ...]...
          [peer ADDR [local ADDR] | local ADDR [peer ADDR]]
          [ikesa TRANSFORMS]... [childsa TRANSFORMS]...
          [srcid ID] [dstid ID] [ikelifetime T] [lifetime T [bytes B]]
          [psk KEY | psk file F | eap "mschap-v2" | rsa | ecdsa256 | ... | signature]
          [config OPT ADDR | request OPT ADDR]... [iface IF] [tag "T" | tap encN]...

(`to DST ... from SRC ...` and `{a, b}` address lists are accepted too.) The parser keeps
going after an error, so one run reports every problem. Building the frozen Policy out of
what a rule says (defaults, proposals, flows) is `rules.build_policy`.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable

from . import names
from .errors import ConfigError, ConfigWarning
from .lexer import EOF, ERROR, NL, PUNCT, QUOTED, WORD, Lexer, Token
from .model import Config, Settings, User
from .rules import HostEntry, RuleSpec, TransformBlock, build_policy
from .values import (
    default_resolver,
    hex_key,
    looks_numeric,
    parse_cfg_value,
    parse_network,
    reason,
    secrecy_problem,
)

# Reserved words (parse.y lookup()): an unquoted keyword is never a name or a value.
KEYWORDS = frozenset(
    """active ah any auth bytes cert_partial_chain childsa config couple decouple default
    dpd_check_interval dstid dynamic eap enc enforcesingleikesa esn esp file flow
    fragmentation from group iface ike ikelifetime ikesa ikev2 include inet inet6 ipcomp
    lifetime local maxage mobike name natt noenforcesingleikesa noesn nofragmentation
    nomobike nostickyaddress novendorid ocsp passive peer port prf proto psk quick rdomain
    request sa set skip srcid stickyaddress tag tap tcpmd5 to tolerate transport tunnel
    user vendorid""".split()
)

# ipsec.conf statements parse.y skips (otherrule): we skip them too, with a warning.
_OTHER_RULES = frozenset({"ike", "flow", "tcpmd5", "sa", "from", "to", "tunnel", "transport"})

_SET_FLAGS = {
    "active": ("active", True),
    "passive": ("active", False),
    "couple": ("couple", True),
    "decouple": ("couple", False),
    "fragmentation": ("fragmentation", True),
    "nofragmentation": ("fragmentation", False),
    "mobike": ("mobike", True),
    "nomobike": ("mobike", False),
    "vendorid": ("vendorid", True),
    "novendorid": ("vendorid", False),
    "enforcesingleikesa": ("enforcesingleikesa", True),
    "noenforcesingleikesa": ("enforcesingleikesa", False),
    "stickyaddress": ("stickyaddress", True),
    "nostickyaddress": ("stickyaddress", False),
    "cert_partial_chain": ("cert_partial_chain", True),
    "rsa_pss": ("rsa_pss", True),
    "norsa_pss": ("rsa_pss", False),
}

# pyiked's DoS thresholds: `set NAME N` (counts) or a time (halfopen_timeout).
_SET_NUMBERS = {
    "cookie_threshold": 0,
    "cookie_threshold_ip": 0,
    "halfopen_limit": 1,
    "halfopen_limit_ip": 1,
    "fragment_size": 0,
    "retransmit_tries": 0,
    "invalid_spi_rate": 0,
}
_SET_TIMES = {"halfopen_timeout": 1, "dpd_check_interval": 0, "retransmit_timeout": 1,
              "cookie_secret_lifetime": 1, "cookie_hold": 1}

_MACRO_NAME = re.compile(r"[A-Za-z0-9_]+\Z")
_NUMBER = re.compile(r"-?[0-9]+\Z")
_TIME = re.compile(r"([0-9]+)([mMhH]?)\Z")
_BYTES = re.compile(r"([0-9]+)([kKmMgG]?)\Z")
_HOSTNAME = re.compile(r"(?=.{1,253}\Z)[A-Za-z0-9_]([A-Za-z0-9_-]*)(\.[A-Za-z0-9_-]+)*\.?\Z")
_IFNAME = re.compile(r"[^\s/]{1,15}\Z")
_TAP = re.compile(r"enc([0-9]+)\Z")
MAX_INCLUDE_DEPTH = 16
KEYSIZE_LIMIT = 1024  # parse.y: largest psk file and inline key

Resolver = Callable[[str], list]


class _Syntax(Exception):
    """Abandon the current statement; the error (if any) is already recorded."""


class Parser:
    def __init__(
        self,
        text: str,
        name: str,
        defines: dict[str, str] | None = None,
        *,
        base_dir: str | None = None,
        resolver: Resolver | None = None,
        check_secrecy: bool = True,
    ):
        self.defines = dict(defines or {})
        self.lexer = Lexer(text, name, dict(self.defines))
        # Relative paths in a file start at that file's directory (the main text: base_dir).
        self.base_dirs = {name: base_dir if base_dir is not None else os.getcwd()}
        self.resolver = resolver
        self.check_secrecy = check_secrecy
        self.errors: list[ConfigError] = []
        self.warnings: list[ConfigWarning] = []
        self.settings: dict = {}
        self.settings_at: dict[str, tuple] = {}
        self.policies: list = []
        self.positions: list[dict] = []
        self.users: dict[str, User] = {}
        self.files: list[str] = [name]
        self.rule_number = 0
        self.macro_at: dict[str, Token] = {}
        self.after_secret = False
        self.tok: Token = self._lex()

    # -- tokens ----------------------------------------------------------------------

    def _lex(self) -> Token:
        tok = self.lexer.next_token()
        if self.lexer.errors:
            self.errors.extend(self.lexer.errors)
            self.lexer.errors.clear()
        return tok

    def advance(self) -> Token:
        tok = self.tok
        if tok.kind == ERROR:
            raise _Syntax()
        self.tok = self._lex()
        self.after_secret = False
        return tok

    def secret(self, what: str) -> Token:
        """A PSK or password: an error on the word after it must not echo that word,
        which may be the rest of an unquoted secret."""
        tok = self.string(what)
        self.after_secret = True
        return tok

    def is_kw(self, *words: str) -> bool:
        return self.tok.kind == WORD and self.tok.value in words

    def accept(self, word: str) -> Token | None:
        if self.is_kw(word):
            return self.advance()
        return None

    def is_punct(self, c: str) -> bool:
        return self.tok.kind == PUNCT and self.tok.value == c

    def is_string(self) -> bool:
        """A STRING in parse.y terms: quoted, or an unquoted word that is not a keyword."""
        return self.tok.kind == QUOTED or (
            self.tok.kind == WORD and self.tok.value not in KEYWORDS
        )

    def error_at(self, tok: Token, message: str) -> None:
        self.errors.append(ConfigError(tok.file, tok.line, tok.column, message))

    def fail(self, *expected: str, tok: Token | None = None, hint: str = "") -> None:
        tok = tok or self.tok
        if tok.kind == ERROR:
            raise _Syntax()
        if len(expected) == 1:
            want = expected[0]
        else:
            want = "one of " + ", ".join(expected[:-1]) + " or " + expected[-1]
        got = tok.describe()
        if self.after_secret and tok is self.tok and tok.kind in (WORD, QUOTED):
            got = "another word (not shown: it may be part of a secret; quote secrets)"
        self.error_at(tok, f"expected {want}, got {got}{hint}")
        raise _Syntax()

    def invalid(self, tok: Token, message: str) -> None:
        self.error_at(tok, message)
        raise _Syntax()

    def warn(self, tok: Token, message: str) -> None:
        self.warnings.append(ConfigWarning(tok.file, tok.line, tok.column, message))

    def expect(self, word: str) -> Token:
        if not self.is_kw(word):
            self.fail(f'"{word}"')
        return self.advance()

    def expect_punct(self, c: str) -> Token:
        if not self.is_punct(c):
            self.fail(f'"{c}"')
        return self.advance()

    def string(self, what: str) -> Token:
        if not self.is_string():
            self.fail(what)
        return self.advance()

    def end_of_statement(self, *also: str) -> None:
        if self.tok.kind not in (NL, EOF):
            self.fail(*also, "end of line")

    # -- top level -------------------------------------------------------------------

    def parse(self) -> Config:
        while self.tok.kind != EOF:
            try:
                self.statement()
            except _Syntax:
                self._skip_statement()
        for name, tok in self.macro_at.items():  # in the order they were defined
            if name not in self.lexer.used_macros:
                self.warn(tok, f"macro '{name}' defined but not used")
        if not self.policies and not self.users and not self.errors:
            self.warnings.append(
                ConfigWarning(self.files[0], 0, 0, "no valid configuration rules found")
            )
        if self.errors:
            raise ConfigError.collect(self.errors)
        return Config(
            settings=Settings(**self.settings),
            policies=tuple(self.policies),
            users=tuple(self.users.values()),
            files=tuple(self.files),
        )

    def _skip_statement(self) -> None:
        while self.tok.kind not in (NL, EOF):
            self.tok = self._lex()

    def statement(self) -> None:
        tok = self.tok
        if tok.kind == NL:
            self.advance()
            return
        if tok.kind == WORD and tok.value == "include":
            self.include()
        elif tok.kind == WORD and tok.value == "set":
            self.set_statement()
        elif tok.kind == WORD and tok.value == "user":
            self.user_statement()
        elif tok.kind == WORD and tok.value == "ikev2":
            self.rule()
        elif tok.kind == WORD and tok.value in _OTHER_RULES:
            self.warn(tok, f'ignoring a "{tok.value}" line: not an iked.conf statement')
            self._skip_statement()
        elif tok.kind in (WORD, QUOTED):
            self.macro_definition()
        else:
            self.fail('"ikev2"', '"set"', '"user"', '"include"', "a macro definition")

    def include(self) -> None:
        self.advance()
        tok = self.string("a file name")
        self.end_of_statement()
        path = tok.value
        if not os.path.isabs(path):
            path = os.path.join(self.base_dirs[tok.file], path)
        path = os.path.normpath(path)
        if path in self.lexer.file_stack():
            self.invalid(tok, f"include loop: {tok.value} includes itself")
        if self.lexer.depth >= MAX_INCLUDE_DEPTH:
            self.invalid(tok, f"includes nested more than {MAX_INCLUDE_DEPTH} deep")
        try:
            with open(path, "rb") as fh:
                st = os.fstat(fh.fileno())
                text = fh.read().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self.invalid(tok, f"failed to include file {tok.value}: {reason(exc)}")
        if self.check_secrecy:
            problem = secrecy_problem(path, st)
            if problem:
                self.warn(tok, f"{path}: {problem} (iked refuses such a file)")
        self.files.append(path)
        # Push before reading past the newline, so the next token comes from the new file.
        self.lexer.push_file(path, text)
        self.base_dirs[path] = os.path.dirname(path)
        self.advance()

    def macro_definition(self) -> None:
        name_tok = self.advance()
        if not self.is_punct("="):
            if name_tok.kind == WORD and name_tok.value in KEYWORDS:
                self.fail('"ikev2"', '"set"', '"user"', '"include"', tok=name_tok)
            self.fail('"="', hint=f" (after {name_tok.describe()})")
        if name_tok.kind == WORD and name_tok.value in KEYWORDS:
            self.invalid(name_tok, f'macro name "{name_tok.value}" is a reserved word')
        if not _MACRO_NAME.match(name_tok.value):
            self.invalid(
                name_tok, f"invalid macro name {name_tok.describe()}: use letters, digits, _"
            )
        self.advance()
        parts = []
        while self.tok.kind in (WORD, QUOTED):
            parts.append(self.advance().value)
        if not parts:
            self.fail("a value")
        self.end_of_statement()
        # `-D name=value` wins over the file (parse.y symset persist).
        if name_tok.value not in self.defines:
            self.lexer.macros[name_tok.value] = " ".join(parts)
            self.macro_at.setdefault(name_tok.value, name_tok)

    # -- set ---------------------------------------------------------------------------

    def _set(self, field: str, value, tok: Token) -> None:
        self.settings[field] = value
        self.settings_at[field] = (tok.file, tok.line, tok.column)

    def set_statement(self) -> None:
        self.advance()
        tok = self.tok
        if tok.kind != WORD:
            self.fail("a setting")
        word = tok.value
        if word in _SET_FLAGS:
            self.advance()
            field, value = _SET_FLAGS[word]
            self._set(field, value, tok)
        elif word == "ocsp":
            self.advance()
            url = self.string("an OCSP responder URL")
            self._set("ocsp", url.value, tok)
            if self.accept("tolerate"):
                self._set("ocsp_tolerate", self.time_value(), tok)
                if self.accept("maxage"):
                    self._set("ocsp_maxage", self.time_value(), tok)
        elif word in _SET_NUMBERS:
            self.advance()
            high = 65535 if word == "fragment_size" else 2**31 - 1  # an IP datagram size
            self._set(word, self.number(_SET_NUMBERS[word], high), tok)
        elif word in _SET_TIMES:
            self.advance()
            self._set(word, self.time_value(minimum=_SET_TIMES[word]), tok)
        else:
            known = sorted([*_SET_FLAGS, "ocsp", *_SET_NUMBERS, *_SET_TIMES])
            self.invalid(tok, f"unknown setting {tok.describe()} (known: {', '.join(known)})")
        self.end_of_statement()

    # -- values ----------------------------------------------------------------------

    def number(self, low: int, high: int, what: str = "a number") -> int:
        tok = self.tok
        if tok.kind != WORD or not _NUMBER.match(tok.value):
            self.fail(what)
        value = int(tok.value)
        if not low <= value <= high:
            self.invalid(tok, f"{tok.value} is outside the range {low}..{high}")
        self.advance()
        return value

    def time_value(self, minimum: int = 0) -> int:
        """Seconds; `m` and `h` suffixes (iked.conf(5), case-insensitive)."""
        tok = self.tok
        m = _TIME.match(tok.value) if tok.kind == WORD else None
        if not m:
            if tok.kind == WORD and tok.value[:1].isdigit():
                self.invalid(tok, f"invalid time {tok.describe()}: use N, Nm or Nh")
            self.fail("a time (seconds, or with an m or h suffix)")
        seconds = int(m.group(1)) * {"": 1, "m": 60, "h": 3600}[m.group(2).lower()]
        if seconds < minimum or seconds > 2**32 - 1:
            self.invalid(tok, f"time {tok.value} is outside the range {minimum}..{2**32 - 1}")
        self.advance()
        return seconds

    def byte_value(self) -> int:
        """Bytes; `K`, `M` and `G` suffixes (powers of 1024, as parse.y byte_spec)."""
        tok = self.tok
        m = _BYTES.match(tok.value) if tok.kind == WORD else None
        if not m:
            if tok.kind == WORD and tok.value[:1].isdigit():
                self.invalid(tok, f"invalid byte count {tok.describe()}: use N, NK, NM or NG")
            self.fail("a byte count (with an optional K, M or G suffix)")
        scale = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2).lower()]
        value = int(m.group(1)) * scale
        if value > 2**64 - 1:  # the kernel's byte limits are 64-bit counters
            self.invalid(tok, f"byte count {tok.value} is larger than 2^64 - 1")
        self.advance()
        return value

    # -- user ------------------------------------------------------------------------

    def user_statement(self) -> None:
        self.advance()
        name = self.string("a user name")
        password = self.secret("a password")
        self.end_of_statement()
        if not name.value:
            self.invalid(name, "invalid user name: empty")
        if not password.value:
            self.invalid(password, "invalid password: empty")
        if name.value in self.users:
            self.warn(name, f'user "{name.value}" defined again; the last definition counts')
        self.users[name.value] = User(name.value, password.value.encode())

    # -- ikev2 rules -----------------------------------------------------------------

    def rule(self) -> None:
        start = self.advance()
        self.rule_number += 1
        spec = RuleSpec(start=start, number=self.rule_number)
        if self.is_string():
            spec.name = self.advance()
        for group in (("quick", "skip", "default"), ("passive", "active"), ("ipcomp",),
                      ("tunnel", "transport"), ("natt",), ("esp", "ah"), ("inet", "inet6")):
            if self.is_kw(*group):
                tok = self.advance()
                spec.flags[group[0]] = tok
        if self.is_kw("proto"):
            self.protocols(spec)
        if self.is_kw("rdomain"):
            spec.flags["rdomain"] = self.advance()
            spec.rdomain = self.number(0, 255, "a routing domain number")
        self.flows(spec)
        self.peers(spec)
        while self.is_kw("ikesa"):
            spec.ikesa.append(self.transforms(self.advance()))
        while self.is_kw("childsa"):
            spec.childsa.append(self.transforms(self.advance()))
        if self.accept("srcid"):
            spec.srcid = self.string("an identity")
        if self.accept("dstid"):
            spec.dstid = self.string("an identity")
        if self.accept("ikelifetime"):
            spec.ikelifetime = self.time_value()
        if self.is_kw("lifetime"):
            spec.flags["lifetime"] = self.advance()
            spec.lifetime = self.time_value()
            if self.accept("bytes"):
                spec.lifetime_bytes = self.byte_value()
        self.auth(spec)
        while self.is_kw("config", "request"):
            self.cfg_option(spec)
        if self.is_kw("iface"):
            spec.flags["iface"] = self.advance()
            spec.iface = self.string("an interface name")
            if not _IFNAME.match(spec.iface.value):
                self.invalid(spec.iface, f"invalid iface {spec.iface.describe()}")
        while self.is_kw("tag", "tap"):
            self.filter(spec)
        if self.tok.kind not in (NL, EOF):
            self._rule_tail_error(spec)
        policy, positions = build_policy(spec, self)
        if any(p.name == policy.name for p in self.policies):
            # pyikectl and the logs name policies; parse.y says a name should occur once.
            self.warn(spec.name or start, f'policy name "{policy.name}" is used more than once')
        self.policies.append(policy)
        self.positions.append(positions)

    _ORDER = (
        "quick skip default passive active ipcomp tunnel transport natt esp ah inet inet6 "
        "proto rdomain from to peer local ikesa childsa srcid dstid ikelifetime lifetime "
        "psk eap config request iface tag tap"
    ).split()

    def _out_of_place(self, stage: str) -> None:
        """A rule keyword that belongs before `stage`, where the order no longer allows it."""
        tok = self.tok
        order = self._ORDER
        if tok.kind == WORD and tok.value in order and order.index(tok.value) < order.index(stage):
            self.invalid(
                tok,
                f'"{tok.value}" is out of place: the parts of an ikev2 rule come in the '
                "order of iked.conf(5) (name, quick/skip/default, passive/active, ipcomp, "
                "tunnel/transport, natt, esp/ah, inet/inet6, proto, rdomain, from/to, "
                "peer/local, ikesa, childsa, srcid, dstid, ikelifetime, lifetime, auth, "
                "config/request, iface, tag/tap)",
            )

    def _rule_tail_error(self, spec: RuleSpec) -> None:
        self._out_of_place("tap")
        self.fail('"config"', '"request"', '"iface"', '"tag"', '"tap"', "end of line")

    def protocols(self, spec: RuleSpec) -> None:
        spec.flags["proto"] = self.advance()
        if self.is_punct("{"):
            self.advance()
            while True:
                spec.protocols.append(self.protocol_value())
                if self.is_punct(","):
                    self.advance()
                if self.is_punct("}"):
                    self.advance()
                    break
                if self.tok.kind in (NL, EOF):
                    self.fail('"}"')
        else:
            spec.protocols.append(self.protocol_value())

    def protocol_value(self) -> int:
        tok = self.tok
        if tok.kind not in (WORD, QUOTED):
            self.fail("a protocol name or number")
        if tok.kind == WORD and _NUMBER.match(tok.value):
            return self.number(0, 255, "a protocol number")
        number = names.protocol_number(tok.value)
        if number is None:
            self.invalid(tok, f"unknown protocol: {tok.value}")
        self.advance()
        return number

    def flows(self, spec: RuleSpec) -> None:
        if not self.is_kw("from", "to"):
            self._out_of_place("from")
            self.fail('"from"', '"to"')
        while self.is_kw("from", "to"):
            first = self.advance()
            a = self.host(first.value == "from")
            second = "to" if first.value == "from" else "from"
            self.expect(second)
            b = self.host(second == "from")
            src, dst = (a, b) if first.value == "from" else (b, a)
            spec.pairs.append((first, src, dst))
            if self.is_punct(","):
                self.advance()
                if not self.is_kw("from", "to"):
                    self.fail('"from"', '"to"')

    def host(self, is_source: bool) -> tuple[list[HostEntry], int, Token | None]:
        """A from/to side: (entries, port, port token)."""
        entries = self.host_list()
        port, port_tok = 0, None
        if self.is_punct("("):
            self.nat(entries, is_source)
        if self.is_kw("port"):
            port_tok = self.advance()
            port = self.port_value()
        if self.is_punct("(") and not any(e.nat for e in entries):
            self.nat(entries, is_source)  # iked.conf(5) writes `[port P] [(NAT)]`
        return entries, port, port_tok

    def nat(self, entries: list[HostEntry], is_source: bool) -> None:
        paren = self.advance()
        nat = self.host_spec(allow_names=True)
        self.expect_punct(")")
        if not is_source:
            self.invalid(paren, "no flow NAT support for destination network")
        if len(nat) != 1 or len(entries) != 1 or entries[0].network is None:
            self.invalid(paren, "flow NAT needs one source network and one NAT network")
        if nat[0].version != entries[0].network.version:
            self.invalid(paren, "Flow NAT address family mismatch")
        entries[0].nat = nat[0]

    def host_list(self) -> list[HostEntry]:
        tok = self.tok
        if self.accept("any"):
            return [HostEntry(tok, any=True)]
        if self.accept("dynamic"):
            return [HostEntry(tok, dynamic=True)]
        if self.is_punct("{"):
            self.advance()
            entries: list[HostEntry] = []
            while True:
                item = self.tok
                if self.accept("any"):
                    entries.append(HostEntry(item, any=True))
                else:
                    entries.extend(HostEntry(item, network=n) for n in self.host_spec(True))
                if self.is_punct(","):
                    self.advance()
                if self.is_punct("}"):
                    self.advance()
                    return entries
                if self.tok.kind in (NL, EOF):
                    self.fail('"}"')
        return [HostEntry(tok, network=n) for n in self.host_spec(allow_names=True)]

    def host_spec(self, allow_names: bool) -> list:
        """Networks for an address, `address/prefix`, or (if allowed) a resolved name."""
        tok = self.tok
        if not self.is_string():
            self.fail("an address")
        self.advance()
        network = parse_network(tok.value)
        if network is not None:
            return [network]
        text, _, prefix = tok.value.partition("/")
        if looks_numeric(text) or not _HOSTNAME.match(text) or not allow_names:
            self.invalid(tok, f"could not parse host specification {tok.describe()}")
        addresses = self.resolve(tok, text)
        networks = []
        for address in addresses:
            bits = address.max_prefixlen
            if prefix:
                if address.version != 4 or not prefix.isdigit() or int(prefix) > 32:
                    self.invalid(tok, f"invalid netmask on host name {tok.describe()}")
                bits = int(prefix)
            networks.append(ipaddress.ip_network(f"{address}/{bits}", strict=False))
        return networks

    def resolve(self, tok: Token, name: str) -> list:
        try:
            found = (self.resolver or default_resolver)(name) or []
            addresses = [ipaddress.ip_address(a) for a in found]
        except (OSError, ValueError):
            addresses = []
        if not addresses:
            self.invalid(tok, f"no IP address found for {name}")
        return list(dict.fromkeys(addresses))

    def port_value(self) -> int:
        tok = self.tok
        if tok.kind == WORD and _NUMBER.match(tok.value):
            return self.number(0, 65535, "a port")
        if tok.kind not in (WORD, QUOTED) or (tok.kind == WORD and tok.value in KEYWORDS):
            self.fail("a port number or service name")
        number = names.port_number(tok.value)
        if number is None:
            self.invalid(tok, f"unknown port: {tok.value}")
        self.advance()
        return number

    def peers(self, spec: RuleSpec) -> None:
        for _ in range(2):
            if self.is_kw("peer") and spec.peer is None:
                spec.peer = (self.advance(), self.any_host())
            elif self.is_kw("local") and spec.local is None:
                spec.local = (self.advance(), self.any_host())

    def any_host(self):
        """`any`, an address, a network, or a host name (kept as a name)."""
        tok = self.tok
        if self.accept("any"):
            return None
        if not self.is_string():
            self.fail("an address", '"any"')
        network = parse_network(tok.value)
        if network is not None:
            self.advance()
            return network
        if looks_numeric(tok.value) or not _HOSTNAME.match(tok.value):
            self.invalid(tok, f"could not parse host specification {tok.describe()}")
        self.advance()
        return tok.value

    def transforms(self, start: Token) -> TransformBlock:
        block = TransformBlock(start)
        while True:
            tok = self.tok
            if self.is_kw("enc", "auth", "prf", "group"):
                self.advance()
                value = self.string(f"a transform name after \"{tok.value}\"")
                block.items.append((tok.value, value))
            elif self.is_kw("esn", "noesn"):
                self.advance()
                block.items.append(("esn", tok))
            else:
                break
        if not block.items:
            self.fail('"enc"', '"auth"', '"prf"', '"group"', '"esn"', '"noesn"')
        return block

    def auth(self, spec: RuleSpec) -> None:
        tok = self.tok
        if self.accept("psk"):
            if self.accept("file"):
                spec.auth = ("psk", tok, self.psk_file(self.string("a file name")))
            else:
                spec.auth = ("psk", tok, self.psk_value(self.secret("a pre-shared key")))
        elif self.accept("eap"):
            method = self.string('an EAP method ("mschap-v2")')
            if method.value.replace("-", "_").lower() != "mschap_v2":
                self.invalid(method, f"unsupported EAP method: {method.value}")
            spec.auth = ("eap", tok, None)
        elif self.is_string():
            self.advance()
            if tok.value not in names.AUTH_METHODS:
                self.invalid(
                    tok,
                    f"not a valid authentication mode: {tok.describe()} (use psk, eap, "
                    + ", ".join(names.AUTH_METHODS) + ")",
                )
            spec.auth = (tok.value, tok, None)

    def psk_value(self, tok: Token) -> bytes:
        """An inline key; `0x` starts a hex key (parse.y keyspec)."""
        if tok.value.startswith("0x"):
            key = hex_key(tok.value[2:])
            if key is None:
                self.invalid(tok, "psk: keys need to be specified in hex digits")
        else:
            key = tok.value.encode()
        if not key:
            self.invalid(tok, "psk: empty key")
        if len(key) > KEYSIZE_LIMIT:
            self.invalid(tok, f"psk too long (more than {KEYSIZE_LIMIT} bytes)")
        return key

    def psk_file(self, tok: Token) -> tuple[str, bytes]:
        """A hex key (no 0x) read from a file only root or we may write (parse.y)."""
        path = tok.value
        if not os.path.isabs(path):
            path = os.path.normpath(os.path.join(self.base_dirs[tok.file], path))
        try:
            with open(path, "rb") as fh:
                st = os.fstat(fh.fileno())
                problem = secrecy_problem(path, st) if self.check_secrecy else None
                if problem:
                    self.invalid(tok, f"psk file {path}: {problem}")
                if st.st_size > KEYSIZE_LIMIT or st.st_size == 0:
                    self.invalid(tok, f"{path}: key too {'large' if st.st_size else 'small'}")
                raw = fh.read(KEYSIZE_LIMIT + 1)
        except OSError as exc:
            self.invalid(tok, f"psk file {tok.value}: {reason(exc)}")
        key = hex_key(raw.decode("ascii", "replace").strip())
        if not key:
            self.invalid(tok, f"{path}: keys need to be specified in hex digits")
        return path, key

    def cfg_option(self, spec: RuleSpec) -> None:
        action = self.advance()
        opt = self.string("a config option (address, netmask, name-server, ...)")
        if opt.value not in names.CFG_OPTIONS:
            self.invalid(
                opt,
                f"not a valid ikecfg option: {opt.describe()} "
                f"(use {', '.join(names.CFG_OPTIONS)})",
            )
        value_tok = self.tok
        if action.value == "request" and self.accept("any"):
            spec.cfg.append((action, opt, value_tok, None))
            return
        if not self.is_string():
            self.fail("an address", *(['"any"'] if action.value == "request" else []))
        self.advance()
        value = parse_cfg_value(opt.value, value_tok.value)
        if isinstance(value, str):
            self.invalid(value_tok, value)
        spec.cfg.append((action, opt, value_tok, value))

    def filter(self, spec: RuleSpec) -> None:
        tok = self.advance()
        value = self.string(f"a {tok.value} value")
        if tok.value == "tap":
            if not _TAP.match(value.value):
                self.invalid(value, f"invalid tap interface name: {value.value}")
            spec.flags["tap"] = tok
            spec.tap = value.value
        else:
            spec.flags["tag"] = tok
            spec.tag = value.value
