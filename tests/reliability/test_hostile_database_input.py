"""Hostile databases, URLs and names: every error outside the scripts is one `error:` line with the documented exit code.

dbops's own statements (its history, audit and lock tables, the catalog) can fail for reasons that are not a script's:
a user without privileges, a statement timeout, names the server cuts short or that hold `%`, a table of another
shape under the history table's name, URL parameters libpq rejects. Each case runs with `--direct` and through
Dagster (`dbops migrate`), with psycopg and with redshift_connector (through pgbouncer), and leaves nothing half-created.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from dbops.cli import main
from tests.rig import RigDatabase

SCRIPTS = {"V1__create_orders.sql": "create table orders (id int);", "V2__seed_orders.sql": "insert into orders values (1), (2);"}
PATHS = ["direct", "dagster"]


@dataclass
class Outcome:
    code: int
    out: str
    err: str


def dbops(*args: str) -> Outcome:
    """`dbops ARGS` in this process; any exception other than SystemExit escapes and fails the test."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return Outcome(code, out.getvalue(), err.getvalue())


def migrate(url: str, path: str, *flags: str) -> Outcome:
    """`dbops migrate` with `--direct` or through Dagster (the local instance of the project folder)."""
    return dbops("--url", url, *flags, "migrate", *(["--direct"] if path == "direct" else []))


def assert_error_line(outcome: Outcome, code: int, *named: str) -> None:
    """Exit `code`, stderr opens with one `error:` message naming what it must, and no traceback or Dagster internals."""
    assert outcome.code == code, (outcome.code, outcome.out, outcome.err)
    assert outcome.err.startswith("error: "), outcome.err
    assert "Traceback" not in outcome.err and "DagsterExecutionStepExecutionError" not in outcome.err, outcome.err
    for name in named:
        assert name in outcome.err, (name, outcome.err)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scripts, dbops_home: Path) -> Path:
    """A project folder with sql/ as the working directory; no DBOPS_* variable or flyway.conf from the machine;
    DAGSTER_HOME unset, so `dbops migrate` uses the project's local instance."""
    for name in list(os.environ):
        if name.startswith("DBOPS_") and name != "DBOPS_HOME":
            monkeypatch.delenv(name)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".dbops").symlink_to(dbops_home)
    scripts(SCRIPTS)
    return tmp_path


def as_admin(db: RigDatabase, sql: str, params: tuple | None = None) -> list[tuple]:
    """Run `sql` on the test database as the superuser (whatever role the database makes its sessions take)."""
    with psycopg.connect(db.pg_url, autocommit=True) as conn:
        conn.execute("set role none")
        conn.execute("set statement_timeout = 0")
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []


def relations(db: RigDatabase) -> set[tuple[str, str]]:
    """(schema, name) of every table outside the system schemas."""
    rows = as_admin(db, "select table_schema, table_name from information_schema.tables "
                        "where table_schema not in ('pg_catalog', 'information_schema')")
    return {(schema, name) for schema, name in rows}


def schemas(db: RigDatabase) -> set[str]:
    return {name for (name,) in as_admin(db, "select nspname from pg_namespace where nspname not like 'pg\\_%' "
                                             "and nspname <> 'information_schema'")}


def set_on_database(db: RigDatabase, setting: str) -> None:
    """ALTER DATABASE … SET, and end the database's sessions so that pgbouncer's next ones start with it."""
    as_admin(db, f'alter database "{db.name}" set {setting}')
    as_admin(db, "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s and pid <> pg_backend_pid()",
             (db.name,))


