"""One truth across the two stores: the history table says what is applied; the Dagster instance follows.

A script can be applied without a materialization: the process was killed between the COMMIT and the
event, the Dagster storage was down, or the script came through `--direct` or Flyway. Each migrate run
records the missing materializations first, marked as recorded late, with the applied time and the
run and commit the audit table names. A run that a killed `dbops migrate` left STARTED is marked failed
by the next one on the same machine.
"""
from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from dagster import (
    AssetKey,
    AssetMaterialization,
    AssetRecordsFilter,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    MetadataValue,
    RunsFilter,
)

from dbops.engine.engine import Engine
from dbops.engine.history import AppliedAttempt, History
from dbops.engine.plan import SUCCESS, Plan
from dbops.orchestration.partitions import PARTITION_TAG
from dbops.scripts.migrations import Migration
from dbops.targets.base import Session

TAG_HOST = "dbops/host"
TAG_PROCESS = "dbops/process"
APPLIED_IN_RUN = "applied_in_run"
RECORDED_LATE = "recorded_late"
TAG_RECORDED_LATE = "dbops/recorded_late"  # on a run that recorded materializations late
LATE_RUNS = 20


@dataclass(frozen=True)
class Unrecorded:
    """An applied script whose latest application has no materialization."""

    key: AssetKey
    script: str  # relative to its location, as in the history table
    path: str
    version: str
    checksum: int | None
    applied_at: str
    attempt: AppliedAttempt | None


def unrecorded(
    engine: Engine,
    plan: Plan,
    key_of: Callable[[Migration], AssetKey | None],
    instance: DagsterInstance,
    partition: str | None = None,
    session: Session | None = None,
) -> list[Unrecorded]:
    """Applied scripts (history rows in state Success in `plan`) with no materialization for their latest application
    (in `partition`, the environment's, when the assets are partitioned by environment); the audit table is read on
    `session` (a migrate's, under its run lock), else on a session of its own."""
    entries = [e for e in plan.entries if e.state == SUCCESS and e.migration is not None and e.applied is not None]
    if not entries:
        return []
    with nullcontext(session) if session is not None else engine.session() as reading:
        attempts = History(reading, engine.settings.schema, engine.settings.table).successful_attempts()
        reading.rollback()
    keys = {e.script: key for e in entries if (key := key_of(e.migration)) is not None}
    applied = [(e, attempts.get((e.applied.script, e.applied.checksum))) for e in entries if e.script in keys]
    succeeded = succeeded_runs(instance, {attempt.run_id for _, attempt in applied if attempt is not None})
    doubtful = [(e, attempt) for e, attempt in applied if attempt is None or attempt.run_id not in succeeded]
    if doubtful and partition is not None:
        late = recorded_late_in(instance, {keys[e.script] for e, _ in doubtful}, partition)
        doubtful = [(e, attempt) for e, attempt in doubtful if not _records(late.get(keys[e.script]), e.applied.checksum, attempt)]
    latest = latest_materializations(instance, {keys[e.script] for e, _ in doubtful}, partition) if doubtful else {}
    missing = []
    for entry, attempt in doubtful:
        key, row = keys[entry.script], entry.applied
        if not _records(latest.get(key), row.checksum, attempt):
            applied_at = row.installed_on.isoformat(sep=" ", timespec="seconds") if row.installed_on else ""
            missing.append(Unrecorded(key, entry.script, entry.path, entry.version or "", row.checksum, applied_at, attempt))
    return missing


def succeeded_runs(instance: DagsterInstance, run_ids: set[str]) -> set[str]:
    """Those of `run_ids` that are runs of this instance that succeeded: a run succeeds only once it has stored the
    materialization of every script it applied, so what they applied needs no look at each asset (one query
    for all of them instead of one per asset and partition)."""
    if not run_ids:
        return set()
    return {run.run_id for run in instance.get_runs(RunsFilter(run_ids=sorted(run_ids), statuses=[DagsterRunStatus.SUCCESS]))}


