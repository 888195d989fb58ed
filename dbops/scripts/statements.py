"""Split a script into statements and flag those that cannot run in a transaction block."""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from itertools import islice

# Statements that cannot run inside a transaction block, with the dialects that refuse them. Each
# pattern is matched against the statement with comments removed, upper-cased, whitespace collapsed.
_BOTH = frozenset({"redshift", "postgresql"})
_RS = frozenset({"redshift"})
_PG = frozenset({"postgresql"})
_NON_TRANSACTIONAL = [
    (r"VACUUM\b", "VACUUM", _BOTH),
    (r"CREATE DATABASE\b", "CREATE DATABASE", _BOTH),
    (r"DROP DATABASE\b", "DROP DATABASE", _BOTH),
    (r"ALTER DATABASE\b.*\b(RENAME TO|CONNECTION LIMIT|COLLATE|ISOLATION LEVEL|INTEGRATION)\b", "ALTER DATABASE", _RS),
    (r"ALTER TABLE\b.*\bAPPEND FROM\b", "ALTER TABLE APPEND", _RS),
    (r"ALTER TABLE\b.*\bALTER (COLUMN )?\S+ TYPE\b", "ALTER TABLE ALTER COLUMN TYPE", _RS),
    (r"ALTER TABLE\b.*\bALTER COLUMN \S+ ENCODE\b", "ALTER TABLE ALTER COLUMN ENCODE", _RS),
    (r"CREATE EXTERNAL TABLE\b", "CREATE EXTERNAL TABLE", _RS),
    (r"ALTER TABLE \S+ (ADD|DROP) (IF NOT EXISTS )?PARTITION\b", "ALTER TABLE ADD/DROP PARTITION", _RS),
    (r"ALTER (EXTERNAL )?TABLE\b.*\bSET (LOCATION|FILE FORMAT|TABLE PROPERTIES)\b", "ALTER EXTERNAL TABLE", _RS),
    (r"ALTER EXTERNAL TABLE\b", "ALTER EXTERNAL TABLE", _RS),
    (r"DROP EXTERNAL TABLE\b", "DROP EXTERNAL TABLE", _RS),
    (r"CREATE EXTERNAL SCHEMA\b", "CREATE EXTERNAL SCHEMA", _RS),
    (r"DROP (EXTERNAL )?SCHEMA\b.*\bDROP EXTERNAL DATABASE\b", "DROP EXTERNAL SCHEMA", _RS),
    (r"CREATE EXTERNAL (FUNCTION|VIEW|MODEL)\b", "CREATE EXTERNAL OBJECT", _RS),
    (r"DROP EXTERNAL (FUNCTION|VIEW)\b", "DROP EXTERNAL OBJECT", _RS),
    (r"CREATE (OR REPLACE )?LIBRARY\b", "CREATE LIBRARY", _RS),
    (r"DROP LIBRARY\b", "DROP LIBRARY", _RS),
    (r"CREATE DATASHARE\b", "CREATE DATASHARE", _RS),
    (r"(CREATE|ALTER|DROP) IDENTITY PROVIDER\b", "IDENTITY PROVIDER", _RS),
    (r"CREATE (UNIQUE )?INDEX CONCURRENTLY\b", "CREATE INDEX CONCURRENTLY", _PG),
    (r"DROP INDEX CONCURRENTLY\b", "DROP INDEX CONCURRENTLY", _PG),
    (r"REINDEX\b.*\bCONCURRENTLY\b", "REINDEX CONCURRENTLY", _PG),
    (r"(CREATE|DROP) TABLESPACE\b", "TABLESPACE", _PG),
    (r"ALTER SYSTEM\b", "ALTER SYSTEM", _PG),
    (r"REINDEX (\(.*?\) )?(SYSTEM|DATABASE)\b", "REINDEX DATABASE", _PG),
    (r"ALTER TABLE\b.*\bDETACH PARTITION\b.*\bCONCURRENTLY\b", "DETACH PARTITION CONCURRENTLY", _PG),
    (r"ALTER DATABASE\b.*\bSET TABLESPACE\b", "ALTER DATABASE SET TABLESPACE", _PG),
    (r"(CREATE|DROP) SUBSCRIPTION\b|ALTER SUBSCRIPTION\b.*\bREFRESH PUBLICATION\b", "SUBSCRIPTION", _PG),
    (r"CLUSTER( VERBOSE)?$", "CLUSTER (all tables)", _PG),
    (r"DISCARD ALL\b", "DISCARD ALL", _PG),
]
# Every pattern above needs one of these words; a script without any of them (for its dialect) needs no
# parsing to classify.
_NON_TX_WORDS = (
    "VACUUM", "DATABASE", "APPEND", "TYPE", "ENCODE", "EXTERNAL", "LIBRARY", "DATASHARE", "PROVIDER", "PARTITION",
    "CONCURRENTLY", "TABLESPACE", "SYSTEM", "SUBSCRIPTION", "CLUSTER", "DISCARD", "LOCATION", "FORMAT", "PROPERTIES",
)


