"""pipeline.yaml, read as a template (moto cannot deploy CodeBuild or CodePipeline).

What a reviewer checks: least-privilege IAM (here and in every other template), a
CodeBuild project inside the private subnets with its credentials only from Secrets
Manager, an encrypted private artifact bucket, a pipeline on the main branch, and a
build that records its runs on the shared Dagster instance.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from infra_templates import IAM_TYPES, INFRA, as_list, choose, drop_novalue, load_template, template_paths

# IAM evaluates these against "*" whatever the policy says (no resource-level
# permissions); they are read-only. Nothing else may use Resource "*".
UNSCOPABLE_ACTIONS = {
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcs",
    "ecs:DescribeTaskDefinition",
    "ecr:GetAuthorizationToken",
    # No resource types; limited by redshift-data:statement-owner-iam-userid to the caller's own statements
    # (test_data_api_mode_reads_only_its_own_statements checks the condition is there).
    "redshift-data:DescribeStatement",
    "redshift-data:GetStatementResult",
    "redshift-data:CancelStatement",
}


def render(value: Any) -> str:
    """A policy value as text: intrinsic functions become readable placeholders."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (fn, arg), = value.items()
        if fn == "Fn::Sub":
            return arg if isinstance(arg, str) else arg[0]
        if fn == "Fn::GetAtt":
            return f"<{'.'.join(arg) if isinstance(arg, list) else arg}>"
        if fn == "Ref":
            return f"<{arg}>"
        if fn == "Fn::ImportValue":
            return f"<import {render(arg)}>"
    return repr(value)


def expand_if(items: list[Any]) -> list[Any]:
    """Both branches of Fn::If in a list (AWS::NoValue dropped)."""
    out: list[Any] = []
    for item in items:
        if isinstance(item, dict) and set(item) == {"Fn::If"}:
            out += expand_if([b for b in item["Fn::If"][1:] if b != {"Ref": "AWS::NoValue"}])
        else:
            out.append(item)
    return out


