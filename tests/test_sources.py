"""Sources: a folder, and one git commit read without a checkout (real git repositories in tmp folders)."""
from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from dbops.config import Settings
from dbops.engine.applier import RunInfo
from dbops.engine.engine import Engine
from dbops.errors import ConfigError
from dbops.orchestration.tags import TAG_COMMIT, TAG_INCLUDED, TAG_REPOSITORY, commit_from_tags, source_for_tags
from dbops.scripts.codecommit import CodeCommitSource
from dbops.scripts.git import GitSource, mirror_dir
from dbops.scripts.migrations import discover
from dbops.scripts.sources import FolderSource, ScriptFile, SourceError, repo_location
from dbops.targets import open_target
from tests.gitrepo import GitRepo

V1 = "create table customers (id int primary key, name text);\r\n"
BOM_CRLF = "\ufeffcreate table orders (id int);\r\n-- comment\r\n".encode()


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "warehouse")


def files_of(snapshot) -> list[tuple[str, str, bytes]]:
    return sorted((f.relpath, f.display_path, f.data) for f in snapshot.files)


def test_git_commit_gives_the_same_files_as_the_checked_out_folder(repo: GitRepo, monkeypatch) -> None:
    repo.commit("add V1, V2 and reports", {
        "sql/V1__customers.sql": V1,
        "sql/V2__orders.sql": BOM_CRLF,
        "sql/V2__orders.sql.conf": "executeInTransaction=false\n",
        "sql/reports/R__Customer names.sql": "create view customer_names as select name from customers;",
        "sql/README.md": "not a script",
        "docs/V9__elsewhere.sql": "select 9;",
    })
    monkeypatch.chdir(repo.path)
    from_git = GitSource(str(repo.path), "main", ("sql",)).snapshot()
    from_folder = FolderSource(["sql"]).snapshot()
    assert files_of(from_git) == files_of(from_folder)
    assert [f[0] for f in files_of(from_git)] == ["V1__customers.sql", "V2__orders.sql", "V2__orders.sql.conf", "reports/R__Customer names.sql"]
    assert [m.checksum for m in discover(from_git.files).migrations] == [m.checksum for m in discover(from_folder.files).migrations]


def test_hidden_folders_are_skipped_as_flyway_skips_them(repo: GitRepo, monkeypatch) -> None:
    repo.commit("scripts and a hidden archive", {
        "sql/V1__customers.sql": V1,
        "sql/.archive/V2__old_draft.sql": "this is not SQL;",
        "sql/reports/.drafts/V3__draft.sql": "nor this;",
        "sql/reports/V4__report.sql": "select 4;",
    })
    monkeypatch.chdir(repo.path)
    expected = ["V1__customers.sql", "reports/V4__report.sql"]
    assert [f.relpath for f in FolderSource(["sql"]).snapshot().files] == expected
    assert [f.relpath for f in GitSource(str(repo.path), "main", ("sql",)).snapshot().files] == expected
    assert GitSource(str(repo.path), "main", ("sql",)).script_names("main") == expected


def test_reads_a_past_commit_without_touching_the_work_tree(repo: GitRepo) -> None:
    first = repo.commit("add V1", {"sql/V1__customers.sql": V1})
    repo.commit("add V2", {"sql/V2__orders.sql": "create table orders (id int);"})
    repo.write({"sql/V3__uncommitted.sql": "select 3;"})
    snapshot = GitSource(str(repo.path), first, ("sql",)).snapshot()
    assert [f.relpath for f in snapshot.files] == ["V1__customers.sql"]
    assert snapshot.commit.id == first and snapshot.commit.message == "add V1"
    assert repo.git("status", "--porcelain") == "?? sql/V3__uncommitted.sql"
    assert repo.git("rev-parse", "--abbrev-ref", "HEAD") == "main"


def test_commit_metadata_names_author_message_and_time(repo: GitRepo) -> None:
    commit = repo.commit("Add the orders table\n\nFor the finance team.", {"sql/V1__a.sql": "select 1;"}, author="Grace Hopper <grace@example.com>")
    info = GitSource(str(repo.path), "main").commit_info("main")
    assert info.id == commit
    assert info.author == "Grace Hopper <grace@example.com>"
    assert info.message == "Add the orders table\n\nFor the finance team."
    assert info.time[:4].isdigit() and info.time[10] == "T"


