"""The body of the migrate step: apply what is pending through the engine, one materialization per applied script.

Each applied script is recorded as a runtime `AssetMaterialization` under its asset key, not as a step
output: an output costs Dagster three stored events, an upstream-record query for data provenance and
a lookup over every selected output (quadratic in a step's size); a runtime materialization is one
event. Measured on dagster-postgres with fsync on (bench/dagster_overhead.py --storage postgres):
200 pending scripts took 58.7 s as outputs and 8.3 s as runtime materializations with one pooled
storage connection. Staleness in the UI then follows materialization order, which for a chain of
migrations applied in order is fresh; an edited applied script is flagged by the checksum check.
"""
from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any

from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    AssetObservation,
    DagsterInstance,
    Failure,
    MetadataValue,
)

from dbops.engine.applier import RunInfo, ScriptResult
from dbops.engine.engine import Engine
from dbops.engine.history import History
from dbops.engine.plan import Plan
from dbops.engine.verify import ChecksRejected
from dbops.errors import DbopsError
from dbops.orchestration.drift import ObjectShape, SnapshotStore, diff, live_catalog
from dbops.orchestration.migration_checks import keys_of, rechecked_results, results_for
from dbops.orchestration.reconcile import TAG_RECORDED_LATE, late_materializations, unrecorded
from dbops.orchestration.selection import SELECT_PENDING, TAG_SELECTION
from dbops.orchestration.tags import TAG_SOURCE, commit_from_tags
from dbops.orchestration.translator import MigrationTranslator
from dbops.orchestration.warehouse import ScriptLineage, new_observations, table_observations
from dbops.scripts.migrations import Migration
from dbops.scripts.sources import CommitInfo
from dbops.targets.base import Session, SqlError
from dbops.urls import redact

EXIT_CODE = "exit_code"
SCRIPT = "script"
STORAGE_POOL_RECYCLE_S = 3600
STORAGE_POOL_OVERFLOW = 4
_holding: weakref.WeakSet[DagsterInstance] = weakref.WeakSet()


def failure(exc: DbopsError) -> Failure:
    """A step failure that carries the engine's message, the exit code `dbops migrate --direct` would give
    and, when a script failed, its path (what alerts name)."""
    metadata: dict[str, Any] = {EXIT_CODE: exc.exit_code, "error": type(exc).__name__}
    script = getattr(exc, "path", None)  # MigrationFailed and ScriptError name the script
    if script:
        metadata[SCRIPT] = script
    return Failure(description=redact(str(exc)), metadata=metadata, allow_retries=False)


def run_source(tags: dict[str, str]) -> str:
    """Who started the run: cli, sensor, schedule, or ui when the run says nothing."""
    return tags.get(TAG_SOURCE) or "ui"


def hold_storage_connection(instance: DagsterInstance) -> None:
    """Keep the instance's storage connections for this process instead of one per operation.

    dagster-postgres opens a new connection for every read and write unless its process says it is
    long-lived through `DagsterInstance.optimize_for_webserver` (public, what dagster-webserver calls);
    a migrate run writes an event per applied script, so it holds one pooled connection instead.
    No statement timeout is set (0), as without the pool. Other storages ignore the call. Called again
    for the same instance (the launcher, then the step it runs in process), it keeps the pool it has.
    """
    if instance in _holding:
        return
    _holding.add(instance)
    instance.optimize_for_webserver(statement_timeout=0, pool_recycle=STORAGE_POOL_RECYCLE_S, max_overflow=STORAGE_POOL_OVERFLOW)


def apply_pending(
    context: AssetExecutionContext,
    engine: Engine,
    translator: MigrationTranslator,
    known: set[AssetKey],
    lineage: ScriptLineage | None = None,
) -> Iterator[AssetMaterialization | AssetObservation | AssetCheckResult]:
    """Apply the selected pending scripts (plus scripts the code location has not loaded) in order, then
    observe the tables and views the applied ones touched where they differ from their latest observation
    (also when a later script failed).

    Each applied script's checks are reported after its materialization; selected checks of scripts this run
    did not apply are run again on the database (a run that selects only checks applies nothing)."""
    lineage = lineage or ScriptLineage(None, translator.dialect, translator.default_schema)
    applied: list[Migration] = []
    tags = dict(context.run.tags)
    checked: set[AssetCheckKey] = set()
    wanted = set(context.selected_asset_check_keys)
    partition = context.partition_key if context.has_partition_key else None
    try:
        if not context.selected_asset_keys:
            yield from rechecked_results(engine, translator, wanted)
            return
        run = RunInfo(run_id=context.run.run_id, source=run_source(tags), commit=commit_from_tags(tags))
        # Under the run lock, on its session: no concurrent migrate applies between the plan, the late
        # materializations, the drift read, the scripts and the snapshot taken after them.
        with engine.migration(on_event=context.log.info) as locked:
            late = unrecorded(engine, locked.plan, translator.get_asset_key, context.instance, partition, locked.session)
            if late:
                context.log.warning(
                    f"{len(late)} applied script(s) had no materialization (a killed run, a storage outage, --direct or "
                    f"Flyway): recording them late, first {late[0].path}"
                )
                yield from late_materializations(late, engine.target.redacted_url, partition)
                context.instance.add_run_tags(context.run.run_id, {TAG_RECORDED_LATE: "true"})  # where later runs look first
            select = _selection(context, locked.plan, translator, known)
            has_snapshot = _drift_before(context, engine, locked.session)
            for result in locked.apply(run, select):
                applied.append(result.migration)
                key = translator.get_asset_key(result.migration)
                commit = engine.snapshot.commit_for(result.migration.path) or run.commit
                metadata = materialization_metadata(result, run, commit, engine.target.redacted_url)
                if key not in known:
                    context.log.info(
                        f"{result.migration.path} is not an asset of the loaded code location; its materialization is "
                        f"recorded under {key.to_user_string()} (reload the code location to see it in the graph)"
                    )
                yield AssetMaterialization(asset_key=key, metadata=metadata, description=result.migration.label, partition=partition)
                yield from results_for(wanted, key, result.checks)
                checked |= keys_of(result.migration, translator)
            shapes = _record_schema(context, engine, locked.session) if applied or not has_snapshot else None
        yield from rechecked_results(engine, translator, wanted - checked)
        if shapes is not None:
            yield from new_observations(context.instance, table_observations(translator, lineage, applied, shapes))
    except DbopsError as exc:
        if isinstance(exc, ChecksRejected):
            yield from _rejected_results(exc, engine, translator, wanted)
        if applied:
            yield from _observe_after_failure(context, engine, translator, lineage, applied)
        raise failure(exc) from None


