"""What every database driver provides to the engine: sessions, dialect, the run lock."""
from __future__ import annotations

import os
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from dbops.errors import ConnectError


class Dialect(StrEnum):
    """The SQL a target speaks (a str, so it compares and serialises as its value)."""

    POSTGRESQL = "postgresql"
    REDSHIFT = "redshift"


Bookkeeping = Callable[[int | None], list[tuple[str, Sequence[Any] | None]]]
# Called inside a migration's transaction after its statements and before its bookkeeping (the migration's checks);
# when it raises, the migration's transaction (or savepoint) is rolled back and the exception is the outcome.
Verify = Callable[[], None]


# A batch of migrations marks each one's start in the `dbops.started` setting; alone, a migration starts at BEGIN.
SCRIPT_STARTED_MARK = "select set_config('dbops.started', clock_timestamp()::text, true)"


class SqlError(Exception):
    """A statement failed on the server; the message is the server's, without secrets."""

    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        self.sqlstate = sqlstate
        super().__init__(message)


class ConnectionLost(ConnectError):
    """The connection broke while dbops was using it (exit 3)."""


def application_name() -> str:
    """How dbops sessions introduce themselves, so a lock holder can be named."""
    return f"dbops {socket.gethostname()}:{os.getpid()}"[:63]


class Session(ABC):
    """One database connection. Transactions start implicitly; commit/rollback end them.

    `execute` and `query` send SQL without params as written (a script's statements). With params the SQL is a
    template: `%s` stands for a parameter and `%%` for `%` outside quotes and comments; what is quoted ('…', "…")
    or commented is sent as written, on every driver (redshift_connector's own rule), so a quoted name such as
    `"h%s"` needs no escaping.
    """

    dialect: Dialect = Dialect.POSTGRESQL
    user: str = ""
    database: str = ""

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> int:
        """Run one statement; return the rows it affected (-1 when unknown)."""

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        """Run one statement and return its rows."""

    @abstractmethod
    def query_columns(self, sql: str) -> tuple[list[str], list[tuple]]:
        """Run one query (no params) and return its column names and rows."""

    @abstractmethod
    def commit(self) -> None: ...

    def run_transaction(self, statements: list[str], bookkeeping: Bookkeeping, verify: Verify | None = None) -> TransactionResult:
        """Run `statements` and then the bookkeeping rows in one transaction, and commit.

        `bookkeeping(elapsed_ms)` gives the (sql, params) to record; a driver that sends everything in one
        round trip calls it with None, and the rows then take the time from the server's clock. On a failure
        the transaction is rolled back and the result carries the error, with the failing statement's index
        when a statement failed (None when the bookkeeping or COMMIT did). `verify` runs between the statements
        and the bookkeeping; what it raises is rolled back and re-raised.
        """
        clock = time.perf_counter()
        rows: list[int] = []
        for index, sql in enumerate(statements):
            try:
                rows.append(self.execute(sql))
            except SqlError as exc:
                self.rollback()
                return TransactionResult(rows, 0, failed_index=index, error=exc)
        if verify is not None:
            try:
                verify()
            except Exception:
                self.rollback()
                raise
        elapsed = int((time.perf_counter() - clock) * 1000)
        try:
            for sql, params in bookkeeping(elapsed):
                self.execute(sql, params)
            self.commit()
        except SqlError as exc:  # a bookkeeping row, or COMMIT itself (a deferred constraint): no statement to name
            self.rollback()
            return TransactionResult(rows, elapsed, failed_index=None, error=exc)
        return TransactionResult(rows, elapsed)

    def run_script(
        self, sql: str, statements: Callable[[], list[str]], bookkeeping: Bookkeeping, verify: Verify | None = None
    ) -> TransactionResult:
        """Run a whole script (too big for a batch) and its bookkeeping in one transaction, and commit.

        This default runs its statements; a driver may stream the text instead and locate a failure by
        `failed_offset` (a character of `sql`) or `failed_line`.
        """
        return self.run_transaction(statements(), bookkeeping, verify)

    supports_batches = False

    def check_scripts(self, migrations: Sequence[Any]) -> None:
        """Refuse (ConfigError), before anything runs, scripts this driver cannot send; the default sends any."""

    def run_batch(self, items: list[BatchItem]) -> BatchResult:
        """Apply several migrations, each atomic with its bookkeeping, stopping at the first that fails.

        Drivers with `supports_batches` send them in one round trip and one commit; this default runs
        them one transaction at a time. An item whose `verify` raises is rolled back; the exception is `rejected`.
        """
        rows: list[int] = []
        for item in items:
            try:
                outcome = self.run_transaction(item.statements(), item.bookkeeping, item.verify)
            except ConnectError:
                raise
            except Exception as exc:
                if item.verify is None:
                    raise
                return BatchResult(len(rows), rows, rejected=exc)
            if outcome.error is not None:
                return BatchResult(len(rows), rows, outcome.error, outcome.failed_index)
            rows.append(sum(max(r, 0) for r in outcome.rows))
        return BatchResult(committed=len(rows), rows=rows)

    @abstractmethod
    def rollback(self) -> None: ...

    @abstractmethod
    def set_autocommit(self, on: bool) -> None:
        """Switch autocommit; any open transaction is rolled back first (commit before calling)."""

    @abstractmethod
    def close(self) -> None: ...

    def backend_pid(self) -> int:
        return int(self.query("select pg_backend_pid()")[0][0])


@dataclass
class TransactionResult:
    """Rows affected per statement, time taken, and the failing statement (index and error), if any."""

    rows: list[int]
    elapsed_ms: int
    failed_index: int | None = None
    error: SqlError | None = None
    failed_offset: int | None = None
    failed_line: int | None = None


@dataclass
class BatchItem:
    """One script of a batch: its text, its statements (parsed on demand), and its bookkeeping rows."""

    script: str
    statements: Callable[[], list[str]]
    bookkeeping: Bookkeeping
    verify: Verify | None = None


@dataclass
class BatchResult:
    """How many items of a batch committed (a prefix), their rows and statement counts, and why the next failed.

    The failure is located by statement index, or by character offset in the script's text; or the next item
    ran but its `verify` rejected it.
    """

    committed: int
    rows: list[int] | None = None
    error: SqlError | None = None
    failed_statement: int | None = None
    failed_offset: int | None = None
    statement_counts: list[int] | None = None
    rejected: Exception | None = None  # what the next item's `verify` raised (its checks failed)


@dataclass(frozen=True)
class TargetInfo:
    """What `dbops info` says about the target besides its migrations."""

    url: str
    driver: str
    ssl: str


class Target(ABC):
    """A database dbops migrates: knows how to open sessions and which run lock to use."""

    url: str = ""
    lock_kind: str = "advisory"

    @abstractmethod
    def connect(self) -> Session:
        """Open a new session; raise ConnectError (exit 3) when the server cannot be reached."""

    @property
    @abstractmethod
    def redacted_url(self) -> str: ...

    @abstractmethod
    def info(self) -> TargetInfo: ...

    @property
    def user(self) -> str:
        return ""

    @property
    def database(self) -> str:
        return ""
