"""Benchmark: what Dagster adds to a migrate, and how long the definitions take to load.

Usage: uv run python -m bench.dagster_overhead [--sizes 100,1000] [--load-sizes 1000,10000] [--repeat 1]
                                               [--storage postgres|dbops|sqlite]

1. `dbops migrate` (the migrate job on a fresh local instance) against `dbops migrate --direct` for N
   pending migrations (bench/generate.py's scripts), each on a new database; then a no-op `dbops migrate`.
   Wall times include process start on both sides; "run" is the Dagster run's own duration; "fixed" is
   what one pending script costs through Dagster beyond `--direct` (process start, imports, definitions,
   run creation); "fixed at N" is the same for one script added to the N applied ones (what a user of a project
   of that size waits for one new script). `--storage` picks the instance: `postgres` (dagster-postgres on the bench server, what
   deployments use), `dbops` (the local default: dagster-postgres on the embedded server dbops starts),
   `sqlite` (Dagster's stock SQLite storage).
2. Loading the definitions for N scripts in a fresh process: importing dagster and dbops, building the
   Definitions (cold: no script-facts cache; warm: cache filled), and the repository snapshot that the
   code server hands to the webserver. "dagster alone" is the floor under those figures: the same number of bare
   AssetSpecs (no metadata, no checks), chained in one multi_asset with one job, built and snapshotted by Dagster
   in the same kind of process.
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

import yaml

from bench import counts
from bench.generate import generate, migration_sql
from bench.server import durable_server
from dbops.targets.embedded import EmbeddedDatabase
from tests.pg import PgServer

GOALS = "goals: <= 10 ms overhead per applied migration, fixed cost <= 2 s, load 1,000 < 1.5 s, 10,000 < 6 s"

LOAD_PROBE = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
started = time.perf_counter()
import dagster
from dagster._core.remote_representation.external_data import RepositorySnap
from dbops.orchestration.build import build_definitions
imported = time.perf_counter()
defs = build_definitions(with_sensors=False)
built = time.perf_counter()
RepositorySnap.from_def(defs.get_repository_def())
snapped = time.perf_counter()
print(json.dumps({"import": imported - started, "build": built - imported, "snapshot": snapped - built}))
"""

FLOOR_PROBE = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
started = time.perf_counter()
from dagster import AssetKey, AssetSelection, AssetSpec, Definitions, define_asset_job, multi_asset
from dagster._core.remote_representation.external_data import RepositorySnap
imported = time.perf_counter()
keys = [AssetKey(["migrations", f"v{i}"]) for i in range(int(sys.argv[1]))]
specs = [AssetSpec(key, deps=keys[i - 1 : i], skippable=True) for i, key in enumerate(keys)]

@multi_asset(specs=specs, can_subset=True)
def migrations(context):
    pass

defs = Definitions(assets=[migrations], jobs=[define_asset_job("migrate", selection=AssetSelection.assets(migrations))])
built = time.perf_counter()
RepositorySnap.from_def(defs.get_repository_def())
snapped = time.perf_counter()
print(json.dumps({"import": imported - started, "build": built - imported, "snapshot": snapped - built}))
"""

RUN_PROBE = """
import json
from dagster import DagsterInstance
with DagsterInstance.get() as instance:
    run = instance.get_runs(limit=1)[0]
    stats = instance.get_run_stats(run.run_id)
    print(json.dumps({"seconds": stats.end_time - stats.start_time, "events": len(instance.all_logs(run.run_id))}))
"""


def timed(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def measured(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MB) of one command."""
    started = time.perf_counter()
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, cmd)
    return time.perf_counter() - started, usage.ru_maxrss / 1024


