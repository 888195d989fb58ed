"""How results reach the user: rich tables on a terminal, plain lines in a pipe, JSON on request."""
from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from dbops.engine.applier import ScriptResult
from dbops.engine.history import FAILED, INTERRUPTED, Attempt
from dbops.engine.plan import Plan, PlanEntry
from dbops.engine.verify import CheckOutcome
from dbops.scripts.migrations import RowType
from dbops.targets.base import Dialect


def attempt_json(attempt: Attempt | None) -> dict[str, Any] | None:
    """A script's last failed attempt, as `info --json` gives it (times in UTC)."""
    if attempt is None:
        return None
    return {
        "at": attempt.at.isoformat(sep=" ") if attempt.at else None,
        "status": attempt.status,
        "run_id": attempt.run_id,
        "source": attempt.source,
        "commit": attempt.commit,
        "error": attempt.first_line,
    }


OUTCOMES = {FAILED: "failed", INTERRUPTED: "was interrupted"}


def describe_attempt(entry: PlanEntry) -> str:
    """One line: what became of the script's last attempt, when, in which run and commit, and the error."""
    attempt = entry.last_failure
    assert attempt is not None
    outcome = OUTCOMES.get(attempt.status, f"has no recorded outcome ({attempt.status}: still running, or interrupted)")
    origin = ", ".join(part for part in (
        f"run {attempt.run_id}" if attempt.run_id else "", attempt.source, f"commit {attempt.commit}" if attempt.commit else ""
    ) if part)
    when = f" at {attempt.at:%Y-%m-%d %H:%M:%S} UTC" if attempt.at else ""
    return f"{entry.script} is {entry.state}: its last attempt {outcome}{when} ({origin}): {attempt.first_line}"


def entry_json(entry: PlanEntry) -> dict[str, Any]:
    """One `info --json` migration record."""
    row = entry.applied
    record: dict[str, Any] = {
        "version": entry.version,
        "description": entry.description,
        "type": entry.type,
        "script": entry.script,
        "checksum": entry.checksum,
        "state": entry.state,
        "installed_rank": row.installed_rank if row else None,
        "installed_on": row.installed_on.isoformat(sep=" ") if row and row.installed_on else None,
        "execution_time_ms": row.execution_time if row else None,
        "last_failure": attempt_json(entry.last_failure),
    }
    if entry.problems:
        record["problems"] = entry.problems
    return record


class Console:
    """Writes tables and messages; results on stdout, logs on stderr."""

    def __init__(self, as_json: bool = False, verbose: bool = False) -> None:
        self.as_json = as_json
        self.verbose = verbose
        self.tty = sys.stdout.isatty() and not as_json
        self._rich = None
        if self.tty:
            from rich.console import Console as RichConsole

            self._rich = RichConsole(highlight=False)

    def log(self, message: str) -> None:
        """A progress message: stderr, so stdout stays clean for --json."""
        print(message, file=sys.stderr, flush=True)

    def result(self, message: str) -> None:
        if self.as_json:
            return
        if self._rich:
            self._rich.print(message, markup=False)
        else:
            print(message, flush=True)

    def json(self, document: dict[str, Any]) -> None:
        print(json.dumps(document, indent=2, default=str))

    def error(self, message: str, exit_code: int, **details: Any) -> None:
        """`error: …` on stderr (the message already redacted); with --json also one document on stdout."""
        print(f"error: {message}", file=sys.stderr, flush=True)
        if self.as_json:
            self.json({"error": message, "exit_code": exit_code, **details})

    def table(self, title: str, columns: list[str], rows: Iterable[Iterable[Any]]) -> None:
        rows = [["" if v is None else str(v) for v in row] for row in rows]
        if self._rich:
            from rich.table import Table

            table = Table(title=title, title_justify="left")
            for column in columns:
                table.add_column(column)
            for row in rows:
                table.add_row(*row)
            self._rich.print(table)
            return
        print(title)
        widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
        print("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip())
        for row in rows:
            print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())

    def plan(self, plan: Plan, target: str, ssl: str, dialect: Dialect | None = None) -> None:
        self.result(f"Target: {target} (SSL: {ssl})")
        self.table(
            "Migrations",
            ["Category", "Version", "Description", "Type", "Installed On", "State"],
            (
                [
                    "Repeatable" if e.version is None and e.type in (RowType.SQL, "") else "Versioned",
                    e.version or "",
                    e.description,
                    e.type,
                    f"{e.applied.installed_on:%Y-%m-%d %H:%M:%S}" if e.applied and e.applied.installed_on else "",
                    e.state + (" (in autocommit)" if e.migration and e.is_pending and not e.migration.in_transaction_on(dialect) else ""),
                ]
                for e in plan.entries
            ),
        )
        failed = plan.failed_attempts()
        if failed:
            self.table(
                "Last failed attempts (from the audit table; times in UTC)",
                ["Script", "State", "Attempt", "At", "Run", "Source", "Commit", "Error"],
                (
                    [e.script, e.state, a.status, f"{a.at:%Y-%m-%d %H:%M:%S}" if a.at else "", a.run_id, a.source,
                     a.commit[:12], a.first_line]
                    for e in failed
                    for a in [e.last_failure]
                    if a is not None
                ),
            )
        for problem in plan.problems():
            self.result(f"! {problem}")

    @contextmanager
    def progress(self, total: int) -> Iterator[Any]:
        """A progress bar on a terminal; a no-op elsewhere."""
        if not self._rich or total == 0:
            yield lambda description: None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=self._rich, transient=True
        ) as bar:
            task = bar.add_task("migrating", total=total)
            yield lambda description: bar.update(task, advance=1, description=description)


