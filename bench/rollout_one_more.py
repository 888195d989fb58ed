"""Benchmark: the everyday rollout — one new script to a fleet that already has the others, applied by an earlier
rollout — through `dbops rollout --parallel 1` (one Dagster run per environment) against `dbops -e '*' migrate
--direct` of the same script on an identical fleet, in the same run.

Usage: uv run python -m bench.rollout_one_more [--environments 50] [--applied 20,200] [--bootstrap rollout|direct]

`--bootstrap direct` applies the earlier scripts with `dbops -e '*' migrate --direct` instead of a rollout (a fleet
that Flyway or --direct built): the first rollout records them late, and each later run checks them again.

Per size: the wall of each, the Dagster time per environment-run over `--direct` (wall difference / environments)
and the events of one run (what its storage had to write). fsync on, as bench/fleet.py.

A second table measures the deployed path on a third fleet: the rollout sensor's run requests (rollout.rollout_requests),
each executed as the daemon starts it (tests.orchestration.support.execute_request: its asset and check selection),
in one process as its run worker would, without the process start. Half of the environments get requests that
select the whole job (as before dbops.orchestration.selection), the other half requests that select what the
instance expects to be pending there.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import counts
from bench.fleet import applied_everywhere, fleet_direct, new_fleet
from bench.fleet_rollout import in_waves, rollout
from bench.generate import generate, migration_sql
from bench.server import durable_server


def events_of_last_run(home: str) -> int:
    from dagster import DagsterInstance

    os.environ["DAGSTER_HOME"] = home
    with DagsterInstance.get() as instance:
        return len(instance.all_logs(instance.get_runs(limit=1)[0].run_id))


SENSOR_PROBE = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
from dagster import DagsterInstance
from dbops.orchestration.build import build_definitions
from dbops.orchestration.resource import DbopsResource
from dbops.orchestration.rollout import Rollout, rollout_requests
from dbops.orchestration.selection import MigrationAssets
from dbops.orchestration.tags import TAG_SOURCE
from tests.orchestration.support import execute_request
mode, names = sys.argv[1], sys.argv[2].split(",")
defs = build_definitions(with_sensors=False)
migrate = defs.resolve_job_def("migrate")
assets = MigrationAssets.of(defs.get_repository_def()) if mode == "narrow" else None
environments = {n: e for n, e in DbopsResource.from_env().environments().items() if n in names}
runs, events, failed = 0, 0, 0
with DagsterInstance.get() as instance:
    rollout = Rollout("bench-" + mode, environments, {TAG_SOURCE: "sensor"})
    started = time.perf_counter()
    while True:
        _, requests = rollout_requests(instance, rollout, "migrate", 1, assets)
        if not requests:
            break
        for request in requests:
            result = execute_request(migrate, request, instance)
            runs, failed = runs + 1, failed + (not result.success)
            events = len(instance.all_logs(result.run_id))
    seconds = time.perf_counter() - started
print(json.dumps({"runs": runs, "failed": failed, "per_run": seconds / max(runs, 1), "events": events}))
"""


def sensor_runs(fleet, mode: str, names: list[str]) -> dict:
    done = subprocess.run([sys.executable, "-c", SENSOR_PROBE, mode, ",".join(names)], check=True, cwd=fleet.root, env=fleet.env,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--environments", type=int, default=50)
    parser.add_argument("--applied", type=counts, default="20,200", help="scripts already applied (default 20,200)")
    parser.add_argument("--bootstrap", choices=["rollout", "direct"], default="rollout",
                        help="how the Dagster fleets got those scripts (default rollout; direct: then a rollout records them late)")
    args = parser.parse_args()
    n = args.environments
    root = Path(tempfile.mkdtemp(prefix="dbops-bench-one-more-"))
    with durable_server(root) as server:
        print(f"one new script to {n} environments that have the others")
        print(f"{'applied':>8} {'--direct (s)':>13} {'rollout (s)':>12} {'Dagster/env-run (s)':>20} {'events/run':>11} {'all applied':>12}")
        deployed = []
        for size in args.applied:
            scripts = root / f"sql{size}"
            generate(scripts, size)
            direct, dagster = new_fleet(server, root / f"d{size}", n, scripts), new_fleet(server, root / f"r{size}", n, scripts)
            sensor = new_fleet(server, root / f"s{size}", n, scripts)
            fleet_direct(4)(direct)
            for fleet in (dagster, sensor):
                in_waves(fleet)
                if args.bootstrap == "direct":
                    fleet_direct(4)(fleet)
                rollout(4)(fleet)
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
            whole, narrow = sensor_runs(sensor, "whole", sensor.environments[0::2]), sensor_runs(sensor, "narrow", sensor.environments[1::2])
            deployed.append((size, direct_wall / n, whole, narrow, applied_everywhere(sensor, size + 1)))
        print("goal (issue 16): Dagster overhead per environment-run < 0.5 s")
        print()
        print("the deployed path: rollout sensor requests run as the daemon starts them, in process (no process start)")
        print(f"{'applied':>8} {'--direct/env (s)':>17} {'whole job/run (s)':>18} {'events':>7} {'selected/run (s)':>17} {'events':>7} "
              f"{'whole/selected':>15} {'all applied':>12}")
        for size, per_env, whole, narrow, ok in deployed:
            ok = ok and not whole["failed"] and not narrow["failed"]
            print(f"{size:>8} {per_env:>17.2f} {whole['per_run']:>18.2f} {whole['events']:>7} {narrow['per_run']:>17.2f} {narrow['events']:>7} "
                  f"{whole['per_run'] / narrow['per_run']:>15.2f} {'yes' if ok else 'NO':>12}")


if __name__ == "__main__":
    main()
