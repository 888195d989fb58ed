"""A run of one environment is queued with that environment's tags however it was started: a partition materialized
from the UI carries only `dagster/partition`, and the deployed run queue (infra/dagster_ecs/dagster.yaml's
run_coordinator) adds `dbops/environment` and the ECS task role and task definition of that environment's runs.
Checked on a real dagster-webserver reading that block, launching as the UI's Materialize does."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import yaml

from dbops.orchestration.run_coordinator import missing_environment_tags
from tests.orchestration.fleet_support import FLEET_SCRIPTS, make_fleet, write_flyway_toml
from tests.services import Service, free_port, graphql, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("rollout")]
ROOT = Path(__file__).resolve().parents[2]
WORKSPACE = "load_from:\n  - python_module:\n      module_name: dbops.definitions\n      location_name: dbops\n      working_directory: .\n"
DEPLOYED = {
    "DBOPS_ENVIRONMENT_TASK_ROLE": "arn:aws:iam::123456789012:role/dbops-dagster-env-{environment}",
    "DBOPS_ENVIRONMENT_RUN_TASK_DEFINITION": "dbops-dagster-environment-run",
}
LOADED = "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus } } } }"
LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status tags { key value } } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""


def test_a_run_of_no_environment_gets_no_tags_and_given_tags_are_kept() -> None:
    assert missing_environment_tags({"dbops/source": "ui"}, DEPLOYED) == {}
    rollout_run = {"dagster/partition": "tenant-01", "dbops/environment": "tenant-01",
                   "ecs/task_overrides": json.dumps({"taskRoleArn": "arn:aws:iam::123456789012:role/custom"})}
    assert missing_environment_tags(rollout_run, DEPLOYED) == {
        "ecs/run_task_kwargs": json.dumps({"taskDefinition": "dbops-dagster-environment-run"})}
    assert missing_environment_tags({"dagster/partition": "tenant-01"}, {}) == {"dbops/environment": "tenant-01"}


def test_a_partition_materialized_from_the_ui_is_queued_as_its_environments_run(tmp_path, monkeypatch, scripts, pg_server, dbops_home):
    scripts(FLEET_SCRIPTS)
    (tmp_path / "workspace.yaml").write_text(WORKSPACE)
    fleet = make_fleet(pg_server, [0, 1])
    write_flyway_toml(tmp_path / "flyway.toml", fleet)
    home = tmp_path / "dagster_home"
    home.mkdir()
    deployed = yaml.safe_load((ROOT / "infra" / "dagster_ecs" / "dagster.yaml").read_text())
    (home / "dagster.yaml").write_text(yaml.safe_dump({"run_coordinator": deployed["run_coordinator"], "telemetry": {"enabled": False}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBOPS_", "DAGSTER_"))}
    env.update({**DEPLOYED, "DAGSTER_HOME": str(home), "DBOPS_LOCATIONS": str(tmp_path / "sql"), "DBOPS_HOME": str(dbops_home)})
    port = free_port()
    server = Service.start("webserver", [str(Path(sys.executable).parent / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port),
                                         "-w", "workspace.yaml"], tmp_path, env, tmp_path)
    target = fleet[1].name
    params = {
        "selector": {"repositoryLocationName": "dbops", "repositoryName": "__repository__", "jobName": "__ASSET_JOB",
                     "assetSelection": [{"path": ["migrations", "v1__customers"]}]},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": target}]},
    }
    try:
        wait_for("the webserver loads the code location", lambda: all(
            e["loadStatus"] == "LOADED" for e in graphql(port, LOADED)["workspaceOrError"]["locationEntries"]) or None, [server], timeout=120)
        launched = graphql(port, LAUNCH, {"params": params})["launchRun"]
    finally:
        server.stop()
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run = launched["run"]
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert run["status"] == "QUEUED"  # the daemon launches it; no daemon here
    assert tags["dagster/partition"] == target and tags["dbops/environment"] == target
    assert json.loads(tags["ecs/task_overrides"]) == {"taskRoleArn": f"arn:aws:iam::123456789012:role/dbops-dagster-env-{target}"}
    assert json.loads(tags["ecs/run_task_kwargs"]) == {"taskDefinition": "dbops-dagster-environment-run"}


def test_a_task_role_without_its_placeholder_fails_the_run_with_the_reason_instead_of_queueing_it(monkeypatch) -> None:
    from dagster import DagsterRunStatus, Definitions, SubmitRunContext, asset, define_asset_job, instance_for_test

    @asset
    def anything() -> None:
        return None

    job = Definitions(assets=[anything], jobs=[define_asset_job("migrate")]).resolve_job_def("migrate")
    monkeypatch.setenv("DBOPS_ENVIRONMENT_TASK_ROLE", "arn:aws:iam::123456789012:role/dbops-env")
    coordinator = {"module": "dbops.orchestration.run_coordinator", "class": "EnvironmentRunCoordinator"}
    with instance_for_test(overrides={"run_coordinator": coordinator}) as instance:
        run = instance.create_run_for_job(job, tags={"dagster/partition": "tenant-01"})
        submitted = instance.run_coordinator.submit_run(SubmitRunContext(run, workspace=None))
        assert submitted.status == DagsterRunStatus.FAILURE
        reason = " ".join(e.message for e in instance.all_logs(run.run_id) if e.message)
    assert "not queued" in reason and "DBOPS_ENVIRONMENT_TASK_ROLE" in reason and "{environment}" in reason
