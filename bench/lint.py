"""Benchmark: `dbops lint` on N generated scripts (no database involved).

Usage: uv run python -m bench.lint [--n 1000] [--repeat 3]
Prints a table: scripts, statements, in-process lint time, whole-command time (process start included).
Two sets: bench.generate's one-statement scripts, and heavier five-statement scripts (DDL, grant, insert, view).
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.generate import generate
from dbops.lint.checks import lint_files
from dbops.scripts.sources import FolderSource

HEAVY = """-- orders of shard {i}
create table sales.orders_{i} (
    order_id bigint not null,
    customer_id integer not null,
    status varchar(20) not null default 'new',
    amount decimal(12,2),
    ordered_at timestamp not null
) diststyle key distkey (customer_id) sortkey (ordered_at);

comment on table sales.orders_{i} is 'orders of shard {i}';

grant select on sales.orders_{i} to group reporting;

insert into sales.orders_{i} (order_id, customer_id, amount, ordered_at) values (1, 2, 3.50, '2024-01-01');

create view sales.v_orders_{i} as
select o.order_id, o.customer_id, sum(o.amount) as total
from sales.orders_{i} o join sales.customers c on c.id = o.customer_id
where o.status <> 'cancelled'
group by o.order_id, o.customer_id;
"""


def heavy(folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, n + 1):
        (folder / f"V{i}__orders_{i}.sql").write_text(HEAVY.format(i=i))


def measure(folder: Path, repeat: int) -> tuple[int, float, float]:
    files = FolderSource([str(folder)]).snapshot().files
    inside, whole, statements = [], [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        catalog, _ = lint_files(files)
        inside.append(time.perf_counter() - started)
        statements = sum(len(m.statements) for m in catalog.migrations)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "dbops.cli", "--locations", str(folder), "lint"],
                       stdout=subprocess.DEVNULL, check=False)
        whole.append(time.perf_counter() - started)
    return statements, min(inside), min(whole)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="number of scripts (default 1000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, best time kept")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="dbops-bench-lint-"))
    try:
        generate(root / "simple", args.n)
        heavy(root / "heavy", args.n)
        print(f"{'set':>8} {'scripts':>8} {'statements':>11} {'lint (s)':>9} {'command (s)':>12}")
        for name in ("simple", "heavy"):
            statements, inside, whole = measure(root / name, args.repeat)
            print(f"{name:>8} {args.n:>8} {statements:>11} {inside:>9.2f} {whole:>12.2f}")
        print("goal: 1,000 scripts in a few seconds")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
