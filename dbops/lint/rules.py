"""The checks behind `dbops lint`: each looks at one statement (or one script) and reports hits."""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlglot import exp

from dbops.lint.syntax import judge
from dbops.scripts.migrations import REPEATABLE, UNDO
from dbops.scripts.statements import Statement, transaction_control

CALLBACK = "callback"


@dataclass(frozen=True)
class Hit:
    """What a check reports about one statement; line is relative to the statement's first line."""

    code: str
    message: str
    offset: int = 0
    fix: str = ""


@dataclass
class Script:
    """What lint needs of a migration or callback."""

    path: str
    kind: str
    sql: str
    statements: list[Statement]
    rerunnable: bool = False
    execute_in_transaction: bool | None = None
    mixed_allowed: bool = False
    non_transactional: list[Statement] = field(default_factory=list)
    mixed: bool = False


@dataclass
class ColumnTypes:
    """Column types defined so far, in the order scripts run, to judge later type changes (DB005).

    A type is a tree, or its Redshift SQL when it came from the lint cache (built into a tree when first looked up);
    `learned` logs what `learn` recorded since the last `take_learned`, for the cache.
    """

    columns: dict[tuple[str, str], exp.DataType | str] = field(default_factory=dict)
    learned: list[tuple[str, str, exp.DataType]] = field(default_factory=list)

    def learn(self, tree: exp.Expression | None) -> None:
        """Record the columns a CREATE TABLE or ALTER TABLE defines, adds or retypes."""
        if tree is None:
            return
        table = _table_name(tree.this)
        for column in _column_defs(tree):
            self._record(table, column.name.lower(), column.args["kind"])
        for action in _retyped(tree):
            self._record(table, action.name.lower(), action.args["dtype"])

    def _record(self, table: str, column: str, kind: exp.DataType) -> None:
        self.columns[(table, column)] = kind
        self.learned.append((table, column, kind))

    def type_of(self, table: str, column: str) -> exp.DataType | None:
        """The column's type as far as the scripts so far define it, or None."""
        kind = self.columns.get((table, column))
        if isinstance(kind, str):
            kind = self.columns[(table, column)] = exp.DataType.build(kind, dialect="redshift")
        return kind

    def take_learned(self) -> list[tuple[str, str, str]]:
        """(table, column, type as Redshift SQL) of each column recorded since the last call, in order."""
        taken = [(table, column, kind.sql("redshift")) for table, column, kind in self.learned]
        self.learned.clear()
        return taken

    def add(self, learned: list[tuple[str, str, str]]) -> None:
        """Record columns taken from another ColumnTypes (a cached script's), without parsing their types."""
        for table, column, kind in learned:
            self.columns[(table, column)] = kind


def _table_name(table: exp.Expression | None) -> str:
    if isinstance(table, exp.Schema):
        table = table.this
    return ".".join(p.name.lower() for p in table.parts) if isinstance(table, exp.Table) else ""


def _offset(node: exp.Expression) -> int:
    """Lines between the statement's first line and `node` (its name's position, when sqlglot kept it)."""
    name = node.this if isinstance(node.this, exp.Identifier) else node
    return max(int(name.meta.get("line", 1)) - 1, 0)


def _retyped(tree: exp.Expression | None) -> list[exp.AlterColumn]:
    """The ALTER COLUMN ... TYPE actions of an ALTER TABLE."""
    actions = tree.args.get("actions") or [] if isinstance(tree, exp.Alter) else []
    return [a for a in actions if isinstance(a, exp.AlterColumn) and a.args.get("dtype")]


def _column_defs(tree: exp.Expression | None) -> list[exp.ColumnDef]:
    """Columns a CREATE TABLE defines or an ALTER TABLE adds (not function parameters)."""
    if isinstance(tree, exp.Create) and str(tree.args.get("kind", "")).upper() == "TABLE" and isinstance(tree.this, exp.Schema):
        items = tree.this.expressions
    elif isinstance(tree, exp.Alter):
        items = tree.args.get("actions") or []
    else:
        return []
    return [c for c in items if isinstance(c, exp.ColumnDef) and isinstance(c.args.get("kind"), exp.DataType)]


