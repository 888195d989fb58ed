"""`dbops -e SELECTOR migrate` through Dagster: one Dagster run per environment, tagged dbops/environment, made by
worker processes; no run stores any environment's password."""
from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from dagster import DagsterInstance

from dbops.cli import main
from tests.pg import PgServer

SCRIPTS = {
    "V1__orders.sql": "create table orders (id int);\n",
    "V2__customers.sql": "create table customers (id int);\n",
}
PASSWORDS = {"east": "east-Pw!1 only", "west": "west-Pw#2 only", "north": "north-Pw%3 only"}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scripts, dbops_home: Path, pg_server: PgServer) -> Path:
    """Three environments on the test server (trust auth: the passwords travel but are not checked) and one unreachable."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".dbops").symlink_to(dbops_home)
    for name in ("DAGSTER_HOME", "DBOPS_URL", "DBOPS_PASSWORD", "DBOPS_LOCATIONS", "DBOPS_CONFIG", "DBOPS_ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)
    scripts(SCRIPTS)
    lines = []
    for name, password in PASSWORDS.items():
        lines += [f"[environments.{name}]", f'url = "{pg_server.url(pg_server.create_database(name))}"', ""]
        monkeypatch.setenv(f"DBOPS_PASSWORD_{name.upper()}", password)
    lines += ["[environments.gone]", 'url = "postgresql://postgres@127.0.0.1:1/gone?connect_timeout=3"', ""]
    (tmp_path / "flyway.toml").write_text("\n".join(lines), encoding="utf-8")
    return tmp_path


def test_one_dagster_run_per_environment_tagged_with_it_and_no_other_password(project: Path, capsys) -> None:
    code = main(["-e", "*", "--json", "migrate", "--parallel", "2", "--commit", "feedbeef"])
    captured = capsys.readouterr()
    assert code == 3, captured.err
    document = json.loads(captured.out)
    by_name = {e["environment"]: e for e in document["environments"]}
    assert document["failed"] == ["gone"] and by_name["gone"]["status"] == "unreachable"
    for name in PASSWORDS:
        assert [a["script"] for a in by_name[name]["applied"]] == list(SCRIPTS)
        assert by_name[name]["run_id"]
    with DagsterInstance.from_config(str(project / ".dbops" / "dagster_home")) as instance:
        runs = {r.tags.get("dbops/environment"): r for r in instance.get_runs()}
        assert set(runs) == set(PASSWORDS)
        for name, run in runs.items():
            assert run.run_id == by_name[name]["run_id"]
            assert run.tags["dbops/commit"] == "feedbeef"
            stored = json.dumps([run.tags, run.run_config]) + "".join(repr(r) for r in instance.all_logs(run.run_id))
            for password in PASSWORDS.values():
                assert password not in stored, (name, password)
    for password in PASSWORDS.values():
        assert password not in captured.out + captured.err
    for name in PASSWORDS:
        with psycopg.connect(by_name[name]["target"].replace(":***@", "@")) as conn:
            assert conn.execute("select count(*) from flyway_schema_history where success").fetchone()[0] == 2
