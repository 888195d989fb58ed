"""DB001's verdict on one statement: sqlglot's Redshift parser, its fallbacks treated as failures.

sqlglot keeps what it does not understand as a generic Command (and drops an empty list item such as
`a int,, b int`), so a parse alone passes typos. Here a statement is valid when it is balanced (parentheses,
no empty list items), sqlglot parses it into a statement (not a bare expression, not a fallback), or it is one
of the Redshift statement forms in `redshift_forms` that sqlglot does not parse.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.dialects.redshift import Redshift
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token, TokenType

from dbops.lint import redshift_forms

_DIALECT = Dialect.get_or_raise("redshift")
_STATEMENTS = (
    exp.Query, exp.DML, exp.DDL, exp.Alter, exp.Drop, exp.Grant, exp.Revoke, exp.Set, exp.Analyze, exp.Transaction,
    exp.Commit, exp.Rollback, exp.Comment, exp.TruncateTable, exp.Use, exp.Describe, exp.Show, exp.Refresh,
    exp.Execute, exp.Pragma,
)


@dataclass(frozen=True)
class Verdict:
    """A statement's tree (None when it has none sqlglot can give) and, when it is not valid, why and where."""

    tree: exp.Expression | None
    error: str = ""
    offset: int = 0


class _Parser(Redshift.Parser):
    """Redshift's parser, remembering the token where it gave up and fell back to a Command.

    sqlglot has no public way to tell where a fallback happened; `_parse_as_command` is where every fallback
    goes. tests/test_lint.py::test_a_typo_inside_a_statement_sqlglot_gives_up_on_names_its_line breaks if it moves.
    """

    gave_up: Token | None = None

    def _parse_as_command(self, start: Token) -> exp.Command:
        if self.gave_up is None:
            self.gave_up = self._curr
        return super()._parse_as_command(start)


def judge(sql: str) -> Verdict:
    """The verdict on one statement's SQL (no trailing semicolon)."""
    try:
        tokens = _DIALECT.tokenize(sql)
        expanded = _expanded(tokens)
    except TokenError as exc:
        return Verdict(None, str(exc))
    parser = _Parser(dialect=_DIALECT)
    try:
        tree = (parser.parse(tokens, sql) or [None])[0]
    except ParseError as exc:
        if _unbalanced(expanded) is None and redshift_forms.recognised(canonical(expanded)):
            return Verdict(None)
        return _parse_error(exc)
    if problem := _unbalanced(expanded):
        return problem
    if isinstance(tree, exp.Command) or (tree is not None and not isinstance(tree, _STATEMENTS)):
        if redshift_forms.recognised(canonical(expanded)):
            return Verdict(None)
        if isinstance(tree, exp.Command):
            return _not_understood(expanded, parser.gave_up)
        return Verdict(None, f"{tokens[0].text!r} does not start a statement", tokens[0].line - 1)
    if isinstance(tree, exp.Copy) and not redshift_forms.recognised(canonical(expanded)):
        return _not_understood(expanded, None)
    if isinstance(tree, (exp.Create, exp.Alter)):
        return _inside(tree, expanded, parser.gave_up) or Verdict(tree)
    return Verdict(tree)


# Keyword values sqlglot takes as any word; Redshift knows only these.
_VALUES: dict[type[exp.Expression], tuple[str, frozenset[str]]] = {
    exp.DistStyleProperty: ("DISTSTYLE", frozenset({"ALL", "EVEN", "KEY", "AUTO"})),
    exp.BackupProperty: ("BACKUP", frozenset({"YES", "NO"})),
    exp.AutoRefreshProperty: ("AUTO REFRESH", frozenset({"YES", "NO"})),
    exp.EncodeColumnConstraint: ("ENCODE", frozenset({
        "RAW", "AZ64", "BYTEDICT", "DELTA", "DELTA32K", "LZO", "MOSTLY8", "MOSTLY16", "MOSTLY32", "RUNLENGTH",
        "TEXT255", "TEXT32K", "ZSTD",
    })),
}


def _inside(tree: exp.Expression, tokens: list[Token], gave_up: Token | None) -> Verdict | None:
    """In a CREATE or ALTER: a part sqlglot fell back on (`drop colum c`), or a DISTSTYLE, BACKUP, AUTO REFRESH
    or ENCODE value Redshift does not have."""
    for node in tree.find_all(exp.Command, *_VALUES):
        if isinstance(node, exp.Command):
            if redshift_forms.recognised(canonical(tokens)):
                continue
            return _not_understood(tokens, gave_up)
        keyword, allowed = _VALUES[type(node)]
        value = node.this.name.upper() if isinstance(node.this, exp.Expression) else str(node.this).upper()
        if value not in allowed:
            line = int(node.this.meta.get("line", 1)) if isinstance(node.this, exp.Expression) else 1
            return Verdict(None, f"{keyword} {value} is not one of {', '.join(sorted(allowed))}", line - 1)
    return None