def python(code: str, env: dict[str, str], *args: str) -> dict | list:
    done = subprocess.run([sys.executable, "-c", code, *args], check=True, env=env, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


STOCK_SQLITE = "telemetry:\n  enabled: false\nnux:\n  enabled: false\n"
CODEBUILD_INSTANCE = Path(__file__).resolve().parents[1] / "infra" / "dagster_home" / "dagster.yaml"


def codebuild_compute_logs() -> str:
    """The compute_logs block of CodeBuild's instance (infra/dagster_home/dagster.yaml), for a bench instance set up alike."""
    return yaml.safe_dump({"compute_logs": yaml.safe_load(CODEBUILD_INSTANCE.read_text())["compute_logs"]})


POSTGRES = STOCK_SQLITE + "storage:\n  postgres:\n    postgres_url: {url}\n" + codebuild_compute_logs()


def instance_home(server: PgServer, home: Path, storage: str) -> Path:
    """A DAGSTER_HOME for `storage`; `dbops` leaves it to dbops to create."""
    if storage != "dbops":
        home.mkdir(parents=True)
        config = STOCK_SQLITE if storage == "sqlite" else POSTGRES.format(url=server.url(server.create_database("storage")))
        (home / "dagster.yaml").write_text(config)
    return home


def migrate_figures(server: PgServer, root: Path, n: int, storage: str) -> dict[str, float]:
    """--direct and the Dagster path for n pending scripts, one pending script, and a no-op, on one instance."""
    folder = root / f"sql{n}"
    generate(folder, n)
    base = {**os.environ, "DBOPS_LOCATIONS": str(folder), "DBOPS_HOME": str(root / f"home{n}")}
    base.pop("DAGSTER_HOME", None)
    cli = [sys.executable, "-m", "dbops.cli", "migrate"]
    direct_env = {**base, "DBOPS_URL": server.url(server.create_database("direct"))}
    direct, direct_mb = measured([*cli, "--direct"], direct_env)
    env = {**base, "DBOPS_URL": server.url(server.create_database("dagster")),
           "DAGSTER_HOME": str(instance_home(server, root / f"dagster{n}", storage))}
    dagster, dagster_mb = measured(cli, env)
    run = python(RUN_PROBE, env)
    noop = timed(cli, env)
    (folder / f"V{n + 1}__step_{n + 1}.sql").write_text(migration_sql(n + 1))
    one_more = timed(cli, env) - timed([*cli, "--direct"], direct_env)
    one = {**base, "DBOPS_LOCATIONS": str(root / f"one{n}")}
    generate(Path(one["DBOPS_LOCATIONS"]), 1)
    one_direct = timed([*cli, "--direct"], {**one, "DBOPS_URL": server.url(server.create_database("direct"))})
    one_dagster = timed(cli, {**one, "DBOPS_URL": server.url(server.create_database("dagster")), "DAGSTER_HOME": env["DAGSTER_HOME"]})
    EmbeddedDatabase(Path(base["DBOPS_HOME"]) / "pgdata").stop()
    return {
        "n": n,
        "direct": direct,
        "dagster": dagster,
        "per_migration_ms": (dagster - direct) / n * 1000,
        "run": run["seconds"],
        "events": run["events"],
        "noop": noop,
        "fixed": one_dagster - one_direct,
        "fixed_at_n": one_more,
        "direct_mb": direct_mb,
        "dagster_mb": dagster_mb,
    }


def load_figures(root: Path, n: int) -> dict[str, float]:
    folder = root / f"load{n}"
    generate(folder, n)
    env = {**os.environ, "DBOPS_LOCATIONS": str(folder), "DBOPS_HOME": str(root / f"loadhome{n}")}
    cold = python(LOAD_PROBE, env)
    warm = python(LOAD_PROBE, env)
    floor = python(FLOOR_PROBE, env, str(n))
    return {"n": n, "cold": cold, "warm": warm, "floor": floor}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=counts, default="100,1000", help="pending migrations per run (default 100,1000)")
    parser.add_argument("--load-sizes", type=counts, default="1000,10000", help="scripts for the load measurement (default 1000,10000)")
    parser.add_argument("--repeat", type=int, default=1, help="repetitions; the best of each figure is kept")
    parser.add_argument("--storage", choices=["postgres", "dbops", "sqlite"], default="postgres",
                        help="instance storage (default postgres, as deployed)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="dbops-bench-dagster-"))
    with durable_server(root) as server:
        print(f"storage: {args.storage}")
        print(f"{'pending':>8} {'direct (s)':>11} {'migrate job (s)':>16} {'overhead/migration (ms)':>24} {'run (s)':>8} {'events':>7} {'no-op (s)':>10} {'fixed (s)':>10} {'fixed at N (s)':>15} {'MB direct/job':>14}")
        sizes = args.sizes
        rows = []
        for n in sizes:
            best = min((migrate_figures(server, root / f"r{i}", n, args.storage) for i in range(args.repeat)), key=lambda f: f["dagster"])
            print(
                f"{n:>8} {best['direct']:>11.2f} {best['dagster']:>16.2f} {best['per_migration_ms']:>24.1f} "
                f"{best['run']:>8.2f} {best['events']:>7} {best['noop']:>10.2f} {best['fixed']:>10.2f} {best['fixed_at_n']:>15.2f} {best['direct_mb']:>6.0f}/{best['dagster_mb']:<7.0f}"
            )
            rows.append((n, best))
        if len(sizes) > 1:
            (a, fa), (b, fb) = rows[0], rows[-1]
            marginal = ((fb["dagster"] - fa["dagster"]) - (fb["direct"] - fa["direct"])) / (b - a) * 1000
            print(f"marginal overhead per applied migration ({a} -> {b} pending): {marginal:.1f} ms")
        print()
        print(f"{'scripts':>8} {'import (s)':>11} {'build cold (s)':>15} {'build warm (s)':>15} {'snapshot (s)':>13} {'warm total (s)':>15}"
              f" {'dagster alone: build+snapshot (s)':>34} {'total (s)':>10}")
        for n in args.load_sizes:
            f = load_figures(root, n)
            warm = f["warm"]
            total = warm["import"] + warm["build"] + warm["snapshot"]
            floor = f["floor"]
            print(f"{n:>8} {warm['import']:>11.2f} {f['cold']['build']:>15.2f} {warm['build']:>15.2f} {warm['snapshot']:>13.2f} {total:>15.2f}"
                  f" {floor['build'] + floor['snapshot']:>34.2f} {floor['import'] + floor['build'] + floor['snapshot']:>10.2f}")
        print(GOALS)


if __name__ == "__main__":
    main()
