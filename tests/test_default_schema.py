"""flyway.schemas / flyway.defaultSchema / --schema / DBOPS_SCHEMA: the connection's default schema, as in Flyway.

Every test runs through psycopg and through redshift_connector (pgbouncer), and checks with psycopg what landed.
"""
from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from dbops.cli import main
from dbops.engine.search_path import split_search_path
from dbops.scripts.migrations import checksum
from tests.rig import RigDatabase

MARKER = "<< Flyway Schema Creation >>"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder as the working directory, no DBOPS_* variable from the machine."""
    monkeypatch.chdir(tmp_path)
    for name in ("DBOPS_URL", "DBOPS_SCHEMA", "DBOPS_TABLE", "DBOPS_LOCATIONS", "DBOPS_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "sql").mkdir()
    return tmp_path


def write(project: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (project / name).write_text(text, encoding="utf-8")


def dbops(capsys: pytest.CaptureFixture, url: str, *args: str) -> tuple[int, str, str]:
    code = main(["--url", url, *args])
    out, err = capsys.readouterr()
    return code, out, err


def rows(db: RigDatabase, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(db.pg_url) as conn:
        return conn.execute(sql, params).fetchall()


def tables(db: RigDatabase, *names: str) -> list[tuple[str, str]]:
    return rows(db, "select table_schema, table_name from information_schema.tables where table_name = any(%s) "
                    "order by table_schema, table_name", (list(names),))


def history(db: RigDatabase, schema: str) -> list[tuple]:
    return rows(db, f'select installed_rank, version, description, type, script, checksum, success '
                    f'from "{schema}".flyway_schema_history order by installed_rank')


def test_flyway_schemas_the_first_is_the_default_and_all_are_created_and_recorded(any_db, project, capsys) -> None:
    write(project, {
        "flyway.conf": "flyway.schemas=analytics,staging\nflyway.locations=filesystem:sql\n",
        "sql/V1__foo.sql": "create table foo (i int);\n",
        "sql/V2__bar.sql": "create table bar (i int);\ninsert into foo values (1);\n",
    })
    code, out, err = dbops(capsys, any_db.url, "migrate", "--direct")
    assert code == 0, err
    assert tables(any_db, "foo", "bar", "flyway_schema_history", "dbops_audit") == [
        ("analytics", "bar"), ("analytics", "dbops_audit"), ("analytics", "flyway_schema_history"), ("analytics", "foo"),
    ]
    assert rows(any_db, "select nspname from pg_namespace where nspname in ('analytics', 'staging') order by 1") == [
        ("analytics",), ("staging",),
    ]
    assert history(any_db, "analytics") == [
        (0, None, MARKER, "SCHEMA", '"analytics","staging"', None, True),
        (1, "1", "foo", "SQL", "V1__foo.sql", checksum("create table foo (i int);\n"), True),
        (2, "2", "bar", "SQL", "V2__bar.sql", checksum("create table bar (i int);\ninsert into foo values (1);\n"), True),
    ]
    assert rows(any_db, "select i from analytics.foo") == [(1,)]

    code, out, err = dbops(capsys, any_db.url, "--json", "info")
    assert code == 0, err
    listed = [(m["type"], m["script"], m["state"], m["installed_rank"]) for m in json.loads(out)["migrations"]]
    assert listed == [
        ("SCHEMA", '"analytics","staging"', "Success", 0), ("SQL", "V1__foo.sql", "Success", 1), ("SQL", "V2__bar.sql", "Success", 2),
    ]
    assert dbops(capsys, any_db.url, "validate")[0] == 0
    code, out, _ = dbops(capsys, any_db.url, "migrate", "--direct")
    assert code == 0 and "Nothing to migrate" in out


@pytest.mark.parametrize("how", ["--schema", "DBOPS_SCHEMA", "flyway.defaultSchema"])
def test_each_way_to_name_the_schema_makes_it_the_default(any_db, project, capsys, monkeypatch, how) -> None:
    write(project, {"sql/V1__foo.sql": "create table foo (i int);\ncreate view foo_schema as select '${flyway:defaultSchema}' as s;\n"})
    args: list[str] = []
    if how == "--schema":
        args = ["--schema", "mart"]
    elif how == "DBOPS_SCHEMA":
        monkeypatch.setenv("DBOPS_SCHEMA", "mart")
    else:
        write(project, {"flyway.conf": "flyway.defaultSchema=mart\n"})
    code, _, err = dbops(capsys, any_db.url, *args, "migrate", "--direct")
    assert code == 0, err
    assert tables(any_db, "foo", "foo_schema", "flyway_schema_history") == [
        ("mart", "flyway_schema_history"), ("mart", "foo"), ("mart", "foo_schema"),
    ]
    assert rows(any_db, "select s from mart.foo_schema") == [("mart",)]
    assert history(any_db, "mart")[0][3:5] == ("SCHEMA", '"mart"')


def test_the_default_schema_goes_first_and_the_sessions_own_path_stays_behind_it(any_db, project, capsys) -> None:
    with psycopg.connect(any_db.pg_url, autocommit=True) as conn:
        conn.execute("create table public.lookup (code int)")
        conn.execute("insert into public.lookup values (7)")
    write(project, {
        "flyway.conf": "flyway.schemas=analytics\n",
        "sql/V1__copy.sql": "create table copied as select code from lookup;\n",
    })
    code, _, err = dbops(capsys, any_db.url, "migrate", "--direct")
    assert code == 0, err
    assert rows(any_db, "select code from analytics.copied") == [(7,)]


def test_a_script_that_changes_the_search_path_changes_it_for_itself_only(any_db, project, capsys) -> None:
    write(project, {
        "flyway.conf": "flyway.schemas=analytics,staging\n",
        "sql/V1__a.sql": "create table a (i int);\n",
        "sql/V2__staged.sql": "set search_path to staging;\ncreate table staged (i int);\n",
        "sql/V3__b.sql": "create table b (i int);\n",
        "sql/V4__c.sql": "create table c (i int);\n",
        "sql/V5__config.sql": "select set_config('search_path', 'staging', false);\ncreate table configured (i int);\n",
        "sql/V6__d.sql": "create table d (i int);\n",
        "sql/beforeMigrate__path.sql": "set search_path to staging;\n",
    })
    code, _, err = dbops(capsys, any_db.url, "migrate", "--direct")
    assert code == 0, err
    assert tables(any_db, "a", "staged", "b", "c", "configured", "d") == [
        ("analytics", "a"), ("analytics", "b"), ("analytics", "c"), ("analytics", "d"),
        ("staging", "configured"), ("staging", "staged"),
    ]


def test_schema_names_that_need_quoting(any_db, project, capsys) -> None:
    write(project, {
        "flyway.conf": 'flyway.schemas=Sales Data,odd"name\n',
        "sql/V1__foo.sql": "create table foo (i int);\n",
    })
    code, _, err = dbops(capsys, any_db.url, "migrate", "--direct")
    assert code == 0, err
    assert tables(any_db, "foo", "flyway_schema_history") == [("Sales Data", "flyway_schema_history"), ("Sales Data", "foo")]
    assert rows(any_db, "select 1 from pg_namespace where nspname = %s", ('odd"name',)) == [(1,)]
    assert history(any_db, "Sales Data")[0][4] == '"Sales Data","odd""name"'
    assert dbops(capsys, any_db.url, "validate")[0] == 0


def test_only_missing_schemas_are_created_and_recorded(any_db, project, capsys) -> None:
    with psycopg.connect(any_db.pg_url, autocommit=True) as conn:
        conn.execute("create schema staging")
    write(project, {"flyway.conf": "flyway.schemas=analytics,staging\n", "sql/V1__foo.sql": "create table foo (i int);\n"})
    assert dbops(capsys, any_db.url, "migrate", "--direct")[0] == 0
    assert history(any_db, "analytics")[0][3:5] == ("SCHEMA", '"analytics"')
    assert tables(any_db, "foo") == [("analytics", "foo")]


def test_existing_schemas_leave_no_marker(any_db, project, capsys) -> None:
    with psycopg.connect(any_db.pg_url, autocommit=True) as conn:
        conn.execute("create schema analytics")
    write(project, {"flyway.conf": "flyway.schemas=analytics\n", "sql/V1__foo.sql": "create table foo (i int);\n"})
    assert dbops(capsys, any_db.url, "migrate", "--direct")[0] == 0
    assert [r[3] for r in history(any_db, "analytics")] == ["SQL"]
    assert tables(any_db, "foo") == [("analytics", "foo")]


FLYWAY_TABLE = """
create table analytics.flyway_schema_history (
    installed_rank int not null, version varchar(50), description varchar(200) not null, type varchar(20) not null,
    script varchar(1000) not null, checksum int, installed_by varchar(100) not null,
    installed_on timestamp not null default now(), execution_time int not null, success boolean not null,
    constraint flyway_schema_history_pk primary key (installed_rank))
