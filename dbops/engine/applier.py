"""Apply scripts on the working session and record them: one at a time, or in batches where the driver can."""
from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import NoReturn

from dbops.engine.history import FAILED, STARTED, SUCCESS, AuditRecord, History
from dbops.engine.locks import RunLock
from dbops.engine.plan import PlanEntry
from dbops.engine.search_path import changes_search_path
from dbops.engine.verify import CheckOutcome, ChecksFailed, ChecksRejected, Verifier, run_checks
from dbops.errors import MigrationFailed
from dbops.scripts.migrations import Catalog, Migration, line_of
from dbops.scripts.sources import CommitInfo
from dbops.scripts.statements import Statement, statement_at
from dbops.targets.base import BatchItem, BatchResult, ConnectionLost, Session, SqlError

BATCH_SCRIPTS = 100  # transactional scripts sent in one round trip (and one commit) where the driver can
BATCH_FIRST = 10
BATCH_BYTES = 1 << 20
BATCH_ONLY_ERRORS = ("55P04",)  # "unsafe use of new enum value": only fails because scripts share a transaction


@dataclass(frozen=True)
class RunInfo:
    """Who and what started a run, recorded in the audit table."""

    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    source: str = "cli"
    commit: CommitInfo | None = None


@dataclass
class ScriptResult:
    """What happened to one script."""

    migration: Migration
    status: str
    execution_ms: int
    statements: int
    rows_affected: int
    in_transaction: bool
    error: str = ""
    checks: list[CheckOutcome] = field(default_factory=list)  # the script's checks, all passed

    @property
    def script(self) -> str:
        return self.migration.script


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _lost_outcome(migration: Migration, transactional: bool) -> str:
    """What a lost connection means for the script that was running, for the message."""
    if transactional:
        return (
            f"Its transaction was not committed, unless the connection broke during COMMIT: `dbops info` shows whether "
            f"{migration.script} was recorded. Migrate again once the database is reachable."
        )
    return (
        "It runs outside a transaction, so some of its statements may have been applied; `dbops info` shows it as "
        "Failed if its row was written. Undo what it did by hand if needed, run `dbops repair`, and migrate again."
    )


def _outcomes(verifier: Verifier | None) -> list[CheckOutcome]:
    return verifier.outcomes if verifier is not None else []


def _statements_of(migration: Migration) -> Callable[[], list[str]]:
    return lambda: [s.sql for s in migration.statements]


def _statement_at(migration: Migration, offset: int) -> Statement | None:
    """The statement that holds character `offset` of the script (None when it holds none)."""
    return statement_at(migration.sql, line_of(migration.sql, offset))


def split_ahead(entries: list[PlanEntry]) -> None:
    """Parse the scripts on a helper thread, in order, while the main thread waits on the database."""

    def work() -> None:
        for entry in entries:
            if entry.migration is not None:
                entry.migration.statements

    threading.Thread(target=work, name="dbops-split-ahead", daemon=True).start()


@dataclass(frozen=True)
class ApplyContext:
    """What the applier needs from the command that runs it."""

    catalog: Catalog
    file_commits: dict[str, CommitInfo]
    target_url: str
    run_lock: RunLock | None = None
    search_path: str | None = None  # the SET that restores the default schema after a script changes it