# --- parsing -------------------------------------------------------------------------------------

# Valid Redshift that sqlglot 30 rejects; blanked (same length, so positions hold) before parsing.
_SQLGLOT_GAPS = [
    (re.compile(r"^\s*CREATE\b", re.IGNORECASE), re.compile(r"\bSORTKEY\s+AUTO\b", re.IGNORECASE)),
    (re.compile(r"^\s*CREATE\b", re.IGNORECASE), re.compile(r"\b(DISTKEY|SORTKEY)\b(?!\s*\()", re.IGNORECASE)),
    (re.compile(r"^\s*CREATE\b", re.IGNORECASE), re.compile(r"\bINTERLEAVED(?=\s+SORTKEY\b)|\bENCODE\s+AUTO\b", re.IGNORECASE)),
]


def _parseable(sql: str) -> str:
    for applies, gap in _SQLGLOT_GAPS:
        if applies.match(sql):
            sql = gap.sub(lambda m: " " * len(m.group(0)), sql)
    return sql


def parse(statement: Statement) -> tuple[exp.Expression | None, Hit | None]:
    """The statement's syntax tree (None when sqlglot has none for it) and a DB001 hit when it is not valid SQL."""
    verdict = judge(_parseable(statement.sql))
    if verdict.error:
        return None, Hit("DB001", f"cannot parse as Redshift SQL: {verdict.error}", verdict.offset)
    return verdict.tree, None


# --- checks on one statement ---------------------------------------------------------------------

