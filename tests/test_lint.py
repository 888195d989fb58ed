"""`dbops lint`: each rule reported once with file:line, clean scripts silent, ignores, exit codes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from dbops.cli import main
from dbops.lint.checks import RULES, Finding, lint_files
from dbops.scripts.sources import FolderSource, ScriptFile

DATA = Path(__file__).parent / "data" / "lint"

# script in tests/data/lint/bad → (the one rule it breaks, the line it breaks it on)
EXPECTED = {
    "V1__parse_error.sql": ("DB001", 3),
    "V2__mixed_vacuum.sql": ("DB002", 2),
    "V3__commit_inside.sql": ("DB003", 2),
    "V4__drop_table.sql": ("DB004", 2),
    "V5__change_type.sql": ("DB005", 1),
    "V6__grant_public.sql": ("DB006", 2),
    "R__orders_view.sql": ("DB007", 1),
    "V7__drop_view_cascade.sql": ("DB008", 1),
    "V8__varchar_without_length.sql": ("DB009", 3),
    "V9__select_star_view.sql": ("DB010", 1),
    "V10__postgres_index.sql": ("DB011", 1),
    "V11__no_distribution.sql": ("DB012", 1),
    "V12__ignore_without_reason.sql": ("DB013", 1),
}


def lint_folder(folder: Path, placeholders: dict[str, str] | None = None) -> list[Finding]:
    return lint_files(FolderSource([str(folder)]).snapshot().files, placeholders)[1]


def lint_texts(files: dict[str, str]) -> list[Finding]:
    return lint_files([ScriptFile(name, text.encode()) for name, text in files.items()])[1]


def codes(findings: list[Finding]) -> list[tuple[str, int]]:
    return [(f.code, f.line) for f in findings]


def test_each_rule_is_reported_once_with_file_and_line() -> None:
    findings = lint_folder(DATA / "bad")
    reported = {(Path(f.path).name, f.code, f.line) for f in findings}
    assert reported == {(name, code, line) for name, (code, line) in EXPECTED.items()}
    assert len(findings) == len(EXPECTED) == len(RULES)
    assert sorted(f.code for f in findings) == sorted(RULES)


def test_a_nested_block_comment_is_one_comment_to_lint() -> None:
    findings = lint_texts({"V1__a.sql": "create table a (id int);\n/* outer /* inner */ commit; */\ncreate table b (id int);\n"})
    assert [f for f in findings if f.severity == "error"] == []


def test_findings_carry_severity_message_and_fix() -> None:
    by_code = {f.code: f for f in lint_folder(DATA / "bad")}
    for code, finding in by_code.items():
        assert finding.severity == RULES[code].severity
        assert finding.message and finding.fix
    drop = by_code["DB004"]
    assert str(drop) == f"{drop.path}:2: DB004 error: {drop.message} (fix: {drop.fix})"
    assert "sales.orders_2019" in drop.message
    assert drop.as_dict() == {
        "code": "DB004", "severity": "error", "path": drop.path, "line": 2, "message": drop.message, "fix": drop.fix,
    }
    assert "body" in by_code["DB009"].message
    assert "Expecting" in by_code["DB001"].message or "Unexpected" in by_code["DB001"].message
    assert "line 1" in by_code["DB002"].message


def typo_lines(folder: Path) -> set[tuple[str, int]]:
    """(script, line) of every line marked `-- typo` in a folder's scripts."""
    return {(p.name, n) for p in folder.glob("*.sql") for n, line in enumerate(p.read_text().splitlines(), 1)
            if "-- typo" in line}


def test_the_issues_three_typos_are_db001_findings_naming_file_and_line(capsys: pytest.CaptureFixture[str]) -> None:
    folder = DATA / "typos"
    assert main(["--locations", str(folder), "lint"]) == 1
    out = capsys.readouterr().out
    assert f"{folder}/V1__add_colum.sql:3: DB001 error: cannot parse as Redshift SQL: '(' is never closed" in out
    assert f"{folder}/V2__double_comma.sql:1: DB001 error: cannot parse as Redshift SQL: empty item in a list near ', ,'" in out
    assert f"{folder}/V3__unclosed_parenthesis.sql:5: DB001 error: cannot parse as Redshift SQL: Expecting )" in out


def test_every_typo_in_the_typo_corpus_is_one_db001_on_its_line() -> None:
    findings = [f for f in lint_folder(DATA / "typos") if f.code == "DB001"]
    reported = [(Path(f.path).name, f.line) for f in findings]
    assert sorted(reported) == sorted(typo_lines(DATA / "typos"))


def test_the_valid_redshift_corpus_has_no_db001() -> None:
    folder = DATA / "redshift_valid"
    assert len(list(folder.glob("*.sql"))) >= 10
    assert [str(f) for f in lint_folder(folder) if f.code == "DB001"] == []


def test_the_example_warehouse_has_no_db001() -> None:
    findings = lint_folder(Path(__file__).parent.parent / "sql")
    assert [str(f) for f in findings if f.code == "DB001"] == []


