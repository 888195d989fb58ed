"""pipeline.yaml's review of pull requests: which events start it, what the build is told, where it runs, what it may do.

moto's EventBridge matches events against the rule's event pattern; the input transformer's output is
checked against CodeBuild's StartBuild model and the approval rule template content against CodeCommit's
model (botocore); moto cannot deploy CodeBuild projects, so the rest is read from the template.

moto 5.2 answers TestEventPattern with nothing, and delivers events to targets only through jsonpath-ng
(not a dependency here), so the tests use its pattern matcher itself, `moto.events.models.EventPattern`
(what put_rule stores and put_events runs): a moto that renames it fails these tests at import.
"""
from __future__ import annotations

import ast
import fnmatch
import json
import re
from typing import Any

import botocore.session
import pytest
from botocore.validate import validate_parameters
from infra_templates import REPO, as_list, choose, load_template
from moto.events.models import EventPattern
from test_infra_pipeline import allow_statements

from tests.pull_request_events import ACCOUNT, REGION, REPOSITORY_ARN, pull_request_event, resolve, transform

VALUES = {
    "AWS::StackName": "acme-pipeline", "AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT,
    "BranchName": "main", "Repository.Arn": REPOSITORY_ARN, "ReviewRole": "acme-pipeline-ReviewRole-1A2B3C",
}
PRIVATE_NETWORK = {
    "VpcId": {"Fn::ImportValue": {"Fn::Sub": "${NetworkStackName}-VpcId"}},
    "Subnets": [{"Fn::ImportValue": {"Fn::Sub": "${NetworkStackName}-PrivateSubnet1Id"}},
                {"Fn::ImportValue": {"Fn::Sub": "${NetworkStackName}-PrivateSubnet2Id"}}],
    "SecurityGroupIds": [{"Fn::ImportValue": {"Fn::Sub": "${NetworkStackName}-BuildSecurityGroupId"}}],
}
MODELS = botocore.session.get_session()


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    return load_template("pipeline.yaml")["Resources"]


def matches(rule: dict[str, Any], event: dict[str, Any]) -> bool:
    pattern = resolve(rule["Properties"]["EventPattern"], VALUES)
    return EventPattern.load(json.dumps(pattern)).matches_event(event)


@pytest.mark.parametrize(("event", "starts"), [
    (pull_request_event("pullRequestCreated"), True),
    (pull_request_event("pullRequestSourceBranchUpdated"), True),
    (pull_request_event("pullRequestStatusChanged"), False),
    (pull_request_event("pullRequestMergeStatusUpdated"), False),
    (pull_request_event("pullRequestCreated", destination="refs/heads/release"), False),
    (pull_request_event("pullRequestCreated", repository_arn=f"arn:aws:codecommit:{REGION}:{ACCOUNT}:other"), False),
])
def test_review_starts_for_pull_requests_into_the_branch_when_opened_or_pushed(
    resources: dict[str, Any], event: dict[str, Any], starts: bool
) -> None:
    assert matches(resources["ReviewRule"], event) is starts
    assert matches(resources["SourceChangeRule"], event) is False  # a pull request never starts a migration


def test_a_push_to_the_branch_starts_the_migration_not_a_review(resources: dict[str, Any]) -> None:
    push = {**pull_request_event(), "detail-type": "CodeCommit Repository State Change",
            "detail": {"event": "referenceUpdated", "referenceType": "branch", "referenceName": "main",
                       "repositoryName": "warehouse", "commitId": "a" * 40}}
    assert matches(resources["SourceChangeRule"], push) is True
    assert matches(resources["ReviewRule"], push) is False


