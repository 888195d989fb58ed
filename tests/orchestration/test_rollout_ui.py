"""The Dagster UI after a rollout, over GraphQL on a real dagster-webserver: each migration's page has one
materialization per environment that applied it (its partition), the failed environment's partition is not
materialized, and the rollout's runs are found by their tags."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from dbops.cli import main
from tests.orchestration.fleet_support import FLEET_SCRIPTS, make_fleet, write_flyway_toml
from tests.services import Service, free_port, graphql, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("rollout")]
WORKSPACE = "load_from:\n  - python_module:\n      module_name: dbops.definitions\n      location_name: dbops\n      working_directory: .\n"
FLEET_STATE = """
query Fleet($path: [String!]!, $partition: String!, $tags: [ExecutionTag!]) {
  workspaceOrError { ... on Workspace { locationEntries { loadStatus } } }
  assetNodeOrError(assetKey: {path: $path}) { ... on AssetNode {
    partitionKeys
    assetPartitionStatuses { ... on DefaultPartitionStatuses { materializedPartitions unmaterializedPartitions } }
  } }
  assetOrError(assetKey: {path: $path}) { ... on Asset { assetMaterializations(partitions: [$partition]) { partition runId } } }
  runsOrError(filter: {tags: $tags}) { ... on Runs { results { runId status tags { key value } } } }
}
"""


def test_the_ui_shows_which_environments_have_each_migration(tmp_path, monkeypatch, scripts, pg_server, dbops_home, capsys):
    scripts(FLEET_SCRIPTS)
    (tmp_path / "workspace.yaml").write_text(WORKSPACE)
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    for variable in ("DBOPS_URL", "DBOPS_PASSWORD", "DBOPS_LOCATIONS", "DBOPS_ENVIRONMENT", "DBOPS_GIT_REPOSITORY"):
        monkeypatch.delenv(variable, raising=False)
    fleet = make_fleet(pg_server, [0, 0, 1])
    gone = fleet[2]
    write_flyway_toml(tmp_path / "flyway.toml", fleet, {gone.name: "postgresql://postgres@127.0.0.1:1/gone?connect_timeout=2"})
    assert main(["rollout", "--commit", "c0ffee", "--parallel", "2"]) == 1
    capsys.readouterr()

    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    server = Service.start("webserver", [str(Path(sys.executable).parent / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port),
                                         "-w", "workspace.yaml"], tmp_path, env, tmp_path)
    variables = {"path": ["migrations", "v2__orders"], "partition": fleet[1].name, "tags": [{"key": "dbops/rollout", "value": "c0ffee"}]}
    try:
        def loaded():
            state = graphql(port, FLEET_STATE, variables)
            entries = state["workspaceOrError"]["locationEntries"]
            return state if entries and all(e["loadStatus"] == "LOADED" for e in entries) else None

        state = wait_for("the webserver loads the code location", loaded, [server], timeout=120)
    finally:
        server.stop()
    node = state["assetNodeOrError"]
    assert node["partitionKeys"] == [e.name for e in fleet]
    statuses = node["assetPartitionStatuses"]
    assert sorted(statuses["materializedPartitions"]) == [fleet[0].name, fleet[1].name]
    assert statuses["unmaterializedPartitions"] == [gone.name]
    runs = {next(t["value"] for t in r["tags"] if t["key"] == "dbops/environment"): r for r in state["runsOrError"]["results"]}
    assert {n: r["status"] for n, r in runs.items()} == {fleet[0].name: "SUCCESS", fleet[1].name: "SUCCESS", gone.name: "FAILURE"}
    (materialization,) = state["assetOrError"]["assetMaterializations"]
    assert materialization == {"partition": fleet[1].name, "runId": runs[fleet[1].name]["runId"]}
    tags = {t["key"]: t["value"] for t in runs[gone.name]["tags"]}
    assert tags["dbops/wave"] == "1" and tags["dagster/partition"] == gone.name and tags["dbops/commit"] == "c0ffee"
