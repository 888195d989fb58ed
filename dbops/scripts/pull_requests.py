"""A `dbops review` report on an AWS CodeCommit pull request: one comment per pull request, and an approval.

The comment carries a hidden marker; each push finds dbops's earlier comment by it and updates it, so a pull
request has one dbops comment however often it is pushed. The verdict is an approval (APPROVE / REVOKE) of the
pull request's current revision, which an approval rule template on the branch requires.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbops.errors import ConfigError, DbopsError

MARKER = "<!-- dbops:review -->"
# CodeCommit refuses comments over 10,240 characters (CommentContentSizeLimitExceededException); counting
# UTF-8 bytes keeps any text under it.
COMMENT_LIMIT = 10_240
PERMISSIONS = ("codecommit:GetPullRequest, GetCommentsForPullRequest, PostCommentForPullRequest, UpdateComment "
               "and UpdatePullRequestApprovalState on the repository")
BAD_INPUT = {
    "PullRequestDoesNotExistException": "no such pull request; check --pull-request and the Region (AWS_REGION)",
    "InvalidPullRequestIdException": "not a pull request id; --pull-request takes the number CodeCommit shows",
    "RepositoryDoesNotExistException": "no such repository; check --repository and the Region (AWS_REGION)",
    "RepositoryNotAssociatedWithPullRequestException": "the pull request is not in that repository; check --repository",
}
UNAVAILABLE = {
    "AccessDeniedException": "access denied ({detail}); the role needs " + PERMISSIONS,
    "UnrecognizedClientException": "AWS rejected the credentials ({detail})",
    "InvalidSignatureException": "AWS rejected the credentials ({detail})",
    "ExpiredTokenException": "the AWS credentials have expired ({detail})",
    "ThrottlingException": "throttled by CodeCommit ({detail}); run the build again",
    "TooManyRequestsException": "throttled by CodeCommit ({detail}); run the build again",
    "EncryptionKeyAccessDeniedException": "cannot use the repository's KMS key ({detail})",
    "EncryptionKeyUnavailableException": "the repository's KMS key is unavailable ({detail})",
}


NOT_OURS = ("CommentNotCreatedByCallerException", "CommentDeletedException", "CommentDoesNotExistException")
MOVED_ON = ("RevisionNotCurrentException", "PullRequestAlreadyClosedException")


class Refused(Exception):
    """An AWS error code the caller said it expects (and handles)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class PublishError(ConfigError):
    """Bad input for publishing: an unreadable report, an unknown pull request or repository (exit 2)."""


class CodeCommitUnavailable(DbopsError):
    """CodeCommit cannot be reached or refuses the caller (exit 3)."""

    exit_code = 3


@dataclass(frozen=True)
class Review:
    """What `dbops review --json` decided: may the pull request merge, and the report as Markdown."""

    may_merge: bool
    markdown: str

    @classmethod
    def load(cls, path: Path) -> Review:
        """The report file `dbops review --json` wrote; its error document (`{"error", "exit_code"}`) is a
        review that blocks, since nothing could be checked."""
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PublishError(f"{path}: cannot read the review report ({exc.__class__.__name__}: {exc}); "
                               "pass the file `dbops review --json` wrote") from None
        if not text.strip():
            raise PublishError(f"{path}: the review report is empty; `dbops review --json` wrote nothing (see its log above)")
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PublishError(f"{path}:{exc.lineno}: not JSON ({exc.msg}); pass the output of `dbops review --json`") from None
        if isinstance(document, dict) and isinstance(document.get("error"), str) and "may_merge" not in document:
            code = document.get("exit_code", "?")
            return cls(False, f"**dbops review could not finish** (exit {code}):\n\n```\n{document['error']}\n```\n")
        if not (isinstance(document, dict) and isinstance(document.get("may_merge"), bool) and isinstance(document.get("markdown"), str)):
            raise PublishError(f'{path}: not a review report: expected a JSON object with "may_merge" (true/false) and '
                               '"markdown" (text), as `dbops review --json` writes')
        return cls(document["may_merge"], document["markdown"])


@dataclass(frozen=True)
class PullRequest:
    """The parts of GetPullRequest a review needs."""

    id: str
    title: str
    status: str
    revision_id: str
    repository: str
    source_reference: str
    destination_reference: str
    source_commit: str
    destination_commit: str
    merge_base: str


