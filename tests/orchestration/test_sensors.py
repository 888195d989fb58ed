"""git_sensor and codecommit_sensor evaluated with build_sensor_context on real git repositories and a stubbed CodeCommit."""
from __future__ import annotations

from pathlib import Path

import pytest
from dagster import AssetKey, AssetSpec, DagsterInstance, DefaultSensorStatus, Definitions, build_sensor_context, define_asset_job, multi_asset

from dbops.orchestration.selection import TAG_SELECTION
from dbops.orchestration.sensors import Watch, build_sensors
from dbops.orchestration.tags import TAG_AUTHOR, TAG_COMMIT, TAG_INCLUDED, TAG_MESSAGE, TAG_REPOSITORY, TAG_SOURCE
from dbops.orchestration.translator import SCRIPT_METADATA, asset_name
from tests.codecommit_stub import StubbedCodeCommit
from tests.gitrepo import GitRepo


def definitions(known: list[str], git: Watch | None = None, codecommit: Watch | None = None):
    """A code location that loaded assets for `known` scripts, with both sensors on its migrate job."""

    specs = [AssetSpec(["migrations", asset_name(s)], skippable=True, metadata={SCRIPT_METADATA: s}) for s in known]

    @multi_asset(specs=specs or [AssetSpec(["migrations", "none"])])
    def migrations():
        return None

    job = define_asset_job("migrate")
    codecommit_sensor, git_sensor = build_sensors(job, git=git or Watch("git"), codecommit=codecommit or Watch("codecommit"))
    defs = Definitions(assets=[migrations], jobs=[job], sensors=[codecommit_sensor, git_sensor])
    return defs, git_sensor, codecommit_sensor


def tick(sensor, defs, cursor: str | None):
    return sensor.evaluate_tick(build_sensor_context(instance=DagsterInstance.ephemeral(), definitions=defs, cursor=cursor))


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "warehouse")


def test_first_look_runs_the_newest_commit_that_changed_a_script(repo: GitRepo) -> None:
    v1 = repo.commit("add V1", {"sql/V1__customers.sql": "create table customers (id int);"}, author="Grace Hopper <grace@example.com>")
    head = repo.commit("docs", {"README.md": "hello"})
    defs, git_sensor, _ = definitions(["V1__customers.sql"], git=Watch("git", str(repo.path)))
    result = tick(git_sensor, defs, None)
    [request] = result.run_requests
    assert request.run_key == v1
    assert {k: v for k, v in request.tags.items() if k.startswith("dbops/")} == {
        TAG_SOURCE: "sensor",
        TAG_REPOSITORY: f"git:{repo.path.resolve()}",
        "dbops/branch": "main",
        TAG_COMMIT: v1,
        TAG_AUTHOR: "Grace Hopper <grace@example.com>",
        TAG_MESSAGE: "add V1",
        TAG_SELECTION: "pending",
    }
    assert request.asset_selection == [AssetKey(["migrations", "v1__customers"])]  # nothing recorded yet
    assert result.cursor == head
    again = tick(git_sensor, defs, result.cursor)
    assert not again.run_requests and again.cursor == head
    assert again.skip_message == f"no new commit on main of git:{repo.path.resolve()} (still {head[:12]})"


def test_commits_that_change_no_script_only_move_the_cursor(repo: GitRepo) -> None:
    start = repo.commit("add V1", {"sql/V1__a.sql": "select 1;"})
    repo.commit("docs", {"README.md": "hello"})
    notes = repo.commit("notes next to the scripts", {"sql/notes.md": "not a script"})
    defs, git_sensor, _ = definitions(["V1__a.sql"], git=Watch("git", str(repo.path)))
    result = tick(git_sensor, defs, start)
    assert not result.run_requests and result.cursor == notes
    assert result.skip_message == f"2 new commit(s) on main, none changes a script under sql/ (newest {notes[:12]}: notes next to the scripts)"


def test_several_new_commits_make_one_run_for_the_newest_listing_the_others(repo: GitRepo, capsys) -> None:
    start = repo.commit("add V1", {"sql/V1__a.sql": "select 1;"})
    v2 = repo.commit("add V2", {"sql/V2__b.sql": "select 2;"})
    v3 = repo.commit("add V3", {"sql/V3__c.sql": "select 3;"})
    v4 = repo.commit("add V4", {"sql/V4__d.sql": "select 4;"})
    head = repo.commit("docs", {"README.md": "hello"})
    defs, git_sensor, _ = definitions(["V1__a.sql", "V2__b.sql"], git=Watch("git", str(repo.path)))
    result = tick(git_sensor, defs, start)
    log = capsys.readouterr().err
    [request] = result.run_requests
    assert request.run_key == v4 and request.tags[TAG_COMMIT] == v4 and result.cursor == head
    assert request.tags[TAG_INCLUDED] == f"{v2},{v3}"
    assert request.tags["dbops/new_scripts"] == "V3__c.sql,V4__d.sql"
    assert f"folds in 2 earlier commit(s): {v2[:12]}, {v3[:12]}" in log
    assert "2 script(s) it brings have no asset in the loaded code location (V3__c.sql, V4__d.sql): the run records" in log


