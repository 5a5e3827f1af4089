"""iked.conf tokenizer, with the lexical rules of OpenIKED's parse.y.

- `#` starts a comment to the end of the line; `\\` before a newline joins lines; elsewhere
  outside quotes `\\x` stands for `x`.
- Newlines end statements, so they are tokens (NL). The end of every file counts as one.
- `"..."` and `'...'` are strings. Inside them `\\"` (the quote), `\\ ` and `\\<tab>` are
  escapes, `\\<newline>` is skipped, any other backslash is kept, and a raw newline is
  dropped. A quoted string is never a keyword and never has macros expanded.
- `$name` outside quotes is replaced by the macro's text, which is then tokenized in place
  (so `$net/24` works); text that came from a macro is not expanded again.
- Words are runs of letters, digits and punctuation other than `(){}<>!=#,` and quotes.
  `{ } ( ) , =` are single-character tokens.

Every token carries the file, line and column (1-based) where it starts; a token produced
by a macro carries the position of the `$name` that produced it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError

WORD = "word"
QUOTED = "quoted"
PUNCT = "punct"
NL = "newline"
EOF = "eof"
ERROR = "error"

PUNCTUATION = "{}(),="
_NOT_IN_WORD = set("(){}<>!=#,\"'")


def _word_char(c: str) -> bool:
    if c.isalnum():
        return True
    return c.isprintable() and not c.isspace() and c not in _NOT_IN_WORD


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    value: str
    file: str
    line: int
    column: int

    def describe(self) -> str:
        """How an error message names this token."""
        if self.kind == NL:
            return "end of line"
        if self.kind == EOF:
            return "end of file"
        return f'"{self.value}"'


class _Source:
    __slots__ = ("name", "text", "pos", "line", "column", "eof_sent")

    def __init__(self, name: str, text: str):
        self.name = name
        self.text = text
        self.pos = 0
        self.line = 1
        self.column = 1
        self.eof_sent = False


# A character as read: (char, line, column, came_from_macro)
_Char = tuple[str, int, int, bool]


class Lexer:
    """Produces tokens one at a time, so the parser can define macros and push included
    files between two tokens."""

    def __init__(self, text: str, name: str, macros: dict[str, str] | None = None):
        self.macros: dict[str, str] = macros if macros is not None else {}
        self.used_macros: set[str] = set()
        self.errors: list[ConfigError] = []
        self._sources = [_Source(name, text)]
        self._pending: list[_Char] = []  # pushed-back characters, last one read first

    # -- files -----------------------------------------------------------------------

    @property
    def file(self) -> str:
        return self._sources[-1].name

    @property
    def depth(self) -> int:
        return len(self._sources)

    def file_stack(self) -> list[str]:
        return [s.name for s in self._sources]

    def push_file(self, name: str, text: str) -> None:
        """Continue with `text` (an included file); the current file resumes after it."""
        self._sources.append(_Source(name, text))

    # -- characters ------------------------------------------------------------------

    def _raw(self) -> _Char | None:
        if self._pending:
            return self._pending.pop()
        src = self._sources[-1]
        if src.pos >= len(src.text):
            return None
        c = src.text[src.pos]
        item = (c, src.line, src.column, False)
        src.pos += 1
        if c == "\n":
            src.line += 1
            src.column = 1
        else:
            src.column += 1
        return item

    def _unget(self, item: _Char | None) -> None:
        if item is not None:
            self._pending.append(item)

    def _getc(self) -> _Char | None:
        """A character outside quotes: backslash-newline joins lines, `\\x` is `x`."""
        while True:
            item = self._raw()
            if item is None or item[0] != "\\":
                return item
            nxt = self._raw()
            if nxt is None:
                return item
            if nxt[0] != "\n":
                return (nxt[0], item[1], item[2], item[3])

    def _error(self, line: int, column: int, message: str) -> Token:
        self.errors.append(ConfigError(self.file, line, column, message))
        self._skip_line()
        return Token(ERROR, message, self.file, line, column)

    def _skip_line(self) -> None:
        while True:
            item = self._getc()
            if item is None or item[0] == "\n":
                self._unget(item)
                return

    # -- tokens ----------------------------------------------------------------------

    def next_token(self) -> Token:
        while True:
            item = self._getc()
            while item is not None and item[0] in " \t\r\f\v":
                item = self._getc()
            if item is None:
                src = self._sources[-1]
                if not src.eof_sent:
                    # The end of a file ends its last statement (parse.y fakes an EOL).
                    src.eof_sent = True
                    return Token(NL, "", src.name, src.line, src.column)
                if len(self._sources) > 1:
                    self._sources.pop()
                    continue
                return Token(EOF, "", src.name, src.line, src.column)
            c, line, column, from_macro = item
            if c == "#":
                self._skip_line()
                continue
            if c == "$" and not from_macro:
                if self._expand(line, column):
                    continue
                return Token(ERROR, "", self.file, line, column)
            if c == "\n":
                return Token(NL, "", self.file, line, column)
            if c in "\"'":
                return self._quoted(c, line, column)
            if c in PUNCTUATION:
                return Token(PUNCT, c, self.file, line, column)
            if _word_char(c):
                return self._word(item)
            return self._error(line, column, f"unexpected character {c!r}")

    def _expand(self, line: int, column: int) -> bool:
        name = []
        while True:
            item = self._getc()
            if item is not None and (item[0].isalnum() or item[0] == "_"):
                name.append(item[0])
                continue
            self._unget(item)
            break
        key = "".join(name)
        if not key:
            self._error(line, column, 'expected a macro name after "$"')
            return False
        if key not in self.macros:
            self._error(line, column, f"macro '{key}' not defined")
            return False
        self.used_macros.add(key)
        for ch in reversed(self.macros[key]):
            self._pending.append((ch, line, column, True))
        return True

    def _quoted(self, quote: str, line: int, column: int) -> Token:
        out = []
        while True:
            item = self._raw()
            if item is None:
                return self._error(line, column, "unterminated quoted string")
            c = item[0]
            if c == "\n":
                continue  # parse.y drops raw newlines inside quotes
            if c == "\\":
                nxt = self._raw()
                if nxt is None:
                    return self._error(line, column, "unterminated quoted string")
                if nxt[0] in (quote, " ", "\t"):
                    c = nxt[0]
                elif nxt[0] == "\n":
                    continue
                else:
                    self._unget(nxt)
            elif c == quote:
                return Token(QUOTED, "".join(out), self.file, line, column)
            elif c == "\0":
                return self._error(item[1], item[2], "NUL character in quoted string")
            out.append(c)

    def _word(self, first: _Char) -> Token:
        out = [first[0]]
        while True:
            item = self._getc()
            if item is None or not _word_char(item[0]):
                self._unget(item)
                break
            out.append(item[0])
        return Token(WORD, "".join(out), self.file, first[1], first[2])