class Applier:
    """Runs scripts on the working session and records them."""

    def __init__(self, context: ApplyContext, session: Session, history: History, run: RunInfo) -> None:
        self.context = context
        self.session = session
        self.history = history
        self.run = run
        self.rank = history.next_rank()
        session.commit()

    def callbacks(self, event: str) -> None:
        for callback in self.context.catalog.callbacks_for(event):
            try:
                for statement in callback.statements:
                    self.session.execute(statement.sql)
                self.session.commit()
            except SqlError as exc:
                self.session.rollback()
                raise MigrationFailed(f"{callback.path}: {event} callback failed: {exc}", path=callback.path) from None
            self.restore_search_path(callback.sql)

    def restore_search_path(self, sql: str) -> None:
        """After SQL that may have changed the search path, put the default schema back first, as Flyway
        starts every migration on it: a script that changes the path changes it for itself only."""
        if self.context.search_path and changes_search_path(sql):
            self.session.execute(self.context.search_path)
            self.session.commit()

    def apply_all(self, migrations: list[Migration]) -> Iterator[ScriptResult]:
        """Apply in order; consecutive transactional scripts go in batches where the driver can."""
        dialect = self.session.dialect
        batching = self.session.supports_batches and not (
            self.context.catalog.callbacks_for("beforeEachMigrate") or self.context.catalog.callbacks_for("afterEachMigrate")
        )
        index = 0
        limit = BATCH_FIRST  # a small first batch gets the database working while later scripts are parsed
        while index < len(migrations):
            batch: list[Migration] = []
            size = 0
            while batching and index + len(batch) < len(migrations) and len(batch) < limit and size < BATCH_BYTES:
                candidate = migrations[index + len(batch)]
                if len(candidate.sql) > BATCH_BYTES or not candidate.in_transaction_on(dialect) or changes_search_path(candidate.sql):
                    break  # runs alone: streamed, outside a transaction, or followed by the default schema's restore
                batch.append(candidate)
                size += len(candidate.sql)
            if len(batch) > 1:
                limit = BATCH_SCRIPTS
                results, outcome = self._apply_batch(batch)
                yield from results
                index += len(results)
                if outcome.rejected is not None:
                    self._checks_failed(migrations[index], outcome.rejected, True, _now())
                if outcome.error is not None and outcome.error.sqlstate not in BATCH_ONLY_ERRORS:
                    migration = migrations[index]
                    index = outcome.failed_statement
                    if outcome.failed_offset is not None:
                        failed = _statement_at(migration, outcome.failed_offset)
                    else:
                        failed = migration.statements[index] if index is not None else None
                    self._fail(migration, outcome.error, failed, index or 0, True, _now())
                if len(results) < len(batch):
                    batching = False  # the script the batch could not apply runs alone next
                continue
            yield self.apply(migrations[index])
            index += 1

    def _apply_batch(self, batch: list[Migration]) -> tuple[list[ScriptResult], BatchResult]:
        """Several scripts in one round trip; each commits with its rows, or not at all (a prefix commits)."""
        if self.context.run_lock is not None:
            self.context.run_lock.verify(before=batch[0].path)
        started = _now()
        first = self.rank

        def bookkeeping_for(offset: int, migration: Migration):
            return lambda elapsed: [
                self._record_statement(first + offset, migration, elapsed, success=True),
                self._audit_statement(migration, SUCCESS, "", started, finished=elapsed is not None),
            ]

        verifiers = [self._verifier(m) for m in batch]
        items = [BatchItem(m.sql, _statements_of(m), bookkeeping_for(k, m), v) for k, (m, v) in enumerate(zip(batch, verifiers))]
        try:
            outcome = self.session.run_batch(items)
        except ConnectionLost as exc:
            names = f"{batch[0].path} … {batch[-1].script}"
            raise ConnectionLost(
                f"{names}: {exc}\nThese {len(batch)} scripts were sent in one transaction, which was not committed "
                f"unless the connection broke during COMMIT: `dbops info` shows whether they were recorded. "
                "Migrate again once the database is reachable."
            ) from None
        applied = batch[: outcome.committed]
        results: list[ScriptResult] = []
        if applied:
            times = self.history.execution_times(first, first + len(applied) - 1)
            self.session.commit()
            rows = outcome.rows or [0] * len(applied)
            counts = outcome.statement_counts or [len(m.statements) for m in applied]
            results = [
                ScriptResult(m, "success", times.get(first + k, 0), counts[k], rows[k], True, checks=_outcomes(verifiers[k]))
                for k, m in enumerate(applied)
            ]
            self.rank += len(applied)
        return results, outcome

    def apply(self, migration: Migration) -> ScriptResult:
        if self.context.run_lock is not None:
            self.context.run_lock.verify(before=migration.path)
        self.callbacks("beforeEachMigrate")
        transactional = migration.in_transaction_on(self.session.dialect)
        try:
            result = self._apply_in_transaction(migration) if transactional else self._apply_in_autocommit(migration)
        except ConnectionLost as exc:
            raise ConnectionLost(f"{migration.path}: {exc}\n{_lost_outcome(migration, transactional)}") from None
        self.rank += 1
        self.restore_search_path(migration.sql)
        self.callbacks("afterEachMigrate")
        return result

    def _apply_in_transaction(self, migration: Migration) -> ScriptResult:
        """The statements, the history row and the audit row commit together or not at all.

        So no attempt that changed the database goes unaudited: killed before COMMIT, the attempt changed nothing
        (and leaves no row); a failure is rolled back first, then audited on its own.
        """
        started = _now()

        def bookkeeping(elapsed: int | None) -> list[tuple[str, tuple]]:
            return [
                self._record_statement(self.rank, migration, elapsed, success=True),
                self._audit_statement(migration, SUCCESS, "", started, finished=elapsed is not None),
            ]

        verify = self._verifier(migration)
        try:
            if len(migration.sql) > BATCH_BYTES:  # streamed where the driver can: split only to locate a failure
                outcome = self.session.run_script(migration.sql, _statements_of(migration), bookkeeping, verify)
                count = len(outcome.rows)
            else:
                outcome = self.session.run_transaction([s.sql for s in migration.statements], bookkeeping, verify)
                count = len(migration.statements)
        except ChecksFailed as exc:
            self._checks_failed(migration, exc, True, started)
        if outcome.error is not None:
            failed = None
            if outcome.failed_offset is not None:
                failed = _statement_at(migration, outcome.failed_offset)
            elif outcome.failed_line is not None:
                failed = statement_at(migration.sql, outcome.failed_line)
            elif outcome.failed_index is not None and migration.statements:
                failed = migration.statements[outcome.failed_index]
            self._fail(migration, outcome.error, failed, outcome.failed_index or 0, True, started)
        rows = sum(max(r, 0) for r in outcome.rows)
        return ScriptResult(migration, "success", outcome.elapsed_ms, count, rows, True, checks=_outcomes(verify))

    def _apply_in_autocommit(self, migration: Migration) -> ScriptResult:
        """Statement by statement, after a failed history row and a STARTED audit row that commit together.

        A crash mid-way then shows truthfully: Failed in `info`, and an audit row the next run marks interrupted.
        """
        started = _now()
        clock = time.perf_counter()
        statements = migration.statements
        rows = done = 0
        lost = False
        self._mark_started(migration, started)
        self.session.set_autocommit(True)
        try:
            for statement in statements:
                rows += max(self._execute(statement), 0)
                done += 1
        except SqlError as exc:
            self._fail(migration, exc, statements[done] if done < len(statements) else None, done, False, started)
        except ConnectionLost:
            lost = True  # nothing to switch back on a dead connection; report the loss itself
            raise
        finally:
            if not lost:
                self.session.set_autocommit(False)
        elapsed = int((time.perf_counter() - clock) * 1000)
        outcomes = self._check_after(migration, started)
        self._mark_done(migration, elapsed, started)
        return ScriptResult(migration, "success", elapsed, len(statements), rows, False, checks=outcomes)

    def _verifier(self, migration: Migration) -> Verifier | None:
        return Verifier(self.session, migration.checks) if migration.checks else None

    def _check_after(self, migration: Migration, started: datetime) -> list[CheckOutcome]:
        """The checks of a script that ran in autocommit, in a transaction of their own that is rolled back."""
        if not migration.checks:
            return []
        outcomes = run_checks(self.session, migration.checks)
        self.session.rollback()
        failures = [o for o in outcomes if not o.passed]
        if failures:
            self._checks_failed(migration, ChecksFailed(failures), False, started)
        return outcomes

    def _checks_failed(self, migration: Migration, exc: Exception, transactional: bool, started: datetime) -> NoReturn:
        """A check did not pass: audit the attempt as failed, naming the check, and raise ChecksRejected.

        In a transaction the script was rolled back with its checks; in autocommit it stays applied, and its
        history row stays failed (success=false), so later runs stop until the data is fixed and `dbops repair` ran.
        """
        if not isinstance(exc, ChecksFailed):
            raise exc
        report = str(exc)
        try:
            if transactional:
                self.session.rollback()
                self.session.execute(*self._audit_statement(migration, FAILED, report, started))
            else:
                self.session.execute(*self.history.outcome_statement(self.run.run_id, migration.script, FAILED, report, _now()))
            self.session.commit()
        except SqlError:
            pass
        self.callbacks_quietly("afterMigrateError")
        if transactional:
            outcome = (
                "Nothing of this script was applied (its transaction was rolled back with the checks); fix the script "
                "or the data it relies on, and migrate again."
            )
        else:
            outcome = (
                f"The script runs outside a transaction: all {len(migration.statements)} statement(s) were applied and "
                "it is recorded as failed. Fix what the check found (or undo the change) by hand, then run `dbops repair` "
                "and migrate again (the script runs again)."
            )
        indented = "\n".join("  " + line for line in report.splitlines())
        raise ChecksRejected(
            f"{exc.first.check.where}: migration {migration.label} failed its check:\n{indented}\n{outcome}",
            path=migration.path,
            failures=exc.failures,
        )

    def _mark_started(self, migration: Migration, started: datetime) -> None:
        """The failed history row and the STARTED audit row, in one transaction: neither exists without the other."""

        def bookkeeping(_: int | None) -> list[tuple[str, tuple]]:
            return [
                self._record_statement(self.rank, migration, 0, success=False),
                self.history.audit_statement(self._audit_record(migration, STARTED, "", started, finished_at=started)),
            ]

        outcome = self.session.run_transaction([], bookkeeping)
        if outcome.error is not None:  # nothing ran and nothing was recorded: a failure like a rolled-back script's
            self._fail(migration, outcome.error, None, 0, True, started)

    def _mark_done(self, migration: Migration, elapsed: int, started: datetime) -> None:
        """The success flag and the audit outcome commit together: a crash between them leaves both unfinished."""

        def bookkeeping(_: int | None) -> list[tuple[str, tuple]]:
            return [
                self.history.update_success_statement(self.rank, elapsed),
                self.history.outcome_statement(self.run.run_id, migration.script, SUCCESS, "", _now()),
            ]

        outcome = self.session.run_transaction([], bookkeeping)
        if outcome.error is not None:
            self._fail(migration, outcome.error, None, len(migration.statements), False, started)

    def _execute(self, statement: Statement) -> int:
        return self.session.execute(statement.sql)

    def _record(self, rank: int, migration: Migration, elapsed: int, success: bool) -> None:
        self.session.execute(*self._record_statement(rank, migration, elapsed, success))

    def _record_statement(self, rank: int, migration: Migration, elapsed: int | None, success: bool) -> tuple[str, tuple]:
        return self.history.insert_statement(
            rank,
            migration.version.text if migration.version else None,
            migration.description,
            migration.history_type,
            migration.script,
            migration.checksum,
            elapsed,
            success,
        )

    def _audit_statement(
        self, migration: Migration, status: str, error: str, started: datetime, finished: bool = True
    ) -> tuple[str, tuple]:
        """An audit row finished now (`finished`), or at the server's clock when the row is sent."""
        return self.history.audit_statement(
            self._audit_record(migration, status, error, started, finished_at=_now() if finished else None)
        )

    def _audit_record(
        self, migration: Migration, status: str, error: str, started: datetime, finished_at: datetime | None
    ) -> AuditRecord:
        commit = self.context.file_commits.get(migration.path) or self.run.commit or CommitInfo(id="")
        return AuditRecord(
            run_id=self.run.run_id,
            source=self.run.source,
            commit_id=commit.id,
            commit_author=commit.author,
            commit_message=commit.message,
            script=migration.script,
            version=migration.version.text if migration.version else None,
            checksum=migration.checksum,
            status=status,
            error=error,
            started_at=started,
            finished_at=finished_at,
            installed_by=self.session.user,
            target=self.context.target_url,
        )

    def _fail(
        self, migration: Migration, exc: SqlError, failed: Statement | None, done: int, transactional: bool, started: datetime
    ) -> NoReturn:
        where = f"{migration.path}:{failed.line}" if failed else migration.path
        statement = f" in statement `{failed.first_line}`" if failed else ""
        error = f"{where}: {exc}"
        try:
            if transactional:  # rolled back: nothing changed, and this row is the attempt's only trace
                self.session.rollback()
                self.session.execute(*self._audit_statement(migration, FAILED, error, started))
            else:  # the attempt's STARTED row gets its outcome
                self.session.execute(*self.history.outcome_statement(self.run.run_id, migration.script, FAILED, error, _now()))
            self.session.commit()
        except SqlError:
            pass
        self.callbacks_quietly("afterMigrateError")
        if transactional:
            outcome = "Nothing of this script was applied (its transaction was rolled back); fix it and migrate again."
        else:
            outcome = (
                f"The script runs outside a transaction: {done} of {len(migration.statements)} statement(s) were applied "
                "and it is recorded as failed. Undo what it did by hand if needed, then run `dbops repair` and migrate again."
            )
        raise MigrationFailed(f"{where}: migration {migration.label} failed{statement}:\n  {exc}\n{outcome}", path=migration.path)

    def callbacks_quietly(self, event: str) -> None:
        try:
            self.callbacks(event)
        except MigrationFailed:
            pass
