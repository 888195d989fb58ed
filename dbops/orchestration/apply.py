"""The body of the migrate step: apply what is pending through the engine, one materialization per applied script."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dagster import AssetExecutionContext, AssetKey, AssetMaterialization, Failure, MaterializeResult, MetadataValue

from dbops.engine import Engine, RunInfo, ScriptResult
from dbops.errors import DbopsError
from dbops.history import History
from dbops.orchestration.drift import SnapshotStore, diff, live_catalog
from dbops.orchestration.resource import DbopsResource
from dbops.orchestration.translator import MigrationTranslator
from dbops.sources import TAG_SOURCE, CommitInfo, commit_from_tags, source_for_tags
from dbops.urls import redact

# Dagster looks up every selected output each time the step yields one (quadratic in a step's size).
# Past this many lookups (selected assets x scripts to apply) results are recorded as runtime
# materializations under the same keys, which cost the same for any selection.
OUTPUT_LOOKUP_BUDGET = 40_000
EXIT_CODE = "exit_code"


def failure(exc: DbopsError) -> Failure:
    """A step failure that carries the engine's message and the exit code `dbops migrate --direct` would give."""
    return Failure(
        description=redact(str(exc)),
        metadata={EXIT_CODE: exc.exit_code, "error": type(exc).__name__},
        allow_retries=False,
    )


def run_source(tags: dict[str, str]) -> str:
    """Who started the run: cli, sensor, schedule, or ui when the run says nothing."""
    return tags.get(TAG_SOURCE) or "ui"


def apply_pending(
    context: AssetExecutionContext, dbops: DbopsResource, translator: MigrationTranslator, known: set[AssetKey]
) -> Iterator[MaterializeResult | AssetMaterialization]:
    """Apply the selected pending scripts (plus scripts the code location has not loaded) in order."""
    tags = dict(context.run.tags)
    settings = dbops.settings()
    try:
        snapshot = source_for_tags(tags, settings.locations).snapshot()
        engine = Engine(dbops.open_target(), settings, snapshot)
        select, as_outputs = _selection(context, engine, translator, known)
        has_snapshot = _drift_before(context, engine)
        run = RunInfo(run_id=context.run_id, source=run_source(tags), commit=commit_from_tags(tags))
        applied = 0
        for result in engine.migrate(run=run, select=select, on_event=context.log.info):
            applied += 1
            key = translator.get_asset_key(result.migration)
            commit = snapshot.commit_for(result.migration.path) or run.commit
            metadata = materialization_metadata(result, run, commit, engine.target.redacted_url)
            if key in known and as_outputs:
                yield MaterializeResult(asset_key=key, metadata=metadata)
            else:
                if key not in known:
                    context.log.info(
                        f"{result.migration.path} is not an asset of the loaded code location; its materialization is "
                        f"recorded under {key.to_user_string()} (reload the code location to see it in the graph)"
                    )
                yield AssetMaterialization(asset_key=key, metadata=metadata, description=result.migration.label)
        if applied or not has_snapshot:
            _record_schema(context, engine)
    except DbopsError as exc:
        raise failure(exc) from None


def _selection(
    context: AssetExecutionContext, engine: Engine, translator: MigrationTranslator, known: set[AssetKey]
) -> tuple[set[str], bool]:
    """Scripts to apply, and whether to record them as step outputs.

    Selected assets, plus the run's scripts that no loaded asset stands for, provided every pending
    script the code location knows is selected (a run for a commit applies all of that commit's scripts;
    a hand-picked subset never drags in scripts the user could not see).
    """
    selected = set(context.selected_asset_keys)
    plan = engine.plan()
    pending = [e.migration for e in plan.pending() if e.migration is not None]
    keys = {m.script: translator.get_asset_key(m) for m in pending}
    partial = any(keys[m.script] in known and keys[m.script] not in selected for m in pending)
    select = {m.script for m in pending if keys[m.script] in selected or (not partial and keys[m.script] not in known)}
    unknown = [m.path for m in pending if keys[m.script] not in known and m.script in select]
    if unknown:
        context.log.info(f"{len(unknown)} pending script(s) are new to the loaded code location: {', '.join(unknown)}")
    return select, len(selected) * len(select) <= OUTPUT_LOOKUP_BUDGET


def materialization_metadata(result: ScriptResult, run: RunInfo, commit: CommitInfo | None, target: str) -> dict[str, Any]:
    """What one applied script records: timing, statements, rows, mode, commit and run source."""
    migration = result.migration
    return {
        "execution_time_ms": MetadataValue.int(result.execution_ms),
        "statements": MetadataValue.int(result.statements),
        "rows_affected": MetadataValue.int(result.rows_affected),
        "mode": "transaction" if result.in_transaction else "autocommit",
        "version": migration.version.text if migration.version else "",
        "script": migration.path,
        "checksum": MetadataValue.int(migration.checksum),
        "commit": commit.id if commit else "",
        "author": commit.author if commit else "",
        "source": run.source,
        "target": target,
    }


def _drift_before(context: AssetExecutionContext, engine: Engine) -> bool:
    """Warn when the schema changed since the last snapshot (by hand?); True when a snapshot exists."""
    settings = engine.settings
    with engine.session() as session:
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


def _record_schema(context: AssetExecutionContext, engine: Engine) -> None:
    """Store the catalog the drift check compares with, tagged with this run and the last history rank."""
    settings = engine.settings
    with engine.session() as session:
        shapes = live_catalog(session, settings.schema, settings.table)
        rank = History(session, settings.schema, settings.table).next_rank() - 1
        SnapshotStore(session, settings.schema).save(shapes, context.run_id, rank)
