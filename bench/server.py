"""The benches' PostgreSQL server: a real server's durability while measuring."""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.pg import PgServer, start_server


@contextmanager
def durable_server(root: Path) -> Iterator[PgServer]:
    """A server under `root` with fsync and synchronous commit on, as a real server has them; stopped and `root`
    removed afterwards (fsync off first: the shutdown checkpoint of hundreds of databases can outlast pg_ctl's wait)."""
    server = start_server(root / "pgdata")
    with server.admin() as conn:
        conn.execute("alter system reset fsync")
        conn.execute("alter system reset synchronous_commit")
        conn.execute("select pg_reload_conf()")
    try:
        yield server
    finally:
        with server.admin() as conn:
            conn.execute("alter system set fsync = off")
            conn.execute("select pg_reload_conf()")
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
