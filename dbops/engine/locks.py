"""The run lock: one migrator per history table at a time; it dies with its session."""
from __future__ import annotations

import hashlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from dbops.engine.history import quote_ident
from dbops.errors import ConnectError, LockTimeout
from dbops.targets.base import ConnectionLost, Dialect, Session, SqlError, Target

LOCK_TABLE = "dbops_lock"
# Errors of `LOCK TABLE` that waiting does not cure: no privilege, no such table or schema.
_NOT_WAITING = ("42501", "42P01", "3F000")
POLL_SECONDS = 0.2
FIRST_TRY_MS = 100
WAIT_SLICE_MS = 1000


def lock_key(schema: str, table: str, purpose: str = "dbops") -> int:
    """A signed 64-bit advisory lock key derived from the history table's name."""
    digest = hashlib.sha256(f"{purpose}:{schema}.{table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def work_key(schema: str, table: str) -> int:
    """The advisory key a run's working session holds for as long as that session lives."""
    return lock_key(schema, table, "dbops-work")


class RunLock(ABC):
    """Held on a session of its own for the whole run."""

    def __init__(self, target: Target, schema: str, table: str) -> None:
        self.target = target
        self.schema = schema
        self.table = table
        self.session: Session | None = None
        self.waited = 0.0
        self.deadline = 0.0
        self.created_schema = False  # the lock table's schema was created here (Flyway records that in the history)
        self.user = ""  # the lock session's database user, for messages

    def acquire(
        self, timeout: float, on_wait: Callable[[str], None] | None = None, check: Callable[[Session], Any] | None = None
    ) -> None:
        """Take the lock, waiting at most `timeout` seconds; LockTimeout names the holder. `check` runs on the lock's
        session first, before anything is created."""
        self.session = self.target.connect()
        self.user = self.session.user
        started = time.monotonic()
        self.deadline = started + timeout
        try:
            if check is not None:
                check(self.session)
            self._acquire(timeout, on_wait)
        except BaseException:
            self.release()
            raise
        finally:
            self.waited = time.monotonic() - started

    @abstractmethod
    def _acquire(self, timeout: float, on_wait: Callable[[str], None] | None) -> None: ...

    @abstractmethod
    def holder(self) -> str:
        """Who holds the lock, as far as the server can tell."""

    def release(self) -> None:
        if self.session is not None:
            try:
                self.session.rollback()
            except Exception:
                pass
            try:
                self.session.close()
            except Exception:
                pass
            self.session = None

    def guard(self, work: Session, on_wait: Callable[[str], None] | None = None) -> None:
        """PostgreSQL: the working session takes an advisory lock of its own and keeps it until it ends.

        A killed migrator's working backend outlives its lock session: the server finishes the running
        statement (with psycopg, the whole migration sent in one round trip, COMMIT included) before it notices the
        client is gone. The next run waits here for that backend, within the same lock timeout, before it
        reads the history table. Redshift has no advisory locks; there only the in-flight statement goes on.
        """
        if work.dialect != Dialect.POSTGRESQL:
            return
        key = work_key(self.schema, self.table)
        told = False
        while not work.query("select pg_try_advisory_lock(%s)", (key,))[0][0]:
            if not told and on_wait:
                on_wait(f"waiting for a session of an earlier run to end: {advisory_holder(work, key)}")
                told = True
            if time.monotonic() >= self.deadline:
                raise LockTimeout(
                    f"the run lock on {self.schema}.{self.table} is free, but a session of an earlier run is still "
                    f"working: {advisory_holder(work, key)}. Wait for it to end (or end it), or raise --lock-timeout"
                )
            time.sleep(POLL_SECONDS)
        work.commit()

    def verify(self, before: str) -> None:
        """Raise ConnectionLost if the lock's session has ended; the advisory lock needs no check (see guard)."""

    def _timeout(self, timeout: float) -> LockTimeout:
        return LockTimeout(
            f"waited {timeout:g}s for the run lock on {self.schema}.{self.table}; it is held by {self.holder()}. "
            "Wait for that run to finish, or raise --lock-timeout"
        )

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class AdvisoryLock(RunLock):
    """PostgreSQL: a session-level advisory lock keyed on the history table."""

    def _acquire(self, timeout: float, on_wait: Callable[[str], None] | None) -> None:
        assert self.session is not None
        key = lock_key(self.schema, self.table)
        self.session.set_autocommit(True)
        deadline = time.monotonic() + timeout
        told = False
        while not self.session.query("select pg_try_advisory_lock(%s)", (key,))[0][0]:
            if not told and on_wait:
                on_wait(f"waiting for the run lock held by {self.holder()}")
                told = True
            if time.monotonic() >= deadline:
                raise self._timeout(timeout)
            time.sleep(POLL_SECONDS)

    def holder(self) -> str:
        return advisory_holder(self.session, lock_key(self.schema, self.table)) if self.session else _describe([])


def advisory_holder(session: Session, key: int) -> str:
    """Who holds advisory lock `key` (session level), as far as the server can tell."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    try:
        rows = session.query(
            "select a.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''), "
            "coalesce(a.client_addr::text, 'local'), a.backend_start "
            "from pg_locks l join pg_stat_activity a on a.pid = l.pid "
            "where l.locktype = 'advisory' and l.granted and l.classid = %s and l.objid = %s and l.objsubid = 1 "
            "and l.database = (select oid from pg_database where datname = current_database())",
            ((unsigned >> 32) & 0xFFFFFFFF, unsigned & 0xFFFFFFFF),
        )
    except SqlError:
        rows = []
    return _describe(rows)


class TableLock(RunLock):
    """Redshift (no advisory locks): `LOCK dbops_lock` inside a transaction held open for the run."""

    def _acquire(self, timeout: float, on_wait: Callable[[str], None] | None) -> None:
        assert self.session is not None
        session = self.session
        qualified = f"{quote_ident(self.schema)}.{LOCK_TABLE}"
        session.set_autocommit(True)
        if not self._lock_table_exists():
            try:
                if not session.query("select 1 from pg_catalog.pg_namespace where nspname = %s", (self.schema,)):
                    session.execute(f"create schema if not exists {quote_ident(self.schema)}")
                    self.created_schema = True
                session.execute(f"create table if not exists {qualified} (id int)")
            except SqlError:
                if not self._lock_table_exists():
                    raise  # not created by another migrator at the same moment: a privilege missing, say
        session.set_autocommit(False)
        deadline = time.monotonic() + timeout
        told = False
        slice_ms = FIRST_TRY_MS  # a short first try tells "free" from "held" before waiting in longer slices
        while True:
            remaining = deadline - time.monotonic()
            wait_ms = max(1, min(slice_ms, int(remaining * 1000)))
            slice_ms = WAIT_SLICE_MS
            try:
                session.execute(f"set statement_timeout to {wait_ms}")
                session.execute(f"lock table {qualified}")
                session.execute("set statement_timeout to 0")
                return
            except SqlError as exc:
                session.rollback()
                if exc.sqlstate in _NOT_WAITING:
                    raise
            if not told and on_wait:
                on_wait(f"waiting for the run lock held by {self.holder()}")
                told = True
            if time.monotonic() >= deadline:
                raise self._timeout(timeout)

    def _lock_table_exists(self) -> bool:
        assert self.session is not None
        return bool(self.session.query(
            "select 1 from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = %s and c.relname = %s",
            (self.schema, LOCK_TABLE),
        ))

    def verify(self, before: str) -> None:
        """Redshift has no advisory lock to guard the working session: check that the lock is still held.

        If the lock's session ended (an idle-session timeout, a terminated backend, a network cut), another
        migrator may already hold the lock; stop before the next script rather than run beside it.
        """
        try:
            assert self.session is not None
            self.session.query("select 1")
        except (SqlError, ConnectError) as exc:
            raise ConnectionLost(
                f"lost the run lock on {self.schema}.{self.table}: its session ended ({exc}). Stopped before {before}; "
                "what was applied before it is recorded. Migrate again to continue."
            ) from None

    def holder(self) -> str:
        probe = self.target.connect()
        try:
            probe.set_autocommit(True)
            if probe.dialect == Dialect.REDSHIFT:
                rows = probe.query(
                    "select t.pid, coalesce(c.application_name, ''), coalesce(c.username, ''), "
                    "coalesce(c.remotehost, 'local'), t.txn_start "
                    "from svv_transactions t left join stl_connection_log c on c.pid = t.pid and c.event = 'initiating session' "
                    "where t.relation = (select oid from pg_class where relname = %s limit 1) and t.granted "
                    "and t.lock_mode = 'AccessExclusiveLock' order by c.recordtime desc limit 1",
                    (LOCK_TABLE,),
                )
            else:
                rows = probe.query(
                    "select a.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''), "
                    "coalesce(a.client_addr::text, 'local'), a.xact_start "
                    "from pg_locks l join pg_stat_activity a on a.pid = l.pid "
                    "where l.locktype = 'relation' and l.granted and l.mode = 'AccessExclusiveLock' "
                    "and l.relation = to_regclass(%s)",
                    (f"{quote_ident(self.schema)}.{LOCK_TABLE}",),
                )
            return _describe(rows)
        except SqlError:
            return "another session (the server did not say which)"
        finally:
            probe.close()


def _describe(rows: list[tuple]) -> str:
    if not rows:
        return "another session (it may just have finished)"
    pid, app, user, addr, since = rows[0]
    who = app or "a session"
    started = f", since {since:%Y-%m-%d %H:%M:%S}" if since else ""
    return f"{who} (server pid {pid}, user {user or '?'}, from {addr}{started})"


def make_lock(target: Target, schema: str, table: str) -> RunLock:
    """The lock the target asks for: advisory on PostgreSQL, the lock table on Redshift."""
    if target.lock_kind == "table":
        return TableLock(target, schema, table)
    return AdvisoryLock(target, schema, table)
