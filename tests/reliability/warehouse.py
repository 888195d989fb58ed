"""A migration set whose effects can be checked against the history table at any instant."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.reliability.harness import TABLE


def step_script(i: int, work: int = 0) -> str:
    """V<i>: a table of i rows, a trap after each statement, and `work` rows of busywork (so timed kills land inside)."""
    pause = f"select count(*) from generate_series(1, {work});\n" if work else ""
    return (
        f"create table t_{i} (id int primary key, note varchar(40));\n"
        f"select trap('V{i}:statement');\n"
        f"insert into t_{i} select g, 'step {i}' from generate_series(1, {i}) g;\n"
        f"{pause}"
        f"select trap('V{i}:after');\n"
    )


SUMMARY = (
    "create or replace view summary as\n"
    "select count(*) as tables from information_schema.tables where table_name like 't\\_%';\n"
    "select trap('R:statement');\n"
)


def step_name(i: int) -> str:
    return f"V{i}__step_{i}.sql"


def write_set(folder: Path, count: int, work: int = 0) -> list[str]:
    """`count` versioned scripts plus one repeatable view; returns the scripts in the order they apply."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, count + 1):
        (folder / step_name(i)).write_text(step_script(i, work))
    (folder / "R__summary.sql").write_text(SUMMARY)
    return [step_name(i) for i in range(1, count + 1)] + ["R__summary.sql"]


@dataclass
class State:
    """History, audit and the objects the scripts create, read in one snapshot."""

    history: list[tuple[int, str, bool]]
    tables: dict[str, int]
    has_summary: bool
    audit: Counter

    @property
    def applied(self) -> list[str]:
        return [script for _, script, success in self.history if success]


def read_state(pg_url: str) -> State:
    """Everything in one repeatable-read snapshot: a single instant, even while an orphaned backend commits.

    Catalog lookups such as to_regclass() see the latest commit, not the snapshot: read pg_class instead.
    """
    with psycopg.connect(pg_url) as conn:
        conn.execute("set transaction isolation level repeatable read")
        relations = dict(conn.execute(
            "select c.relname, c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = 'public' and c.relkind in ('r', 'v')"
        ).fetchall())
        history = conn.execute(
            f"select installed_rank, script, success from {TABLE} order by installed_rank"
        ).fetchall() if TABLE in relations else []
        audit = Counter(
            script for (script,) in conn.execute("select script from dbops_audit where status = 'success'").fetchall()
        ) if "dbops_audit" in relations else Counter()
        names = [name for name, kind in relations.items() if kind == "r" and name.startswith("t_")]
        tables = {name: conn.execute(f'select count(*) from "{name}"').fetchone()[0] for name in names}
    return State(history=history, tables=tables, has_summary=relations.get("summary") == "v", audit=audit)


def check_consistent(state: State, count: int) -> None:
    """No table without its history row, no row without its table, no half-applied script, one audit row each."""
    scripts = [script for _, script, _ in state.history]
    assert len(scripts) == len(set(scripts)), f"a script is recorded twice: {scripts}"
    assert all(success for _, _, success in state.history), f"failed rows after a crash: {state.history}"
    applied = set(state.applied)
    for i in range(1, count + 1):
        recorded, table = step_name(i) in applied, f"t_{i}"
        assert recorded == (table in state.tables), f"{step_name(i)} recorded={recorded} but table {table} exists={table in state.tables}"
        if recorded:
            assert state.tables[table] == i, f"{table} has {state.tables[table]} rows, expected {i}"
    assert ("R__summary.sql" in applied) == state.has_summary, "view summary and its history row disagree"
    assert state.audit == Counter({script: 1 for script in applied}), f"audit rows {dict(state.audit)} for applied {sorted(applied)}"
