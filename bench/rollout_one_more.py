"""Benchmark: the everyday rollout — one new script to a fleet that already has the others, applied by an earlier
rollout — through `dbops rollout --parallel 1` (one Dagster run per environment) against `dbops -e '*' migrate
--direct` of the same script on an identical fleet, in the same run.

Usage: uv run python -m bench.rollout_one_more [--environments 50] [--applied 20,200]

Per size: the wall of each, the Dagster time per environment-run over `--direct` (wall difference / environments)
and the events of one run (what its storage had to write). fsync on, as bench/fleet.py.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench.fleet import applied_everywhere, fleet_direct, new_fleet
from bench.fleet_rollout import in_waves, rollout
from bench.generate import generate, migration_sql
from bench.server import durable_server


def events_of_last_run(home: str) -> int:
    from dagster import DagsterInstance

    os.environ["DAGSTER_HOME"] = home
    with DagsterInstance.get() as instance:
        return len(instance.all_logs(instance.get_runs(limit=1)[0].run_id))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--environments", type=int, default=50)
    parser.add_argument("--applied", default="20,200", help="scripts already applied (default 20,200)")
    args = parser.parse_args()
    n = args.environments
    root = Path(tempfile.mkdtemp(prefix="dbops-bench-one-more-"))
    with durable_server(root) as server:
        print(f"one new script to {n} environments that have the others")
        print(f"{'applied':>8} {'--direct (s)':>13} {'rollout (s)':>12} {'Dagster/env-run (s)':>20} {'events/run':>11} {'all applied':>12}")
        for size in [int(s) for s in args.applied.split(",") if s]:
            scripts = root / f"sql{size}"
            generate(scripts, size)
            direct, dagster = new_fleet(server, root / f"d{size}", n, scripts), new_fleet(server, root / f"r{size}", n, scripts)
            fleet_direct(4)(direct)
            in_waves(dagster)
            rollout(4)(dagster)
            (scripts / f"V{size + 1}__step_{size + 1}.sql").write_text(migration_sql(size + 1))
            started = time.perf_counter()
            fleet_direct(1)(direct)
            direct_wall = time.perf_counter() - started
            started = time.perf_counter()
            rollout(1)(dagster)
            rollout_wall = time.perf_counter() - started
            ok = applied_everywhere(direct, size + 1) and applied_everywhere(dagster, size + 1)
            print(f"{size:>8} {direct_wall:>13.2f} {rollout_wall:>12.2f} {(rollout_wall - direct_wall) / n:>20.2f} "
                  f"{events_of_last_run(dagster.env['DAGSTER_HOME']):>11} {'yes' if ok else 'NO':>12}")
        print("goal (issue 16): Dagster overhead per environment-run < 0.5 s")


if __name__ == "__main__":
    main()