def allow_statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(resource name, statement) for every Allow statement of every IAM policy."""
    found = []
    for name, res in template["Resources"].items():
        if res["Type"] not in IAM_TYPES:
            continue
        props = res["Properties"]
        docs = [p["PolicyDocument"] for p in props.get("Policies", [])]
        if "PolicyDocument" in props:
            docs.append(props["PolicyDocument"])
        for doc in docs:
            for stmt in expand_if(as_list(doc["Statement"])):
                if stmt["Effect"] == "Allow":
                    found.append((name, stmt))
    return found


def iam_problems(template: dict[str, Any]) -> list[str]:
    problems = []
    for name, stmt in allow_statements(template):
        if "NotAction" in stmt or "NotResource" in stmt:
            problems.append(f"{name}: NotAction/NotResource")
        actions = [render(a) for a in as_list(stmt["Action"])]
        resources = [render(r) for r in as_list(stmt.get("Resource", []))]
        for action in actions:
            if "*" in action:
                problems.append(f"{name}: wildcard action {action}")
        for resource in resources:
            if resource == "*":
                if not set(actions) <= UNSCOPABLE_ACTIONS:
                    problems.append(f"{name}: Resource * for {sorted(set(actions) - UNSCOPABLE_ACTIONS)}")
            else:
                plain = re.sub(r"\$\{[^}]+\}", "X", resource)  # ${AWS::Partition} etc.
                if re.fullmatch(r"arn:[^:]*:[^:]*:[^:]*:[^:]*:\*", plain):
                    problems.append(f"{name}: service-wide resource {resource}")
    return problems


@pytest.fixture(scope="module")
def pipeline() -> dict[str, Any]:
    return load_template("pipeline.yaml")


@pytest.fixture(scope="module")
def resources(pipeline: dict[str, Any]) -> dict[str, Any]:
    return pipeline["Resources"]


def of_type(resources: dict[str, Any], type_: str) -> dict[str, Any]:
    found = {n: r for n, r in resources.items() if r["Type"] == type_}
    assert found, f"no {type_}"
    return found


def single(resources: dict[str, Any], type_: str) -> dict[str, Any]:
    (only,) = of_type(resources, type_).values()
    return only["Properties"]


def build_project(resources: dict[str, Any], data_api: bool = False) -> dict[str, Any]:
    """The migration project as ConnectionMode renders it (driver unless `data_api`)."""
    return drop_novalue(choose(resources["BuildProject"]["Properties"], IsDataApi=data_api))


# ------------------------------------------------------------------ IAM


@pytest.mark.parametrize("path", template_paths(), ids=lambda p: p.name)
def test_iam_has_no_wildcard_actions_or_unscoped_resources(path: Path) -> None:
    assert iam_problems(load_template(path.name)) == []


def test_iam_check_catches_wildcards() -> None:
    bad = {"Resources": {"R": {"Type": "AWS::IAM::Role", "Properties": {"Policies": [
        {"PolicyDocument": {"Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": {"Fn::Sub": "${B.Arn}/*"}},
            {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": "*"},
            {"Effect": "Allow", "Action": "logs:PutLogEvents",
             "Resource": {"Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:*"}},
        ]}}]}}}}
    problems = iam_problems(bad)
    assert len(problems) == 3, problems


@pytest.mark.parametrize("path", template_paths(), ids=lambda p: p.name)
def test_roles_trust_one_service_of_this_account(path: Path) -> None:
    roles = {
        n: r["Properties"] for n, r in load_template(path.name)["Resources"].items()
        if r["Type"] == "AWS::IAM::Role"
    }
    for name, props in roles.items():
        for stmt in as_list(props["AssumeRolePolicyDocument"]["Statement"]):
            assert set(stmt["Principal"]) == {"Service"}, name
            assert isinstance(stmt["Principal"]["Service"], str), name
            assert stmt["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}, name


def test_build_reads_exactly_the_two_database_secrets(resources: dict[str, Any]) -> None:
    stmts = [s for n, s in allow_statements({"Resources": resources}) if n == "BuildRole"]
    readers = [s for s in stmts if "secretsmanager:GetSecretValue" in as_list(s["Action"])]
    (reader,) = readers
    assert as_list(reader["Action"]) == ["secretsmanager:GetSecretValue"]
    assert reader["Resource"] == [
        {"Fn::ImportValue": {"Fn::Sub": "${RedshiftStackName}-SecretArn"}},
        {"Ref": "DagsterStorageSecretArn"},
    ]
    (review,) = [s for n, s in allow_statements({"Resources": resources})
                 if n == "ReviewRole" and any(a.startswith("secretsmanager:") for a in as_list(s["Action"]))]
    assert as_list(review["Action"]) == ["secretsmanager:GetSecretValue"]
    assert review["Resource"] == {"Ref": "ReviewDatabaseSecret"}  # not the migration user's secret
    assert not [s for n, s in allow_statements({"Resources": resources})
                if n not in ("BuildRole", "ReviewRole") and any(a.startswith("secretsmanager:") for a in as_list(s["Action"]))]


# ------------------------------------------------------------------ CodeBuild


def test_codebuild_runs_in_the_private_subnets(resources: dict[str, Any]) -> None:
    """ConnectionMode=driver (the default)."""
    vpc = build_project(resources)["VpcConfig"]
    assert vpc["VpcId"] == {"Fn::ImportValue": {"Fn::Sub": "${NetworkStackName}-VpcId"}}
    assert vpc["Subnets"] == [
        {"Fn::ImportValue": {"Fn::Sub": "${NetworkStackName}-PrivateSubnet1Id"}},
        {"Fn::ImportValue": {"Fn::Sub": "${NetworkStackName}-PrivateSubnet2Id"}},
    ]
    assert vpc["SecurityGroupIds"] == [
        {"Fn::ImportValue": {"Fn::Sub": "${NetworkStackName}-BuildSecurityGroupId"}}
    ]


def test_codebuild_uses_a_current_image_and_the_repo_buildspec(resources: dict[str, Any]) -> None:
    project = resources["BuildProject"]["Properties"]
    env = project["Environment"]
    assert env["Image"] == "aws/codebuild/standard:7.0"
    assert env["Type"] == "LINUX_CONTAINER"
    assert env["PrivilegedMode"] is False
    assert project["Source"] == {"Type": "CODEPIPELINE", "BuildSpec": "buildspec.yml"}
    assert project["ConcurrentBuildLimit"] == 1
    assert project["EncryptionKey"] == {"Fn::GetAtt": ["PipelineKey", "Arn"]}


def env_vars(resources: dict[str, Any], data_api: bool = False) -> dict[str, dict[str, Any]]:
    project = build_project(resources, data_api)
    return {v["Name"]: v for v in project["Environment"]["EnvironmentVariables"]}


def test_credentials_come_only_from_secrets_manager(resources: dict[str, Any]) -> None:
    variables = env_vars(resources)
    password = variables["DBOPS_PASSWORD"]
    assert password["Type"] == "SECRETS_MANAGER"
    assert password["Value"] == {"Fn::Sub": [
        "${SecretArn}:password",
        {"SecretArn": {"Fn::ImportValue": {"Fn::Sub": "${RedshiftStackName}-SecretArn"}}},
    ]}
    assert variables["DAGSTER_PG_USERNAME"] == {
        "Name": "DAGSTER_PG_USERNAME", "Type": "SECRETS_MANAGER",
        "Value": {"Fn::Sub": "${DagsterStorageSecretArn}:username"}}
    assert variables["DAGSTER_PG_PASSWORD"] == {
        "Name": "DAGSTER_PG_PASSWORD", "Type": "SECRETS_MANAGER",
        "Value": {"Fn::Sub": "${DagsterStorageSecretArn}:password"}}
    for name, var in variables.items():
        assert var["Type"] in ("PLAINTEXT", "SECRETS_MANAGER"), name
        if re.search(r"PASSWORD|SECRET|TOKEN|CREDENTIAL", name):
            assert var["Type"] == "SECRETS_MANAGER", name


def test_dbops_url_is_the_password_free_redshift_url(resources: dict[str, Any]) -> None:
    url = env_vars(resources)["DBOPS_URL"]
    assert url["Value"] == {"Fn::ImportValue": {"Fn::Sub": "${RedshiftStackName}-DbopsUrl"}}
    template = load_template("redshift.yaml")["Outputs"]["DbopsUrl"]["Value"]["Fn::Sub"][0]
    assert template == "redshift://${MasterUsername}@${Host}:${Port}/${DatabaseName}"


def test_build_logs_go_to_an_encrypted_retained_log_group(resources: dict[str, Any]) -> None:
    logs = resources["BuildProject"]["Properties"]["LogsConfig"]
    assert logs["CloudWatchLogs"] == {"Status": "ENABLED", "GroupName": {"Ref": "BuildLogGroup"}}
    group = resources["BuildLogGroup"]["Properties"]
    assert group["KmsKeyId"] == {"Fn::GetAtt": ["PipelineKey", "Arn"]}
    assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}


# ------------------------------------------------------------------ Dagster instance of the build


def test_build_dagster_home_is_a_postgres_instance(
    resources: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """infra/dagster_home/dagster.yaml, with the variables the project sets, loads as
    dagster-postgres storage (validated by Dagster's own config schema)."""
    from dagster._config import process_config, resolve_to_config_type
    from dagster._core.instance.ref import InstanceRef
    from dagster_postgres import DagsterPostgresStorage
    from dagster_postgres.utils import pg_url_from_config

    variables = env_vars(resources)
    assert os.path.isabs(variables["DAGSTER_HOME"]["Value"])
    config_text = (INFRA / "dagster_home" / "dagster.yaml").read_text()
    referenced = set(re.findall(r"\{env: (\w+)\}", config_text))
    assert referenced and referenced <= set(variables), referenced - set(variables)

    values = {"DAGSTER_PG_HOST": "dagster-db.internal", "DAGSTER_PG_PORT": "5432",
              "DAGSTER_PG_DB": "dagster", "DAGSTER_PG_USERNAME": "dagster",
              "DAGSTER_PG_PASSWORD": "from-secrets-manager"}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    (tmp_path / "dagster.yaml").write_text(config_text)
    ref = InstanceRef.from_dir(str(tmp_path))
    assert ref.storage_data.class_name == DagsterPostgresStorage.__name__
    result = process_config(
        resolve_to_config_type(DagsterPostgresStorage.config_type()),
        yaml.safe_load(ref.storage_data.config_yaml),
    )
    assert result.success, result.errors
    assert pg_url_from_config(result.value) == (
        "postgresql://dagster:from-secrets-manager@dagster-db.internal:5432/dagster?sslmode=require"
    )


# ------------------------------------------------------------------ artifacts


def test_artifact_bucket_is_kms_encrypted_private_and_tls_only(resources: dict[str, Any]) -> None:
    bucket = resources["ArtifactBucket"]["Properties"]
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": {"Fn::GetAtt": ["PipelineKey", "Arn"]}}
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True,
        "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    for policy in of_type(resources, "AWS::S3::BucketPolicy").values():
        (deny,) = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    store = single(resources, "AWS::CodePipeline::Pipeline")["ArtifactStore"]
    assert store["Location"] == {"Ref": "ArtifactBucket"}
    assert store["EncryptionKey"] == {"Id": {"Fn::GetAtt": ["PipelineKey", "Arn"]}, "Type": "KMS"}


# ------------------------------------------------------------------ pipeline


def test_pipeline_builds_each_commit_of_main(pipeline: dict[str, Any], resources: dict[str, Any]) -> None:
    assert pipeline["Parameters"]["BranchName"]["Default"] == "main"
    props = single(resources, "AWS::CodePipeline::Pipeline")
    assert props["ExecutionMode"] == "QUEUED"
    source, build = props["Stages"]
    (checkout,) = source["Actions"]
    assert checkout["ActionTypeId"]["Provider"] == "CodeCommit"
    assert checkout["Configuration"]["RepositoryName"] == {"Fn::GetAtt": ["Repository", "Name"]}
    assert checkout["Configuration"]["BranchName"] == {"Ref": "BranchName"}
    assert checkout["Configuration"]["PollForSourceChanges"] == "false"
    (migrate,) = build["Actions"]
    assert migrate["ActionTypeId"]["Provider"] == "CodeBuild"
    assert migrate["Configuration"]["ProjectName"] == {"Ref": "BuildProject"}
    assert migrate["InputArtifacts"] == checkout["OutputArtifacts"]

    rule = resources["SourceChangeRule"]["Properties"]
    assert rule["EventPattern"]["resources"] == [{"Fn::GetAtt": ["Repository", "Arn"]}]
    assert rule["EventPattern"]["detail"]["referenceName"] == [{"Ref": "BranchName"}]
    (target,) = rule["Targets"]
    assert "${Pipeline}" in target["Arn"]["Fn::Sub"]


def test_imports_match_the_exports_of_the_stacks_they_name() -> None:
    """Every Fn::ImportValue "${XStackName}-Name" names an exported output of X."""
    producers = {"NetworkStackName": "network.yaml", "RedshiftStackName": "redshift.yaml",
                 "PipelineStackName": "pipeline.yaml", "DagsterStackName": "dagster.yaml"}
    for path in template_paths():
        text = path.read_text()
        for param, output in re.findall(r'ImportValue": !Sub "\$\{(\w+)\}-(\w+)"', text):
            outputs = load_template(producers[param])["Outputs"]
            assert output in outputs, f"{path.name} imports {param}-{output}"
            assert outputs[output]["Export"]["Name"] == {"Fn::Sub": f"${{AWS::StackName}}-{output}"}


def test_buildspec_and_project_agree(resources: dict[str, Any]) -> None:
    """buildspec.yml (repository root) finds what the project provides: the variables
    it keeps away from the tests, the Dagster instance file, the JUnit report group."""
    from infra_templates import REPO

    text = (REPO / "buildspec.yml").read_text()
    buildspec = yaml.safe_load(text)
    assert str(buildspec["version"]) == "0.2"
    provided = set(env_vars(resources))
    kept_from_tests = set(re.findall(r"-u (\w+)", text))
    assert {"DBOPS_URL", "DBOPS_PASSWORD", "DAGSTER_PG_PASSWORD"} <= kept_from_tests <= provided
    assert "infra/dagster_home/dagster.yaml" in text and '"$DAGSTER_HOME' in text
    project = resources["BuildProject"]["Properties"]["Name"]["Fn::Sub"]
    groups = {g["Properties"]["Name"]["Fn::Sub"]
              for g in of_type(resources, "AWS::CodeBuild::ReportGroup").values()}
    assert {f"{project}-{name}" for name in buildspec["reports"]} <= groups


@pytest.mark.parametrize(("parameter", "value", "ok"), [
    ("DagsterStorageSecretArn",
     "arn:aws:secretsmanager:eu-central-1:123456789012:secret:rds!db-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0-AbCdEf", True),
    ("DagsterStorageSecretArn", "rds!db-0f1e2d3c", False),
    ("DagsterStorageSecretKmsKeyArn", "", True),
    ("DagsterStorageSecretKmsKeyArn",
     "arn:aws:kms:eu-central-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab", True),
    ("DagsterStorageSecretKmsKeyArn", "alias/aws/secretsmanager", False),
])
def test_storage_parameters_accept_what_rds_and_kms_return(
    pipeline: dict[str, Any], parameter: str, value: str, ok: bool
) -> None:
    pattern = pipeline["Parameters"][parameter]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, value)) is ok


