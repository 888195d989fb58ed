"""README's "Adopting a Flyway project on Redshift", run as written: the GRANTs, the safe first run, `dbops ui`.

The database is the test PostgreSQL, reached as the migration user with psycopg (pgbouncer, which the Redshift
rig puts in front, logs every client in as the same server user, so privileges cannot be tried through it); the
GRANT statements and the commands are the README's, with only the URL and the database name swapped.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import psycopg
import pytest

from tests.reliability.test_hostile_input import flyway_checksum
from tests.services import Service, free_port, graphql, wait_for

ROOT = Path(__file__).resolve().parents[1]
DBOPS = str(Path(sys.executable).parent / "dbops")
V1 = "create table customers (id int, name varchar(100));\n"
V2 = "create table orders (id int, customer_id int);\n"
FLYWAY_DDL = """
create schema analytics;
create table analytics.flyway_schema_history (
    installed_rank integer not null, version varchar(50), description varchar(200) not null,
    type varchar(20) not null, script varchar(1000) not null, checksum integer,
    installed_by varchar(100) not null, installed_on timestamp not null default now(),
    execution_time integer not null, success boolean not null);
alter table analytics.flyway_schema_history add constraint flyway_schema_history_pk primary key (installed_rank);
create index flyway_schema_history_s_idx on analytics.flyway_schema_history (success);
insert into analytics.flyway_schema_history values
    (0, null, '<< Flyway Schema Creation >>', 'SCHEMA', '"analytics"', null, 'admin', now(), 0, true),
    (1, '1', 'customers', 'SQL', 'V1__customers.sql', %(v1)s, 'admin', now(), 12, true);
create table analytics.customers (id int, name varchar(100));
"""


def section() -> str:
    readme = (ROOT / "README.md").read_text()
    return re.search(r"## Adopting a Flyway project on Redshift\n(.*?)\n## ", readme, re.S).group(1)


def grants() -> list[str]:
    block = re.search(r"```sql\n(.*?)```", section(), re.S).group(1)
    return [s.strip() for s in block.split(";") if s.strip()]


def first_run() -> tuple[dict[str, str], list[list[str]]]:
    """The exports and the commands of the safe-first-run block."""
    block = re.search(r"\*\*A safe first run\*\*.*?```bash\n(.*?)```", section(), re.S).group(1)
    exports, commands = {}, []
    for line in block.splitlines():
        line = line.split("  #")[0].strip()
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            exports[name] = value.strip("'")
        elif line:
            commands.append(line.split())
    return exports, commands


@pytest.fixture
def adopted(pg_server, tmp_path, dbops_home):
    """A database that Flyway migrated (its history table, V1 applied), the README's GRANTs run on it as a
    superuser, and the project folder with flyway.conf and a new V2."""
    database = pg_server.create_database()
    role = f"dbops_migrator_{database}"  # roles are per server; tests run in parallel
    with psycopg.connect(pg_server.url(database), autocommit=True) as admin:
        admin.execute(FLYWAY_DDL.replace("%(v1)s", str(flyway_checksum(V1.encode()))))
        for statement in grants():
            admin.execute(statement.replace("DATABASE warehouse", f'DATABASE "{database}"').replace("dbops_migrator", role))
    project = tmp_path / "project"
    (project / "sql").mkdir(parents=True)
    (project / "flyway.conf").write_text("flyway.schemas=analytics\nflyway.locations=filesystem:sql\n")
    (project / "sql" / "V1__customers.sql").write_text(V1)
    (project / "sql" / "V2__orders.sql").write_text(V2)
    url = pg_server.url(database).replace("postgresql://postgres@", f"postgresql://{role}@", 1)
    assert f"{role}@" in url
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBOPS_", "DAGSTER_"))}
    env.update(DBOPS_HOME=str(dbops_home), DAGSTER_HOME=str(dbops_home / "dagster_home"))
    yield project, url, env, pg_server.url(database), role
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as admin:
        admin.execute(f'drop database if exists "{database}" with (force)')
        admin.execute(f'drop role if exists "{role}"')


def dbops(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([DBOPS, *args], cwd=project, env=env, capture_output=True, text=True, timeout=600)


def test_the_readme_grants_and_safe_first_run_work_as_the_migration_user(adopted) -> None:
    project, url, env, admin_url, role = adopted
    exports, commands = first_run()
    assert set(exports) == {"DBOPS_URL", "DBOPS_PASSWORD"} and exports["DBOPS_URL"].startswith("redshift://dbops_migrator@")
    assert [c[:2] for c in commands] == [["dbops", "info"], ["dbops", "validate"], ["dbops", "migrate"], ["dbops", "migrate"]]
    env = {**env, "DBOPS_URL": url, "DBOPS_PASSWORD": exports["DBOPS_PASSWORD"], "DBOPS_COMMIT": "c0ffee01"}
    outputs = []
    for command in commands:
        done = dbops(project, env, *command[1:])
        assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
        assert "Traceback" not in done.stderr and exports["DBOPS_PASSWORD"] not in done.stdout + done.stderr
        outputs.append(done.stdout)
    info, validate, dry_run, migrate = outputs
    assert re.search(r"1 +customers .*Success", info) and re.search(r"2 +orders .*Pending", info), info
    assert "OK (1 pending)" in validate
    assert "create table orders" in dry_run and "nothing was changed" in dry_run
    assert "Dagster run:" in migrate
    with psycopg.connect(admin_url) as check:
        rows = check.execute(
            "select installed_rank, script, checksum, installed_by, success from analytics.flyway_schema_history order by 1"
        ).fetchall()
        assert rows[1:] == [(1, "V1__customers.sql", flyway_checksum(V1.encode()), "admin", True),
                            (2, "V2__orders.sql", flyway_checksum(V2.encode()), role, True)]
        assert check.execute("select to_regclass('analytics.orders') is not null").fetchone() == (True,)
        assert check.execute("select commit_id from analytics.dbops_audit where script = 'V2__orders.sql'").fetchone() == ("c0ffee01",)


def test_without_create_on_the_schema_the_error_says_so(adopted) -> None:
    project, url, env, admin_url, role = adopted
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'revoke create on schema analytics from "{role}"')
    done = dbops(project, {**env, "DBOPS_URL": url}, "migrate", "--direct")
    assert done.returncode != 0
    assert "permission denied for schema analytics" in done.stderr and "Traceback" not in done.stderr
    with psycopg.connect(admin_url) as check:
        assert check.execute("select count(*) from analytics.flyway_schema_history").fetchone() == (2,)  # nothing recorded


def test_dbops_ui_serves_the_project_against_the_database(adopted) -> None:
    project, url, env, _, _ = adopted
    port = free_port()
    ui = Service.start("ui", [DBOPS, "ui"], project, {**env, "DBOPS_URL": url, "DBOPS_UI_PORT": str(port)}, project)

    def serving() -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5) as reply:
            return reply.status == 200

    try:
        wait_for("dbops ui serving", serving, [ui], 240)
        nodes = graphql(port, "{ assetNodes { assetKey { path } } }")["assetNodes"]
        assert {"v1__customers", "v2__orders"} <= {n["assetKey"]["path"][-1] for n in nodes}
    finally:
        os.killpg(ui.process.pid, signal.SIGINT)  # Ctrl+C, as the README says; stop() then ends what is left
        try:
            ui.process.wait(60)
        except subprocess.TimeoutExpired:
            ui.stop()
    text = ui.log.read_text()
    assert f"http://127.0.0.1:{port}" in text
    assert "will be removed" not in text and "will not be used" not in text and "Traceback" not in text
