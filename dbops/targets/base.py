"""What every database driver provides to the engine: sessions, dialect, the run lock."""
from __future__ import annotations

import os
import socket
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dbops.errors import ConnectError

POSTGRESQL, REDSHIFT = "postgresql", "redshift"


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
    """One database connection. Transactions start implicitly; commit/rollback end them."""

    dialect: str = POSTGRESQL
    user: str = ""
    database: str = ""

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> int:
        """Run one statement; return the rows it affected (-1 when unknown)."""

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        """Run one statement and return its rows."""

    @abstractmethod
    def commit(self) -> None: ...

    def execute_and_commit(self, statements: list[tuple[str, Sequence[Any] | None]]) -> None:
        """Run bookkeeping statements, then commit; a driver may send them in one round trip."""
        for sql, params in statements:
            self.execute(sql, params)
        self.commit()

    @abstractmethod
    def rollback(self) -> None: ...

    @abstractmethod
    def set_autocommit(self, on: bool) -> None:
        """Switch autocommit; any open transaction is rolled back first (commit before calling)."""

    @abstractmethod
    def close(self) -> None: ...

    def backend_pid(self) -> int:
        return int(self.query("select pg_backend_pid()")[0][0])

    def cancel(self) -> None:
        """Ask the server to cancel the running statement (best effort)."""


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
