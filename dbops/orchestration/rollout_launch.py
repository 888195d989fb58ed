"""`dbops rollout`: a rollout from the command line (a terminal, CodeBuild) as runs on the local Dagster instance.

Each environment is one run of the migrate job (its partition), executed in one of `parallel` worker
processes that load the definitions once and then run environment after environment. Waves and the
first-failure stop come from `waves.next_step`, as for the rollout sensor; the runs carry the same tags,
so the UI shows them alike and either one resumes the other's rollout.
"""
from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from dagster import AssetKey, DagsterEventType, DagsterInstance, execute_job, reconstructable

from dbops.config import parse_placeholders, placeholder_variable
from dbops.engine.engine import Engine
from dbops.environments import Environment
from dbops.errors import ConfigError, DbopsError
from dbops.orchestration.apply import hold_storage_connection
from dbops.orchestration.build import MIGRATE_JOB, migrate_definitions
from dbops.orchestration.home import dagster_home
from dbops.orchestration.instance import open_instance, quiet_dagster
from dbops.orchestration.launch import failure_of, launched_migrate_job, patched_environ, pending_selection, run_tags, use_definitions
from dbops.orchestration.project import MigrationProject
from dbops.orchestration.reconcile import RECORDED_LATE, fail_abandoned_runs, process_tags
from dbops.orchestration.resource import DbopsResource
from dbops.orchestration.rollout import Rollout, rollout_runs
from dbops.orchestration.translator import script_keys
from dbops.orchestration.waves import ACTIVE, FAILED, SUCCEEDED, UNTOUCHED, EnvironmentRun, next_step, rollout_id
from dbops.output import Console
from dbops.scripts.sources import CommitInfo, FolderSource
from dbops.targets import open_target
from dbops.urls import redact

POLL_S = 0.5
_worker: dict[str, Any] = {}


@dataclass(frozen=True)
class Outcome:
    """How one environment's run ended."""

    environment: str
    run_id: str
    succeeded: bool
    error: str = ""
    exit_code: int = 0
    applied: int = 0
    seconds: float = 0.0


def load_definitions() -> None:
    """The migrate job's definitions for this process (and the workers it forks): the environments' partitions.
    The scripts read for them are kept too: each environment's plan and run apply the files as they were when the
    rollout started (what its id digests), not a script added to the folder meanwhile."""
    resource = DbopsResource.from_env()
    environments = resource.environments()
    settings = resource.environment_settings(next(iter(environments.values())))
    snapshot = FolderSource(settings.locations).snapshot()
    project = MigrationProject.load(settings, resource.dialect, snapshot=snapshot, keep_files=True)
    defs = migrate_definitions(resource, project, environments=environments)
    use_definitions(defs)
    _worker.update(resource=resource, snapshot=snapshot, locations=settings.locations, keys=script_keys(defs.resolve_asset_graph()))


def environment_selection(name: str) -> frozenset[AssetKey] | None:
    """The assets of what is pending in environment `name` (launch.pending_selection, as `dbops migrate` selects),
    read from its history table; None when it cannot be read, and the run, selecting every script, reports why.

    A run plans a materialization for each asset it selects (one stored event each, about 5 ms): selecting the
    whole job, a run that applied one new script to a project of 200 wrote 211 events instead of 11
    (bench/rollout_one_more.py)."""
    resource: DbopsResource = _worker["resource"]
    try:
        environment = resource.environment(name)
        settings = resource.environment_settings(environment)
        same_files = settings.locations == _worker["locations"]  # else its own locations are read
        engine = Engine(open_target(environment.target_url()), settings, snapshot=_worker["snapshot"] if same_files else None)
        return frozenset(pending_selection(engine, engine.plan(), _worker["keys"]))
    except DbopsError:
        return None


def start_worker(verbose: bool, loaded: bool) -> None:
    """A worker process: the definitions (inherited when forked) and its own instance, with its own connections."""
    _worker["verbose"] = verbose
    with quiet_dagster(verbose):
        if not loaded:
            load_definitions()
        instance = DagsterInstance.get()
        hold_storage_connection(instance)  # one pooled storage connection for all the worker's runs
        _worker["instance"] = instance


