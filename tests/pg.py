"""A throwaway PostgreSQL server (pgserver) for the tests: one server per worker, one database per test."""
from __future__ import annotations

import itertools
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import psycopg

_counter = itertools.count()


@dataclass
class PgServer:
    """A running pgserver instance reachable over its unix socket."""

    pgdata: Path
    socket_dir: str
    _server: object

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@/{database}?host={self.socket_dir}"

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(host=self.socket_dir, user="postgres", dbname="postgres", autocommit=True)

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its name."""
        name = f"{prefix}_{os.getpid()}_{next(_counter)}"
        with self.admin() as conn:
            conn.execute(f'create database "{name}" template template0')
        return name

    def stop(self) -> None:
        self._server.cleanup()  # type: ignore[attr-defined]


def start_server(pgdata: Path) -> PgServer:
    """Start pgserver in `pgdata` (fsync off: test data need not survive a power cut)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("pgserver").setLevel(logging.ERROR)
        import pgserver
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode="delete")
    socket_dir = str(server.get_postmaster_info().socket_dir)
    pg = PgServer(pgdata=pgdata, socket_dir=socket_dir, _server=server)
    with pg.admin() as conn:
        conn.execute("alter system set fsync = off")
        conn.execute("alter system set synchronous_commit = off")
        conn.execute("alter system set full_page_writes = off")
        conn.execute("select pg_reload_conf()")
    return pg
