"""The Redshift Serverless variant of redshift.yaml (DeploymentType=serverless).

moto has no Redshift Serverless, so the resources are read from the template as
CloudFormation resolves it under that condition. The custom resource function that
finds the namespace's admin secret runs here for real: its boto3 client answers
through botocore's Stubber (requests and responses checked against the
redshift-serverless service model) and a local HTTP server stands in for
CloudFormation's pre-signed response URL.
"""

from __future__ import annotations

import json
import threading
import types
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from infra_templates import as_list, choose, load_template, sub_text

LOG_TYPES = {"connectionlog", "userlog", "useractivitylog"}
PROVISIONED_ONLY = {"Cluster", "SubnetGroup", "ParameterGroup"}
SERVERLESS_ONLY = {"Namespace", "Workgroup", "AdminSecret", "AdminSecretLookupFunction",
                   "AdminSecretLookupRole", "AdminSecretLookupLogGroup"}
NAMESPACE = "acme-warehouse"
NAMESPACE_ARN = "arn:aws:redshift-serverless:us-east-1:123456789012:namespace/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:redshift!acme-warehouse-dbops_admin-Zx81Qa"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template("redshift.yaml")


@pytest.fixture(scope="module")
def serverless(template: dict[str, Any]) -> dict[str, Any]:
    """The template's resources and outputs when DeploymentType=serverless."""
    kept = {n: r for n, r in template["Resources"].items() if r.get("Condition") != "IsProvisioned"}
    return {
        "Resources": choose(kept, IsServerless=True),
        "Outputs": choose(template["Outputs"], IsServerless=True),
    }


def props(serverless: dict[str, Any], name: str) -> dict[str, Any]:
    return serverless["Resources"][name]["Properties"]


def import_of(output: str) -> dict[str, Any]:
    return {"Fn::ImportValue": {"Fn::Sub": "${NetworkStackName}-" + output}}


# ------------------------------------------------------------------ the template


