"""Which statements cannot run in a transaction block, per dialect; and what must not be mistaken for one."""
from __future__ import annotations

import pytest

from dbops.scripts.statements import may_hold_non_transactional, normalize, split

RS, PG = "redshift", "postgresql"

# (script, what Redshift refuses in a transaction, what PostgreSQL refuses) — one statement each.
DETECTED = [
    ("VACUUM;", "VACUUM", "VACUUM"),
    ("vacuum delete only sales to 75 percent", "VACUUM", "VACUUM"),
    ("  \n\tVaCuUm   FULL\n  sales  ;  ", "VACUUM", "VACUUM"),
    ("-- nightly\nvacuum sort only sales;", "VACUUM", "VACUUM"),
    ("/* reclaim\n   space */ VACUUM REINDEX listing;", "VACUUM", "VACUUM"),
    ("vacuum (analyze, verbose) sales", "VACUUM", "VACUUM"),
    ("vacuum sales -- keeps the sort order", "VACUUM", "VACUUM"),
    ("create database analytics", "CREATE DATABASE", "CREATE DATABASE"),
    ("CREATE DATABASE sales_db FROM DATASHARE salesshare OF NAMESPACE 'a1b2'", "CREATE DATABASE", "CREATE DATABASE"),
    ("drop database if exists old_db", "DROP DATABASE", "DROP DATABASE"),
    ("ALTER DATABASE tickit RENAME TO newtickit", "ALTER DATABASE", None),
    ("alter database tickit connection limit 10", "ALTER DATABASE", None),
    ("ALTER DATABASE warehouse SET TABLESPACE fast", None, "ALTER DATABASE SET TABLESPACE"),
    ("ALTER TABLE sales APPEND FROM staging_sales", "ALTER TABLE APPEND", None),
    ("alter table public.sales\n  append from public.staging ignoreextra", "ALTER TABLE APPEND", None),
    ("ALTER TABLE users ALTER COLUMN name TYPE varchar(300)", "ALTER TABLE ALTER COLUMN TYPE", None),
    ('alter table "My Schema"."Users" alter column "full name" type varchar(300)', "ALTER TABLE ALTER COLUMN TYPE", None),
    ("ALTER TABLE users ALTER COLUMN name ENCODE zstd", "ALTER TABLE ALTER COLUMN ENCODE", None),
    (
        "CREATE EXTERNAL TABLE spectrum.sales (id int) STORED AS PARQUET LOCATION 's3://bucket/sales/'",
        "CREATE EXTERNAL TABLE", None,
    ),
    (
        "ALTER TABLE spectrum.sales ADD PARTITION (saledate='2024-01-01') LOCATION 's3://bucket/sales/2024-01-01/'",
        "ALTER TABLE ADD/DROP PARTITION", None,
    ),
    ("alter table spectrum.sales add if not exists partition (d='x') location 's3://b/x/'", "ALTER TABLE ADD/DROP PARTITION", None),
    ("ALTER TABLE spectrum.sales SET LOCATION 's3://bucket/new/'", "ALTER EXTERNAL TABLE", None),
    ("alter table spectrum.sales set file\n  format parquet", "ALTER EXTERNAL TABLE", None),
    ("DROP EXTERNAL TABLE spectrum.sales", "DROP EXTERNAL TABLE", None),
    (
        "CREATE EXTERNAL SCHEMA spectrum FROM DATA CATALOG DATABASE 'spectrumdb' "
        "IAM_ROLE 'arn:aws:iam::123456789012:role/spectrum' CREATE EXTERNAL DATABASE IF NOT EXISTS",
        "CREATE EXTERNAL SCHEMA", None,
    ),
    ("DROP SCHEMA spectrum DROP EXTERNAL DATABASE", "DROP EXTERNAL SCHEMA", None),
    ("CREATE OR REPLACE LIBRARY f_urlparse LANGUAGE plpythonu FROM 's3://bucket/urlparse3-1.0.3.zip'", "CREATE LIBRARY", None),
    ("drop library f_urlparse", "DROP LIBRARY", None),
    ("CREATE DATASHARE salesshare", "CREATE DATASHARE", None),
    (
        "CREATE IDENTITY PROVIDER oauth_standard TYPE azure NAMESPACE 'aad' PARAMETERS '{\"issuer\":\"x\"}'",
        "IDENTITY PROVIDER", None,
    ),
    ("drop identity provider oauth_standard", "IDENTITY PROVIDER", None),
    ("create index concurrently orders_customer_idx on orders (customer_id)", None, "CREATE INDEX CONCURRENTLY"),
    ("CREATE UNIQUE INDEX CONCURRENTLY users_email ON users (email)", None, "CREATE INDEX CONCURRENTLY"),
    ("DROP INDEX CONCURRENTLY IF EXISTS users_email", None, "DROP INDEX CONCURRENTLY"),
    ("REINDEX TABLE CONCURRENTLY orders", None, "REINDEX CONCURRENTLY"),
    ("REINDEX DATABASE warehouse", None, "REINDEX DATABASE"),
    ("reindex (verbose) system warehouse", None, "REINDEX DATABASE"),
    ("CREATE TABLESPACE fast LOCATION '/ssd'", None, "TABLESPACE"),
    ("ALTER SYSTEM SET work_mem = '64MB'", None, "ALTER SYSTEM"),
    ("ALTER TABLE measurements DETACH PARTITION measurements_2023 CONCURRENTLY", None, "DETACH PARTITION CONCURRENTLY"),
    ("CREATE SUBSCRIPTION orders_sub CONNECTION 'host=replica dbname=shop' PUBLICATION orders_pub", None, "SUBSCRIPTION"),
    ("ALTER SUBSCRIPTION orders_sub REFRESH PUBLICATION", None, "SUBSCRIPTION"),
    ("CLUSTER", None, "CLUSTER (all tables)"),
    ("discard all", None, "DISCARD ALL"),
]

