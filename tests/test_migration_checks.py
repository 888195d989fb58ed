"""Migration checks (`<script>.sql.check`): where they live, how they are read, and what a failing one does to a run."""
from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from dbops.cli import main
from dbops.config import Settings
from dbops.engine.applier import BATCH_BYTES
from dbops.engine.engine import Engine
from dbops.engine.recheck import applied_checks, recheck
from dbops.engine.verify import SHOWN_ROWS, ChecksRejected
from dbops.errors import ConfigError, MigrationFailed, ValidationFailed
from dbops.scripts.codecommit import CodeCommitSource
from dbops.scripts.git import GitSource
from dbops.scripts.migrations import PlaceholderContext, checksum, discover
from dbops.scripts.sources import FolderSource, ScriptFile
from dbops.targets import open_target
from tests.codecommit_stub import StubbedCodeCommit
from tests.gitrepo import GitRepo
from tests.rig import RigDatabase

USERS = "create table users (id int primary key, name text);\ninsert into users values (1, 'ada'), (2, null), (3, null);\n"
NAMED = "-- every user has a name\nselect id, name from users where name is null;\n"


def files(mapping: dict[str, str]) -> list[ScriptFile]:
    return [ScriptFile(relpath=name, data=text.encode(), location="sql") for name, text in mapping.items()]


def engine_for(db: RigDatabase, folder: Path, **settings) -> Engine:
    return Engine(open_target(db.url), Settings(locations=[str(folder)], **settings))


