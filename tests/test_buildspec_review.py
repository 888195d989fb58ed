"""buildspec-review.yml: its build commands run for real, as the review project and the event leave them.

What runs: the build block, verbatim, in bash, in a full git clone checked out at the pull request's source
commit, with the variables the CodeBuild project declares (infra/pipeline.yaml) plus the overrides its
EventBridge input transformer makes of a pull-request event. `dbops publish-review` is this checkout's dbops,
talking over HTTP to a CodeCommit endpoint on 127.0.0.1 (tests/codecommit_server.py: requests checked against
botocore's model, comments and approvals kept as CodeCommit keeps them) - a Stubber cannot serve another
process, and moto has no pull requests. `uv run` is a shim that runs this checkout's dbops (the environment is
already synced) and records its arguments, so the base it is given is checked. `dbops review` is the real
command: the warehouse (DBOPS_URL) is the test server, where it also creates its scratch database.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.decode import cfn_yaml

from dbops.scripts.pull_requests import MARKER
from tests.codecommit_server import CodeCommitServer, PullRequestState
from tests.gitrepo import GitRepo
from tests.pg import PgServer
from tests.pull_request_events import REPOSITORY, pull_request_event, resolve, transform

ROOT = Path(__file__).resolve().parents[1]
TEXT = (ROOT / "buildspec-review.yml").read_text()
SPEC = yaml.safe_load(TEXT)
TEMPLATE = cfn_yaml.load(str(ROOT / "infra" / "pipeline.yaml"))
PASSWORD = "review-Pa55word-never-printed"
VALUES = {
    "AWS::StackName": "acme-pipeline", "AWS::Partition": "aws", "AWS::Region": "eu-west-1", "AWS::AccountId": "123456789012",
    "RedshiftStackName": "acme-dw", "NetworkStackName": "acme-net", "ReviewDatabaseUser": "dbops_review",
    "Repository.Name": REPOSITORY, "ReviewDatabaseSecret": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:review-AbCdEf",
    "import:acme-dw-Endpoint": "warehouse.abc123.eu-west-1.redshift.amazonaws.com", "import:acme-dw-Port": "5439",
    "import:acme-dw-DatabaseName": "warehouse",
}


def review_project() -> dict[str, Any]:
    return TEMPLATE["Resources"]["ReviewProject"]["Properties"]


def build_block() -> str:
    (block,) = SPEC["phases"]["build"]["commands"]
    return block


def project_environment() -> dict[str, str]:
    """The project's variables as CodeBuild gives them to the build (the secret resolved to a test value)."""
    env = {}
    for var in review_project()["Environment"]["EnvironmentVariables"]:
        env[var["Name"]] = PASSWORD if var["Type"] == "SECRETS_MANAGER" else resolve(var["Value"], VALUES)
    return env


def start_build(event: dict[str, Any]) -> dict[str, Any]:
    """The StartBuild request the review rule's target makes of an event."""
    (target,) = TEMPLATE["Resources"]["ReviewRule"]["Properties"]["Targets"]
    return transform(target["InputTransformer"], event)


def test_version_install_and_the_review_before_the_publish() -> None:
    assert str(SPEC["version"]) == "0.2"
    assert SPEC["phases"]["install"]["on-failure"] == "ABORT"
    assert "uv sync --frozen" in SPEC["phases"]["install"]["commands"]
    block = build_block()
    review = block.index('uv run dbops review --base "$DBOPS_DESTINATION_COMMIT" --json > review.json')
    publish = block.index('uv run dbops publish-review --pull-request "$DBOPS_PULL_REQUEST_ID" --commit "$reviewed" --report review.json')
    assert review < publish


def test_the_variables_it_uses_are_the_ones_the_project_and_the_event_give() -> None:
    used = set(re.findall(r"\$\{?!?(DBOPS_\w+)", TEXT)) | set(re.findall(r"\b(DBOPS_\w+)\b", build_block()))
    overrides = {v["name"] for v in start_build(pull_request_event())["environmentVariablesOverride"]}
    declared = set(project_environment())
    assert used <= overrides | declared, used - overrides - declared
    assert {"DBOPS_PULL_REQUEST_ID", "DBOPS_SOURCE_COMMIT", "DBOPS_DESTINATION_COMMIT"} == overrides
    assert declared == {"DBOPS_URL", "DBOPS_PASSWORD", "DBOPS_CODECOMMIT_REPOSITORY"}
    assert not re.search(r"(?i)(password|secret)\s*[=:]\s*['\"]?[A-Za-z0-9/+]{6,}", TEXT)
    assert not re.search(r"\b\d{12}\b|arn:aws", TEXT)


