"""Reading a configuration: parse, then check it against what the engine honours.

    config, warnings = load_config("/etc/iked.conf", {"gw": "192.0.2.1"})

raises ConfigError (every problem, each with file:line:column) or returns the config the
engine should run plus warnings to log. With check=False the grammar is checked but not
the engine's capabilities, and the config comes back exactly as written (the tests and
`pyiked -nv` use that).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .capabilities import check_capabilities, check_data_plane, effective_config
from .errors import ConfigError, ConfigWarning
from .model import Config
from .parser import Parser, Resolver
from .values import secrecy_problem


@dataclass
class ParseResult:
    config: Config
    warnings: list[ConfigWarning]
    positions: list[dict]  # per policy: feature -> (file, line, column)
    settings_at: dict  # Settings field -> (file, line, column) of its `set` line

    def check(self, data_plane=None) -> tuple[Config, list[ConfigWarning]]:
        """The effective config and all warnings; ConfigError for refused features. With
        data_plane (a kernel backend class), also what that backend cannot carry."""
        errors, warnings = check_capabilities(self.config, self.positions, self.settings_at)
        if data_plane is not None:
            more_errors, more_warnings = check_data_plane(self.config, self.positions, data_plane)
            errors += more_errors
            warnings += more_warnings
        if errors:
            raise ConfigError.collect(errors)
        return effective_config(self.config), self.warnings + warnings


def parse_text(
    text: str,
    name: str = "iked.conf",
    defines: dict[str, str] | None = None,
    *,
    base_dir: str | None = None,
    resolver: Resolver | None = None,
    check_secrecy: bool = True,
) -> ParseResult:
    parser = Parser(
        text, name, defines, base_dir=base_dir, resolver=resolver, check_secrecy=check_secrecy
    )
    config = parser.parse()
    return ParseResult(config, parser.warnings, parser.positions, parser.settings_at)


def parse_file(
    path: str,
    defines: dict[str, str] | None = None,
    *,
    resolver: Resolver | None = None,
    check_secrecy: bool = True,
) -> ParseResult:
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            raw = fh.read()
    except OSError as exc:
        raise ConfigError(path, 0, 0, f"cannot open: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(path, line, 0, "not valid UTF-8") from None
    pre = []
    if check_secrecy:
        problem = secrecy_problem(path, st)
        if problem:
            # iked refuses such a file; pyiked warns, as the file may hold PSKs.
            pre.append(ConfigWarning(path, 0, 0, f"{problem} (iked refuses such a file)"))
    result = parse_text(
        text,
        path,
        defines,
        base_dir=os.path.dirname(os.path.abspath(path)),
        resolver=resolver,
        check_secrecy=check_secrecy,
    )
    result.warnings[:0] = pre
    return result


def parse_config_text(
    text: str,
    name: str = "iked.conf",
    defines: dict[str, str] | None = None,
    *,
    check: bool = True,
    base_dir: str | None = None,
    resolver: Resolver | None = None,
) -> tuple[Config, list[ConfigWarning]]:
    """Parse iked.conf text. Relative include and psk file paths start at base_dir (cwd)."""
    result = parse_text(text, name, defines, base_dir=base_dir, resolver=resolver)
    if check:
        return result.check()
    return result.config, result.warnings


def load_config(
    path: str,
    defines: dict[str, str] | None = None,
    *,
    check: bool = True,
    resolver: Resolver | None = None,
    data_plane=None,
) -> tuple[Config, list[ConfigWarning]]:
    """Read and check a configuration file (and what it includes); with data_plane (a
    kernel backend class), also against what that backend carries."""
    result = parse_file(path, defines, resolver=resolver)
    if check:
        return result.check(data_plane)
    return result.config, result.warnings
