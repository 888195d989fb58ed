"""dagster.yaml's alerts: a KMS-encrypted SNS topic, an optional e-mail subscription, the topic ARN and
UI address in every Dagster process's environment, and exactly sns:Publish (plus the key's use through
SNS) for the task role. The alert resources are also deployed with moto (with and without an address)
and published to.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from infra_templates import DAGSTER_DRIVER, IAM_TYPES, as_list, load_rendered
from moto import mock_aws

from dbops.orchestration.alerts import TOPIC_ENV, UI_URL_ENV, Alert, AlertSettings, publish

TASKS = ("WebserverTaskDefinition", "DaemonTaskDefinition", "CodeLocationTaskDefinition", "RunTaskDefinition")
ALERT_RESOURCES = ("TaskRole", "AlertKey", "AlertKeyAlias", "AlertTopic", "AlertEmailSubscription")
REGION = "us-east-1"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_rendered("dagster.yaml", **DAGSTER_DRIVER)


def statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    """Every statement of every IAM policy in the template (inline role policies included)."""
    found = []
    for resource in template["Resources"].values():
        if resource["Type"] not in IAM_TYPES:
            continue
        props = resource["Properties"]
        documents = [props["PolicyDocument"]] if "PolicyDocument" in props else [p["PolicyDocument"] for p in props.get("Policies", [])]
        found += [s for d in documents for s in d["Statement"]]
    return found


def test_the_topic_is_encrypted_with_its_own_rotating_key(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    assert resources["AlertTopic"]["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": ["AlertKey", "Arn"]}
    key = resources["AlertKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    others = [s for s in key["KeyPolicy"]["Statement"] if s["Sid"] != "AccountAdministration"]
    assert others == [{
        "Sid": "PublishThroughSns", "Effect": "Allow", "Principal": {"AWS": {"Fn::GetAtt": ["TaskRole", "Arn"]}},
        "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": "*",
        "Condition": {"StringEquals": {"kms:ViaService": {"Fn::Sub": "sns.${AWS::Region}.amazonaws.com"}}},
    }]


def test_the_email_subscription_exists_only_when_an_address_is_given(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["AlertEmail"]
    assert parameter["Default"] == ""
    assert template["Conditions"]["HasAlertEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlertEmail"}, ""]}]}
    subscription = template["Resources"]["AlertEmailSubscription"]
    assert subscription["Condition"] == "HasAlertEmail"
    assert subscription["Properties"] == {"TopicArn": {"Ref": "AlertTopic"}, "Protocol": "email", "Endpoint": {"Ref": "AlertEmail"}}


def test_every_dagster_process_gets_the_topic_and_the_ui_address(template: dict[str, Any]) -> None:
    ui = template["Outputs"]["WebserverUrl"]["Value"]
    for task in TASKS:
        (container,) = template["Resources"][task]["Properties"]["ContainerDefinitions"]
        env = {e["Name"]: e["Value"] for e in container["Environment"]}
        assert env[TOPIC_ENV] == {"Ref": "AlertTopic"}, task
        assert env[UI_URL_ENV] == ui, task


def test_the_task_role_may_exactly_publish_to_the_topic(template: dict[str, Any]) -> None:
    sns = [s for s in statements(template) if any(str(a).startswith("sns:") for a in as_list(s["Action"]))]
    assert sns == [{"Sid": "PublishAlerts", "Effect": "Allow", "Action": "sns:Publish", "Resource": {"Ref": "AlertTopic"}}]
    on_key = [s for s in statements(template) if {"Fn::GetAtt": ["AlertKey", "Arn"]} in as_list(s["Resource"])]
    assert on_key == [{
        "Sid": "AlertKey", "Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
        "Resource": {"Fn::GetAtt": ["AlertKey", "Arn"]},
        "Condition": {"StringEquals": {"kms:ViaService": {"Fn::Sub": "sns.${AWS::Region}.amazonaws.com"}}},
    }]
    policy = template["Resources"]["TaskPolicy"]["Properties"]
    assert policy["Roles"] == [{"Ref": "TaskRole"}]
    assert template["Outputs"]["AlertTopicArn"]["Value"] == {"Ref": "AlertTopic"}


def alert_stack(template: dict[str, Any]) -> str:
    """The alert resources of dagster.yaml (and the role the key policy names) as a template of their own."""
    return json.dumps({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": {"AlertEmail": template["Parameters"]["AlertEmail"]},
        "Conditions": {"HasAlertEmail": template["Conditions"]["HasAlertEmail"]},
        "Resources": {name: template["Resources"][name] for name in ALERT_RESOURCES},
        "Outputs": {"AlertTopicArn": template["Outputs"]["AlertTopicArn"]},
    })


@pytest.fixture(scope="module")
def deployed(template: dict[str, Any], fake_aws_credentials: None) -> Iterator[dict[str, str]]:
    """Two stacks of the alert resources, with and without an e-mail address: name -> topic ARN."""
    with mock_aws():
        cf = boto3.client("cloudformation", region_name=REGION)
        topics = {}
        for name, email in (("with-email", "oncall@example.com"), ("without-email", "")):
            cf.create_stack(StackName=name, TemplateBody=alert_stack(template), Capabilities=["CAPABILITY_IAM"],
                            Parameters=[{"ParameterKey": "AlertEmail", "ParameterValue": email}])
            (stack,) = cf.describe_stacks(StackName=name)["Stacks"]
            assert stack["StackStatus"] == "CREATE_COMPLETE"
            topics[name] = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}["AlertTopicArn"]
        yield topics


def test_deployed_topics_are_encrypted_with_the_stacks_key(deployed: dict[str, str]) -> None:
    # moto 5 does not model AWS::SNS::Subscription (nor list what a false condition leaves out), so the
    # subscription and its condition are checked on the template above.
    sns, kms = boto3.client("sns", region_name=REGION), boto3.client("kms", region_name=REGION)
    keys = {k["KeyArn"] for k in kms.list_keys()["Keys"]}
    used = {sns.get_topic_attributes(TopicArn=topic)["Attributes"]["KmsMasterKeyId"] for topic in deployed.values()}
    assert len(used) == 2 and used <= keys  # each stack's topic, encrypted with that stack's key


def test_the_sensor_publishes_to_the_deployed_topic(deployed: dict[str, str]) -> None:
    settings = AlertSettings(topic_arn=deployed["without-email"])
    assert settings.region == REGION
    assert publish(settings, Alert(subject="dbops migrate failed: V2__orders.sql", message="Script: sql/V2__orders.sql\n"))
