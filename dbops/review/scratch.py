"""The scratch build: every script from empty on a throwaway database, dropped afterwards whatever happens.

The database is `dbops_review_<UTC time>_<host>_<pid>` on the scratch server: the embedded PostgreSQL for a
PostgreSQL target or none, the target's own cluster for a Redshift target, or the server of `--scratch-url`.
It is dropped when the build ends, fails, or the process gets SIGINT/SIGTERM; a review killed harder (kill -9,
a lost machine) leaves it behind, and the next review on that server drops it once its owner is dead: a process
of this host that no longer runs, or any review older than STALE_AFTER.
"""
from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dbops.config import Settings
from dbops.engine.applier import RunInfo
from dbops.engine.engine import Engine
from dbops.errors import ConfigError, DbopsError, MigrationFailed, ValidationFailed
from dbops.scripts.sources import Snapshot
from dbops.targets import open_target
from dbops.targets.base import Dialect, Session, SqlError
from dbops.urls import redact

PREFIX = "dbops_review_"
STALE_AFTER = timedelta(hours=6)
_NAME = re.compile(rf"{PREFIX}(?P<time>\d{{8}}t\d{{6}})_(?P<host>[0-9a-f]{{8}})_(?P<pid>\d+)$")
_TIME = "%Y%m%dt%H%M%S"

Log = Callable[[str], None]


def host_tag() -> str:
    """Eight hex digits naming this machine in scratch database names."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def scratch_name(now: datetime | None = None, pid: int | None = None, host: str | None = None) -> str:
    """The name of this process's scratch database: owner (host, pid) and creation time, all in the name."""
    now = now or datetime.now(UTC)
    return f"{PREFIX}{now:{_TIME}}_{host or host_tag()}_{os.getpid() if pid is None else pid}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_dead(name: str, now: datetime | None = None) -> bool:
    """True for a scratch database whose review cannot be running: its process on this host is gone, or it is older
    than STALE_AFTER. Names that are not scratch names are never dead (never dropped)."""
    m = _NAME.match(name)
    if not m:
        return False
    created = datetime.strptime(m["time"], _TIME).replace(tzinfo=UTC)
    if (now or datetime.now(UTC)) - created > STALE_AFTER:
        return True
    return m["host"] == host_tag() and int(m["pid"]) != os.getpid() and not _alive(int(m["pid"]))


