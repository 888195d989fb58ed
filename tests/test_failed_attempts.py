"""A pending script's last failed attempt, from the audit table, where people look: `info`, `info --json`, `validate`."""
from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from dbops.cli import main
from dbops.engine.history import SCRIPTS_BY_NAME
from tests.rig import RigDatabase

ROOT = Path(__file__).resolve().parents[1]
BROKEN = "create table b (id int);\nselect * from missing;\n"
ERROR = 'relation "missing" does not exist'


@pytest.fixture
def run(monkeypatch, capsys):
    """Run `dbops ARGS` in-process (stdout is a pipe); returns (exit code, stdout, stderr)."""

    def invoke(url: str, folder: Path, *args: str) -> tuple[int, str, str]:
        monkeypatch.setenv("DBOPS_URL", url)
        monkeypatch.setenv("DBOPS_LOCATIONS", str(folder))
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def sql(db: RigDatabase, statement: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(db.pg_url, autocommit=True) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def on_a_terminal(url: str, folder: Path, *args: str) -> str:
    """`dbops ARGS` with its stdout on a pseudo-terminal, as a user at a shell sees it (rich tables)."""
    leader, follower = pty.openpty()
    env = {**os.environ, "DBOPS_URL": url, "DBOPS_LOCATIONS": str(folder), "COLUMNS": "250", "PYTHONPATH": str(ROOT)}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen([sys.executable, "-m", "dbops.cli", *args], stdout=follower, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(60) == 0, process.stderr.read()
    return re.sub(r"\x1b\[[0-9;]*m", "", b"".join(chunks).decode(errors="replace"))


def test_info_shows_a_pending_scripts_last_failed_attempt_until_it_is_applied(any_db, scripts, run) -> None:
    folder = scripts({"V1__ok.sql": "create table a (id int);", "V2__bad.sql": BROKEN})
    before = datetime.utcnow().replace(microsecond=0)
    code, _, err = run(any_db.url, folder, "migrate", "--direct", "--commit", "abc123")
    assert code == 1 and ERROR in err
    (run_id,) = sql(any_db, "select run_id from dbops_audit where script = 'V2__bad.sql'")[0]

    code, out, err = run(any_db.url, folder, "info", "--json")
    assert code == 0, err
    first, second = json.loads(out)["migrations"]
    assert (first["state"], first["last_failure"]) == ("Success", None)
    assert second["state"] == "Pending"
    failure = second["last_failure"]
    assert {k: failure[k] for k in ("status", "run_id", "source", "commit")} == {
        "status": "failed", "run_id": run_id, "source": "cli", "commit": "abc123",
    }
    assert failure["error"].startswith("sql/V2__bad.sql:2: ") or failure["error"].startswith(f"{folder}/V2__bad.sql:2: ")
    assert ERROR in failure["error"] and "\n" not in failure["error"]
    assert before - timedelta(seconds=5) <= datetime.fromisoformat(failure["at"]) <= datetime.utcnow() + timedelta(seconds=5)

    code, out, err = run(any_db.url, folder, "info")
    assert code == 0, err
    table = out[out.index("Last failed attempts"):]
    line = next(line for line in table.splitlines() if line.startswith("V2__bad.sql"))
    assert all(part in line for part in ("Pending", "failed", run_id, "cli", "abc123", ERROR)), line
    assert "V1__ok.sql" not in table

    (folder / "V2__bad.sql").write_text("create table b (id int);\n")
    code, _, err = run(any_db.url, folder, "migrate", "--direct", "--commit", "def456")
    assert code == 0, err
    code, out, _ = run(any_db.url, folder, "info", "--json")
    assert [(m["state"], m["last_failure"]) for m in json.loads(out)["migrations"]] == [("Success", None), ("Success", None)]
    code, out, _ = run(any_db.url, folder, "info")
    assert "Last failed attempts" not in out


def test_a_terminal_gets_the_failed_attempt_in_a_table(pg_url, scripts, run) -> None:
    folder = scripts({"V1__bad.sql": BROKEN})
    assert run(pg_url, folder, "migrate", "--direct", "--commit", "c0ffee01")[0] == 1
    screen = on_a_terminal(pg_url, folder, "info")
    assert "Last failed attempts" in screen
    row = next(line for line in screen[screen.index("Last failed attempts"):].splitlines() if "V1__bad.sql" in line)
    assert all(part in row for part in ("Pending", "failed", "c0ffee01", ERROR)), screen


def test_a_script_that_fails_again_shows_its_latest_attempt(pg_url, scripts, run) -> None:
    folder = scripts({"V1__bad.sql": BROKEN})
    assert run(pg_url, folder, "migrate", "--direct", "--commit", "first")[0] == 1
    (folder / "V1__bad.sql").write_text("select * from still_missing;\n")
    assert run(pg_url, folder, "migrate", "--direct", "--commit", "second")[0] == 1
    code, out, _ = run(pg_url, folder, "info", "--json")
    failure = json.loads(out)["migrations"][0]["last_failure"]
    assert failure["commit"] == "second" and 'relation "still_missing" does not exist' in failure["error"]


def test_validate_stays_ok_for_a_pending_script_but_warns_about_its_failed_attempt(any_db, scripts, run) -> None:
    folder = scripts({"V1__ok.sql": "create table a (id int);", "V2__bad.sql": BROKEN})
    assert run(any_db.url, folder, "migrate", "--direct", "--commit", "abc123")[0] == 1
    code, out, err = run(any_db.url, folder, "validate")
    assert code == 0 and "OK (1 pending)" in out
    warning = next(line for line in err.splitlines() if line.startswith("warning: "))
    assert warning.startswith("warning: V2__bad.sql is Pending: its last attempt failed at ")
    assert "cli, commit abc123): " in warning and ERROR in warning
    code, out, err = run(any_db.url, folder, "validate", "--json")
    document = json.loads(out)
    assert code == 0 and document["valid"] and document["warnings"] == [warning.removeprefix("warning: ")]


# The audit table as dbops created it before it had the history_table column.
PREVIOUS_AUDIT_DDL = """CREATE TABLE "public".dbops_audit (
    "run_id" VARCHAR(64) NOT NULL, "source" VARCHAR(20) NOT NULL, "commit_id" VARCHAR(64), "commit_author" VARCHAR(256),
    "commit_message" TEXT, "script" VARCHAR(1000) NOT NULL, "version" VARCHAR(50), "checksum" INT,
    "status" VARCHAR(20) NOT NULL, "error" TEXT, "started_at" TIMESTAMP NOT NULL, "finished_at" TIMESTAMP NOT NULL,
    "installed_by" VARCHAR(100) NOT NULL, "target" VARCHAR(1000)
)"""


def test_an_audit_table_from_the_previous_version_is_read_then_upgraded(any_db, scripts, run) -> None:
    folder = scripts({"V1__ok.sql": "create table a (id int);", "V2__bad.sql": BROKEN})
    sql(any_db, PREVIOUS_AUDIT_DDL)
    sql(any_db, "insert into dbops_audit values ('old-run', 'sensor', 'feed01', 'ada', 'm', 'V2__bad.sql', '2', 1, "
                "'failed', 'sql/V2__bad.sql:2: relation \"missing\" does not exist\nLINE 1: ...', now(), now(), 'postgres', 't')")
    code, out, err = run(any_db.url, folder, "info", "--json")  # read as it is: info changes nothing
    assert code == 0, err
    assert json.loads(out)["migrations"][1]["last_failure"]["commit"] == "feed01"
    assert not sql(any_db, "select 1 from information_schema.columns where table_name = 'dbops_audit' and column_name = 'history_table'")

    code, _, err = run(any_db.url, folder, "migrate", "--direct", "--target", "1")
    assert code == 0, err
    assert sql(any_db, "select run_id, history_table from dbops_audit order by started_at") == [
        ("old-run", None), (sql(any_db, "select run_id from dbops_audit where script = 'V1__ok.sql'")[0][0], "flyway_schema_history"),
    ]
    code, out, err = run(any_db.url, folder, "info", "--json")
    assert json.loads(out)["migrations"][1]["last_failure"]["run_id"] == "old-run"


def test_another_history_tables_attempts_are_neither_shown_nor_judged(pg_url, scripts, run) -> None:
    db = RigDatabase(name="", url=pg_url, pg_url=pg_url, driver="psycopg")
    folder = scripts({"V1__bad.sql": BROKEN})
    assert run(pg_url, folder, "--table", "team_a_history", "migrate", "--direct")[0] == 1
    code, out, _ = run(pg_url, folder, "--table", "team_b_history", "info", "--json")
    assert json.loads(out)["migrations"][0]["last_failure"] is None
    code, out, _ = run(pg_url, folder, "--table", "team_a_history", "info", "--json")
    assert json.loads(out)["migrations"][0]["last_failure"]["status"] == "failed"

    # A run of team A's table is under way (its lock is another one): team B's run must leave its row alone.
    sql(db, "insert into dbops_audit (run_id, source, script, status, started_at, finished_at, installed_by, history_table) "
            "values ('a-run', 'cli', 'V9__slow.sql', 'started', now(), now(), 'postgres', 'team_a_history')")
    (folder / "V1__bad.sql").write_text("select 1;\n")
    assert run(pg_url, folder, "--table", "team_b_history", "migrate", "--direct")[0] == 0
    assert sql(db, "select status from dbops_audit where run_id = 'a-run'") == [("started",)]
    assert run(pg_url, folder, "--table", "team_a_history", "migrate", "--direct")[0] == 0
    assert sql(db, "select status from dbops_audit where run_id = 'a-run'") == [("interrupted",)]


def test_an_audit_table_the_migrator_may_not_alter_keeps_working_without_the_new_column(pg_server, scripts, run) -> None:
    name = pg_server.create_database()
    role = f"deployer_{name}"
    db = RigDatabase(name=name, url=pg_server.url(name).replace("postgres@", f"{role}@"), pg_url=pg_server.url(name), driver="psycopg")
    with pg_server.admin() as conn:
        conn.execute(f'create role "{role}" login')
    sql(db, PREVIOUS_AUDIT_DDL)  # owned by postgres: the deployer may write rows, not change the table
    sql(db, f'grant create, usage on schema public to "{role}"; grant select, insert, update on dbops_audit to "{role}"')
    folder = scripts({"V1__ok.sql": "create table a (id int);", "V2__bad.sql": BROKEN})
    code, _, err = run(db.url, folder, "migrate", "--direct", "--commit", "abc123")
    assert code == 1 and ERROR in err
    assert "warning: cannot add column history_table to public.dbops_audit" in err
    assert 'ALTER TABLE "public".dbops_audit ADD COLUMN "history_table" VARCHAR(128)' in err
    assert sql(db, "select script, status, commit_id from dbops_audit order by started_at") == [
        ("V1__ok.sql", "success", "abc123"), ("V2__bad.sql", "failed", "abc123"),
    ]
    code, out, _ = run(db.url, folder, "info", "--json")
    assert json.loads(out)["migrations"][1]["last_failure"]["commit"] == "abc123"


def test_many_pending_scripts_are_looked_up_in_the_whole_audit_table(pg_url, scripts, run) -> None:
    count = SCRIPTS_BY_NAME + 2
    folder = scripts({"V1__bad.sql": BROKEN, **{f"V{i}__s.sql": "select 1;" for i in range(2, count + 1)}})
    assert run(pg_url, folder, "migrate", "--direct", "--commit", "abc123")[0] == 1
    code, out, _ = run(pg_url, folder, "info", "--json")
    failures = {m["script"]: m["last_failure"] for m in json.loads(out)["migrations"] if m["last_failure"]}
    assert list(failures) == ["V1__bad.sql"] and failures["V1__bad.sql"]["commit"] == "abc123"
    assert sum(m["state"] == "Pending" for m in json.loads(out)["migrations"]) == count
