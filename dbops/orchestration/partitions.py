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
ECS_TASK_OVERRIDES = "ecs/task_overrides"  # read by dagster-aws's EcsRunLauncher


def environment_partitions(environments: Mapping[str, Environment]) -> StaticPartitionsDefinition:
    """One partition per environment, named as in flyway.toml."""
    return StaticPartitionsDefinition(list(environments))


def environment_of(tags: Mapping[str, str]) -> str | None:
    """The environment a run migrates or checks: its partition, else its dbops/environment tag; None: no environment."""
    return tags.get(PARTITION_TAG) or tags.get(TAG_ENVIRONMENT) or None


def deployment_tags(environment: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Run tags that give a deployed run its environment's own IAM role: with DBOPS_ENVIRONMENT_TASK_ROLE set
    (e.g. `arn:aws:iam::123456789012:role/dbops-env-{environment}`), EcsRunLauncher starts the run's ECS task
    with that role, which alone may read the environment's secret. Unset (local runs): no tags."""
    environ = os.environ if environ is None else environ
    template = environ.get(TASK_ROLE_VARIABLE, "").strip()
    if not template:
        return {}
    if "{environment}" not in template:
        raise ConfigError(f"{TASK_ROLE_VARIABLE}={template!r} must contain {{environment}}, e.g. arn:aws:iam::123456789012:role/dbops-env-{{environment}}")
    return {ECS_TASK_OVERRIDES: json.dumps({"taskRoleArn": template.replace("{environment}", environment)})}
