"""`dbops migrate` through Dagster (one run of the `migrate` job on the local instance) and `dbops ui`."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy.exc
import yaml
from dagster import (
    AssetKey,
    DagsterError,
    DagsterEventType,
    DagsterInstance,
    DagsterInvalidConfigError,
    DagsterInvariantViolationError,
    Definitions,
    JobDefinition,
    execute_job,
    reconstructable,
)
from dagster_shared.check import CheckError  # what Dagster's own checks raise (dagster._check re-exports it)

from dbops.config import Settings, settings_variables
from dbops.engine.applier import ScriptResult
from dbops.engine.engine import Engine
from dbops.engine.plan import Plan
from dbops.errors import ConfigError, MigrationFailed, StorageUnavailable
from dbops.orchestration.apply import EXIT_CODE, hold_storage_connection
from dbops.orchestration.assets import RESOURCE_KEY
from dbops.orchestration.build import MIGRATE_JOB, migrate_definitions
from dbops.orchestration.home import dagster_home
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
        project = MigrationProject.load(resource.settings(), resource.dialect, snapshot=engine.snapshot)
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


DIRECT = "or migrate with --direct"


@contextmanager
def open_instance(home: Path, hold: bool = True, fallback: str = DIRECT) -> Iterator[DagsterInstance]:
    """The instance at `home`, probed once, holding its storage connections (with `hold`; else the caller holds
    them later, see hold_storage_connection). A dagster.yaml Dagster cannot use is ConfigError naming the line or
    the key; a storage that cannot be used is StorageUnavailable, its advice ending with `fallback`."""
    try:
        instance = DagsterInstance.get()
        if hold:
            hold_storage_connection(instance)
        instance.get_runs(limit=1)
    except Exception as exc:  # storage drivers raise errors of many kinds
        raise (instance_config_problem(home, exc) or storage_failure(home, exc, during_run=False, fallback=fallback)) from None
    with instance:
        yield instance


def instance_config_problem(home: Path, exc: BaseException) -> ConfigError | None:
    """The ConfigError for an instance that failed because of what its dagster.yaml says: YAML that does not parse
    (its line and column), a key or value Dagster's schema refuses (Dagster's message names it), a storage class that
    cannot be loaded, a storage URL SQLAlchemy cannot parse. None for anything else (a storage that cannot be used)."""
    config = instance_config_file(home)
    fix = "fix it there (it is Dagster's instance configuration)"
    links = list(_chain(exc))
    if any(isinstance(link, ImportError) for link in links):  # a storage class whose module is not installed
        return ConfigError(f"{config}: {_first_line(exc).removeprefix('Failure condition: ')}; install the package "
                           "that provides it here, or fix the module and class it names")
    for link in links:
        if isinstance(link, yaml.MarkedYAMLError) and link.problem_mark is not None:
            mark = link.problem_mark
            what = ": ".join(part for part in (link.context, link.problem) if part)
            return ConfigError(f"{config}:{mark.line + 1}:{mark.column + 1}: not valid YAML ({what}); fix the YAML there")
        if isinstance(link, yaml.YAMLError):
            return ConfigError(f"{config}: not valid YAML ({_first_line(link)}); fix the YAML there")
        if isinstance(link, DagsterInvalidConfigError):
            reasons = [e.message.split('. Expected: "')[0].strip() for e in link.errors] or [_first_line(link)]
            return ConfigError(f"{config}: {'; '.join(redact(r) for r in reasons)}; {fix}")
        if isinstance(link, sqlalchemy.exc.ArgumentError):  # a storage URL that does not parse, an unknown dialect
            return ConfigError(f"{config}: {_first_line(link)}; {fix}")
        if isinstance(link, (DagsterInvariantViolationError, CheckError)):  # Dagster's checks of what the file asks for
            return ConfigError(f"{config}: {_first_line(link).removeprefix('Failure condition: ')}; {fix}")
    return None


def instance_config_file(home: Path) -> Path:
    """The instance's configuration file: dagster.yaml (or the dagster.yml Dagster also reads)."""
    yml = home / "dagster.yml"
    return yml if yml.exists() and not (home / "dagster.yaml").exists() else home / "dagster.yaml"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then what it was raised from or during, innermost last."""
    link: BaseException | None = exc
    while link is not None:
        yield link
        link = link.__cause__ or (None if link.__suppress_context__ else link.__context__)


def storage_failure(home: Path, exc: BaseException, during_run: bool, fallback: str = DIRECT) -> StorageUnavailable:
    """The one-line error for a Dagster storage that failed, naming the instance, the cause and what to do."""
    what = storage_cause(exc)
    where = f"the Dagster storage of the instance in {home} ({instance_config_file(home)})"
    if during_run:
        return StorageUnavailable(
            f"{where} failed during the run: {what}; the history table has every script applied so far, and the next "
            "dbops migrate records their materializations; check the storage's database, or use --direct meanwhile"
        )
    return StorageUnavailable(
        f"cannot use {where}: {what}; nothing was applied. Check that its database is reachable (the DAGSTER_PG_* "
        f"settings of a deployment; `dbops local start` for the local one){', ' + fallback if fallback else ''}"
    )


def storage_cause(exc: BaseException) -> str:
    """What made the storage fail, in one line without a password: the driver's own error at the bottom of the
    chain (dagster-postgres gives up with "too many retries for DB connection", raised from the last attempt's
    error; SQLAlchemy wraps the driver's), with the wrapper's words after it when they add something."""
    *_, root = _chain(exc)
    root = getattr(root, "orig", None) or root  # SQLAlchemy's DBAPIError: the driver's exception
    what = _first_line(root)
    if root is not exc and not isinstance(exc, DagsterError):
        wrapper = _first_line(exc)
        if wrapper not in what:
            what = f"{what} ({wrapper})"
    return what


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return redact(text.splitlines()[0])


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


class StorageRetryWarnings(logging.Filter):
    """Drops the warnings dagster-postgres logs on the root logger for each storage connection it retries (each
    with the whole SQLAlchemy error): a storage that stays down ends in one `error:` line with the cause instead,
    and one that comes back needed no message. Every other record passes."""

    MESSAGES = ("Retrying failed database connection", "Retrying failed database creation")

    def filter(self, record: logging.LogRecord) -> bool:
        from_dagster_postgres = "dagster_postgres" in record.pathname.replace("\\", "/").split("/")
        return not (record.levelno == logging.WARNING and from_dagster_postgres and str(record.msg).startswith(self.MESSAGES))


@contextmanager
def quiet_dagster(verbose: bool) -> Iterator[None]:
    """Keep Dagster's own warnings and INFO logs, and dagster-postgres's retry warnings, off the terminal unless -v."""
    logger = logging.getLogger("dagster")
    level = logger.level
    retries = StorageRetryWarnings()
    if not verbose:
        logger.setLevel(logging.WARNING)
        logging.getLogger().addFilter(retries)
    with warnings.catch_warnings():
        if not verbose:
            warnings.simplefilter("ignore")
        try:
            yield
        finally:
            logger.setLevel(level)
            logging.getLogger().removeFilter(retries)


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
