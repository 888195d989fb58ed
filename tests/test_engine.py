"""The engine against a real PostgreSQL database: what a user would check in the database."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from dbops.config import Settings
from dbops.engine.applier import RunInfo
from dbops.engine.engine import Engine
from dbops.errors import ConfigError, MigrationFailed, ValidationFailed
from dbops.scripts.migrations import checksum
from dbops.scripts.sources import CommitInfo
from dbops.targets import open_target
from tests.reliability.harness import backends, wait_until
from tests.rig import RigDatabase

CHECKSUMS = Path(__file__).parent / "data" / "checksums"


@pytest.fixture
def db(any_db: RigDatabase) -> RigDatabase:
    """Each test runs twice: psycopg directly, and redshift_connector through pgbouncer."""
    return any_db


def engine_for(db: RigDatabase, folder: Path, **settings) -> Engine:
    return Engine(open_target(db.url), Settings(locations=[str(folder)], **settings))


def migrate(db: RigDatabase, folder: Path, **settings) -> list[str]:
    return [r.script for r in engine_for(db, folder, **settings).migrate()]


def rows(db: RigDatabase, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(db.pg_url) as conn:
        return conn.execute(sql, params).fetchall()


def history(db: RigDatabase) -> list[tuple]:
    return rows(db, 'select installed_rank, version, description, type, script, checksum, success '
                     'from flyway_schema_history order by installed_rank')


def table_exists(db: RigDatabase, name: str) -> bool:
    return bool(rows(db, "select 1 from information_schema.tables where table_name = %s", (name,)))


def test_migrate_applies_in_order_and_records_flyway_rows(db, scripts) -> None:
    folder = scripts({
        "V1__create_users.sql": "create table users (id int primary key, name text);",
        "V2__seed.sql": "insert into users values (1, 'ada'), (2, 'grace');",
        "R__user_names.sql": "create or replace view user_names as select name from users;",
    })
    applied = engine_for(db, folder)
    results = list(applied.migrate())
    assert [r.script for r in results] == ["V1__create_users.sql", "V2__seed.sql", "R__user_names.sql"]
    assert results[1].rows_affected == 2 and results[1].statements == 1
    assert history(db) == [
        (1, "1", "create users", "SQL", "V1__create_users.sql", checksum("create table users (id int primary key, name text);"), True),
        (2, "2", "seed", "SQL", "V2__seed.sql", checksum("insert into users values (1, 'ada'), (2, 'grace');"), True),
        (3, None, "user names", "SQL", "R__user_names.sql", checksum("create or replace view user_names as select name from users;"), True),
    ]
    assert rows(db, "select count(*) from user_names") == [(2,)]
    assert migrate(db, folder) == []
    assert [e.state for e in engine_for(db, folder).plan().entries] == ["Success"] * 3


def test_history_table_has_flyways_exact_layout(db, scripts) -> None:
    migrate(db, scripts({"V1__a.sql": "select 1;"}))
    columns = rows(db, """
        select column_name, data_type, character_maximum_length, is_nullable, column_default
        from information_schema.columns where table_name = 'flyway_schema_history' order by ordinal_position""")
    assert columns == [
        ("installed_rank", "integer", None, "NO", None),
        ("version", "character varying", 50, "YES", None),
        ("description", "character varying", 200, "NO", None),
        ("type", "character varying", 20, "NO", None),
        ("script", "character varying", 1000, "NO", None),
        ("checksum", "integer", None, "YES", None),
        ("installed_by", "character varying", 100, "NO", None),
        ("installed_on", "timestamp without time zone", None, "NO", "now()"),
        ("execution_time", "integer", None, "NO", None),
        ("success", "boolean", None, "NO", None),
    ]
    indexes = {name for (name,) in rows(db, "select indexname from pg_indexes where tablename = 'flyway_schema_history'")}
    assert indexes == {"flyway_schema_history_pk", "flyway_schema_history_s_idx"}


FLYWAY_DDL = """
CREATE TABLE "public"."flyway_schema_history" (
    "installed_rank" INT NOT NULL,
    "version" VARCHAR(50),
    "description" VARCHAR(200) NOT NULL,
    "type" VARCHAR(20) NOT NULL,
    "script" VARCHAR(1000) NOT NULL,
    "checksum" INT,
    "installed_by" VARCHAR(100) NOT NULL,
    "installed_on" TIMESTAMP NOT NULL DEFAULT now(),
    "execution_time" INT NOT NULL,
    "success" BOOLEAN NOT NULL
);
ALTER TABLE "public"."flyway_schema_history" ADD CONSTRAINT "flyway_schema_history_pk" PRIMARY KEY ("installed_rank");
CREATE INDEX "flyway_schema_history_s_idx" ON "public"."flyway_schema_history" ("success");
"""


def test_database_migrated_by_flyway_shows_success(db, scripts) -> None:
    """Flyway's own table and checksums (computed by Java, see tests/data/checksums) are read as Success."""
    expected = dict(line.split("\t") for line in (CHECKSUMS / "expected.tsv").read_text().splitlines())
    files = {f"V{i}__{name[:-4]}.sql": (CHECKSUMS / name).read_bytes() for i, name in enumerate(sorted(expected), start=1)}
    folder = scripts(files)
    with psycopg.connect(db.pg_url, autocommit=True) as conn:
        conn.execute(FLYWAY_DDL)
        for rank, (name, value) in enumerate(sorted(expected.items()), start=1):
            conn.execute(
                "insert into flyway_schema_history values (%s, %s, %s, 'SQL', %s, %s, 'flyway', now(), 5, true)",
                (rank, str(rank), name[:-4].replace("_", " "), f"V{rank}__{name[:-4]}.sql", int(value)),
            )
    engine = engine_for(db, folder)
    states = {e.script: e.state for e in engine.plan().entries}
    assert set(states.values()) == {"Success"}, states
    engine.validate()
    assert list(engine.migrate()) == []


