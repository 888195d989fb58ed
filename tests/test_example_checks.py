"""The example warehouse's checks (sql/*.sql.check) pass on PostgreSQL and through the Redshift rig, run again with
`dbops check`, and catch what they are about when it breaks."""
from __future__ import annotations

import psycopg
from psycopg.conninfo import conninfo_to_dict

from dbops.cli import main
from dbops.config import Settings
from dbops.engine.engine import Engine
from dbops.engine.recheck import applied_checks, recheck
from dbops.targets import open_target
from tests.rig import RigDatabase
from tests.test_example_sql import PLACEHOLDERS, SQL


def engine_for(url: str) -> Engine:
    return Engine(open_target(url), Settings(locations=[str(SQL)], placeholders=PLACEHOLDERS))


def test_the_example_has_checks_of_a_backfill_a_column_type_and_a_grant() -> None:
    checks = {c.where.removeprefix(f"{SQL}/"): c for m in engine_for("postgresql://nobody@/none").catalog.migrations for c in m.checks}
    assert set(checks) >= {
        "V11__backfill_sales_channel.sql.check:5",
        "V9__widen_customer_email.sql.check:6",
        "V8__grant_reporting_read_access.sql.check:7",
        "V8__grant_reporting_read_access.sql.check:14",
    }
    assert not checks["V11__backfill_sales_channel.sql.check:5"].always and checks["V9__widen_customer_email.sql.check:6"].always


def test_every_check_passes_as_the_example_is_applied_and_again_with_dbops_check(any_db: RigDatabase, capsys) -> None:
    results = list(engine_for(any_db.url).migrate())
    outcomes = [o for r in results for o in r.checks]
    assert len(outcomes) == 5 and all(o.passed for o in outcomes)
    args = ["--url", any_db.url, "--locations", str(SQL), "--placeholder", "recent_sales_days=90", "check"]
    assert main(args) == 0
    assert "4 check(s)" in capsys.readouterr().out  # the -- dbops:always ones

    group = f"{conninfo_to_dict(any_db.pg_url)['dbname']}_reporting"
    with psycopg.connect(any_db.pg_url, autocommit=True) as conn:
        conn.execute(f'revoke select on analytics.dim_product from "{group}"')
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "V8__grant_reporting_read_access.sql.check:14: check 'the reporting group may read every table and view in analytics' failed" in out
    assert "dim_product" in out
    [failed] = [r for r in recheck(engine_for(any_db.url), applied_checks(engine_for(any_db.url))) if not r.outcome.passed]
    assert failed.outcome.rows == [("dim_product",)]


def test_the_backfill_check_rolls_back_a_backfill_that_leaves_rows_behind(pg_url: str, scripts, capsys) -> None:
    """V11's check, against a copy of the example whose backfill misses one sale."""
    files = {p.name: p.read_text() for p in SQL.iterdir() if p.name.endswith((".sql", ".sql.check"))}
    files["V11__backfill_sales_channel.sql"] = files["V11__backfill_sales_channel.sql"].replace(
        "where channel is null", "where channel is null and sale_id > 1"
    )
    folder = scripts(files)
    settings = Settings(locations=[str(folder)], placeholders=PLACEHOLDERS, target_version="10")
    list(Engine(open_target(pg_url), settings).migrate())
    with psycopg.connect(pg_url) as conn:
        conn.execute("insert into analytics.dim_date values (20240101, date '2024-01-01', 2024, 1, 1, 1, 1, false)")
        conn.execute("insert into analytics.fact_sales values (1, 20240101, -1, -1, 1, 9.99, 9.99, timestamp '2024-01-01 10:00'), "
                     "(2, 20240101, -1, -1, 2, 5, 10, timestamp '2024-01-01 11:00')")
    args = ["--url", pg_url, "--locations", str(folder), "--placeholder", "recent_sales_days=90", "migrate", "--direct"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert f"{folder}/V11__backfill_sales_channel.sql.check:5: migration V11 (backfill sales channel) failed its check" in err
    assert "sales_without_channel" in err and "\n      1\n" in err
    with psycopg.connect(pg_url) as conn:
        applied = [r[0] for r in conn.execute("select script from flyway_schema_history order by installed_rank")]
        assert "V10__add_sales_channel.sql" in applied and "V11__backfill_sales_channel.sql" not in applied
        assert conn.execute("select count(*) from analytics.fact_sales where channel is null").fetchone() == (2,)