def _words_for(dialect: str | None) -> tuple[str, ...]:
    return tuple(sorted({w for p, _, dialects in _NON_TRANSACTIONAL if dialect is None or dialect in dialects for w in _NON_TX_WORDS if w in p}))


_PREFILTER = {dialect: _words_for(dialect) for dialect in (None, "redshift", "postgresql")}
_NON_TX_RE = [(re.compile(p, re.S), label, dialects) for p, label, dialects in _NON_TRANSACTIONAL]
_WS = re.compile(r"\s+")
# A quoted identifier in normalized text (string literals are blanked already): `"x APPEND FROM y"` is a name.
_QUOTED_IDENT = re.compile(r'"(?:[^"]|"")*"')
# Statements that change nothing a half-applied script could leave behind (they may sit beside VACUUM).
_NEUTRAL = re.compile(r"(ANALYZE|SET|RESET|SHOW)\b|SELECT\b(?!.*\bINTO\b)", re.S)


@dataclass(frozen=True)
class Statement:
    """One statement of a script: its SQL and the line it starts on (1-based)."""

    sql: str
    line: int
    known_normalized: str = field(default="", repr=False, compare=False)

    @cached_property
    def normalized(self) -> str:
        """Comments dropped, literals blanked, upper-cased, whitespace collapsed (computed when first needed)."""
        return self.known_normalized or normalize(self.sql)

    @cached_property
    def non_transactional(self) -> str | None:
        """The kind of statement that cannot run in a transaction block on Redshift or PostgreSQL, or None."""
        return non_transactional_kind(self.normalized)

    def non_transactional_on(self, dialect: str) -> str | None:
        """The kind of statement that `dialect` refuses inside a transaction block, or None."""
        return non_transactional_kind(self.normalized, dialect)

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
    return list(iter_statements(sql))


def iter_statements(sql: str, line: int = 1, normalize: bool = True) -> Iterator[Statement]:
    """The statements of `sql` one by one, as sqlparse splits them (`line`: the line `sql` starts on).
    `normalize=False` leaves each statement's normalized text to be computed if it is ever asked for (a caller
    that reads only `sql` saves the scan's second pass over every literal).

    Plain statements (no $ bodies, block comments, backslashes, brackets, BEGIN/END/DECLARE/GO, balanced
    parentheses) are found by a regular-expression scan; any other statement is handed to sqlparse, which
    decides where it ends, and the scan resumes after it.
    """
    pos, size = 0, len(sql)
    while pos < size:
        plain = _plain_statement(sql, pos)
        if plain is None:
            found, end = _sqlparse_statements(sql, pos, line)
            yield from found
        else:
            code, end = plain
            first = line + sql.count("\n", pos, code)
            if sql.startswith(";", code):
                statement = None
            elif normalize:
                statement = _plain_body(sql[code:end], first)
            else:
                statement = _body(sql[code:end], first, "")
            if statement is not None:
                yield statement
        line += sql.count("\n", pos, end)
        pos = end


def _plain_body(text: str, line: int) -> Statement | None:
    """A plain statement, its normalized text made as sqlparse's tokens would make it (quoted names kept,
    strings blanked, comments dropped)."""
    statement = _body(text, line, "")
    if statement is None:
        return None
    normalized = _WS.sub(" ", _PLAIN_TOKENS.sub(_plain_token, text)).strip().upper()
    return Statement(statement.sql, line, normalized[:-1].rstrip() if normalized.endswith(";") else normalized)


_PLAIN_TOKENS = re.compile(r""""[^"]*"|'(?:[^']|'')*'|--[^\r\n]*""")


def _plain_token(match: re.Match[str]) -> str:
    token = match.group(0)
    return token if token[0] == '"' else "''" if token[0] == "'" else " "


def _body(text: str, line: int, normalized: str) -> Statement | None:
    body = text.rstrip()
    if body.endswith(";"):
        body = body[:-1].rstrip()
    return Statement(body, line, normalized) if body else None


