"""The local default database: PostgreSQL from the `pgserver` package, data in `.dbops/pgdata`."""
from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

from dbops.errors import ConnectError
from dbops.paths import dbops_home
from dbops.targets.base import TargetInfo
from dbops.targets.postgres import PostgresTarget

DATABASE = "warehouse"
DAGSTER_DATABASE = "dagster"
STOP_WAIT_S = 120  # pg_ctl stop -w waits 60 s by default; a loaded machine's shutdown checkpoint can take longer


def _pgserver():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("pgserver").setLevel(logging.ERROR)
        import pgserver
        import pgserver.utils
    return pgserver


@dataclass
class EmbeddedDatabase:
    """Start, stop and locate the embedded PostgreSQL server."""

    pgdata: Path

    @classmethod
    def default(cls) -> EmbeddedDatabase:
        return cls(dbops_home() / "pgdata")

    def running_socket_dir(self) -> str | None:
        """The unix socket folder of the running server, or None when it is stopped."""
        if not (self.pgdata / "postmaster.pid").exists():
            return None
        info = _pgserver().utils.PostmasterInfo.read_from_pgdata(self.pgdata)
        if info is None or not info.is_running() or info.socket_dir is None:
            return None
        return str(info.socket_dir)

    def start(self) -> str:
        """Start the server if needed (init on first use); return its socket folder.

        Processes starting it at the same time take turns (a file lock beside the data folder): pgserver
        reads a half-written postmaster.pid of a server another process is starting as an error.
        """
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        with open(self.pgdata.parent / f"{self.pgdata.name}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            running = self.running_socket_dir()
            if running:
                return running
            try:
                server = _pgserver().get_server(self.pgdata, cleanup_mode=None)
            except Exception as exc:  # pgserver raises subprocess and OS errors of many kinds
                raise ConnectError(f"cannot start the embedded database in {self.pgdata}: {exc}") from None
            socket_dir = str(server.get_postmaster_info().socket_dir)
            self.ensure_database(socket_dir, DATABASE)
            return socket_dir

    def ensure_database(self, socket_dir: str, name: str) -> None:
        """Create database `name` on the running server unless it exists (concurrent callers are fine)."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(host=socket_dir, user="postgres", dbname="postgres", autocommit=True) as conn:
            if conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone():
                return
            try:
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
            except psycopg.errors.UniqueViolation:  # created by a concurrent caller meanwhile
                pass

    def stop(self) -> bool:
        """Stop the server; False when it was not running."""
        if not self.running_socket_dir():
            return False
        user = "pgserver" if os.geteuid() == 0 else None
        try:
            _pgserver().pg_ctl(["-w", "-t", str(STOP_WAIT_S), "-m", "fast", "stop"], pgdata=self.pgdata, user=user)
        except subprocess.CalledProcessError:
            if self.running_socket_dir():  # still shutting down (a long checkpoint), or refusing to stop
                raise ConnectError(
                    f"the embedded PostgreSQL server ({self.pgdata}) did not stop within {STOP_WAIT_S} s; "
                    "run `dbops local stop` again in a moment"
                ) from None
        return True

    def url(self, socket_dir: str, database: str = DATABASE) -> str:
        return f"postgresql://postgres@/{database}?host={socket_dir}"


class EmbeddedTarget(PostgresTarget):
    """The embedded database as a target; started on first connect."""

    def __init__(self, database: EmbeddedDatabase | None = None) -> None:
        self.database_server = database or EmbeddedDatabase.default()
        self._started = False
        super().__init__(f"postgresql://postgres@/{DATABASE}")

    def connect(self):
        if not self._started:
            socket_dir = self.database_server.start()
            self._params["host"] = socket_dir
            self.url = self.database_server.url(socket_dir)
            self._started = True
        return super().connect()

    def info(self) -> TargetInfo:
        return TargetInfo(url=self.redacted_url, driver="psycopg (embedded pgserver)", ssl="not used (unix socket)")