def test_a_nested_block_comment_is_one_comment_on_both_drivers(db, scripts) -> None:
    """PostgreSQL nests block comments; the splitter ended one at its first `*/` (a syntax error at line 2)."""
    nested = "create table a(id int);\n/* outer /* inner */ still comment; */\ncreate table b(id int);\n"
    folder = scripts({"V1__nested.sql": nested, "V2__alone.sql": nested.replace("table a", "table c").replace("table b", "table d")})
    assert migrate(db, folder, target_version="1") == ["V1__nested.sql"]  # alone: split into statements
    assert migrate(db, folder) == ["V2__alone.sql"]
    assert all(table_exists(db, name) for name in "abcd")
    assert [(v, s) for _, v, _, _, _, _, s in history(db)] == [("1", True), ("2", True)]


def test_failure_mid_script_leaves_no_trace_but_an_audit_row(db, scripts) -> None:
    folder = scripts({
        "V1__ok.sql": "create table kept (id int);",
        "V2__broken.sql": "create table half (id int);\n\ninsert into nowhere values (1);\n",
        "V3__later.sql": "create table later (id int);",
    })
    engine = engine_for(db, folder)
    applied = []
    with pytest.raises(MigrationFailed) as error:
        for result in engine.migrate(run=RunInfo(run_id="run-1", source="cli")):
            applied.append(result.script)
    message = str(error.value)
    assert applied == ["V1__ok.sql"]
    assert "V2__broken.sql:3" in message and "insert into nowhere" in message and 'relation "nowhere" does not exist' in message
    assert table_exists(db, "kept") and not table_exists(db, "half") and not table_exists(db, "later")
    assert [r[4] for r in history(db)] == ["V1__ok.sql"]
    audit = rows(db, "select script, status, error, run_id from dbops_audit order by started_at")
    assert [(a[0], a[1], a[3]) for a in audit] == [("V1__ok.sql", "success", "run-1"), ("V2__broken.sql", "failed", "run-1")]
    assert 'relation "nowhere" does not exist' in audit[1][2]


def test_edited_script_fails_validation_naming_file_and_both_checksums(db, scripts) -> None:
    folder = scripts({"V1__a.sql": "create table a (id int);"})
    migrate(db, folder)
    (folder / "V1__a.sql").write_text("create table a (id bigint);")
    with pytest.raises(ValidationFailed) as error:
        engine_for(db, folder).validate()
    message = str(error.value)
    assert "V1__a.sql" in message
    assert str(checksum("create table a (id int);")) in message and str(checksum("create table a (id bigint);")) in message
    with pytest.raises(ValidationFailed):
        list(engine_for(db, folder).migrate())


@pytest.mark.parametrize(
    "files",
    [
        {"V1__ok.sql": "create table a (id int);", "V2_bad.sql": "create table b (id int);"},
        {"V1__ok.sql": "create table a (id int);", "V1.0__dup.sql": "create table b (id int);"},
        {"V1__ok.sql": "create table a (id int);", "V2__ph.sql": "create table ${nope} (id int);"},
        {"V1__ok.sql": "create table a (id int);", "V2__latin.sql": "select 'caf\u00e9';".encode("latin-1")},
    ],
    ids=["invalid-name", "duplicate-version", "undefined-placeholder", "not-utf8"],
)
def test_bad_input_applies_nothing(db, scripts, files) -> None:
    folder = scripts(files)
    with pytest.raises(ConfigError):
        list(engine_for(db, folder).migrate())
    assert not table_exists(db, "a") and not table_exists(db, "flyway_schema_history")