def result_json(result: ScriptResult) -> dict[str, Any]:
    m = result.migration
    return {
        "version": m.version.text if m.version else None,
        "description": m.description,
        "script": m.script,
        "checksum": m.checksum,
        "status": result.status,
        "execution_time_ms": result.execution_ms,
        "statements": result.statements,
        "rows_affected": result.rows_affected,
        "in_transaction": result.in_transaction,
    }


def print_results(console: Console, results: list[ScriptResult], target: str, elapsed: float, run_id: str | None) -> None:
    """The migrate summary shared by --direct and Dagster runs."""
    if console.as_json:
        console.json({"applied": [result_json(r) for r in results], "target": target, "run_id": run_id, "seconds": round(elapsed, 3)})
        return
    if not results:
        console.result(f"Nothing to migrate: {target} is up to date.")
    else:
        console.table(
            "Applied",
            ["Version", "Description", "Script", "Statements", "Rows", "Time (ms)", "Mode"],
            (
                [r.migration.version or "", r.migration.description, r.migration.script, r.statements, r.rows_affected,
                 r.execution_ms, "transaction" if r.in_transaction else "autocommit"]
                for r in results
            ),
        )
        console.result(f"Applied {len(results)} migration(s) to {target} in {elapsed:.2f}s.")
    if run_id:
        console.result(f"Dagster run: {run_id}")


def check_json(migration_script: str, outcome: CheckOutcome) -> dict[str, Any]:
    """One check's outcome in --json output: where it is, whether it passed, and the offending rows."""
    check = outcome.check
    return {
        "script": migration_script,
        "check": check.path,
        "line": check.line,
        "name": check.name,
        "title": check.title,
        "always": check.always,
        "passed": outcome.passed,
        "columns": outcome.columns,
        "rows": [list(row) for row in outcome.rows],
        "more_rows": outcome.more,
        "error": outcome.error,
    }


def print_checks(console: Console, outcomes: list[tuple[str, CheckOutcome]], target: str) -> None:
    """`dbops check`: one line per check, the offending rows under each failure, then a summary."""
    failed = [o for _, o in outcomes if not o.passed]
    if console.as_json:
        console.json({"checks": [check_json(s, o) for s, o in outcomes], "passed": not failed, "target": target})
        return
    for _, outcome in outcomes:
        console.result(("ok    " if outcome.passed else "FAILED ") + outcome.report())
    if not outcomes:
        console.result(f"No checks to run on {target}: no applied migration has one (marked -- dbops:always, or any with --all).")
        return
    console.result(f"{len(outcomes)} check(s) on {target}: {len(outcomes) - len(failed)} passed, {len(failed)} failed.")
