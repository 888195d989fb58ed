"""Rollouts in Dagster: each environment's run of a commit, read back from the instance, and the sensor that
advances a rollout wave by wave from those runs' statuses.

A rollout has no state of its own: its runs carry `dbops/rollout` (the commit id), `dbops/environment`
(also their partition) and `dbops/wave`, and `waves.next_step` reads the latest run of each environment.
So a rollout resumes wherever it is started again — by the sensor, by `dbops rollout`, by re-executing
a failed run in the UI — and applies only what is missing where.
"""
from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from dbops.environments import Environment
from dbops.errors import ConfigError
from dbops.orchestration.partitions import PARTITION_TAG, deployment_tags
from dbops.orchestration.selection import MigrationAssets, expected_pending, pending_request, sensor_assets
from dbops.orchestration.tags import (
    TAG_AUTHOR,
    TAG_COMMIT,
    TAG_ENVIRONMENT,
    TAG_INCLUDED,
    TAG_MESSAGE,
    TAG_REPOSITORY,
    TAG_ROLLOUT,
    TAG_SOURCE,
    TAG_WAVE,
)
from dbops.orchestration.waves import ACTIVE, FAILED, SUCCEEDED, EnvironmentRun, WaveStep, next_step

PARALLEL_VARIABLE = "DBOPS_ROLLOUT_PARALLEL"
DEFAULT_PARALLEL = 4
RUN_HISTORY_LIMIT = 5000
ROLLOUT_INTERVAL_S = 15
# Tags every run of a rollout shares (the commit's); a run's own tags (environment, wave, partition) are added.
SHARED_TAGS = (TAG_SOURCE, TAG_REPOSITORY, "dbops/branch", TAG_COMMIT, TAG_AUTHOR, TAG_MESSAGE, TAG_INCLUDED, "dbops/new_scripts", TAG_ROLLOUT)
DONE_STATUSES = {DagsterRunStatus.SUCCESS: SUCCEEDED, DagsterRunStatus.FAILURE: FAILED, DagsterRunStatus.CANCELED: FAILED}


@dataclass
class Rollout:
    """One commit (or set of scripts) rolled out to `environments`; `tags`: what every run of it carries."""

    id: str
    environments: dict[str, Environment]
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def waves(self) -> dict[str, int]:
        return {name: env.wave for name, env in self.environments.items()}

    def run_tags(self, name: str) -> dict[str, str]:
        """The tags of the run that migrates environment `name` (its partition included)."""
        environment = self.environments[name]
        return {
            **{k: v for k, v in self.tags.items() if v},
            TAG_ROLLOUT: self.id,
            TAG_ENVIRONMENT: name,
            TAG_WAVE: str(environment.wave),
            PARTITION_TAG: name,
            **deployment_tags(name),
        }


