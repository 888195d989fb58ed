"""The run lock as a lease, for targets without a connection that lives as long as the run (the Data API).

A row in `dbops_lease` names the run holding the history table's lock and until when. It is taken, renewed
and released in transactions that first `LOCK dbops_lock`, so two migrators never both see it free; a lease
past its expiry is taken over. Every migration batch of the holder starts with the same LOCK and a check that
the lease is still its own (`fence`): a run that lost its lease cannot commit a script.
"""
from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from dbops.engine.history import quote_ident
from dbops.engine.locks import LOCK_TABLE, RunLock, make_lock
from dbops.errors import ConnectError, LockTimeout
from dbops.targets.base import ConnectionLost, Dialect, Session, SqlError, Target, application_name
from dbops.targets.literals import literal

LEASE_TABLE = "dbops_lease"
POLL_SECONDS = 0.5


def lock_for(target: Target, schema: str, table: str) -> RunLock:
    """The run lock the target asks for: a lease (`lock_kind = "lease"`), else locks.make_lock's."""
    if target.lock_kind == "lease":
        return LeaseLock(target, schema, table, float(getattr(target, "lease_seconds", 120)))
    return make_lock(target, schema, table)


class LeaseLock(RunLock):
    """A lease row, renewed every third of its length by a thread of its own while the run lives."""

    def __init__(self, target: Target, schema: str, table: str, seconds: float) -> None:
        super().__init__(target, schema, table)
        self.seconds = seconds
        self.owner = f"{application_name()} run {uuid.uuid4().hex[:12]}"[:256]
        self.lost: str | None = None
        self._last: tuple[Any, ...] | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self._dialect = Dialect.POSTGRESQL

    @property
    def _lock(self) -> str:
        return f"lock table {quote_ident(self.schema)}.{LOCK_TABLE}"

    @property
    def _lease(self) -> str:
        return f"{quote_ident(self.schema)}.{LEASE_TABLE}"

    @property
    def _key(self) -> str:
        return literal(f"{self.schema}.{self.table}", self._dialect == Dialect.REDSHIFT)

    @property
    def _me(self) -> str:
        return literal(self.owner, self._dialect == Dialect.REDSHIFT)

    def _now(self) -> str:
        return "getdate()" if self._dialect == Dialect.REDSHIFT else "(clock_timestamp() at time zone 'UTC')"

    def _until(self) -> str:
        return f"{self._now()} + interval '{int(self.seconds)} seconds'"

    def _acquire(self, timeout: float, on_wait: Callable[[str], None] | None) -> None:
        assert self.session is not None
        session = self.session
        self._dialect = session.dialect
        session.set_autocommit(True)
        self._create_tables(session)
        session.set_autocommit(False)
        deadline = time.monotonic() + timeout
        told = False
        while True:
            current = session.query(
                f"select owner, expires_at, acquired_at, expires_at < {self._now()} from {self._lease} where history_table = {self._key}"
            )
            if not current or current[0][3]:
                # An expired holder's batch may still run, holding LOCK dbops_lock: wait for it within the lock timeout.
                remaining = max(deadline - time.monotonic(), 0.1)
                session.execute(f"set statement_timeout to {int(remaining * 1000)}")
                try:
                    taken = self._take(session)
                except SqlError as exc:
                    session.rollback()
                    if exc.sqlstate != "57014":
                        raise
                    taken = current
                    if time.monotonic() >= deadline:
                        raise LockTimeout(
                            f"waited {timeout:g}s for the run lock on {self.schema}.{self.table}: the lease of "
                            f"{self._describe(current[0]) if current else 'an earlier run'} has expired, but a batch of "
                            "that run is still running. Wait for it to end (or cancel it), or raise --lock-timeout"
                        ) from None
                finally:
                    session.execute("set statement_timeout to 0")
                if taken and taken[0][0] == self.owner:
                    if current and on_wait:
                        on_wait(f"took over the run lock from {self._describe(current[0])}: its lease had expired")
                    self._renewer = threading.Thread(target=self._renew_loop, name="dbops-lease", daemon=True)
                    self._renewer.start()
                    return
                current = taken
            self._last = tuple(current[0]) if current else None
            if not told and on_wait:
                on_wait(f"waiting for the run lock held by {self.holder()}")
                told = True
            if time.monotonic() >= deadline:
                raise self._timeout(timeout)
            time.sleep(min(POLL_SECONDS, max(deadline - time.monotonic(), 0.01)))

    def _take(self, session: Session) -> list[tuple]:
        """In one transaction: LOCK dbops_lock, drop an expired lease, take it if free; the lease as it is then."""
        session.execute(self._lock)
        session.execute(f"delete from {self._lease} where history_table = {self._key} and expires_at < {self._now()}")
        session.execute(
            f"insert into {self._lease} (history_table, owner, expires_at, acquired_at) "
            f"select {self._key}, {self._me}, {self._until()}, {self._now()} "
            f"where not exists (select 1 from {self._lease} where history_table = {self._key})"
        )
        taken = session.query(f"select owner, expires_at, acquired_at from {self._lease} where history_table = {self._key}")
        session.commit()
        return taken

    def _create_tables(self, session: Session) -> None:
        ddl = [
            f"create table if not exists {quote_ident(self.schema)}.{LOCK_TABLE} (id int)",
            f"create table if not exists {self._lease} (history_table varchar(1000) not null, owner varchar(256) not null, "
            "expires_at timestamp not null, acquired_at timestamp not null)",
        ]
        if not session.query("select 1 from pg_catalog.pg_namespace where nspname = %s", (self.schema,)):
            try:
                session.execute(f"create schema if not exists {quote_ident(self.schema)}")
                self.created_schema = True
            except SqlError:
                pass  # created by another migrator at the same moment; the tables below say if not
        for statement in ddl:
            try:
                session.execute(statement)
            except SqlError:
                if not self._exists(session, statement.split()[5].split(".")[-1]):
                    raise

    def _exists(self, session: Session, name: str) -> bool:
        return bool(session.query(
            "select 1 from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = %s and c.relname = %s",
            (self.schema, name),
        ))

    def fence(self) -> list[str]:
        """What every batch of the run sends first: the lock table, then a statement that fails unless the lease is ours."""
        return [
            self._lock,
            f"select 1 / (select count(*) from {self._lease} where history_table = {self._key} and owner = {self._me})",
        ]

    def guard(self, work: Session, on_wait: Callable[[str], None] | None = None) -> None:
        """The working session puts the fence first in each of its batches (a session without `fence` has none)."""
        if hasattr(work, "fence"):
            work.fence = self.fence()

    def _renew_loop(self) -> None:
        try:
            session = self.target.connect()
        except (ConnectError, SqlError) as exc:
            self.lost = f"cannot renew the lease: {exc}"
            return
        try:
            while not self._stop.wait(self.seconds / 3):
                try:  # no LOCK dbops_lock here: the run's own batch holds it while a long script runs
                    session.execute(
                        f"update {self._lease} set expires_at = {self._until()} where history_table = {self._key} and owner = {self._me}"
                    )
                    mine = session.query(f"select count(*) from {self._lease} where history_table = {self._key} and owner = {self._me}")
                    session.commit()
                except (ConnectError, SqlError):
                    session.rollback()
                    continue  # tried again at the next third; the fence keeps a late run from committing
                if not mine or not mine[0][0]:
                    self.lost = "its lease expired and another migrator took it over"
                    return
        finally:
            session.close()

    def verify(self, before: str) -> None:
        if self.lost:
            raise ConnectionLost(
                f"lost the run lock on {self.schema}.{self.table}: {self.lost}. Stopped before {before}; what was applied "
                "before it is recorded. Migrate again to continue."
            )

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(10)
            self._renewer = None
            if self.session is not None and not self.lost:
                try:
                    self.session.set_autocommit(False)
                    self.session.execute(self._lock)
                    self.session.execute(f"delete from {self._lease} where history_table = {self._key} and owner = {self._me}")
                    self.session.commit()
                except (ConnectError, SqlError):
                    pass  # the lease then simply expires
        super().release()

    def holder(self) -> str:
        return self._describe(self._last) if self._last else "another migrator (it may just have finished)"

    @staticmethod
    def _describe(row: tuple[Any, ...]) -> str:
        owner, expires, acquired = row[0], row[1], row[2]
        return f"{owner} (since {acquired:%Y-%m-%d %H:%M:%S}, lease until {expires:%H:%M:%S} UTC)"
