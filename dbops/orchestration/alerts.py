"""alert_sensor: each failed run on the Dagster instance becomes one message on an SNS topic.

The message names the failing script, the error's first lines (passwords redacted), the commit the
run was for (its dbops/commit, dbops/author and dbops/message tags), the run id and a link to the run
in the Dagster UI. Settings: DBOPS_ALERT_TOPIC_ARN (unset: the sensor is defined but stopped) and
DBOPS_UI_URL (the UI's base address, for the link).

It watches every code location of the instance: `dbops migrate` (the command line, CodeBuild) runs the
job in its own process, so its runs carry no code-location origin and a sensor limited to its own code
location would never see them fail.
"""
from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dagster import (
    DagsterEvent,
    DagsterRun,
    DefaultSensorStatus,
    RunFailureSensorContext,
    SensorDefinition,
    SkipReason,
    run_failure_sensor,
)

from dbops.orchestration.apply import SCRIPT
from dbops.orchestration.tags import TAG_AUTHOR, TAG_COMMIT, TAG_MESSAGE, TAG_REPOSITORY, TAG_SOURCE
from dbops.urls import redact

TOPIC_ENV = "DBOPS_ALERT_TOPIC_ARN"
UI_URL_ENV = "DBOPS_UI_URL"
SENSOR_NAME = "alert_sensor"
SUBJECT_LIMIT = 100  # SNS: at most 100 characters, ASCII, no line breaks or control characters
MESSAGE_BYTES = 256 * 1024  # SNS: at most 256 KiB of UTF-8
ERROR_LINES = 6
MASKED_LENGTH = 3  # shorter DBOPS_PASSWORD values are not masked (every such substring would be)
LINE_CHARS = 1000
TRUNCATED = "\n… (truncated: the run's logs have the rest)"


@dataclass(frozen=True)
class AlertSettings:
    """Where alerts go (topic ARN; its Region is the client's) and the UI base URL runs link to."""

    topic_arn: str = ""
    ui_url: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AlertSettings:
        env = os.environ if environ is None else environ
        return cls(topic_arn=env.get(TOPIC_ENV, "").strip(), ui_url=env.get(UI_URL_ENV, "").strip().rstrip("/"))

    @property
    def region(self) -> str | None:
        """The Region in the topic ARN (arn:partition:sns:region:account:name); None: the environment's."""
        parts = self.topic_arn.split(":")
        return parts[3] if len(parts) >= 6 and parts[0] == "arn" and parts[2] == "sns" and parts[3] else None

    def sns(self) -> Any:
        import boto3

        return boto3.client("sns", region_name=self.region)


@dataclass(frozen=True)
class Alert:
    subject: str
    message: str


def scrub(text: str, environ: Mapping[str, str] | None = None) -> str:
    """Text with URL passwords redacted and the value of DBOPS_PASSWORD, if set, masked."""
    env = os.environ if environ is None else environ
    text = redact(text)
    password = env.get("DBOPS_PASSWORD", "")
    return text.replace(password, "***") if len(password) >= MASKED_LENGTH else text


def subject_line(text: str) -> str:
    """`text` as SNS accepts a subject: ASCII, one line, at most 100 characters."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    one_line = " ".join(re.sub(r"[\x00-\x1f\x7f]", " ", ascii_text).split()) or "dbops run failed"
    return one_line if len(one_line) <= SUBJECT_LIMIT else one_line[: SUBJECT_LIMIT - 3].rstrip() + "..."


def fit(message: str, limit: int = MESSAGE_BYTES) -> str:
    """The message cut (at a character boundary) so that it fits SNS's size limit."""
    data = message.encode("utf-8")
    if len(data) <= limit:
        return message
    room = limit - len(TRUNCATED.encode("utf-8"))
    return data[:room].decode("utf-8", "ignore") + TRUNCATED


def first_lines(text: str, count: int = ERROR_LINES) -> list[str]:
    lines = [line.rstrip() for line in text.strip().splitlines() if line.strip()]
    shown = [line if len(line) <= LINE_CHARS else line[:LINE_CHARS] + " …" for line in lines[:count]]
    return shown + ([f"… ({len(lines) - count} more line(s) in the run's logs)"] if len(lines) > count else [])


