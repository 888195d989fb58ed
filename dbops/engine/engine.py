"""plan / migrate / validate / baseline / repair / undo, under the run lock."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property

from dbops.config import DEFAULT_TABLE, Settings
from dbops.engine.applier import Applier, ApplyContext, RunInfo, ScriptResult, split_ahead
from dbops.engine.database_errors import OwnTables, own_statements
from dbops.engine.history import AUDIT_TABLE, BASELINE_DESCRIPTION, History
from dbops.engine.lease import LEASE_TABLE, lock_for
from dbops.engine.locks import LOCK_TABLE, RunLock
from dbops.engine.plan import FAILED, MISSING, Plan, PlanEntry, attach_failures, build_plan, realigned, unfinished
from dbops.engine.refusals import refuse_unrunnable
from dbops.engine.search_path import search_path_statement
from dbops.errors import ConfigError, ValidationFailed
from dbops.scripts.migrations import Catalog, PlaceholderContext, RowType, Version, discover, version_flag
from dbops.scripts.sources import FolderSource, Snapshot, Source
from dbops.targets.base import Dialect, Session, Target

Event = Callable[[str], None]


OWN_TABLES = (AUDIT_TABLE, LOCK_TABLE, LEASE_TABLE)  # the tables dbops keeps next to the history table


def check_history_table(settings: Settings) -> Settings:
    """`settings` when its history table is not one of dbops's own tables in the same schema, compared as Redshift
    folds names (case-insensitively; PostgreSQL keeps the quoted name's case, a stricter match); else ConfigError,
    before anything connects or is created."""
    clash = next((own for own in OWN_TABLES if settings.table.lower() == own), None)
    if clash:
        kind = "audit table" if clash == AUDIT_TABLE else "run-lock table"
        raise ConfigError(
            f"history table {settings.table!r} is the name of dbops's {kind} in schema {settings.schema}; "
            f"choose another history table name (--table, DBOPS_TABLE or flyway.table; default {DEFAULT_TABLE})"
        )
    return settings


class Engine:
    """Applies one snapshot of scripts to one target."""

    def __init__(
        self,
        target: Target,
        settings: Settings | None = None,
        snapshot: Snapshot | None = None,
        values_needed: bool = True,
        source: Source | None = None,
    ) -> None:
        """The scripts: `snapshot`, else `source` read when first needed, else the settings' folders.
        `values_needed=False`: the engine only lists and compares (info, validate), so placeholders need no value."""
        self.target = target
        self.settings = check_history_table(settings or Settings())
        self._snapshot = snapshot
        self._source = source
        self.values_needed = values_needed
        self.dialect: Dialect | None = None
        self.run_lock: RunLock | None = None
        self.search_path: str | None = None  # the SET that makes settings.schema the working session's default
        self.user = ""  # the database user of the last session opened (current_user), for messages

    @cached_property
    def snapshot(self) -> Snapshot:
        return self._snapshot or (self._source or FolderSource(self.settings.locations)).snapshot()

    @cached_property
    def catalog(self) -> Catalog:
        """The scripts, discovered once; every naming or placeholder problem raises here."""
        context = PlaceholderContext(
            values=self.settings.placeholders,
            schema=self.settings.schema,
            user=self.target.user,
            database=self.target.database,
            table=self.settings.table,
            values_needed=self.values_needed,
        )
        return discover(self.snapshot.files, context, self.settings.ignore_invalid_names)

    def apply_context(self) -> ApplyContext:
        """What an applier needs from this engine, under the run lock."""
        return ApplyContext(
            catalog=self.catalog,
            file_commits=self.snapshot.file_commits,
            target_url=self.target.redacted_url,
            run_lock=self.run_lock,
            search_path=self.search_path,
        )

    @cached_property
    def target_version(self) -> Version | None:
        raw = self.settings.target_version
        if raw in (None, "", "latest"):
            return None
        return version_flag(raw, "--target")

    def own_tables(self, user: str = "") -> OwnTables:
        return OwnTables(self.settings.schema, self.settings.table, user or self.user)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A new session; a SqlError escaping the block (dbops's own statement, not a script's) becomes a user error."""
        with own_statements(self.own_tables):
            session = self.target.connect()
            self.user = session.user
            try:
                yield session
            finally:
                session.close()

    def _history(self, session: Session) -> History:
        return History(session, self.settings.schema, self.settings.table)

    def _plan(self, history: History, failures: bool = False) -> Plan:
        """The plan; with `failures`, each pending or failed script also gets its last failed attempt (one query more,
        none when nothing is pending or failed)."""
        layout = history.layout(self.settings.managed_schemas)
        exists, audited = layout.history, failures and layout.audit
        rows = history.rows(exists)
        plan = build_plan(
            self.catalog, rows, out_of_order=self.settings.out_of_order, target=self.target_version, has_history=exists
        )
        candidates = unfinished(plan) if audited else []
        if candidates:  # an up-to-date target costs nothing more
            attach_failures(plan, history.last_failures(candidates))
        return plan

    def plan(self, failures: bool = False) -> Plan:
        """Every script and history row with its state (reads only); `failures`: see _plan."""
        self.catalog
        with self.session() as session:
            self.dialect = session.dialect
            plan = self._plan(self._history(session), failures)
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
        """The run lock plus a working session with the schemas and history tables in place, the default schema
        first on its search path.

        Before anything is created (the lock table on Redshift included), the lock's session checks the names and
        that a table under the history table's name is one (History.layout).
        """
        lock = lock_for(self.target, self.settings.schema, self.settings.table)
        with own_statements(lambda: self.own_tables(lock.user)):
            lock.acquire(self.settings.lock_timeout, on_event, check=lambda s: self._history(s).layout(self.settings.managed_schemas))
        self.run_lock = lock
        try:
            if lock.waited > 1 and on_event:
                on_event(f"got the run lock after waiting {lock.waited:.1f}s")
            with self.session() as session:
                lock.guard(session, on_event)
                history = self._history(session)
                warning = history.ensure(self.settings.managed_schemas, schema_created=lock.created_schema)
                if warning and on_event:
                    on_event(f"warning: {warning}")
                interrupted = history.close_interrupted()
                session.commit()
                if interrupted > 0 and on_event:  # -1: the driver sends the update at COMMIT and cannot count it here
                    on_event(f"marked {interrupted} attempt(s) that an earlier run left unfinished as interrupted in {AUDIT_TABLE}")
                self.search_path = search_path_statement(session, self.settings.schema)
                session.execute(self.search_path)
                if self.settings.statement_timeout:
                    session.execute(f"set statement_timeout to {int(self.settings.statement_timeout * 1000)}")
                session.commit()
                yield session, history
        finally:
            self.run_lock = None
            self.search_path = None
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

    def refuse_mixed(self, entries: list[PlanEntry], dialect: Dialect | None) -> None:
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
        with self.migration(on_event) as locked:
            yield from locked.apply(run, select)

    @contextmanager
    def migration(self, on_event: Event | None = None) -> Iterator[LockedRun]:
        """The run lock, the working session and the validated plan read under the lock: what `migrate` applies
        from, for a caller that also reads or writes on that session before and after applying (the Dagster step)."""
        self.catalog
        with self.locked(on_event) as (session, history):
            self.dialect = session.dialect
            plan = self._plan(history)
            session.rollback()
            self.validate(plan)
            yield LockedRun(self, session, history, plan)

    def validate_locked(self, on_event: Event | None = None) -> Plan:
        """The plan read and validated under the run lock (ValidationFailed as migrate raises it). Taking the lock marks
        the attempts an earlier run left unfinished as interrupted, as every migrate does: for a caller that read the
        plan without the lock, found problems, and must fail the way migrate fails."""
        with self.migration(on_event) as locked:
            return locked.plan

    def dry_run(self, select: set[str] | None = None) -> list[PlanEntry]:
        """The entries migrate would apply, without taking the lock or changing anything."""
        plan = self.plan()
        self.validate(plan)
        todo = self.check_selection(plan.pending(), select)
        self.refuse_mixed(todo, self.dialect)
        refuse_unrunnable((e.migration for e in todo if e.migration is not None), self.dialect)
        return todo

    def baseline(self, version: str = "1", description: str = BASELINE_DESCRIPTION) -> None:
        """Mark an existing database as being at `version`."""
        parsed = version_flag(version, "--version")
        with self.locked() as (session, history):
            rows = [r for r in history.rows() if r.type != RowType.SCHEMA]
            if rows:
                if any(r.type == RowType.BASELINE and r.version and Version.parse(r.version) == parsed for r in rows):
                    session.rollback()
                    return
                raise ConfigError(
                    f"{self.settings.schema}.{self.settings.table} already has {len(rows)} migration(s); "
                    "baseline only marks a database that dbops has not migrated yet"
                )
            history.insert(history.next_rank(), parsed.text, description, RowType.BASELINE, BASELINE_DESCRIPTION, None, 0, True)
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
                    history.insert(rank, row.version, row.description, RowType.DELETE, row.script, row.checksum, 0, True)
                    rank += 1
                    actions.append(f"marked missing version {row.version} ({row.script}) as deleted")
                elif m is not None and entry.problems:
                    history.update_checksum(row.installed_rank, m.checksum, m.description, m.history_type)
                    actions.append(f"realigned {m.path}: {realigned(row, m)}")
            session.commit()
        return actions

    def undo(self, target: str | None = None, run: RunInfo | None = None) -> list[ScriptResult]:
        """Apply U scripts in reverse order for applied versions above `target` (default: the latest one)."""
        run = run or RunInfo()
        undo_scripts = {m.version: m for m in self.catalog.undo}
        floor = version_flag(target, "--target") if target else None
        results: list[ScriptResult] = []
        with self.locked() as (session, history):
            plan = self._plan(history)
            session.rollback()
            applied = [
                e for e in plan.entries
                if e.applied and e.applied.success and e.applied.type == RowType.SQL and e.applied.version and e.state != FAILED
                and e.state in ("Success",)
            ]
            applied.sort(key=lambda e: Version.parse(e.applied.version), reverse=True)  # type: ignore[union-attr]
            chosen = [e for e in applied if floor is None or Version.parse(e.applied.version) > floor]  # type: ignore[union-attr]
            if floor is None:
                chosen = chosen[:1]
            refuse_unrunnable((undo_scripts[v] for v in (Version.parse(e.applied.version) for e in chosen)  # type: ignore[union-attr]
                               if v in undo_scripts), session.dialect)
            applier = Applier(self.apply_context(), session, history, run)
            for entry in chosen:
                version = Version.parse(entry.applied.version)  # type: ignore[union-attr]
                script = undo_scripts.get(version)
                if script is None:
                    raise ConfigError(f"no undo script U{version}__….sql for version {version} ({entry.path}); write one to undo it")
                results.append(applier.apply(script))
        return results


@dataclass
class LockedRun:
    """A migrate under the run lock: its working session, history and plan; `apply` applies from the plan."""

    engine: Engine
    session: Session
    history: History
    plan: Plan

    def apply(self, run: RunInfo | None = None, select: set[str] | None = None) -> Iterator[ScriptResult]:
        """Apply the pending scripts (those in `select` when given) in order, yielding each result as it finishes;
        stop at the first failure."""
        engine, session = self.engine, self.session
        todo = engine.check_selection(self.plan.pending(), select)
        if not session.supports_batches:  # a batching driver sends scripts as written: no parsing ahead
            split_ahead(todo)
        engine.refuse_mixed(todo, session.dialect)
        refuse_unrunnable((e.migration for e in todo if e.migration is not None), session.dialect)
        session.check_scripts([e.migration for e in todo])
        if not todo:
            return
        applier = Applier(engine.apply_context(), session, self.history, run or RunInfo())
        applier.callbacks("beforeMigrate")
        yield from applier.apply_all([e.migration for e in todo if e.migration is not None])
        applier.callbacks("afterMigrate")