class Build:
    """A CodeBuild build of the review project: a full clone at the source commit, the project's environment."""

    def __init__(self, tmp_path: Path, origin: GitRepo, endpoint: str, warehouse: PgServer) -> None:
        self.tmp_path = tmp_path
        self.warehouse = warehouse
        self.origin = origin
        self.calls = tmp_path / "calls"
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        uv = self.bin / "uv"
        uv.write_text(
            "#!/bin/bash\n"
            '[ "$1" = run ] && [ "$2" = dbops ] || { echo "unexpected: uv $*" >&2; exit 97; }\n'
            "shift 2\n"
            'printf "%s\\n" "$*" >> "$DBOPS_TEST_CALLS"\n'
            f'exec {sys.executable} -m dbops.cli "$@"\n'
        )
        uv.chmod(0o755)
        self.endpoint = endpoint

    def run(self, event: dict[str, Any], checkout: str | None = None) -> subprocess.CompletedProcess:
        request = start_build(event)
        clone = self.tmp_path / f"src-{len(list(self.tmp_path.glob('src-*')))}"
        subprocess.run(["git", "clone", "--quiet", str(self.origin.path), str(clone)], check=True)
        subprocess.run(["git", "-C", str(clone), "checkout", "--quiet", "--detach", checkout or request["sourceVersion"]], check=True)
        env = {
            "PATH": f"{self.bin}:{os.environ['PATH']}", "HOME": str(self.tmp_path), "GIT_CONFIG_NOSYSTEM": "1",
            **project_environment(),
            **{v["name"]: v["value"] for v in request["environmentVariablesOverride"]},
            "CODEBUILD_RESOLVED_SOURCE_VERSION": request["sourceVersion"],
            "CODEBUILD_BUILD_URL": "https://eu-west-1.console.aws.amazon.com/codesuite/codebuild/projects/acme-pipeline-review/build/1",
            "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_ENDPOINT_URL_CODECOMMIT": self.endpoint, "AWS_MAX_ATTEMPTS": "1",
            "DBOPS_TEST_CALLS": str(self.calls), "DBOPS_HOME": str(self.tmp_path / "dbops-home"),
            # The warehouse is the test server (the project's URL names the cluster): the review reads its history
            # and builds its scratch database there.
            "DBOPS_URL": self.warehouse.url(self.warehouse.create_database("warehouse")),
            "DBOPS_SCRATCH_URL": self.warehouse.url(),
        }
        return subprocess.run(["bash", "-c", build_block()], cwd=clone, env=env, capture_output=True, text=True)

    def dbops_calls(self) -> list[str]:
        return self.calls.read_text().splitlines() if self.calls.exists() else []


@pytest.fixture
def origin(tmp_path: Path) -> GitRepo:
    repo = GitRepo(tmp_path / "origin")
    repo.commit("V1", {"sql/V1__customers.sql": "create table customers (id int);\n"})
    return repo


def test_each_push_updates_one_comment_and_the_verdict_follows_the_review(tmp_path: Path, origin: GitRepo, pg_server: PgServer) -> None:
    main = origin.head()
    origin.git("checkout", "--quiet", "-b", "feature")
    first = origin.commit("V2", {"sql/V2__orders.sql": "create table orders (id int);\n"})
    state = PullRequestState("7", REPOSITORY, first, main, "1" * 64)
    state.comments.append({"commentId": "human-1", "content": "Who owns orders?", "authorArn": "arn:aws:iam::123456789012:user/grace",
                           "creationDate": 1.0, "deleted": False})
    state.comments.append({"commentId": "human-2", "content": "Finance does.", "authorArn": "arn:aws:iam::123456789012:user/alan",
                           "creationDate": 2.0, "deleted": False})
    with CodeCommitServer(state) as endpoint:
        build = Build(tmp_path, origin, endpoint, pg_server)
        done = build.run(pull_request_event("pullRequestCreated", source_commit=first, destination_commit=main))
        assert done.returncode == 0, done.stderr
        assert build.dbops_calls() == [f"review --base {main} --json",
                                       f"publish-review --pull-request 7 --commit {first} --report review.json"]
        ours = [c for c in state.comments if c["authorArn"] == state.caller]
        assert len(ours) == 1 and ours[0]["content"].startswith(MARKER) and "V2__orders.sql" in ours[0]["content"]
        assert re.search(r"\| `sql/V2__orders\.sql` \| \d+ \| 1 \| transaction \|", ours[0]["content"]), ours[0]["content"]  # built
        assert state.approvals == [("1" * 64, "APPROVE")]
        assert f"pull request 7 ({REPOSITORY}, revision {'1' * 64}): posted comment comment-3; approved" in done.stdout

        second = origin.commit("V2 edited", {"sql/V2__orders.sql": "create table orders (id int, total decimal(10,2);\n"})
        state.push(second, "2" * 64)
        done = build.run(pull_request_event("pullRequestSourceBranchUpdated", source_commit=second, destination_commit=main))
        assert done.returncode == 1, done.stderr  # a blocked review is a red build
        ours = [c for c in state.comments if c["authorArn"] == state.caller]
        assert len(ours) == 1 and "DB001" in ours[0]["content"], ours[0]["content"]
        assert state.approvals == [("1" * 64, "APPROVE"), ("2" * 64, "REVOKE")]
        assert "updated comment comment-3; approval revoked" in done.stdout
    # Pages of two: the first push finds the two human comments on one page, the second reads both pages of three.
    assert [p.get("nextToken") for op, p in state.calls if op == "GetCommentsForPullRequest"] == [None, None, "2"]
    assert PASSWORD not in done.stdout + done.stderr + json.dumps(state.calls)