def failure_details(failure_event: DagsterEvent, step_failures: list[DagsterEvent]) -> tuple[str | None, str]:
    """The failing script (from the step failure's metadata, when a script failed) and the error text."""
    for event in step_failures:
        data = event.step_failure_data
        user = data.user_failure_data
        if user is not None and user.description:
            script = user.metadata.get(SCRIPT)
            return (str(script.value) if script is not None else None), user.description
        if data.error is not None:
            return None, data.error.message
    data = failure_event.event_specific_data
    error = getattr(data, "error", None)
    return None, "\n".join(part for part in (failure_event.message, error.message if error else "") if part)


def compose(
    run: DagsterRun, failure_event: DagsterEvent, step_failures: list[DagsterEvent], ui_url: str,
    environ: Mapping[str, str] | None = None,
) -> Alert:
    """Subject and body of the alert for one failed run."""
    tags = run.tags
    script, error = failure_details(failure_event, step_failures)
    error_lines = first_lines(scrub(error, environ)) or ["(no error message recorded)"]  # scrub before cutting lines
    commit = tags.get(TAG_COMMIT, "")
    if commit:
        message_line = (tags.get(TAG_MESSAGE, "").strip().splitlines() or [""])[0]
        commit_text = f"{commit} by {tags.get(TAG_AUTHOR) or 'unknown author'}" + (f": {message_line}" if message_line else "")
    else:
        commit_text = "none recorded on the run"
    link = f"{ui_url}/runs/{run.run_id}" if ui_url else f"set {UI_URL_ENV} to the Dagster UI's address to get a link here"
    lines = [
        f"The dbops {run.job_name} run failed.",
        "",
        f"Script: {script or 'none named (the run failed outside a script)'}",
        "Error:",
        *(f"  {line}" for line in error_lines),
        f"Commit: {scrub(commit_text, environ)}",
    ]
    if tags.get(TAG_REPOSITORY):
        lines.append(f"Repository: {scrub(tags[TAG_REPOSITORY], environ)}")
    lines += [f"Started by: {tags.get(TAG_SOURCE) or 'ui'}", f"Run: {run.run_id}", f"Link: {link}"]
    what = script.rsplit("/", 1)[-1] if script else error_lines[0]
    subject = subject_line(f"dbops {run.job_name} failed: {what}")
    return Alert(subject=subject, message=fit("\n".join(lines) + "\n"))


def publish(settings: AlertSettings, alert: Alert) -> str:
    """Publish; the message id. botocore errors propagate."""
    response = settings.sns().publish(TopicArn=settings.topic_arn, Subject=alert.subject, Message=alert.message)
    return str(response.get("MessageId", ""))


def notify(context: RunFailureSensorContext, settings: AlertSettings) -> SkipReason | None:
    """One alert for the failed run; a failed publish is logged and skipped (the sensor moves on)."""
    run = context.dagster_run
    if not settings.topic_arn:
        return SkipReason(f"{TOPIC_ENV} is not set; no alert for run {run.run_id}. Set it to an SNS topic ARN to get alerts")
    alert = compose(run, context.failure_event, list(context.get_step_failure_events()), settings.ui_url)
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        message_id = publish(settings, alert)
    except (BotoCoreError, ClientError) as exc:
        reason = (
            f"could not publish the alert for run {run.run_id} to {settings.topic_arn}: {scrub(str(exc))}. "
            "Check that the topic exists and that this process may sns:Publish to it (and use its KMS key); "
            "this failure is not retried"
        )
        context.log.error(reason)
        return SkipReason(reason)
    context.log.info(f"alert for run {run.run_id} published to {settings.topic_arn} (message {message_id})")
    return None


def alert_sensor(settings: AlertSettings | None = None) -> SensorDefinition:
    """The run-failure sensor of the instance's runs; RUNNING by default when a topic is configured."""
    settings = settings or AlertSettings.from_env()
    where = settings.topic_arn or f"unset: set {TOPIC_ENV}"

    @run_failure_sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=30,
        monitor_all_code_locations=True,
        default_status=DefaultSensorStatus.RUNNING if settings.topic_arn else DefaultSensorStatus.STOPPED,
        description=(
            f"Publishes each failed run on this instance, `dbops migrate` runs included (script, error, commit, "
            f"run link), to the SNS topic in {TOPIC_ENV} ({where})."
        ),
    )
    def _alert(context: RunFailureSensorContext):
        return notify(context, settings)

    return _alert