def _rejected_results(
    exc: ChecksRejected, engine: Engine, translator: MigrationTranslator, wanted: set[AssetCheckKey]
) -> Iterator[AssetCheckResult]:
    """The failed checks of the script a run stopped at, with their rows."""
    failed = next((m for m in engine.catalog.migrations + engine.catalog.undo if m.path == exc.path), None)
    if failed is not None:
        yield from results_for(wanted, translator.get_asset_key(failed), exc.failures)


def _selection(
    context: AssetExecutionContext, plan: Plan, translator: MigrationTranslator, known: set[AssetKey]
) -> set[str]:
    """Scripts to apply.

    Selected assets, plus the run's scripts that no loaded asset stands for, provided every pending
    script the code location knows is selected (a run for a commit applies all of that commit's scripts;
    a hand-picked subset never drags in scripts the user could not see). A run tagged `dbops/selection=pending`
    (a sensor's, selected from the instance's records: dbops.orchestration.selection) applies every pending script.
    """
    selected = set(context.selected_asset_keys)
    pending = [e.migration for e in plan.pending() if e.migration is not None]
    keys = {m.script: translator.get_asset_key(m) for m in pending}
    unexpected = [m.path for m in pending if keys[m.script] in known and keys[m.script] not in selected]
    if context.run.tags.get(TAG_SELECTION) == SELECT_PENDING:
        select = {m.script for m in pending}
        if unexpected:
            context.log.info(
                f"{len(unexpected)} pending script(s) that the instance did not expect to be pending here (an environment "
                f"behind the others, a restored database) are applied too: {', '.join(unexpected[:30])}"
            )
    else:
        select = {m.script for m in pending if keys[m.script] in selected or (not unexpected and keys[m.script] not in known)}
    unknown = [m.path for m in pending if keys[m.script] not in known and m.script in select]
    if unknown:
        context.log.info(f"{len(unknown)} pending script(s) are new to the loaded code location: {', '.join(unknown)}")
    return select


def materialization_metadata(result: ScriptResult, run: RunInfo, commit: CommitInfo | None, target: str) -> dict[str, Any]:
    """What one applied script records: timing, statements, rows, mode, commit and run source."""
    migration = result.migration
    return {
        "execution_time_ms": MetadataValue.int(result.execution_ms),
        "statements": MetadataValue.int(result.statements),
        "rows_affected": MetadataValue.int(result.rows_affected),
        "mode": "transaction" if result.in_transaction else "autocommit",
        "version": migration.version.text if migration.version else "",
        "script": migration.script,
        "checksum": MetadataValue.int(migration.checksum),
        "commit": commit.id if commit else "",
        "author": commit.author if commit else "",
        "source": run.source,
        "target": target,
    }


def _drift_before(context: AssetExecutionContext, engine: Engine, session: Session) -> bool:
    """Warn when the schema changed since the last snapshot (by hand?); True when a snapshot exists."""
    settings = engine.settings
    before = SnapshotStore(session, settings.schema).load()
    if before is not None:
        drift = diff(before, live_catalog(session, settings.schema, settings.table))
        if drift:
            context.log.warning(
                f"the schema changed since the last migrate (run {before.run_id[:8]}), not through a migration: "
                f"{drift.describe()}; the snapshot taken after this migrate includes these changes"
            )
    session.rollback()
    return before is not None


def _record_schema(context: AssetExecutionContext, engine: Engine, session: Session) -> dict[str, ObjectShape]:
    """Store the catalog the drift check compares with, tagged with this run and the last history rank."""
    settings = engine.settings
    shapes = live_catalog(session, settings.schema, settings.table)
    rank = History(session, settings.schema, settings.table).next_rank() - 1
    SnapshotStore(session, settings.schema).save(shapes, context.run.run_id, rank)
    return shapes


def _observe_after_failure(
    context: AssetExecutionContext, engine: Engine, translator: MigrationTranslator, lineage: ScriptLineage, applied: list[Migration]
) -> list[AssetObservation]:
    """The observations of the scripts applied before a failure; a catalog that cannot be read is a warning."""
    settings = engine.settings
    try:
        with engine.session() as session:
            shapes = live_catalog(session, settings.schema, settings.table)
            session.rollback()
    except (DbopsError, SqlError) as exc:
        context.log.warning(f"the tables the {len(applied)} applied script(s) touched are not observed: {redact(str(exc))}")
        return []
    return new_observations(context.instance, table_observations(translator, lineage, applied, shapes))