def rows(db: RigDatabase, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(db.pg_url) as conn:
        return conn.execute(sql, params).fetchall()


def history(db: RigDatabase) -> list[tuple]:
    return rows(db, "select script, success from flyway_schema_history where type <> 'SCHEMA' order by installed_rank")


def audit(db: RigDatabase) -> list[tuple]:
    return rows(db, "select script, status, error from dbops_audit order by started_at, finished_at")


def table_exists(db: RigDatabase, name: str) -> bool:
    return bool(rows(db, "select 1 from information_schema.tables where table_name = %s", (name,)))


# Where checks live, and how they are read


def test_a_check_file_travels_with_its_script_and_is_no_script_itself() -> None:
    catalog = discover(files({
        "V1__users.sql": USERS,
        "V1__users.sql.check": NAMED + "\n-- dbops:always\nselect id from users where id <= 0\n",
        "V2__later.sql": "create table later (id int);",
    }))
    assert [m.script for m in catalog.migrations] == ["V1__users.sql", "V2__later.sql"]
    first, second = catalog.versioned[0].checks
    assert (first.where, first.name, first.title, first.always) == ("sql/V1__users.sql.check:2", "every_user_has_a_name", "every user has a name", False)
    assert (second.where, second.name, second.always) == ("sql/V1__users.sql.check:5", "check_2", True)
    assert catalog.versioned[1].checks == []
    assert catalog.versioned[0].checksum == checksum(USERS)  # the checks are not part of the script's checksum


def test_flyway_naming_rules_still_hold_beside_check_files(tmp_path: Path) -> None:
    sql = tmp_path / "sql"
    (sql / ".drafts").mkdir(parents=True)
    (sql / "V1__users.sql").write_text(USERS)
    (sql / "V1__users.sql.check").write_text(NAMED)
    (sql / ".drafts" / "V2__draft.sql.check").write_text("select 1")  # hidden: skipped like a hidden script
    catalog = discover(FolderSource([str(sql)]).snapshot().files)
    assert [len(m.checks) for m in catalog.migrations] == [1]

    (sql / "v2__bad.sql").write_text("select 1;")
    with pytest.raises(ConfigError, match=r"fit no migration pattern.*sql/v2__bad\.sql"):
        discover(FolderSource([str(sql)]).snapshot().files)
    (sql / "v2__bad.sql.check").write_text("select 1")  # the check of a skipped script is skipped with it
    assert len(discover(FolderSource([str(sql)]).snapshot().files, ignore_invalid_names=True).migrations) == 1
    (sql / "v2__bad.sql").unlink()
    (sql / "v2__bad.sql.check").unlink()

    # Why the suffix is `.sql.check`: a `.check.sql` file is a Flyway script, a second V1.
    (sql / "V1__users.check.sql").write_text("select 1;")
    with pytest.raises(ConfigError, match=r"V1__users\.check\.sql and .*V1__users\.sql have the same version"):
        discover(FolderSource([str(sql)]).snapshot().files)


@pytest.mark.parametrize(("mapping", "says"), [
    ({"V1__a.sql": "select 1;", "V2__b.sql.check": "select 1"}, r"V2__b\.sql\.check: no script of that name beside it"),
    ({"V1__a.sql": "select 1;", "V1__a.sql.check": "select 1;\ndelete from users where id = 1;"},
     r"V1__a\.sql\.check:2: a check is a query .*not `delete from users"),
    ({"V1__a.sql": "select 1;", "V1__a.sql.check": "-- nothing here\n"}, r"V1__a\.sql\.check: holds no check"),
    ({"afterMigrate.sql": "select 1;", "afterMigrate.sql.check": "select 1"}, r"afterMigrate\.sql\.check: a callback has no checks"),
    ({"V1__a.sql": "select 1;", "V1__a.sql.check": "select ${missing}"}, r"V1__a\.sql\.check:1: no value for placeholder \$\{missing\}"),
])
def test_bad_check_files_are_bad_input_naming_file_and_line(mapping: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError, match=says) as raised:
        discover(files(mapping))
    assert raised.value.exit_code == 2


def test_checks_get_the_scripts_placeholders_and_unique_names() -> None:
    catalog = discover(files({
        "V1__a.sql": "select 1;",
        "V1__a.sql.check": "-- no rows\nselect * from ${schema_name}.t where false;\n-- no rows\nselect 2 where false;\n-- checksum\nselect 3 where false",
    }), PlaceholderContext(values={"schema_name": "analytics"}))
    checks = catalog.versioned[0].checks
    assert [c.sql for c in checks][0] == "select * from analytics.t where false"
    assert [c.name for c in checks] == ["no_rows", "no_rows_line_4", "checksum_check"]


def test_git_and_codecommit_sources_carry_check_files_from_the_same_commit(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "warehouse")
    repo.commit("users with a check", {"sql/V1__users.sql": USERS, "sql/V1__users.sql.check": NAMED})
    repo.commit("edit the check", {"sql/V1__users.sql.check": "select id from users where id < 0"})
    first = GitSource(str(repo.path), repo.git("rev-parse", "HEAD~1").strip(), ("sql",)).snapshot()
    assert [(f.relpath, f.data.decode()) for f in first.files] == [("V1__users.sql", USERS), ("V1__users.sql.check", NAMED)]
    assert discover(first.files).versioned[0].checks[0].where == "sql/V1__users.sql.check:2"

    cc = StubbedCodeCommit()
    cid = cc.commit("users with a check", {"sql/V1__users.sql": USERS.encode(), "sql/V1__users.sql.check": NAMED.encode()})
    cc.expect_commit(cid)
    cc.expect_folder(cid, "sql")
    cc.expect_file(cid, "sql/V1__users.sql")
    cc.expect_file(cid, "sql/V1__users.sql.check")
    snapshot = CodeCommitSource(cc.repository, cid, client=cc.client, locations=("sql",)).snapshot()
    cc.stubber.assert_no_pending_responses()
    assert [c.title for c in discover(snapshot.files).versioned[0].checks] == ["every user has a name"]


# A failing check: the migration is not applied


@pytest.fixture
def db(any_db: RigDatabase) -> RigDatabase:
    """psycopg directly, and redshift_connector through pgbouncer (the Redshift rig)."""
    return any_db


def test_a_failing_check_rolls_its_migration_back_and_names_the_check_and_rows(db, scripts) -> None:
    folder = scripts({"V1__users.sql": USERS, "V1__users.sql.check": NAMED})
    with pytest.raises(MigrationFailed) as raised:
        list(engine_for(db, folder).migrate())
    message = str(raised.value)
    assert message.startswith(f"{folder}/V1__users.sql.check:2: migration V1 (users) failed its check")
    assert "check 'every user has a name' failed: 2 row(s), expected none" in message
    assert "id | name" in message and "2  | NULL" in message and "3  | NULL" in message
    assert "Nothing of this script was applied" in message
    assert not table_exists(db, "users")
    assert history(db) == []
    [(script, status, error)] = audit(db)
    assert (script, status) == ("V1__users.sql", "failed")
    assert error.startswith(f"{folder}/V1__users.sql.check:2: check 'every user has a name' failed") and "3  | NULL" in error


def test_the_cli_exits_1_naming_the_check_and_showing_its_rows(db, scripts, capsys) -> None:
    folder = scripts({"V1__users.sql": USERS, "V1__users.sql.check": NAMED})
    assert main(["--url", db.url, "--locations", str(folder), "migrate", "--direct"]) == 1
    err = capsys.readouterr().err
    assert f"error: {folder}/V1__users.sql.check:2: migration V1 (users) failed its check" in err
    assert "2  | NULL" in err
    assert main(["--url", db.url, "--locations", str(folder), "info"]) == 0
    out = capsys.readouterr().out
    assert "Last failed attempts" in out and "V1__users.sql.check:2: check 'every user has a name' failed" in out


def test_passing_checks_let_the_migration_commit_and_are_reported(db, scripts) -> None:
    folder = scripts({
        "V1__users.sql": USERS.replace("null", "'x'"),
        "V1__users.sql.check": NAMED + "select count(*) from users having count(*) <> 3;\n",
        "V2__later.sql": "create table later (id int);",
    })
    results = list(engine_for(db, folder).migrate())
    assert [r.script for r in results] == ["V1__users.sql", "V2__later.sql"]
    assert [(o.check.line, o.passed) for o in results[0].checks] == [(2, True), (3, True)]
    assert history(db) == [("V1__users.sql", True), ("V2__later.sql", True)]


def test_editing_a_check_after_its_migration_ran_does_not_fail_validation(db, scripts) -> None:
    folder = scripts({"V1__users.sql": USERS.replace("null", "'x'"), "V1__users.sql.check": NAMED})
    list(engine_for(db, folder).migrate())
    scripts({"V1__users.sql.check": NAMED + "select id from users where id > 100;\n"})
    assert engine_for(db, folder).validate().problems() == []


def test_every_failing_check_is_named_and_at_most_ten_rows_are_shown(db, scripts) -> None:
    folder = scripts({
        "V1__many.sql": "create table many (n int);\ninsert into many select generate_series(1, 25);\n",
        "V1__many.sql.check": "select n from many order by n;\nselect 'empty' as why from many having count(*) = 0;\nselect n from many where n = 7;\n",
    })
    with pytest.raises(ChecksRejected) as raised:
        list(engine_for(db, folder).migrate())
    [first, third] = raised.value.failures
    assert (first.check.line, len(first.rows), first.more) == (1, SHOWN_ROWS, True)
    assert (third.check.line, third.rows) == (3, [(7,)])
    message = str(raised.value)
    assert "V1__many.sql.check:1: check 'select n from many order by n' failed: more than 10 row(s)" in message
    assert "V1__many.sql.check:3:" in message and "V1__many.sql.check:2:" not in message
    assert not table_exists(db, "many")


def test_a_check_that_cannot_run_fails_the_migration_with_the_servers_error(db, scripts) -> None:
    folder = scripts({"V1__a.sql": "create table a (id int);", "V1__a.sql.check": "select nope from a"})
    with pytest.raises(MigrationFailed, match=r"V1__a\.sql\.check:1: check 'select nope from a' could not run: .*nope"):
        list(engine_for(db, folder).migrate())
    assert not table_exists(db, "a") and history(db) == []


def test_in_a_run_of_several_scripts_the_ones_before_commit_and_the_rest_wait(db, scripts) -> None:
    """On psycopg consecutive small scripts travel as one batch behind savepoints; the checked one ends a query."""
    folder = scripts({
        "V1__first.sql": "create table first (id int);",
        "V2__users.sql": USERS,
        "V2__users.sql.check": NAMED,
        "V3__third.sql": "create table third (id int);",
    })
    with pytest.raises(ChecksRejected, match=r"V2__users\.sql\.check:2"):
        list(engine_for(db, folder).migrate())
    assert history(db) == [("V1__first.sql", True)]
    assert table_exists(db, "first") and not table_exists(db, "users") and not table_exists(db, "third")
    assert [(s, status) for s, status, _ in audit(db)] == [("V1__first.sql", "success"), ("V2__users.sql", "failed")]


def test_a_passing_check_inside_a_batch_keeps_every_scripts_counts(db, scripts) -> None:
    folder = scripts({
        "V1__first.sql": "create table first (id int);\ninsert into first values (1);",
        "V2__users.sql": USERS.replace("null", "'x'"),
        "V2__users.sql.check": NAMED,
        "V3__third.sql": "create table third (id int);\ninsert into third values (1), (2);",
    })
    results = list(engine_for(db, folder).migrate())
    assert [(r.script, r.statements, r.rows_affected) for r in results] == [
        ("V1__first.sql", 2, 1), ("V2__users.sql", 2, 3), ("V3__third.sql", 2, 2)
    ]
    assert [o.passed for o in results[1].checks] == [True]
    assert history(db) == [("V1__first.sql", True), ("V2__users.sql", True), ("V3__third.sql", True)]


def test_a_big_script_sent_in_pieces_is_rolled_back_by_its_check(db, scripts) -> None:
    values = ",\n".join(f"({n}, '{'x' * 90}')" for n in range(12_000))
    sql = f"create table big (id int, note text);\ninsert into big values\n{values};\n"
    assert len(sql) > BATCH_BYTES
    folder = scripts({"V1__big.sql": sql, "V1__big.sql.check": "-- about 12000 rows\nselect count(*) from big having count(*) <> 11999"})
    with pytest.raises(ChecksRejected) as raised:
        list(engine_for(db, folder).migrate())
    assert raised.value.failures[0].rows == [(12_000,)]
    assert "V1__big.sql.check:2: check 'about 12000 rows' failed: 1 row(s)" in str(raised.value)
    assert not table_exists(db, "big") and history(db) == []


def test_a_non_transactional_script_is_checked_after_it_ran_and_stays_failed(db, scripts) -> None:
    folder = scripts({
        "V1__users.sql": USERS,
        "V2__vacuum.sql": "vacuum users;",
        "V2__vacuum.sql.check": "-- dbops:always\nselect id from users where name is null",
        "V3__later.sql": "create table later (id int);",
    })
    with pytest.raises(ChecksRejected) as raised:
        list(engine_for(db, folder).migrate())
    message = str(raised.value)
    assert "V2__vacuum.sql.check:2: migration V2 (vacuum) failed its check" in message
    assert "all 1 statement(s) were applied and it is recorded as failed" in message and "dbops repair" in message
    assert history(db) == [("V1__users.sql", True), ("V2__vacuum.sql", False)]
    assert not table_exists(db, "later")
    assert audit(db)[-1][:2] == ("V2__vacuum.sql", "failed") and "V2__vacuum.sql.check:2" in audit(db)[-1][2]
    plan = engine_for(db, folder).plan(failures=True)
    [failed] = plan.failed_attempts()
    assert failed.script == "V2__vacuum.sql" and failed.last_failure.status == "failed"
    assert "V2__vacuum.sql.check:2" in failed.last_failure.error
    with pytest.raises(ValidationFailed):
        list(engine_for(db, folder).migrate())

    with psycopg.connect(db.pg_url) as conn:  # fix what the check found, repair, and the script runs again
        conn.execute("update users set name = 'someone' where name is null")
    engine_for(db, folder).repair()
    assert [r.script for r in engine_for(db, folder).migrate()] == ["V2__vacuum.sql", "V3__later.sql"]
    assert history(db) == [("V1__users.sql", True), ("V2__vacuum.sql", True), ("V3__later.sql", True)]


# dbops check: the checks that always hold, on applied migrations


def test_dbops_check_reruns_the_always_checks_of_applied_migrations(db, scripts, capsys) -> None:
    folder = scripts({
        "V1__users.sql": USERS.replace("null", "'x'"),
        "V1__users.sql.check": NAMED + "-- dbops:always\n-- ids are positive\nselect id, name from users where id <= 0\n",
        "V2__pending.sql": "create table pending (id int);",
        "V2__pending.sql.check": "-- dbops:always\nselect 1 from pending",
    })
    args = ["--url", db.url, "--locations", str(folder), "check"]
    assert main(args) == 0
    assert "No checks to run" in capsys.readouterr().out
    list(engine_for(db, folder, target_version="1").migrate())
    engine = engine_for(db, folder)
    assert [(m.script, c.line) for m, c in applied_checks(engine)] == [("V1__users.sql", 5)]
    assert [(m.script, c.line) for m, c in applied_checks(engine, every=True)] == [("V1__users.sql", 2), ("V1__users.sql", 5)]
    assert main(args) == 0
    assert "ok    " in capsys.readouterr().out

    with psycopg.connect(db.pg_url) as conn:
        conn.execute("update users set id = -id where id = 3")
    assert main(args) == 1
    out = capsys.readouterr().out
    assert f"FAILED {folder}/V1__users.sql.check:5: check 'ids are positive' failed: 1 row(s), expected none" in out
    assert "-3 | x" in out
    assert main([*args, "--all", "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["passed"] is False
    assert [(c["line"], c["passed"], c["rows"]) for c in document["checks"]] == [(2, True, []), (5, False, [[-3, "x"]])]
    [result] = recheck(engine, applied_checks(engine))
    assert result.outcome.columns == ["id", "name"]
