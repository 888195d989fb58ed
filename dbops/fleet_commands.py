"""`dbops migrate | info | validate` over several environments: one line per environment as it finishes, then a summary.

`migrate --direct` runs the engines in threads; `migrate` through Dagster runs one Dagster run per environment
(tagged dbops/environment) in `--parallel` worker processes (dbops.fleet_workers).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dbops.config import Settings
from dbops.engine.applier import RunInfo, ScriptResult
from dbops.environments import Environment, load_environments
from dbops.fleet import Outcome, Snapshots, engine_for, run_each, status_of_engine, worst_exit_code
from dbops.fleet_workers import RunOne, serve, through_workers
from dbops.output import Console, result_json
from dbops.scripts.sources import CommitInfo

SettingsOf = Callable[[Environment], Settings]
# Options of the parent's command line that a worker `dbops -e NAMES migrate --worker` must not get again.
PARENT_OPTIONS = ("-e", "--environment", "--parallel")
PARENT_FLAGS = ("--json",)


@dataclass
class Migrated:
    """What one environment's migrate applied (also when it then failed), and its Dagster run."""

    applied: list[dict[str, Any]] = field(default_factory=list)
    run_id: str | None = None


def prefixed(console: Console, environment: Environment) -> Callable[[str], None]:
    return lambda message: console.log(f"[{environment.name}] {message}")


def fleet_migrate(
    args: Any, console: Console, environments: Sequence[Environment], settings: SettingsOf, argv: Sequence[str],
    run_one: RunOne | None = None,
) -> int:
    """Migrate each environment, `--parallel` at a time (--direct: threads in this process; else Dagster runs in
    worker processes, see dbops.fleet_workers); the summary names the failed ones; the worst exit code.
    `run_one`: one environment's migrate in this process, for a worker (`--worker`)."""
    commit = CommitInfo(id=args.commit, author=args.author, message=args.message) if args.commit or args.author or args.message else None
    snapshots = Snapshots()
    records: dict[str, Migrated] = {}

    def direct(environment: Environment) -> Migrated:
        engine = engine_for(environment, settings(environment), snapshots=snapshots)
        record = records[environment.name] = Migrated()
        log = prefixed(console, environment)
        for warning in engine.catalog.warnings:
            log(f"warning: {warning}")
        if args.dry_run:
            record.applied = [{"script": e.script, "version": e.version, "pending": True} for e in engine.dry_run()]
            return record
        for result in engine.migrate(run=RunInfo(source=args.source, commit=commit), on_event=log):
            record.applied.append(result_json(result))
            if not console.as_json:
                log(_applied_line(result))
        return record

    def from_worker(outcome: Outcome[Any], document: dict[str, Any]) -> None:
        record = records[outcome.environment.name] = Migrated(list(document.get("applied") or []), document.get("run_id"))
        if not console.as_json:
            for applied in record.applied:
                console.log(f"[{outcome.environment.name}] applied {applied.get('script')} ({applied.get('statements')} statements, "
                            f"{applied.get('execution_time_ms')} ms)")
        _report_done(console, outcome, records)

    if getattr(args, "worker", False):
        assert run_one is not None, "a worker runs each environment with run_one"
        return serve(environments, run_one)
    started = time.perf_counter()
    if args.direct or args.dry_run:
        outcomes = run_each(environments, direct, args.parallel, on_done=lambda o: _report_done(console, o, records))
    else:
        outcomes = through_workers(environments, args.parallel, child_arguments(argv), load_environments(),
                                   lambda env, line: console.log(f"[{env.name}] {line}"), from_worker)
    code = worst_exit_code(outcomes)
    if console.as_json:
        console.json({
            "environments": [
                {**_outcome_json(o), **_migrated_json(records.get(o.environment.name))} for o in outcomes
            ],
            "failed": [o.environment.name for o in outcomes if not o.ok],
            "exit_code": code,
            "seconds": round(time.perf_counter() - started, 3),
        })
        return code
    runs = any(r.run_id for r in records.values())
    console.table(
        "Environments" + (" (dry run: nothing was changed)" if args.dry_run else ""),
        ["Environment", "Wave", "Result", "Would apply" if args.dry_run else "Applied", *(["Dagster run"] if runs else []), "Seconds", "Error"],
        (
            [o.environment.name, o.environment.wave, o.status, len(r.applied) if r else 0,
             *([(r.run_id or "") if r else ""] if runs else []), f"{o.seconds:.2f}", o.error]
            for o in outcomes
            for r in [records.get(o.environment.name)]
        ),
    )
    console.result(_summary("Migrated", outcomes, time.perf_counter() - started))
    return code