_DROP_TABLE = re.compile(r"DROP (TABLE|SCHEMA) (IF EXISTS )?(?P<name>[^ ,]+)")
_DROP_SCHEMA_KEEPS = re.compile(r"DROP SCHEMA (?!.*\bCASCADE\b)")
_ALTER_TABLE = re.compile(r"ALTER TABLE (IF EXISTS )?(ONLY )?(?P<table>\S+)")
_DROP_COLUMN = re.compile(
    r"(?:^ALTER TABLE (?:IF EXISTS )?(?:ONLY )?\S+|,) ?DROP (?:COLUMN )?(?:IF EXISTS )?(?!CONSTRAINT\b|PARTITION\b)(?P<name>[^ ,]+)"
)
_TRUNCATE = re.compile(r"TRUNCATE (TABLE )?(?P<name>\S+)")
_DELETE_ALL = re.compile(r"DELETE (FROM )?(?P<name>\S+)( (AS )?\w+)?$")
_CASCADE = re.compile(r"(DROP|ALTER TABLE|TRUNCATE)\b.*\bCASCADE\b")
_GRANT_PUBLIC = re.compile(r"(GRANT|ALTER DEFAULT PRIVILEGES\b.*\bGRANT)\b.*\bTO (?P<to>.*)$")
_NOT_RERUNNABLE = [
    (re.compile(r"CREATE TABLE (?!IF NOT EXISTS)"), "CREATE TABLE without IF NOT EXISTS", "write CREATE TABLE IF NOT EXISTS"),
    (re.compile(r"CREATE SCHEMA (?!IF NOT EXISTS)"), "CREATE SCHEMA without IF NOT EXISTS", "write CREATE SCHEMA IF NOT EXISTS"),
    (re.compile(r"CREATE VIEW\b"), "CREATE VIEW without OR REPLACE", "write CREATE OR REPLACE VIEW"),
    (re.compile(r"CREATE (FUNCTION|PROCEDURE)\b"), "CREATE FUNCTION/PROCEDURE without OR REPLACE", "write CREATE OR REPLACE"),
    (re.compile(r"CREATE MATERIALIZED VIEW\b"), "CREATE MATERIALIZED VIEW",
     "precede it with DROP MATERIALIZED VIEW IF EXISTS, or move it to a versioned script"),
    (re.compile(r"CREATE (USER|GROUP|ROLE)\b"), "CREATE USER/GROUP/ROLE", "move it to a versioned script"),
    (re.compile(r"ALTER TABLE \S+ ADD (COLUMN )?(?!IF NOT EXISTS|CONSTRAINT)"), "ALTER TABLE ADD COLUMN",
     "move it to a versioned script"),
]
_NOT_IN_REDSHIFT = [
    (re.compile(r"CREATE (UNIQUE )?INDEX\b"), "CREATE INDEX: Redshift has no indexes; choose a SORTKEY instead"),
    (re.compile(r"CREATE SEQUENCE\b"), "CREATE SEQUENCE: Redshift has no sequences; use an IDENTITY column"),
    (re.compile(r"CREATE (OR REPLACE )?(CONSTRAINT )?TRIGGER\b"), "CREATE TRIGGER: Redshift has no triggers"),
    (re.compile(r"CREATE EXTENSION\b"), "CREATE EXTENSION: Redshift has no extensions"),
    (re.compile(r"CREATE (TYPE|DOMAIN)\b"), "CREATE TYPE/DOMAIN: Redshift has no user-defined types"),
    (re.compile(r"DO\b"), "DO blocks: Redshift has none; use a stored procedure and CALL it"),
]
_TYPES_NOT_IN_REDSHIFT = {
    exp.DataType.Type.SERIAL: "SERIAL: use INTEGER IDENTITY(1,1)",
    exp.DataType.Type.BIGSERIAL: "BIGSERIAL: use BIGINT IDENTITY(1,1)",
    exp.DataType.Type.SMALLSERIAL: "SMALLSERIAL: use SMALLINT IDENTITY(1,1)",
    exp.DataType.Type.JSON: "JSON: use SUPER",
    exp.DataType.Type.JSONB: "JSONB: use SUPER",
    exp.DataType.Type.UUID: "UUID: use CHAR(36)",
    exp.DataType.Type.ARRAY: "arrays: use SUPER",
    exp.DataType.Type.INET: "INET: use VARCHAR(45)",
    exp.DataType.Type.MONEY: "MONEY: use DECIMAL(19,4)",
    exp.DataType.Type.XML: "XML: use VARCHAR",
}
_VARCHAR = {exp.DataType.Type.VARCHAR, exp.DataType.Type.NVARCHAR, exp.DataType.Type.TEXT}
_CHARACTER = _VARCHAR | {exp.DataType.Type.CHAR, exp.DataType.Type.NCHAR, exp.DataType.Type.BPCHAR}
_CREATE_TABLE = re.compile(r"CREATE TABLE (IF NOT EXISTS )?(?P<name>[^ (]+)")
_CREATE_LIKE = re.compile(r"CREATE TABLE (IF NOT EXISTS )?\S+ \(LIKE\b")
_PHYSICAL = [("DISTSTYLE/DISTKEY", re.compile(r"\b(DISTSTYLE|DISTKEY)\b")), ("SORTKEY", re.compile(r"\bSORTKEY\b"))]


@dataclass
class StatementContext:
    """One statement with everything a check may look at."""

    script: Script
    statement: Statement
    tree: exp.Expression | None
    known: ColumnTypes

    @property
    def text(self) -> str:
        return self.statement.normalized


def check_transaction_control(ctx: StatementContext) -> Iterator[Hit]:
    """DB003: BEGIN, COMMIT, ROLLBACK and the like inside a script."""
    if keyword := transaction_control(ctx.text):
        effect = "nests a transaction in the one dbops runs the script in" if keyword in ("BEGIN", "START TRANSACTION") else \
            "ends the script's transaction early"
        yield Hit("DB003", f"{keyword} {effect}; a failure after it leaves the script half-applied and unrecorded")


