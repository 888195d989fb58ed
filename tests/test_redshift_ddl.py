"""What dbops sends to Redshift, checked without a Redshift: Flyway's table layout, and every DDL and bookkeeping
statement parsed with sqlglot's redshift dialect and free of what Redshift lacks.

The engine runs through redshift_connector and the rig with the server made to answer `version()` as Redshift does,
so dbops takes its Redshift path; the only rewrites on the way to PostgreSQL are Redshift's SORTKEY and getdate().
"""
from __future__ import annotations

import re

import psycopg
import pytest
import redshift_connector
import sqlglot
from sqlglot import exp

from dbops.config import Settings
from dbops.engine.engine import Engine
from dbops.engine.history import audit_ddl, audit_upgrade_ddl, history_ddl
from dbops.engine.locks import make_lock
from dbops.errors import LockTimeout, MigrationFailed
from dbops.targets import open_target
from dbops.targets.base import Dialect

REDSHIFT_VERSION = (
    "PostgreSQL 8.0.2 on i686-pc-linux-gnu, compiled by GCC gcc (GCC) 3.4.2 20041017 (Red Hat 3.4.2-6.fc3), "
    "Redshift 1.0.77467"
)
# Flyway's createMetaDataTable for Redshift (flyway-database-redshift, RedshiftDatabase.getRawCreateScript).
FLYWAY_REDSHIFT = """CREATE TABLE "public"."flyway_schema_history" (
    "installed_rank" INT NOT NULL SORTKEY,
    "version" VARCHAR(50),
    "description" VARCHAR(200) NOT NULL,
    "type" VARCHAR(20) NOT NULL,
    "script" VARCHAR(1000) NOT NULL,
    "checksum" INTEGER,
    "installed_by" VARCHAR(100) NOT NULL,
    "installed_on" TIMESTAMP NOT NULL DEFAULT getdate(),
    "execution_time" INTEGER NOT NULL,
    "success" BOOLEAN NOT NULL
);
ALTER TABLE "public"."flyway_schema_history" ADD CONSTRAINT "flyway_schema_history_pk" PRIMARY KEY ("installed_rank");"""
MISSING_ON_REDSHIFT = {"PG_TRY_ADVISORY_LOCK", "PG_ADVISORY_LOCK", "PG_ADVISORY_UNLOCK", "CLOCK_TIMESTAMP", "TO_REGCLASS"}
LOCK_STATEMENT = re.compile(r'lock table "[^"]+"\.dbops_lock', re.I)
# Redshift's `SET search_path TO schema [, ...]`, every name quoted; sqlglot reads a SET of a list as a command.
SEARCH_PATH_STATEMENT = re.compile(r'SET search_path TO "(?:[^"]|"")*"(?:, "(?:[^"]|"")*")*')


def redshift_problems(sql: str) -> list[str]:
    """Why Redshift would refuse `sql`, as far as sqlglot's redshift dialect and Redshift's gaps tell ([] if none)."""
    try:
        tree = sqlglot.parse_one(sql, read="redshift", error_level=sqlglot.ErrorLevel.RAISE)
    except sqlglot.errors.SqlglotError as exc:
        return [f"does not parse: {str(exc).splitlines()[0]}"]
    problems = []
    if isinstance(tree, exp.Command) and not (LOCK_STATEMENT.fullmatch(sql.strip()) or SEARCH_PATH_STATEMENT.fullmatch(sql.strip())):
        problems.append("sqlglot could only read it as an opaque command")
    if isinstance(tree, exp.Create) and str(tree.args.get("kind", "")).upper() == "INDEX":
        problems.append("Redshift has no indexes")
    if tree.find(exp.OnConflict):
        problems.append("Redshift has no ON CONFLICT")
    if tree.find(exp.Returning):
        problems.append("Redshift has no RETURNING")
    for function in tree.find_all(exp.Func):
        name = (function.name if isinstance(function, exp.Anonymous) else function.sql_name()).upper()
        if name in MISSING_ON_REDSHIFT:
            problems.append(f"Redshift has no {name.lower()}()")
    return problems


def test_history_table_is_flyways_redshift_table() -> None:
    flyway = [s.strip() for s in FLYWAY_REDSHIFT.split(";") if s.strip()]
    ours = history_ddl(Dialect.REDSHIFT, "public", "flyway_schema_history")
    assert ours == [flyway[0].replace(" SORTKEY,", ",") + ' SORTKEY ("installed_rank")', flyway[1]]
    table = sqlglot.parse_one(ours[0], read="redshift")
    columns = [(c.name, c.args["kind"].sql("redshift")) for c in table.find_all(exp.ColumnDef)]
    assert columns == [
        ("installed_rank", "INTEGER"), ("version", "VARCHAR(50)"), ("description", "VARCHAR(200)"),
        ("type", "VARCHAR(20)"), ("script", "VARCHAR(1000)"), ("checksum", "INTEGER"),
        ("installed_by", "VARCHAR(100)"), ("installed_on", "TIMESTAMP"), ("execution_time", "INTEGER"),
        ("success", "BOOLEAN"),
    ]
    assert table.find(exp.SortKeyProperty).sql("redshift") == 'SORTKEY("installed_rank")'
    assert "DEFAULT GETDATE()" in table.sql("redshift")


