"""`dbops review` against a git base and a target: integrity, lint, plan, the scratch build, output and exit codes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from dbops.cli import main
from tests.gitrepo import GitRepo
from tests.pg import PgServer

TABLE = "create table {0} (id int) diststyle all sortkey (id);\n"
PORTABLE = "create table {0} (id int);\n"  # runs on the embedded PostgreSQL as well


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GitRepo:
    """A repository whose main has V1..V14, the work tree the current directory."""
    repo = GitRepo(tmp_path / "repo")
    repo.commit("base", {f"sql/V{n}__t{n}.sql": PORTABLE.format(f"t{n}") for n in range(1, 15)})
    monkeypatch.chdir(repo.path)
    monkeypatch.setenv("DBOPS_HOME", str(tmp_path / "home"))
    return repo


def review(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = main(["review", "--json", *args])
    out = capsys.readouterr().out
    return code, json.loads(out)


def kinds(document: dict) -> list[tuple[str, str, list[str]]]:
    return [(f["kind"], f["severity"], f["files"]) for f in document["integrity"]]


def scratch_databases(server: PgServer) -> list[str]:
    with server.admin() as conn:
        return [r[0] for r in conn.execute("select datname from pg_database where datname like 'dbops_review_%'")]


def test_the_second_branch_adding_v15_is_blocked_after_the_first_merged(
        repo: GitRepo, pg_server: PgServer, capsys: pytest.CaptureFixture[str]) -> None:
    repo.git("checkout", "-q", "-b", "first")
    repo.commit("first adds V15", {"sql/V15__orders.sql": PORTABLE.format("orders")})
    repo.git("checkout", "-q", "main")
    repo.git("checkout", "-q", "-b", "second")
    repo.commit("second adds V15", {"sql/V15__customers.sql": PORTABLE.format("customers")})

    repo.git("checkout", "-q", "first")
    code, first = review(capsys, "--base", "main", "--scratch-url", pg_server.url())
    assert code == 0 and first["may_merge"] is True
    assert first["integrity"] == [] and [p["script"] for p in first["plan"]["scripts"]] == ["sql/V15__orders.sql"]
    built = first["scratch"]
    assert built["ok"] and [m["script"] for m in built["migrations"]] == [f"sql/V{n}__t{n}.sql" for n in range(1, 14 + 1)] + ["sql/V15__orders.sql"]
    assert all(isinstance(m["execution_time_ms"], int) for m in built["migrations"])
    assert built["database"].startswith("dbops_review_") and built["database"] not in scratch_databases(pg_server)

    repo.git("checkout", "-q", "main")
    repo.git("merge", "-q", "--no-ff", "-m", "merge first", "first")
    repo.git("checkout", "-q", "second")
    code, second = review(capsys, "--base", "main", "--no-scratch")
    assert code == 1 and second["may_merge"] is False
    assert kinds(second) == [("version collision", "error", ["sql/V15__customers.sql", "sql/V15__orders.sql"])]
    assert "sql/V15__customers.sql" in second["markdown"] and "sql/V15__orders.sql" in second["markdown"]
    assert "❌" in second["markdown"] and "blocked" in second["markdown"]


def test_edits_renames_and_deletions_of_base_scripts_block(repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    repo.commit("a repeatable", {"sql/R__view.sql": "create or replace view v as select 1 as one;\n"})
    repo.git("checkout", "-q", "-b", "work")
    repo.write({
        "sql/V1__t1.sql": "create table t1 (id int, name varchar(10));\n",
        "sql/V2__t2.sql": None, "sql/V2__second_table.sql": PORTABLE.format("t2"),
        "sql/V3__t3.sql": None,
        "sql/V4__t4.sql": None, "sql/old/V4__t4.sql": PORTABLE.format("t4"),
        "sql/R__view.sql": "create or replace view v as select 2 as two;\n",
    })
    code, document = review(capsys, "--base", "main", "--no-scratch")
    assert code == 1
    found = {f["kind"]: f for f in document["integrity"]}
    assert sorted(found) == ["deleted", "edited", "moved", "renamed"]
    assert found["edited"]["files"] == ["sql/V1__t1.sql"] and "new migration" in found["edited"]["fix"]
    assert found["renamed"]["files"] == ["sql/V2__t2.sql", "sql/V2__second_table.sql"]
    assert "rename it back to V2__t2.sql" in found["renamed"]["fix"]
    assert found["deleted"]["files"] == ["sql/V3__t3.sql"] and "restore sql/V3__t3.sql" in found["deleted"]["fix"]
    assert found["moved"]["severity"] == "warning"


@pytest.mark.parametrize("folder, locations", [
    ("wh", []),                          # the default location sql, under the subfolder
    ("wh/sql", ["--locations", "."]),
    ("wh/sql", ["--locations", "ABSOLUTE"]),
])
def test_an_edit_of_a_base_script_blocks_when_reviewed_from_a_subfolder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], folder: str, locations: list[str]) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.commit("base", {"wh/sql/V1__one.sql": PORTABLE.format("one"), "wh/sql/V2__two.sql": PORTABLE.format("two")})
    repo.git("checkout", "-q", "-b", "feat")
    repo.commit("edit V1", {"wh/sql/V1__one.sql": "create table one (id bigint);\n"})
    monkeypatch.setenv("DBOPS_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(repo.path / folder)
    locations = [str(repo.path / "wh" / "sql") if arg == "ABSOLUTE" else arg for arg in locations]
    code = main(["review", "--no-scratch", "--base", "main", *locations])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "Review: blocked" in out and "V1__one.sql is in main and this branch changed it" in out
    assert "Integrity: no problems" not in out and "0 script(s) would run on a database deployed from main" in out


def test_a_version_below_the_base_latest_is_out_of_order_unless_allowed(repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    repo.git("checkout", "-q", "-b", "late")
    repo.commit("adds V16", {"sql/V16__late.sql": PORTABLE.format("late")})
    repo.git("checkout", "-q", "main")
    repo.commit("main moves on", {"sql/V17__t17.sql": PORTABLE.format("t17")})
    repo.git("checkout", "-q", "late")
    code, document = review(capsys, "--base", "main", "--no-scratch")
    assert code == 1
    assert kinds(document) == [("out of order", "error", ["sql/V16__late.sql", "sql/V17__t17.sql"])]
    assert "above 17" in document["integrity"][0]["fix"]
    code, allowed = review(capsys, "--base", "main", "--no-scratch", "--out-of-order")
    assert code == 0 and kinds(allowed) == [("out of order", "warning", ["sql/V16__late.sql", "sql/V17__t17.sql"])]
    assert [p["script"] for p in allowed["plan"]["scripts"]] == ["sql/V16__late.sql"]


def test_uncommitted_changes_in_the_work_tree_are_reviewed(repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    repo.write({"sql/V3__t3.sql": "create table t3 (id bigint);\n"})
    code, document = review(capsys, "--base", "main", "--no-scratch")
    assert code == 1 and kinds(document) == [("edited", "error", ["sql/V3__t3.sql"])]


def test_against_the_target_history(repo: GitRepo, pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", pg_url, "migrate", "--direct"]) == 0
    repo.write({"sql/V1__t1.sql": "create table t1 (id bigint);\n", "sql/V2__t2.sql": None,
                "sql/V3__t3.sql": None, "sql/V3__third.sql": PORTABLE.format("t3"),
                "sql/V10__t10.sql": None, "sql/V20__new.sql": PORTABLE.format("new")})
    capsys.readouterr()
    code, document = review(capsys, "--url", pg_url, "--no-scratch")
    assert code == 1 and document["target"] == pg_url
    found = sorted((f["kind"], f["files"]) for f in document["integrity"])
    assert found == [("deleted", ["V10__t10.sql"]), ("deleted", ["V2__t2.sql"]), ("edited", ["sql/V1__t1.sql"]),
                     ("renamed", ["sql/V3__third.sql", "V3__t3.sql"])]
    assert all(f["against"] == "target" for f in document["integrity"])
    assert [p["script"] for p in document["plan"]["scripts"]] == ["sql/V20__new.sql"]


def test_a_version_below_the_target_latest_is_out_of_order(repo: GitRepo, pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    repo.write({"sql/V2__t2.sql": None})
    assert main(["--url", pg_url, "migrate", "--direct"]) == 0
    repo.write({"sql/V2__t2.sql": PORTABLE.format("t2")})
    capsys.readouterr()
    code, document = review(capsys, "--url", pg_url, "--no-scratch")
    assert code == 1 and kinds(document) == [("out of order", "error", ["sql/V2__t2.sql"])]
    code, document = review(capsys, "--url", pg_url, "--no-scratch", "--out-of-order")
    assert code == 0 and kinds(document) == [("out of order", "warning", ["sql/V2__t2.sql"])]


def test_the_plan_names_autocommit_and_destructive_statements(repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    repo.write({
        "sql/V15__cleanup.sql": (
            "-- dbops:lint-ignore DB004 staging data, reloaded nightly\ntruncate t1;\n"
            "-- dbops:lint-ignore DB004 emptied on purpose\ndelete from t2;\n"
            "delete from t3 where id < 0;\n"
            "-- dbops:lint-ignore DB004 unused since 2023\nalter table t4 drop column id;\n"
            "-- dbops:lint-ignore DB004 replaced by t6\ndrop table t5;\n"),
        "sql/V16__vacuum.sql": "vacuum t1;\n",
    })
    code, document = review(capsys, "--base", "main", "--no-scratch")
    plan = {p["script"]: p for p in document["plan"]["scripts"]}
    assert list(plan) == ["sql/V15__cleanup.sql", "sql/V16__vacuum.sql"]
    assert plan["sql/V15__cleanup.sql"]["mode"] == "transaction"
    assert [d["line"] for d in plan["sql/V15__cleanup.sql"]["destructive"]] == [2, 4, 7, 9]
    assert plan["sql/V16__vacuum.sql"]["mode"] == "autocommit"
    assert plan["sql/V16__vacuum.sql"]["non_transactional"] == [{"line": 1, "statement": "VACUUM"}]
    assert code == 0, document["blocking"]
    assert "drop table t5" in document["markdown"].lower() and "VACUUM" in document["markdown"]


def test_a_failing_scratch_build_blocks_and_names_the_script(repo: GitRepo, pg_server: PgServer,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    repo.write({"sql/V15__broken.sql": "insert into no_such_table values (1);\n"})
    code, document = review(capsys, "--base", "main", "--scratch-url", pg_server.url())
    assert code == 1 and document["scratch"]["ok"] is False
    assert "sql/V15__broken.sql" in document["scratch"]["failure"] and "no_such_table" in document["scratch"]["failure"]
    assert len(document["scratch"]["migrations"]) == 14
    assert any(reason.startswith("scratch build: sql/V15__broken.sql") for reason in document["blocking"])
    assert document["scratch"]["database"] not in scratch_databases(pg_server)


def test_lint_errors_block(repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    repo.write({"sql/V15__typo.sql": "alter table t1 add colum x varchar(10;\n"})
    code, document = review(capsys, "--base", "main", "--no-scratch")
    errors = [(f["code"], f["path"]) for f in document["lint"] if f["severity"] == "error"]
    assert code == 1 and errors == [("DB001", "sql/V15__typo.sql")]
    assert "sql/V15__typo.sql:1" in document["markdown"]


@pytest.mark.parametrize("args, words", [
    (["--base", "no-such-branch"], ["--base no-such-branch", "no branch, tag or commit"]),
    (["--base", "main", "--locations", "{outside}"], ["not inside the git repository"]),
    (["--base", "main", "--url", "mysql://x/y"], ["unsupported URL"]),
])
def test_bad_input_exits_2_without_a_traceback(repo: GitRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              args: list[str], words: list[str]) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "V1__a.sql").write_text(PORTABLE.format("a"))
    assert main(["review", "--no-scratch", *[a.format(outside=outside) for a in args]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert all(word in err for word in words), err


def test_bad_names_exit_2(repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    repo.write({"sql/v15_bad.sql": "select 1;\n"})
    assert main(["review", "--base", "main", "--no-scratch"]) == 2
    assert "sql/v15_bad.sql" in capsys.readouterr().err


def test_outside_a_git_repository_base_is_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "V1__a.sql").write_text(PORTABLE.format("a"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DBOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert main(["review", "--base", "main", "--no-scratch"]) == 2
    assert "is not in a git repository" in capsys.readouterr().err


def test_markdown_and_terminal_output(repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    repo.write({"sql/V15__orders.sql": TABLE.format("orders")})
    assert main(["review", "--base", "main", "--no-scratch", "--markdown"]) == 0
    comment = capsys.readouterr().out
    assert comment.startswith("## ✅ dbops review: may merge")
    assert "### Integrity" in comment and "### Plan" in comment and "| `sql/V15__orders.sql` | transaction |" in comment
    assert main(["review", "--base", "main", "--no-scratch"]) == 0
    text = capsys.readouterr().out
    assert "Integrity: no problems." in text and "Review: may merge." in text and "sql/V15__orders.sql" in text


def test_without_a_common_ancestor_every_difference_counts_and_a_warning_says_why(
        repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    repo.git("checkout", "-q", "--orphan", "unrelated")
    repo.git("rm", "-q", "-r", "--cached", "sql")
    repo.commit("unrelated history", {"sql/V1__t1.sql": PORTABLE.format("t1")})
    for n in range(2, 15):
        repo.write({f"sql/V{n}__t{n}.sql": None})
    code = main(["review", "--json", "--base", "main", "--no-scratch"])
    out, err = capsys.readouterr()
    document = json.loads(out)
    assert "no common ancestor" in err and "git fetch --unshallow" in err
    assert code == 1 and {f["kind"] for f in document["integrity"]} == {"deleted"} and len(document["integrity"]) == 13


def test_the_comment_stays_under_codecommit_s_limit(repo: GitRepo, pg_server: PgServer, capsys: pytest.CaptureFixture[str]) -> None:
    repo.write({f"sql/V{n}__t{n}.sql": f"create table t{n} (id int, name varchar);\n" for n in range(1, 301)})
    code, document = review(capsys, "--base", "main", "--scratch-url", pg_server.url())
    assert code == 1 and len(document["lint"]) == 600 and len(document["scratch"]["migrations"]) == 300
    assert len(document["markdown"]) <= 10_000
    assert "… and" in document["markdown"] and "Slowest first" in document["markdown"]


def test_publish_review_reads_the_json_report(repo: GitRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dbops.scripts.pull_requests import Review

    repo.write({"sql/V3__t3.sql": "create table t3 (id bigint);\n"})
    code, document = review(capsys, "--base", "main", "--no-scratch")
    report = tmp_path / "review.json"
    report.write_text(json.dumps(document))
    loaded = Review.load(report)
    assert code == 1 and loaded.may_merge is False and loaded.markdown == document["markdown"]
    assert "sql/V3__t3.sql" in loaded.markdown


def test_a_failing_migration_check_fails_the_scratch_build(repo: GitRepo, pg_server: PgServer,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    repo.write({"sql/V15__orders.sql": "create table orders (id int);\ninsert into orders values (1), (null);\n",
                "sql/V15__orders.sql.check": "-- every order has an id\nselect * from orders where id is null;\n"})
    code, document = review(capsys, "--base", "main", "--scratch-url", pg_server.url())
    assert code == 1 and document["scratch"]["ok"] is False
    assert "V15__orders.sql.check" in document["scratch"]["failure"]
    assert [m["script"] for m in document["scratch"]["migrations"]][-1] == "sql/V14__t14.sql"