def test_a_rewritten_history_starts_again_from_the_branch(repo: GitRepo, capsys) -> None:
    repo.commit("add V1", {"sql/V1__a.sql": "select 1;"})
    gone = "0123456789abcdef0123456789abcdef01234567"
    defs, git_sensor, _ = definitions(["V1__a.sql"], git=Watch("git", str(repo.path)))
    result = tick(git_sensor, defs, gone)
    log = capsys.readouterr().err
    assert [r.run_key for r in result.run_requests] == [repo.head()]
    assert "the last handled commit 0123456789ab is no longer in" in log


def test_git_errors_skip_without_moving_the_cursor(repo: GitRepo, tmp_path: Path) -> None:
    repo.commit("add V1", {"sql/V1__a.sql": "select 1;"})
    defs, git_sensor, _ = definitions(["V1__a.sql"], git=Watch("git", str(repo.path), branch="release"))
    result = tick(git_sensor, defs, "abc")
    assert not result.run_requests and result.cursor == "abc"
    assert "no branch, tag or commit 'release'" in result.skip_message and "DBOPS_GIT_BRANCH" in result.skip_message
    defs, git_sensor, _ = definitions(["V1__a.sql"], git=Watch("git", str(tmp_path / "missing")))
    assert "git repository not found" in tick(git_sensor, defs, None).skip_message


def test_configuration_comes_from_the_environment() -> None:
    env = {
        "DBOPS_GIT_REPOSITORY": "/srv/warehouse", "DBOPS_CODECOMMIT_REPOSITORY": "warehouse",
        "DBOPS_CODECOMMIT_BRANCH": "release", "DBOPS_LOCATIONS": "db/sql, more", "AWS_REGION": "eu-west-1",
    }
    git, codecommit = Watch.from_env("git", env), Watch.from_env("codecommit", env)
    assert (git.repository, git.branch, git.locations) == ("/srv/warehouse", "main", ("db/sql", "more"))
    assert (codecommit.repository, codecommit.branch, codecommit.region) == ("warehouse", "release", "eu-west-1")
    defs, git_sensor, codecommit_sensor = definitions([], git=git)
    assert git_sensor.default_status == DefaultSensorStatus.RUNNING
    assert codecommit_sensor.default_status == DefaultSensorStatus.STOPPED
    skipped = tick(codecommit_sensor, defs, None)
    assert skipped.skip_message == "DBOPS_CODECOMMIT_REPOSITORY is not set; set it to the repository to watch and restart the code location"


def test_codecommit_sensor_runs_new_commits_and_skips_on_aws_errors() -> None:
    cc = StubbedCodeCommit()
    v1 = cc.commit("add V1", {"sql/V1__a.sql": b"select 1;"})
    defs, _, sensor = definitions(["V1__a.sql"], codecommit=Watch("codecommit", cc.repository, client=cc.client))
    cc.expect_repository()
    cc.expect_branch("main", v1)
    cc.expect_commit(v1)
    cc.expect_differences(None, v1)
    cc.expect_folder(v1, "sql")
    first = tick(sensor, defs, None)
    assert [(r.run_key, r.tags[TAG_REPOSITORY], r.tags[TAG_AUTHOR]) for r in first.run_requests] == [(v1, "codecommit:warehouse", "Ada Lovelace <ada@example.com>")]
    assert first.cursor == v1

    cc.expect_error("get_branch", "ThrottlingException", "Rate exceeded", {"repositoryName": "warehouse", "branchName": "main"})
    throttled = tick(sensor, defs, v1)
    assert not throttled.run_requests and throttled.cursor == v1
    assert "throttled by CodeCommit (Rate exceeded); the sensor tries again on its next tick" in throttled.skip_message

    docs = cc.commit("docs", {"README.md": b"hello"})
    v2 = cc.commit("add V2", {"sql/V2__b.sql": b"select 2;"}, author=("Grace Hopper", "grace@example.com"))
    cc.expect_branch("main", v2)
    cc.expect_commit(v2)
    cc.expect_differences(docs, v2)
    cc.expect_commit(docs)
    cc.expect_differences(v1, docs)
    cc.expect_folder(v2, "sql")
    second = tick(sensor, defs, v1)
    [request] = second.run_requests
    assert (request.run_key, request.tags[TAG_MESSAGE], request.tags["dbops/new_scripts"]) == (v2, "add V2", "V2__b.sql")
    assert TAG_INCLUDED not in request.tags and second.cursor == v2

    cc.expect_error("get_branch", "AccessDeniedException", "not authorized to perform codecommit:GetBranch", {"repositoryName": "warehouse", "branchName": "main"})
    denied = tick(sensor, defs, v2)
    assert denied.cursor == v2 and "access denied (not authorized to perform codecommit:GetBranch)" in denied.skip_message
    cc.stubber.assert_no_pending_responses()


def test_a_repository_urls_password_stays_out_of_the_ui(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DBOPS_HOME", str(tmp_path))
    url = "https://deploy:s3cret-token@127.0.0.1:9/warehouse.git"
    defs, git_sensor, _ = definitions([], git=Watch("git", url))
    result = tick(git_sensor, defs, None)
    assert "s3cret-token" not in result.skip_message and "s3cret-token" not in git_sensor.description
    assert result.skip_message.startswith("git:https://deploy:***@127.0.0.1:9/warehouse.git (main): git clone https://deploy:***@")
    assert result.cursor is None