# Up to the terminating `;`: quoted text and `--` comments are skipped whole; a quote that does not close stops it.
_TO_SEMICOLON = re.compile(r"""(?:[^'";\-]+|'[^']*'|"[^"]*"|--[^\r\n]*|-)*""")
_QUOTED_OR_COMMENT = re.compile(r"""'[^']*'|"[^"]*"|--[^\r\n]*""")
_LEADING = re.compile(r"(?:[ \t\r\n]+|--(?!\+)[^\r\n]*)*")
# After `;`, sqlparse keeps spaces and `--` comments (with their line break) in the statement, up to a line break.
_TRAILING = re.compile(r"(?:[ \t]+|--(?!\+)[^\r\n]*(?:\r\n|\r|\n)?)*")
# What could make sqlparse split differently from the scan (looked for up to two characters past the statement,
# where a `# ` comment would still belong to it): then sqlparse splits that statement. Words are looked for
# anywhere (sqlparse's lexer also finds GO in 0x1FGO).
_ODD_CHARACTERS = re.compile("[\\\\#$`\u00b4\\[\x0b\x0c\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")
_BLOCK_WORDS = ("begin", "declare", "end", "go")
# sqlparse lexes an operator greedily, so `/--` (or `+--`, `|--`, …) is one operator, not the start of a comment.
_OPERATOR_DASHES = re.compile(r"[+/@%^&|]--")


def _unplain(text: str) -> bool:
    if _ODD_CHARACTERS.search(text) or "/*" in text or "--+" in text or _OPERATOR_DASHES.search(text):
        return True
    lowered = text.lower()
    return any(word in lowered for word in _BLOCK_WORDS)


def _plain_statement(sql: str, pos: int) -> tuple[int, int] | None:
    """(start of code, end) of the statement at `pos` when the scan can split it exactly as sqlparse, else None."""
    code = _LEADING.match(sql, pos).end()
    stop = _TO_SEMICOLON.match(sql, code).end()
    if stop == len(sql):
        end = stop
    elif sql[stop] != ";":
        return None
    else:
        end = _TRAILING.match(sql, stop + 1).end()
    if _unplain(sql[pos : end + 2]):
        return None
    if end < len(sql):  # sqlparse splits at `;` only outside parentheses
        code_text = _QUOTED_OR_COMMENT.sub("", sql[code:stop])
        if code_text.count("(") != code_text.count(")"):
            return None
    return code, end


def _sqlparse_statements(sql: str, pos: int, line: int) -> tuple[list[Statement], int]:
    """The statements sqlparse finds from `pos` up to one that ends where the scan can take over again (after
    `;` or whitespace: sqlparse's look-behinds then see what they would in the whole text), and that end.

    sqlparse reads a window of the text, grown until two more statements follow the last one taken (so its end
    is certain) or the window holds the rest of the script.
    """
    from sqlparse.engine import FilterStack  # imported when first needed: a run with nothing to split never loads it

    window = 1 << 16
    while True:
        raws = FilterStack().run(one_comment_each(sql[pos : pos + window]))
        whole = pos + window >= len(sql)
        found: list[Statement] = []
        ahead = list(islice(raws, 2))
        offset = pos
        while ahead:
            raw = ahead.pop(0)
            ahead.extend(islice(raws, 1))
            if len(ahead) < 2 and not whole:
                break  # this statement's end is not certain yet: read a larger window
            text = sql[offset : offset + len(str(raw))]  # as written: a nested comment's inner `*/` were blanked
            start = _first_code_offset(raw)
            if start is not None:
                statement = _body(text[start:], line + text.count("\n", 0, start), _normalize_tokens(raw))
                if statement is not None:
                    found.append(statement)
            line += text.count("\n")
            offset += len(text)
            if text[-1:] in _RESUMABLE or not ahead:
                return found, offset
        else:
            if whole:
                return found, len(sql)
        window *= 4


_RESUMABLE = frozenset(";\n\r \t")


def _first_code_offset(stmt) -> int | None:
    """Offset of the first token that is neither whitespace nor a comment."""
    from sqlparse import tokens as T

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
    from sqlparse.engine import FilterStack

    return " ".join(filter(None, (_normalize_tokens(raw) for raw in FilterStack().run(one_comment_each(sql)))))


def one_comment_each(sql: str) -> str:
    """`sql` with each nested block comment blanked inside (the same length, so offsets and lines hold), so that
    sqlparse, which ends a comment at its first `*/`, sees it as one comment as PostgreSQL and psql do."""
    if not _may_nest(sql):
        return sql
    from sqlparse import tokens as T
    from sqlparse.lexer import Lexer

    start = 0
    while (found := _next_nested_comment(sql, start, Lexer.get_default_instance(), T.Comment.Multiline)) is not None:
        begin, end = found
        sql = sql[: begin + 2] + _COMMENT_MARKS.sub("  ", sql[begin + 2 : end - 2]) + sql[end - 2 :]
        start = end
    return sql