def test_a_review_that_could_not_run_still_revokes_and_fails_the_build(tmp_path: Path, origin: GitRepo, pg_server: PgServer) -> None:
    main = origin.head()
    origin.git("checkout", "--quiet", "-b", "feature")
    head = origin.commit("bad name", {"sql/V2 orders.sql": "select 1;\n"})
    state = PullRequestState("7", REPOSITORY, head, main, "1" * 64)
    with CodeCommitServer(state) as endpoint:
        done = Build(tmp_path, origin, endpoint, pg_server).run(pull_request_event(source_commit=head, destination_commit=main))
    assert done.returncode == 2
    assert state.approvals == [("1" * 64, "REVOKE")] and "could not finish" in state.comments[0]["content"]


def test_when_publishing_fails_the_build_fails_even_if_the_review_passed(tmp_path: Path, origin: GitRepo, pg_server: PgServer) -> None:
    main = origin.head()
    origin.git("checkout", "--quiet", "-b", "feature")
    head = origin.commit("V2", {"sql/V2__orders.sql": "select 1;\n"})
    state = PullRequestState("7", REPOSITORY, head, main, "1" * 64, refuse={"UpdatePullRequestApprovalState": "AccessDeniedException"})
    with CodeCommitServer(state) as endpoint:
        done = Build(tmp_path, origin, endpoint, pg_server).run(pull_request_event(source_commit=head, destination_commit=main))
    assert done.returncode == 3
    assert "access denied" in done.stderr and "UpdatePullRequestApprovalState" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_checkout_that_is_not_the_source_commit_is_not_reviewed(tmp_path: Path, origin: GitRepo, pg_server: PgServer) -> None:
    main = origin.head()
    origin.git("checkout", "--quiet", "-b", "feature")
    head = origin.commit("V2", {"sql/V2__orders.sql": "select 1;\n"})
    state = PullRequestState("7", REPOSITORY, head, main, "1" * 64)
    with CodeCommitServer(state) as endpoint:
        build = Build(tmp_path, origin, endpoint, pg_server)
        done = build.run(pull_request_event(source_commit=head, destination_commit=main), checkout=main)
    assert done.returncode == 1 and f"not the pull request's source commit {head}" in done.stderr
    assert build.dbops_calls() == [] and state.calls == []


def test_a_destination_commit_missing_from_the_clone_stops_the_build(tmp_path: Path, origin: GitRepo, pg_server: PgServer) -> None:
    origin.git("checkout", "--quiet", "-b", "feature")
    head = origin.commit("V2", {"sql/V2__orders.sql": "select 1;\n"})
    missing = "9" * 40
    state = PullRequestState("7", REPOSITORY, head, missing, "1" * 64)
    with CodeCommitServer(state) as endpoint:
        build = Build(tmp_path, origin, endpoint, pg_server)
        done = build.run(pull_request_event(source_commit=head, destination_commit=missing))
    assert done.returncode == 1 and "needs a full clone (GitCloneDepth 0)" in done.stderr
    assert review_project()["Source"]["GitCloneDepth"] == 0
    assert build.dbops_calls() == []