def check_destructive(ctx: StatementContext) -> Iterator[Hit]:
    """DB004: DROP TABLE, DROP SCHEMA ... CASCADE, DROP COLUMN, TRUNCATE, DELETE without WHERE (not in undo scripts)."""
    if ctx.script.kind == UNDO:
        return
    text = ctx.text
    if (m := _DROP_TABLE.match(text)) and not _DROP_SCHEMA_KEEPS.match(text):
        yield Hit("DB004", f"DROP {m.group(1)} {m.group('name').lower()} deletes its data")
    elif (table := _ALTER_TABLE.match(text)) and (m := _DROP_COLUMN.search(text)):
        yield Hit("DB004", f"DROP COLUMN {table.group('table').lower()}.{m.group('name').lower()} deletes the column's data")
    elif m := _TRUNCATE.match(text):
        yield Hit("DB004", f"TRUNCATE {m.group('name').lower()} deletes every row (and commits at once on Redshift)")
    elif m := _DELETE_ALL.match(text):
        yield Hit("DB004", f"DELETE without WHERE deletes every row of {m.group('name').lower()}")


_ONLY_VARCHAR = "Redshift changes only a VARCHAR column's size in place; any other type change needs a new column"


def check_type_change(ctx: StatementContext) -> Iterator[Hit]:
    """DB005: ALTER COLUMN ... TYPE to anything but a VARCHAR, or of a column that is not one."""
    table = _table_name(ctx.tree.this) if ctx.tree is not None else ""
    for action in _retyped(ctx.tree):
        new: exp.DataType = action.args["dtype"]
        old = ctx.known.type_of(table, action.name.lower())
        column = f"{table}.{action.name.lower()}"
        if new.this not in _VARCHAR:
            yield Hit("DB005", f"{column} TYPE {new.sql('redshift')}: {_ONLY_VARCHAR}", _offset(action))
        elif old is not None and old.this not in _VARCHAR:
            yield Hit("DB005", f"{column} is {old.sql('redshift')}: {_ONLY_VARCHAR}", _offset(action))
        elif old is not None and (before := _width(old)) is not None and (after := _width(new)) is not None and after < before:
            yield Hit(
                "DB005",
                f"{column} {old.sql('redshift')} → {new.sql('redshift')}: narrower, it fails once a value is longer; "
                "keep the width, or check the data and say why with a lint-ignore",
                _offset(action),
            )


def _width(kind: exp.DataType) -> int | None:
    """A VARCHAR's declared width (MAX: 65535, Redshift's limit); None when not given."""
    if not kind.expressions:
        return None
    value = kind.expressions[0].this
    if isinstance(value, exp.Literal) and value.is_int:
        return int(value.this)
    return 65535 if value.name.upper() == "MAX" else None


def check_grant_public(ctx: StatementContext) -> Iterator[Hit]:
    """DB006: GRANT (or default privileges) to PUBLIC."""
    m = _GRANT_PUBLIC.match(ctx.text)
    if not m:
        return
    grantees = re.split(r"\s*,\s*", m.group("to").split(" WITH ")[0])
    if any(g.removeprefix("GROUP ").strip() == "PUBLIC" for g in grantees):
        yield Hit("DB006", "grants to PUBLIC: every user of the cluster, now and in future, gets the privilege")


def check_rerunnable(ctx: StatementContext) -> Iterator[Hit]:
    """DB007: a statement that fails the second time, in a repeatable script or a callback."""
    if not ctx.script.rerunnable:
        return
    what = "repeatable script" if ctx.script.kind == REPEATABLE else "callback"
    for pattern, label, fix in _NOT_RERUNNABLE:
        if pattern.match(ctx.text):
            yield Hit("DB007", f"{label} fails the next time this {what} runs", fix=fix)
            return


def check_cascade(ctx: StatementContext) -> Iterator[Hit]:
    """DB008: DROP ... CASCADE."""
    if _CASCADE.match(ctx.text):
        yield Hit("DB008", "CASCADE also drops every object that depends on this one, including objects no script here created")


