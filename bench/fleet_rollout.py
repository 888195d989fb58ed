"""bench.fleet with the rollout rows: `dbops rollout --parallel K` (one Dagster run per environment, in K worker
processes that load the definitions once) on a dagster-postgres instance, next to the shell loop and `--direct`.

Usage: uv run python -m bench.fleet_rollout [--rollout-parallel 1,4,8] [bench.fleet's options]

The overhead column is (rollout wall - `--direct` wall at the same parallel) x parallel / environments: what
Dagster adds to one environment's run. The environments are split into three waves (a tenth, the next 40 %, the
rest), so the rollout also pays for waiting on each wave's slowest environment.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from bench import counts
from bench import fleet as table
from bench.fleet import Fleet, Measure, dagster_instance


def in_waves(fleet: Fleet) -> None:
    """An untimed setup: a DAGSTER_HOME on the bench server, and the fleet's flyway.toml given waves 0, 1 and 2."""
    dagster_instance(fleet)
    n = len(fleet.environments)
    lines = []
    for i, name in enumerate(fleet.environments):
        wave = 0 if i < max(1, n // 10) else 1 if i < n // 2 else 2
        lines.append(f'[environments.{name}]\nurl = "{fleet.urls[name]}"\n[dbops.environments.{name}]\nwave = {wave}\n')
    (fleet.root / "flyway.toml").write_text("\n".join(lines))


def rollout(parallel: int) -> Callable[[Fleet], None]:
    return lambda fleet: fleet.run(fleet.dbops("rollout", "--parallel", str(parallel)))


def main() -> None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--rollout-parallel", type=counts, default="1,4,8")
    args, rest = parser.parse_known_args()
    table.MEASURES.extend(
        Measure("dbops rollout (3 waves, one Dagster run each)", int(k), rollout(int(k)), dagster=True, setup=in_waves)
        for k in args.rollout_parallel
    )
    sys.argv = [sys.argv[0], *rest]
    table.main()


if __name__ == "__main__":
    main()
