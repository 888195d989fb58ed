"""plan / migrate / validate / baseline / repair / undo, under the run lock."""
from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from typing import NoReturn

from dbops.errors import ConfigError, MigrationFailed, ValidationFailed
from dbops.history import BASELINE_DESCRIPTION, AuditRecord, History
from dbops.locks import RunLock, make_lock
from dbops.migrations import BASELINE, REPEATABLE, VERSIONED, Catalog, Migration, PlaceholderContext, Version, discover
from dbops.plan import FAILED, MISSING, Plan, PlanEntry, build_plan
from dbops.sources import CommitInfo, FolderSource, Snapshot
from dbops.statements import Statement
from dbops.targets.base import BatchResult, ConnectionLost, Session, SqlError, Target

DEFAULT_TABLE = "flyway_schema_history"
BATCH_SCRIPTS = 100  # transactional scripts sent in one round trip (and one commit) where the driver can
BATCH_FIRST = 10
BATCH_BYTES = 1 << 20
BATCH_ONLY_ERRORS = ("55P04",)  # "unsafe use of new enum value": only fails because scripts share a transaction


@dataclass
class Settings:
    """Everything that shapes a run besides the target and the scripts."""

    locations: list[str] = field(default_factory=lambda: ["sql"])
    schema: str = "public"
    table: str = DEFAULT_TABLE
    placeholders: dict[str, str] = field(default_factory=dict)
    ignore_invalid_names: bool = False
    out_of_order: bool = False
    mixed: bool = False
    target_version: str | None = None
    lock_timeout: float = 600.0
    statement_timeout: float | None = None


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

    @property
    def script(self) -> str:
        return self.migration.script