@contextmanager
def worker_pool(workers: int, verbose: bool) -> Iterator[ProcessPoolExecutor]:
    """`workers` processes, started now. Forked when this process has one thread (they inherit the imported modules
    and the loaded definitions; no storage connection is open yet), else from a fork server that imported dbops once."""
    if threading.active_count() == 1:
        context, loaded = multiprocessing.get_context("fork"), True
    else:
        context, loaded = multiprocessing.get_context("forkserver"), False
        context.set_forkserver_preload([__name__])
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=start_worker, initargs=(verbose, loaded))
    try:
        pool.submit(int).result()  # starts every worker before a storage connection or a thread exists here
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run_environment(name: str, tags: dict[str, str]) -> Outcome:
    """One run of the migrate job for environment `name`, in this worker; every pending script of it is selected."""
    started = time.perf_counter()
    instance: DagsterInstance = _worker["instance"]
    verbose = bool(_worker.get("verbose"))
    config = {"loggers": {"console": {"config": {"log_level": "INFO" if verbose else "CRITICAL"}}}}
    job = reconstructable(launched_migrate_job)
    selection = environment_selection(name)
    if selection:
        job = job.get_subset(asset_selection=selection)
    with quiet_dagster(verbose):
        result = execute_job(job, instance=instance, run_config=config, tags={**tags, **process_tags()})
        events = list(result.all_events)
    error, code = failure_of(events)
    applied = sum(
        1 for e in events
        if e.event_type == DagsterEventType.ASSET_MATERIALIZATION and RECORDED_LATE not in e.event_specific_data.materialization.metadata
    )
    return Outcome(name, result.run_id, error is None, redact(error or ""), code, applied, time.perf_counter() - started)


FLAG_VARIABLES = {"locations": "DBOPS_LOCATIONS", "schema": "DBOPS_SCHEMA", "table": "DBOPS_TABLE"}


@contextmanager
def flag_environment(flags: Mapping[str, Any]) -> Iterator[dict[str, str]]:
    """The command line's --locations, --schema, --table and --placeholder (only those given) as the DBOPS_*
    variables the workers' definitions read; set here too, restored afterwards."""
    values = {variable: str(flags[flag]) for flag, variable in FLAG_VARIABLES.items() if flags.get(flag)}
    values.update({placeholder_variable(k): v for k, v in parse_placeholders(flags.get("placeholder") or []).items()})
    with patched_environ(values):
        yield values


def launch_rollout(
    console: Console,
    environments: list[Environment],
    scripts: list[tuple[str, int | None]],
    *,
    parallel: int,
    commit: CommitInfo | None = None,
    source: str = "cli",
    flags: Mapping[str, Any] | None = None,
) -> int:
    """Roll the scripts (of `commit`) out to `environments` wave by wave, `parallel` environments at a time.

    A rerun of the same rollout (same commit, or the same scripts) starts again the environments whose last
    run failed and every one not started, skipping those that succeeded. Exit 0 when every wave succeeded,
    1 when a failure stopped a wave (the failed environments are named with their errors)."""
    if parallel < 1:
        raise ConfigError(f"--parallel {parallel}: run at least 1 environment at a time")
    selected = {env.name: env for env in environments}
    rollout = Rollout(rollout_id(commit.id if commit else None, scripts), selected, run_tags(source, commit, ""))
    started = time.perf_counter()
    with quiet_dagster(console.verbose), flag_environment(flags or {}):
        home = dagster_home()
        load_definitions()
        # The instance first, without a held connection: the storage modules are imported once, before the
        # workers fork, and the probe's connection is closed again (a forked worker must not share one).
        # No --direct advice when the storage is down: a rollout's waves are the instance's runs.
        with open_instance(home, hold=False, fallback="") as instance, worker_pool(min(parallel, len(selected)), console.verbose) as pool:
            hold_storage_connection(instance)
            for run_id in fail_abandoned_runs(instance, MIGRATE_JOB):
                console.log(f"Dagster run {run_id} was left STARTED by a dbops process that is gone: marked failed")
            state = {n: r for n, r in rollout_runs(instance, rollout.id, MIGRATE_JOB).items() if n in selected}
            retried = [r.environment for r in state.values() if r.state == FAILED]
            state.update({n: EnvironmentRun(n, UNTOUCHED) for n in retried})
            done_before = sorted(n for n, r in state.items() if r.state == SUCCEEDED)
            if done_before:
                console.log(f"rollout {rollout.id[:12]}: {len(done_before)} environment(s) already succeeded, skipped")
            if retried:
                console.log(f"rollout {rollout.id[:12]}: starting again {', '.join(sorted(retried))} (failed before)")
            outcomes = drive(console, instance, rollout, state, parallel, pool)
    return report(console, rollout, state, outcomes, time.perf_counter() - started)


