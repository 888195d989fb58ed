"""`dbops migrate` through Dagster (one run of the `migrate` job on the local instance) and `dbops ui`."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dagster import (
    AssetKey,
    DagsterEventType,
    Definitions,
    JobDefinition,
    execute_job,
    reconstructable,
)

from dbops.config import Settings, settings_variables
from dbops.engine.applier import ScriptResult
from dbops.engine.engine import Engine
from dbops.engine.plan import Plan
from dbops.errors import MigrationFailed
from dbops.orchestration.apply import EXIT_CODE
from dbops.orchestration.assets import RESOURCE_KEY
from dbops.orchestration.build import MIGRATE_JOB, migrate_definitions
from dbops.orchestration.home import dagster_home
from dbops.orchestration.instance import open_instance, quiet_dagster, storage_failure
from dbops.orchestration.partitions import PARTITION_TAG
from dbops.orchestration.project import MigrationProject
from dbops.orchestration.reconcile import RECORDED_LATE, fail_abandoned_runs, process_tags, unrecorded
from dbops.orchestration.resource import DbopsResource, resource_values
from dbops.orchestration.tags import TAG_AUTHOR, TAG_COMMIT, TAG_ENVIRONMENT, TAG_MESSAGE, TAG_SOURCE, TAG_TARGET
from dbops.orchestration.translator import script_keys
from dbops.output import Console, print_results, result_json
from dbops.scripts.migrations import Migration
from dbops.scripts.sources import CommitInfo
from dbops.urls import redact

TAG_LIMIT = 4000
_loaded: dict[str, Definitions] = {}


def use_definitions(defs: Definitions) -> None:
    """The definitions `launched_migrate_job` resolves in this process (instead of dbops.definitions)."""
    _loaded["defs"] = defs


def launched_migrate_job() -> JobDefinition:
    """The migrate job of the definitions the launcher loaded (reconstructable entry point)."""
    defs = _loaded.get("defs")
    if defs is None:
        from dbops.definitions import defs
    return defs.resolve_job_def(MIGRATE_JOB)


@contextmanager
def settings_environment(settings: Settings, url: str | None) -> Iterator[None]:
    """Expose the command line's settings as the DBOPS_* variables the definitions read; restored afterwards."""
    values = settings_variables(settings)
    if url:
        values["DBOPS_URL"] = url
    with patched_environ(values):
        yield


@contextmanager
def patched_environ(values: dict[str, str]) -> Iterator[None]:
    """`values` set in os.environ for the block; what was there before (or its absence) restored afterwards."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_config(settings: Settings, verbose: bool) -> dict[str, Any]:
    """The resource's whole config for this run: flags as values, secrets as environment references."""
    config: dict[str, Any] = {
        "url": {"env": "DBOPS_URL"} if os.environ.get("DBOPS_URL") else None,
        "password": {"env": "DBOPS_PASSWORD"} if os.environ.get("DBOPS_PASSWORD") else None,
        **resource_values(settings),
    }
    return {
        "resources": {RESOURCE_KEY: {"config": config}},
        "loggers": {"console": {"config": {"log_level": "INFO" if verbose else "CRITICAL"}}},
    }


def run_tags(source: str, commit: CommitInfo | None, target: str, environment: str | None = None) -> dict[str, str]:
    """dbops/source, dbops/commit, dbops/author, dbops/message, dbops/target (password hidden) and, for a
    flyway.toml environment, dbops/environment."""
    tags = {TAG_SOURCE: source, TAG_TARGET: redact(target), TAG_ENVIRONMENT: environment or ""}
    if commit is not None:
        tags.update({TAG_COMMIT: commit.id, TAG_AUTHOR: commit.author, TAG_MESSAGE: commit.message[:TAG_LIMIT]})
    return {k: v for k, v in tags.items() if v}


def partition_tags(environment: str | None) -> dict[str, str]:
    """The partition of an environment's run (the migrations are partitioned by environment)."""
    return {PARTITION_TAG: environment} if environment else {}


def pending_selection(engine: Engine, plan: Plan, keys: dict[str, AssetKey]) -> list[AssetKey]:
    """The assets of the pending scripts; none pending: the last script's, so the run still validates."""
    pending = [keys[e.migration.script] for e in plan.pending() if e.migration and e.migration.script in keys]
    if pending:
        return pending
    last = [keys[m.script] for m in engine.catalog.migrations if m.script in keys]
    return last[-1:]