@pytest.mark.parametrize(
    "sql, message",
    [
        ("alter table t add colum x varchar(10);", "sqlglot stops at 'colum'"),
        ("grant usage on datashare s to acount '1';", "not GRANT USAGE ON DATASHARE as Redshift writes it"),
        ("alter datashare s add tabel t;", "not ALTER DATASHARE as Redshift writes it (syntax: "
                                           "https://docs.aws.amazon.com/redshift/latest/dg/r_ALTER_DATASHARE.html)"),
        ("vacum t;", "'vacum' does not start a statement"),
        ("create tabel t (id int);", "sqlglot stops at 'tabel'"),
        ("set search_path to a,, b;", "empty item in a list"),
    ],
)
def test_a_typo_sqlglot_would_keep_as_a_command_is_db001(sql: str, message: str) -> None:
    findings = lint_texts({"V1__x.sql": sql + "\n"})
    assert [f.code for f in findings if f.code == "DB001"] == ["DB001"]
    assert message in next(f.message for f in findings if f.code == "DB001")


def test_a_typo_inside_a_statement_sqlglot_gives_up_on_names_its_line() -> None:
    findings = lint_texts({"V1__x.sql": "-- widen\nalter table s.t\n    add column c int,\n    add colum d int;\n"})
    assert codes(findings) == [("DB001", 4)]
    assert "sqlglot stops at 'colum'" in findings[0].message


def test_valid_redshift_and_ignored_findings_produce_nothing() -> None:
    assert lint_folder(DATA / "clean") == []


def test_the_example_warehouse_has_no_errors() -> None:
    findings = lint_folder(Path(__file__).parent.parent / "sql")
    assert [str(f) for f in findings if f.severity == "error"] == []


@pytest.mark.parametrize(
    "ignore, silenced",
    [
        ("drop table s.t; -- dbops:lint-ignore DB004 rebuilt by V9", True),
        ("-- dbops:lint-ignore DB004 rebuilt by V9\ndrop table s.t;", True),
        ("-- dbops:lint-ignore DB004 rebuilt by V9\n-- and a note\ndrop table s.t;", True),
        ("-- dbops:lint-ignore db004, DB008 rebuilt by V9\ndrop table s.t;", True),
        ("-- dbops:lint-ignore DB004 rebuilt by V9\n\ndrop table s.t;", False),
        ("-- dbops:lint-ignore DB008 rebuilt by V9\ndrop table s.t;", False),
    ],
)
def test_an_ignore_silences_its_code_on_its_statement_only(ignore: str, silenced: bool) -> None:
    findings = lint_texts({"V1__drop.sql": ignore + "\ndrop table s.u;\n"})
    drops = [f for f in findings if f.code == "DB004"]
    assert [f.message for f in drops] == (["DROP TABLE s.u deletes its data"] if silenced else
                                          ["DROP TABLE s.t deletes its data", "DROP TABLE s.u deletes its data"])


@pytest.mark.parametrize(
    "comment, problem",
    [
        ("-- dbops:lint-ignore DB004", "gives no reason for ignoring DB004"),
        ("-- dbops:lint-ignore DB999 old habit", "names unknown code(s) DB999"),
        ("-- dbops:lint-ignore because I said so", "names no rule code"),
    ],
)
def test_a_bad_ignore_is_a_finding_and_silences_nothing(comment: str, problem: str) -> None:
    findings = lint_texts({"V1__drop.sql": f"{comment}\ndrop table s.t;\n"})
    assert codes(findings) == [("DB013", 1), ("DB004", 2)]
    assert problem in findings[0].message


def test_placeholders_need_no_value_but_use_one_when_given(tmp_path: Path) -> None:
    (tmp_path / "V1__grant.sql").write_text("grant select on all tables in schema s to group ${readers};\n")
    assert lint_folder(tmp_path) == []
    findings = lint_folder(tmp_path, {"readers": "public"})
    assert codes(findings) == [("DB006", 1)]


def test_non_transactional_statements_in_callbacks_and_forced_transactions() -> None:
    findings = lint_files([
        ScriptFile("afterMigrate.sql", b"vacuum s.t;\n"),
        ScriptFile("V1__vacuum.sql", b"vacuum s.t;\n"),
        ScriptFile("V1__vacuum.sql.conf", b"executeInTransaction=true\n"),
        ScriptFile("V2__vacuum_and_analyze.sql", b"vacuum s.t;\nanalyze s.t;\n"),
        ScriptFile("V3__mixed_allowed.sql", b"update s.t set a = 1 where a = 0;\nvacuum s.t;\n"),
        ScriptFile("V3__mixed_allowed.sql.conf", b"mixed=true\n"),
        ScriptFile("V4__autocommit.sql", b"update s.t set a = 1 where a = 0;\nvacuum s.t;\n"),
        ScriptFile("V4__autocommit.sql.conf", b"executeInTransaction=false\n"),
    ])[1]
    assert [(f.path, f.code) for f in findings] == [("V1__vacuum.sql", "DB002"), ("afterMigrate.sql", "DB002")]
    assert "executeInTransaction=true" in findings[0].message
    assert "callbacks run in one" in findings[1].message