"""


@pytest.mark.parametrize("marker_version", [None, "0"], ids=["flyway-6-and-later", "flyway-3-and-4"])
def test_a_schema_row_flyway_wrote_reads_fine(any_db, project, capsys, marker_version) -> None:
    v1 = "create table foo (i int);\n"
    with psycopg.connect(any_db.pg_url, autocommit=True) as conn:
        conn.execute('create schema "analytics"')
        conn.execute(FLYWAY_TABLE)
        conn.execute("create table analytics.foo (i int)")
        conn.execute(
            "insert into analytics.flyway_schema_history values "
            "(0, %s, %s, 'SCHEMA', '\"analytics\"', null, 'flyway', now(), 0, true), "
            "(1, '1', 'foo', 'SQL', 'V1__foo.sql', %s, 'flyway', now(), 12, true)",
            (marker_version, MARKER, checksum(v1)),
        )
    write(project, {
        "flyway.conf": "flyway.schemas=analytics\n",
        "sql/V1__foo.sql": v1,
        "sql/V2__bar.sql": "create table bar (i int);\n",
    })
    code, out, err = dbops(capsys, any_db.url, "--json", "info")
    assert code == 0, err
    assert [(m["type"], m["state"]) for m in json.loads(out)["migrations"]] == [
        ("SCHEMA", "Success"), ("SQL", "Success"), ("SQL", "Pending"),
    ]
    assert dbops(capsys, any_db.url, "validate")[0] == 0
    assert dbops(capsys, any_db.url, "migrate", "--direct")[0] == 0
    assert [r[:2] for r in history(any_db, "analytics")] == [(0, marker_version), (1, "1"), (2, "2")]
    assert tables(any_db, "bar") == [("analytics", "bar")]


@pytest.mark.parametrize(("value", "names"), [
    ('"$user", public', ["$user", "public"]),
    ("$user, public", ["$user", "public"]),
    ('Mixed, "Quoted Name", "a""b"', ["mixed", "Quoted Name", 'a"b']),
    ("", []),
])
def test_search_path_settings_are_read_as_the_server_resolves_them(value, names) -> None:
    assert split_search_path(value) == names