def launch_migrate(
    engine: Engine, plan: Plan, console: Console, *, url: str | None, source: str = "cli", commit: CommitInfo | None = None,
    environment: str | None = None,
) -> int:
    """Execute the migrate job on the instance at DAGSTER_HOME; print what --direct prints, plus the run id.
    `plan`: the plan the command line read (not validated yet); `url`: the database URL as given (None: embedded);
    `environment`: the flyway.toml environment it is (its dbops/environment tag).

    Before anything is applied: the storage is checked, runs a killed `dbops migrate` left STARTED are marked
    failed, the plan is validated (when it has problems, again under the run lock, which marks a killed run's
    unfinished attempts interrupted; ValidationFailed then, and no run), and with nothing pending and nothing to
    record late, no run is started.
    """
    started = time.perf_counter()
    verbose = console.verbose
    settings = engine.settings
    target = engine.target.redacted_url
    with quiet_dagster(verbose), settings_environment(settings, url):
        home = dagster_home()
        resource = DbopsResource.from_env(placeholders=dict(settings.placeholders))
        # The scripts as the command line read them: the definitions do not read every file a second time.
        project = MigrationProject.load(resource.settings(), resource.dialect, snapshot=engine.snapshot, keep_files=True)
        # An environment's run is its partition of the migrations; a run on one URL is unpartitioned.
        defs = migrate_definitions(resource, project, environments=None if environment else {})
        use_definitions(defs)
        keys = script_keys(defs.resolve_asset_graph())
        with open_instance(home) as instance:
            for run_id in fail_abandoned_runs(instance, MIGRATE_JOB):
                console.log(f"Dagster run {run_id} was left STARTED by a dbops migrate that is gone: marked failed")
            if plan.problems():
                # Raises as --direct does, under the run lock: the attempts a killed run left are marked interrupted first.
                plan = engine.validate_locked(console.log)
            if not plan.pending() and not unrecorded(engine, plan, lambda m: keys.get(m.script), instance, environment):
                print_results(console, [], target, time.perf_counter() - started, None)
                return 0
            selection = pending_selection(engine, plan, keys)
            if not selection:
                console.result(f"Nothing to migrate: no scripts in {', '.join(settings.locations)}.")
                return 0
            # Subset here, checks excluded: given as execute_job(asset_selection=...), Dagster would add
            # the checks of the selected assets to the run.
            job = reconstructable(launched_migrate_job).get_subset(
                asset_selection=frozenset(selection), asset_check_selection=frozenset()
            )
            try:
                result = execute_job(
                    job,
                    instance=instance,
                    run_config=run_config(settings, verbose),
                    tags={**run_tags(source, commit, target, environment), **process_tags(), **partition_tags(environment)},
                )
                events = list(result.all_events)
            except Exception as exc:  # the storage failed mid-run; its drivers raise errors of many kinds
                raise storage_failure(home, exc, during_run=True) from None
            run_id = result.run_id
    if verbose:
        console.log(f"Dagster run {run_id} on the instance in {home}")
    return report_run(console, events, engine, run_id, time.perf_counter() - started)


def report_run(console: Console, events: list[Any], engine: Engine, run_id: str, elapsed: float) -> int:
    """What --direct prints for the run's applied scripts (or its error), plus the run id; the exit code."""
    target = engine.target.redacted_url
    results = results_from_events(events, engine)
    late = late_count(events)
    if late:
        console.log(f"recorded {late} materialization(s) late: scripts the history table has as applied that the "
                    "Dagster instance had no materialization for")
    if not console.tty and not console.as_json:
        for r in results:
            console.result(f"applied {r.migration.path} ({r.statements} statements, {r.execution_ms} ms)")
    error, code = failure_of(events)
    if error is not None:
        console.error(redact(error), code, run_id=run_id, applied=[result_json(r) for r in results])
        print(f"Dagster run: {run_id} (failed)", file=sys.stderr)
        return code
    print_results(console, results, target, elapsed, run_id)
    return 0


def results_from_events(events: list[Any], engine: Engine) -> list[ScriptResult]:
    """The applied scripts, rebuilt from the run's materialization metadata."""
    by_script: dict[str, Migration] = {m.script: m for m in engine.catalog.migrations + engine.catalog.baseline}
    results: list[ScriptResult] = []
    for event in events:
        if event.event_type != DagsterEventType.ASSET_MATERIALIZATION:
            continue
        metadata = {k: getattr(v, "value", v) for k, v in event.event_specific_data.materialization.metadata.items()}
        migration = by_script.get(str(metadata.get("script", "")))
        if migration is None or metadata.get(RECORDED_LATE):
            continue
        results.append(
            ScriptResult(
                migration=migration,
                status="success",
                execution_ms=int(metadata.get("execution_time_ms", 0)),
                statements=int(metadata.get("statements", 0)),
                rows_affected=int(metadata.get("rows_affected", 0)),
                in_transaction=metadata.get("mode") == "transaction",
            )
        )
    return results


def late_count(events: list[Any]) -> int:
    """How many materializations the run recorded late (see dbops.orchestration.reconcile)."""
    return sum(
        1 for e in events
        if e.event_type == DagsterEventType.ASSET_MATERIALIZATION and RECORDED_LATE in e.event_specific_data.materialization.metadata
    )


def failure_of(events: list[Any]) -> tuple[str | None, int]:
    """The engine's message and exit code when a step or the run failed; (None, 0) when it succeeded."""
    for event in events:
        if event.event_type == DagsterEventType.STEP_FAILURE:
            data = event.step_failure_data
            user = data.user_failure_data
            if user is not None and EXIT_CODE in user.metadata:
                return user.description or "the migrate run failed", int(user.metadata[EXIT_CODE].value)
            return _cause_of(data.error), MigrationFailed.exit_code
    for event in events:
        if event.event_type == DagsterEventType.RUN_FAILURE:
            return event.message or "the migrate run failed", MigrationFailed.exit_code
    return None, 0


def _cause_of(error: Any) -> str:
    """What made a step fail that raised no Failure: its innermost cause, not Dagster's wrapper around it."""
    if error is None:
        return "the migrate step failed"
    while getattr(error, "cause", None) is not None:
        error = error.cause
    return f"the migrate step failed: {error.message.strip()}"


def open_ui(console: Console, settings: Settings, url: str | None) -> int:
    """`dagster dev` on this project and the local instance (DAGSTER_HOME), on 127.0.0.1 (port DBOPS_UI_PORT, default 3000)."""
    home = dagster_home()
    port = os.environ.get("DBOPS_UI_PORT", "3000")
    target = ["-w", "workspace.yaml"] if Path("workspace.yaml").is_file() else ["-m", "dbops.definitions"]
    command = [sys.executable, "-m", "dagster", "dev", *target, "-h", "127.0.0.1", "-p", port]
    console.result(f"Dagster UI: http://127.0.0.1:{port} (instance: {home}); Ctrl+C stops it.")
    with settings_environment(settings, url):
        try:
            return subprocess.call(command)
        except KeyboardInterrupt:
            return 0
