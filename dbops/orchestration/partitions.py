"""Environments in Dagster: one partition per environment, the pool that bounds them, and each run's environment.

The partitions are static (a StaticPartitionsDefinition of the flyway.toml's names): an environment is
added by editing flyway.toml and giving it a secret, both of which a code location reload picks up, so
dynamic partitions (changed through the instance, without a reload) would only let the partition set
drift from the file that says how to reach each environment.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping

from dagster import StaticPartitionsDefinition

from dbops.environments import Environment
from dbops.errors import ConfigError
from dbops.orchestration.tags import TAG_ENVIRONMENT

POOL = "dbops_migrate"  # the concurrency pool of the migrate step: how many environments migrate at once
PARTITION_TAG = "dagster/partition"
TASK_ROLE_VARIABLE = "DBOPS_ENVIRONMENT_TASK_ROLE"  # deployed: an IAM role ARN with {environment} in it
TASK_DEFINITION_VARIABLE = "DBOPS_ENVIRONMENT_RUN_TASK_DEFINITION"  # deployed: the run task without the single target's secret
ECS_TASK_OVERRIDES = "ecs/task_overrides"  # both read by dagster-aws's EcsRunLauncher from a run's tags
ECS_RUN_TASK_KWARGS = "ecs/run_task_kwargs"


def environment_partitions(environments: Mapping[str, Environment]) -> StaticPartitionsDefinition:
    """One partition per environment, named as in flyway.toml."""
    return StaticPartitionsDefinition(list(environments))


def environment_of(tags: Mapping[str, str]) -> str | None:
    """The environment a run migrates or checks: its partition, else its dbops/environment tag; None: no environment."""
    return tags.get(PARTITION_TAG) or tags.get(TAG_ENVIRONMENT) or None


def deployment_tags(environment: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Run tags that start a deployed run of `environment` as its own ECS task with its own IAM role.

    DBOPS_ENVIRONMENT_TASK_ROLE (e.g. `arn:aws:iam::123456789012:role/dbops-dagster-env-{environment}`) names the
    role that alone may read the environment's secret; DBOPS_ENVIRONMENT_RUN_TASK_DEFINITION the run task
    definition that carries no other target's URL or password. EcsRunLauncher reads `ecs/task_overrides` and
    `ecs/run_task_kwargs` from the run's tags. Unset (local runs): no tags."""
    environ = os.environ if environ is None else environ
    tags: dict[str, str] = {}
    template = environ.get(TASK_ROLE_VARIABLE, "").strip()
    if template:
        if "{environment}" not in template:
            raise ConfigError(f"{TASK_ROLE_VARIABLE}={template!r} must contain {{environment}}, e.g. arn:aws:iam::123456789012:role/dbops-env-{{environment}}")
        tags[ECS_TASK_OVERRIDES] = json.dumps({"taskRoleArn": template.replace("{environment}", environment)})
    family = environ.get(TASK_DEFINITION_VARIABLE, "").strip()
    if family:
        tags[ECS_RUN_TASK_KWARGS] = json.dumps({"taskDefinition": family})
    return tags
