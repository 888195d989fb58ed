"""Which tables and views a script creates, alters or drops, and how many statements it has."""
from __future__ import annotations

import pytest

from dbops.orchestration.lineage import ALTERED, CREATED, DROPPED, dialect_for, script_facts
from dbops.scripts.statements import split
from dbops.targets.base import Dialect


def touched(sql: str, dialect: Dialect = Dialect.REDSHIFT) -> list[tuple[str, str, str]]:
    return [(str(t.table), t.action, t.kind) for t in script_facts(sql, dialect_for(dialect)).touches]


def test_create_table_and_view_qualified_or_in_the_default_schema():
    sql = "create table analytics.dim_date (id int);\ncreate or replace view v_dates as select id from analytics.dim_date;"
    assert touched(sql) == [("analytics.dim_date", CREATED, "table"), ("public.v_dates", CREATED, "view")]


def test_if_not_exists_quoted_names_and_materialized_views():
    sql = 'CREATE TABLE IF NOT EXISTS "Sales"."Orders" (id int); create materialized view mv_orders as select 1;'
    assert touched(sql) == [("Sales.Orders", CREATED, "table"), ("public.mv_orders", CREATED, "view")]


def test_alter_rename_and_drop_with_several_names():
    sql = "alter table s.a add column b int; alter table s.a rename to c; drop table if exists s.x, y cascade;"
    assert touched(sql) == [
        ("s.a", ALTERED, "table"),
        ("s.a", DROPPED, "table"),
        ("s.c", CREATED, "table"),
        ("s.x", DROPPED, "table"),
        ("public.y", DROPPED, "table"),
    ]


def test_temporary_tables_indexes_grants_and_comments_are_not_lineage():
    sql = (
        "create temp table scratch (a int); create local temporary table s2 (a int); create index i on t (a);\n"
        "grant select on all tables in schema s to group g; comment on table s.t is 'x; y';"
    )
    assert touched(sql) == []


def test_semicolons_in_strings_comments_and_dollar_bodies_do_not_split():
    sql = (
        "-- a comment; with a semicolon\n"
        "insert into t values ('a;b');\n"
        "create function f() returns int as $$ select 1; $$ language sql;\n"
        "/* block; comment */ select 1;\n"
    )
    facts = script_facts(sql, dialect_for(Dialect.POSTGRESQL))
    assert facts.statements == len(split(sql)) == 3


@pytest.mark.parametrize("dialect", list(Dialect))
def test_the_example_scripts_count_statements_as_the_engine_does(dialect):
    from dbops.scripts.migrations import PlaceholderContext, discover
    from dbops.scripts.sources import FolderSource

    catalog = discover(FolderSource(["sql"]).snapshot().files, PlaceholderContext(values={"recent_sales_days": "90"}))
    for migration in catalog.migrations:
        assert script_facts(migration.sql, dialect_for(dialect)).statements == len(migration.statements), migration.path


def test_text_the_tokenizer_rejects_gives_a_count_but_no_lineage():
    facts = script_facts("create table 'unterminated (a int);", dialect_for(Dialect.REDSHIFT))
    assert facts.touches == []
    assert facts.statements >= 1
