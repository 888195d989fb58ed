"""dagster.yaml with ConnectionMode=data-api (README, "Redshift through the Data API"): every task that
runs dbops gets a redshift-data:// URL and no password, nothing may read the Redshift secret, and the task
role gets exactly the Data API calls pipeline.yaml's build role gets, on the one cluster or workgroup.
ConnectionMode=driver renders the template as it was before the parameter existed.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from infra_templates import DAGSTER_DRIVER, IAM_TYPES, as_list, load_rendered, load_template

TASKS = ("WebserverTaskDefinition", "DaemonTaskDefinition", "CodeLocationTaskDefinition",
         "RunTaskDefinition", "EnvironmentRunTaskDefinition")
SINGLE_TARGET_TASKS = TASKS[:4]
REDSHIFT_SECRET = {"Fn::ImportValue": {"Fn::Sub": "${RedshiftStackName}-SecretArn"}}
REDSHIFT_KEY = {"Fn::ImportValue": {"Fn::Sub": "${RedshiftStackName}-KmsKeyArn"}}
CLUSTER_ARN = "arn:${AWS::Partition}:redshift:${AWS::Region}:${AWS::AccountId}:cluster:${DataApiTargetName}"
WORKGROUP_ARN = "arn:${AWS::Partition}:redshift-serverless:${AWS::Region}:${AWS::AccountId}:workgroup/${DataApiWorkgroupId}"


def data_api(workgroup: bool) -> dict[str, Any]:
    return load_rendered("dagster.yaml", IsDataApi=True, IsDataApiWorkgroup=workgroup)


def container(template: dict[str, Any], task: str) -> dict[str, Any]:
    (only,) = template["Resources"][task]["Properties"]["ContainerDefinitions"]
    return only


def statements(template: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every statement of every IAM policy, by the resource that holds it."""
    found: dict[str, list[dict[str, Any]]] = {}
    for name, resource in template["Resources"].items():
        if resource["Type"] not in IAM_TYPES:
            continue
        props = resource["Properties"]
        docs = [props["PolicyDocument"]] if "PolicyDocument" in props else [p["PolicyDocument"] for p in props.get("Policies", [])]
        found[name] = [s for d in docs for s in as_list(d["Statement"])]
    return found


def redshift_actions(template: dict[str, Any]) -> dict[str, list[str]]:
    return {name: [a for s in stmts for a in as_list(s["Action"]) if a.split(":")[0].startswith("redshift")]
            for name, stmts in statements(template).items()}


@pytest.mark.parametrize("workgroup", [False, True], ids=["cluster", "workgroup"])
def test_data_api_tasks_carry_the_redshift_data_url_and_no_password(workgroup: bool) -> None:
    template = data_api(workgroup)
    for task in TASKS:
        c = container(template, task)
        names = [e["Name"] for e in c["Environment"]] + [s["Name"] for s in c["Secrets"]]
        assert "DBOPS_PASSWORD" not in names, task
        assert "${RedshiftStackName}-SecretArn" not in repr(c), task
        assert [s["Name"] for s in c["Secrets"]] == ["DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD"], task
    for task in SINGLE_TARGET_TASKS:
        env = {e["Name"]: e["Value"] for e in container(template, task)["Environment"]}
        text, variables = env["DBOPS_URL"]["Fn::Sub"]
        assert text == "redshift-data://${DataApiTargetName}/${Database}?region=${AWS::Region}${Serverless}", task
        assert variables["Database"] == {"Fn::ImportValue": {"Fn::Sub": "${RedshiftStackName}-DatabaseName"}}
        assert variables["Serverless"] == ("&serverless=true" if workgroup else ""), task