def test_changes_follow_the_first_parent_line_and_list_only_scripts(repo: GitRepo) -> None:
    base = repo.commit("add V1", {"sql/V1__a.sql": "select 1;"})
    readme = repo.commit("docs", {"README.md": "hello", "sql/notes.txt": "not a script"})
    repo.git("checkout", "--quiet", "-b", "feature")
    feature = repo.commit("add V2 on a branch", {"sql/V2__b.sql": "select 2;"})
    repo.git("checkout", "--quiet", "main")
    repo.commit("docs again", {"README.md": "hello again"})
    repo.git("merge", "--quiet", "--no-ff", "feature", "-m", "merge feature")
    merge = repo.head()
    changes = GitSource(str(repo.path), "main").changes(base)
    assert [(c.commit.message, c.paths) for c in changes] == [
        ("merge feature", ("sql/V2__b.sql",)),
        ("docs again", ()),
        ("docs", ()),
    ]
    assert changes[0].commit.id == merge and feature not in [c.commit.id for c in changes] and readme == changes[2].commit.id


def test_a_subfolder_of_the_work_tree_reads_the_repository_s_paths(repo: GitRepo) -> None:
    base = repo.commit("add V1", {"wh/sql/V1__a.sql": "select 1;"})
    repo.commit("add V2", {"wh/sql/V2__b.sql": "select 2;"})
    repo.git("config", "diff.relative", "true")  # a user's setting: log paths relative to the folder git runs in
    source = GitSource(str(repo.path / "wh"), "main", ("wh/sql",))
    assert [f.relpath for f in source.snapshot().files] == ["V1__a.sql", "V2__b.sql"]
    assert [(c.commit.message, c.paths) for c in source.changes(base)] == [("add V2", ("wh/sql/V2__b.sql",))]


def test_locations_are_paths_inside_the_repository(repo: GitRepo) -> None:
    repo.commit("nested", {"db/migrations/V1__a.sql": "select 1;", "db/V0__outside.sql": "select 0;"})
    snapshot = GitSource(str(repo.path), "main", ("./db/migrations/",)).snapshot()
    assert [(f.relpath, f.display_path) for f in snapshot.files] == [("V1__a.sql", "./db/migrations/V1__a.sql")]
    absolute = GitSource(str(repo.path), "main", (str(repo.path / "db" / "migrations"),)).snapshot()
    assert [f.relpath for f in absolute.files] == ["V1__a.sql"]
    assert repo_location("filesystem:sql/") == "sql" and repo_location(".") == ""
    with pytest.raises(ConfigError, match=r"\.\./sql: a location inside a repository must be a relative path"):
        repo_location("../sql")


def test_missing_location_and_unknown_branch_say_what_to_fix(repo: GitRepo, tmp_path: Path) -> None:
    commit = repo.commit("only docs", {"README.md": "hello"})
    with pytest.raises(ConfigError, match=rf"sql: migrations location not found in commit {commit[:12]}.*DBOPS_LOCATIONS"):
        GitSource(str(repo.path), "main", ("sql",)).snapshot()
    with pytest.raises(SourceError, match="no branch, tag or commit 'release'.*DBOPS_GIT_BRANCH"):
        GitSource(str(repo.path), "release").head()
    with pytest.raises(SourceError, match="git repository not found.*DBOPS_GIT_REPOSITORY"):
        GitSource(str(tmp_path / "nowhere"), "main").head()
    (tmp_path / "plain").mkdir()
    with pytest.raises(SourceError, match="plain: not a git repository; set DBOPS_GIT_REPOSITORY"):
        GitSource(str(tmp_path / "plain"), "main").head()


def test_a_remote_repository_is_mirrored_under_dbops_home_and_fetched(repo: GitRepo, tmp_path: Path) -> None:
    first = repo.commit("add V1", {"sql/V1__a.sql": "select 1;"})
    url = repo.path.as_uri()
    home = tmp_path / "home"
    source = GitSource(url, "main", ("sql",), home=home)
    assert source.head() == first
    assert Path(source.git_dir) == mirror_dir(url, home) and (mirror_dir(url, home) / "HEAD").exists()
    assert source.label == f"git:{url}"
    second = repo.commit("add V2", {"sql/V2__b.sql": "select 2;"})
    later = GitSource(url, "main", ("sql",), home=home)
    assert later.head() == first
    later.refresh()
    assert later.head() == second
    third = repo.commit("add V3", {"sql/V3__c.sql": "select 3;"})
    pinned = GitSource(url, third, ("sql",), home=home).snapshot()
    assert [f.relpath for f in pinned.files] == ["V1__a.sql", "V2__b.sql", "V3__c.sql"]


