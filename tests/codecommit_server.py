"""A CodeCommit endpoint on 127.0.0.1 for processes the tests start (boto3 reaches it via AWS_ENDPOINT_URL_CODECOMMIT).

It speaks CodeCommit's JSON 1.1 protocol for the pull-request calls dbops publish-review makes, checks every
request against botocore's service model (as Stubber does in-process), and keeps one pull request's comments
and approval states the way CodeCommit does: a comment can be updated only by whoever wrote it, an approval
only for the current revision.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import botocore.session
from botocore.exceptions import ParamValidationError
from botocore.validate import validate_parameters

MODEL = botocore.session.get_session().get_service_model("codecommit")
ROLE = "arn:aws:sts::123456789012:assumed-role/acme-pipeline-ReviewRole-1A2B3C/AWSCodeBuild-0f1e"


class Refusal(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class PullRequestState:
    id: str
    repository: str
    source_commit: str
    destination_commit: str
    revision_id: str
    caller: str = ROLE
    page_size: int = 2
    comments: list[dict[str, Any]] = field(default_factory=list)
    approvals: list[tuple[str, str]] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)  # operation -> error code

    def push(self, commit: str, revision_id: str) -> None:
        self.source_commit, self.revision_id = commit, revision_id

    def operations(self) -> list[str]:
        return [name for name, _ in self.calls]

    def answer(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if operation in self.refuse:
            raise Refusal(self.refuse[operation], f"refused by the test: {operation}")
        if params.get("pullRequestId", self.id) != self.id:
            raise Refusal("PullRequestDoesNotExistException", f"pull request {params['pullRequestId']} does not exist")
        return getattr(self, operation)(params)

    def GetPullRequest(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"pullRequest": {
            "pullRequestId": self.id, "title": "Add V2", "pullRequestStatus": "OPEN", "revisionId": self.revision_id,
            "pullRequestTargets": [{"repositoryName": self.repository, "sourceReference": "refs/heads/feature",
                                    "destinationReference": "refs/heads/main", "sourceCommit": self.source_commit,
                                    "destinationCommit": self.destination_commit, "mergeBase": self.destination_commit}],
        }}

    def GetCommentsForPullRequest(self, params: dict[str, Any]) -> dict[str, Any]:
        start = int(params.get("nextToken", "0"))
        page = self.comments[start : start + self.page_size]
        reply: dict[str, Any] = {"commentsForPullRequestData": [{
            "pullRequestId": self.id, "repositoryName": self.repository, "beforeCommitId": self.destination_commit,
            "afterCommitId": self.source_commit, "comments": page}] if page else []}
        if start + self.page_size < len(self.comments):
            reply["nextToken"] = str(start + self.page_size)
        return reply

    def PostCommentForPullRequest(self, params: dict[str, Any]) -> dict[str, Any]:
        comment = {"commentId": f"comment-{len(self.comments) + 1}", "content": params["content"], "authorArn": self.caller,
                   "creationDate": time.time(), "lastModifiedDate": time.time(), "deleted": False}
        self.comments.append(comment)
        return {"repositoryName": self.repository, "pullRequestId": self.id, "beforeCommitId": params["beforeCommitId"],
                "afterCommitId": params["afterCommitId"], "comment": comment}

    def UpdateComment(self, params: dict[str, Any]) -> dict[str, Any]:
        (comment,) = [c for c in self.comments if c["commentId"] == params["commentId"]] or [None]
        if comment is None:
            raise Refusal("CommentDoesNotExistException", "No comment exists with the provided ID.")
        if comment["authorArn"] != self.caller:
            raise Refusal("CommentNotCreatedByCallerException", "You cannot modify or delete this comment.")
        comment.update(content=params["content"], lastModifiedDate=time.time())
        return {"comment": comment}

    def UpdatePullRequestApprovalState(self, params: dict[str, Any]) -> dict[str, Any]:
        if params["revisionId"] != self.revision_id:
            raise Refusal("RevisionNotCurrentException", "The revision ID is not the current revision ID.")
        self.approvals.append((params["revisionId"], params["approvalState"]))
        return {}


class CodeCommitServer:
    """`with CodeCommitServer(state) as url:` serves `state` on 127.0.0.1 until the block ends."""

    def __init__(self, state: PullRequestState) -> None:
        self.state = state
        self.invalid: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                target = self.headers.get("X-Amz-Target", "")
                operation = target.removeprefix("CodeCommit_20150413.")
                params = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                status, reply = outer.handle(operation, params)
                body = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    def handle(self, operation: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if operation not in MODEL.operation_names or not hasattr(self.state, operation):
            self.invalid.append(operation)
            return 400, {"__type": "UnknownOperationException", "message": operation}
        try:
            validate_parameters(params, MODEL.operation_model(operation).input_shape)
        except ParamValidationError as exc:
            self.invalid.append(f"{operation}: {exc}")
            return 400, {"__type": "ValidationException", "message": str(exc)}
        self.state.calls.append((operation, params))
        try:
            return 200, self.state.answer(operation, params)
        except Refusal as exc:
            return 400, {"__type": exc.code, "message": str(exc)}

    def __enter__(self) -> str:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