NOT_DETECTED = [
    "select 'VACUUM'",
    "insert into audit_log values ('create database analytics')",
    "create function f() returns void as $$ begin vacuum; end $$ language plpgsql",
    "create function g() returns int as $body$ select 1; -- create database x;\n vacuum; $body$ language sql",
    "do $$ begin execute 'vacuum sales'; end $$",
    "select $tag$ vacuum; create database x; $tag$",
    "-- vacuum sales\nselect 1",
    "/* create database x; */ create table x (id int)",
    'create table "vacuum" (id int)',
    'alter table "staging append from sales" rename to staging',
    'alter table t rename column "alter column c type" to d',
    "ALTER TABLE users ALTER COLUMN name SET DEFAULT 'n/a'",
    "alter table users alter column name set not null",
    "comment on table sales is 'run VACUUM after every load'",
    "create view notes as select 'drop database x' as note",
    "analyze sales",
    "update sales set note = 'alter table a append from b'",
    "create table vacuum_log (id int)",
    "drop table database_list",
    "grant create on database warehouse to etl",
    "select E'create database x'",
    "ALTER TABLE users ADD COLUMN nickname varchar(40)",
    "alter table users rename column nickname to alias",
    "create index users_name on users (name)",
    "create table partitioned (id int) partition by range (id)",
    "cluster orders using orders_pkey",
    "create type mood as enum ('sad', 'ok')",
    "create external_things (id int)",
]


def only_statement(sql: str):
    statements = split(sql)
    assert len(statements) == 1, [s.sql for s in statements]
    return statements[0]


@pytest.mark.parametrize(("sql", "on_redshift", "on_postgresql"), DETECTED, ids=[d[0][:40] for d in DETECTED])
def test_statements_that_cannot_run_in_a_transaction_are_detected(sql: str, on_redshift, on_postgresql) -> None:
    statement = only_statement(sql)
    assert may_hold_non_transactional(sql)
    assert may_hold_non_transactional(sql, RS) or not on_redshift
    assert may_hold_non_transactional(sql, PG) or not on_postgresql
    assert statement.non_transactional_on(RS) == on_redshift
    assert statement.non_transactional_on(PG) == on_postgresql
    assert statement.non_transactional == (on_redshift or on_postgresql)


@pytest.mark.parametrize("sql", NOT_DETECTED, ids=[s[:40] for s in NOT_DETECTED])
def test_lookalikes_in_strings_bodies_comments_and_names_are_not_detected(sql: str) -> None:
    statement = only_statement(sql)
    assert statement.non_transactional is None
    assert statement.non_transactional_on(RS) is None and statement.non_transactional_on(PG) is None


def test_the_corpus_is_large_enough() -> None:
    assert len(DETECTED) + len(NOT_DETECTED) >= 40 and len(DETECTED) >= 20 and len(NOT_DETECTED) >= 20


def test_a_script_is_split_at_semicolons_outside_strings_bodies_and_comments() -> None:
    script = (
        "-- header; with a semicolon\n"
        "create table notes (body varchar(100));\n"
        "insert into notes values ('a; b'), ($$c; d$$);\n"
        "create function f() returns int as $fn$\n  select 1; -- vacuum;\n$fn$ language sql;\n"
        "/* vacuum notes; */\n"
        "VACUUM notes;\n"
        "  ;\n"
        "analyze notes"
    )
    statements = split(script)
    assert [s.line for s in statements] == [2, 3, 4, 8, 10]
    assert [s.non_transactional for s in statements] == [None, None, None, "VACUUM", None]
    assert statements[1].sql == "insert into notes values ('a; b'), ($$c; d$$)"
    assert statements[3].sql == "VACUUM notes"
    assert statements[4].neutral


def test_a_nested_block_comment_is_one_comment_as_in_postgresql() -> None:
    """The splitter ended the comment at the first `*/`, so `still comment */` was sent as a statement (line 2)."""
    script = (
        "create table a(id int);\n/* outer /* inner */ still comment; */\ncreate table b(id int);\n"
        "select '/* not a comment'; /* one /* two /* three */ */ vacuum; */ select 2;"
    )
    statements = split(script)
    assert [(s.line, s.sql) for s in statements] == [
        (1, "create table a(id int)"), (3, "create table b(id int)"), (4, "select '/* not a comment'"), (4, "select 2"),
    ]
    assert [s.non_transactional for s in statements] == [None] * 4
    assert normalize("select 1 /* a /* b */ c */ + 2") == "SELECT 1 + 2"


def test_scripts_without_any_trigger_word_need_no_parsing() -> None:
    assert not may_hold_non_transactional("create table a (id int);\ninsert into a values (1);")
    assert may_hold_non_transactional("create table a (id int);\nvacuum a;")
