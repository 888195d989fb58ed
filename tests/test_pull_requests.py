"""`dbops publish-review`: one dbops comment per CodeCommit pull request, updated on each push, and the verdict as an approval."""
from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from dbops import cli
from dbops.scripts import pull_requests
from dbops.scripts.pull_requests import COMMENT_LIMIT, MARKER, PullRequests, Review
from tests.pull_request_stub import HUMAN, StubbedPullRequest

REPORT = "## ✅ dbops review: may merge\n\n### Integrity\nNo finding.\n\n## Scratch build\n| script | ms |\n|---|---|\n| V15__orders_by_region.sql | 41 |\n"


def write_report(tmp_path: Path, may_merge: bool, markdown: str = REPORT) -> Path:
    path = tmp_path / "review.json"
    path.write_text(json.dumps({"may_merge": may_merge, "markdown": markdown, "findings": []}))
    return path


@pytest.fixture
def pr(monkeypatch: pytest.MonkeyPatch) -> StubbedPullRequest:
    stub = StubbedPullRequest()
    monkeypatch.setattr(PullRequests, "connect", classmethod(lambda cls, region=None: cls(stub.client)))
    monkeypatch.delenv("CODEBUILD_BUILD_URL", raising=False)
    return stub


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict, str]:
    code = cli.main(["publish-review", *argv, "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else {}, err


def test_first_push_posts_the_report_and_approves(pr: StubbedPullRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEBUILD_BUILD_URL", "https://console.aws.amazon.com/codesuite/codebuild/projects/acme-review/build/1")
    pr.expect_get()
    pr.expect_comments([pr.comment("c-human", "Looks fine to me", author=HUMAN)])
    pr.expect_post("c-new")
    pr.expect_approval("APPROVE")
    code, out, err = run(capsys, "--pull-request", "7", "--report", str(write_report(tmp_path, True)), "--commit", pr.source_commit)
    pr.stubber.assert_no_pending_responses()
    assert code == 0, err
    assert out["comment"] == "posted" and out["comment_id"] == "c-new" and out["approval"] == "APPROVE"
    assert out["revision_id"] == pr.revision_id and out["skipped"] is None
    assert (out["source_commit"], out["destination_commit"], out["merge_base"]) == (pr.source_commit, pr.destination_commit, pr.merge_base)
    (posted,) = pr.params("PostCommentForPullRequest")
    content = posted["content"]
    assert content.startswith(MARKER + "\n## ✅ dbops review: may merge\n")  # the report as dbops review wrote it
    assert "| V15__orders_by_region.sql | 41 |" in content
    assert f"`{pr.source_commit[:12]}` (orders-by-region) against `{pr.destination_commit[:12]}` (main)" in content
    assert content.endswith(" · [build log](https://console.aws.amazon.com/codesuite/codebuild/projects/acme-review/build/1)\n")


def test_second_push_updates_the_same_comment(pr: StubbedPullRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    earlier = pr.comment("c-dbops", f"{MARKER}\n## ❌ dbops review: blocked\n\nold report", minutes=1)
    pr.source_commit = "e" * 40  # the new push
    pr.expect_get()
    pr.expect_comments([pr.comment("c-human", "please fix V15", author=HUMAN), earlier])
    pr.expect_update("c-dbops")
    pr.expect_approval("APPROVE")
    code, out, err = run(capsys, "--pull-request", "7", "--report", str(write_report(tmp_path, True)), "--commit", "e" * 40)
    pr.stubber.assert_no_pending_responses()
    assert code == 0, err
    assert (out["comment"], out["comment_id"]) == ("updated", "c-dbops")
    assert pr.params("PostCommentForPullRequest") == []
    (update,) = pr.params("UpdateComment")
    assert "old report" not in update["content"] and f"`{'e' * 12}`" in update["content"]


def test_a_blocked_review_revokes_the_approval(pr: StubbedPullRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pr.expect_get()
    pr.expect_comments()
    pr.expect_post()
    pr.expect_approval("REVOKE")
    blocked = "## ❌ dbops review: blocked\n\n### Integrity\n- sql/V15__orders.sql: version 15 is already in main as sql/V15__customers.sql; renumber yours\n"
    code, out, err = run(capsys, "--pull-request", "7", "--report", str(write_report(tmp_path, False, blocked)))
    pr.stubber.assert_no_pending_responses()
    assert code == 0, err
    assert out["approval"] == "REVOKE"
    (posted,) = pr.params("PostCommentForPullRequest")
    assert "blocked" in posted["content"] and "sql/V15__customers.sql" in posted["content"]


def test_plain_output_says_what_was_done(pr: StubbedPullRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pr.expect_get()
    pr.expect_comments()
    pr.expect_post("c-9")
    pr.expect_approval("REVOKE")
    assert cli.main(["publish-review", "--pull-request", "7", "--report", str(write_report(tmp_path, False))]) == 0
    assert capsys.readouterr().out.strip() == (
        f"pull request 7 (warehouse, revision {pr.revision_id}): posted comment c-9; approval revoked")


def test_every_page_of_comments_is_searched(pr: StubbedPullRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pr.expect_get()
    pr.expect_comments([pr.comment(f"c-{i}", f"comment {i}", author=HUMAN, minutes=i) for i in range(3)],
                       [pr.comment("c-9", "another", author=HUMAN, minutes=9)],
                       [pr.comment("c-dbops", f"{MARKER}\nold", minutes=1)])
    pr.expect_update("c-dbops")
    pr.expect_approval("APPROVE")
    code, out, err = run(capsys, "--pull-request", "7", "--report", str(write_report(tmp_path, True)))
    pr.stubber.assert_no_pending_responses()
    assert code == 0, err
    assert out["comment_id"] == "c-dbops"
    assert [p.get("nextToken") for p in pr.params("GetCommentsForPullRequest")] == [None, "page-1", "page-2"]


def test_a_comment_quoting_the_marker_that_dbops_did_not_write_is_left_alone(
    pr: StubbedPullRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pr.expect_get()
    pr.expect_comments([pr.comment("c-quote", f"why does it say {MARKER}?", author=HUMAN),
                        pr.comment("c-gone", f"{MARKER}\nold", minutes=2, deleted=True)])
    pr.expect_error("update_comment", "CommentNotCreatedByCallerException", "You cannot modify or delete this comment.")
    pr.expect_post("c-new")
    pr.expect_approval("APPROVE")
    code, out, err = run(capsys, "--pull-request", "7", "--report", str(write_report(tmp_path, True)))
    pr.stubber.assert_no_pending_responses()
    assert code == 0, err
    assert [p["commentId"] for p in pr.params("UpdateComment")] == ["c-quote"]  # the deleted one is not tried
    assert (out["comment"], out["comment_id"]) == ("posted", "c-new")


def test_a_review_of_an_older_push_publishes_nothing(pr: StubbedPullRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pr.expect_get()
    code, out, err = run(capsys, "--pull-request", "7", "--report", str(write_report(tmp_path, True)), "--commit", "f" * 40)
    pr.stubber.assert_no_pending_responses()
    assert code == 0, err
    assert pr.operations() == ["GetPullRequest"]
    assert out["approval"] is None and "the source branch is now at aaaaaaaaaaaa" in out["skipped"]


def test_a_closed_pull_request_gets_nothing(pr: StubbedPullRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pr.status = "CLOSED"
    pr.expect_get()
    code, out, _ = run(capsys, "--pull-request", "7", "--report", str(write_report(tmp_path, True)))
    assert code == 0 and pr.operations() == ["GetPullRequest"] and out["skipped"] == "the pull request is closed"


def test_a_push_between_comment_and_verdict_leaves_the_verdict_to_the_newer_build(
    pr: StubbedPullRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pr.expect_get()
    pr.expect_comments()
    pr.expect_post()
    pr.expect_error("update_pull_request_approval_state", "RevisionNotCurrentException", "The revision ID is not current.")
    code, out, err = run(capsys, "--pull-request", "7", "--report", str(write_report(tmp_path, True)))
    assert code == 0, err
    assert out["approval"] is None and "new revision" in out["skipped"]


def test_the_report_of_a_review_that_could_not_finish_blocks(pr: StubbedPullRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "review.json"
    report.write_text(json.dumps({"error": "sql/V15 orders.sql: not a migration name (V<version>__<description>.sql)", "exit_code": 2}))
    pr.expect_get()
    pr.expect_comments()
    pr.expect_post()
    pr.expect_approval("REVOKE")
    code, out, err = run(capsys, "--pull-request", "7", "--report", str(report))
    assert code == 0, err
    (posted,) = pr.params("PostCommentForPullRequest")
    assert "could not finish** (exit 2)" in posted["content"] and "sql/V15 orders.sql: not a migration name" in posted["content"]


def test_a_long_report_is_cut_to_the_comment_limit_and_says_so(pr: StubbedPullRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = "".join(f"| V{i}__table_{i}.sql | ✓ {i} ms |\n" for i in range(2000))
    pr.expect_get()
    pr.expect_comments()
    pr.expect_post()
    pr.expect_approval("APPROVE")
    code, _, err = run(capsys, "--pull-request", "7", "--report", str(write_report(tmp_path, True, "```\n" + rows + "```\n")))
    assert code == 0, err
    (posted,) = pr.params("PostCommentForPullRequest")
    content = posted["content"]
    assert len(content.encode("utf-8")) <= COMMENT_LIMIT
    assert len(content.encode("utf-8")) > COMMENT_LIMIT - 200  # cut, not emptied
    assert content.startswith(MARKER) and "| V0__table_0.sql |" in content
    assert "report cut to CodeCommit's comment limit" in content
    assert content.count("```") % 2 == 0  # the cut code block is closed before the note


@pytest.mark.parametrize(("text", "says"), [
    (None, "cannot read the review report (FileNotFoundError"),
    ("", "the review report is empty"),
    ('{"may_merge": true,\n "markdown": }', "review.json:2: not JSON"),
    ('{"may_merge": "yes", "markdown": "x"}', 'not a review report: expected a JSON object with "may_merge"'),
    ("[1, 2]", "not a review report"),
])
def test_an_unreadable_report_is_bad_input_and_nothing_is_published(
    pr: StubbedPullRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str | None, says: str
) -> None:
    report = tmp_path / "review.json"
    if text is not None:
        report.write_text(text)
    code, out, err = run(capsys, "--pull-request", "7", "--report", str(report))
    assert code == 2
    assert says in out["error"] and str(report) in out["error"]
    assert "Traceback" not in err and pr.sent == []


@pytest.mark.parametrize(("code", "message", "status", "exit_code", "says"), [
    ("PullRequestDoesNotExistException", "Pull request 7 does not exist", 400, 2, "no such pull request; check --pull-request"),
    ("InvalidPullRequestIdException", "bad id", 400, 2, "not a pull request id"),
    ("AccessDeniedException", "User is not authorized to perform codecommit:GetPullRequest", 400, 3,
     "access denied (User is not authorized to perform codecommit:GetPullRequest); the role needs codecommit:GetPullRequest"),
    ("ThrottlingException", "Rate exceeded", 400, 3, "throttled by CodeCommit"),
    ("InternalFailure", "boom", 400, 2, "CodeCommit get_pull_request: InternalFailure: boom"),
])
def test_aws_errors_are_messages_with_exit_codes(
    pr: StubbedPullRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    code: str, message: str, status: int, exit_code: int, says: str,
) -> None:
    pr.expect_error("get_pull_request", code, message, status)
    result, out, err = run(capsys, "--pull-request", "7", "--report", str(write_report(tmp_path, True)))
    assert result == exit_code
    assert says in out["error"] and says in err
    assert "Traceback" not in err and pr.operations() == ["GetPullRequest"]


def test_access_denied_on_the_approval_is_exit_3_after_the_comment(pr: StubbedPullRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pr.expect_get()
    pr.expect_comments()
    pr.expect_post()
    pr.expect_error("update_pull_request_approval_state", "AccessDeniedException", "not authorized")
    code, out, _ = run(capsys, "--pull-request", "7", "--report", str(write_report(tmp_path, True)))
    assert code == 3 and "UpdatePullRequestApprovalState on the repository" in out["error"]


def test_a_pull_request_of_another_repository_is_bad_input(pr: StubbedPullRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pr.expect_get()
    code, out, _ = run(capsys, "--pull-request", "7", "--report", str(write_report(tmp_path, True)), "--repository", "other")
    assert code == 2 and out["error"] == "pull request 7 has no target in repository other; check --repository"


def test_without_a_pull_request_id_nothing_is_called(pr: StubbedPullRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBOPS_PULL_REQUEST_ID", raising=False)
    code = cli.main(["publish-review", "--report", str(write_report(tmp_path, True))])
    assert code == 2 and "needs --pull-request ID" in capsys.readouterr().err and pr.sent == []


def test_an_unreachable_endpoint_is_exit_3_without_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret-never-printed",
                       "AWS_REGION": "eu-west-1", "AWS_MAX_ATTEMPTS": "1", "AWS_CONFIG_FILE": "/dev/null",
                       "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_ENDPOINT_URL_CODECOMMIT": f"http://127.0.0.1:{port}"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    code, out, err = run(capsys, "--pull-request", "7", "--report", str(write_report(tmp_path, True)))
    assert code == 3
    assert out["error"].startswith("CodeCommit get_pull_request: Could not connect to the endpoint URL")
    assert "Traceback" not in err and "testing-secret-never-printed" not in out["error"] + err


def test_review_load_reads_the_contract_of_dbops_review(tmp_path: Path) -> None:
    assert Review.load(write_report(tmp_path, False, "# x")) == Review(False, "# x")
    assert pull_requests.MARKER.startswith("<!--") and pull_requests.MARKER.endswith("-->")  # hidden in rendered Markdown
