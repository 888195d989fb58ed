"""alert_sensor: a failed migrate run becomes one SNS message naming the script, the error, the commit and the run."""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest
from dagster import DefaultSensorStatus, build_sensor_context
from moto import mock_aws

from dbops.orchestration.alerts import MESSAGE_BYTES, SUBJECT_LIMIT, TOPIC_ENV, UI_URL_ENV, fit, subject_line
from dbops.orchestration.build import build_definitions
from dbops.orchestration.resource import DbopsResource

REGION = "us-east-1"
UI = "http://webserver.dagster.dbops.internal:3000"
TAGS = {
    "dbops/source": "sensor",
    "dbops/commit": "0123456789abcdef0123456789abcdef01234567",
    "dbops/author": "Ann <ann@example.com>",
    "dbops/message": "Add the orders table\n\nLonger body.",
}
GOOD = {"V1__customers.sql": "create table customers (id int);"}
BROKEN = {**GOOD, "V2__orders.sql": "create table orders (id int,\n  customer_id int references customers (id)\n  oops);"}


@dataclass
class Aws:
    sns: object
    sqs: object
    topic: str
    queue: str

    def received(self) -> list[dict]:
        """Subject and Message of each notification the topic delivered to the subscribed queue."""
        found = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return found
            for message in batch:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def aws(monkeypatch) -> Iterator[Aws]:
    """moto's SNS with a topic, and an SQS queue subscribed to it (to read what was published)."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    with mock_aws():
        sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
        topic = sns.create_topic(Name="dbops-alerts")["TopicArn"]
        queue = sqs.create_queue(QueueName="alerts")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        yield Aws(sns, sqs, topic, queue)


def code_location(folder, url, monkeypatch, topic: str | None, ui: str | None = UI):
    for name, value in ((TOPIC_ENV, topic), (UI_URL_ENV, ui)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    return build_definitions(DbopsResource(url=url, locations=[str(folder)]))


def tick(defs, instance, cursor: str | None):
    """One evaluation as the daemon makes it: in the code location's repository, whereas the failed runs,
    started in process as `dbops migrate` starts them, have no code-location origin."""
    context = build_sensor_context(instance=instance, cursor=cursor, repository_name=defs.get_repository_def().name)
    return defs.get_sensor_def("alert_sensor").evaluate_tick(context)


def fail_a_run(defs, instance, tags=TAGS):
    result = defs.resolve_job_def("migrate").execute_in_process(instance=instance, tags=tags, raise_on_error=False)
    assert not result.success
    return result


def test_a_failed_migrate_run_is_published_with_script_error_commit_and_link(aws, instance, scripts, pg_url, monkeypatch):
    defs = code_location(scripts(BROKEN), pg_url, monkeypatch, aws.topic)
    assert defs.get_sensor_def("alert_sensor").default_status == DefaultSensorStatus.RUNNING
    cursor = tick(defs, instance, None).cursor  # a new sensor starts after the runs already stored
    result = fail_a_run(defs, instance)

    evaluation = tick(defs, instance, cursor)
    (notification,) = aws.received()
    subject, message = notification["Subject"], notification["Message"]
    assert subject == "dbops migrate failed: V2__orders.sql"
    assert "Script: " in message and "V2__orders.sql" in message.split("Script: ")[1].splitlines()[0]
    assert "migration V2 (orders) failed" in message and 'syntax error at or near "oops"' in message
    assert f"Commit: {TAGS['dbops/commit']} by Ann <ann@example.com>: Add the orders table" in message
    assert "Longer body" not in message
    assert f"Run: {result.run_id}" in message and f"Link: {UI}/runs/{result.run_id}" in message

    assert tick(defs, instance, evaluation.cursor).cursor == evaluation.cursor
    assert aws.received() == []  # each failure is published once


def test_passwords_in_the_error_are_redacted(aws, instance, scripts, pg_url, monkeypatch):
    monkeypatch.setenv("DBOPS_PASSWORD", "Hunter2-Secret")
    folder = scripts({**GOOD, "V2__bad_cast.sql": "select 'postgresql://ann:S3cretPw@db.internal/dw Hunter2-Secret'::int;"})
    defs = code_location(folder, pg_url, monkeypatch, aws.topic, ui=None)
    cursor = tick(defs, instance, None).cursor
    fail_a_run(defs, instance, tags={})
    tick(defs, instance, cursor)
    (notification,) = aws.received()
    message = notification["Message"]
    assert "invalid input syntax for type integer" in message and "postgresql://ann:***@db.internal/dw" in message
    assert "S3cretPw" not in message and "Hunter2-Secret" not in message and "Hunter2-Secret" not in notification["Subject"]
    assert "Commit: none recorded on the run" in message
    assert f"set {UI_URL_ENV}" in message


def test_a_failed_publish_is_skipped_with_its_reason_and_not_retried(aws, instance, scripts, pg_url, monkeypatch):
    missing = aws.topic.replace("dbops-alerts", "deleted-topic")
    defs = code_location(scripts(BROKEN), pg_url, monkeypatch, missing)
    cursor = tick(defs, instance, None).cursor
    result = fail_a_run(defs, instance)

    evaluation = tick(defs, instance, cursor)
    assert f"could not publish the alert for run {result.run_id} to {missing}" in evaluation.skip_message
    assert "sns:Publish" in evaluation.skip_message
    assert evaluation.cursor != cursor
    again = tick(defs, instance, evaluation.cursor)
    assert "could not publish" not in (again.skip_message or "") and again.cursor == evaluation.cursor


def test_without_a_topic_the_sensor_is_stopped_and_says_how_to_start_it(instance, scripts, pg_url, monkeypatch):
    defs = code_location(scripts(BROKEN), pg_url, monkeypatch, None)
    sensor = defs.get_sensor_def("alert_sensor")
    assert sensor.default_status == DefaultSensorStatus.STOPPED
    assert f"unset: set {TOPIC_ENV}" in sensor.description
    cursor = tick(defs, instance, None).cursor
    result = fail_a_run(defs, instance)
    assert tick(defs, instance, cursor).skip_message.startswith(f"{TOPIC_ENV} is not set; no alert for run {result.run_id}")


def test_a_long_error_line_is_cut_after_the_password_is_masked():
    from types import SimpleNamespace

    from dagster import DagsterRun

    from dbops.orchestration.alerts import LINE_CHARS, compose

    password = "Hunter2-Secret"
    description = "x" * (LINE_CHARS - 5) + password + " and more"  # the cut falls inside the password
    failed_step = SimpleNamespace(step_failure_data=SimpleNamespace(
        user_failure_data=SimpleNamespace(description=description, metadata={}), error=None))
    alert = compose(DagsterRun(job_name="migrate", run_id="r1"), None, [failed_step], UI, {"DBOPS_PASSWORD": password})
    assert "Hunter" not in alert.message and "***" in alert.message


def test_subjects_and_messages_fit_sns_limits():
    subject = subject_line("dbops migrate failed: V2__café_\n\tß" + "x" * 200)
    assert len(subject) == SUBJECT_LIMIT and subject.isascii() and subject.endswith("...")
    assert "\n" not in subject and "\t" not in subject and subject.startswith("dbops migrate failed: V2__cafe_ ")
    message = fit("é" * MESSAGE_BYTES)
    assert len(message.encode("utf-8")) <= MESSAGE_BYTES and message.endswith("the run's logs have the rest)")
    assert fit("short") == "short"
