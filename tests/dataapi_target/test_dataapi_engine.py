"""The whole `dbops` command through the Data API target on the local endpoint: what a user sees and what lands."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from bench.generate import generate
from dbops.cli import main
from dbops.config import Settings
from dbops.engine.engine import Engine
from dbops.scripts.migrations import checksum
from dbops.targets import open_target
from tests.rig import RigDatabase

TABLE = "flyway_schema_history"
SQL = Path(__file__).resolve().parents[2] / "sql"
V1 = "create table sales (id int, note varchar(20));\ninsert into sales values (1, '10% off'), (2, 'full price');\n"


def dbops(capsys: pytest.CaptureFixture, url: str, folder, *args: str) -> tuple[int, str, str]:
    code = main(["--url", url, "--locations", str(folder), *args])
    out, err = capsys.readouterr()
    return code, out, err


def rows(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def history(db: RigDatabase) -> list[tuple]:
    return rows(db.pg_url, f'select installed_rank, version, script, checksum, success from "{TABLE}" order by installed_rank')


def audit(db: RigDatabase) -> list[tuple]:
    return rows(db.pg_url, "select script, status, source, commit_id from dbops_audit order by started_at, script")


def test_migrate_info_validate_and_audit_through_the_data_api(da_db, dataapi, scripts, capsys) -> None:
    database = f"{da_db.name}_extra"
    folder = scripts({
        "V1__sales.sql": V1,
        "V2__vacuum.sql": "-- reclaim space after the load\nVACUUM sales;\n",
        "V3__database.sql": f"CREATE DATABASE {database};\n",
        "V4__discount.sql": "update sales set note = 'discount' where note like '%off';\n",
        "R__sales_view.sql": "create or replace view sales_notes as select note from sales;\n",
    })
    before = len(dataapi.calls)
    code, out, err = dbops(capsys, da_db.url, folder, "--json", "migrate", "--direct", "--commit", "abc123")
    assert code == 0, err
    applied = json.loads(out)["applied"]
    assert [(a["script"], a["in_transaction"]) for a in applied] == [
        ("V1__sales.sql", True), ("V2__vacuum.sql", False), ("V3__database.sql", False),
        ("V4__discount.sql", True), ("R__sales_view.sql", True),
    ]
    assert applied[0]["rows_affected"] == 2 and applied[3]["rows_affected"] == 1
    assert [(r[1], r[2], r[4]) for r in history(da_db)] == [
        ("1", "V1__sales.sql", True), ("2", "V2__vacuum.sql", True), ("3", "V3__database.sql", True),
        ("4", "V4__discount.sql", True), (None, "R__sales_view.sql", True),
    ]
    assert history(da_db)[0][3] == checksum(V1)
    assert rows(da_db.pg_url, "select note from sales_notes order by note") == [("discount",), ("full price",)]
    assert rows(da_db.pg_url, f"select 1 from pg_database where datname = '{database}'") == [(1,)]
    assert sorted(audit(da_db)) == sorted((a["script"], "success", "cli", "abc123") for a in applied)
    assert {"BatchExecuteStatement", "ExecuteStatement", "DescribeStatement", "GetStatementResult"} <= set(dataapi.calls[before:])

    code, out, _ = dbops(capsys, da_db.url, folder, "--json", "info")
    info = json.loads(out)
    assert code == 0 and {m["state"] for m in info["migrations"]} == {"Success"}
    assert info["target"].startswith("redshift-data://") and info["ssl"].startswith("off (endpoint_url=http://127.0.0.1")
    assert dbops(capsys, da_db.url, folder, "validate")[0] == 0
    code, out, _ = dbops(capsys, da_db.url, folder, "migrate", "--direct")
    assert code == 0 and "Nothing to migrate" in out
    assert rows(da_db.pg_url, "select count(*) from dbops_lease") == [(0,)]  # released at the end of each run


def test_a_transactional_script_and_its_rows_are_one_batch(da_db, dataapi, scripts, capsys) -> None:
    folder = scripts({"V1__sales.sql": V1})
    start = len(dataapi.calls)
    assert dbops(capsys, da_db.url, folder, "migrate", "--direct")[0] == 0
    statement = next(s for s in list(dataapi.statements.values())[::-1] if any("insert into sales" in sub.sql for sub in s.subs))
    texts = [sub.sql for sub in statement.subs]
    assert statement.batch and texts[2:4] == ["create table sales (id int, note varchar(20))", texts[3]]
    assert texts[0].startswith("lock table") and "dbops_lease" in texts[1]  # the lease's fence comes first
    assert "flyway_schema_history" in texts[-2] and "dbops_audit" in texts[-1]
    assert dataapi.calls[start:].count("BatchExecuteStatement") >= 1


def test_failed_transactional_script_leaves_nothing_but_its_audit_row(da_db, scripts, capsys) -> None:
    folder = scripts({"V1__half.sql": "create table half (id int);\ninsert into missing values (1);\n"})
    code, _, err = dbops(capsys, da_db.url, folder, "migrate", "--direct")
    assert code == 1 and "V1__half.sql:2" in err and "rolled back" in err
    assert 'relation "missing" does not exist' in err and "ERROR:" not in err
    assert history(da_db) == []
    assert rows(da_db.pg_url, "select to_regclass('half') is null") == [(True,)]
    assert audit(da_db) == [("V1__half.sql", "failed", "cli", "")]


def test_failed_autocommit_script_is_recorded_and_refused_until_repair(da_db, scripts, capsys) -> None:
    folder = scripts({"V1__sales.sql": V1, "V2__vacuum.sql": "vacuum sales;\nvacuum no_such_table;\n"})
    code, _, err = dbops(capsys, da_db.url, folder, "migrate", "--direct")
    assert code == 1
    assert "V2__vacuum.sql:2" in err and "1 of 2 statement(s) were applied" in err and "dbops repair" in err
    assert [(r[2], r[4]) for r in history(da_db)] == [("V1__sales.sql", True), ("V2__vacuum.sql", False)]
    assert ("V2__vacuum.sql", "failed", "cli", "") in audit(da_db)
    code, out, _ = dbops(capsys, da_db.url, folder, "--json", "info")
    assert [m["state"] for m in json.loads(out)["migrations"]] == ["Success", "Failed"]
    assert dbops(capsys, da_db.url, folder, "validate")[0] == 1
    code, out, _ = dbops(capsys, da_db.url, folder, "repair")
    assert code == 0 and "removed failed row V2__vacuum.sql" in out
    (folder / "V2__vacuum.sql").write_text("vacuum sales;\n")
    assert dbops(capsys, da_db.url, folder, "migrate", "--direct")[0] == 0
    assert [(r[2], r[4]) for r in history(da_db)] == [("V1__sales.sql", True), ("V2__vacuum.sql", True)]


def test_repair_baseline_and_undo(da_db, pg_server, dataapi, scripts, tmp_path, capsys) -> None:
    folder = scripts({"V1__a.sql": "create table a (id int);\n", "U1__a.sql": "drop table a;\n"})
    assert dbops(capsys, da_db.url, folder, "migrate", "--direct")[0] == 0
    (folder / "V1__a.sql").write_text("create table a (id int); -- reviewed\n")
    assert dbops(capsys, da_db.url, folder, "validate")[0] == 1
    assert dbops(capsys, da_db.url, folder, "repair")[0] == 0
    assert history(da_db)[0][3] == checksum("create table a (id int); -- reviewed\n")
    assert dbops(capsys, da_db.url, folder, "validate")[0] == 0
    code, _, err = dbops(capsys, da_db.url, folder, "undo")
    assert code == 0, err
    assert rows(da_db.pg_url, "select to_regclass('a') is null") == [(True,)]

    other = pg_server.create_database()
    url = dataapi.url(other)
    old = tmp_path / "old"
    old.mkdir()
    (old / "V1__old.sql").write_text("create table old (id int);\n")
    (old / "V2__new.sql").write_text("create table new (id int);\n")
    code, _, err = dbops(capsys, url, old, "baseline", "--version", "1")
    assert code == 0, err
    assert dbops(capsys, url, old, "migrate", "--direct")[0] == 0
    assert rows(pg_server.url(other), f"select version, script from {TABLE} order by installed_rank") == [
        ("1", "<< Flyway Baseline >>"), ("2", "V2__new.sql"),
    ]


def test_the_search_path_holds_across_calls_and_survives_an_expired_session(da_db, dataapi, scripts, capsys) -> None:
    folder = scripts({
        "V1__orders.sql": "create table orders (id int);\n",
        "V2__lines.sql": "create table lines (id int);\n",
        "V3__vacuum.sql": "vacuum lines;\n",
    })
    engine = Engine(open_target(da_db.url), Settings(locations=[str(folder)], schema="app"))
    results = engine.migrate()
    assert next(results).script == "V1__orders.sql"
    dataapi.expire_sessions()  # the service ended the working session: its search path goes with it
    assert [r.script for r in results] == ["V2__lines.sql", "V3__vacuum.sql"]
    assert rows(da_db.pg_url, "select to_regclass('app.orders') is not null, to_regclass('app.lines') is not null") == [(True, True)]


def history_of(url: str) -> list[tuple]:
    return rows(url, f"select installed_rank, version, description, type, script, checksum, success from {TABLE} order by installed_rank")


def test_the_example_warehouse_lands_as_through_psycopg(da_db, pg_url) -> None:
    settings = Settings(locations=[str(SQL)], placeholders={"recent_sales_days": "90"})
    through_api = [r.script for r in Engine(open_target(da_db.url), settings).migrate()]
    through_psycopg = [r.script for r in Engine(open_target(pg_url), settings).migrate()]
    assert through_api == through_psycopg and len(through_api) >= 10
    assert history_of(da_db.pg_url) == history_of(pg_url)
    tables = "select table_schema, table_name from information_schema.tables where table_schema in ('analytics', 'staging') order by 1, 2"
    assert rows(da_db.pg_url, tables) == rows(pg_url, tables)


def test_a_thousand_generated_migrations_match_psycopg_in_few_calls(da_db, pg_url, dataapi, tmp_path) -> None:
    folder = tmp_path / "gen"
    generate(folder, 1000)
    settings = Settings(locations=[str(folder)])
    start = len(dataapi.calls)
    assert len(list(Engine(open_target(da_db.url), settings).migrate())) == 1000
    calls = Counter(dataapi.calls[start:])
    assert len(list(Engine(open_target(pg_url), settings).migrate())) == 1000
    assert history_of(da_db.pg_url) == history_of(pg_url)
    assert rows(da_db.pg_url, "select count(*) from t00997") == [(10,)]
    # Several scripts share each BatchExecuteStatement (40 statements): far fewer batches than scripts.
    assert calls["BatchExecuteStatement"] < 300, calls


def test_the_statement_timeout_cancels_the_statement_through_cancel_statement(da_db, dataapi, scripts, capsys) -> None:
    folder = scripts({"V1__slow.sql": "create table slow (id int);\nselect pg_sleep(30);\n"})
    code, _, err = dbops(capsys, da_db.url, folder, "migrate", "--direct", "--statement-timeout", "1")
    assert code == 1 and "V1__slow.sql" in err and "statement timeout" in err and "CancelStatement" in err
    assert "CancelStatement" in dataapi.calls
    assert any(s.status == "ABORTED" and "pg_sleep(30)" in s.subs[3].sql for s in dataapi.statements.values() if len(s.subs) > 3)
    assert history(da_db) == [] and rows(da_db.pg_url, "select to_regclass('slow') is null") == [(True,)]


def test_a_script_over_a_limit_is_refused_before_anything_runs(da_db, scripts, capsys) -> None:
    many = "".join(f"insert into wide values ({n});\n" for n in range(40))
    folder = scripts({
        "V1__wide.sql": "create table wide (id int);\n",
        "V2__many.sql": many,
        "V3__big.sql": "insert into wide select length('" + "x" * 110_000 + "');\n",
    })
    code, _, err = dbops(capsys, da_db.url, folder, "migrate", "--direct")
    assert code == 2 and "V2__many.sql" in err and "40 statements" in err and "at most 36" in err
    assert rows(da_db.pg_url, "select to_regclass('wide') is null") == [(True,)]  # not even V1 ran
    (folder / "V2__many.sql").write_text("insert into wide values (1);\n")
    code, _, err = dbops(capsys, da_db.url, folder, "migrate", "--direct")
    assert code == 2 and "V3__big.sql:1" in err and "at most 100 KB" in err
    assert history(da_db) == []


def test_an_attempt_left_started_is_marked_interrupted_without_a_count_it_cannot_know(da_db, scripts, capsys) -> None:
    folder = scripts({"V1__sales.sql": V1})
    assert dbops(capsys, da_db.url, folder, "migrate", "--direct")[0] == 0
    with psycopg.connect(da_db.pg_url) as conn:  # as a killed run leaves a script that ran outside a transaction
        conn.execute("update dbops_audit set status = 'started', run_id = 'killed'")
    (folder / "V2__more.sql").write_text("create table more (id int);\n")
    code, _, err = dbops(capsys, da_db.url, folder, "migrate", "--direct")
    assert code == 0, err
    assert "marked -1" not in err
    assert ("V1__sales.sql", "interrupted") in rows(da_db.pg_url, "select script, status from dbops_audit")


def test_checks_run_inside_the_batch_and_a_failing_one_rolls_the_script_back_showing_its_rows(da_db, scripts, capsys) -> None:
    folder = scripts({
        "V1__a.sql": "create table a (id int);\ninsert into a values (1), (null);\n",
        "V1__a.sql.check": "-- ids are set\nselect id, 'no id' as why from a where id is null;\n",
    })
    code, out, err = dbops(capsys, da_db.url, folder, "migrate", "--direct")
    assert code == 1 and "V1__a.sql.check:2" in err + out and "ids are set" in err + out and "no id" in err + out, err
    assert history(da_db) == [] and rows(da_db.pg_url, "select to_regclass('a') is null") == [(True,)]
    (folder / "V1__a.sql").write_text("create table a (id int);\ninsert into a values (1);\n")
    (folder / "V2__vacuum.sql").write_text("vacuum a;\n")
    (folder / "V2__vacuum.sql.check").write_text("-- one row\nselect 1 where (select count(*) from a) <> 1;\n")
    code, out, err = dbops(capsys, da_db.url, folder, "--json", "migrate", "--direct")
    assert code == 0, err
    assert [r[2] for r in history(da_db)] == ["V1__a.sql", "V2__vacuum.sql"]


def test_secret_arn_and_serverless_urls_reach_the_service_as_it_takes_them(da_db, dataapi, scripts, capsys) -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:warehouse-AbCdEf"
    dataapi.secrets[arn] = "postgres"
    folder = scripts({"V1__sales.sql": V1})
    start = len(dataapi.statements)
    code, _, err = dbops(capsys, dataapi.url(da_db.name, secret_arn=arn), folder, "migrate", "--direct")
    assert code == 0, err
    first = list(dataapi.statements.values())[start]
    assert (first.request["SecretArn"], first.request["DbUser"]) == (arn, "postgres")  # the user the secret holds
    assert arn not in err  # nothing of the secret is read or shown by dbops: the service reads it
    code, out, err = dbops(capsys, dataapi.url(da_db.name, cluster="wg-analytics", serverless="true"), folder, "--json", "info")
    assert code == 0, err
    assert "WorkgroupName" in list(dataapi.statements.values())[-1].request
    code, _, err = dbops(capsys, "redshift-data://dbops@wg/dev?serverless=true", folder, "info")
    assert code == 2 and "Serverless workgroup takes no database user" in err
    code, _, err = dbops(capsys, "redshift-data://dbops:hunter2@c1/dev", folder, "info")
    assert code == 2 and "takes no password" in err and "hunter2" not in err