Event = Callable[[str], None]


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Engine:
    """Applies one snapshot of scripts to one target."""

    def __init__(self, target: Target, settings: Settings | None = None, snapshot: Snapshot | None = None) -> None:
        self.target = target
        self.settings = settings or Settings()
        self._snapshot = snapshot
        self.dialect: str | None = None
        self.run_lock: RunLock | None = None

    @cached_property
    def snapshot(self) -> Snapshot:
        return self._snapshot or FolderSource(self.settings.locations).snapshot()

    @cached_property
    def catalog(self) -> Catalog:
        """The scripts, discovered once; every naming or placeholder problem raises here."""
        context = PlaceholderContext(
            values=self.settings.placeholders,
            schema=self.settings.schema,
            user=self.target.user,
            database=self.target.database,
            table=self.settings.table,
        )
        return discover(self.snapshot.files, context, self.settings.ignore_invalid_names)

    @cached_property
    def target_version(self) -> Version | None:
        raw = self.settings.target_version
        if raw in (None, "", "latest"):
            return None
        try:
            return Version.parse(raw.lstrip("Vv"))
        except ValueError:
            raise ConfigError(f"--target {raw}: not a version; use digits separated by . or _") from None

    @contextmanager
    def session(self) -> Iterator[Session]:
        session = self.target.connect()
        try:
            yield session
        finally:
            session.close()

    def _history(self, session: Session) -> History:
        return History(session, self.settings.schema, self.settings.table)

    def _plan(self, history: History) -> Plan:
        exists = history.exists()
        rows = history.rows() if exists else []
        return build_plan(
            self.catalog, rows, out_of_order=self.settings.out_of_order, target=self.target_version, has_history=exists
        )

    def plan(self) -> Plan:
        """Every script and history row with its state (reads only)."""
        self.catalog
        with self.session() as session:
            self.dialect = session.dialect
            plan = self._plan(self._history(session))
            session.rollback()
            return plan

    def validate(self, plan: Plan | None = None) -> Plan:
        """Raise ValidationFailed when applied migrations differ from the scripts."""
        plan = plan or self.plan()
        problems = plan.problems()
        if problems:
            raise ValidationFailed("validation failed:\n  " + "\n  ".join(problems))
        return plan

    @contextmanager
    def locked(self, on_event: Event | None = None) -> Iterator[tuple[Session, History]]:
        """The run lock plus a working session with the history tables in place."""
        lock = make_lock(self.target, self.settings.schema, self.settings.table)
        lock.acquire(self.settings.lock_timeout, on_event)
        self.run_lock = lock
        try:
            if lock.waited > 1 and on_event:
                on_event(f"got the run lock after waiting {lock.waited:.1f}s")
            with self.session() as session:
                lock.guard(session, on_event)
                history = self._history(session)
                history.ensure(schema_created=lock.created_schema)
                if self.settings.statement_timeout:
                    session.execute(f"set statement_timeout to {int(self.settings.statement_timeout * 1000)}")
                    session.commit()
                yield session, history
        finally:
            self.run_lock = None
            lock.release()

    def check_selection(self, pending: list[PlanEntry], select: set[str] | None) -> list[PlanEntry]:
        """Pending entries to apply; selecting a script whose pending predecessor is not selected raises."""
        if select is None:
            return pending
        chosen: list[PlanEntry] = []
        skipped: PlanEntry | None = None
        for entry in pending:
            assert entry.migration is not None
            if entry.migration.script in select:
                if skipped is not None:
                    raise ConfigError(
                        f"{entry.path} cannot be applied before {skipped.path}, which is pending and not selected; "
                        "select both (or apply the earlier one first)"
                    )
                chosen.append(entry)
            elif skipped is None:
                skipped = entry
        return chosen

    def refuse_mixed(self, entries: list[PlanEntry], dialect: str | None) -> None:
        """A script mixing non-transactional and transactional statements could be half-applied: refuse it."""
        for entry in entries:
            m = entry.migration
            assert m is not None
            if m.is_mixed_on(dialect) and not (self.settings.mixed or m.config.mixed) and m.config.execute_in_transaction is None:
                odd = m.non_transactional_on(dialect)[0]
                other = next(s for s in m.statements if s not in m.non_transactional_on(dialect) and not s.neutral)
                raise ConfigError(
                    f"{m.path}:{odd.line}: {odd.non_transactional} cannot run in a transaction, but the script also has "
                    f"transactional statements (line {other.line}: {other.first_line}); a failure would leave it "
                    "half-applied. Move the non-transactional statement to a script of its own, or allow it with "
                    "--mixed (or mixed=true in its .sql.conf)"
                )

    def migrate(
        self,
        run: RunInfo | None = None,
        select: set[str] | None = None,
        on_event: Event | None = None,
    ) -> Iterator[ScriptResult]:
        """Apply pending scripts in order, yielding each result as it finishes; stop at the first failure."""
        run = run or RunInfo()
        self.catalog
        with self.locked(on_event) as (session, history):
            self.dialect = session.dialect
            plan = self._plan(history)
            session.rollback()
            self.validate(plan)
            todo = self.check_selection(plan.pending(), select)
            _split_ahead(todo)
            self.refuse_mixed(todo, session.dialect)
            if not todo:
                return
            applier = _Applier(self, session, history, run)
            applier.callbacks("beforeMigrate")
            yield from applier.apply_all([e.migration for e in todo if e.migration is not None])
            applier.callbacks("afterMigrate")

    def dry_run(self, select: set[str] | None = None) -> list[PlanEntry]:
        """The entries migrate would apply, without taking the lock or changing anything."""
        plan = self.plan()
        self.validate(plan)
        todo = self.check_selection(plan.pending(), select)
        self.refuse_mixed(todo, self.dialect)
        return todo

    def baseline(self, version: str = "1", description: str = BASELINE_DESCRIPTION) -> None:
        """Mark an existing database as being at `version`."""
        try:
            parsed = Version.parse(version.lstrip("Vv"))
        except ValueError:
            raise ConfigError(f"--version {version}: not a version") from None
        with self.locked() as (session, history):
            rows = [r for r in history.rows() if r.type != "SCHEMA"]
            if rows:
                if any(r.type == "BASELINE" and r.version and Version.parse(r.version) == parsed for r in rows):
                    session.rollback()
                    return
                raise ConfigError(
                    f"{self.settings.schema}.{self.settings.table} already has {len(rows)} migration(s); "
                    "baseline only marks a database that dbops has not migrated yet"
                )
            history.insert(history.next_rank(), parsed.text, description, "BASELINE", BASELINE_DESCRIPTION, None, 0, True)
            session.commit()

    def repair(self) -> list[str]:
        """Remove failed rows, realign checksums and descriptions, mark missing scripts deleted."""
        actions: list[str] = []
        with self.locked() as (session, history):
            plan = self._plan(history)
            rank = history.next_rank()
            for entry in plan.entries:
                row, m = entry.applied, entry.migration
                if row is None:
                    continue
                if entry.state == FAILED:
                    history.delete_rank(row.installed_rank)
                    actions.append(f"removed failed row {row.script} (rank {row.installed_rank})")
                elif entry.state == MISSING and row.version:
                    history.insert(rank, row.version, row.description, "DELETE", row.script, row.checksum, 0, True)
                    rank += 1
                    actions.append(f"marked missing version {row.version} ({row.script}) as deleted")
                elif m is not None and entry.problems:
                    history.update_checksum(row.installed_rank, m.checksum, m.description, m.history_type)
                    actions.append(f"realigned {m.path}: checksum {row.checksum} -> {m.checksum}")
            session.commit()
        return actions

    def undo(self, target: str | None = None, run: RunInfo | None = None) -> list[ScriptResult]:
        """Apply U scripts in reverse order for applied versions above `target` (default: the latest one)."""
        run = run or RunInfo()
        undo_scripts = {m.version: m for m in self.catalog.undo}
        floor = Version.parse(target.lstrip("Vv")) if target else None
        results: list[ScriptResult] = []
        with self.locked() as (session, history):
            plan = self._plan(history)
            session.rollback()
            applied = [
                e for e in plan.entries
                if e.applied and e.applied.success and e.applied.type == "SQL" and e.applied.version and e.state != FAILED
                and e.state in ("Success",)
            ]
            applied.sort(key=lambda e: Version.parse(e.applied.version), reverse=True)  # type: ignore[union-attr]
            chosen = [e for e in applied if floor is None or Version.parse(e.applied.version) > floor]  # type: ignore[union-attr]
            if floor is None:
                chosen = chosen[:1]
            applier = _Applier(self, session, history, run)
            for entry in chosen:
                version = Version.parse(entry.applied.version)  # type: ignore[union-attr]
                script = undo_scripts.get(version)
                if script is None:
                    raise ConfigError(f"no undo script U{version}__….sql for version {version} ({entry.path}); write one to undo it")
                results.append(applier.apply(script))
        return results