def parallel_limit(environ: Mapping[str, str] | None = None) -> int:
    """How many environments a rollout runs at once: DBOPS_ROLLOUT_PARALLEL, default 4 (keep it equal to the
    `dbops_migrate` pool's limit, which bounds all runs together)."""
    environ = os.environ if environ is None else environ
    raw = environ.get(PARALLEL_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_PARALLEL
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{PARALLEL_VARIABLE}={raw!r}: give a whole number of environments, 1 or more")
    return int(raw)


def rollout_runs(instance: DagsterInstance, rollout: str, job_name: str) -> dict[str, EnvironmentRun]:
    """The latest run of each environment in `rollout`, with the error of a failed one."""
    latest: dict[str, EnvironmentRun] = {}
    for run in instance.get_runs(RunsFilter(job_name=job_name, tags={TAG_ROLLOUT: rollout}), limit=RUN_HISTORY_LIMIT):
        name = run.tags.get(TAG_ENVIRONMENT)
        if not name or name in latest:
            continue  # newest first: the first run seen of an environment is its latest
        state = DONE_STATUSES.get(run.status, ACTIVE)
        latest[name] = EnvironmentRun(name, state, run.run_id, run_error(instance, run.run_id) if state == FAILED else "")
    return latest


def rollout_started(instance: DagsterInstance, rollout: str, job_name: str) -> float:
    """When the rollout's first run was created (now, before it has one)."""
    first = instance.get_run_records(RunsFilter(job_name=job_name, tags={TAG_ROLLOUT: rollout}), limit=1, ascending=True)
    return first[0].create_timestamp.timestamp() if first else time.time()


def run_error(instance: DagsterInstance, run_id: str) -> str:
    """What made a run fail: the migrate step's message (the engine's, redacted), else the run's failure message."""
    entries = instance.all_logs(run_id, of_type={DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE})
    events = [e.dagster_event for e in entries if e.dagster_event is not None]
    for event in events:
        if event.event_type == DagsterEventType.STEP_FAILURE:
            data = event.step_failure_data
            if data.user_failure_data is not None and data.user_failure_data.description:
                return data.user_failure_data.description
            if data.error is not None:
                return data.error.message.strip().splitlines()[0]
    for event in events:
        if event.message:
            return event.message
    return "the run was canceled or failed before its step ran"


def rollout_requests(
    instance: DagsterInstance, rollout: Rollout, job_name: str, capacity: int, assets: MigrationAssets | None = None
) -> tuple[WaveStep, list[RunRequest]]:
    """The rollout's next step and the run requests that start it (run_key: rollout and environment).

    With the migration `assets` (a sensor's loaded definitions), each run selects what the instance expects to be
    pending in its environment and applies whatever is (dbops.orchestration.selection); else the whole job."""
    step = next_step(rollout.waves, rollout_runs(instance, rollout.id, job_name), capacity)
    expected = expected_pending(instance, assets.keys, step.start, rollout_started(instance, rollout.id, job_name)) if assets and step.start else {}
    requests = [
        pending_request(f"{rollout.id}:{name}", rollout.run_tags(name), assets, expected.get(name), partition_key=name) for name in step.start
    ]
    return step, requests


def describe(rollout: Rollout, step: WaveStep) -> str:
    """One line on where a rollout stands."""
    head = f"rollout {rollout.id[:12]}"
    if step.done:
        return f"{head}: every wave succeeded ({len(step.succeeded)} environment(s))"
    failed = "; ".join(f"{r.environment} failed: {r.error}" for r in step.failed)
    if failed:
        return f"{head}: wave {step.wave} stopped, {failed}; {len(step.untouched)} environment(s) of the wave left untouched"
    return (
        f"{head}: wave {step.wave}, {len(step.succeeded)} succeeded, {len(step.active)} running, "
        f"{len(step.start)} starting, {len(step.untouched) - len(step.start)} waiting"
    )


def latest_sensor_rollout(instance: DagsterInstance, job_name: str) -> dict[str, str] | None:
    """The shared tags of the newest rollout a sensor started (newer ones supersede older ones)."""
    runs = instance.get_runs(RunsFilter(job_name=job_name, tags={TAG_SOURCE: "sensor"}), limit=1)
    if not runs or not runs[0].tags.get(TAG_ROLLOUT):
        return None
    return {k: runs[0].tags[k] for k in SHARED_TAGS if runs[0].tags.get(k)}


def rollout_sensor(job: Any, environments: Mapping[str, Environment], interval: int = ROLLOUT_INTERVAL_S) -> SensorDefinition:
    """Advances the newest rollout the git and CodeCommit sensors started: starts the next environments of its
    current wave as runs finish (DBOPS_ROLLOUT_PARALLEL at a time), the next wave when every one succeeded; a
    failure stops it until the environment's run succeeds (re-executed from the UI, or `dbops rollout`)."""
    waves = dict(environments)

    @sensor(
        name="rollout_sensor",
        job=job,
        minimum_interval_seconds=interval,
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            f"Advances the newest commit's rollout over {len(waves)} environment(s) wave by wave "
            f"({PARALLEL_VARIABLE} at a time, default {DEFAULT_PARALLEL}); a failure stops new starts."
        ),
    )
    def _rollout(context: SensorEvaluationContext):
        tags = latest_sensor_rollout(context.instance, job.name)
        if tags is None:
            return SkipReason("no rollout yet: the git and CodeCommit sensors start one for each new commit")
        try:
            capacity = parallel_limit()
        except ConfigError as exc:
            return SkipReason(str(exc))
        rollout = Rollout(tags[TAG_ROLLOUT], waves, tags)
        try:
            step, requests = rollout_requests(context.instance, rollout, job.name, capacity, sensor_assets(context))
        except ConfigError as exc:  # DBOPS_ENVIRONMENT_TASK_ROLE without {environment}
            return SkipReason(str(exc))
        return SensorResult(run_requests=requests, skip_reason=None if requests else SkipReason(describe(rollout, step)))

    return _rollout
