"""Benchmark: `dbops lint` on N generated scripts (no database involved), and DB001's syntax verdict.

Usage: uv run python -m bench.lint [--n 1000] [--repeat 3]
       uv run --with sqlfluff --with pglast python -m bench.lint   (adds those candidates to the second table)
First table: scripts, statements, in-process lint time, whole-command time (process start included) without the lint
cache and with a warm one, for
bench.generate's one-statement scripts, heavier five-statement scripts (DDL, grant, insert, view), and scripts cycling
through tests/data/lint/redshift_valid (Redshift statements sqlglot does not parse among them).
Second table: each syntax checker on the valid Redshift statements (tests/data/lint/redshift_valid, the example
sql/, tests/data/lint/clean) and on the typos of tests/data/lint/typos: false positives, typos caught, time per
statement and its ratio to sqlglot alone (which is what DB001 was before it treated sqlglot's fallbacks as failures).
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sqlglot
from sqlglot.errors import ParseError, TokenError

from bench.generate import generate
from dbops.lint.checks import lint_files
from dbops.lint.rules import parse
from dbops.scripts.sources import FolderSource
from dbops.scripts.statements import Statement

ROOT = Path(__file__).resolve().parent.parent
LINT_DATA = ROOT / "tests" / "data" / "lint"
VALID = [LINT_DATA / "redshift_valid", ROOT / "sql", LINT_DATA / "clean"]

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


def redshift(folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    corpus = sorted((LINT_DATA / "redshift_valid").glob("*.sql"))
    for i in range(1, n + 1):
        source = corpus[(i - 1) % len(corpus)]
        (folder / f"V{i}__{source.stem.split('__', 1)[1]}.sql").write_text(source.read_text())


def measure(folder: Path, repeat: int) -> tuple[int, float, float, float]:
    """Statements, in-process lint time, whole command without the lint cache, and with a warm cache (best of `repeat`)."""
    files = FolderSource([str(folder)]).snapshot().files
    inside, whole, cached, statements = [], [], [], 0
    command = [sys.executable, "-m", "dbops.cli", "--locations", str(folder), "lint"]
    home = Path(tempfile.mkdtemp(prefix="dbops-bench-lint-home-"))
    try:
        for _ in range(repeat):
            started = time.perf_counter()
            catalog, _ = lint_files(files)
            inside.append(time.perf_counter() - started)
            statements = sum(len(m.statements) for m in catalog.migrations)
            whole.append(_timed(command, {**os.environ, "DBOPS_LINT_CACHE": "off"}))
            warm = {**os.environ, "DBOPS_HOME": str(home)}
            _timed(command, warm)  # fills the cache (once; later rounds find it full)
            cached.append(_timed(command, warm))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return statements, min(inside), min(whole), min(cached)


def _timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, env=env, check=False)
    return time.perf_counter() - started


# --- DB001's candidates ------------------------------------------------------------------------------

def corpus() -> tuple[list[Statement], list[Statement]]:
    """Valid statements (placeholders replaced as lint does) and the statements holding a `-- typo` line."""
    valid = [st for folder in VALID for st, _ in _statements(folder)]
    typos = [st for st, marks in _statements(LINT_DATA / "typos")
             if marks & set(range(st.line, st.line + st.sql.count("\n") + 1))]
    return valid, typos


def _statements(folder: Path) -> list[tuple[Statement, set[int]]]:
    """Each statement of a folder's scripts, with the lines of its script marked `-- typo`."""
    catalog, _ = lint_files(FolderSource([str(folder)]).snapshot().files)
    found = []
    for script in [*catalog.migrations, *catalog.callbacks]:
        marks = {n for n, line in enumerate(script.sql.splitlines(), 1) if "-- typo" in line}
        found += [(st, marks) for st in script.statements]
    return found


