"""Benchmark: the Redshift driver's statement path, with and without redshift_connector's prepared-statement cache.

Usage: uv run python -m bench.redshift_statements [--n 900] [--repeat 3]
Through the test rig (redshift_connector, pgbouncer, PostgreSQL), `migrate` in process on three shapes: N one-line
scripts, one script of N statements, and bench.generate's N mixed migrations (DDL in most). Each shape runs with
dbops's setting (max_prepared_statements=0, no cache) and with the driver's default cache of 1000, interleaved,
best of --repeat. N stays below 1,000 by default: past that, 2.1.11's cache crashes (the reason for dbops's setting).
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from bench.generate import generate
from dbops.config import Settings
from dbops.engine.engine import Engine
from dbops.targets.redshift import RedshiftTarget
from tests.pg import PgServer, start_server
from tests.rig import Bouncer, start_bouncer

DRIVER_DEFAULT = 1000


def shapes(root: Path, n: int) -> dict[str, Path]:
    scripts = root / "scripts"
    scripts.mkdir()
    (scripts / "V1__table.sql").write_text("create table t (n int);\n")
    for i in range(2, n + 1):
        (scripts / f"V{i}__row_{i}.sql").write_text(f"insert into t values ({i});\n")
    statements = root / "statements"
    statements.mkdir()
    body = "".join(f"insert into big values ({i});\n" for i in range(1, n))
    (statements / "V1__big.sql").write_text("create table big (n int);\n" + body)
    generate(root / "generated", n)
    return {f"{n} one-line scripts": scripts, f"1 script of {n} statements": statements, f"{n} mixed migrations": root / "generated"}


def migrate(server: PgServer, bouncer: Bouncer, folder: Path, prepared: int) -> float:
    database = server.create_database()
    target = RedshiftTarget(bouncer.url(database))
    target.prepared_statements = prepared
    engine = Engine(target, Settings(locations=[str(folder)]))
    engine.catalog  # parse outside the timing: the driver is what is measured
    started = time.perf_counter()
    for _ in engine.migrate():
        pass
    elapsed = time.perf_counter() - started
    with server.admin() as conn:  # pgbouncer keeps its server connections: end them, or the server runs out
        conn.execute(f'drop database "{database}" with (force)')
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=900, help="scripts / statements / migrations per shape (default 900)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, best time kept")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="dbops-bench-rs-"))
    server = start_server(root / "pgdata")
    bouncer = start_bouncer(server)
    try:
        print(f"{'shape':>28} {'no cache (s)':>13} {'cache 1000 (s)':>15} {'ratio':>7}")
        for name, folder in shapes(root, args.n).items():
            times: dict[int, list[float]] = {0: [], DRIVER_DEFAULT: []}
            for _ in range(args.repeat):
                for prepared in times:
                    times[prepared].append(migrate(server, bouncer, folder, prepared))
            off, on = min(times[0]), min(times[DRIVER_DEFAULT])
            print(f"{name:>28} {off:>13.2f} {on:>15.2f} {off / on:>7.2f}")
        print("ratio: dbops's setting (no cache) over the driver's default cache; below 1 is faster")
    finally:
        bouncer.stop()
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