def recorded_late_in(instance: DagsterInstance, keys: set[AssetKey], partition: str) -> dict[AssetKey, Any]:
    """The newest late materialization of each of `keys` in `partition`, from the runs that recorded some there (tagged
    `dbops/recorded_late`): one query per such run instead of one per asset. Scripts applied outside Dagster runs
    (--direct, Flyway) are looked up here on every run of their environment."""
    found: dict[AssetKey, Any] = {}
    runs = instance.get_runs(RunsFilter(tags={TAG_RECORDED_LATE: "true", PARTITION_TAG: partition}), limit=LATE_RUNS)
    for run in runs:  # newest first
        for entry in reversed(instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)):
            materialization = entry.asset_materialization
            if materialization is not None and materialization.partition == partition and materialization.asset_key in keys:
                found.setdefault(materialization.asset_key, entry)
    return found


def latest_materializations(instance: DagsterInstance, keys: set[AssetKey], partition: str | None) -> dict[AssetKey, Any]:
    """Each asset's latest materialization event (of `partition` only, when given)."""
    if partition is None:
        return {r.asset_entry.asset_key: r.asset_entry.last_materialization for r in instance.get_asset_records(list(keys))}
    latest = {}
    for key in keys:
        found = instance.fetch_materializations(AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1).records
        if found:
            latest[key] = found[0].event_log_entry
    return latest


def _records(event, checksum: int | None, attempt: AppliedAttempt | None) -> bool:
    """Whether materialization `event` stands for the application the history and audit tables describe."""
    if event is None or event.asset_materialization is None:
        return False
    metadata = {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}
    if attempt is not None:
        return attempt.run_id in (event.run_id, metadata.get(APPLIED_IN_RUN))
    return metadata.get("checksum") == checksum


def late_materializations(found: list[Unrecorded], target: str, partition: str | None = None) -> Iterator[AssetMaterialization]:
    """One materialization per unrecorded application (of `partition`, the run's environment), saying when and by
    which run it was applied."""
    for item in found:
        attempt = item.attempt
        run = attempt.run_id if attempt else ""
        how = f"in run {run}" if run else "outside dbops (no audit row: Flyway, or before dbops kept one)"
        yield AssetMaterialization(
            asset_key=item.key,
            partition=partition,
            description=f"recorded late: {item.path} was applied at {item.applied_at or 'an unknown time'} {how}",
            metadata={
                RECORDED_LATE: True,
                "applied_at": item.applied_at,
                APPLIED_IN_RUN: run,
                "script": item.script,
                "version": item.version,
                "checksum": MetadataValue.int(item.checksum or 0),
                "commit": attempt.commit_id if attempt else "",
                "author": attempt.commit_author if attempt else "",
                "source": attempt.source if attempt else "",
                "target": target,
            },
        )


def process_tags() -> dict[str, str]:
    """Tags that let a later `dbops migrate` on this machine tell whether this process still runs."""
    return {TAG_HOST: socket.gethostname(), TAG_PROCESS: f"{os.getpid()}:{_start_ticks(os.getpid())}"}


def fail_abandoned_runs(instance: DagsterInstance, job_name: str) -> list[str]:
    """Mark failed the STARTED runs of `job_name` that a dbops process on this machine started and that
    process is gone (killed); returns their run ids."""
    if not os.path.isdir("/proc"):  # no way to tell a live process from a gone one here
        return []
    host = socket.gethostname()
    runs = instance.get_runs(RunsFilter(job_name=job_name, statuses=[DagsterRunStatus.STARTED, DagsterRunStatus.STARTING],
                                        tags={TAG_HOST: host}))
    failed = []
    for run in runs:
        pid, _, ticks = run.tags.get(TAG_PROCESS, "").partition(":")
        if not pid.isdigit() or _start_ticks(int(pid)) == ticks:
            continue
        instance.report_run_failed(
            run,
            f"the dbops process that ran it (pid {pid} on {host}) is gone: it was killed, or its storage failed, before "
            "the run finished; marked failed by the next dbops migrate, which records anything it applied late",
        )
        failed.append(run.run_id)
    return failed


def _start_ticks(pid: int) -> str:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat); '' when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""
