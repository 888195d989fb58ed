"""Benchmark: `dbops migrate --direct` against psql applying the same N files in one session, and dbmate.

Usage: uv run python -m bench.engine [--n 1000] [--repeat 1]
Prints a table: psql in one session and one transaction (the floor), dbmate (the npm package, installed into a
temporary folder for the run; its column says "missing" when npm cannot install it), dbops, ratios to the
floor, and the time of a no-op rerun of dbmate and dbops next to the floor of any Python tool's no-op (the
interpreter, `import psycopg`, one connection and one query: "python floor"). fsync on, each on a new database; dbops runs with its
bytecode compiled, as an installed package does. A second table (bench/drivers.py) compares dbops's drivers:
psycopg, redshift_connector through pgbouncer, and the Data API target on the local endpoint.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.drivers import compare
from bench.generate import generate
from bench.server import durable_server


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def installed_python(root: Path) -> dict[str, str]:
    """The environment of an installed dbops: its bytecode cached (here under `root`), as pip or uv leave it.

    A sandbox that sets PYTHONDONTWRITEBYTECODE would otherwise have every run recompile dbops's modules."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
    package = Path(__file__).resolve().parent.parent / "dbops"
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], env=env, check=True, stdout=subprocess.DEVNULL)
    return env


PYTHON_FLOOR = "import os, psycopg\nwith psycopg.connect(os.environ['DBOPS_URL']) as conn:\n    conn.execute('select 1')"


def install_dbmate(folder: Path) -> str | None:
    """`npm install dbmate` into `folder`; the path of its command, or None (no npm, no registry)."""
    npm = shutil.which("npm")
    if not npm:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent", "dbmate@2"], cwd=folder,
                          capture_output=True, timeout=300, check=False)
    command = folder / "node_modules" / ".bin" / "dbmate"
    return str(command) if done.returncode == 0 and command.exists() else None


def dbmate_folder(paths: list[Path], folder: Path) -> Path:
    """The same migrations as dbmate files: `<version>_name.sql` with a `-- migrate:up` section."""
    folder.mkdir(parents=True, exist_ok=True)
    for number, path in enumerate(paths, start=1):
        (folder / f"{number:06d}_{path.stem}.sql").write_text("-- migrate:up\n" + path.read_text() + "\n-- migrate:down\n")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="number of migrations (default 1000)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each, best time kept")
    parser.add_argument("--drivers", action=argparse.BooleanOptionalAction, default=True,
                        help="also compare the drivers in process: psycopg, redshift_connector, the Data API (local endpoint)")
    args = parser.parse_args()
    psql = shutil.which("psql")
    if not psql:
        sys.exit("psql is needed for the comparison (apt-get install postgresql-client)")
    root = Path(tempfile.mkdtemp(prefix="dbops-bench-"))
    with durable_server(root) as server:
        folder = root / "sql"
        paths = generate(folder, args.n)
        script = root / "all.sql"
        script.write_text("".join(f"\\i {p}\n" for p in paths))
        dbmate = install_dbmate(root / "npm")
        mate_folder = dbmate_folder(paths, root / "dbmate")
        psql_times, dbops_times, noop_times, mate_times, mate_noop, floor_times = [], [], [], [], [], []
        for _ in range(args.repeat):
            db = server.create_database("psql")
            psql_times.append(timed([psql, "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-h", server.socket_dir, "-U", "postgres", "-d", db, "-f", str(script)]))
            if dbmate:
                db = server.create_database("dbmate")
                mate = [dbmate, "--url", f"postgres://postgres@/{db}?socket={server.socket_dir}&sslmode=disable",
                        "--migrations-dir", str(mate_folder), "--no-dump-schema", "up"]
                mate_times.append(timed(mate))
                mate_noop.append(timed(mate))
            db = server.create_database("dbops")
            env = {**installed_python(root), "DBOPS_URL": server.url(db), "DBOPS_LOCATIONS": str(folder)}
            cli = [sys.executable, "-m", "dbops.cli", "migrate", "--direct"]
            dbops_times.append(timed(cli, env))
            noop_times.append(timed(cli, env))
            floor_times.append(timed([sys.executable, "-c", PYTHON_FLOOR], env))
        p, d, z = min(psql_times), min(dbops_times), min(noop_times)
        m = f"{min(mate_times):>11.2f}" if mate_times else f"{'missing':>11}"
        mr = f"{min(mate_times) / p:>8.2f}" if mate_times else f"{'':>8}"
        mz = f"{min(mate_noop):>15.2f}" if mate_noop else f"{'missing':>15}"
        print(f"{'migrations':>12} {'psql -1 (s)':>12} {'dbmate (s)':>11} {'x psql':>8} {'dbops (s)':>10} {'x psql':>7} {'dbmate no-op':>15} {'dbops no-op':>12} {'python floor':>13}")
        print(f"{args.n:>12} {p:>12.2f} {m} {mr} {d:>10.2f} {d / p:>7.2f} {mz} {z:>12.2f} {min(floor_times):>13.2f}")
        if not mate_times:
            print("dbmate column missing: `npm install dbmate` did not work here (no npm or no registry)")
        print("goal: dbops within 1.3x psql in one transaction and faster than dbmate; no-op no slower than dbmate's "
              "(process start included everywhere)")
        if args.drivers:
            compare(server, folder, args.n)


if __name__ == "__main__":
    main()