def with_param(url: str, param: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{param}"


# --- 1. a user who may not create in the schema ---------------------------------------------------------------

def limited_url(db: RigDatabase, role: str) -> str:
    """A URL whose sessions run as `role`, which may use schema public but not create in it (PostgreSQL 15+).

    psycopg: `?options=-c role=…` as a user would write it; redshift_connector has no `options`, so the database
    makes its sessions take the role (ALTER DATABASE … SET role), which pgbouncer's new connections pick up.
    """
    as_admin(db, f'create role "{role}"')
    if db.driver == "psycopg":
        return with_param(db.url, "options=" + quote(f"-c role={role}"))
    set_on_database(db, f'role = "{role}"')
    return db.url


@pytest.mark.parametrize("path", PATHS)
def test_a_user_who_may_not_create_in_the_schema_is_told_what_to_grant(project, any_db, path) -> None:
    role = f"reader_{any_db.name}"
    url = limited_url(any_db, role)
    before = relations(any_db)
    outcome = migrate(url, path)
    assert_error_line(outcome, 2, "permission denied for schema public", f'GRANT USAGE, CREATE ON SCHEMA "public" TO "{role}"')
    assert "the user of --url, or of the environment's url in flyway.toml" in outcome.err  # -e refuses --url
    # Through pgbouncer a reused connection comes back from DISCARD ALL as the superuser (the rig maps every user to
    # postgres), so there the lock table may exist; everything of the history table's is checked on both drivers.
    rig_lock = {("public", "dbops_lock")} if any_db.driver == "redshift" else set()
    assert relations(any_db) - rig_lock == before, outcome.err  # nothing half-created
    as_admin(any_db, f'grant usage, create on schema public to "{role}"')  # what the message says to do
    outcome = migrate(url, path)
    assert outcome.code == 0, outcome.err
    assert as_admin(any_db, 'select "version", "installed_by" from public.flyway_schema_history order by 1') == [
        ("1", role), ("2", role)
    ]


def test_a_user_who_may_not_read_the_history_table_is_told_what_to_grant(project, any_db) -> None:
    assert migrate(any_db.url, "direct").code == 0
    role = f"stranger_{any_db.name}"
    url = limited_url(any_db, role)
    for command, tables in ((["info"], ["flyway_schema_history"]), (["validate"], ["flyway_schema_history"]),
                            (["migrate", "--direct"], ["flyway_schema_history", "dbops_audit", "dbops_lock"])):
        outcome = dbops("--url", url, *command)
        denied = re.search(r"permission denied for table (\w+)", outcome.err)
        assert denied and denied[1] in tables, outcome.err
        assert_error_line(outcome, 2, f'GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."{denied[1]}" TO "{role}"')


# --- 2. and 3. `%` in names -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "table"), [*(("direct", t) for t in ("h%s", "h%%s", "100%", "h%(x)s")), ("dagster", "h%s")])
def test_percent_signs_in_the_table_name(project, any_db, path, table) -> None:
    outcome = migrate(any_db.url, path, "--table", table)
    assert outcome.code == 0, outcome.err
    assert as_admin(any_db, f'select "version", "success" from public."{table}" where "type" = \'SQL\' order by 1') == [
        ("1", True), ("2", True)
    ]
    assert as_admin(any_db, 'select "script", "status", "history_table" from public.dbops_audit order by 1') == [
        ("V1__create_orders.sql", "success", table), ("V2__seed_orders.sql", "success", table)
    ]
    own = {name for schema, name in relations(any_db) if schema == "public"}
    assert own - {"dbops_lock", "dbops_schema_snapshot"} == {table, "dbops_audit", "orders"}
    again = migrate(any_db.url, path, "--table", table)
    assert again.code == 0 and "Nothing to migrate" in again.out, again.err
    info = dbops("--url", any_db.url, "--table", table, "info")
    assert info.code == 0 and info.out.count("Success") == 2, info.err


@pytest.mark.parametrize(("path", "schema"), [("direct", "a%%b"), ("direct", "a%sb"), ("dagster", "a%%b")])
def test_percent_signs_in_the_schema_name(project, any_db, path, schema) -> None:
    outcome = migrate(any_db.url, path, "--schema", schema)
    assert outcome.code == 0, outcome.err
    assert as_admin(any_db, f'select "version" from "{schema}".flyway_schema_history where "type" = \'SQL\' order by 1') == [
        ("1",), ("2",)
    ]
    assert as_admin(any_db, f'select count(*) from "{schema}".orders') == [(2,)]
    assert schemas(any_db) == {"public", schema}  # the schema created is the one written to
    for command in (["validate"], ["migrate", "--direct"]):
        again = dbops("--url", any_db.url, "--schema", schema, *command)
        assert again.code == 0, again.err


# --- 4. names longer than the server allows -------------------------------------------------------------------

@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("flag", "name"), [("--table", "h" * 64), ("--schema", "s" * 64), ("--table", "é" * 32)])
def test_a_name_longer_than_the_server_allows_is_refused_up_front(project, any_db, path, flag, name) -> None:
    before = relations(any_db), schemas(any_db)
    for outcome in (migrate(any_db.url, path, flag, name), dbops("--url", any_db.url, flag, name, "info")):
        assert_error_line(outcome, 2, flag, "63 bytes", name)
    assert (relations(any_db), schemas(any_db)) == before  # nothing created, not even the lock table