def _lost_outcome(migration: Migration, transactional: bool) -> str:
    """What a lost connection means for the script that was running, for the message."""
    if transactional:
        return (
            f"Its transaction was not committed, unless the connection broke during COMMIT: `dbops info` shows whether "
            f"{migration.script} was recorded. Migrate again once the database is reachable."
        )
    return (
        f"It runs outside a transaction, so some of its statements may have been applied; `dbops info` shows it as "
        f"Failed if its row was written. Undo what it did by hand if needed, run `dbops repair`, and migrate again."
    )


def _split_ahead(entries: list[PlanEntry]) -> None:
    """Parse the scripts on a helper thread, in order, while the main thread waits on the database."""

    def work() -> None:
        for entry in entries:
            if entry.migration is not None:
                entry.migration.statements

    threading.Thread(target=work, name="dbops-split-ahead", daemon=True).start()


class _Applier:
    """Runs scripts on the working session and records them."""

    def __init__(self, engine: Engine, session: Session, history: History, run: RunInfo) -> None:
        self.engine = engine
        self.session = session
        self.history = history
        self.run = run
        self.rank = history.next_rank()
        session.commit()

    def callbacks(self, event: str) -> None:
        for callback in self.engine.catalog.callbacks_for(event):
            try:
                for statement in callback.statements:
                    self.session.execute(statement.sql)
                self.session.commit()
            except SqlError as exc:
                self.session.rollback()
                raise MigrationFailed(f"{callback.path}: {event} callback failed: {exc}") from None

    def apply_all(self, migrations: list[Migration]) -> Iterator[ScriptResult]:
        """Apply in order; consecutive transactional scripts go in batches where the driver can."""
        dialect = self.session.dialect
        batching = self.session.supports_batches and not (
            self.engine.catalog.callbacks_for("beforeEachMigrate") or self.engine.catalog.callbacks_for("afterEachMigrate")
        )
        index = 0
        limit = BATCH_FIRST  # a small first batch gets the database working while later scripts are parsed
        while index < len(migrations):
            batch: list[Migration] = []
            size = 0
            while batching and index + len(batch) < len(migrations) and len(batch) < limit and size < BATCH_BYTES:
                candidate = migrations[index + len(batch)]
                if not candidate.in_transaction_on(dialect):
                    break
                batch.append(candidate)
                size += len(candidate.sql)
            if len(batch) > 1:
                limit = BATCH_SCRIPTS
                results, outcome = self._apply_batch(batch)
                yield from results
                index += len(results)
                if outcome.error is not None and outcome.error.sqlstate not in BATCH_ONLY_ERRORS:
                    migration, statement = migrations[index], outcome.failed_statement
                    failed = migration.statements[statement] if statement is not None else None
                    self._fail(migration, outcome.error, failed, statement or 0, True, _now())
                if len(results) < len(batch):
                    batching = False  # the script the batch could not apply runs alone next
                continue
            yield self.apply(migrations[index])
            index += 1

    def _apply_batch(self, batch: list[Migration]) -> tuple[list[ScriptResult], BatchResult]:
        """Several scripts in one round trip; each commits with its rows, or not at all (a prefix commits)."""
        if self.engine.run_lock is not None:
            self.engine.run_lock.verify(before=batch[0].path)
        started = _now()
        first = self.rank

        def bookkeeping_for(offset: int, migration: Migration):
            return lambda elapsed: [
                self._record_statement(first + offset, migration, elapsed, success=True),
                self._audit_statement(migration, "success", "", started, finished=elapsed is not None),
            ]

        items = [([s.sql for s in m.statements], bookkeeping_for(k, m)) for k, m in enumerate(batch)]
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
            results = [
                ScriptResult(m, "success", times.get(first + k, 0), len(m.statements), rows[k], True)
                for k, m in enumerate(applied)
            ]
            self.rank += len(applied)
        return results, outcome

    def apply(self, migration: Migration) -> ScriptResult:
        if self.engine.run_lock is not None:
            self.engine.run_lock.verify(before=migration.path)
        self.callbacks("beforeEachMigrate")
        transactional = migration.in_transaction_on(self.session.dialect)
        try:
            result = self._apply_in_transaction(migration) if transactional else self._apply_in_autocommit(migration)
        except ConnectionLost as exc:
            raise ConnectionLost(f"{migration.path}: {exc}\n{_lost_outcome(migration, transactional)}") from None
        self.rank += 1
        self.callbacks("afterEachMigrate")
        return result

    def _apply_in_transaction(self, migration: Migration) -> ScriptResult:
        """The statements, the history row and the audit row commit together or not at all."""
        started = _now()
        statements = migration.statements

        def bookkeeping(elapsed: int | None) -> list[tuple[str, tuple]]:
            return [
                self._record_statement(self.rank, migration, elapsed, success=True),
                self._audit_statement(migration, "success", "", started, finished=elapsed is not None),
            ]

        outcome = self.session.run_transaction([s.sql for s in statements], bookkeeping)
        if outcome.error is not None:
            index = outcome.failed_index
            failed = statements[index] if index is not None and statements else None
            self._fail(migration, outcome.error, failed, index or 0, True, started)
        return ScriptResult(migration, "success", outcome.elapsed_ms, len(statements), sum(max(r, 0) for r in outcome.rows), True)

    def _apply_in_autocommit(self, migration: Migration) -> ScriptResult:
        """Statement by statement; a failed row first, so a crash mid-way is reported truthfully."""
        started = _now()
        clock = time.perf_counter()
        statements = migration.statements
        rows = done = 0
        lost = False
        self.session.set_autocommit(True)
        try:
            self._record(self.rank, migration, 0, success=False)
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
        self._mark_done(migration, elapsed, started)
        return ScriptResult(migration, "success", elapsed, len(statements), rows, False)

    def _mark_done(self, migration: Migration, elapsed: int, started: datetime) -> None:
        """The success flag and the audit row commit together: a crash between them leaves the row failed, not unaudited."""

        def bookkeeping(_: int | None) -> list[tuple[str, tuple]]:
            return [self.history.update_success_statement(self.rank, elapsed), self._audit_statement(migration, "success", "", started)]

        try:
            self.session.run_transaction([], bookkeeping)
        except SqlError as exc:
            self.session.rollback()
            self._fail(migration, exc, None, len(migration.statements), False, started)

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

    def _audit(self, migration: Migration, status: str, error: str, started: datetime) -> None:
        self.session.execute(*self._audit_statement(migration, status, error, started))

    def _audit_statement(
        self, migration: Migration, status: str, error: str, started: datetime, finished: bool = True
    ) -> tuple[str, tuple]:
        commit = self.engine.snapshot.file_commits.get(migration.path) or self.run.commit or CommitInfo(id="")
        return self.history.audit_statement(
            AuditRecord(
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
                finished_at=_now() if finished else None,
                installed_by=self.session.user,
                target=self.engine.target.redacted_url,
            )
        )

    def _fail(
        self, migration: Migration, exc: SqlError, failed: Statement | None, done: int, transactional: bool, started: datetime
    ) -> NoReturn:
        where = f"{migration.path}:{failed.line}" if failed else migration.path
        statement = f" in statement `{failed.first_line}`" if failed else ""
        error = f"{where}: {exc}"
        try:
            if transactional:
                self.session.rollback()
            self._audit(migration, "failed", error, started)
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
        raise MigrationFailed(f"{where}: migration {migration.label} failed{statement}:\n  {exc}\n{outcome}")

    def callbacks_quietly(self, event: str) -> None:
        try:
            self.callbacks(event)
        except MigrationFailed:
            pass


__all__ = ["Engine", "RunInfo", "ScriptResult", "Settings", "BASELINE", "REPEATABLE", "VERSIONED"]
