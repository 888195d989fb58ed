"""Long sessions through redshift_connector: thousands of distinct statements on one connection.

redshift_connector 2.1.11 kept a named prepared statement per distinct statement and crashed with a
KeyError once it had to evict one after a DDL statement (its LRU list kept keys the DDL had dropped).
The 5,000-statement script is in tests/reliability/test_hostile_input.py.
"""
from __future__ import annotations

from dbops.targets.redshift import RedshiftTarget
from tests.targets.test_redshift_engine import dbops, rows


def test_3000_scripts_apply_in_one_run_with_every_history_row(rs_db, scripts, capsys) -> None:
    files = {"V1__table.sql": "create table t (n int);\n"}
    files.update({f"V{n}__row_{n}.sql": f"insert into t values ({n});\n" for n in range(2, 3001)})
    folder = scripts(files)
    code, out, err = dbops(capsys, rs_db.url, folder, "migrate", "--direct")
    assert code == 0, err
    assert "Applied 3000 migration(s)" in out
    assert rows(rs_db, "select count(*), count(distinct n) from t") == [(2999, 2999)]
    assert rows(rs_db, "select count(*), count(distinct version), bool_and(success) from flyway_schema_history "
                       "where type = 'SQL'") == [(3000, 3000, True)]
    assert rows(rs_db, "select count(*) from dbops_audit where status = 'success'") == [(3000,)]


def test_a_session_survives_ddl_followed_by_more_distinct_statements_than_any_driver_cache(rs_url) -> None:
    session = RedshiftTarget(rs_url).connect()
    try:
        session.execute("create table t (n int)")
        for n in range(1200):
            session.execute(f"insert into t values ({n})")
        session.commit()
        assert session.query("select count(*) from t") == [(1200,)]
    finally:
        session.close()


def test_the_driver_keeps_no_prepared_statement_on_the_server(rs_url) -> None:
    """dbops runs redshift_connector with max_prepared_statements=0; this fails if the driver stops honouring it."""
    session = RedshiftTarget(rs_url).connect()
    try:
        for n in range(50):
            session.query(f"select {n}")
            session.query("select %s::int", (n,))
        assert session.query("select count(*) from pg_prepared_statements") == [(0,)]
    finally:
        session.close()