_COMMENT_MARKS = re.compile(r"/\*|\*/")


def _may_nest(sql: str) -> bool:
    """True when some `/*` comes before the `*/` after the `/*` before it (quotes not considered: a cheap test)."""
    pos = sql.find("/*")
    while pos >= 0:
        close = sql.find("*/", pos + 2)
        if close < 0:
            return False
        if sql.find("/*", pos + 2, close) >= 0:
            return True
        pos = sql.find("/*", close + 2)
    return False


def _next_nested_comment(sql: str, start: int, lexer, comment) -> tuple[int, int] | None:
    """(start, end) of the first block comment from `start` (where no token is open) that nests, as sqlparse's
    tokens place comments; None when there is none, or it does not close."""
    offset = start
    for ttype, value in lexer.get_tokens(sql[start:]):
        if ttype in comment:
            end = _comment_end(sql, offset + 2)
            if end is None:
                return None
            if end != offset + len(value):
                return offset, end
        offset += len(value)
    return None


def _normalize_tokens(stmt) -> str:
    from sqlparse import tokens as T

    parts: list[str] = []
    for token in stmt.flatten():
        if token.ttype in T.Comment:
            parts.append(" ")
        elif token.ttype is T.Literal or token.ttype in T.Literal.String.Single:
            parts.append("''")
        else:
            parts.append(token.value)
    text = _WS.sub(" ", "".join(parts)).strip().upper()
    return text[:-1].rstrip() if text.endswith(";") else text


def may_hold_non_transactional(sql: str, dialect: str | None = None) -> bool:
    """False when no statement of `sql` can be non-transactional on `dialect` (a cheap test before splitting)."""
    words = _PREFILTER.get(dialect) or _PREFILTER[None]
    return any(any(word in chunk for word in words) for chunk in _chunks_upper(sql, max(map(len, words)) - 1))


_PREFILTER_CHUNK = 1 << 20


def _chunks_upper(sql: str, overlap: int) -> Iterator[str]:
    """`sql` upper-cased a slice at a time (each overlapping the one before): never a copy of the whole."""
    for start in range(0, len(sql), _PREFILTER_CHUNK):
        yield sql[max(start - overlap, 0) : start + _PREFILTER_CHUNK].upper()


# COPY that streams rows through the client (psql's way of loading a pg_dump): dbops sends no data and reads none.
_CLIENT_COPY = re.compile(r"COPY\b.*\b(FROM STDIN|TO STDOUT)\b", re.S)
# A statement that ends, opens or nests a transaction (lint's DB003; matched against the normalized statement).
_TRANSACTION_CONTROL = re.compile(
    r"(BEGIN|START TRANSACTION|COMMIT|END|ROLLBACK|ABORT|PREPARE TRANSACTION)( (WORK|TRANSACTION))?( AND (NO )?CHAIN)?"
    r"( (ISOLATION LEVEL|READ (WRITE|ONLY)|(NOT )?DEFERRABLE)\b.*| '')?$",
    re.S,
)
# What a script needs to hold one (upper-cased text): words, and BEGIN or END ending a statement.
_TRANSACTION_WORDS = ("COMMIT", "ROLLBACK", "ABORT", "TRANSACTION")
_BLOCK_EDGE = r"\s*(?:;|$|--|/\*|WORK\b|TRANSACTION\b|ISOLATION\b|READ\b|NOT\b|DEFERRABLE\b)"
_ALONE = [(word, re.compile(rf"{word}(?<=\b{word})" + _BLOCK_EDGE, re.M)) for word in ("BEGIN", "END")]


def client_copy(normalized: str) -> str | None:
    """`COPY FROM STDIN` or `COPY TO STDOUT` when the normalized statement is one, else None."""
    found = _CLIENT_COPY.match(normalized)
    return f"COPY {found.group(1)}" if found else None


def may_hold_client_copy(sql: str) -> bool:
    """False when no statement of `sql` can be a COPY through the client (a cheap test before splitting)."""
    return any("STDIN" in chunk or "STDOUT" in chunk for chunk in _chunks_upper(sql, 5))


def transaction_control(normalized: str) -> str | None:
    """The keyword (BEGIN, COMMIT, START TRANSACTION, ...) when the normalized statement is transaction control."""
    found = _TRANSACTION_CONTROL.match(normalized)
    return found.group(1) if found else None


