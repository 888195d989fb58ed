"""Errors a user can cause, each with the exit code the CLI returns for it."""
from __future__ import annotations


class DbopsError(Exception):
    """Base class: a message for the user, no traceback."""

    exit_code = 2


class ConfigError(DbopsError):
    """Bad input or configuration: names, duplicates, placeholders, flags (exit 2)."""

    exit_code = 2


class ScriptError(ConfigError):
    """A script that cannot be used as it is; names the file and, when known, the line."""

    def __init__(self, path: str, problem: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.problem = problem
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {problem}")


class ValidationFailed(DbopsError):
    """Applied migrations differ from the scripts (exit 1)."""

    exit_code = 1


class MigrationFailed(DbopsError):
    """A script failed while being applied (exit 1); `path` names the script when one failed."""

    exit_code = 1

    def __init__(self, message: str, path: str | None = None) -> None:
        self.path = path
        super().__init__(message)


class ConnectError(DbopsError):
    """The database cannot be reached (exit 3)."""

    exit_code = 3


class LockTimeout(DbopsError):
    """Another migrator held the run lock for longer than the lock timeout (exit 3)."""

    exit_code = 3


class StorageUnavailable(ConnectError):
    """The Dagster instance's storage cannot be reached or failed (exit 3)."""


class PermissionDenied(ConfigError):
    """The database user may not do what dbops needs on its own schema or tables (exit 2: a grant or another user fixes it)."""


class DatabaseTimeout(DbopsError):
    """The database cancelled one of dbops's own statements: a statement or lock timeout (exit 3, as a lock timeout)."""

    exit_code = 3


class DatabaseRefused(DbopsError):
    """The database refused one of dbops's own statements for another reason (exit 3)."""

    exit_code = 3
