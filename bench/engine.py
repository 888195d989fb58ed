"""Benchmark: `dbops migrate --direct` against psql applying the same N files in one session.

Usage: uv run python -m bench.engine [--n 1000] [--repeat 1]
Prints a table: psql time, dbops time, ratio, and the time of a no-op rerun.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.generate import generate
from tests.pg import start_server


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="number of migrations (default 1000)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each, best time kept")
    args = parser.parse_args()
    psql = shutil.which("psql")
    if not psql:
        sys.exit("psql is needed for the comparison (apt-get install postgresql-client)")
    root = Path(tempfile.mkdtemp(prefix="dbops-bench-"))
    server = start_server(root / "pgdata")
    with server.admin() as conn:  # same durability as a real server for both sides
        conn.execute("alter system reset fsync")
        conn.execute("alter system reset synchronous_commit")
        conn.execute("select pg_reload_conf()")
    try:
        folder = root / "sql"
        paths = generate(folder, args.n)
        script = root / "all.sql"
        script.write_text("".join(f"\\i {p}\n" for p in paths))
        psql_times, dbops_times, noop_times = [], [], []
        for _ in range(args.repeat):
            db = server.create_database("psql")
            psql_times.append(timed([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", server.socket_dir, "-U", "postgres", "-d", db, "-f", str(script)]))
            db = server.create_database("dbops")
            env = {**os.environ, "DBOPS_URL": server.url(db), "DBOPS_LOCATIONS": str(folder)}
            cli = [sys.executable, "-m", "dbops.cli", "migrate", "--direct"]
            dbops_times.append(timed(cli, env))
            noop_times.append(timed(cli, env))
        p, d, z = min(psql_times), min(dbops_times), min(noop_times)
        print(f"{'migrations':>12} {'psql (s)':>10} {'dbops (s)':>10} {'ratio':>7} {'no-op (s)':>10}")
        print(f"{args.n:>12} {p:>10.2f} {d:>10.2f} {d / p:>7.2f} {z:>10.2f}")
        print("goal: ratio <= 1.5, no-op < 0.5 s (process start included on both sides)")
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
