"""Split a script into statements and flag those that cannot run in a transaction block."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from sqlparse import tokens as T
from sqlparse.engine import FilterStack

# Statements Redshift (and PostgreSQL) refuse inside a transaction block. Each pattern is
# matched against the statement with comments removed, upper-cased, whitespace collapsed.
_NON_TRANSACTIONAL = [
    (r"VACUUM\b", "VACUUM"),
    (r"CREATE DATABASE\b", "CREATE DATABASE"),
    (r"DROP DATABASE\b", "DROP DATABASE"),
    (r"ALTER DATABASE\b.*\b(RENAME TO|CONNECTION LIMIT|COLLATE|ISOLATION LEVEL|INTEGRATION)\b", "ALTER DATABASE"),
    (r"ALTER TABLE\b.*\bAPPEND FROM\b", "ALTER TABLE APPEND"),
    (r"ALTER TABLE\b.*\bALTER (COLUMN )?\S+ TYPE\b", "ALTER TABLE ALTER COLUMN TYPE"),
    (r"CREATE EXTERNAL TABLE\b", "CREATE EXTERNAL TABLE"),
    (r"ALTER TABLE \S+ (ADD|DROP) PARTITION\b", "ALTER TABLE ADD/DROP PARTITION"),
    (r"ALTER (EXTERNAL )?TABLE\b.*\bSET (LOCATION|FILE FORMAT|TABLE PROPERTIES)\b", "ALTER EXTERNAL TABLE"),
    (r"ALTER EXTERNAL TABLE\b", "ALTER EXTERNAL TABLE"),
    (r"DROP EXTERNAL TABLE\b", "DROP EXTERNAL TABLE"),
    (r"CREATE EXTERNAL SCHEMA\b", "CREATE EXTERNAL SCHEMA"),
    (r"DROP (EXTERNAL )?SCHEMA\b.*\bDROP EXTERNAL DATABASE\b", "DROP EXTERNAL SCHEMA"),
    (r"CREATE EXTERNAL (FUNCTION|VIEW|MODEL)\b", "CREATE EXTERNAL OBJECT"),
    (r"DROP EXTERNAL (FUNCTION|VIEW)\b", "DROP EXTERNAL OBJECT"),
    (r"CREATE (OR REPLACE )?LIBRARY\b", "CREATE LIBRARY"),
    (r"DROP LIBRARY\b", "DROP LIBRARY"),
    (r"CREATE DATASHARE\b", "CREATE DATASHARE"),
    (r"CREATE INDEX CONCURRENTLY\b|CREATE UNIQUE INDEX CONCURRENTLY\b", "CREATE INDEX CONCURRENTLY"),
    (r"DROP INDEX CONCURRENTLY\b", "DROP INDEX CONCURRENTLY"),
    (r"REINDEX\b.*\bCONCURRENTLY\b", "REINDEX CONCURRENTLY"),
    (r"(CREATE|DROP) TABLESPACE\b", "TABLESPACE"),
    (r"ALTER SYSTEM\b", "ALTER SYSTEM"),
]
_NON_TX_RE = [(re.compile(p, re.S), label) for p, label in _NON_TRANSACTIONAL]
_WS = re.compile(r"\s+")
# Statements that change nothing a half-applied script could leave behind (they may sit beside VACUUM).
_NEUTRAL = re.compile(r"(ANALYZE|SET|RESET|SHOW)\b|SELECT\b(?!.*\bINTO\b)", re.S)


@dataclass(frozen=True)
class Statement:
    """One statement of a script: its SQL and the line it starts on (1-based)."""

    sql: str
    line: int

    @cached_property
    def normalized(self) -> str:
        """Upper-cased text without comments or string contents, whitespace collapsed."""
        return normalize(self.sql)

    @cached_property
    def non_transactional(self) -> str | None:
        """The kind of statement that cannot run in a transaction block, or None."""
        return non_transactional_kind(self.normalized)

    @cached_property
    def neutral(self) -> bool:
        """True for ANALYZE, SET, SHOW and plain SELECT: harmless in autocommit next to VACUUM."""
        return bool(_NEUTRAL.match(self.normalized))

    @property
    def first_line(self) -> str:
        """The statement's first line, for messages."""
        text = self.sql.strip().splitlines()[0] if self.sql.strip() else ""
        return text if len(text) <= 120 else text[:117] + "..."


def split(sql: str) -> list[Statement]:
    """Split SQL into statements; comments, quoted strings and $$ bodies are respected."""
    statements: list[Statement] = []
    line = 1
    for raw in FilterStack().run(sql):
        text = str(raw)
        start = _first_code_offset(raw)
        if start is not None:
            body = text[start:].rstrip()
            if body.endswith(";"):
                body = body[:-1].rstrip()
            if body:
                statements.append(Statement(sql=body, line=line + text.count("\n", 0, start)))
        line += text.count("\n")
    return statements


def _first_code_offset(stmt) -> int | None:
    """Offset of the first token that is neither whitespace nor a comment."""
    offset = 0
    for token in stmt.flatten():
        if token.ttype in T.Whitespace or token.ttype in T.Newline or token.ttype in T.Comment:
            offset += len(token.value)
            continue
        if token.ttype is T.Punctuation and token.value == ";":
            return None
        return offset
    return None


def normalize(sql: str) -> str:
    """Comments dropped, literals blanked, upper-cased, whitespace collapsed."""
    parts: list[str] = []
    for raw in FilterStack().run(sql):
        for token in raw.flatten():
            if token.ttype in T.Comment:
                parts.append(" ")
            elif token.ttype is T.Literal or token.ttype in T.Literal.String.Single:
                parts.append("''")
            else:
                parts.append(token.value)
    return _WS.sub(" ", "".join(parts)).strip().upper()


def non_transactional_kind(normalized: str) -> str | None:
    """The label of the non-transactional statement `normalized` starts with, or None."""
    for pattern, label in _NON_TX_RE:
        if pattern.match(normalized):
            return label
    return None
