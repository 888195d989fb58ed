"""Benchmark: what showing last failed attempts costs `dbops info` (the plan with and without the audit lookup).

Usage: uv run python -m bench.info [--n 1000] [--pending 10] [--extra-audit 0] [--repeat 50]
N generated migrations, all but --pending applied; the first pending one fails (so `info` has a failure to show).
`--extra-audit K` adds K more audit rows (older attempts), as a long-lived warehouse would have.
Prints the plan's time without and with the lookup (medians of --repeat, taken in turns, in-process, a session each),
their ratio, and the wall time of `dbops info` as a process.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.generate import generate
from dbops.config import Settings
from dbops.engine.engine import Engine
from dbops.errors import MigrationFailed
from dbops.targets import open_target
from tests.pg import start_server


def median_seconds(action, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def alternating(first, second, repeat: int) -> tuple[float, float]:
    """Median seconds of each, run in turns so that the machine's load weighs on both alike."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for action, into in ((first, times[0]), (second, times[1])):
            started = time.perf_counter()
            action()
            into.append(time.perf_counter() - started)
    return statistics.median(times[0]), statistics.median(times[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="number of migrations (default 1000)")
    parser.add_argument("--pending", type=int, default=10, help="scripts left pending, the first of them failing (default 10)")
    parser.add_argument("--extra-audit", type=int, default=0, help="older audit rows to add (default 0)")
    parser.add_argument("--repeat", type=int, default=50, help="timings of each, median kept (default 50)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="dbops-bench-info-"))
    server = start_server(root / "pgdata")
    try:
        folder = root / "sql"
        generate(folder, args.n)
        broken = args.n - args.pending + 1
        (folder / f"V{broken}__step_{broken}.sql").write_text("select * from no_such_table;\n")
        url = server.url(server.create_database("info"))
        engine = Engine(open_target(url), Settings(locations=[str(folder)]))
        try:
            list(engine.migrate())
        except MigrationFailed:
            pass
        if args.extra_audit:
            with engine.session() as session:
                session.execute(
                    "insert into dbops_audit (run_id, source, script, status, started_at, finished_at, installed_by, history_table) "
                    "select 'old-' || g, 'cli', 'V' || (g %% %s + 1) || '__step_' || (g %% %s + 1) || '.sql', "
                    "case when g %% 7 = 0 then 'failed' else 'success' end, "
                    "now() - interval '1 day' - g * interval '1 second', now() - interval '1 day', 'bench', 'flyway_schema_history' "
                    "from generate_series(1, %s) g",
                    (broken - 1, broken - 1, args.extra_audit),
                )
                session.commit()
        fresh = Engine(open_target(url), Settings(locations=[str(folder)]))
        fresh.catalog  # parsing the scripts is the same either way; time the database part
        assert [e.script for e in fresh.plan(failures=True).failed_attempts()] == [f"V{broken}__step_{broken}.sql"]
        plain, with_failures = alternating(lambda: fresh.plan(), lambda: fresh.plan(failures=True), args.repeat)
        env = {**os.environ, "DBOPS_URL": url, "DBOPS_LOCATIONS": str(folder)}
        cli = [sys.executable, "-m", "dbops.cli", "info"]
        wall = median_seconds(lambda: subprocess.run(cli, check=True, env=env, stdout=subprocess.DEVNULL), max(3, args.repeat // 5))
        with engine.session() as session:
            audit_rows = session.query("select count(*) from dbops_audit")[0][0]
        print(f"{'migrations':>10} {'pending':>8} {'audit rows':>10} {'plan (ms)':>10} {'+ failures (ms)':>16} {'ratio':>6} {'dbops info (s)':>15}")
        print(f"{args.n:>10} {args.pending:>8} {audit_rows:>10} {plain * 1000:>10.1f} {with_failures * 1000:>16.1f} {with_failures / plain:>6.2f} {wall:>15.2f}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