@pytest.mark.parametrize(
    "statement", history_ddl(Dialect.REDSHIFT, "ops", "schema_history") + audit_ddl(Dialect.REDSHIFT, "ops") + [audit_upgrade_ddl("ops")]
)
def test_redshift_ddl_parses_as_redshift(statement: str) -> None:
    assert redshift_problems(statement) == []


def test_the_checker_catches_what_redshift_lacks() -> None:
    postgres_only = history_ddl("postgresql", "public", "flyway_schema_history")[2]
    assert redshift_problems(postgres_only) == ["Redshift has no indexes"]
    assert redshift_problems("insert into t (a) values (%s) on conflict do nothing") == ["Redshift has no ON CONFLICT"]
    assert redshift_problems("delete from t where a = %s returning a") == ["Redshift has no RETURNING"]
    assert redshift_problems("select pg_try_advisory_lock(%s)") == ["Redshift has no pg_try_advisory_lock()"]
    assert redshift_problems('CREATE TABLE t ("a" INT NOT NULL SORTKEY)')
    assert redshift_problems('lock table "public".dbops_lock') == []


@pytest.fixture
def sent_to_redshift(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every SQL text dbops passes to redshift_connector, while the rig's PostgreSQL poses as Redshift."""
    sent: list[str] = []
    original = redshift_connector.Cursor.execute

    def as_redshift(cursor, operation, args=None, *rest, **kwargs):
        sent.append(operation)
        translated = operation.replace("select version(),", f"select '{REDSHIFT_VERSION}',")
        translated = re.sub(r'\) SORTKEY \("[^"]+"\)$', ")", translated).replace("getdate()", "now()")
        return original(cursor, translated, args, *rest, **kwargs)

    monkeypatch.setattr(redshift_connector.Cursor, "execute", as_redshift)
    return sent


def test_every_statement_dbops_sends_in_the_redshift_dialect_is_valid_redshift(rs_db, scripts, sent_to_redshift) -> None:
    folder = scripts({
        "V1__sales.sql": "create table sales (id int, note varchar(20));\ninsert into sales values (1, '10% off');",
        "V2__vacuum.sql": "vacuum sales;",
        "U2__vacuum.sql": "select 1;",
        "R__notes.sql": "create or replace view notes as select note from sales;",
    })
    engine = Engine(open_target(rs_db.url), Settings(locations=[str(folder)], schema="warehouse_ops"))
    with engine.session() as session:
        assert session.dialect == Dialect.REDSHIFT
    assert len(list(engine.migrate())) == 3
    engine.validate()
    (folder / "V3__bad.sql").write_text("vacuum no_such_table;")
    with pytest.raises(MigrationFailed):
        list(Engine(engine.target, engine.settings).migrate())
    assert [e.script for e in Engine(engine.target, engine.settings).plan(failures=True).failed_attempts()] == ["V3__bad.sql"]
    (folder / "V3__bad.sql").unlink()
    (folder / "V1__sales.sql").write_text("create table sales (id int, note varchar(20)); -- reviewed\ninsert into sales values (1, '10% off');")
    assert len(Engine(engine.target, engine.settings).repair()) == 2
    assert len(Engine(engine.target, engine.settings).undo()) == 1
    Engine(engine.target, Settings(locations=[str(folder)], schema="legacy")).baseline("5")
    with psycopg.connect(rs_db.pg_url) as conn:
        assert conn.execute("select type, description from legacy.flyway_schema_history order by installed_rank").fetchall() == [
            ("SCHEMA", "<< Flyway Schema Creation >>"), ("BASELINE", "<< Flyway Baseline >>"),
        ]
    holder = make_lock(engine.target, "warehouse_ops", "flyway_schema_history")
    holder.acquire(5)
    try:
        with pytest.raises(LockTimeout):
            make_lock(engine.target, "warehouse_ops", "flyway_schema_history").acquire(0.3, lambda message: None)
    finally:
        holder.release()

    user_sql = {s.sql for script in folder.iterdir() for s in _statements(script.read_text())} | {
        "create table sales (id int, note varchar(20))", "vacuum no_such_table", "create or replace view notes as select note from sales",
    }
    bookkeeping = [sql for sql in sent_to_redshift if sql not in user_sql]
    kinds = {
        "history table": 'CREATE TABLE "warehouse_ops"."flyway_schema_history"', "primary key": "ADD CONSTRAINT",
        "audit table": '"warehouse_ops".dbops_audit (', "schema": 'create schema if not exists "legacy"', "run lock": "lock table",
        "lock holder": "svv_transactions", "history row": 'insert into "warehouse_ops"."flyway_schema_history"',
        "failed row fixed": 'update "warehouse_ops"."flyway_schema_history" set "success"',
        "repair": 'delete from "warehouse_ops"."flyway_schema_history"', "audit row": 'insert into "warehouse_ops".dbops_audit',
        "audit outcome": 'update "warehouse_ops".dbops_audit set "status" = %s, "error" = %s, "finished_at"',
        "interrupted attempts": 'update "warehouse_ops".dbops_audit set "status" = %s, "error" = %s where',
        "owner column": "pg_catalog.pg_attribute", "failed attempts": 'max(case when "status" <> %s',
        "default schema": 'SET search_path TO "warehouse_ops", ',
    }
    assert {kind for kind, marker in kinds.items() if any(marker in sql for sql in bookkeeping)} == set(kinds)
    problems = {sql: redshift_problems(sql) for sql in bookkeeping}
    assert {sql: found for sql, found in problems.items() if found} == {}


def _statements(text: str):
    from dbops.scripts.statements import split

    return split(text)
