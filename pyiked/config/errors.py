"""Configuration errors and warnings, each naming file:line:column.

A config problem is reported the way a compiler reports one
(`iked.conf:12:31: expected "to", got "port"`), never as a traceback. The parser keeps going
after an error so one run lists every problem; `ConfigError.errors` holds them all and the
exception itself stands for the first.
"""

from __future__ import annotations


def _where(file: str, line: int, column: int) -> str:
    if line <= 0:
        return file
    if column <= 0:
        return f"{file}:{line}"
    return f"{file}:{line}:{column}"


class ConfigError(Exception):
    """One or more errors in a configuration.

    file, line, column and message describe the first error; `errors` lists all of them
    (each a ConfigError with an empty `errors` of its own).
    """

    def __init__(self, file: str, line: int, column: int, message: str, errors=None):
        self.file = file
        self.line = line
        self.column = column
        self.message = message
        self.errors: list[ConfigError] = list(errors) if errors else [self]
        super().__init__(str(self))

    @classmethod
    def collect(cls, errors: list[ConfigError]) -> ConfigError:
        first = errors[0]
        return cls(first.file, first.line, first.column, first.message, errors)

    def __str__(self):
        return f"{_where(self.file, self.line, self.column)}: {self.message}"

    def describe(self) -> str:
        """Every error, one per line (what `pyiked -n` prints)."""
        return "\n".join(
            f"{_where(e.file, e.line, e.column)}: {e.message}" for e in self.errors
        )


class ConfigWarning(str):
    """A warning: a plain string ("file:line:col: warning: ...") with its parts attached."""

    file: str
    line: int
    column: int
    message: str

    def __new__(cls, file: str, line: int, column: int, message: str):
        self = super().__new__(cls, f"{_where(file, line, column)}: warning: {message}")
        self.file = file
        self.line = line
        self.column = column
        self.message = message
        return self