def test_dry_run_changes_nothing(db, scripts) -> None:
    folder = scripts({"V1__a.sql": "create table ${t} (id int);"})
    todo = engine_for(db, folder, placeholders={"t": "orders"}).dry_run()
    assert [e.migration.sql for e in todo] == ["create table orders (id int);"]
    assert not table_exists(db, "orders") and not table_exists(db, "flyway_schema_history")


def test_target_version_stops_there(db, scripts) -> None:
    folder = scripts({"V1__a.sql": "select 1;", "V2__b.sql": "select 2;", "V3__c.sql": "select 3;"})
    assert migrate(db, folder, target_version="2") == ["V1__a.sql", "V2__b.sql"]
    states = {e.script: e.state for e in engine_for(db, folder, target_version="2").plan().entries}
    assert states["V3__c.sql"] == "Above Target"
    assert migrate(db, folder) == ["V3__c.sql"]


def test_out_of_order_script_is_ignored_until_allowed(db, scripts) -> None:
    folder = scripts({"V1__a.sql": "select 1;", "V3__c.sql": "select 3;"})
    migrate(db, folder)
    scripts({"V2__late.sql": "create table late (id int);"})
    with pytest.raises(ValidationFailed, match="V2__late.sql.*--out-of-order"):
        list(engine_for(db, folder).migrate())
    assert migrate(db, folder, out_of_order=True) == ["V2__late.sql"]
    assert table_exists(db, "late")


def test_changed_repeatable_is_reapplied(db, scripts) -> None:
    folder = scripts({"V1__t.sql": "create table t (a int, b int);", "R__v.sql": "create or replace view v as select a from t;"})
    migrate(db, folder)
    scripts({"R__v.sql": "create or replace view v as select a, b from t;"})
    assert [e.state for e in engine_for(db, folder).plan().entries if e.script == "R__v.sql"] == ["Outdated"]
    assert migrate(db, folder) == ["R__v.sql"]
    states = [e.state for e in engine_for(db, folder).plan().entries if e.script == "R__v.sql"]
    assert states == ["Superseded", "Success"]


def test_non_transactional_script_runs_in_autocommit(db, scripts) -> None:
    folder = scripts({"V1__t.sql": "create table t (id int);", "V2__vacuum.sql": "-- reclaim space\nVACUUM t;\nANALYZE t;"})
    results = list(engine_for(db, folder).migrate())
    assert [r.in_transaction for r in results] == [True, False]
    assert history(db)[-1][4:] == ("V2__vacuum.sql", checksum("-- reclaim space\nVACUUM t;\nANALYZE t;"), True)


def test_mixed_script_is_refused_before_anything_runs(db, scripts) -> None:
    folder = scripts({"V1__a.sql": "create table a (id int);", "V2__mixed.sql": "create table b (id int);\nvacuum b;"})
    with pytest.raises(ConfigError) as error:
        list(engine_for(db, folder).migrate())
    assert "V2__mixed.sql:2" in str(error.value) and "VACUUM" in str(error.value) and "line 1" in str(error.value)
    assert not table_exists(db, "a")
    assert migrate(db, folder, mixed=True) == ["V1__a.sql", "V2__mixed.sql"]


def test_failed_autocommit_script_blocks_until_repair(db, scripts) -> None:
    folder = scripts({"V1__t.sql": "create table t (id int);", "V2__nontx.sql": "vacuum t;\nvacuum missing_table;"})
    with pytest.raises(MigrationFailed, match="1 of 2 statement"):
        list(engine_for(db, folder).migrate())
    assert history(db)[-1][4:] == ("V2__nontx.sql", checksum("vacuum t;\nvacuum missing_table;"), False)
    audit = rows(db, "select status, error from dbops_audit where script = 'V2__nontx.sql'")
    assert len(audit) == 1 and audit[0][0] == "failed" and "missing_table" in audit[0][1]
    with pytest.raises(ValidationFailed, match="dbops repair"):
        list(engine_for(db, folder).migrate())
    scripts({"V2__nontx.sql": "vacuum t;"})
    actions = engine_for(db, folder).repair()
    assert any("removed failed row" in a for a in actions)
    assert migrate(db, folder) == ["V2__nontx.sql"]
    assert [r[6] for r in history(db)] == [True, True]