# ------------------------------------------------------------------ ConnectionMode=data-api


def build_statements(resources: dict[str, Any], **conditions: bool) -> dict[str, dict[str, Any]]:
    role = drop_novalue(choose(resources["BuildRole"]["Properties"], **conditions))
    (policy,) = role["Policies"]
    return {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}


def test_data_api_mode_has_no_vpc_and_no_password_or_secret(resources: dict[str, Any]) -> None:
    project = build_project(resources, data_api=True)
    assert "VpcConfig" not in project
    variables = env_vars(resources, data_api=True)
    assert not [n for n, v in variables.items() if v["Type"] == "SECRETS_MANAGER" or re.search(r"PASSWORD|SECRET|_PG_", n)]
    url = variables["DBOPS_URL"]["Value"]["Fn::Sub"]
    assert url[0] == "redshift-data://${DataApiTargetName}/${Database}?region=${AWS::Region}${Serverless}"
    assert url[1]["Serverless"] == {"Fn::If": ["IsDataApiWorkgroup", "&serverless=true", ""]}
    assert "VpcConfig" in build_project(resources) and "DBOPS_PASSWORD" in env_vars(resources)


@pytest.mark.parametrize("workgroup", [False, True], ids=["cluster", "workgroup"])
def test_data_api_mode_role_is_scoped_to_the_one_cluster_or_workgroup(resources: dict[str, Any], workgroup: bool) -> None:
    statements = build_statements(resources, IsDataApi=True, IsDataApiWorkgroup=workgroup, ReadsDagsterSecretKey=False)
    assert not {"ReadDatabaseSecrets", "DecryptRedshiftSecret", "DecryptDagsterStorageSecret"} & set(statements)
    assert not [sid for sid, s in statements.items() if any(a.startswith("ec2:") for a in as_list(s["Action"]))]
    execute = statements["DataApiStatements"]
    assert as_list(execute["Action"]) == ["redshift-data:ExecuteStatement", "redshift-data:BatchExecuteStatement"]
    credentials = statements["DataApiCredentials"]
    if workgroup:
        arn = "arn:${AWS::Partition}:redshift-serverless:${AWS::Region}:${AWS::AccountId}:workgroup/${DataApiWorkgroupId}"
        assert execute["Resource"] == {"Fn::Sub": arn} == credentials["Resource"]
        assert credentials["Action"] == "redshift-serverless:GetCredentials"
    else:
        assert execute["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:redshift:${AWS::Region}:${AWS::AccountId}:cluster:${DataApiTargetName}"}
        assert credentials["Action"] == "redshift:GetClusterCredentialsWithIAM"
        assert credentials["Resource"]["Fn::Sub"][0].endswith(":dbname:${DataApiTargetName}/${Database}")
    redshift = [a for s in statements.values() for a in as_list(s["Action"]) if a.split(":")[0].startswith("redshift")]
    assert sorted(redshift) == sorted([
        "redshift-data:ExecuteStatement", "redshift-data:BatchExecuteStatement", "redshift-data:DescribeStatement",
        "redshift-data:GetStatementResult", "redshift-data:CancelStatement", credentials["Action"],
    ])


def test_data_api_mode_reads_only_its_own_statements(resources: dict[str, Any]) -> None:
    own = build_statements(resources, IsDataApi=True, IsDataApiWorkgroup=False, ReadsDagsterSecretKey=False)["DataApiOwnStatements"]
    assert own["Resource"] == "*"
    assert own["Condition"] == {"StringEquals": {"redshift-data:statement-owner-iam-userid": "${aws:userid}"}}


def test_driver_mode_has_no_data_api_permission(resources: dict[str, Any]) -> None:
    statements = build_statements(resources, IsDataApi=False, HasDagsterSecretKey=True, ReadsDagsterSecretKey=True)
    assert not [a for s in statements.values() for a in as_list(s["Action"]) if a.startswith(("redshift-data:", "redshift:"))]
    assert {"ReadDatabaseSecrets", "VpcNetworkInterfaces"} <= set(statements)