def test_type_changes_are_judged_against_earlier_scripts() -> None:
    findings = lint_texts({
        "V1__t.sql": "create table s.t (code integer, name varchar(20)) diststyle all sortkey (code);\n",
        "V2__widen.sql": "alter table s.t alter column name type varchar(40);\n",
        "V3__to_text.sql": "alter table s.t alter column code type varchar(10);\n",
    })
    assert [(f.path, f.code) for f in findings] == [("V3__to_text.sql", "DB005")]
    assert "s.t.code is INT" in findings[0].message


def test_a_varchar_change_must_be_wider_as_the_readme_says() -> None:
    findings = lint_texts({
        "V1__t.sql": "create table s.t (name varchar(40), note varchar(max)) diststyle all sortkey (name);\n",
        "V2__narrow.sql": "alter table s.t alter column name type varchar(20);\n",
        "V3__same.sql": "alter table s.t alter column name type varchar(20);\n",
        "V4__wider.sql": "alter table s.t alter column name type varchar(100);\n",
        "V5__from_max.sql": "alter table s.t alter column note type varchar(1000);\n",
    })
    assert [(f.path, f.code) for f in findings] == [("V2__narrow.sql", "DB005"), ("V5__from_max.sql", "DB005")]
    assert "s.t.name VARCHAR(40) → VARCHAR(20): narrower" in findings[0].message


def test_undo_scripts_may_drop_and_repeatables_must_rerun() -> None:
    findings = lint_texts({
        "U1__t.sql": "drop table s.t;\n",
        "R__setup.sql": "create schema s;\ncreate or replace view s.v as select 1 as one;\ncreate group readers;\n",
        "beforeMigrate.sql": "create table s.log (id integer) diststyle all sortkey (id);\n",
    })
    assert [(f.path, f.code, f.line) for f in findings] == [
        ("R__setup.sql", "DB007", 1), ("R__setup.sql", "DB007", 3), ("beforeMigrate.sql", "DB007", 1),
    ]
    assert "callback" in findings[2].message


@pytest.mark.parametrize(
    "sql, code",
    [
        ("alter table s.t drop column c;", "DB004"),
        ("alter table s.t add column d integer, drop e;", "DB004"),
        ("truncate table s.t;", "DB004"),
        ("delete from s.t;", "DB004"),
        ("drop schema s cascade;", "DB004"),
        ("alter default privileges in schema s grant select on tables to public;", "DB006"),
        ("create sequence s.ids;", "DB011"),
        ("create table s.t (id serial, doc jsonb) diststyle all sortkey (id);", "DB011"),
        ("rollback;", "DB003"),
    ],
)
def test_more_statements_each_rule_catches(sql: str, code: str) -> None:
    assert code in {f.code for f in lint_texts({"V1__x.sql": sql + "\n"})}


@pytest.mark.parametrize(
    "sql",
    [
        "alter table s.t drop constraint t_pk;",
        "alter table s.t alter column c drop default;",
        "delete from s.t where id < 10;",
        "drop schema s;",
        "grant select on public.t to group readers;",
        "create function s.f(a varchar) returns varchar stable as $$ select $1 $$ language sql;",
    ],
)
def test_statements_that_look_alike_but_are_fine(sql: str) -> None:
    assert lint_texts({"V1__x.sql": sql + "\n"}) == []


def test_cli_exits_1_on_errors_and_names_file_and_line(capsys: pytest.CaptureFixture[str]) -> None:
    folder = DATA / "bad"
    assert main(["--locations", str(folder), "lint"]) == 1
    out = capsys.readouterr().out
    for name, (code, line) in EXPECTED.items():
        assert f"{folder}/{name}:{line}: {code} {RULES[code].severity}: " in out
    assert "13 script(s): 7 error(s), 5 warning(s), 1 info." in out


def test_cli_exits_0_on_warnings_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "V1__view.sql").write_text("create view s.v as select * from s.t;\n")
    assert main(["--locations", str(tmp_path), "lint"]) == 0
    assert f"{tmp_path}/V1__view.sql:1: DB010 warning" in capsys.readouterr().out


def test_cli_json_is_one_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--locations", str(DATA / "bad"), "--json", "lint"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert (document["errors"], document["warnings"], document["info"], document["scripts"]) == (7, 5, 1, 13)
    first = document["findings"][0]
    assert set(first) == {"code", "severity", "path", "line", "message", "fix"}
    assert (first["code"], first["line"], Path(first["path"]).name) == ("DB001", 3, "V1__parse_error.sql")


def test_cli_lints_the_example_without_a_database_or_placeholder_values(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DBOPS_URL", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.chdir(Path(__file__).parent.parent)
    assert main(["lint"]) == 0
    assert "0 error(s)" in capsys.readouterr().out