def with_database(url: str, database: str) -> str:
    """`url` with its database (the path) replaced."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


@dataclass(frozen=True)
class ScratchServer:
    """Where scratch databases are created and dropped: an admin URL on that server, and how to name it."""

    admin_url: str
    label: str

    def connect(self) -> Session:
        session = open_target(self.admin_url).connect()
        session.set_autocommit(True)
        return session

    def clean_leftovers(self, log: Log) -> list[str]:
        """Drop the scratch databases of dead reviews on this server; return their names."""
        session = self.connect()
        try:
            names = [row[0] for row in session.query("select datname from pg_database where datname like 'dbops%'")]
            dropped = []
            for name in sorted(n for n in names if is_dead(n)):
                try:
                    _drop(session, name)
                except SqlError as exc:
                    log(f"warning: could not drop the leftover scratch database {name}: {exc}")
                    continue
                log(f"dropped the leftover scratch database {name} (its review is no longer running)")
                dropped.append(name)
            return dropped
        finally:
            session.close()

    @contextmanager
    def database(self, log: Log) -> Iterator[tuple[str, str]]:
        """A new scratch database (name, URL), dropped when the block ends, fails or is interrupted."""
        name = scratch_name()
        with _signals_interrupt():
            try:
                session = self.connect()
                try:
                    session.execute(f'create database "{name}"')
                finally:
                    session.close()
                yield name, with_database(self.admin_url, name)
            finally:
                with _signals_held():
                    self._drop_own(name, log)

    def _drop_own(self, name: str, log: Log) -> None:
        try:
            session = self.connect()
            try:
                _drop(session, name)
            finally:
                session.close()
        except (DbopsError, SqlError) as exc:
            log(f"warning: could not drop the scratch database {name}: {redact(str(exc))}; the next review drops it")


def _drop(session: Session, name: str) -> None:
    """Drop a scratch database, ending the sessions still in it (an interrupted build's, a pooler's idle ones)."""
    if not session.query("select 1 from pg_database where datname = %s", [name]):
        return  # interrupted before it was created
    if session.dialect == Dialect.POSTGRESQL:
        session.execute(f'drop database if exists "{name}" with (force)')
        return
    for attempt in range(10):  # Redshift: no FORCE; end its sessions, then drop
        session.execute("select pg_terminate_backend(process) from stv_sessions where db_name = %s and process <> pg_backend_pid()",
                        [name])
        try:
            session.execute(f'drop database "{name}"')
            return
        except SqlError:
            if attempt == 9:
                raise
            time.sleep(0.5)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so every `finally` on the way out runs (the scratch database is dropped)."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise _Terminated(f"signal {signum}")


@contextmanager
def _signals_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait while the scratch database is dropped (then take effect)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, held)


def embedded_server() -> ScratchServer:
    """The embedded PostgreSQL (started if needed) as the scratch server."""
    from dbops.targets.embedded import EmbeddedDatabase

    database = EmbeddedDatabase.default()
    return ScratchServer(database.url(database.start(), "postgres"), "embedded PostgreSQL")


def server_for(target_url: str | None, scratch_url: str | None) -> ScratchServer:
    """`--scratch-url`'s server, else the target's cluster for a Redshift target, else the embedded PostgreSQL."""
    if scratch_url:
        return ScratchServer(scratch_url, f"--scratch-url {redact(scratch_url)}")
    if target_url and urlsplit(target_url).scheme.lower() in ("redshift", "redshift-data"):
        return ScratchServer(target_url, f"the target's cluster {redact(with_database(target_url, ''))}")
    if target_url and urlsplit(target_url).scheme.lower() not in ("postgresql", "postgres"):
        open_target(target_url)  # raises: unsupported URL
    return embedded_server()


@dataclass(frozen=True)
class Built:
    """One migration of the scratch build and its time."""

    path: str
    version: str | None
    milliseconds: int
    statements: int
    mode: str

    def as_dict(self) -> dict[str, Any]:
        return {"script": self.path, "version": self.version, "execution_time_ms": self.milliseconds,
                "statements": self.statements, "mode": self.mode}


@dataclass
class ScratchResult:
    """What the scratch build did: where, each migration's time, and the failure that stopped it (if any)."""

    server: str
    database: str = ""
    built: list[Built] = field(default_factory=list)
    failure: str = ""
    seconds: float = 0.0
    leftovers_dropped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failure

    def as_dict(self) -> dict[str, Any]:
        return {"server": self.server, "database": self.database, "ok": self.ok, "failure": self.failure,
                "seconds": round(self.seconds, 3), "migrations": [b.as_dict() for b in self.built],
                "leftovers_dropped": self.leftovers_dropped}


def build(server: ScratchServer, settings: Settings, snapshot: Snapshot, log: Log) -> ScratchResult:
    """Apply every script of `snapshot`, from empty, on a new scratch database of `server`, then drop it."""
    result = ScratchResult(server=server.label, leftovers_dropped=server.clean_leftovers(log))
    started = time.perf_counter()
    with server.database(log) as (name, url):
        result.database = name
        engine = Engine(open_target(url), replace(settings, target_version=None, out_of_order=False), snapshot=snapshot)
        engine.catalog  # bad names or placeholders are bad input (exit 2), not a failed build
        try:
            for done in engine.migrate(run=RunInfo(source="review")):
                mode = "transaction" if done.in_transaction else "autocommit"
                result.built.append(Built(done.migration.path, done.migration.version.text if done.migration.version else None,
                                          done.execution_ms, done.statements, mode))
        except (MigrationFailed, ValidationFailed, ConfigError) as exc:
            result.failure = redact(str(exc))
    result.seconds = time.perf_counter() - started
    return result
