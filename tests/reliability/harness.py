"""Tools the reliability suites share: `dbops` as a real process, traps that hold a backend still, lock checks."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from dbops.engine.locks import lock_key

ROOT = Path(__file__).resolve().parents[2]
SCHEMA, TABLE = "public", "flyway_schema_history"

# A trap is a statement (or trigger) that sleeps while its label is armed: the test sees the backend
# waiting in it (wait_event PgSleep), kills dbops there, then disarms it so the orphaned backend goes on.
TRAPS_DDL = """
create table if not exists test_traps (label text primary key);
create or replace function trap(label text) returns void language plpgsql as $$
begin
  while exists (select 1 from test_traps t where t.label = trap.label) loop
    perform pg_sleep(0.01);
  end loop;
end $$;
create or replace function trap_row() returns trigger language plpgsql as $$
begin
  perform trap(tg_argv[0] || ':' || coalesce(NEW.script, ''));
  return NEW;
end $$;
"""


def connect(pg_url: str, **kwargs) -> psycopg.Connection:
    return psycopg.connect(pg_url, autocommit=True, **kwargs)


def install_traps(pg_url: str) -> None:
    with connect(pg_url) as conn:
        conn.execute(TRAPS_DDL)


def trap_table(pg_url: str, table: str, event: str, label: str, deferred: bool = False) -> None:
    """A trigger on `table` that waits in trap('<label>:<script>') on `event` (INSERT/UPDATE), at commit if deferred."""
    name = f"trap_{label}_{event.lower()}"
    timing = "after" if deferred else "before"
    constraint = "constraint " if deferred else ""
    extra = " deferrable initially deferred" if deferred else ""
    with connect(pg_url) as conn:
        conn.execute(
            f"create {constraint}trigger {name} {timing} {event} on {table}{extra} "
            f"for each row execute function trap_row('{label}')"
        )


def arm(pg_url: str, *labels: str) -> None:
    with connect(pg_url) as conn:
        for label in labels:
            conn.execute("insert into test_traps values (%s) on conflict do nothing", (label,))


def disarm(pg_url: str) -> None:
    with connect(pg_url) as conn:
        conn.execute("delete from test_traps")


def application_name(pid: int) -> str:
    """What dbops process `pid` calls its sessions (dbops.targets.base.application_name)."""
    return f"dbops {socket.gethostname()}:{pid}"[:63]


def backends(pg_url: str, pid: int) -> list[tuple]:
    """(backend pid, state, wait_event, query) of every session that dbops process `pid` opened."""
    with connect(pg_url) as conn:
        return conn.execute(
            "select pid, state, coalesce(wait_event, ''), query from pg_stat_activity "
            "where application_name = %s and datname = current_database() order by backend_start",
            (application_name(pid),),
        ).fetchall()


def run_lock_holders(pg_url: str) -> list[int]:
    """Backends holding the run lock of the default history table (the advisory key or LOCK dbops_lock)."""
    key = lock_key(SCHEMA, TABLE) & 0xFFFFFFFFFFFFFFFF
    with connect(pg_url) as conn:
        rows = conn.execute(
            "select l.pid from pg_locks l join pg_database d on d.oid = l.database "
            "where l.granted and d.datname = current_database() and ("
            " (l.locktype = 'advisory' and l.classid = %s and l.objid = %s and l.objsubid = 1)"
            " or (l.locktype = 'relation' and l.relation = to_regclass('public.dbops_lock')))",
            ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
        ).fetchall()
    return sorted(row[0] for row in rows)


def dbops_sessions(pg_url: str) -> list[tuple]:
    """(pid, application_name, state) of every dbops session still connected to this database."""
    with connect(pg_url) as conn:
        return conn.execute(
            "select pid, application_name, state from pg_stat_activity "
            "where application_name like 'dbops %%' and datname = current_database() and pid <> pg_backend_pid()"
        ).fetchall()


def wait_until(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.005) -> object:
    """Poll `condition` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Dbops:
    """`python -m dbops.cli ARGS` as a child process, its output read as it comes."""

    def __init__(self, url: str, folder: Path | None, *args: str, env: dict[str, str] | None = None) -> None:
        environment = {**os.environ, "PYTHONPATH": str(ROOT), "DBOPS_URL": url, **(env or {})}
        if folder is not None:
            environment["DBOPS_LOCATIONS"] = str(folder)
        self.args = args
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dbops.cli", *args],
            cwd=str(folder.parent if folder is not None else ROOT),
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
        self.pid = self.process.pid
        self._out: list[str] = []
        self._err: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self._out), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, self._err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, into: list[str]) -> None:
        for line in stream:
            into.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self._err)

    @property
    def stdout(self) -> str:
        return "".join(self._out)

    def running(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no handler, no cleanup, sockets closed by the kernel."""
        if self.running():
            os.kill(self.pid, signal.SIGKILL)
        self.process.wait(10)
        self._join()

    def finish(self, timeout: float = 120) -> tuple[int, str, str]:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"dbops {' '.join(self.args)} did not finish in {timeout}s:\n{self.stderr}") from None
        self._join()
        return code, self.stdout, self.stderr

    def _join(self) -> None:
        for reader in self._readers:
            reader.join(5)

    def __enter__(self) -> Dbops:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.running():
            self.kill()


def dbops(url: str, folder: Path | None, *args: str, timeout: float = 120, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run `dbops ARGS` to the end: (exit code, stdout, stderr)."""
    with Dbops(url, folder, *args, env=env) as process:
        return process.finish(timeout)
