"""`dbops migrate | info | validate` over several environments: one line per environment as it finishes, then a summary.

`migrate --direct` runs the engines in threads; `migrate` through Dagster runs one `dbops -e NAME migrate` process
per environment (one Dagster run each, tagged dbops/environment), whose environment holds only that environment's
password variable.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dbops.config import Settings
from dbops.engine.applier import RunInfo, ScriptResult
from dbops.environments import SELECT_VARIABLE, Environment, load_environments
from dbops.errors import DbopsError
from dbops.fleet import Outcome, Snapshots, engine_for, first_line, run_each, status_of_engine, worst_exit_code
from dbops.output import Console, result_json
from dbops.scripts.sources import CommitInfo

SettingsOf = Callable[[Environment], Settings]
# Options of the parent's command line that a child `dbops -e NAME migrate` must not get again.
PARENT_OPTIONS = ("-e", "--environment", "--parallel")
PARENT_FLAGS = ("--json",)


class EnvironmentFailed(DbopsError):
    """An environment's child `dbops` ended with an error: its own message and exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Migrated:
    """What one environment's migrate applied (also when it then failed), and its Dagster run."""

    applied: list[dict[str, Any]] = field(default_factory=list)
    run_id: str | None = None


def prefixed(console: Console, environment: Environment) -> Callable[[str], None]:
    return lambda message: console.log(f"[{environment.name}] {message}")


def fleet_migrate(
    args: Any, console: Console, environments: Sequence[Environment], settings: SettingsOf, argv: Sequence[str]
) -> int:
    """Migrate each environment, `--parallel` at a time; the summary names the failed ones; the worst exit code."""
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

    def through_dagster(environment: Environment) -> Migrated:
        record = records[environment.name] = Migrated()
        completed = subprocess.run(
            [sys.executable, "-m", "dbops.cli", "-e", environment.name, "--json", *child_arguments(argv)],
            env=child_environment(environment, declared), capture_output=True, text=True, check=False,
        )
        log = prefixed(console, environment)
        for line in completed.stderr.splitlines():
            if line.strip() and not line.startswith("error: "):
                log(line)
        document = _last_document(completed.stdout)
        record.applied = list(document.get("applied") or [])
        record.run_id = document.get("run_id")
        if not console.as_json:
            for applied in record.applied:
                log(f"applied {applied.get('script')} ({applied.get('statements')} statements, {applied.get('execution_time_ms')} ms)")
        if completed.returncode:
            message = document.get("error") or first_line(completed.stderr) or f"dbops ended with exit code {completed.returncode}"
            raise EnvironmentFailed(message, completed.returncode)
        return record

    declared = load_environments() if not args.direct and not args.dry_run else {}
    work = direct if args.direct or args.dry_run else through_dagster
    started = time.perf_counter()
    outcomes = run_each(environments, work, args.parallel, on_done=lambda o: _report_done(console, o, records))
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
    """The command line without the parent's environment selection, --parallel and --json."""
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


def child_environment(environment: Environment, declared: dict[str, Environment]) -> dict[str, str]:
    """os.environ without the selection and without every other environment's password variable."""
    others = {e.password_variable for e in declared.values() if e.name != environment.name}
    others.discard(environment.password_variable)
    return {k: v for k, v in os.environ.items() if k != SELECT_VARIABLE and k not in others}


def _last_document(stdout: str) -> dict[str, Any]:
    try:
        document = json.loads(stdout) if stdout.strip() else {}
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


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
