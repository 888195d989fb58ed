"""Benchmark: the run lock under contention and after a crash, for the Redshift-style table lock and the advisory lock.

Usage: uv run python -m bench.run_lock [--migrators 8] [--repeat 3]
Prints a table per lock: wall time for N `dbops migrate --direct` processes started together on 5 scripts, and the
time from SIGKILL of the lock holder to the waiting process holding the lock (median of --repeat runs).
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dbops.engine.locks import make_lock
from dbops.targets import open_target
from tests.pg import PgServer, start_server
from tests.rig import start_bouncer

SCRIPTS = {
    "V1__orders.sql": "create table orders (id int, total numeric(12, 2));",
    "V2__load.sql": "insert into orders select g, g * 1.5 from generate_series(1, 200) g;",
    "V3__vacuum.sql": "vacuum orders;",
    "V4__customers.sql": "create table customers (id int);",
    "R__totals.sql": "create or replace view totals as select sum(total) as total from orders;",
}
HOLD = """
import sys, time
from dbops.engine.locks import make_lock
from dbops.targets import open_target
lock = make_lock(open_target(sys.argv[1]), "public", "flyway_schema_history")
lock.acquire(30)
print("locked", flush=True)
time.sleep(120)
"""


def contention(url: str, folder: Path, migrators: int) -> float:
    env = {**os.environ, "DBOPS_URL": url, "DBOPS_LOCATIONS": str(folder)}
    started = time.perf_counter()
    processes = [
        subprocess.Popen([sys.executable, "-m", "dbops.cli", "migrate", "--direct", "--lock-timeout", "300"],
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(migrators)
    ]
    if any(p.wait() for p in processes):
        raise SystemExit(f"a migrator failed on {url}")
    return time.perf_counter() - started


def takeover(url: str) -> float:
    root = Path(__file__).resolve().parent.parent
    holder = subprocess.Popen([sys.executable, "-c", HOLD, url], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(root)})
    try:
        assert holder.stdout.readline().strip() == "locked"
        lock = make_lock(open_target(url), "public", "flyway_schema_history")
        killed = time.perf_counter()
        os.kill(holder.pid, signal.SIGKILL)
        lock.acquire(60)
        elapsed = time.perf_counter() - killed
        lock.release()
        return elapsed
    finally:
        holder.kill()
        holder.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--migrators", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="dbops-bench-lock-"))
    server: PgServer = start_server(root / "pgdata")
    bouncer = start_bouncer(server)
    folder = root / "sql"
    folder.mkdir()
    for name, sql in SCRIPTS.items():
        (folder / name).write_text(sql)
    locks = {
        "table lock, redshift_connector + pgbouncer": lambda db: bouncer.url(db),
        "table lock, psycopg": lambda db: f"{server.url(db)}&lock=table",
        "advisory lock, psycopg": lambda db: server.url(db),
    }
    try:
        print(f"{'lock':45} {args.migrators} migrators (s)   SIGKILL -> next holder (s)")
        for label, url_for in locks.items():
            walls = [contention(url_for(server.create_database()), folder, args.migrators) for _ in range(args.repeat)]
            takeovers = [takeover(url_for(server.create_database())) for _ in range(args.repeat)]
            print(f"{label:45} {statistics.median(walls):>17.2f}   {statistics.median(takeovers):>26.3f}")
    finally:
        bouncer.stop()
        server.stop()


if __name__ == "__main__":
    main()