def may_hold_transaction_control(sql: str) -> bool:
    """False when no statement of `sql` can be transaction control (a cheap test before splitting)."""
    for chunk in _chunks_upper(sql, 16):
        if any(word in chunk for word in _TRANSACTION_WORDS):
            return True
        if any(word in chunk and pattern.search(chunk) for word, pattern in _ALONE):
            return True
    return False


def non_transactional_kind(normalized: str, dialect: str | None = None) -> str | None:
    """The label of the non-transactional statement `normalized` starts with (on `dialect`, or on any), or None."""
    masked = _QUOTED_IDENT.sub('"_"', normalized) if '"' in normalized else normalized
    for pattern, label, dialects in _NON_TX_RE:
        if (dialect is None or dialect in dialects) and pattern.match(masked):
            return label
    return None


def pieces(sql: str, size: int) -> Iterator[tuple[int, str]]:
    """`sql` cut into consecutive pieces of about `size` characters, each ending with a statement's `;`:
    (offset, text). The server splits each piece as it would split the whole script. No cut comes after a
    BEGIN (an atomic body may follow), nor anywhere in a script with a backslash (an E'' string could hide a
    quote); comments and whitespace after the last statement stay with it."""
    start = 0
    if "\\" not in sql:
        limit = _first_begin(sql)
        while len(sql) - start > size:
            cut = _next_cut(sql, start, start + size)
            if cut is None or cut > limit or _only_comments(sql, cut):
                break
            yield start, sql[start:cut]
            start = cut
    yield start, sql[start:]


def _first_begin(sql: str, chunk: int = 1 << 20) -> int:
    """Where `begin` first occurs, in any case and anywhere (in a word, a string), or the text's length."""
    for start in range(0, len(sql), chunk):
        found = sql[max(start - 4, 0) : start + chunk].lower().find("begin")
        if found >= 0:
            return max(start - 4, 0) + found
    return len(sql)
# Text without a `;`, comment, dollar quote or unclosed quote (strings and quoted names are skipped whole).
_PLAIN_RUN = re.compile(r"""(?:[^'";\-/$]+|'[^']*'|"[^"]*"|-(?!-)|/(?!\*))*""")
_DOLLAR = re.compile(r"\$(?:[A-Za-z_\x80-\uffff][\w\x80-\uffff]*)?\$")


def _next_cut(sql: str, pos: int, at: int) -> int | None:
    """The end of the first top-level `;` at or after `at`, scanning from `pos` (a cut or the script's start,
    where no quote or comment is open); None when there is none, or a quote does not close."""
    while True:
        pos = _PLAIN_RUN.match(sql, pos).end()
        if pos >= len(sql):
            return None
        char = sql[pos]
        if char == ";":
            pos += 1
            if pos >= at:
                return pos
        elif char == "-":
            newline = sql.find("\n", pos)
            if newline < 0:
                return None
            pos = newline
        elif char == "/":
            pos = _comment_end(sql, pos + 2)
            if pos is None:
                return None
        elif char == "$":
            tag = _DOLLAR.match(sql, pos)
            if tag is None or (pos and (sql[pos - 1].isalnum() or sql[pos - 1] in "_$")):
                pos += 1  # a parameter ($1) or part of a name (a$b)
                continue
            close = sql.find(tag.group(0), tag.end())
            if close < 0:
                return None
            pos = close + len(tag.group(0))
        else:
            return None  # a quote that does not close


def _only_comments(sql: str, pos: int) -> bool:
    """True when nothing but whitespace and comments follows `pos`."""
    while True:
        pos = _LEADING.match(sql, pos).end()
        if not sql.startswith("/*", pos):
            return pos >= len(sql)
        end = _comment_end(sql, pos + 2)
        if end is None:
            return False
        pos = end


def _comment_end(sql: str, pos: int) -> int | None:
    """The end of a block comment opened before `pos` (they nest in PostgreSQL)."""
    depth = 1
    while depth:
        opening, closing = sql.find("/*", pos), sql.find("*/", pos)
        if closing < 0:
            return None
        if 0 <= opening < closing:
            depth, pos = depth + 1, opening + 2
        else:
            depth, pos = depth - 1, closing + 2
    return pos


def statement_at(sql: str, line: int, size: int = 1 << 20) -> Statement | None:
    """The statement of `sql` that holds `line` (the last one starting on or before it); only the piece of the
    script around that line is split."""
    found, first = None, 1
    for _, piece in pieces(sql, size):
        lines = piece.count("\n")
        if first + lines >= line:
            for statement in iter_statements(piece, first):
                if statement.line > line:
                    return found
                found = statement
        first += lines
    return found