def test_autocommit_script_whose_success_cannot_be_recorded_fails_and_stays_failed(db, scripts) -> None:
    folder = scripts({"V1__t.sql": "create table t (id int);", "V2__nontx.sql": "vacuum t;"})
    engine = engine_for(db, folder)
    with engine.locked():
        pass  # the history table, for the trigger
    with psycopg.connect(db.pg_url, autocommit=True) as conn:
        conn.execute("create function refuse() returns trigger language plpgsql as $$ begin raise exception 'history is read-only'; end $$")
        conn.execute("create trigger refuse before update on flyway_schema_history for each row execute function refuse()")
    with pytest.raises(MigrationFailed, match="V2__nontx.sql") as error:
        list(engine.migrate())
    assert "history is read-only" in str(error.value)
    assert [r[4:] for r in history(db)][-1] == ("V2__nontx.sql", checksum("vacuum t;"), False)
    assert rows(db, "select status from dbops_audit where script = 'V2__nontx.sql'") == [("failed",)]


def test_baseline_marks_existing_database(db, scripts) -> None:
    folder = scripts({"V1__old.sql": "create table old (id int);", "V2__old.sql": "select 2;", "V3__new.sql": "create table new (id int);"})
    engine_for(db, folder).baseline("2")
    states = {e.script or e.description: e.state for e in engine_for(db, folder).plan().entries}
    assert states["V1__old.sql"] == "Below Baseline" and states["<< Flyway Baseline >>"] == "Baseline"
    assert migrate(db, folder) == ["V3__new.sql"]
    assert not table_exists(db, "old")
    assert history(db)[0][1:5] == ("2", "<< Flyway Baseline >>", "BASELINE", "<< Flyway Baseline >>")


def test_repair_realigns_checksum_of_edited_script(db, scripts) -> None:
    folder = scripts({"V1__a.sql": "create table a (id int);"})
    migrate(db, folder)
    scripts({"V1__a.sql": "create table a (id int); -- documented"})
    engine_for(db, folder).repair()
    engine_for(db, folder).validate()
    assert history(db)[0][5] == checksum("create table a (id int); -- documented")


def test_missing_script_is_reported_and_repair_marks_it_deleted(db, scripts) -> None:
    folder = scripts({"V1__a.sql": "select 1;", "V2__b.sql": "select 2;", "V3__c.sql": "select 3;"})
    migrate(db, folder)
    (folder / "V2__b.sql").unlink()
    with pytest.raises(ValidationFailed, match="V2__b.sql"):
        engine_for(db, folder).validate()
    engine_for(db, folder).repair()
    engine_for(db, folder).validate()
    assert history(db)[-1][3:5] == ("DELETE", "V2__b.sql")


def test_undo_reverts_the_latest_version(db, scripts) -> None:
    folder = scripts({"V1__a.sql": "create table a (id int);", "U1__a.sql": "drop table a;", "V2__b.sql": "create table b (id int);", "U2__b.sql": "drop table b;"})
    migrate(db, folder)
    undone = engine_for(db, folder).undo()
    assert [r.script for r in undone] == ["U2__b.sql"]
    assert not table_exists(db, "b") and table_exists(db, "a")
    assert history(db)[-1][1:5] == ("2", "b", "UNDO_SQL", "U2__b.sql")
    assert migrate(db, folder) == ["V2__b.sql"]


def test_callbacks_run_at_their_event(db, scripts) -> None:
    folder = scripts({
        "V1__a.sql": "create table a (id int);",
        "beforeMigrate.sql": "create table if not exists callback_log (event text);",
        "afterMigrate__log.sql": "insert into callback_log values ('after');",
        "afterEachMigrate.sql": "insert into callback_log values ('each');",
    })
    assert migrate(db, folder) == ["V1__a.sql"]
    assert sorted(rows(db, "select event from callback_log")) == [("after",), ("each",)]


def test_audit_rows_carry_the_commit(db, scripts) -> None:
    folder = scripts({"V1__a.sql": "select 1;"})
    commit = CommitInfo(id="abc123", author="Ada <ada@example.com>", message="Add a")
    list(engine_for(db, folder).migrate(run=RunInfo(run_id="r1", source="sensor", commit=commit)))
    assert rows(db, "select run_id, source, commit_id, commit_author, commit_message, script, version, status from dbops_audit") == [
        ("r1", "sensor", "abc123", "Ada <ada@example.com>", "Add a", "V1__a.sql", "1", "success")
    ]


