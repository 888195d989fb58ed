"""The whole `dbops` command through redshift_connector and pgbouncer: what a user sees and what lands in the database."""
from __future__ import annotations

import json
import logging

import boto3
import psycopg
import pytest
import redshift_connector
from moto import mock_aws

from dbops.cli import main
from dbops.scripts.migrations import checksum
from tests.rig import RigDatabase

TABLE = "flyway_schema_history"


def dbops(capsys: pytest.CaptureFixture, url: str, folder, *args: str) -> tuple[int, str, str]:
    code = main(["--url", url, "--locations", str(folder), *args])
    out, err = capsys.readouterr()
    return code, out, err


def rows(db: RigDatabase, sql: str) -> list[tuple]:
    with psycopg.connect(db.pg_url) as conn:
        return conn.execute(sql).fetchall()


def history(db: RigDatabase) -> list[tuple]:
    return rows(db, f'select installed_rank, version, script, checksum, success from "{TABLE}" order by installed_rank')


def audit(db: RigDatabase) -> list[tuple]:
    return rows(db, "select script, status, source, commit_id from dbops_audit order by started_at, script")


V1 = "create table sales (id int, note varchar(20));\ninsert into sales values (1, '10% off'), (2, 'full price');\n"


def test_migrate_info_validate_and_audit_through_redshift_connector(rs_db, scripts, capsys) -> None:
    database = f"{rs_db.name}_extra"
    folder = scripts({
        "V1__sales.sql": V1,
        "V2__vacuum.sql": "-- reclaim space after the load\nVACUUM sales;\n",
        "V3__database.sql": f"CREATE DATABASE {database};\n",
        "V4__discount.sql": "update sales set note = 'discount' where note like '%off';\n",
        "R__sales_view.sql": "create or replace view sales_notes as select note from sales;\n",
    })
    code, out, err = dbops(capsys, rs_db.url, folder, "--json", "migrate", "--direct", "--commit", "abc123")
    assert code == 0, err
    applied = json.loads(out)["applied"]
    assert [(a["script"], a["in_transaction"]) for a in applied] == [
        ("V1__sales.sql", True), ("V2__vacuum.sql", False), ("V3__database.sql", False),
        ("V4__discount.sql", True), ("R__sales_view.sql", True),
    ]
    assert applied[0]["rows_affected"] == 2 and applied[3]["rows_affected"] == 1
    assert [(r[1], r[2], r[4]) for r in history(rs_db)] == [
        ("1", "V1__sales.sql", True), ("2", "V2__vacuum.sql", True), ("3", "V3__database.sql", True),
        ("4", "V4__discount.sql", True), (None, "R__sales_view.sql", True),
    ]
    assert history(rs_db)[0][3] == checksum(V1)
    assert rows(rs_db, "select note from sales_notes order by note") == [("discount",), ("full price",)]
    assert rows(rs_db, f"select 1 from pg_database where datname = '{database}'") == [(1,)]
    assert sorted(audit(rs_db)) == sorted((a["script"], "success", "cli", "abc123") for a in applied)

    code, out, _ = dbops(capsys, rs_db.url, folder, "--json", "info")
    info = json.loads(out)
    assert code == 0 and {m["state"] for m in info["migrations"]} == {"Success"}
    assert info["ssl"] == "off (sslmode=disable)" and info["target"].startswith("redshift://")
    assert dbops(capsys, rs_db.url, folder, "validate")[0] == 0
    code, out, _ = dbops(capsys, rs_db.url, folder, "migrate", "--direct")
    assert code == 0 and "Nothing to migrate" in out


def test_postgresql_refuses_create_database_in_a_transaction_so_autocommit_is_what_applied_it(rs_db, scripts, capsys) -> None:
    folder = scripts({
        "V1__database.sql": f"create database {rs_db.name}_tx;\n",
        "V1__database.sql.conf": "executeInTransaction=true\n",
    })
    code, _, err = dbops(capsys, rs_db.url, folder, "migrate", "--direct")
    assert code == 1
    assert "V1__database.sql" in err and "cannot run inside a transaction block" in err
    assert history(rs_db) == []
    assert audit(rs_db) == [("V1__database.sql", "failed", "cli", "")]


def test_failed_autocommit_script_is_recorded_and_refused_until_repair(rs_db, scripts, capsys) -> None:
    folder = scripts({"V1__sales.sql": V1, "V2__vacuum.sql": "vacuum sales;\nvacuum no_such_table;\n"})
    code, _, err = dbops(capsys, rs_db.url, folder, "migrate", "--direct")
    assert code == 1
    assert "V2__vacuum.sql:2" in err and "1 of 2 statement(s) were applied" in err and "dbops repair" in err
    assert [(r[2], r[4]) for r in history(rs_db)] == [("V1__sales.sql", True), ("V2__vacuum.sql", False)]
    assert ("V2__vacuum.sql", "failed", "cli", "") in audit(rs_db)

    code, out, _ = dbops(capsys, rs_db.url, folder, "--json", "info")
    assert [m["state"] for m in json.loads(out)["migrations"]] == ["Success", "Failed"]
    code, _, err = dbops(capsys, rs_db.url, folder, "migrate", "--direct")
    assert code == 1 and "V2__vacuum.sql" in err
    assert dbops(capsys, rs_db.url, folder, "validate")[0] == 1

    code, out, _ = dbops(capsys, rs_db.url, folder, "repair")
    assert code == 0 and "removed failed row V2__vacuum.sql" in out
    (folder / "V2__vacuum.sql").write_text("vacuum sales;\n")
    assert dbops(capsys, rs_db.url, folder, "migrate", "--direct")[0] == 0
    assert [(r[2], r[4]) for r in history(rs_db)] == [("V1__sales.sql", True), ("V2__vacuum.sql", True)]


