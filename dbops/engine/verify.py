"""Running migration checks on a session: each query must return no rows; up to 10 offending rows are kept."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dbops.errors import MigrationFailed
from dbops.scripts.checks import Check
from dbops.targets.base import Session, SqlError

SHOWN_ROWS = 10
CELL_CHARS = 60


@dataclass(frozen=True)
class CheckOutcome:
    """What one check found: the offending rows (at most SHOWN_ROWS, `more` when there were others), or an error."""

    check: Check
    columns: list[str] = field(default_factory=list)
    rows: list[tuple] = field(default_factory=list)
    more: bool = False
    error: str = ""

    @property
    def passed(self) -> bool:
        return not self.rows and not self.error

    def summary(self) -> str:
        """One line: `sql/V3__x.sql.check:4: check "no orphans" failed: 2 row(s), expected none`."""
        if self.passed:
            return f"{self.check.where}: check {self.check.title!r} passed"
        if self.error:
            return f"{self.check.where}: check {self.check.title!r} could not run: {self.error}"
        count = f"more than {SHOWN_ROWS}" if self.more else str(len(self.rows))
        return f"{self.check.where}: check {self.check.title!r} failed: {count} row(s), expected none"

    def report(self) -> str:
        """The summary, then the offending rows as a plain table (the first SHOWN_ROWS)."""
        if self.passed or self.error:
            return self.summary()
        return self.summary() + "\n" + "\n".join("    " + line for line in text_table(self.columns, self.rows, self.more))


class ChecksFailed(Exception):
    """Checks of a migration found rows (or could not run); carries every outcome that did not pass."""

    def __init__(self, failures: list[CheckOutcome]) -> None:
        self.failures = failures
        super().__init__("\n".join(f.report() for f in failures))

    @property
    def first(self) -> CheckOutcome:
        return self.failures[0]


class ChecksRejected(MigrationFailed):
    """A migration failed its checks (exit 1); `failures` are the checks that did not pass, with their rows."""

    def __init__(self, message: str, path: str | None = None, failures: list[CheckOutcome] | None = None) -> None:
        super().__init__(message, path=path)
        self.failures = failures or []


def run_check(session: Session, check: Check) -> CheckOutcome:
    """Run one check on the session, in whatever transaction it has open; an SQL error is the outcome's error.

    The query is wrapped so the server stops after SHOWN_ROWS + 1 rows (a check may select millions)."""
    wrapped = f"select * from (\n{check.sql}\n) as dbops_check limit {SHOWN_ROWS + 1}"
    try:
        columns, rows = session.query_columns(wrapped)
    except SqlError as exc:
        return CheckOutcome(check, error=str(exc))
    return CheckOutcome(check, columns, rows[:SHOWN_ROWS], more=len(rows) > SHOWN_ROWS)


def run_checks(session: Session, checks: list[Check]) -> list[CheckOutcome]:
    """Every check in order; one that errors ends the list (the transaction it ran in is aborted)."""
    outcomes: list[CheckOutcome] = []
    for check in checks:
        outcome = run_check(session, check)
        outcomes.append(outcome)
        if outcome.error:
            break
    return outcomes


class Verifier:
    """The hook a session calls inside a migration's transaction (targets.base.Verify): runs the checks, keeps
    their outcomes, and raises ChecksFailed when one does not pass."""

    def __init__(self, session: Session, checks: list[Check]) -> None:
        self.session = session
        self.checks = checks
        self.outcomes: list[CheckOutcome] = []

    def __call__(self) -> None:
        self.outcomes = run_checks(self.session, self.checks)
        failures = [o for o in self.outcomes if not o.passed]
        if failures:
            raise ChecksFailed(failures)


def cell(value: Any) -> str:
    text = "NULL" if value is None else str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


def text_table(columns: list[str], rows: list[tuple], more: bool = False) -> list[str]:
    """Rows as aligned plain-text lines with a header (what a terminal, a log and an audit row show)."""
    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    if more:
        lines.append(f"… (more rows; the first {SHOWN_ROWS} are shown)")
    return lines


def markdown_table(columns: list[str], rows: list[tuple], more: bool = False) -> str:
    """Rows as a Markdown table (what the Dagster UI shows)."""
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(esc(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(esc(cell(v)) for v in row) + " |" for row in rows]
    if more:
        lines.append(f"\n… more rows; the first {SHOWN_ROWS} are shown")
    return "\n".join(lines)