@dataclass(frozen=True)
class Published:
    """What publishing did: the comment (posted or updated) and the approval state recorded, or why nothing was."""

    pull_request: PullRequest
    comment_id: str = ""
    comment_action: str = ""  # "posted" | "updated" | ""
    approval: str = ""  # "APPROVE" | "REVOKE" | ""
    skipped: str = ""  # why nothing was published

    def as_dict(self) -> dict[str, Any]:
        pr = self.pull_request
        return {"pull_request": pr.id, "repository": pr.repository, "revision_id": pr.revision_id,
                "source_commit": pr.source_commit, "destination_commit": pr.destination_commit, "merge_base": pr.merge_base,
                "comment_id": self.comment_id or None, "comment": self.comment_action or None,
                "approval": self.approval or None, "skipped": self.skipped or None}

    def describe(self) -> str:
        pr = self.pull_request
        if self.skipped:
            return f"pull request {pr.id}: nothing published: {self.skipped}"
        verdict = "approved" if self.approval == "APPROVE" else "approval revoked"
        return (f"pull request {pr.id} ({pr.repository}, revision {pr.revision_id}): {self.comment_action} comment "
                f"{self.comment_id}; {verdict}")


class PullRequests:
    """CodeCommit's pull-request calls, with AWS errors turned into messages that say what to fix."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @classmethod
    def connect(cls, region: str | None = None) -> PullRequests:
        """A client for the Region given, else AWS_REGION (CodeBuild sets it; botocore reads only AWS_DEFAULT_REGION)."""
        import os

        import boto3
        from botocore.exceptions import BotoCoreError

        try:
            return cls(boto3.client("codecommit", region_name=region or os.environ.get("AWS_REGION") or None))
        except BotoCoreError as exc:  # NoRegionError and friends
            raise PublishError(f"cannot create a CodeCommit client: {exc}; set AWS_REGION or AWS_DEFAULT_REGION") from None

    def call(self, operation: str, expect: tuple[str, ...] = (), **params: Any) -> dict[str, Any]:
        """One API call. An error code in `expect` raises Refused for the caller to handle; any other error
        becomes PublishError (exit 2) or CodeCommitUnavailable (exit 3)."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

        try:
            return getattr(self.client, operation)(**params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "")
            detail = error.get("Message", "") or code
            if code in BAD_INPUT:
                raise PublishError(f"CodeCommit {operation}: {BAD_INPUT[code]}") from None
            if code in expect:
                raise Refused(code) from None
            if code in UNAVAILABLE:
                raise CodeCommitUnavailable(f"CodeCommit {operation}: {UNAVAILABLE[code].format(detail=detail)}") from None
            raise PublishError(f"CodeCommit {operation}: {code}: {detail}") from None
        except NoRegionError:
            raise PublishError(f"CodeCommit {operation}: no AWS Region; set AWS_REGION") from None
        except NoCredentialsError:
            raise CodeCommitUnavailable(f"CodeCommit {operation}: no AWS credentials found") from None
        except BotoCoreError as exc:  # endpoint unreachable, timeouts, bad responses
            raise CodeCommitUnavailable(f"CodeCommit {operation}: {exc}") from None

    def get(self, pull_request_id: str, repository: str | None = None) -> PullRequest:
        """GetPullRequest: the source and destination commits, their merge base and the current revision."""
        data = self.call("get_pull_request", pullRequestId=pull_request_id)["pullRequest"]
        targets = data.get("pullRequestTargets") or []
        if repository:
            targets = [t for t in targets if t.get("repositoryName") == repository]
        if not targets:
            raise PublishError(f"pull request {pull_request_id} has no target in repository {repository}; check --repository")
        target = targets[0]
        return PullRequest(
            id=data["pullRequestId"], title=data.get("title", ""), status=data.get("pullRequestStatus", ""),
            revision_id=data.get("revisionId", ""), repository=target.get("repositoryName", ""),
            source_reference=target.get("sourceReference", ""), destination_reference=target.get("destinationReference", ""),
            source_commit=target.get("sourceCommit", ""), destination_commit=target.get("destinationCommit", ""),
            merge_base=target.get("mergeBase", ""),
        )

    def marked_comments(self, pull_request_id: str) -> list[str]:
        """Ids of the pull request's live comments that carry dbops's marker, oldest first (every page)."""
        found: list[tuple[str, str]] = []
        token = None
        while True:
            page = self.call("get_comments_for_pull_request", pullRequestId=pull_request_id, maxResults=100,
                             **({"nextToken": token} if token else {}))
            for group in page.get("commentsForPullRequestData", []):
                for comment in group.get("comments", []):
                    if not comment.get("deleted") and MARKER in comment.get("content", ""):
                        found.append((str(comment.get("creationDate", "")), comment["commentId"]))
            token = page.get("nextToken")
            if not token:
                return [cid for _, cid in sorted(found)]

    def publish_comment(self, pr: PullRequest, content: str) -> tuple[str, str]:
        """Update dbops's earlier comment (one this caller wrote), else post one; (comment id, "updated"/"posted")."""
        for comment_id in self.marked_comments(pr.id):
            try:
                self.call("update_comment", NOT_OURS, commentId=comment_id, content=content)
                return comment_id, "updated"
            except Refused:
                continue  # someone else's comment quoting the marker, or one deleted meanwhile
        reply = self.call("post_comment_for_pull_request", pullRequestId=pr.id, repositoryName=pr.repository,
                          beforeCommitId=pr.destination_commit, afterCommitId=pr.source_commit, content=content)
        return reply["comment"]["commentId"], "posted"

    def record_verdict(self, pr: PullRequest, approve: bool) -> str:
        """UpdatePullRequestApprovalState for the revision reviewed; "" when the pull request moved on or closed."""
        state = "APPROVE" if approve else "REVOKE"
        try:
            self.call("update_pull_request_approval_state", MOVED_ON, pullRequestId=pr.id, revisionId=pr.revision_id,
                      approvalState=state)
        except Refused:
            return ""
        return state