def test_failed_transactional_script_leaves_nothing_but_its_audit_row(rs_db, scripts, capsys) -> None:
    folder = scripts({"V1__half.sql": "create table half (id int);\ninsert into missing values (1);\n"})
    code, _, err = dbops(capsys, rs_db.url, folder, "migrate", "--direct")
    assert code == 1 and "V1__half.sql:2" in err and "rolled back" in err
    assert history(rs_db) == []
    assert rows(rs_db, "select to_regclass('half') is null") == [(True,)]
    assert audit(rs_db) == [("V1__half.sql", "failed", "cli", "")]


def test_repair_realigns_an_edited_script_and_baseline_undo_work(rs_db, scripts, capsys) -> None:
    folder = scripts({"V1__a.sql": "create table a (id int);\n", "U1__a.sql": "drop table a;\n"})
    assert dbops(capsys, rs_db.url, folder, "migrate", "--direct")[0] == 0
    (folder / "V1__a.sql").write_text("create table a (id int); -- reviewed\n")
    code, _, err = dbops(capsys, rs_db.url, folder, "validate")
    assert code == 1
    assert dbops(capsys, rs_db.url, folder, "repair")[0] == 0
    assert history(rs_db)[0][3] == checksum("create table a (id int); -- reviewed\n")
    assert dbops(capsys, rs_db.url, folder, "validate")[0] == 0
    code, out, err = dbops(capsys, rs_db.url, folder, "undo")
    assert code == 0, err
    assert rows(rs_db, "select to_regclass('a') is null") == [(True,)]


def test_baseline_through_redshift_connector(rs_db, scripts, capsys) -> None:
    folder = scripts({"V1__old.sql": "create table old (id int);\n", "V2__new.sql": "create table new (id int);\n"})
    assert dbops(capsys, rs_db.url, folder, "baseline", "--version", "1")[0] == 0
    assert dbops(capsys, rs_db.url, folder, "migrate", "--direct")[0] == 0
    assert [(r[1], r[2]) for r in history(rs_db)] == [("1", "<< Flyway Baseline >>"), ("2", "V2__new.sql")]


@mock_aws
def test_no_secret_value_or_iam_token_in_output_logs_or_errors(rs_db, scripts, capsys, caplog, monkeypatch) -> None:
    secret_value = "Sup3r-S3cret-Value-7781"
    arn = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name="redshift!warehouse-admin", SecretString=json.dumps({"username": "postgres", "password": secret_value})
    )["ARN"]
    boto3.client("redshift", region_name="us-east-1").create_cluster(
        ClusterIdentifier="warehouse", NodeType="ra3.xlplus", MasterUsername="admin", MasterUserPassword="Passw0rd!x"
    )
    passwords: list[str] = []
    real_connect = redshift_connector.connect

    def recording_connect(**kwargs):
        passwords.append(kwargs["password"])
        return real_connect(**kwargs)

    monkeypatch.setattr(redshift_connector, "connect", recording_connect)
    caplog.set_level(logging.DEBUG)
    folder = scripts({"V1__a.sql": "create table a (id int);\n", "V2__bad.sql": "select * from missing;\n"})
    base = rs_db.url.replace("postgres@", "")
    urls = [
        f"{base}&secret_arn={arn}",
        f"{rs_db.url.replace('postgres@', 'postgres:url-pass-5521@')}",
        f"{rs_db.url}&iam=true&cluster_identifier=warehouse&region=us-east-1",
    ]
    transcript = []
    for url in urls:
        for args in (["-v", "migrate", "--direct"], ["--json", "info"], ["-v", "repair"], ["--json", "validate"]):
            code, out, err = dbops(capsys, url, folder, *args)
            transcript.append(f"{code}\n{out}\n{err}")
        code, out, err = dbops(capsys, url.replace(rs_db.name, "no_such_db"), folder, "info")
        assert code == 3
        transcript.append(f"{out}\n{err}")
    transcript.append(caplog.text)
    transcript += rows(rs_db, "select coalesce(error, '') || target from dbops_audit")[0]
    text = "\n".join(map(str, transcript))
    assert "V2__bad.sql" in text and 'relation "missing" does not exist' in text
    iam_tokens = [p for p in passwords if p not in (secret_value, "url-pass-5521")]
    assert secret_value in passwords and "url-pass-5521" in passwords and iam_tokens
    for secret in {secret_value, "url-pass-5521", *iam_tokens}:
        assert secret not in text


def test_both_drivers_write_the_same_history(any_db, scripts, capsys) -> None:
    folder = scripts({"V1__sales.sql": V1, "V2__vacuum.sql": "vacuum sales;\n"})
    code, out, err = dbops(capsys, any_db.url, folder, "--json", "migrate", "--direct")
    assert code == 0, err
    assert [(r[1], r[2], r[3], r[4]) for r in history(any_db)] == [
        ("1", "V1__sales.sql", checksum(V1), True), ("2", "V2__vacuum.sql", checksum("vacuum sales;\n"), True),
    ]
    assert [a["in_transaction"] for a in json.loads(out)["applied"]] == [True, False]
    assert rows(any_db, "select installed_by from flyway_schema_history") == [("postgres",), ("postgres",)]
