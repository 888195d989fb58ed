"""Benchmark: one big script, against `psql -1 -f` in the same run.

Usage: uv run python -m bench.big_scripts [--mb 50] [--statements 100000] [--skip-dagster]

Two scripts, each applied to a new database of one bench server (fsync on):
- `inserts`: a table and multi-row INSERTs, `--mb` megabytes of SQL;
- `statements`: a table and `--statements` one-row statements (inserts, with a comment now and then).
Each is applied by `psql -1 -f` (the floor: one transaction, no bookkeeping), `dbops migrate --direct`, and
`dbops migrate` (the Dagster job, instance storage on the bench server); then `dbops lint` reads the second.
Every command runs under a fresh wrapper process, so the peak RSS is the command's own: "peak" is the
largest single process (getrusage RUSAGE_CHILDREN), "tree" the largest sum over the command's process
tree, sampled every 50 ms from /proc. Wall times include process start.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

from bench.dagster_overhead import instance_home
from bench.server import durable_server
from tests.pg import PgServer

GOALS = "goals: the 50 MB script within 2x psql and under 200 MB RSS on both paths; lint of 100k statements < 5 s"

# Runs argv[1:], samples its process tree's RSS, prints {"wall", "peak_kb", "tree_kb", "code"} as JSON.
WRAPPER = r"""
import json, os, resource, subprocess, sys, threading, time

def tree_rss(root):
    children = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            pass
    return total // 1024

started = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
peak = [0]
def sample():
    while child.poll() is None:
        peak[0] = max(peak[0], tree_rss(child.pid))
        time.sleep(0.05)
threading.Thread(target=sample, daemon=True).start()
err = child.stderr.read()
code = child.wait()
wall = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall": wall, "peak_kb": usage.ru_maxrss, "tree_kb": max(peak[0], usage.ru_maxrss),
                  "code": code, "stderr": err.decode(errors="replace")[-2000:]}))
"""


def inserts_script(path: Path, megabytes: int, rows_per_insert: int = 1000) -> int:
    """A table and multi-row INSERTs until the file holds `megabytes` MB; returns the statement count."""
    limit = megabytes * 1_000_000
    statements = 1
    with path.open("w") as out:
        out.write("create table big_rows (id bigint primary key, name varchar(64), amount numeric(12,2), created_at timestamp);\n")
        size, row = 0, 0
        while size < limit:
            values = ",\n".join(
                f"  ({n}, 'customer {n} of the big script', {n % 100000}.25, '2024-01-{n % 28 + 1:02d} 12:00:00')"
                for n in range(row + 1, row + rows_per_insert + 1)
            )
            chunk = f"insert into big_rows (id, name, amount, created_at) values\n{values};\n"
            out.write(chunk)
            size += len(chunk)
            row += rows_per_insert
            statements += 1
    return statements


def statements_script(path: Path, count: int) -> int:
    """A table and `count` one-row statements, a comment every 100; returns the statement count."""
    with path.open("w") as out:
        out.write("create table many_rows (id int primary key, name varchar(64));\n")
        for n in range(1, count):
            if n % 100 == 0:
                out.write(f"-- rows {n} to {n + 99}\n")
            out.write(f"insert into many_rows (id, name) values ({n}, 'row {n}');\n")
    return count


def measure(cmd: list[str], env: dict[str, str], allow_failure: bool = False) -> dict:
    done = subprocess.run([sys.executable, "-c", WRAPPER, *cmd], env=env, capture_output=True, text=True, check=True)
    figures = json.loads(done.stdout)
    if figures["code"] not in ((0, 1) if allow_failure else (0,)):
        raise SystemExit(f"{' '.join(cmd[:6])} … exited {figures['code']}:\n{figures['stderr']}")
    return figures


def count_rows(server: PgServer, database: str, table: str) -> int:
    with psycopg.connect(host=server.socket_dir, user="postgres", dbname=database) as conn:
        return int(conn.execute(f"select count(*) from {table}").fetchone()[0])


def run_script(server: PgServer, root: Path, name: str, script: Path, table: str, dagster: bool) -> list[tuple[str, dict]]:
    """psql, --direct and the Dagster path on `script`, each on a new database; rows checked after each."""
    psql = shutil.which("psql")
    assert psql
    folder = root / name
    folder.mkdir()
    shutil.copy(script, folder / f"V1__{name}.sql")
    base = {**os.environ, "DBOPS_LOCATIONS": str(folder), "DBOPS_HOME": str(root / f"home_{name}")}
    base.pop("DAGSTER_HOME", None)
    rows: list[tuple[str, dict]] = []
    db = server.create_database("psql")
    rows.append(("psql -1 -f", measure([psql, "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-h", server.socket_dir,
                                        "-U", "postgres", "-d", db, "-f", str(script)], base)))
    expected = count_rows(server, db, table)
    cli = [sys.executable, "-m", "dbops.cli", "migrate"]
    db = server.create_database("direct")
    rows.append(("migrate --direct", measure([*cli, "--direct"], {**base, "DBOPS_URL": server.url(db)})))
    assert count_rows(server, db, table) == expected, "--direct applied a different number of rows"
    if dagster:
        db = server.create_database("dagster")
        env = {**base, "DBOPS_URL": server.url(db), "DAGSTER_HOME": str(instance_home(server, root / f"dagster_{name}", "postgres"))}
        rows.append(("migrate (Dagster)", measure(cli, env)))
        assert count_rows(server, db, table) == expected, "the Dagster path applied a different number of rows"
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=50, help="size of the INSERT script in MB (default 50)")
    parser.add_argument("--statements", type=int, default=100_000, help="statements of the second script (default 100000)")
    parser.add_argument("--skip-dagster", action="store_true", help="leave out the Dagster path")
    args = parser.parse_args()
    if not shutil.which("psql"):
        sys.exit("psql is needed for the comparison (apt-get install postgresql-client)")
    root = Path(tempfile.mkdtemp(prefix="dbops-bench-big-"))
    with durable_server(root) as server:
        big, many = root / "inserts.sql", root / "statements.sql"
        scripts = [
            ("inserts", big, "big_rows", inserts_script(big, args.mb)),
            ("statements", many, "many_rows", statements_script(many, args.statements)),
        ]
        print(f"{'script':>11} {'MB':>6} {'statements':>11} {'command':>18} {'wall (s)':>9} {'x psql':>7} {'peak (MB)':>10} {'tree (MB)':>10}")
        for name, path, table, statements in scripts:
            figures = run_script(server, root, name, path, table, not args.skip_dagster)
            floor = figures[0][1]["wall"]
            for command, f in figures:
                print(f"{name:>11} {path.stat().st_size / 1e6:>6.1f} {statements:>11} {command:>18} {f['wall']:>9.2f} "
                      f"{f['wall'] / floor:>7.2f} {f['peak_kb'] / 1024:>10.0f} {f['tree_kb'] / 1024:>10.0f}")
        lint = measure([sys.executable, "-m", "dbops.cli", "--locations", str(root / "statements"), "lint"],
                       os.environ.copy(), allow_failure=True)  # findings (DB011, DB012) give exit 1
        print(f"{'statements':>11} {many.stat().st_size / 1e6:>6.1f} {args.statements:>11} {'lint':>18} {lint['wall']:>9.2f} "
              f"{'':>7} {lint['peak_kb'] / 1024:>10.0f} {lint['tree_kb'] / 1024:>10.0f}   (exit {lint['code']})")
        print(GOALS)


if __name__ == "__main__":
    main()