def test_selection_refuses_skipping_a_pending_predecessor(db, scripts) -> None:
    folder = scripts({"V1__a.sql": "select 1;", "V2__b.sql": "select 2;"})
    with pytest.raises(ConfigError, match="V2__b.sql.*V1__a.sql"):
        list(engine_for(db, folder).migrate(select={"V2__b.sql"}))
    assert [r.script for r in engine_for(db, folder).migrate(select={"V1__a.sql", "V2__b.sql"})] == ["V1__a.sql", "V2__b.sql"]


def _dbops(db: RigDatabase, folder: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "DBOPS_URL": db.url, "DBOPS_LOCATIONS": str(folder)}
    return subprocess.Popen(
        [sys.executable, "-m", "dbops.cli", "migrate", "--direct", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _wait_for_sleep(db, process) -> None:
    """Until dbops `process` sleeps in pg_sleep, holding the run lock (a loaded machine may take seconds to start it)."""
    wait_until(lambda: any(w == "PgSleep" for _, _, w, _ in backends(db.pg_url, process.pid)), 60, "the migrator to reach pg_sleep")


def test_two_migrators_at_once_apply_each_script_once(db, scripts) -> None:
    folder = scripts({
        "V1__slow.sql": "create table slow (id int);\nselect pg_sleep(5);",
        "V2__b.sql": "create table b (id int);",
    })
    first = _dbops(db, folder)
    _wait_for_sleep(db, first)
    second = _dbops(db, folder)
    outputs = [p.communicate(timeout=60) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outputs
    assert [r[4] for r in history(db)] == ["V1__slow.sql", "V2__b.sql"]
    assert "waiting for the run lock" in outputs[1][1]
    assert "Nothing to migrate" in outputs[1][0]


def test_lock_timeout_names_the_holder(db, scripts) -> None:
    folder = scripts({"V1__slow.sql": "select pg_sleep(8);"})
    holder = _dbops(db, folder)
    _wait_for_sleep(db, holder)
    waiter = _dbops(db, folder, "--lock-timeout", "1")
    out, err = waiter.communicate(timeout=30)
    holder.communicate(timeout=30)
    assert waiter.returncode == 3
    assert "run lock" in err and "dbops" in err and "server pid" in err


def test_error_without_a_position_names_script_and_statement(db, scripts) -> None:
    """A unique violation carries no position: the failing script and statement are still named."""
    folder = scripts({
        "V1__t.sql": "create table t (id int primary key);\ninsert into t values (1);",
        "V2__ok.sql": "insert into t values (2);",
        "V3__dup.sql": "insert into t values (3);\ninsert into t values (1);",
        "V4__later.sql": "create table later (id int);",
    })
    with pytest.raises(MigrationFailed) as error:
        list(engine_for(db, folder).migrate())
    assert "V3__dup.sql:2" in str(error.value) and "duplicate key" in str(error.value)
    assert [r[4] for r in history(db)] == ["V1__t.sql", "V2__ok.sql"]
    assert rows(db, "select id from t order by id") == [(1,), (2,)] and not table_exists(db, "later")
    assert rows(db, "select script, status from dbops_audit where status = 'failed'") == [("V3__dup.sql", "failed")]


def test_script_saved_with_a_bom_runs_and_keeps_flyways_checksum(db, scripts) -> None:
    """Editors on Windows save a BOM; Flyway drops it before running the script, and so does dbops."""
    folder = scripts({"V1__bom.sql": b"\xef\xbb\xbfcreate table bom_t (id int);\r\n", "V2__vacuum.sql": b"\xef\xbb\xbfvacuum bom_t;"})
    results = list(engine_for(db, folder).migrate())
    assert [(r.script, r.in_transaction) for r in results] == [("V1__bom.sql", True), ("V2__vacuum.sql", False)]
    assert table_exists(db, "bom_t")
    assert history(db)[0][5] == checksum("\ufeffcreate table bom_t (id int);\r\n") == checksum("create table bom_t (id int);")


def test_a_script_with_its_own_savepoints_is_counted_right(db, scripts) -> None:
    """Batches read statement counts from command tags; a script's own SAVEPOINT must not confuse them."""
    folder = scripts({
        "V1__sp.sql": "create table s (id int);\nsavepoint inner_sp;\ninsert into s values (1), (2);\nrelease savepoint inner_sp;",
        "V2__more.sql": "insert into s values (3);",
    })
    results = list(engine_for(db, folder).migrate())
    assert [(r.script, r.statements) for r in results] == [("V1__sp.sql", 4), ("V2__more.sql", 1)]
    assert rows(db, "select count(*) from s") == [(3,)]
