"""Benchmark: cost of one git_sensor tick and of reading one commit's scripts, by history size.

Usage: uv run python -m bench.git_sensor [--n 1000]
Builds a repository with one commit per migration (N commits, N scripts, plus README-only
commits in between), then times: a tick with nothing new, a tick with one new commit, a tick
with 50 new commits folded into one run, and GitSource.snapshot() of the newest commit.
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from dagster import build_sensor_context, define_asset_job

from bench.generate import migration_sql
from dbops.orchestration.sensors import Watch, build_sensors
from dbops.scripts.git import GitSource
from tests.gitrepo import GitRepo


def best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def build_repo(root: Path, n: int) -> tuple[GitRepo, list[str]]:
    repo = GitRepo(root / "warehouse")
    commits = []
    for i in range(1, n + 1):
        repo.write({f"sql/V{i}__m{i}.sql": migration_sql(i)})
        if i % 10 == 0:
            repo.write({"README.md": f"revision {i}"})
        repo.git("add", "--all")
        repo.git("commit", "--quiet", "-m", f"migration {i}")
        commits.append(repo.head())
    return repo, commits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="migrations, one commit each (default 1000)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="dbops-bench-git-"))
    started = time.perf_counter()
    repo, commits = build_repo(root, args.n)
    print(f"built {args.n} commits in {time.perf_counter() - started:.1f}s")
    _, sensor = build_sensors(define_asset_job("migrate"), git=Watch("git", str(repo.path)), codecommit=Watch("codecommit"))

    def tick(cursor: str) -> None:
        sensor.evaluate_tick(build_sensor_context(cursor=cursor))

    rows = [
        ("tick, nothing new", best(lambda: tick(commits[-1]))),
        ("tick, 1 new commit", best(lambda: tick(commits[-2]))),
        ("tick, 50 new commits -> 1 run", best(lambda: tick(commits[-51]))),
        (f"snapshot of {args.n} scripts", best(lambda: GitSource(str(repo.path), "main").snapshot())),
        ("snapshot, 50 commits folded", best(lambda: GitSource(str(repo.path), "main", included=tuple(commits[-50:-1])).snapshot())),
    ]
    print(f"{'what':<34} {'seconds':>8}")
    for name, seconds in rows:
        print(f"{name:<34} {seconds:>8.3f}")
    shutil.rmtree(root)


if __name__ == "__main__":
    main()
