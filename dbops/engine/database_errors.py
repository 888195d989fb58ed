"""dbops's own statements (history, audit and lock tables, catalog reads) failing on the server: the user error that
says what is wrong and what to do. A script's failure is not one of these: the applier reports it as MigrationFailed."""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from dbops.engine.history import AUDIT_TABLE, quote_ident
from dbops.errors import DatabaseRefused, DatabaseTimeout, DbopsError, PermissionDenied
from dbops.targets.base import SqlError

INSUFFICIENT_PRIVILEGE = "42501"
QUERY_CANCELED = "57014"
LOCK_NOT_AVAILABLE = "55P03"
_DENIED = re.compile(r"permission denied for (schema|table|relation|view|sequence|database) (.+)$", re.IGNORECASE)
ANOTHER_USER = "the user of --url, or of the environment's url in flyway.toml"  # where a command takes its database user


@dataclass(frozen=True)
class OwnTables:
    """Where dbops keeps its tables and who it works as: what a message about them names."""

    schema: str
    table: str
    user: str = ""

    @property
    def history(self) -> str:
        return f"{self.schema}.{self.table}"


def explain(exc: SqlError, tables: OwnTables) -> DbopsError:
    """The user error for `exc`, which one of dbops's own statements on `tables` raised."""
    message = str(exc).strip()
    if exc.sqlstate == INSUFFICIENT_PRIVILEGE:
        return PermissionDenied(_permission(message, tables))
    if exc.sqlstate == QUERY_CANCELED and "statement timeout" in message.lower():
        return DatabaseTimeout(
            f"{message}: a statement dbops runs on its history table {tables.history} took longer than the session's "
            "statement_timeout allows. That setting comes from the URL (options=-c statement_timeout=…), --statement-timeout, "
            "or the user or database (ALTER ROLE/DATABASE … SET statement_timeout; SHOW statement_timeout tells): raise it "
            "(0 means no limit) for dbops's connection, or wait until what slows the statement (a lock held on the table?) "
            "is gone, and run dbops again"
        )
    if exc.sqlstate == LOCK_NOT_AVAILABLE:
        return DatabaseTimeout(
            f"{message}: dbops waited longer than the session's lock_timeout for a lock on its tables in schema "
            f"{tables.schema} (history table {tables.history}); another session holds it. Wait for it to finish, or raise "
            "lock_timeout for dbops's connection, and run dbops again"
        )
    if exc.sqlstate == QUERY_CANCELED:
        return DatabaseTimeout(
            f"{message}: the server cancelled a statement dbops runs on its history table {tables.history} "
            "(pg_cancel_backend or an administrator); run dbops again"
        )
    code = f" [SQLSTATE {exc.sqlstate}]" if exc.sqlstate else ""
    return DatabaseRefused(
        f"{message}{code}: the database refused a statement dbops runs on its own tables (history table "
        f"{tables.history}{_as(tables)}), not one of the scripts'. Fix the cause on the server and run dbops again"
    )


def _as(tables: OwnTables) -> str:
    return f", as user {tables.user}" if tables.user else ""


def _permission(message: str, tables: OwnTables) -> str:
    user = quote_ident(tables.user) if tables.user else "<dbops's database user>"
    who = f"database user {tables.user}" if tables.user else "dbops's database user"
    found = _DENIED.search(message)
    kind, name = (found[1].lower(), found[2].strip().strip('"')) if found else ("", "")
    if kind == "schema":
        return (
            f"{message}: {who} may not use or create tables in schema {name}, where dbops keeps its history table "
            f"{tables.history} and {tables.schema}.{AUDIT_TABLE}. Have an administrator run "
            f"GRANT USAGE, CREATE ON SCHEMA {quote_ident(name)} TO {user}; or connect as another user ({ANOTHER_USER}), "
            "or choose a schema it may create in (--schema)"
        )
    if kind in ("table", "relation", "view", "sequence"):
        schema, _, table = name.rpartition(".")
        qualified = f"{quote_ident(schema or tables.schema)}.{quote_ident(table)}"
        return (
            f"{message}: {who} may not read or write {schema or tables.schema}.{table}, one of dbops's tables (history "
            f"table {tables.history}). Have an administrator run GRANT SELECT, INSERT, UPDATE, DELETE ON {qualified} "
            f"TO {user}; or connect as the user that owns dbops's tables ({ANOTHER_USER})"
        )
    if kind == "database":
        return (
            f"{message}: {who} may not create schemas in database {name}, and dbops creates the schemas it manages "
            f"when they are missing ({tables.schema}). Have an administrator create them, or run "
            f"GRANT CREATE ON DATABASE {quote_ident(name)} TO {user}"
        )
    return (
        f"{message}: {who} lacks a privilege dbops needs on its tables in schema {tables.schema} (history table "
        f"{tables.history}). Connect as the user that owns them ({ANOTHER_USER}), or have an administrator grant it"
    )


@contextmanager
def own_statements(tables: Callable[[], OwnTables]) -> Iterator[None]:
    """Turn a SqlError escaping the block (one of dbops's own statements failed) into the user error for it."""
    try:
        yield
    except SqlError as exc:
        raise explain(exc, tables()) from None
