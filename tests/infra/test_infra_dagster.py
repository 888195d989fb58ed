"""dagster.yaml (Dagster on ECS Fargate + RDS storage), read as a template, and the
instance/workspace files its image carries (infra/dagster_ecs/), validated by
Dagster's own config schemas with the environment the task definitions set.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

import pytest
import yaml
from infra_templates import DAGSTER_DRIVER, INFRA, load_rendered, load_template

ECS_HOME = INFRA / "dagster_ecs"
TASKS = ("WebserverTaskDefinition", "DaemonTaskDefinition",
         "CodeLocationTaskDefinition", "RunTaskDefinition")
IMPORT = "Fn::ImportValue"


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    return load_rendered("dagster.yaml", **DAGSTER_DRIVER)["Resources"]


def container(resources: dict[str, Any], task: str) -> dict[str, Any]:
    (only,) = resources[task]["Properties"]["ContainerDefinitions"]
    return only


def env_names(resources: dict[str, Any], task: str) -> tuple[set[str], set[str]]:
    c = container(resources, task)
    return {e["Name"] for e in c["Environment"]}, {s["Name"] for s in c["Secrets"]}


def referenced_env(path: str) -> set[str]:
    return set(re.findall(r"\{env: (\w+)\}", (ECS_HOME / path).read_text()))


def test_every_process_gets_the_environment_its_instance_config_reads(
    resources: dict[str, Any],
) -> None:
    needed = referenced_env("dagster.yaml") | referenced_env("workspace.yaml")
    assert {"DAGSTER_PG_PASSWORD", "DAGSTER_RUN_TASK_DEFINITION"} <= needed
    for task in TASKS:
        plain, secret = env_names(resources, task)
        assert needed <= plain | secret, (task, needed - plain - secret)
        assert {"DBOPS_URL", "DBOPS_CODECOMMIT_REPOSITORY"} <= plain, task
        assert "DBOPS_PASSWORD" in secret, task


def test_passwords_are_ecs_secrets_from_secrets_manager(resources: dict[str, Any]) -> None:
    for task in TASKS:
        c = container(resources, task)
        for var in c["Environment"]:
            assert not re.search(r"PASSWORD|SECRET|TOKEN|USERNAME", var["Name"]), (task, var["Name"])
        secrets = {s["Name"]: s["ValueFrom"] for s in c["Secrets"]}
        assert secrets["DAGSTER_PG_PASSWORD"] == {
            "Fn::Sub": "${StorageInstance.MasterUserSecret.SecretArn}:password::"}
        assert secrets["DBOPS_PASSWORD"] == {"Fn::Sub": [
            "${SecretArn}:password::",
            {"SecretArn": {IMPORT: {"Fn::Sub": "${RedshiftStackName}-SecretArn"}}}]}


def test_ecs_instance_config_is_valid_dagster_config(
    resources: dict[str, Any], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster._config import process_config, resolve_to_config_type
    from dagster._core.instance.ref import InstanceRef

    for name in referenced_env("dagster.yaml"):
        monkeypatch.setenv(name, "5432" if name.endswith("PORT") else f"value-of-{name.lower()}")
    (tmp_path / "dagster.yaml").write_text((ECS_HOME / "dagster.yaml").read_text())
    ref = InstanceRef.from_dir(str(tmp_path))
    classes = {}
    for data in (ref.storage_data, ref.run_coordinator_data, ref.run_launcher_data, ref.compute_logs_data):
        cls = getattr(importlib.import_module(data.module_name), data.class_name)
        result = process_config(resolve_to_config_type(cls.config_type()), yaml.safe_load(data.config_yaml))
        assert result.success, (data.class_name, result.errors)
        classes[data.class_name] = result.value
    assert set(classes) == {"DagsterPostgresStorage", "EnvironmentRunCoordinator",
                            "EcsRunLauncher", "S3ComputeLogManager"}
    launcher = classes["EcsRunLauncher"]
    assert launcher["secrets_tag"] is None  # no ListSecrets: the task definition has them
    run_container = container(resources, "RunTaskDefinition")
    assert run_container["Name"] == launcher["container_name"]
    run_family = resources["RunTaskDefinition"]["Properties"]["Family"]
    for task in TASKS:
        env = {e["Name"]: e["Value"] for e in container(resources, task)["Environment"]}
        assert env["DAGSTER_RUN_TASK_DEFINITION"] == run_family


def test_workspace_points_at_the_code_location_service(
    resources: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster._core.workspace.config_schema import process_workspace_config

    monkeypatch.setenv("DAGSTER_CODE_LOCATION_HOST", "code-location.dagster.dbops.internal")
    result = process_workspace_config(yaml.safe_load((ECS_HOME / "workspace.yaml").read_text()))
    assert result.success, result.errors
    (entry,) = result.value["load_from"]
    code = container(resources, "CodeLocationTaskDefinition")
    assert code["PortMappings"] == [{"ContainerPort": entry["grpc_server"]["port"], "Protocol": "tcp"}]
    assert code["Command"][code["Command"].index("--port") + 1] == str(entry["grpc_server"]["port"])
    assert resources["CodeLocationDiscovery"]["Properties"]["Name"] == "code-location"
    env = {e["Name"]: e["Value"] for e in code["Environment"]}
    assert env["DAGSTER_CODE_LOCATION_HOST"] == {"Fn::Sub": "code-location.${PrivateDnsNamespaceName}"}


def test_image_layout_matches_the_commands(resources: dict[str, Any]) -> None:
    dockerfile = (ECS_HOME / "Dockerfile").read_text()
    home = re.search(r"DAGSTER_HOME=(\S+)", dockerfile).group(1)
    assert home == "/app/infra/dagster_ecs"
    assert "COPY infra/dagster_ecs ./infra/dagster_ecs" in dockerfile
    assert "uv sync --frozen --no-dev" in dockerfile
    assert re.search(r"^USER (?!root|0\b)", dockerfile, re.MULTILINE)
    for task in ("WebserverTaskDefinition", "DaemonTaskDefinition"):
        command = container(resources, task)["Command"]
        workspace = command[command.index("--workspace") + 1]
        assert workspace.startswith(home + "/")
        assert (ECS_HOME / workspace.removeprefix(home + "/")).is_file()


def test_storage_is_private_encrypted_and_tls_only(resources: dict[str, Any]) -> None:
    db = resources["StorageInstance"]["Properties"]
    assert db["PubliclyAccessible"] is False
    assert db["StorageEncrypted"] is True and db["KmsKeyId"] == {"Ref": "DagsterKey"}
    assert db["ManageMasterUserPassword"] is True and "MasterUserPassword" not in db
    assert db["MultiAZ"] is True and db["DeletionProtection"] is True
    assert db["DBSubnetGroupName"] == {"Ref": "StorageSubnetGroup"}
    subnets = resources["StorageSubnetGroup"]["Properties"]["SubnetIds"]
    assert subnets == [{IMPORT: {"Fn::Sub": "${NetworkStackName}-PrivateSubnet1Id"}},
                       {IMPORT: {"Fn::Sub": "${NetworkStackName}-PrivateSubnet2Id"}}]
    assert resources["StorageParameterGroup"]["Properties"]["Parameters"]["rds.force_ssl"] == "1"
    assert resources["StorageInstance"]["DeletionPolicy"] == "Snapshot"


def test_storage_admits_5432_only_from_dagster_and_build(resources: dict[str, Any]) -> None:
    group = resources["StorageSecurityGroup"]["Properties"]
    rules = group["SecurityGroupIngress"]
    assert {(r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in rules} == {("tcp", 5432, 5432)}
    assert all(set(r) == {"IpProtocol", "FromPort", "ToPort", "SourceSecurityGroupId", "Description"}
               for r in rules)
    assert [r["SourceSecurityGroupId"] for r in rules] == [
        {IMPORT: {"Fn::Sub": "${NetworkStackName}-DagsterSecurityGroupId"}},
        {IMPORT: {"Fn::Sub": "${NetworkStackName}-BuildSecurityGroupId"}},
    ]


def test_services_run_privately_with_a_single_daemon(resources: dict[str, Any]) -> None:
    services = {n: r["Properties"] for n, r in resources.items() if r["Type"] == "AWS::ECS::Service"}
    assert set(services) == {"WebserverService", "DaemonService", "CodeLocationService"}
    for name, svc in services.items():
        net = svc["NetworkConfiguration"]["AwsvpcConfiguration"]
        assert net["AssignPublicIp"] == "DISABLED", name
        assert net["Subnets"] == [{IMPORT: {"Fn::Sub": "${NetworkStackName}-PrivateSubnet1Id"}},
                                  {IMPORT: {"Fn::Sub": "${NetworkStackName}-PrivateSubnet2Id"}}], name
        assert net["SecurityGroups"] == [
            {IMPORT: {"Fn::Sub": "${NetworkStackName}-DagsterSecurityGroupId"}}], name
    daemon = services["DaemonService"]
    assert daemon["DesiredCount"] == 1
    assert daemon["DeploymentConfiguration"]["MaximumPercent"] == 100


def test_ui_is_reachable_only_inside_the_vpc(resources: dict[str, Any]) -> None:
    ingress = {n: r["Properties"] for n, r in resources.items()
               if r["Type"] == "AWS::EC2::SecurityGroupIngress"}
    ui = [p for p in ingress.values() if p["FromPort"] == 3000]
    assert ui == [ingress["DagsterWebserverIngress"]]
    assert ui[0]["CidrIp"] == {IMPORT: {"Fn::Sub": "${NetworkStackName}-VpcCidr"}}
    assert not [r for r in resources.values() if r["Type"].startswith("AWS::ElasticLoadBalancing")]


def test_outputs_feed_the_pipeline_parameters() -> None:
    outputs = load_template("dagster.yaml")["Outputs"]
    pipeline_params = load_template("pipeline.yaml")["Parameters"]
    for output in ("StorageEndpoint", "StoragePort", "StorageDatabase",
                   "StorageSecretArn", "StorageSecretKmsKeyArn"):
        assert output in outputs
        assert "DagsterStorage" + output.removeprefix("Storage").replace("Endpoint", "Host") in pipeline_params
    build_env = set(re.findall(r"\{env: (\w+)\}", (INFRA / "dagster_home" / "dagster.yaml").read_text()))
    assert build_env == {n for n in referenced_env("dagster.yaml") if n.startswith("DAGSTER_PG_")}
