"""Benchmark: 20 migrations to 50 environments — a shell loop of `dbops -e NAME migrate --direct` (what Flyway users
do today, one process per environment) against `dbops -e '*' migrate --direct --parallel K` (one process, K engines
at a time) and the Dagster path (`dbops -e '*' migrate --parallel K`: one Dagster run per environment).

Usage: uv run python -m bench.fleet [--environments 50] [--migrations 20] [--parallel 1,4,8] [--dagster-parallel K,…]

Every measure gets its own 50 fresh databases on one local PostgreSQL server (durable settings, as bench/engine.py)
and its own flyway.toml; after each, every database is checked to hold all the migrations. Columns: wall time,
"per env-run" = wall × parallel / environments (how long one environment held a slot), the ratio to the shell
loop, and for Dagster rows the overhead per environment-run over `--direct` at the same parallel.

Other measures (the rollout's Dagster column) plug in through MEASURES: a Measure's `run(fleet)` migrates
`fleet.environments` and returns; the bench times it, checks the databases and prints its row.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from bench import counts
from bench.dagster_overhead import codebuild_compute_logs
from bench.generate import generate
from bench.server import durable_server
from tests.pg import PgServer

GOAL = "goals: the Dagster path at parallel 4 no slower than the shell loop; Dagster overhead per environment-run < 0.5 s"


@dataclass
class Fleet:
    """One measure's project: a flyway.toml naming `environments` (fresh databases), the scripts, the process environment."""

    root: Path
    environments: list[str]
    urls: dict[str, str]
    env: dict[str, str]
    server: PgServer

    def dbops(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "dbops.cli", *args]

    def run(self, command: list[str] | str, shell: bool = False) -> None:
        subprocess.run(command, shell=shell, check=False, cwd=self.root, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@dataclass
class Measure:
    """A row of the table: `run(fleet)` migrates every environment of the fleet (timed by the bench)."""

    label: str
    parallel: int
    run: Callable[[Fleet], None]
    dagster: bool = False  # a Dagster path: gets the overhead column against --direct at the same parallel
    setup: Callable[[Fleet], None] = field(default=lambda fleet: None)  # untimed preparation (an instance, say)


def shell_loop(fleet: Fleet) -> None:
    names = " ".join(fleet.environments)
    dbops = " ".join(fleet.dbops())
    fleet.run(f"set -e; for name in {names}; do {dbops} -e \"$name\" migrate --direct; done", shell=True)


def fleet_direct(parallel: int) -> Callable[[Fleet], None]:
    return lambda fleet: fleet.run(fleet.dbops("-e", "*", "migrate", "--direct", "--parallel", str(parallel)))


def fleet_dagster(parallel: int) -> Callable[[Fleet], None]:
    return lambda fleet: fleet.run(fleet.dbops("-e", "*", "migrate", "--parallel", str(parallel)))


def dagster_instance(fleet: Fleet) -> None:
    """A DAGSTER_HOME on dagster-postgres on the bench server, configured as CodeBuild's (infra/dagster_home/dagster.yaml:
    no compute-log capture), created before the clock starts."""
    home = fleet.root / "dagster_home"
    home.mkdir()
    storage = fleet.server.url(fleet.server.create_database("storage"))
    (home / "dagster.yaml").write_text(f"telemetry:\n  enabled: false\nstorage:\n  postgres:\n    postgres_url: {storage}\n{codebuild_compute_logs()}")
    fleet.env["DAGSTER_HOME"] = str(home)
    probe = "from dagster import DagsterInstance\nwith DagsterInstance.get() as i: i.get_runs(limit=1)"
    subprocess.run([sys.executable, "-c", probe], check=True, env=fleet.env, cwd=fleet.root)  # creates the storage tables


MEASURES: list[Measure] = []  # more rows (the rollout's); run after the built-in ones


def new_fleet(server: PgServer, root: Path, n: int, scripts: Path) -> Fleet:
    root.mkdir(parents=True)
    names = [f"env-{i:02d}" for i in range(n)]
    urls = {name: server.url(server.create_database("fleet")) for name in names}
    (root / "flyway.toml").write_text("".join(f'[environments.{name}]\nurl = "{url}"\n\n' for name, url in urls.items()))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBOPS_", "DAGSTER_"))}
    env.update({"DBOPS_LOCATIONS": str(scripts), "DBOPS_HOME": str(root / ".dbops")})
    return Fleet(root, names, urls, env, server)


def applied_everywhere(fleet: Fleet, migrations: int) -> bool:
    for url in fleet.urls.values():
        with psycopg.connect(url) as conn:
            if conn.execute("select to_regclass('public.flyway_schema_history')").fetchone()[0] is None:
                return False
            if conn.execute("select count(*) from flyway_schema_history where success").fetchone()[0] != migrations:
                return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--environments", type=int, default=50)
    parser.add_argument("--migrations", type=int, default=20)
    parser.add_argument("--parallel", type=counts, default="1,4,8", help="--direct fleet parallelism (default 1,4,8)")
    parser.add_argument("--dagster-parallel", type=counts, default="", help="also the Dagster path at these parallelisms (e.g. 4; slow: a process per environment)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="dbops-bench-fleet-"))
    with durable_server(root) as server:
        run_measures(args, root, server)


def run_measures(args: argparse.Namespace, root: Path, server: PgServer) -> None:
    scripts = root / "sql"
    generate(scripts, args.migrations)
    measures = [Measure("shell loop: dbops -e NAME migrate --direct", 1, shell_loop)]
    measures += [Measure("dbops -e '*' migrate --direct", int(k), fleet_direct(int(k))) for k in args.parallel]
    measures += [Measure("dbops -e '*' migrate (one Dagster run each)", int(k), fleet_dagster(int(k)), dagster=True, setup=dagster_instance)
                 for k in args.dagster_parallel]
    measures += MEASURES
    n = args.environments
    print(f"{args.migrations} migrations to {n} environments (2 cores shared: compare ratios within this run)")
    print(f"{'measure':<48} {'parallel':>8} {'wall (s)':>9} {'per env-run (s)':>16} {'vs shell loop':>14} {'Dagster overhead/env-run (s)':>29} {'all applied':>12}")
    walls: dict[tuple[bool, int], float] = {}
    loop = None
    for i, measure in enumerate(measures):
        fleet = new_fleet(server, root / f"m{i}", n, scripts)
        measure.setup(fleet)
        started = time.perf_counter()
        measure.run(fleet)
        wall = time.perf_counter() - started
        loop = wall if loop is None else loop
        walls[(measure.dagster, measure.parallel)] = wall
        direct = walls.get((False, measure.parallel))
        overhead = f"{(wall - direct) * measure.parallel / n:.2f}" if measure.dagster and direct else ""
        print(f"{measure.label:<48} {measure.parallel:>8} {wall:>9.2f} {wall * measure.parallel / n:>16.2f} "
              f"{loop / wall:>13.2f}x {overhead:>29} {'yes' if applied_everywhere(fleet, args.migrations) else 'NO':>12}")
    print(GOAL)


if __name__ == "__main__":
    main()