def fleet_info(console: Console, environments: Sequence[Environment], settings: SettingsOf, parallel: int) -> int:
    """One row per environment: latest version, pending, failed, last applied at, by which commit."""
    snapshots = Snapshots()

    def status(environment: Environment) -> Any:
        return status_of_engine(engine_for(environment, settings(environment), values_needed=False, snapshots=snapshots))

    outcomes = run_each(environments, status, parallel)
    code = worst_exit_code(outcomes)
    if console.as_json:
        console.json({
            "environments": [{**_outcome_json(o), **(o.value.as_dict() if o.value else {})} for o in outcomes],
            "exit_code": code,
        })
        return code
    console.table(
        "Environments",
        ["Environment", "Wave", "Latest version", "Pending", "Failed", "Last applied at", "Commit", "Error"],
        (
            [o.environment.name, o.environment.wave] + (
                [s.latest_version or "", s.pending, s.failed, f"{s.last_applied_at:%Y-%m-%d %H:%M:%S}" if s.last_applied_at else "",
                 s.commit[:12], ""] if (s := o.value) else ["", "", "", "", "", f"{o.status}: {o.error}"]
            )
            for o in outcomes
        ),
    )
    if code:
        console.result(_summary("Read", outcomes, None))
    return code


def fleet_validate(console: Console, environments: Sequence[Environment], settings: SettingsOf, parallel: int) -> int:
    """Validate each environment; exit 1 (or worse) when any has problems or cannot be read."""
    snapshots = Snapshots()

    def validate(environment: Environment) -> dict[str, Any]:
        engine = engine_for(environment, settings(environment), values_needed=False, snapshots=snapshots)
        plan = engine.plan(failures=True)
        return {"problems": plan.problems(), "pending": len(plan.pending()), "scripts": len(engine.catalog.migrations)}

    outcomes = run_each(environments, validate, parallel)
    for outcome in outcomes:
        if outcome.value and outcome.value["problems"]:
            outcome.exit_code = 1
            outcome.error = f"{len(outcome.value['problems'])} problem(s): {outcome.value['problems'][0]}"
    code = worst_exit_code(outcomes)
    if console.as_json:
        console.json({
            "environments": [{**_outcome_json(o), "valid": o.ok, **(o.value or {})} for o in outcomes],
            "exit_code": code,
        })
        return code
    for outcome in outcomes:
        for problem in (outcome.value or {}).get("problems", []):
            console.result(f"error: [{outcome.environment.name}] {problem}")
    console.table(
        "Environments",
        ["Environment", "Wave", "Result", "Pending", "Error"],
        ([o.environment.name, o.environment.wave, o.status, (o.value or {}).get("pending", ""), o.error] for o in outcomes),
    )
    console.result(_summary("Validated", outcomes, None))
    return code


def child_arguments(argv: Sequence[str]) -> list[str]:
    """The command line without the parent's environment selection, --parallel and --json (a worker's arguments)."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in PARENT_FLAGS:
            continue
        if arg in PARENT_OPTIONS:
            skip = True
            continue
        if any(arg.startswith(f"{o}=") for o in PARENT_OPTIONS if o.startswith("--")) or (arg.startswith("-e") and not arg.startswith("--")):
            continue
        kept.append(arg)
    return kept


def _applied_line(result: ScriptResult) -> str:
    return f"applied {result.migration.path} ({result.statements} statements, {result.execution_ms} ms)"


def _report_done(console: Console, outcome: Outcome[Any], records: dict[str, Migrated]) -> None:
    record = records.get(outcome.environment.name)
    applied = len(record.applied) if record else 0
    if outcome.ok:
        console.log(f"[{outcome.environment.name}] ok: {applied} migration(s) in {outcome.seconds:.2f}s")
    else:
        console.log(f"[{outcome.environment.name}] {outcome.status} (exit {outcome.exit_code}) after {applied} migration(s): {outcome.error}")


def _outcome_json(outcome: Outcome[Any]) -> dict[str, Any]:
    return {
        "environment": outcome.environment.name,
        "wave": outcome.environment.wave,
        "tags": outcome.environment.tags,
        "target": outcome.environment.redacted_url,
        "status": outcome.status,
        "exit_code": outcome.exit_code,
        "error": outcome.error or None,
        "seconds": round(outcome.seconds, 3),
    }


def _migrated_json(record: Migrated | None) -> dict[str, Any]:
    if record is None:
        return {"applied": [], "run_id": None}
    return {"applied": record.applied, "run_id": record.run_id}


def _summary(verb: str, outcomes: Sequence[Outcome[Any]], seconds: float | None) -> str:
    failed = [o for o in outcomes if not o.ok]
    took = f" in {seconds:.2f}s" if seconds is not None else ""
    head = f"{verb} {len(outcomes)} environment(s){took}: {len(outcomes) - len(failed)} ok"
    if not failed:
        return head + "."
    return head + f", {len(failed)} not: " + "; ".join(f"{o.environment.name} ({o.status}, exit {o.exit_code}): {o.error}" for o in failed)