@pytest.mark.parametrize("workgroup", [False, True], ids=["cluster", "workgroup"])
def test_data_api_task_role_gets_exactly_the_build_roles_data_api_calls_on_its_target(workgroup: bool) -> None:
    template = data_api(workgroup)
    by_sid = {s["Sid"]: s for s in statements(template)["TaskPolicy"]}
    execute, own, credentials = by_sid["DataApiStatements"], by_sid["DataApiOwnStatements"], by_sid["DataApiCredentials"]
    assert execute["Action"] == ["redshift-data:ExecuteStatement", "redshift-data:BatchExecuteStatement"]
    assert execute["Resource"] == {"Fn::Sub": WORKGROUP_ARN if workgroup else CLUSTER_ARN}
    assert own["Action"] == ["redshift-data:DescribeStatement", "redshift-data:GetStatementResult", "redshift-data:CancelStatement"]
    assert own["Resource"] == "*"
    assert own["Condition"] == {"StringEquals": {"redshift-data:statement-owner-iam-userid": "${aws:userid}"}}
    if workgroup:
        assert credentials == {"Sid": "DataApiCredentials", "Effect": "Allow", "Action": "redshift-serverless:GetCredentials",
                               "Resource": {"Fn::Sub": WORKGROUP_ARN}}
    else:
        assert credentials["Action"] == "redshift:GetClusterCredentialsWithIAM"
        assert credentials["Resource"]["Fn::Sub"][0].endswith(":dbname:${DataApiTargetName}/${Database}")
    # The same statements as pipeline.yaml's build role, and no other role gets any Redshift call.
    build = load_rendered("pipeline.yaml", IsDataApi=True, IsDataApiWorkgroup=workgroup, ReadsDagsterSecretKey=False)
    build_sids = {s["Sid"]: s for s in statements(build)["BuildRole"]}
    assert [build_sids[k] for k in ("DataApiStatements", "DataApiOwnStatements", "DataApiCredentials")] == [execute, own, credentials]
    assert {n: a for n, a in redshift_actions(template).items() if a} == {"TaskPolicy": [
        *execute["Action"], *own["Action"], credentials["Action"]]}


@pytest.mark.parametrize("workgroup", [False, True], ids=["cluster", "workgroup"])
def test_data_api_nothing_reads_the_redshift_secret(workgroup: bool) -> None:
    template = data_api(workgroup)
    for name, stmts in statements(template).items():
        for s in stmts:
            resources = as_list(s.get("Resource", []))
            assert REDSHIFT_SECRET not in resources and REDSHIFT_KEY not in resources, (name, s["Sid"])
    execution = {s["Sid"]: s for s in statements(template)["ExecutionRole"]}
    assert execution["ReadDatabaseSecrets"]["Resource"] == [{"Fn::GetAtt": ["StorageInstance", "MasterUserSecret.SecretArn"]}]
    assert not re.search(r"RedshiftStackName\}-SecretArn", repr(template["Resources"]))
    assert template["Outputs"]["DataApiDatabaseUser"]["Value"] == {"Fn::Sub": "IAMR:${TaskRole}"}


def test_data_api_tasks_stay_in_the_private_subnets() -> None:
    template = data_api(False)
    for service in ("CodeLocationService", "WebserverService", "DaemonService"):
        network = template["Resources"][service]["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
        assert network["AssignPublicIp"] == "DISABLED" and len(network["Subnets"]) == 2, service


def test_driver_mode_keeps_the_password_the_secret_and_no_data_api_call() -> None:
    template = load_rendered("dagster.yaml", **DAGSTER_DRIVER)
    for task in SINGLE_TARGET_TASKS:
        c = container(template, task)
        env = {e["Name"]: e["Value"] for e in c["Environment"]}
        assert env["DBOPS_URL"] == {"Fn::ImportValue": {"Fn::Sub": "${RedshiftStackName}-DbopsUrl"}}, task
        secrets = {s["Name"]: s["ValueFrom"] for s in c["Secrets"]}
        assert secrets["DBOPS_PASSWORD"] == {"Fn::Sub": ["${SecretArn}:password::", {"SecretArn": REDSHIFT_SECRET}]}, task
    execution = {s["Sid"]: s for s in statements(template)["ExecutionRole"]}
    assert REDSHIFT_SECRET in execution["ReadDatabaseSecrets"]["Resource"]
    assert REDSHIFT_KEY in execution["DecryptDatabaseSecrets"]["Resource"]
    assert not any(redshift_actions(template).values())
    assert template["Outputs"]["DataApiDatabaseUser"]["Condition"] == "IsDataApi"


def test_driver_mode_is_the_template_without_the_connection_mode() -> None:
    """Driver renders to the same template as before ConnectionMode, less the parameter's own parts."""
    raw = load_template("dagster.yaml")
    assert raw["Parameters"]["ConnectionMode"]["Default"] == "driver"
    driver = load_rendered("dagster.yaml", **DAGSTER_DRIVER)
    text = repr(driver["Resources"])
    assert not re.search(r"IsDataApi|DataApi|redshift-data|AWS::NoValue", text)
    if_conditions = set(re.findall(r"'Fn::If': \['(\w+)'", repr(raw["Resources"])))
    assert if_conditions == {"IsDataApi", "IsDataApiWorkgroup"}