# Tokens that cannot follow a comma: the list before them ended with an empty item.
_AFTER_LIST = frozenset({
    TokenType.R_PAREN, TokenType.FROM, TokenType.WHERE, TokenType.GROUP_BY, TokenType.ORDER_BY, TokenType.HAVING,
    TokenType.LIMIT, TokenType.UNION, TokenType.SEMICOLON,
})


def _unbalanced(tokens: list[Token]) -> Verdict | None:
    """An unclosed or unopened parenthesis, or an empty list item (`,,`, `(,`, `,)`, `, FROM` …)."""
    opened: list[Token] = []
    previous: Token | None = None
    for token in tokens:
        kind = token.token_type
        if kind == TokenType.COMMA and previous is not None and previous.token_type in (TokenType.COMMA, TokenType.L_PAREN):
            return Verdict(None, f"empty item in a list near {_near(previous, token)!r}", previous.line - 1)
        if kind in _AFTER_LIST and previous is not None and previous.token_type == TokenType.COMMA:
            return Verdict(None, f"empty item in a list near {_near(previous, token)!r}", previous.line - 1)
        if kind == TokenType.L_PAREN:
            opened.append(token)
        elif kind == TokenType.R_PAREN:
            if not opened:
                return Verdict(None, "')' closes no '('", token.line - 1)
            opened.pop()
        previous = token
    if opened:
        token = opened[0]
        return Verdict(None, "'(' is never closed", token.line - 1)
    return None


def _near(first: Token, last: Token) -> str:
    return f"{first.text} {last.text}"


_TOKEN = re.compile(r"<Token token_type: [\w.]+, text: (.*?), line: .*?>")


def _parse_error(exc: ParseError) -> Verdict:
    error = exc.errors[0] if exc.errors else {}
    near = f" near {error['highlight']!r}" if error.get("highlight") else ""
    detail = _TOKEN.sub(lambda t: repr(t.group(1)), error.get("description") or str(exc).splitlines()[0])
    return Verdict(None, f"{detail}{near}", max(int(error.get("line") or 1) - 1, 0))


def _not_understood(tokens: list[Token], gave_up: Token | None) -> Verdict:
    """A statement neither sqlglot nor a Redshift form accepts: where sqlglot stopped, and which syntax to check."""
    known = redshift_forms.family(canonical(tokens))
    if known and gave_up is not None and any(gave_up is t for t in tokens[:len(known[0].split())]):
        gave_up = None  # sqlglot has no grammar for this statement at all
    stop = f"sqlglot stops at {gave_up.text!r}, and " if gave_up is not None else ""
    line = gave_up.line if gave_up is not None else tokens[0].line
    if known:
        return Verdict(None, f"{stop}the statement is not {known[0]} as Redshift writes it (syntax: {known[1]})", line - 1)
    return Verdict(None, f"{stop}the statement is none of the Redshift forms lint knows either", line - 1)


def _expanded(tokens: list[Token]) -> list[Token]:
    """The tokens, with the text sqlglot keeps as one string after a command keyword (UNLOAD, SHOW …) tokenized."""
    if len(tokens) == 2 and tokens[0].token_type in _DIALECT.tokenizer_class.COMMANDS \
            and tokens[1].token_type == TokenType.STRING:
        rest = tokens[1]
        return [tokens[0], *_expanded(_DIALECT.tokenize("\n" * (rest.line - 1) + rest.text))]
    return tokens


def canonical(tokens: list[Token]) -> str:
    """Tokens as upper-case words separated by one space: strings as 'S', numbers as 9, $$ bodies as $$,
    quoted names as "Q", parameters ($1) as ?."""
    words: list[str] = []
    for token in tokens:
        kind = token.token_type
        if kind in (TokenType.STRING, TokenType.NATIONAL_STRING, TokenType.RAW_STRING, TokenType.BYTE_STRING,
                      TokenType.HEX_STRING, TokenType.BIT_STRING, TokenType.UNICODE_STRING):
            words.append("'S'")
        elif kind == TokenType.HEREDOC_STRING:
            words.append("$$")
        elif kind == TokenType.NUMBER:
            words.append("9")
        elif kind == TokenType.IDENTIFIER:
            words.append('"Q"')
        elif kind == TokenType.PARAMETER:
            words.append("?")
        else:
            words.append(token.text.upper())
    return " ".join(words)
