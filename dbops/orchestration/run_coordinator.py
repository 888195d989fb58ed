"""The deployment's run queue: a run of one environment is tagged as that environment's, however it was started.

Rollouts, sensors and the nightly validate tag their runs themselves (partitions.deployment_tags). A partition
materialized from the UI, a backfill or a re-execution started by hand carries only `dagster/partition`: without
the ECS tags it would start with the shared run task and role, which may not read the environment's secret, and
without `dbops/environment` the per-environment concurrency limits would not count it. The webserver and the
daemon submit every run through the run coordinator, so the tags are added there, before the run is queued, as
Dagster's guide to custom run coordinators does (a QueuedRunCoordinator whose submit_run adds tags).
"""
from __future__ import annotations

from collections.abc import Mapping

from dagster import DagsterRun, QueuedRunCoordinator, SubmitRunContext

from dbops.errors import ConfigError
from dbops.orchestration.partitions import deployment_tags, environment_of
from dbops.orchestration.tags import TAG_ENVIRONMENT


def missing_environment_tags(tags: Mapping[str, str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment tags a run of one environment lacks (none for a run of no environment); tags the run
    already has are kept as they are."""
    environment = environment_of(tags)
    if environment is None:
        return {}
    wanted = {TAG_ENVIRONMENT: environment, **deployment_tags(environment, environ)}
    return {key: value for key, value in wanted.items() if key not in tags}


class EnvironmentRunCoordinator(QueuedRunCoordinator):
    """QueuedRunCoordinator (same config) that adds a run's missing environment tags before queueing it; a run
    whose tags cannot be made (a bad DBOPS_ENVIRONMENT_TASK_ROLE) fails with the reason instead of being queued."""

    def submit_run(self, context: SubmitRunContext) -> DagsterRun:
        run = context.dagster_run
        try:
            missing = missing_environment_tags(run.tags)
        except ConfigError as exc:
            self._instance.report_run_failed(run, f"not queued: {exc}; fix the setting on the webserver and daemon, then re-execute the run")
            return self._instance.get_run_by_id(run.run_id) or run
        if missing:
            self._instance.add_run_tags(run.run_id, missing)
            tagged = self._instance.get_run_by_id(run.run_id)
            context = SubmitRunContext(tagged or run, context.workspace)
        return super().submit_run(context)