@pytest.mark.parametrize("length", [58, 61, 62, 63])
def test_history_tables_named_up_to_the_limit_get_constraint_names_that_do_not_collide(project, any_db, length) -> None:
    table = "t" * length
    for _ in range(2):
        outcome = migrate(any_db.url, "direct", "--table", table)
        assert outcome.code == 0, outcome.err
    assert as_admin(any_db, f'select "version" from public."{table}" where "type" = \'SQL\' order by 1') == [("1",), ("2",)]
    indexes = as_admin(any_db, "select indexname from pg_indexes where schemaname = 'public' and tablename = %s", (table,))
    assert len(indexes) == 2 and all(len(name.encode()) <= 63 for (name,) in indexes), indexes


# --- 5. a table of another shape under the history table's name ----------------------------------------------

@pytest.mark.parametrize("path", PATHS)
def test_a_table_of_another_shape_is_not_taken_for_the_history_table(project, any_db, path) -> None:
    as_admin(any_db, "create table public.customers (id int, version text, name text)")
    as_admin(any_db, "insert into public.customers values (1, 'v1', 'ann')")
    before = relations(any_db)
    for outcome in (migrate(any_db.url, path, "--table", "customers"), dbops("--url", any_db.url, "--table", "customers", "info")):
        assert_error_line(
            outcome, 2, "public.customers exists but is not a Flyway schema history table: missing columns installed_rank, "
            "description, type, script, checksum, installed_by, installed_on, execution_time, success", "--table"
        )
    assert relations(any_db) == before
    assert as_admin(any_db, "select * from public.customers") == [(1, "v1", "ann")]


@pytest.mark.parametrize("path", PATHS)
def test_a_table_of_another_shape_is_not_taken_for_the_audit_table(project, any_db, path) -> None:
    as_admin(any_db, "create table public.dbops_audit (id int, note text)")
    as_admin(any_db, "insert into public.dbops_audit values (1, 'theirs')")
    before = relations(any_db)
    for outcome in (migrate(any_db.url, path), dbops("--url", any_db.url, "info")):
        assert_error_line(outcome, 2, "public.dbops_audit exists but is not dbops's audit table: missing columns run_id, ",
                          "--schema")
    assert relations(any_db) == before
    assert as_admin(any_db, "select * from public.dbops_audit") == [(1, "theirs")]


# --- 6. a statement timeout on dbops's own statements ---------------------------------------------------------

def timeout_url(db: RigDatabase) -> str:
    """A URL whose sessions have statement_timeout = 1 ms: in its options (psycopg), or set on the database."""
    if db.driver == "psycopg":
        return with_param(db.url, "options=" + quote("-c statement_timeout=1"))
    set_on_database(db, "statement_timeout = 1")
    return db.url


@pytest.mark.parametrize("path", PATHS)
def test_a_statement_timeout_on_dbops_own_statements_is_an_error_line(project, any_db, path, scripts) -> None:
    assert migrate(any_db.url, "direct").code == 0
    scripts({"V3__more.sql": "insert into orders values (3);"})
    url = timeout_url(any_db)
    with psycopg.connect(any_db.pg_url) as holder:  # the history table is locked: reading it waits past the timeout
        holder.execute("set role none")
        holder.execute("set statement_timeout = 0")
        holder.execute("lock table public.flyway_schema_history in access exclusive mode")
        for outcome in (dbops("--url", url, "info"), migrate(url, path)):
            assert_error_line(outcome, 3, "canceling statement due to statement timeout", "statement_timeout",
                              "public.flyway_schema_history")
    assert as_admin(any_db, 'select max("version") from public.flyway_schema_history') == [("2",)]


# --- 7. URL parameters libpq rejects -------------------------------------------------------------------------

@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("param", ["sslmode=bogus", "connect_timeout=abc"])
def test_a_bad_url_parameter_is_bad_input_naming_it(project, any_db, path, param) -> None:
    url = any_db.url.replace("postgres@", "postgres:s3cret-pw@", 1)
    for outcome in (migrate(with_param(url, param), path), dbops("--url", with_param(url, param), "info")):
        assert_error_line(outcome, 2, param, "postgres:***@")
        assert "s3cret-pw" not in outcome.err + outcome.out
    assert relations(any_db) == set()


@pytest.mark.parametrize("option", ["statement_timeout=abc", "work_mem=-5", "no_such_setting=1"])
def test_a_session_setting_the_server_rejects_is_bad_input_naming_it(project, pg_url, option) -> None:
    url = with_param(pg_url.replace("postgres@", "postgres:s3cret-pw@", 1), "options=" + quote(f"-c {option}"))
    for outcome in (migrate(url, "direct"), dbops("--url", url, "info")):
        assert_error_line(outcome, 2, option.split("=")[0], "options=", "postgres:***@")
        assert "s3cret-pw" not in outcome.err + outcome.out