def test_the_target_starts_the_review_project_with_the_pull_request_and_its_commits(resources: dict[str, Any]) -> None:
    (target,) = resources["ReviewRule"]["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["ReviewProject", "Arn"]}
    assert target["RoleArn"] == {"Fn::GetAtt": ["ReviewTriggerRole", "Arn"]}
    assert target["InputTransformer"]["InputPathsMap"] == {
        "pullRequestId": "$.detail.pullRequestId", "sourceCommit": "$.detail.sourceCommit",
        "destinationCommit": "$.detail.destinationCommit"}
    event = pull_request_event("pullRequestSourceBranchUpdated", pull_request_id="42", source_commit="1" * 40, destination_commit="2" * 40)
    request = transform(target["InputTransformer"], event)
    # EventBridge names the project from the target ARN; the rest is the StartBuild request as CodeBuild's model has it.
    validate_parameters({"projectName": "acme-pipeline-review", **request},
                        MODELS.get_service_model("codebuild").operation_model("StartBuild").input_shape)
    assert request == {"sourceVersion": "1" * 40, "environmentVariablesOverride": [
        {"name": "DBOPS_PULL_REQUEST_ID", "value": "42", "type": "PLAINTEXT"},
        {"name": "DBOPS_SOURCE_COMMIT", "value": "1" * 40, "type": "PLAINTEXT"},
        {"name": "DBOPS_DESTINATION_COMMIT", "value": "2" * 40, "type": "PLAINTEXT"},
    ]}


def test_the_review_project_builds_in_the_private_subnets_from_the_repository(resources: dict[str, Any]) -> None:
    project = resources["ReviewProject"]["Properties"]
    # As the migration project's in ConnectionMode=driver (the default; data-api has the migration build outside the VPC).
    assert project["VpcConfig"] == PRIVATE_NETWORK == choose(resources["BuildProject"]["Properties"]["VpcConfig"], IsDataApi=False)
    assert project["Source"] == {"Type": "CODECOMMIT", "Location": {"Fn::GetAtt": ["Repository", "CloneUrlHttp"]},
                                 "BuildSpec": "buildspec-review.yml", "GitCloneDepth": 0}
    assert (REPO / "buildspec-review.yml").is_file()
    assert project["Artifacts"] == {"Type": "NO_ARTIFACTS"}
    assert project["ServiceRole"] == {"Fn::GetAtt": ["ReviewRole", "Arn"]}
    assert project["Environment"]["PrivilegedMode"] is False
    assert project["EncryptionKey"] == {"Fn::GetAtt": ["PipelineKey", "Arn"]}
    assert project["LogsConfig"]["CloudWatchLogs"] == {"Status": "ENABLED", "GroupName": {"Ref": "ReviewLogGroup"}}
    group = resources["ReviewLogGroup"]["Properties"]
    assert group["KmsKeyId"] == {"Fn::GetAtt": ["PipelineKey", "Arn"]}
    (logs,) = [s for s in resources["PipelineKey"]["Properties"]["KeyPolicy"]["Statement"] if s["Sid"] == "CloudWatchLogsUse"]
    allowed = [resolve(a, VALUES) for a in logs["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]]
    assert f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{resolve(group['LogGroupName'], VALUES)}" in allowed


def test_the_review_connects_as_the_review_user_with_its_own_secret(resources: dict[str, Any]) -> None:
    variables = {v["Name"]: v for v in resources["ReviewProject"]["Properties"]["Environment"]["EnvironmentVariables"]}
    assert not [n for n in variables if n.startswith("DAGSTER_")]  # a review is no run on the shared instance
    url = resolve(variables["DBOPS_URL"]["Value"], {**VALUES, "ReviewDatabaseUser": "dbops_review",
                                                    "RedshiftStackName": "acme-dw", "import:acme-dw-Endpoint": "dw.example",
                                                    "import:acme-dw-Port": "5439", "import:acme-dw-DatabaseName": "warehouse"})
    assert url == "redshift://dbops_review@dw.example:5439/warehouse"
    assert variables["DBOPS_PASSWORD"] == {"Name": "DBOPS_PASSWORD", "Type": "SECRETS_MANAGER",
                                           "Value": {"Fn::Sub": "${ReviewDatabaseSecret}:password"}}
    secret = resources["ReviewDatabaseSecret"]["Properties"]
    assert secret["KmsKeyId"] == {"Fn::GetAtt": ["PipelineKey", "Arn"]}
    generated = secret["GenerateSecretString"]
    assert json.loads(resolve(generated["SecretStringTemplate"], {"ReviewDatabaseUser": "dbops_review"})) == {"username": "dbops_review"}
    assert generated["GenerateStringKey"] == "password" and generated["ExcludePunctuation"] is True
    assert generated["RequireEachIncludedType"] is True and 8 <= generated["PasswordLength"] <= 64  # Redshift's rules


def codecommit_calls_of_publish_review() -> set[str]:
    """The CodeCommit operations dbops/scripts/pull_requests.py calls, as IAM action names."""
    tree = ast.parse((REPO / "dbops" / "scripts" / "pull_requests.py").read_text())
    names = {node.args[0].value for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "call"
             and node.args and isinstance(node.args[0], ast.Constant)}
    return {"codecommit:" + "".join(part.title() for part in name.split("_")) for name in names}


def test_the_review_role_may_do_exactly_what_the_review_does(resources: dict[str, Any]) -> None:
    statements = [s for n, s in allow_statements({"Resources": resources}) if n == "ReviewRole"]
    codecommit = {a: s["Resource"] for s in statements for a in as_list(s["Action"]) if a.startswith("codecommit:")}
    assert set(codecommit) == codecommit_calls_of_publish_review() | {"codecommit:GitPull"}
    assert set(codecommit) == {"codecommit:GitPull", "codecommit:GetPullRequest", "codecommit:GetCommentsForPullRequest",
                               "codecommit:PostCommentForPullRequest", "codecommit:UpdateComment",
                               "codecommit:UpdatePullRequestApprovalState"}
    assert set(map(json.dumps, codecommit.values())) == {json.dumps({"Fn::GetAtt": ["Repository", "Arn"]})}
    services = {a.split(":")[0] for s in statements for a in as_list(s["Action"])}
    assert services == {"logs", "codecommit", "secretsmanager", "kms", "ec2"}  # no S3, no codebuild, no redshift
    assert not [a for s in statements for a in as_list(s["Action"]) if a.startswith(("redshift", "iam:", "sts:"))]
    trigger = [s for n, s in allow_statements({"Resources": resources}) if n == "ReviewTriggerRole"]
    assert [(s["Action"], s["Resource"]) for s in trigger] == [("codebuild:StartBuild", {"Fn::GetAtt": ["ReviewProject", "Arn"]})]


def test_the_approval_rule_template_needs_one_approval_from_the_review_builds() -> None:
    outputs = load_template("pipeline.yaml")["Outputs"]
    content = resolve(outputs["ApprovalRuleTemplateContent"]["Value"], VALUES)
    validate_parameters({"approvalRuleTemplateName": "dbops-review", "approvalRuleTemplateContent": content},
                        MODELS.get_service_model("codecommit").operation_model("CreateApprovalRuleTemplate").input_shape)
    rule = json.loads(content)
    assert rule["Version"] == "2018-11-08" and rule["DestinationReferences"] == ["refs/heads/main"]
    (statement,) = rule["Statements"]
    assert statement["Type"] == "Approvers" and statement["NumberOfApprovalsNeeded"] == 1
    (pool,) = statement["ApprovalPoolMembers"]
    # A CodeBuild build acts as its service role under a session of its own: that is who approves.
    assert fnmatch.fnmatchcase(f"arn:aws:sts::{ACCOUNT}:assumed-role/acme-pipeline-ReviewRole-1A2B3C/AWSCodeBuild-1f2e3d", pool)
    assert not fnmatch.fnmatchcase(f"arn:aws:sts::{ACCOUNT}:assumed-role/acme-pipeline-BuildRole-9Z8Y/AWSCodeBuild-1f2e3d", pool)
    assert not fnmatch.fnmatchcase(f"arn:aws:iam::{ACCOUNT}:user/grace", pool)


def readme_review_commands() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("### Review on AWS", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    return [c for block in re.findall(r"```bash\n(.*?)```", section, re.DOTALL) for c in block.replace("\\\n", " ").splitlines()]


def test_the_readme_sets_up_the_approval_rule_from_the_stack_output() -> None:
    commands = readme_review_commands()
    text = "\n".join(commands)
    used = set(re.findall(r"\$\(out dbops-pipeline (\w+)\)", text))
    assert {"ApprovalRuleTemplateContent", "ReviewDatabaseSecretArn", "RepositoryName"} <= used
    assert used <= set(load_template("pipeline.yaml")["Outputs"]), used
    create = [c for c in commands if "aws codecommit create-approval-rule-template" in c]
    associate = [c for c in commands if "aws codecommit associate-approval-rule-template-with-repository" in c]
    assert len(create) == len(associate) == 1
    name = re.search(r"--approval-rule-template-name (\S+)", create[0]).group(1)
    assert f"--approval-rule-template-name {name}" in associate[0]
    assert '--approval-rule-template-content "$(out dbops-pipeline ApprovalRuleTemplateContent)"' in create[0]