# DB001 before this change, as it was: sqlglot's Redshift parse after blanking three sqlglot gaps; a parse error
# fails, a fallback to a generic Command passes; ATTACH/DETACH policies were not parsed.
_GAPS_BEFORE = [
    (re.compile(r"^\s*CREATE\b", re.I), re.compile(r"\bSORTKEY\s+AUTO\b", re.I)),
    (re.compile(r"^\s*CREATE\b", re.I), re.compile(r"\b(DISTKEY|SORTKEY)\b(?!\s*\()", re.I)),
    (re.compile(r"^\s*ANALYZE\s+COMPRESSION\b", re.I), re.compile(r"\bCOMPRESSION\b", re.I)),
]
_OPAQUE_BEFORE = re.compile(r"\s*(ATTACH|DETACH)\s+(RLS|MASKING)\s+POLICY\b", re.I)


def sqlglot_alone(st: Statement) -> bool:
    if _OPAQUE_BEFORE.match(st.sql):
        return True
    sql = st.sql
    for applies, gap in _GAPS_BEFORE:
        if applies.match(sql):
            sql = gap.sub(lambda m: " " * len(m.group(0)), sql)
    try:
        sqlglot.parse_one(sql, read="redshift")
    except (ParseError, TokenError):
        return False
    return True


def db001_now(st: Statement) -> bool:
    return parse(st)[1] is None


def checkers() -> list[tuple[str, Callable[[Statement], bool]]]:
    found: list[tuple[str, Callable[[Statement], bool]]] = [
        ("sqlglot alone (before)", sqlglot_alone), ("DB001 now", db001_now)]
    try:
        import sqlfluff
        from sqlfluff.api.simple import APIParsingError

        def fluff(st: Statement) -> bool:
            try:
                sqlfluff.parse(st.sql, dialect="redshift")
            except APIParsingError:
                return False
            return True
        found.append((f"sqlfluff {sqlfluff.__version__} redshift", fluff))
    except ImportError:
        print("(sqlfluff not installed: uv run --with sqlfluff python -m bench.lint to compare it)")
    try:
        import pglast

        def postgres(st: Statement) -> bool:
            try:
                pglast.parse_sql(st.sql)
            except pglast.parser.ParseError:
                return False
            return True
        found.append((f"pglast {pglast.__version__} (PostgreSQL)", postgres))
    except ImportError:
        print("(pglast not installed: uv run --with pglast python -m bench.lint to compare it)")
    return found


def compare_checkers(repeat: int) -> None:
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    valid, typos = corpus()
    print(f"{'checker':>34} {'false positives':>16} {'typos caught':>13} {'µs/statement':>13} {'× before':>9}")
    base = None
    for name, ok in checkers():
        times = []
        for _ in range(1 if "sqlfluff" in name else repeat):
            started = time.perf_counter()
            rejected_valid = [st for st in valid if not ok(st)]
            caught = [st for st in typos if not ok(st)]
            times.append(time.perf_counter() - started)
        per = min(times) / (len(valid) + len(typos)) * 1e6
        base = base or per
        print(f"{name:>34} {f'{len(rejected_valid)}/{len(valid)}':>16} {f'{len(caught)}/{len(typos)}':>13} "
              f"{per:>13.0f} {per / base:>9.1f}")
        for st in rejected_valid[:40] if "DB001" in name or "sqlfluff" in name else []:
            print(f"{'':>36}rejects valid: {st.first_line[:90]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="number of scripts (default 1000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, best time kept")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="dbops-bench-lint-"))
    try:
        generate(root / "simple", args.n)
        heavy(root / "heavy", args.n)
        redshift(root / "redshift", args.n)
        print(f"{'set':>8} {'scripts':>8} {'statements':>11} {'lint (s)':>9} {'command (s)':>12} {'cached (s)':>11} {'× cached':>9}")
        for name in ("simple", "heavy", "redshift"):
            statements, inside, whole, cached = measure(root / name, args.repeat)
            print(f"{name:>8} {args.n:>8} {statements:>11} {inside:>9.2f} {whole:>12.2f} {cached:>11.2f} {whole / cached:>9.1f}")
        print("command: `dbops lint` without the lint cache (DBOPS_LINT_CACHE=off); cached: the same command again, every "
              "script's findings in the cache (process start included in both)")
        print("goal: 1,000 scripts under 2 s")
        print()
        compare_checkers(args.repeat)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