def test_deployment_type_selects_one_warehouse(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["DeploymentType"]
    assert parameter["AllowedValues"] == ["provisioned", "serverless"]
    assert parameter["Default"] == "provisioned"
    assert template["Conditions"]["IsServerless"] == {
        "Fn::Equals": [{"Ref": "DeploymentType"}, "serverless"]
    }
    conditions = {n: r.get("Condition") for n, r in template["Resources"].items()}
    assert {n for n, c in conditions.items() if c == "IsProvisioned"} == PROVISIONED_ONLY
    assert {n for n, c in conditions.items() if c == "IsServerless"} == SERVERLESS_ONLY
    shared = {n for n, c in conditions.items() if c is None}
    assert {"WarehouseKey", "WarehouseSecurityGroup", "ConnectionLogGroup"} <= shared


def test_workgroup_is_private_on_5439_with_ssl_and_vpc_routing(serverless: dict[str, Any]) -> None:
    workgroup = props(serverless, "Workgroup")
    assert workgroup["Port"] == 5439
    assert workgroup["PubliclyAccessible"] is False
    assert workgroup["EnhancedVpcRouting"] is True
    assert workgroup["NamespaceName"] == {"Ref": "Namespace"}
    config = {p["ParameterKey"]: p["ParameterValue"] for p in workgroup["ConfigParameters"]}
    assert config["require_ssl"] == "true"
    assert config["enable_user_activity_logging"] == "true"


def test_workgroup_spans_three_private_subnets_behind_the_warehouse_group(
    serverless: dict[str, Any],
) -> None:
    workgroup = props(serverless, "Workgroup")
    assert workgroup["SubnetIds"] == [import_of(f"PrivateSubnet{i}Id") for i in (1, 2, 3)]
    assert workgroup["SecurityGroupIds"] == [{"Ref": "WarehouseSecurityGroup"}]
    network = load_template("network.yaml")
    third = network["Resources"]["PrivateSubnet3"]
    assert third["Properties"]["AvailabilityZone"] == {"Fn::Select": [2, {"Fn::GetAZs": ""}]}
    assert network["Outputs"]["PrivateSubnet3Id"]["Condition"] == third["Condition"]


def test_namespace_keeps_the_admin_password_in_secrets_manager(
    template: dict[str, Any], serverless: dict[str, Any]
) -> None:
    namespace = props(serverless, "Namespace")
    assert namespace["ManageAdminPassword"] is True
    assert "AdminUserPassword" not in namespace
    assert namespace["AdminPasswordSecretKmsKeyId"] == {"Ref": "WarehouseKey"}
    assert namespace["KmsKeyId"] == {"Fn::GetAtt": ["WarehouseKey", "Arn"]}
    assert namespace["AdminUsername"] == {"Ref": "MasterUsername"}
    assert namespace["DbName"] == {"Ref": "DatabaseName"}
    assert template["Resources"]["Namespace"]["DeletionPolicy"] == "Retain"


def test_namespace_exports_audit_logs_to_its_encrypted_log_groups(
    template: dict[str, Any], serverless: dict[str, Any]
) -> None:
    namespace = serverless["Resources"]["Namespace"]
    assert set(namespace["Properties"]["LogExports"]) == LOG_TYPES
    by_name = {
        sub_text(r["Properties"]["LogGroupName"]): name
        for name, r in serverless["Resources"].items() if r["Type"] == "AWS::Logs::LogGroup"
    }
    for log_type in LOG_TYPES:  # Redshift Serverless writes to /aws/redshift/<namespace>/<log>
        group = by_name[f"/aws/redshift/${{ClusterIdentifier}}/{log_type}"]
        assert group in namespace["DependsOn"]
        assert props(serverless, group)["KmsKeyId"] == {"Fn::GetAtt": ["WarehouseKey", "Arn"]}
    (logs_use,) = [
        s for s in props(serverless, "WarehouseKey")["KeyPolicy"]["Statement"]
        if s["Sid"] == "CloudWatchLogsUse"
    ]
    allowed = [sub_text(arn) for arn in logs_use["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]]
    assert any(a.endswith(":log-group:/aws/redshift/${ClusterIdentifier}/*") for a in allowed)
    lookup_logs = sub_text(props(serverless, "AdminSecretLookupLogGroup")["LogGroupName"])
    assert any(a.endswith(f":log-group:{lookup_logs}") for a in allowed)


def test_outputs_point_at_the_workgroup_and_the_managed_secret(serverless: dict[str, Any]) -> None:
    outputs = serverless["Outputs"]
    address = {"Fn::GetAtt": ["Workgroup", "Workgroup.Endpoint.Address"]}
    assert outputs["Endpoint"]["Value"] == address
    assert outputs["Port"]["Value"] == str(props(serverless, "Workgroup")["Port"])
    url, variables = outputs["DbopsUrl"]["Value"]["Fn::Sub"]
    assert url == "redshift://${MasterUsername}@${Host}:${Port}/${DatabaseName}"
    assert variables == {"Host": address, "Port": "5439"}
    assert outputs["SecretArn"]["Value"] == {"Fn::GetAtt": ["AdminSecret", "SecretArn"]}
    custom = props(serverless, "AdminSecret")
    assert custom["NamespaceName"] == {"Ref": "Namespace"}
    assert custom["ServiceToken"] == {"Fn::GetAtt": ["AdminSecretLookupFunction", "Arn"]}


def test_lookup_function_may_only_read_this_namespace(serverless: dict[str, Any]) -> None:
    (policy,) = props(serverless, "AdminSecretLookupRole")["Policies"]
    statements = policy["PolicyDocument"]["Statement"]
    granted = {
        (a, json.dumps(s["Resource"], sort_keys=True))
        for s in statements for a in as_list(s["Action"])
    }
    namespace = json.dumps({"Fn::GetAtt": ["Namespace", "Namespace.NamespaceArn"]})
    log_group = json.dumps({"Fn::GetAtt": ["AdminSecretLookupLogGroup", "Arn"]})
    assert granted == {
        ("redshift-serverless:GetNamespace", namespace),
        ("logs:CreateLogStream", log_group),
        ("logs:PutLogEvents", log_group),
    }
    function = props(serverless, "AdminSecretLookupFunction")
    assert function["LoggingConfig"] == {"LogGroup": {"Ref": "AdminSecretLookupLogGroup"}}
    assert "Environment" not in function and "VpcConfig" not in function


# ------------------------------------------------------------------ the custom resource function


class CloudFormationResponses(ThreadingHTTPServer):
    """What a pre-signed response URL receives: one PUT per answer."""

    def __init__(self) -> None:
        self.answers: list[tuple[dict[str, str], dict[str, Any]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                server.answers.append((dict(self.headers), json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/cloudformation-response?X-Amz-Signature=abc"


@pytest.fixture
def response_url() -> Iterator[CloudFormationResponses]:
    server = CloudFormationResponses()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def lookup(template: dict[str, Any]) -> types.ModuleType:
    """The function's inline code, loaded as Lambda loads index.py."""
    code = template["Resources"]["AdminSecretLookupFunction"]["Properties"]["Code"]["ZipFile"]
    module = types.ModuleType("index")
    exec(compile(code, "index.py", "exec"), module.__dict__)
    return module


@pytest.fixture
def stub(lookup: types.ModuleType, fake_aws_credentials: None,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    client = boto3.client("redshift-serverless", region_name="us-east-1")
    monkeypatch.setattr(lookup.boto3, "client", lambda service, **_: {"redshift-serverless": client}[service])
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def event(request_type: str, url: str, **extra: Any) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/acme-dw/1f2e3d4c",
        "RequestId": "5d4c3b2a-1f0e-4d3c-9b8a-7f6e5d4c3b2a",
        "LogicalResourceId": "AdminSecret",
        "ResourceType": "Custom::RedshiftServerlessAdminSecret",
        "ResourceProperties": {"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:x",
                               "NamespaceName": NAMESPACE},
        **extra,
    }


def invoke(lookup: types.ModuleType, request: dict[str, Any],
           responses: CloudFormationResponses) -> tuple[dict[str, str], dict[str, Any]]:
    context = types.SimpleNamespace(log_stream_name="2026/11/27/[$LATEST]0a1b2c")
    lookup.handler(request, context)
    (answer,) = responses.answers
    return answer


def namespace_response(**fields: Any) -> dict[str, Any]:
    return {"namespace": {"namespaceName": NAMESPACE, "namespaceArn": NAMESPACE_ARN,
                          "namespaceId": "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
                          "status": "AVAILABLE", **fields}}


def test_create_answers_with_the_admin_secret_arn(
    lookup: types.ModuleType, stub: Stubber, response_url: CloudFormationResponses
) -> None:
    stub.add_response("get_namespace", namespace_response(adminPasswordSecretArn=SECRET_ARN),
                      {"namespaceName": NAMESPACE})
    request = event("Create", response_url.url)
    headers, answer = invoke(lookup, request, response_url)
    assert answer["Status"] == "SUCCESS"
    assert answer["Data"] == {"SecretArn": SECRET_ARN}
    assert answer["PhysicalResourceId"] == f"{NAMESPACE}-admin-secret"
    for key in ("StackId", "RequestId", "LogicalResourceId"):
        assert answer[key] == request[key]
    assert headers["Content-Type"] == ""  # the URL is signed for an empty content type


def test_update_reads_the_secret_again_and_keeps_the_physical_id(
    lookup: types.ModuleType, stub: Stubber, response_url: CloudFormationResponses
) -> None:
    stub.add_response("get_namespace", namespace_response(adminPasswordSecretArn=SECRET_ARN),
                      {"namespaceName": NAMESPACE})
    request = event("Update", response_url.url, PhysicalResourceId="earlier-id")
    _, answer = invoke(lookup, request, response_url)
    assert (answer["Status"], answer["PhysicalResourceId"]) == ("SUCCESS", "earlier-id")
    assert answer["Data"] == {"SecretArn": SECRET_ARN}


def test_delete_succeeds_without_calling_redshift(
    lookup: types.ModuleType, stub: Stubber, response_url: CloudFormationResponses
) -> None:
    request = event("Delete", response_url.url, PhysicalResourceId=f"{NAMESPACE}-admin-secret")
    _, answer = invoke(lookup, request, response_url)  # the Stubber holds no response
    assert answer["Status"] == "SUCCESS"
    assert answer["PhysicalResourceId"] == f"{NAMESPACE}-admin-secret"
    assert answer["Data"] == {}


def test_a_missing_namespace_fails_the_stack_with_its_name(
    lookup: types.ModuleType, stub: Stubber, response_url: CloudFormationResponses
) -> None:
    stub.add_client_error("get_namespace", "ResourceNotFoundException",
                          f"Namespace {NAMESPACE} not found", expected_params={"namespaceName": NAMESPACE})
    _, answer = invoke(lookup, event("Create", response_url.url), response_url)
    assert answer["Status"] == "FAILED"
    assert NAMESPACE in answer["Reason"] and "ResourceNotFoundException" in answer["Reason"]
    assert answer["Data"] == {}


def test_a_namespace_without_a_managed_secret_fails_clearly(
    lookup: types.ModuleType, stub: Stubber, response_url: CloudFormationResponses
) -> None:
    stub.add_response("get_namespace", namespace_response(), {"namespaceName": NAMESPACE})
    _, answer = invoke(lookup, event("Create", response_url.url), response_url)
    assert answer["Status"] == "FAILED"
    assert "does not manage" in answer["Reason"] and NAMESPACE in answer["Reason"]


def test_a_request_without_a_namespace_still_gets_an_answer(
    lookup: types.ModuleType, stub: Stubber, response_url: CloudFormationResponses
) -> None:
    request = event("Create", response_url.url)
    del request["ResourceProperties"]["NamespaceName"]
    _, answer = invoke(lookup, request, response_url)  # rather than leave the stack waiting
    assert answer["Status"] == "FAILED"
    assert "NamespaceName" in answer["Reason"]