def test_source_for_tags_reads_exactly_the_tagged_commit(repo: GitRepo, monkeypatch) -> None:
    first = repo.commit("add V1", {"sql/V1__a.sql": "select 1;"})
    repo.commit("add V2", {"sql/V2__b.sql": "select 2;"})
    tags = {TAG_REPOSITORY: f"git:{repo.path}", TAG_COMMIT: first}
    assert [f.relpath for f in source_for_tags(tags, ["sql"]).snapshot().files] == ["V1__a.sql"]
    assert isinstance(source_for_tags({}, ["sql"]), FolderSource)
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    codecommit = source_for_tags({TAG_REPOSITORY: "codecommit:warehouse", TAG_COMMIT: "a" * 40, TAG_INCLUDED: "b" * 40}, ["sql"])
    assert isinstance(codecommit, CodeCommitSource)
    assert (codecommit.repository, codecommit.ref, codecommit.region, codecommit.included) == ("warehouse", "a" * 40, "eu-central-1", ("b" * 40,))
    earlier = source_for_tags({TAG_REPOSITORY: "codecommit:warehouse", TAG_COMMIT: "a" * 40, "dbops/skipped_commits": "c" * 40}, ["sql"])
    assert earlier.included == ("c" * 40,)  # a run tagged with the tag's earlier name
    with pytest.raises(ConfigError, match="needs both the repository and the commit id"):
        source_for_tags({TAG_REPOSITORY: f"git:{repo.path}"}, ["sql"])
    with pytest.raises(ConfigError, match="unknown repository kind 'svn'"):
        source_for_tags({TAG_REPOSITORY: "svn:x", TAG_COMMIT: first}, ["sql"])


def test_folded_commits_are_attributed_and_recorded_in_the_audit_table(repo: GitRepo, pg_url: str) -> None:
    repo.commit("add V1", {"sql/V1__customers.sql": "create table customers (id int);"})
    v2 = repo.commit("add V2", {"sql/V2__orders.sql": "create table orders (id int);"}, author="Grace Hopper <grace@example.com>")
    v3 = repo.commit("add V3", {"sql/V3__items.sql": "create table items (id int);"})
    tags = {TAG_REPOSITORY: f"git:{repo.path}", TAG_COMMIT: v3, TAG_INCLUDED: v2}
    snapshot = source_for_tags(tags, ["sql"]).snapshot()
    assert {p: c.id for p, c in snapshot.file_commits.items()} == {"sql/V2__orders.sql": v2, "sql/V3__items.sql": v3}
    engine = Engine(open_target(pg_url), Settings(locations=["sql"]), snapshot=snapshot)
    applied = [r.script for r in engine.migrate(run=RunInfo(source="sensor", commit=commit_from_tags({**tags, "dbops/author": "x", "dbops/message": "add V3"})))]
    assert applied == ["V1__customers.sql", "V2__orders.sql", "V3__items.sql"]
    with psycopg.connect(pg_url) as conn:
        audit = conn.execute("select script, commit_id, commit_author, commit_message, source from dbops_audit order by script").fetchall()
    assert audit == [
        ("V1__customers.sql", v3, "x", "add V3", "sensor"),
        ("V2__orders.sql", v2, "Grace Hopper <grace@example.com>", "add V2", "sensor"),
        ("V3__items.sql", v3, "Ada Lovelace <ada@example.com>", "add V3", "sensor"),
    ]


def test_a_remote_urls_password_never_reaches_tags_or_errors(tmp_path: Path) -> None:
    source = GitSource("https://deploy:s3cret-token@127.0.0.1:9/warehouse.git", "main", home=tmp_path)
    assert source.label == "git:https://deploy:***@127.0.0.1:9/warehouse.git"
    with pytest.raises(SourceError) as caught:
        source.head()
    assert "git clone https://deploy:***@127.0.0.1:9/warehouse.git" in str(caught.value)
    assert "s3cret-token" not in str(caught.value)
    with pytest.raises(SourceError, match="the URL is redacted so it cannot be cloned here"):
        GitSource(source.label.removeprefix("git:"), "main", home=tmp_path).head()


def test_a_decoded_script_is_held_as_its_text_alone_and_still_gives_its_exact_bytes() -> None:
    """A 50 MB script must not be held as bytes plus text: once decoded in an encoding that round-trips, the file
    keeps the text, and every catalog read from it shares that one text."""
    data = "create table café (id int);\n".encode()
    file = ScriptFile("V1__café.sql", data, "sql")
    text = file.text("utf-8")
    assert text == "create table café (id int);\n"
    assert file.text("utf-8") is text
    assert file.data == data
    assert discover([file]).migrations[0].sql is text
    utf16 = "select 1;\n".encode("utf-16-be")
    kept = ScriptFile("V2__wide.sql", b"\xfe\xff" + utf16)
    assert kept.text("utf-16") == "select 1;\n"
    assert kept.data == b"\xfe\xff" + utf16  # utf-16 would encode back in this machine's byte order: the bytes stay
