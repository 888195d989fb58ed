"""The default schema on the Dagster path: `dbops migrate` (no --direct) with flyway.schemas, on both drivers."""
from __future__ import annotations

import psycopg
import pytest
from dagster import AssetKey, DagsterInstance

from dbops.cli import main
from tests.orchestration.support import definitions


@pytest.fixture
def project(tmp_path, monkeypatch, scripts, dbops_home):
    """A Flyway project as the working directory: flyway.conf naming two schemas, scripts with unqualified names."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".dbops").symlink_to(dbops_home)
    monkeypatch.setenv("DAGSTER_HOME", "unset")  # recorded, so the value the run sets is undone afterwards
    monkeypatch.delenv("DAGSTER_HOME")
    for name in ("DBOPS_URL", "DBOPS_PASSWORD", "DBOPS_LOCATIONS", "DBOPS_CONFIG", "DBOPS_SCHEMA"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "flyway.conf").write_text("flyway.schemas=analytics,staging\nflyway.locations=filesystem:sql\n")
    scripts({
        "V1__users.sql": "create table users (id int, name varchar(50));\n",
        "V2__seed.sql": "insert into users values (1, 'ann');\n",
    })
    return tmp_path


def test_the_dagster_run_applies_into_the_default_schema_and_creates_the_others(project, any_db, capsys) -> None:
    code = main(["--url", any_db.url, "migrate"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Applied 2 migration(s)" in out
    with psycopg.connect(any_db.pg_url) as conn:
        assert conn.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_name in ('users', 'flyway_schema_history') order by 1, 2"
        ).fetchall() == [("analytics", "flyway_schema_history"), ("analytics", "users")]
        assert conn.execute("select name from analytics.users").fetchall() == [("ann",)]
        assert conn.execute(
            "select installed_rank, type, script from analytics.flyway_schema_history order by installed_rank"
        ).fetchall() == [(0, "SCHEMA", '"analytics","staging"'), (1, "SQL", "V1__users.sql"), (2, "SQL", "V2__seed.sql")]
        assert conn.execute("select 1 from pg_namespace where nspname = 'staging'").fetchall() == [(1,)]
    with DagsterInstance.from_config(str(project / ".dbops" / "dagster_home")) as instance:
        [run] = instance.get_runs()
    config = run.run_config["resources"]["dbops"]["config"]
    assert (config["history_schema"], config["schemas"]) == ("analytics", ["analytics", "staging"])


def test_lineage_puts_unqualified_tables_in_the_default_schema(project, pg_url) -> None:
    graph = definitions(project / "sql", pg_url, history_schema="analytics").resolve_asset_graph()
    assert graph.has(AssetKey(["warehouse", "analytics", "users"]))
    assert not graph.has(AssetKey(["warehouse", "public", "users"]))
