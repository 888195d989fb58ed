"""A CodeCommit pull request played by botocore's Stubber: requests and replies are checked against the service model."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
from botocore.stub import ANY, Stubber

REGION = "eu-west-1"
ROLE = "arn:aws:sts::123456789012:assumed-role/acme-pipeline-ReviewRole-1A2B3C/AWSCodeBuild-0f1e"
HUMAN = "arn:aws:iam::123456789012:user/grace"


@dataclass
class StubbedPullRequest:
    """One open pull request; `expect_*` queue the exact requests the code under test must make, `sent` records them."""

    id: str = "7"
    repository: str = "warehouse"
    source_commit: str = "a" * 40
    destination_commit: str = "b" * 40
    merge_base: str = "c" * 40
    revision_id: str = "d" * 64
    status: str = "OPEN"
    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.client = boto3.client("codecommit", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
        self.client.meta.events.register("provide-client-params.codecommit", self._record)
        self.stubber = Stubber(self.client)
        self.stubber.activate()

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.sent.append((model.name, dict(params)))

    def operations(self) -> list[str]:
        return [name for name, _ in self.sent]

    def params(self, operation: str) -> list[dict[str, Any]]:
        return [params for name, params in self.sent if name == operation]

    def expect_get(self) -> None:
        self.stubber.add_response("get_pull_request", {"pullRequest": {
            "pullRequestId": self.id, "title": "Add V15: orders by region", "pullRequestStatus": self.status,
            "revisionId": self.revision_id, "authorArn": HUMAN,
            "pullRequestTargets": [{
                "repositoryName": self.repository, "sourceReference": "refs/heads/orders-by-region",
                "destinationReference": "refs/heads/main", "sourceCommit": self.source_commit,
                "destinationCommit": self.destination_commit, "mergeBase": self.merge_base,
                "mergeMetadata": {"isMerged": False},
            }],
        }}, {"pullRequestId": self.id})

    def comment(self, comment_id: str, content: str, author: str = ROLE, minutes: int = 0, deleted: bool = False) -> dict[str, Any]:
        created = datetime(2026, 12, 1, 12, tzinfo=timezone.utc) + timedelta(minutes=minutes)
        return {"commentId": comment_id, "content": content, "authorArn": author, "creationDate": created,
                "lastModifiedDate": created, "deleted": deleted}

    def expect_comments(self, *pages: list[dict[str, Any]]) -> None:
        """GetCommentsForPullRequest, one reply per page, linked by next tokens."""
        for number, comments in enumerate(pages or ([],)):
            params: dict[str, Any] = {"pullRequestId": self.id, "maxResults": 100}
            if number:
                params["nextToken"] = f"page-{number}"
            reply: dict[str, Any] = {"commentsForPullRequestData": [{
                "pullRequestId": self.id, "repositoryName": self.repository, "beforeCommitId": self.destination_commit,
                "afterCommitId": self.source_commit, "comments": comments,
            }] if comments else []}
            if number + 1 < len(pages):
                reply["nextToken"] = f"page-{number + 1}"
            self.stubber.add_response("get_comments_for_pull_request", reply, params)

    def expect_post(self, comment_id: str = "c-new") -> None:
        self.stubber.add_response("post_comment_for_pull_request", {
            "repositoryName": self.repository, "pullRequestId": self.id, "beforeCommitId": self.destination_commit,
            "afterCommitId": self.source_commit, "comment": self.comment(comment_id, "posted"),
        }, {"pullRequestId": self.id, "repositoryName": self.repository, "beforeCommitId": self.destination_commit,
            "afterCommitId": self.source_commit, "content": ANY})

    def expect_update(self, comment_id: str) -> None:
        self.stubber.add_response("update_comment", {"comment": self.comment(comment_id, "updated")},
                                  {"commentId": comment_id, "content": ANY})

    def expect_approval(self, state: str) -> None:
        self.stubber.add_response("update_pull_request_approval_state", {},
                                  {"pullRequestId": self.id, "revisionId": self.revision_id, "approvalState": state})

    def expect_error(self, method: str, code: str, message: str = "", status: int = 400) -> None:
        self.stubber.add_client_error(method, service_error_code=code, service_message=message or code, http_status_code=status)
