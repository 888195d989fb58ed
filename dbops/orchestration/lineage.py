"""What a script does to the warehouse's tables and views, read from sqlglot's token stream.

Only the head of each DDL statement matters (`CREATE [OR REPLACE] ... TABLE|VIEW name`,
`ALTER TABLE name ... [RENAME TO other]`, `DROP TABLE|VIEW name, ...`), so the tokens are enough:
sqlglot's tokenizer knows the dialect's quoting, comments and `$$` bodies, and is several times
faster than parsing every statement (inserts with many rows are the expensive ones to parse).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlglot.dialects.dialect import Dialect as SqlglotDialect
from sqlglot.tokens import Token, TokenType

from dbops.scripts.statements import iter_statements
from dbops.targets.base import Dialect

CREATED, ALTERED, DROPPED = "created", "altered", "dropped"

_NOT_A_NAME = {
    TokenType.L_PAREN, TokenType.R_PAREN, TokenType.COMMA, TokenType.SEMICOLON, TokenType.DOT,
    TokenType.ALIAS, TokenType.STRING, TokenType.NUMBER, TokenType.HEREDOC_STRING,
}
_SKIPPED_WORDS = {"if", "not", "exists", "only"}
_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


@dataclass(frozen=True, order=True)
class TableRef:
    """A table or view: schema and name as the database folds them (unquoted names lower-cased)."""

    schema: str
    name: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def key_parts(self) -> tuple[str, str]:
        """Schema and name made safe for an asset key."""
        return _UNSAFE.sub("_", self.schema), _UNSAFE.sub("_", self.name)


@dataclass(frozen=True)
class Touch:
    """One statement's effect on one object."""

    table: TableRef
    action: str
    kind: str = "table"


@dataclass
class ScriptFacts:
    """What a script is made of: its statement count and the objects it creates, alters or drops."""

    statements: int
    touches: list[Touch] = field(default_factory=list)


def dialect_for(dialect: Dialect) -> SqlglotDialect:
    """sqlglot's dialect for a target's."""
    return SqlglotDialect.get_or_raise("redshift" if dialect == Dialect.REDSHIFT else "postgres")


BIG_SCRIPT_CHARS = 1 << 20
_DDL_HEAD = re.compile(r"(?:create|alter|drop)\b", re.IGNORECASE)


def script_facts(sql: str, dialect: SqlglotDialect, default_schema: str = "public") -> ScriptFacts:
    """Statements and touched objects of one script; text the tokenizer rejects gives no lineage.

    A script over 1 MB is read statement by statement, and only the statements that start with CREATE, ALTER
    or DROP are tokenized (the tokens of a 50 MB script of inserts would take gigabytes).
    """
    if len(sql) > BIG_SCRIPT_CHARS:
        return _big_script_facts(sql, dialect, default_schema)
    try:
        tokens = dialect.tokenize(sql)
    except Exception:  # sqlglot raises TokenError and, on odd input, plain errors; lineage is best effort
        return ScriptFacts(statements=_rough_count(sql))
    statements: list[list[Token]] = [[]]
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            statements.append([])
        else:
            statements[-1].append(token)
    statements = [s for s in statements if s]
    touches: list[Touch] = []
    for statement in statements:
        touches.extend(_touches(statement, default_schema))
    return ScriptFacts(statements=len(statements), touches=touches)


def _big_script_facts(sql: str, dialect: SqlglotDialect, default_schema: str) -> ScriptFacts:
    count, touches = 0, []
    for statement in iter_statements(sql, normalize=False):
        count += 1
        if _DDL_HEAD.match(statement.sql):
            try:
                tokens = [t for t in dialect.tokenize(statement.sql) if t.token_type != TokenType.SEMICOLON]
            except Exception:  # lineage is best effort, as for a whole script
                continue
            if tokens:
                touches.extend(_touches(tokens, default_schema))
    return ScriptFacts(statements=count, touches=touches)


def _rough_count(sql: str) -> int:
    return max(1, sql.count(";"))


def _word(token: Token) -> str:
    return token.text.lower()


def _touches(tokens: list[Token], default_schema: str) -> list[Touch]:
    head = tokens[0].token_type
    if head == TokenType.CREATE:
        position = _find_object_word(tokens, 1)
        if position is None:
            return []
        kind = "view" if tokens[position].token_type == TokenType.VIEW else "table"
        if any(t.token_type == TokenType.TEMPORARY for t in tokens[1:position]):
            return []
        ref, _ = _name_at(tokens, position + 1, default_schema)
        return [Touch(ref, CREATED, kind)] if ref else []
    if head == TokenType.ALTER and len(tokens) > 1 and tokens[1].token_type in (TokenType.TABLE, TokenType.VIEW):
        kind = "view" if tokens[1].token_type == TokenType.VIEW else "table"
        ref, after = _name_at(tokens, 2, default_schema)
        if ref is None:
            return []
        found = [Touch(ref, ALTERED, kind)]
        if after + 1 < len(tokens) and _word(tokens[after]) == "rename" and _word(tokens[after + 1]) == "to":
            new, _ = _name_at(tokens, after + 2, ref.schema)
            if new is not None:
                found = [Touch(ref, DROPPED, kind), Touch(TableRef(ref.schema, new.name), CREATED, kind)]
        return found
    if head == TokenType.DROP:
        position = _find_object_word(tokens, 1)
        if position is None:
            return []
        kind = "view" if tokens[position].token_type == TokenType.VIEW else "table"
        found: list[Touch] = []
        index = position + 1
        while index < len(tokens):
            ref, index = _name_at(tokens, index, default_schema)
            if ref is None:
                break
            found.append(Touch(ref, DROPPED, kind))
            if index < len(tokens) and tokens[index].token_type == TokenType.COMMA:
                index += 1
            else:
                break
        return found
    return []


def _find_object_word(tokens: list[Token], start: int) -> int | None:
    """Index of TABLE or VIEW among the modifiers after CREATE/DROP (OR REPLACE, MATERIALIZED, EXTERNAL ...)."""
    for index in range(start, min(len(tokens), start + 5)):
        token_type = tokens[index].token_type
        if token_type in (TokenType.TABLE, TokenType.VIEW):
            return index
        if token_type not in (TokenType.OR, TokenType.REPLACE, TokenType.TEMPORARY, TokenType.VAR):
            return None
    return None


def _name_at(tokens: list[Token], index: int, default_schema: str) -> tuple[TableRef | None, int]:
    """The dotted name starting at `index` (after IF [NOT] EXISTS / ONLY), and the index after it."""
    while index < len(tokens) and _word(tokens[index]) in _SKIPPED_WORDS and tokens[index].token_type != TokenType.IDENTIFIER:
        index += 1
    parts: list[str] = []
    while index < len(tokens) and tokens[index].token_type not in _NOT_A_NAME:
        token = tokens[index]
        parts.append(token.text if token.token_type == TokenType.IDENTIFIER else token.text.lower())
        index += 1
        if index < len(tokens) and tokens[index].token_type == TokenType.DOT:
            index += 1
            continue
        break
    if not parts:
        return None, index
    schema = parts[-2] if len(parts) >= 2 else default_schema
    return TableRef(schema, parts[-1]), index
