"""The example warehouse in sql/ applies to PostgreSQL, grants what it says, re-runs as a no-op and lints clean."""
from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from dbops.cli import main
from dbops.config import Settings
from dbops.engine.engine import Engine
from dbops.targets import open_target

SQL = Path(__file__).parent.parent / "sql"
PLACEHOLDERS = {"recent_sales_days": "90"}
TABLES = {
    ("analytics", "dim_date"), ("analytics", "dim_customer"), ("analytics", "dim_product"),
    ("analytics", "fact_sales"), ("staging", "sales_raw"),
}
VIEWS = {("analytics", "v_current_customers"), ("analytics", "v_daily_sales"), ("analytics", "v_recent_sales")}


def engine_for(url: str, **placeholders: str) -> Engine:
    return Engine(open_target(url), Settings(locations=[str(SQL)], placeholders={**PLACEHOLDERS, **placeholders}))


def rows(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def execute(url: str, sql: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(sql)


def reporting_group(url: str) -> str:
    return f"{conninfo_to_dict(url)['dbname']}_reporting"


def migrations() -> list[str]:
    """Every migration in sql/ (callbacks are not migrations)."""
    return [p.name for p in SQL.glob("*.sql") if p.name[0] in "VR"]


@pytest.fixture
def warehouse(pg_url: str) -> str:
    """A database the example has been applied to."""
    applied = [r.script for r in engine_for(pg_url).migrate()]
    assert sorted(applied) == sorted(migrations())
    return pg_url


def test_every_script_is_applied_and_recorded_as_success(warehouse: str) -> None:
    plan = engine_for(warehouse).plan()
    assert {e.script: e.state for e in plan.entries} == {name: "Success" for name in migrations()}
    assert len(migrations()) >= 10
    assert rows(warehouse, "select count(*) from flyway_schema_history where not success") == [(0,)]


def test_tables_views_and_columns_exist(warehouse: str) -> None:
    found = rows(warehouse, "select table_schema, table_name, table_type from information_schema.tables "
                            "where table_schema in ('analytics', 'staging')")
    assert {(s, t) for s, t, kind in found if kind == "BASE TABLE"} == TABLES
    assert {(s, t) for s, t, kind in found if kind == "VIEW"} == VIEWS
    email, channel = rows(warehouse, "select character_maximum_length from information_schema.columns "
                                     "where table_schema = 'analytics' and (table_name, column_name) in "
                                     "(('dim_customer', 'email'), ('fact_sales', 'channel')) order by table_name")
    assert (email, channel) == ((320,), (20,))
    assert rows(warehouse, "select customer_key, full_name from analytics.dim_customer") == [(-1, "Unknown customer")]
    definition = rows(warehouse, "select pg_get_viewdef('analytics.v_recent_sales')")[0][0]
    assert "90 days" in definition


def test_reporting_group_reads_analytics_and_nothing_else(warehouse: str) -> None:
    group = reporting_group(warehouse)
    assert rows(warehouse, "select rolcanlogin from pg_roles where rolname = %s", (group,)) == [(False,)]
    assert rows(warehouse, "select has_schema_privilege(%s, 'analytics', 'USAGE'), "
                           "has_schema_privilege(%s, 'staging', 'USAGE')", (group, group)) == [(True, False)]
    for schema, name in sorted(TABLES | VIEWS):
        relation = f"{schema}.{name}"
        can_read, can_write = rows(warehouse, "select has_table_privilege(%s, %s, 'SELECT'), "
                                              "has_table_privilege(%s, %s, 'INSERT')", (group, relation, group, relation))[0]
        assert (relation, can_read, can_write) == (relation, schema == "analytics", False)


def test_rerun_applies_nothing(warehouse: str) -> None:
    assert list(engine_for(warehouse).migrate()) == []


def test_new_placeholder_value_recreates_the_repeatable_views_and_grants_again(warehouse: str) -> None:
    group = reporting_group(warehouse)
    execute(warehouse, f'revoke select on analytics.dim_date from "{group}"')
    assert rows(warehouse, "select has_table_privilege(%s, 'analytics.dim_date', 'SELECT')", (group,)) == [(False,)]
    applied = [r.script for r in engine_for(warehouse, recent_sales_days="30").migrate()]
    assert applied == ["R__reporting_views.sql"]
    assert "30 days" in rows(warehouse, "select pg_get_viewdef('analytics.v_recent_sales')")[0][0]
    assert rows(warehouse, "select has_table_privilege(%s, 'analytics.dim_date', 'SELECT')", (group,)) == [(True,)]


def test_applies_to_a_second_database_on_the_same_server(warehouse: str, pg_server) -> None:
    other = pg_server.url(pg_server.create_database())
    assert sorted(r.script for r in engine_for(other).migrate()) == sorted(migrations())
    assert rows(other, "select count(*) from pg_roles where rolname in (%s, %s)",
                (reporting_group(warehouse), reporting_group(other))) == [(2,)]


def test_lint_finds_no_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--locations", str(SQL), "lint"]) == 0
    assert "0 error(s)" in capsys.readouterr().out
