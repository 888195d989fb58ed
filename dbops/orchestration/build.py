"""Everything the code location holds: assets, checks, the migrate and validate jobs, schedule, sensors;
and the smaller set `dbops migrate` runs the migrate job from."""
from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

from dagster import (
    AssetSelection,
    DagsterInvalidDefinitionError,
    DefaultScheduleStatus,
    Definitions,
    JobDefinition,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SensorDefinition,
    SkipReason,
    define_asset_job,
    in_process_executor,
)

from dbops.environments import Environment
from dbops.errors import ConfigError
from dbops.orchestration.assets import RESOURCE_KEY, migration_assets, warehouse_assets
from dbops.orchestration.checks import checksum_checks, drift_check
from dbops.orchestration.migration_checks import always_check_keys
from dbops.orchestration.partitions import POOL, deployment_tags, environment_partitions
from dbops.orchestration.project import MigrationProject
from dbops.orchestration.resource import DbopsResource
from dbops.orchestration.tags import TAG_ENVIRONMENT, TAG_SOURCE
from dbops.orchestration.translator import MigrationTranslator

MIGRATE_JOB = "migrate"
VALIDATE_JOB = "validate"
NIGHTLY_VALIDATE = "nightly_validate"
NIGHTLY_CRON = "0 3 * * *"
AssetJob = Any  # what define_asset_job returns; Dagster does not export its class


def migrate_job(migrations) -> AssetJob:
    """Applies what is pending among the selected migration assets (all of them by default), in one process,
    with the migrations' own checks (not the checksum and drift checks of the validate job)."""
    return define_asset_job(
        MIGRATE_JOB,
        selection=AssetSelection.assets(migrations).without_checks() | AssetSelection.checks(*migrations.check_keys),
        executor_def=in_process_executor,
        description="Apply the pending migrations in order; one materialization per applied script.",
    )


def validate_job(one_time_checks=()) -> AssetJob:
    """Every asset check but the migration checks that hold only right after their migration (`one_time_checks`)."""
    return define_asset_job(
        VALIDATE_JOB,
        selection=AssetSelection.all_asset_checks() - AssetSelection.checks(*one_time_checks),
        executor_def=in_process_executor,
        description="Check applied scripts against their files, the schema against the last migrate's snapshot, and "
        "run again the migration checks marked -- dbops:always.",
    )


def validate_schedule(validate: AssetJob, environments: Mapping[str, Environment] | None = None) -> ScheduleDefinition:
    """The validate job on DBOPS_VALIDATE_CRON (default nightly at 03:00 UTC), one run per environment when there
    are environments; a bad cron is a ConfigError."""
    cron = os.environ.get("DBOPS_VALIDATE_CRON", "").strip() or NIGHTLY_CRON
    names = list(environments or {})

    def per_environment(context: ScheduleEvaluationContext) -> Iterator[RunRequest | SkipReason]:
        stamp = context.scheduled_execution_time.isoformat()
        try:
            tags = {name: deployment_tags(name) for name in names}
        except ConfigError as exc:  # DBOPS_ENVIRONMENT_TASK_ROLE without {environment}
            yield SkipReason(str(exc))
            return
        for name in names:
            yield RunRequest(run_key=f"{name}:{stamp}", tags={TAG_SOURCE: "schedule", TAG_ENVIRONMENT: name, **tags[name]})

    what = f" of each of the {len(names)} environments (one run each)" if names else ""
    try:
        return ScheduleDefinition(
            name=NIGHTLY_VALIDATE,
            job=validate,
            cron_schedule=cron,
            default_status=DefaultScheduleStatus.RUNNING,
            execution_fn=per_environment if names else None,
            tags=None if names else {TAG_SOURCE: "schedule"},
            description=f"Applied scripts against their files, schema drift, -- dbops:always checks{what}; cron {cron!r} in UTC (DBOPS_VALIDATE_CRON).",
        )
    except DagsterInvalidDefinitionError:
        raise ConfigError(f"DBOPS_VALIDATE_CRON={cron!r} is not a cron expression (five fields, e.g. '0 3 * * *')") from None


