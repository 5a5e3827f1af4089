"""iked.conf tokens: comments, continuations, quoting, macros (parse.y lexical rules)."""

from pyiked.config.lexer import EOF, ERROR, NL, PUNCT, QUOTED, WORD, Lexer


def tokens(text, macros=None):
    lexer = Lexer(text, "t.conf", macros)
    out = []
    while True:
        tok = lexer.next_token()
        out.append((tok.kind, tok.value, tok.line, tok.column))
        if tok.kind == EOF:
            return out, lexer.errors


def kinds_values(text, macros=None):
    return [(k, v) for k, v, _, _ in tokens(text, macros)[0]]


def test_words_punctuation_and_positions():
    toks, errors = tokens('ikev2 "a b" proto { tcp, udp }\n  from 10.0.0.0/8 (1.2.3.4)')
    assert not errors
    assert toks == [
        (WORD, "ikev2", 1, 1),
        (QUOTED, "a b", 1, 7),
        (WORD, "proto", 1, 13),
        (PUNCT, "{", 1, 19),
        (WORD, "tcp", 1, 21),
        (PUNCT, ",", 1, 24),
        (WORD, "udp", 1, 26),
        (PUNCT, "}", 1, 30),
        (NL, "", 1, 31),
        (WORD, "from", 2, 3),
        (WORD, "10.0.0.0/8", 2, 8),
        (PUNCT, "(", 2, 19),
        (WORD, "1.2.3.4", 2, 20),
        (PUNCT, ")", 2, 27),
        (NL, "", 2, 28),  # the end of the file ends the statement
        (EOF, "", 2, 28),
    ]


def test_comments_and_line_continuation():
    assert kinds_values("a # comment\nb \\\n c\n") == [
        (WORD, "a"),
        (NL, ""),
        (WORD, "b"),
        (WORD, "c"),
        (NL, ""),
        (NL, ""),
        (EOF, ""),
    ]
    # As in parse.y, a comment ending in a backslash continues on the next line.
    assert kinds_values("a # comment \\\nb\nc") == [
        (WORD, "a"), (NL, ""), (WORD, "c"), (NL, ""), (EOF, "")
    ]


def test_backslash_outside_quotes_escapes_the_next_character():
    assert kinds_values(r"a\ b")[:2] == [(WORD, "a"), (WORD, "b")]


def test_quoted_string_escapes_follow_parse_y():
    # \" and \<space> are escapes, other backslashes stay, raw newlines are dropped,
    # backslash-newline joins.
    toks = kinds_values('"a\\"b" "c\\ d" "e\\nf" "g\nh" "i\\\nj" \'k"l\'')
    assert [v for k, v in toks if k == QUOTED] == ['a"b', "c d", "e\\nf", "gh", "ij", 'k"l']


def test_quoted_strings_are_not_keywords_or_macros():
    toks = kinds_values('"esp" "$x"', {"x": "y"})
    assert toks[:2] == [(QUOTED, "esp"), (QUOTED, "$x")]


def test_unterminated_quote_is_an_error_with_position():
    toks, errors = tokens('a "bc\n')
    assert toks[1][0] == ERROR
    assert str(errors[0]) == "t.conf:1:3: unterminated quoted string"


def test_macro_expansion_is_textual_and_not_recursive():
    macros = {"net": "10.0.0.0", "pair": "from $net", "list": "{ a, b }"}
    assert kinds_values("$net/24", macros)[0] == (WORD, "10.0.0.0/24")
    # Text from a macro is not expanded again (parse.y `expanding`).
    assert kinds_values("$pair", macros)[:2] == [(WORD, "from"), (WORD, "$net")]
    assert kinds_values("$list", macros)[:5] == [
        (PUNCT, "{"), (WORD, "a"), (PUNCT, ","), (WORD, "b"), (PUNCT, "}")
    ]


def test_macro_tokens_carry_the_reference_position():
    toks, _ = tokens("peer   $gw", {"gw": "192.0.2.1"})
    assert toks[1] == (WORD, "192.0.2.1", 1, 8)


def test_undefined_macro_is_an_error():
    toks, errors = tokens("peer $nope rest\nnext")
    assert str(errors[0]) == "t.conf:1:6: macro 'nope' not defined"
    assert toks[1][0] == ERROR
    assert (WORD, "next", 2, 1) in toks


def test_dollar_inside_a_word_is_literal():
    assert kinds_values("a$b")[0] == (WORD, "a$b")


def test_unexpected_character():
    toks, errors = tokens("a < b")
    assert str(errors[0]) == "t.conf:1:3: unexpected character '<'"


def test_included_file_tokens_and_end_of_file():
    lexer = Lexer("a\nb", "main.conf")
    assert lexer.next_token().value == "a"
    assert lexer.next_token().kind == NL
    lexer.push_file("inc.conf", "x")
    tok = lexer.next_token()
    assert (tok.value, tok.file, tok.line) == ("x", "inc.conf", 1)
    assert lexer.next_token().kind == NL  # end of inc.conf
    tok = lexer.next_token()
    assert (tok.value, tok.file) == ("b", "main.conf")