def comment_text(review: Review, pr: PullRequest, commit: str, build_url: str = "") -> str:
    """The comment: the marker, the report as `dbops review` wrote it (its verdict first), then which commits were
    reviewed and the build log; cut to CodeCommit's limit, saying so."""
    head = f"{MARKER}\n"
    reviewed = (f"Reviewed `{commit[:12]}` ({pr.source_reference.removeprefix('refs/heads/')}) against "
                f"`{pr.destination_commit[:12]}` ({pr.destination_reference.removeprefix('refs/heads/')})")
    foot = f"\n\n---\n{reviewed}" + (f" · [build log]({build_url})" if build_url else "") + "\n"
    body = review.markdown.rstrip()
    text = head + body + foot
    if len(text.encode("utf-8")) <= COMMENT_LIMIT:
        return text
    cut = ("\n\n… (report cut to CodeCommit's comment limit of 10,240 characters; the whole report is in the "
           + ("build log" if build_url else "`review.json` of the build") + ")")
    fence = "\n```"
    room = COMMENT_LIMIT - len((head + fence + cut + foot).encode("utf-8"))
    body = body.encode("utf-8")[:room].decode("utf-8", errors="ignore")
    if body.count("```") % 2:  # cut inside a code block: close it, or the note renders as code
        body += fence
    return head + body + cut + foot


def publish_review(api: PullRequests, pull_request_id: str, review: Review, commit: str = "",
                   repository: str | None = None, build_url: str = "") -> Published:
    """Post or update dbops's comment and record the verdict for the pull request's current revision.

    `commit` is the source commit that was reviewed: when the pull request's source branch has moved on since,
    nothing is published (the build of the newer push publishes its own review).
    """
    pr = api.get(pull_request_id, repository)
    if pr.status and pr.status != "OPEN":
        return Published(pr, skipped=f"the pull request is {pr.status.lower()}")
    if commit and commit != pr.source_commit:
        return Published(pr, skipped=f"reviewed {commit[:12]}, but the source branch is now at {pr.source_commit[:12]}; "
                                     "the review of that push publishes its own verdict")
    comment_id, action = api.publish_comment(pr, comment_text(review, pr, commit or pr.source_commit, build_url))
    approval = api.record_verdict(pr, review.may_merge)
    if not approval:
        return Published(pr, comment_id, action, skipped="the pull request moved to a new revision or closed before "
                                                         "the verdict was recorded; the newer push's review records it")
    return Published(pr, comment_id, action, approval)