def sensors_for(job: AssetJob | JobDefinition, environments: Mapping[str, Environment] | None = None) -> list[SensorDefinition]:
    """git_sensor and codecommit_sensor (dbops.orchestration.sensors) targeting the migrate job, and
    alert_sensor (dbops.orchestration.alerts) for failed runs; with environments, each commit is a rollout
    and rollout_sensor (dbops.orchestration.rollout) advances it wave by wave."""
    from dbops.orchestration.alerts import alert_sensor
    from dbops.orchestration.sensors import build_sensors

    if not environments:
        return [*build_sensors(job), alert_sensor()]
    from dbops.orchestration.rollout import rollout_sensor

    return [*build_sensors(job, environments=environments), rollout_sensor(job, environments), alert_sensor()]


def build_definitions(
    resource: DbopsResource | None = None,
    translator: MigrationTranslator | None = None,
    project: MigrationProject | None = None,
    with_sensors: bool = True,
) -> Definitions:
    """The Definitions for `resource` (default: from DBOPS_* and flyway.conf) and the scripts it points at."""
    resource = resource or DbopsResource.from_env()
    environments = resource.environments()
    project = project or load_project(resource, environments)
    translator = translator or MigrationTranslator(dialect=resource.dialect, default_schema=resource.history_schema)
    migrations = environment_assets(project, translator, environments)
    last = translator.get_asset_key(project.migrations[-1])
    migrate = migrate_job(migrations)
    validate = validate_job(always_check_keys(project, translator, always=False))
    schedule = validate_schedule(validate, environments)
    return Definitions(
        assets=[migrations, *warehouse_assets(project, translator)],
        asset_checks=[*checksum_checks(project, translator), drift_check(last)],
        jobs=[migrate, validate],
        schedules=[schedule],
        sensors=sensors_for(migrate, environments) if with_sensors else [],
        resources={RESOURCE_KEY: resource},
    )


def migrate_definitions(
    resource: DbopsResource,
    project: MigrationProject,
    translator: MigrationTranslator | None = None,
    environments: Mapping[str, Environment] | None = None,
) -> Definitions:
    """Only what a run of the migrate job needs: the migrations multi_asset, the migrate job and the resource.

    `dbops migrate` runs the job in process; the checks (one per script), the tables' assets, the validate
    job and the sensors are the code location's, and building them costs more than the run for a large
    project. The migrate job is the same as the code location's (same snapshot), so the UI sees one job.
    `environments`: the partitions (default: the resource's flyway.toml; {} for a run on one URL).
    """
    translator = translator or MigrationTranslator(dialect=resource.dialect, default_schema=resource.history_schema)
    environments = resource.environments() if environments is None else environments
    migrations = environment_assets(project, translator, environments)
    return Definitions(assets=[migrations], jobs=[migrate_job(migrations)], resources={RESOURCE_KEY: resource})


def load_project(resource: DbopsResource, environments: Mapping[str, Environment]) -> MigrationProject:
    """The scripts the code location shows: read with the resource's settings, or with the first environment's
    (its placeholders and default schema) when there are environments."""
    if not environments:
        return MigrationProject.load(resource.settings(), resource.dialect)
    first = next(iter(environments.values()))
    return MigrationProject.load(resource.environment_settings(first), resource.dialect)


def environment_assets(project: MigrationProject, translator: MigrationTranslator, environments: Mapping[str, Environment]):
    """The migrations multi_asset: unpartitioned without environments, else one partition per environment in the
    `dbops_migrate` pool."""
    if not environments:
        return migration_assets(project, translator)
    return migration_assets(project, translator, partitions_def=environment_partitions(environments), pool=POOL)
