"""Environments deployed: one ECS task per environment run, as many at once as the pool allows, each with its own
role (infra/dagster_environment.yaml) that alone reads its secret, and no other target's password in its task."""
from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from infra_templates import DAGSTER_DRIVER, INFRA, load_rendered, load_template

from dbops.orchestration.partitions import deployment_tags
from dbops.orchestration.rollout import PARALLEL_VARIABLE

ECS_HOME = INFRA / "dagster_ecs"
TASKS = ("WebserverTaskDefinition", "DaemonTaskDefinition", "CodeLocationTaskDefinition", "RunTaskDefinition",
         "EnvironmentRunTaskDefinition")


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    return load_rendered("dagster.yaml", **DAGSTER_DRIVER)["Resources"]


def environment(resources: dict[str, Any], task: str) -> dict[str, Any]:
    (container,) = resources[task]["Properties"]["ContainerDefinitions"]
    return {e["Name"]: e["Value"] for e in container["Environment"]}


def test_the_pool_the_tag_limit_and_the_rollouts_parallelism_are_one_number(resources) -> None:
    concurrency = yaml.safe_load((ECS_HOME / "dagster.yaml").read_text())["concurrency"]
    limits = concurrency["runs"]["tag_concurrency_limits"]
    (together,) = [limit for limit in limits if limit["key"] == "dbops/environment" and "value" not in limit]
    (each,) = [limit for limit in limits if limit["key"] == "dbops/environment" and "value" in limit]
    assert concurrency["pools"] == {"granularity": "run", "default_limit": together["limit"]}
    assert each == {"key": "dbops/environment", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
    for task in TASKS:
        assert environment(resources, task)[PARALLEL_VARIABLE] == str(together["limit"]), task


def test_environment_runs_use_their_own_task_definition_and_role(resources) -> None:
    run = resources["EnvironmentRunTaskDefinition"]["Properties"]
    (container,) = run["ContainerDefinitions"]
    assert container["Name"] == yaml.safe_load((ECS_HOME / "dagster.yaml").read_text())["run_launcher"]["config"]["container_name"]
    assert "DBOPS_PASSWORD" not in {s["Name"] for s in container["Secrets"]}
    assert "DBOPS_URL" not in {e["Name"] for e in container["Environment"]}
    for task in TASKS:
        env = environment(resources, task)
        assert env["DBOPS_ENVIRONMENT_RUN_TASK_DEFINITION"] == run["Family"]
        assert env["DBOPS_ENVIRONMENT_TASK_ROLE"] == {
            "Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${AWS::StackName}-env-{environment}"}
    statements = {s["Sid"]: s for s in resources["TaskPolicy"]["Properties"]["PolicyDocument"]["Statement"]}
    assert {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${AWS::StackName}-env-*"} in statements["PassRunRoles"]["Resource"]
    assert any("-environment-run:*" in r["Fn::Sub"] for r in statements["LaunchRuns"]["Resource"])
    role = load_template("dagster_environment.yaml")["Resources"]["EnvironmentRunRole"]["Properties"]
    # dagster.yaml's {environment} role is the one dagster_environment.yaml names, given the same stack name
    assert role["RoleName"] == {"Fn::Sub": "${DagsterStackName}-env-${EnvironmentName}"}


def test_an_environments_role_reads_its_own_secret_and_nothing_else_secret() -> None:
    role = load_template("dagster_environment.yaml")["Resources"]["EnvironmentRunRole"]["Properties"]
    (policy,) = role["Policies"]
    statements = policy["PolicyDocument"]["Statement"]
    secret_reads = [s for s in statements if str(s["Action"]).startswith("secretsmanager:")]
    assert [s["Resource"] for s in secret_reads] == [{"Ref": "SecretArn"}]
    assert role["ManagedPolicyArns"] == [{"Fn::ImportValue": {"Fn::Sub": "${DagsterStackName}-RunWorkerPolicyArn"}}]
    worker = load_template("dagster.yaml")["Resources"]["RunWorkerPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert not any("secretsmanager" in json.dumps(s) for s in worker), "runs of every environment share this policy"


def test_ecs_run_launcher_reads_the_environment_tags() -> None:
    """dagster-aws's EcsRunLauncher turns a run's `ecs/task_overrides` and `ecs/run_task_kwargs` tags into its
    RunTask call. Its two private readers are called here on purpose: this test breaks when dagster-aws changes
    how it reads them, which is what the deployed per-environment role depends on."""
    from dagster import DagsterRun
    from dagster_aws.ecs import EcsRunLauncher
    from dagster_aws.ecs.container_context import EcsContainerContext

    tags = deployment_tags("tenant-07", {
        "DBOPS_ENVIRONMENT_TASK_ROLE": "arn:aws:iam::123456789012:role/dbops-dagster-env-{environment}",
        "DBOPS_ENVIRONMENT_RUN_TASK_DEFINITION": "dbops-dagster-environment-run",
    })
    run = DagsterRun(job_name="migrate", run_id="r1", tags=tags)
    overrides = EcsRunLauncher._get_task_overrides(None, EcsContainerContext(), run)
    assert overrides == {"taskRoleArn": "arn:aws:iam::123456789012:role/dbops-dagster-env-tenant-07"}
    assert EcsRunLauncher._get_run_task_kwargs_from_run(None, run) == {"taskDefinition": "dbops-dagster-environment-run"}
    assert deployment_tags("tenant-07", {}) == {}