def check_lengths(ctx: StatementContext) -> Iterator[Hit]:
    """DB009: VARCHAR, CHAR or TEXT columns without a length."""
    bare = [c for c in _column_defs(ctx.tree) if _no_length(c.args["kind"])]
    if bare:
        names = ", ".join(f"{c.name} {c.args['kind'].sql('postgres')}" for c in bare)
        yield Hit("DB009", f"{names}: without a length Redshift makes VARCHAR/TEXT 256 bytes and CHAR 1 byte "
                           "(PostgreSQL makes them unlimited)", _offset(bare[0]))


def _no_length(dtype: exp.DataType) -> bool:
    return dtype.this in _CHARACTER and not dtype.expressions


def check_select_star(ctx: StatementContext) -> Iterator[Hit]:
    """DB010: SELECT * (or t.*) in a view's query."""
    tree = ctx.tree
    if not (isinstance(tree, exp.Create) and str(tree.args.get("kind", "")).upper() == "VIEW" and tree.expression):
        return
    for select in tree.expression.find_all(exp.Select):
        if any(isinstance(p, exp.Star) or (isinstance(p, exp.Column) and isinstance(p.this, exp.Star)) for p in select.expressions):
            yield Hit("DB010", f"view {_table_name(tree.this)} "
                               "uses SELECT *: its columns are fixed when it is created, and new table columns never appear")
            return


def check_redshift_features(ctx: StatementContext) -> Iterator[Hit]:
    """DB011: PostgreSQL statements and column types Redshift does not have."""
    for pattern, message in _NOT_IN_REDSHIFT:
        if pattern.match(ctx.text):
            yield Hit("DB011", message)
            return
    odd = [c for c in _column_defs(ctx.tree) if c.args["kind"].this in _TYPES_NOT_IN_REDSHIFT]
    if odd:
        found = sorted({_TYPES_NOT_IN_REDSHIFT[c.args["kind"].this] for c in odd})
        yield Hit("DB011", "types Redshift does not have: " + "; ".join(found), _offset(odd[0]))


def check_distribution(ctx: StatementContext) -> Iterator[Hit]:
    """DB012 (info): a permanent table that leaves distribution or sort order to AUTO."""
    m = _CREATE_TABLE.match(ctx.text)
    if not m or _CREATE_LIKE.match(ctx.text):
        return
    missing = [label for label, pattern in _PHYSICAL if not pattern.search(ctx.text)]
    if missing:
        yield Hit("DB012", f"{m.group('name').lower()} has no {' or '.join(missing)}: Redshift chooses AUTO")


CHECKS = (
    check_transaction_control, check_destructive, check_type_change, check_grant_public, check_rerunnable,
    check_cascade, check_lengths, check_select_star, check_redshift_features, check_distribution,
)


def script_hits(script: Script) -> Iterator[tuple[Statement, Hit]]:
    """DB002: a non-transactional statement where the script runs in one transaction."""
    if not script.non_transactional or script.execute_in_transaction is False:
        return
    first = script.non_transactional[0]
    kind = first.non_transactional
    if script.kind == CALLBACK:
        yield first, Hit("DB002", f"{kind} cannot run in a transaction, and callbacks run in one")
    elif script.execute_in_transaction:
        yield first, Hit("DB002", f"{kind} cannot run in a transaction, but the script's .sql.conf sets "
                                  "executeInTransaction=true", fix="remove executeInTransaction=true from its .sql.conf")
    elif script.mixed and not script.mixed_allowed:
        other = next(s for s in script.statements if s not in script.non_transactional and not s.neutral)
        yield first, Hit("DB002", f"{kind} cannot run in a transaction, but the script also has transactional "
                                  f"statements (line {other.line}); a failure would leave it half-applied",
                         fix="move it to a script of its own, or set mixed=true in the script's .sql.conf")
