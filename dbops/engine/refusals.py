"""Statements migrate refuses before anything is applied: COPY through the client, and transaction control in a
script that runs in a transaction. Each is found by a cheap test of the script's text first, so a script without
the words is never split for it."""
from __future__ import annotations

from collections.abc import Callable, Iterable

from dbops.errors import ScriptError
from dbops.scripts.migrations import Migration
from dbops.scripts.statements import Statement, client_copy, may_hold_client_copy, may_hold_transaction_control, transaction_control
from dbops.targets.base import Dialect


def refuse_unrunnable(migrations: Iterable[Migration], dialect: Dialect | None) -> None:
    """Raise ScriptError (exit 2, naming file and line) for the first script migrate cannot run as written."""
    for migration in migrations:
        refuse_client_copy(migration)
        if migration.in_transaction_on(dialect):
            refuse_transaction_control(migration)


def refuse_client_copy(migration: Migration) -> None:
    """COPY FROM STDIN / TO STDOUT: the rows travel through the client, which dbops does not do."""
    found = _first(migration, may_hold_client_copy, client_copy)
    if found:
        kind, statement = found
        raise ScriptError(
            migration.path,
            f"{kind} streams data through the client (psql's way of loading a dump), which dbops does not do; "
            "nothing was applied. Load the rows with INSERT, or COPY from a file the server reads: "
            "COPY t FROM 's3://bucket/key' IAM_ROLE '...' on Redshift, COPY t FROM '/path/on/the/server' on PostgreSQL",
            line=statement.line,
        )


def refuse_transaction_control(migration: Migration) -> None:
    """BEGIN, COMMIT, ROLLBACK and the like in a script that runs in one transaction with its history row."""
    found = _first(migration, may_hold_transaction_control, transaction_control)
    if found:
        keyword, statement = found
        raise ScriptError(
            migration.path,
            f"{keyword} inside a script that runs in a transaction: dbops, like Flyway, runs each script in one "
            f"transaction together with its history row, and {keyword} would end or nest it, so a failure after it "
            "would leave the script half-applied and unrecorded; nothing was applied. Remove it, or set "
            f"executeInTransaction=false in {migration.path}.conf (Flyway's script configuration) to run the script "
            "statement by statement in autocommit",
            line=statement.line,
        )


def _first(migration: Migration, may_hold: Callable[[str], bool], kind_of: Callable[[str], str | None]) -> tuple[str, Statement] | None:
    """The first statement `kind_of` names (and its name), splitting the script only when `may_hold` its text."""
    if not may_hold(migration.sql):
        return None
    for statement in migration.statements:
        if kind := kind_of(statement.normalized):
            return kind, statement
    return None