def drive(
    console: Console, instance: DagsterInstance, rollout: Rollout, state: dict[str, EnvironmentRun], parallel: int, pool: ProcessPoolExecutor
) -> dict[str, Outcome]:
    """Start environments as `next_step` says until the rollout is done or stopped; running ones finish."""
    outcomes: dict[str, Outcome] = {}
    running: dict[Future[Outcome], str] = {}
    while True:
        step = next_step(rollout.waves, state, parallel)
        foreign = [n for n in step.active if n not in running.values()]
        if step.done or (step.stopped and not running):
            break
        for name in step.start:
            running[pool.submit(run_environment, name, rollout.run_tags(name))] = name
            state[name] = EnvironmentRun(name, ACTIVE)
        if not running:
            if not foreign:
                break
            time.sleep(POLL_S)  # runs of this rollout another process started: wait for them
            fresh = rollout_runs(instance, rollout.id, MIGRATE_JOB)
            state.update({n: fresh[n] for n in foreign if n in fresh})
            continue
        finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
        for future in finished:
            name = running.pop(future)
            try:
                outcome = future.result()
            except Exception as exc:  # the worker process died (killed, out of memory) or could not start
                outcome = Outcome(name, "", False, f"its worker process failed: {redact(str(exc)) or type(exc).__name__}", 1)
            outcomes[name] = outcome
            state[name] = EnvironmentRun(name, SUCCEEDED if outcome.succeeded else FAILED, outcome.run_id, outcome.error)
            if outcome.succeeded:
                console.log(f"{name}: applied {outcome.applied} script(s) (run {outcome.run_id[:8]}, {outcome.seconds:.1f} s)")
            else:
                console.log(f"{name}: failed (run {outcome.run_id[:8]}): {outcome.error}")
    return outcomes


def report(console: Console, rollout: Rollout, state: dict[str, EnvironmentRun], outcomes: dict[str, Outcome], elapsed: float) -> int:
    """The summary: per wave what succeeded, failed (with the error) and was left untouched; the exit code."""
    step = next_step(rollout.waves, state, 1)
    rows = []
    for name in sorted(rollout.environments, key=lambda n: (rollout.environments[n].wave, n)):
        run = state.get(name, EnvironmentRun(name, UNTOUCHED))
        outcome = outcomes.get(name)
        rows.append({
            "environment": name,
            "wave": rollout.environments[name].wave,
            "state": run.state,
            "run_id": run.run_id,
            "applied": outcome.applied if outcome else 0,
            "error": run.error,
        })
    failed = [r for r in rows if r["state"] == FAILED]
    if console.as_json:
        console.json({"rollout": rollout.id, "done": step.done, "stopped_at_wave": None if step.done else step.wave,
                      "environments": rows, "seconds": round(elapsed, 3),
                      "runs": [asdict(o) for o in outcomes.values()]})
    else:
        for wave in sorted({r["wave"] for r in rows}):
            of_wave = [r for r in rows if r["wave"] == wave]
            counts = {s: sum(1 for r in of_wave if r["state"] == s) for s in (SUCCEEDED, FAILED, UNTOUCHED)}
            console.result(f"wave {wave}: {counts[SUCCEEDED]} succeeded, {counts[FAILED]} failed, {counts[UNTOUCHED]} not started")
        for row in failed:
            console.result(f"failed: {row['environment']} (wave {row['wave']}, run {row['run_id'][:8]}): {row['error']}")
        if step.done:
            console.result(f"Rollout {rollout.id[:12]}: every wave succeeded, {len(rows)} environment(s) in {elapsed:.1f} s.")
        else:
            console.result(
                f"Rollout {rollout.id[:12]} stopped at wave {step.wave}: {len(failed)} environment(s) failed; fix them and run "
                "`dbops rollout` again (it starts the failed and the remaining environments only)."
            )
    return 0 if step.done else 1
