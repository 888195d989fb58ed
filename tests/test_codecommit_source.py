"""CodeCommitSource: requests checked against the service model (Stubber); get_repository on moto."""
from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from dbops.errors import ConfigError
from dbops.scripts.codecommit import CodeCommitSource
from dbops.scripts.sources import SourceError
from tests.codecommit_stub import REGION, StubbedCodeCommit


@pytest.fixture
def cc() -> StubbedCodeCommit:
    stub = StubbedCodeCommit()
    yield stub
    stub.stubber.assert_no_pending_responses()


def source(cc: StubbedCodeCommit, ref: str, **kwargs) -> CodeCommitSource:
    return CodeCommitSource(cc.repository, ref, client=cc.client, locations=("sql",), **kwargs)


def test_snapshot_reads_one_commit_and_caches_commits_and_blobs(cc: StubbedCodeCommit) -> None:
    first = cc.commit("add V1 and a report", {
        "sql/V1__customers.sql": b"create table customers (id int);\r\n",
        "sql/reports/R__names.sql": b"create view names as select 1;",
        "sql/notes.txt": b"not a script",
        "README.md": b"hello",
    })
    cc.expect_commit(first)
    cc.expect_folder(first, "sql")
    cc.expect_folder(first, "sql/reports")
    cc.expect_file(first, "sql/V1__customers.sql")
    cc.expect_file(first, "sql/reports/R__names.sql")
    snapshot = source(cc, first).snapshot()
    assert [(f.relpath, f.display_path, f.data) for f in snapshot.files] == [
        ("V1__customers.sql", "sql/V1__customers.sql", b"create table customers (id int);\r\n"),
        ("reports/R__names.sql", "sql/reports/R__names.sql", b"create view names as select 1;"),
    ]
    assert snapshot.commit.id == first and snapshot.commit.message == "add V1 and a report"
    assert snapshot.commit.author == "Ada Lovelace <ada@example.com>"
    assert snapshot.commit.time == "2023-11-14T23:13:20+01:00"
    assert source(cc, first).snapshot().files == snapshot.files  # no request: the stubber would raise

    second = cc.commit("add V2", {"sql/V2__orders.sql": b"create table orders (id int);"})
    cc.expect_commit(second)
    cc.expect_folder(second, "sql")
    cc.expect_folder(second, "sql/reports")
    cc.expect_file(second, "sql/V2__orders.sql")
    assert [f.relpath for f in source(cc, second).snapshot().files] == ["V1__customers.sql", "V2__orders.sql", "reports/R__names.sql"]


def test_changes_walk_first_parents_and_page_through_differences(cc: StubbedCodeCommit) -> None:
    base = cc.commit("add V1", {"sql/V1__a.sql": b"select 1;"})
    docs = cc.commit("docs", {"README.md": b"hello"})
    v2 = cc.commit("add V2 and docs", {"docs/a.md": b"a", "docs/b.md": b"b", "sql/V2__b.sql": b"select 2;"})
    cc.expect_branch("main", v2)
    cc.expect_commit(v2)
    cc.expect_differences(docs, v2, page_size=2)
    cc.expect_commit(docs)
    cc.expect_differences(base, docs)
    changes = source(cc, "main").changes(base)
    assert [(c.commit.id, c.commit.message, c.paths) for c in changes] == [
        (v2, "add V2 and docs", ("sql/V2__b.sql",)),
        (docs, "docs", ()),
    ]


def test_a_run_folding_commits_attributes_each_script_to_its_commit(cc: StubbedCodeCommit) -> None:
    base = cc.commit("add V1", {"sql/V1__a.sql": b"select 1;"})
    v2 = cc.commit("add V2", {"sql/V2__b.sql": b"select 2;"}, author=("Grace Hopper", "grace@example.com"))
    v3 = cc.commit("add V3", {"sql/V3__c.sql": b"select 3;"})
    cc.expect_commit(v3)
    cc.expect_folder(v3, "sql")
    for path in ("sql/V1__a.sql", "sql/V2__b.sql", "sql/V3__c.sql"):
        cc.expect_file(v3, path)
    cc.expect_commit(v2)
    cc.expect_differences(base, v2)
    cc.expect_differences(v2, v3)
    snapshot = source(cc, v3, included=(v2,)).snapshot()
    assert {path: c.author for path, c in snapshot.file_commits.items()} == {
        "sql/V2__b.sql": "Grace Hopper <grace@example.com>",
        "sql/V3__c.sql": "Ada Lovelace <ada@example.com>",
    }
    assert snapshot.commit_for("sql/V1__a.sql").id == v3


@pytest.mark.parametrize(
    ("code", "says"),
    [
        ("ThrottlingException", "throttled by CodeCommit (Rate exceeded); the sensor tries again on its next tick"),
        ("BranchDoesNotExistException", "no such branch; check DBOPS_CODECOMMIT_BRANCH"),
        ("AccessDeniedException", "access denied (Rate exceeded); the role needs codecommit:GetBranch"),
        ("RepositoryDoesNotExistException", f"no such repository in region {REGION}; check DBOPS_CODECOMMIT_REPOSITORY"),
    ],
)
def test_aws_errors_say_what_to_fix(cc: StubbedCodeCommit, code: str, says: str) -> None:
    cc.expect_error("get_branch", code, "Rate exceeded", {"repositoryName": cc.repository, "branchName": "main"})
    with pytest.raises(SourceError) as caught:
        source(cc, "main").head()
    assert str(caught.value).startswith("codecommit:warehouse branch main: get_branch: ")
    assert says in str(caught.value) and caught.value.code == code


def test_a_missing_location_names_the_location_and_the_commit(cc: StubbedCodeCommit) -> None:
    only_docs = cc.commit("docs", {"README.md": b"hello"})
    cc.expect_commit(only_docs)
    cc.expect_error("get_folder", "FolderDoesNotExistException", "no folder",
                    {"repositoryName": cc.repository, "commitSpecifier": only_docs, "folderPath": "sql"})
    with pytest.raises(ConfigError, match=rf"sql: migrations location not found in commit {only_docs[:12]} of codecommit:warehouse"):
        source(cc, only_docs).snapshot()


def test_describe_names_the_repository_as_aws_knows_it(monkeypatch) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        client = boto3.client("codecommit", region_name=REGION)
        arn = client.create_repository(repositoryName="warehouse")["repositoryMetadata"]["Arn"]
        assert CodeCommitSource("warehouse", "main", client=client).describe() == f"CodeCommit repository {arn}"
        with pytest.raises(SourceError, match=f"codecommit:elsewhere: get_repository: no such repository in region {REGION}"):
            CodeCommitSource("elsewhere", "main", client=client).describe()
