"""Benchmark: `dbops review --base main` on N generated migrations (bench.generate), and its parts.

Usage: uv run python -m bench.review [--n 1000] [--repeat 1]
A git repository whose main holds V1..V(N-1) and a branch that adds VN; the review runs in the branch's work tree,
its scratch build on a throwaway PostgreSQL server (tests.pg, fsync off) through --scratch-url. Prints the whole
command's time (process start included) with a cold and a warm lint cache, the review's own phases (lint,
integrity, plan, scratch build, from its --json `seconds`), `dbops lint` alone, and psql applying the same files in
one transaction, for scale.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.generate import generate
from tests.gitrepo import GitRepo
from tests.pg import start_server


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - started, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="number of migrations (default 1000)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each, best time kept")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="dbops-bench-review-"))
    server = start_server(root / "pgdata")
    try:
        repo = GitRepo(root / "repo")
        paths = generate(repo.path / "sql", args.n)
        repo.git("add", "--", *[str(p.relative_to(repo.path)) for p in paths[:-1]])
        repo.git("commit", "--quiet", "-m", "base")
        repo.git("checkout", "--quiet", "-b", "branch")
        repo.commit("adds the last migration", {f"sql/{paths[-1].name}": paths[-1].read_text()})
        review = [sys.executable, "-m", "dbops.cli", "review", "--json", "--base", "main", "--scratch-url", server.url()]
        lint = [sys.executable, "-m", "dbops.cli", "lint"]
        rows: dict[str, list[float]] = {}
        phases: dict[str, list[float]] = {}
        for _ in range(args.repeat):
            home = root / "home"
            shutil.rmtree(home, ignore_errors=True)
            env = {**os.environ, "DBOPS_HOME": str(home), "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
            for label in ("review, cold lint cache", "review, warm lint cache"):
                seconds, done = timed(review, repo.path, env)
                if done.returncode != 0:
                    sys.exit(f"dbops review failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
                rows.setdefault(label, []).append(seconds)
                for phase, value in json.loads(done.stdout)["seconds"].items():
                    phases.setdefault(f"{label}: {phase}", []).append(value)
            shutil.rmtree(home, ignore_errors=True)
            for label in ("lint alone, cold cache", "lint alone, warm cache"):
                rows.setdefault(label, []).append(timed(lint, repo.path, env)[0])
            db = server.create_database("psql")
            script = root / "all.sql"
            script.write_text("".join(f"\\i {p}\n" for p in paths))
            psql = shutil.which("psql")
            if psql:
                rows.setdefault("psql -1, the same files (for scale)", []).append(timed(
                    [psql, "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-h", server.socket_dir, "-U", "postgres", "-d", db,
                     "-f", str(script)], root, env)[0])
        print(f"{args.n} migrations; best of {args.repeat}")
        print(f"{'what':>44} {'seconds':>8}")
        for label, values in rows.items():
            print(f"{label:>44} {min(values):>8.2f}")
        for label, values in phases.items():
            print(f"{'  ' + label:>44} {min(values):>8.2f}")
        print("goal: lint of 1,000 scripts under 2 s (whole command)")
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
