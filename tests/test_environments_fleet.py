"""Many databases as flyway.toml environments: `dbops -e SELECTOR migrate|info|validate` over all of them, K at a time;
a failing and an unreachable environment never stop the others; the exit code and the summary name them."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from dbops.cli import main
from tests.pg import PgServer
from tests.rig import Bouncer

SCRIPTS = {
    "V1__orders.sql": "create table orders (id int, total numeric(10, 2));\n",
    "V2__reporting.sql": "create schema reporting;\ncreate view reporting.totals as select sum(total) as total from orders;\n",
    "V3__customers.sql": "create table customers (id int);\n",
}


@dataclass
class Fleet:
    """Databases on the test server declared as environments in ./flyway.toml; `pg[name]`: a psycopg URL for checks."""

    root: Path
    pg: dict[str, str]

    def applied(self, name: str) -> list[str]:
        with psycopg.connect(self.pg[name]) as conn:
            if conn.execute("select to_regclass('public.flyway_schema_history')").fetchone()[0] is None:
                return []
            rows = conn.execute("select version from flyway_schema_history where success order by installed_rank").fetchall()
        return [v for (v,) in rows]


def declare(root: Path, entries: dict[str, tuple[str, int, dict[str, str]]]) -> None:
    """flyway.toml with one environment per entry: name → (dbops URL, wave, tags)."""
    lines = []
    for name, (url, wave, tags) in entries.items():
        lines += [f"[environments.{name}]", f'url = "{url}"', ""]
        tag_text = ", ".join(f'{k} = "{v}"' for k, v in tags.items())
        lines += [f"[dbops.environments.{name}]", f"wave = {wave}", f"tags = {{ {tag_text} }}", ""]
    (root / "flyway.toml").write_text("\n".join(lines), encoding="utf-8")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scripts) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("DBOPS_URL", "DBOPS_PASSWORD", "DBOPS_ENVIRONMENT", "DBOPS_FLYWAY_TOML", "DBOPS_CONFIG", "DBOPS_SCHEMA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DBOPS_LOCATIONS", str(scripts(SCRIPTS)))
    return tmp_path


def limited_database(pg_server: PgServer) -> tuple[str, str]:
    """A database whose login role may create tables in public but not schemas: V2 (create schema) fails there."""
    name = pg_server.create_database("limited")
    role = f"r_{name}"
    with pg_server.admin() as conn:
        conn.execute(f'create role "{role}" login')
    with psycopg.connect(pg_server.url(name), autocommit=True) as conn:
        conn.execute(f'grant create on schema public to "{role}"')
        conn.execute(f'revoke create on database "{name}" from "{role}", public')
    return name, f"postgresql://{role}@/{name}?host={pg_server.socket_dir}"


@pytest.fixture
def fleet(project: Path, pg_server: PgServer, bouncer: Bouncer) -> Fleet:
    """Six tenants on psycopg, two through the Redshift rig (redshift_connector), one that fails at V2 (a privilege
    revoked), one where nothing listens."""
    entries: dict[str, tuple[str, int, dict[str, str]]] = {}
    pg: dict[str, str] = {}
    for i in range(6):
        database = pg_server.create_database("tenant")
        entries[f"tenant-{i}"] = (pg_server.url(database), 0 if i == 0 else 1, {"region": "eu-west-1" if i % 2 else "us-east-1"})
        pg[f"tenant-{i}"] = pg_server.url(database)
    for i in range(2):
        database = pg_server.create_database("rs")
        entries[f"rs-{i}"] = (bouncer.url(database), 1, {"region": "eu-west-1", "engine": "redshift"})
        pg[f"rs-{i}"] = pg_server.url(database)
    database, limited = limited_database(pg_server)
    entries["limited"] = (limited, 1, {"region": "us-east-1"})
    pg["limited"] = pg_server.url(database)
    entries["gone"] = ("postgresql://postgres@127.0.0.1:1/gone?connect_timeout=3", 1, {"region": "us-east-1"})
    declare(project, entries)
    return Fleet(project, pg)


def dbops(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_every_environment_is_migrated_and_a_failure_or_an_outage_stops_no_other(fleet: Fleet, capsys) -> None:
    code, out, err = dbops(capsys, "-e", "*", "migrate", "--direct", "--parallel", "4", "--commit", "c0ffee42")
    assert code == 3  # the worst: `gone` cannot be reached (3), `limited` failed a migration (1)
    healthy = [name for name in fleet.pg if name != "limited"]
    for name in healthy:
        assert fleet.applied(name) == ["1", "2", "3"], name
    assert fleet.applied("limited") == ["1"]  # V1 applied, V2 failed and rolled back, V3 never started
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("Migrated 10 environment(s) in ")
    assert "8 ok, 2 not: " in summary
    assert "limited (failed, exit 1): " in summary and "permission denied for database" in summary
    assert "gone (unreachable, exit 3): cannot connect to postgresql://postgres@127.0.0.1:1/gone" in summary
    assert re.search(r"^\[rs-1\] applied \S+/V3__customers\.sql \(1 statements", err, re.M)
    assert "[limited] failed (exit 1) after 1 migration(s)" in err and "[rs-0] ok: 3 migration(s)" in err


def test_the_fixed_environment_gets_only_what_it_misses_and_info_shows_one_row_each(fleet: Fleet, pg_server: PgServer, capsys) -> None:
    assert dbops(capsys, "-e", "tenant-*,limited", "migrate", "--direct", "--parallel", "3", "--commit", "first")[0] == 1
    with psycopg.connect(fleet.pg["limited"], autocommit=True) as conn:
        database = conn.execute("select current_database()").fetchone()[0]
        conn.execute(f'grant create on database "{database}" to "r_{database}"')
    code, out, err = dbops(capsys, "-e", "tenant-*,limited", "--json", "migrate", "--direct", "--parallel", "3", "--commit", "second")
    assert code == 0, err
    document = json.loads(out)
    applied = {e["environment"]: [a["script"] for a in e["applied"]] for e in document["environments"]}
    assert applied["limited"] == ["V2__reporting.sql", "V3__customers.sql"]
    assert all(applied[f"tenant-{i}"] == [] for i in range(6))
    assert (document["exit_code"], document["failed"]) == (0, [])

    code, out, _ = dbops(capsys, "-e", "*", "--json", "info", "--parallel", "4")
    assert code == 3
    rows = {row["environment"]: row for row in json.loads(out)["environments"]}
    assert list(rows)[:1] == ["tenant-0"]  # wave 0 first
    assert (rows["limited"]["latest_version"], rows["limited"]["pending"], rows["limited"]["commit"]) == ("3", 0, "second")
    assert (rows["tenant-3"]["latest_version"], rows["tenant-3"]["pending"], rows["tenant-3"]["commit"]) == ("3", 0, "first")
    assert rows["tenant-3"]["last_applied_at"] and rows["tenant-3"]["failed"] == 0
    assert (rows["rs-0"]["latest_version"], rows["rs-0"]["pending"], rows["rs-0"]["commit"]) == (None, 3, None)
    assert (rows["gone"]["status"], rows["gone"]["exit_code"]) == ("unreachable", 3)
    assert "cannot connect" in rows["gone"]["error"]


def test_info_counts_a_failed_script_and_prints_one_row_per_environment(fleet: Fleet, capsys) -> None:
    dbops(capsys, "-e", "limited,tenant-1", "migrate", "--direct", "--commit", "abc")
    code, out, _ = dbops(capsys, "-e", "limited,tenant-1", "info")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "Environments"
    assert lines[1].split() == ["Environment", "Wave", "Latest", "version", "Pending", "Failed", "Last", "applied", "at", "Commit", "Error"]
    limited = next(line for line in lines if line.startswith("limited"))
    assert limited.split()[:5] == ["limited", "1", "1", "2", "1"]  # wave 1, at version 1, 2 pending, 1 failed
    tenant = next(line for line in lines if line.startswith("tenant-1"))
    assert tenant.split()[:5] == ["tenant-1", "1", "3", "0", "0"] and tenant.split()[-1] == "abc"


def test_validate_names_the_environment_whose_history_differs(fleet: Fleet, capsys) -> None:
    assert dbops(capsys, "-e", "region=eu-west-1", "migrate", "--direct", "--parallel", "2")[0] == 0
    code, out, _ = dbops(capsys, "-e", "region=eu-west-1", "validate")
    assert code == 0 and "Validated 5 environment(s): 5 ok." in out
    with psycopg.connect(fleet.pg["tenant-3"], autocommit=True) as conn:
        conn.execute("update flyway_schema_history set checksum = 1 where version = '2'")
    code, out, _ = dbops(capsys, "-e", "region=eu-west-1", "validate", "--parallel", "2")
    assert code == 1
    assert re.search(r"^error: \[tenant-3\] \S+/V2__reporting\.sql: checksum mismatch for version 2", out, re.M)
    assert out.strip().splitlines()[-1].startswith("Validated 5 environment(s): 4 ok, 1 not: tenant-3 (failed, exit 1): 1 problem(s)")


def test_one_environment_behaves_like_a_url(fleet: Fleet, capsys) -> None:
    code, out, _ = dbops(capsys, "-e", "tenant-2", "migrate", "--direct")
    assert code == 0 and "Applied 3 migration(s) to postgresql://postgres@/" in out
    code, out, _ = dbops(capsys, "-e", "tenant-2", "--json", "info")
    assert code == 0 and [m["state"] for m in json.loads(out)["migrations"]] == ["Success"] * 3
    assert fleet.applied("tenant-1") == []


def test_dry_run_over_several_changes_nothing(fleet: Fleet, capsys) -> None:
    code, out, _ = dbops(capsys, "-e", "tenant-1,tenant-2", "--json", "migrate", "--dry-run")
    assert code == 0
    pending = {e["environment"]: [a["script"] for a in e["applied"]] for e in json.loads(out)["environments"]}
    assert pending == {"tenant-1": list(SCRIPTS), "tenant-2": list(SCRIPTS)}
    assert fleet.applied("tenant-1") == [] and fleet.applied("tenant-2") == []


def test_the_readme_lists_the_keys_of_the_json_documents(fleet: Fleet, capsys) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = re.search(r"\n## Environments\n(.*?)\n## ", readme, re.S).group(1)
    common = re.findall(r'"(\w+)"', re.search(r'`\{"environments": \[\{(.*?)…\}\], "exit_code"\}`', section, re.S).group(1))
    added = {
        command: re.findall(r'"(\w+)"', re.search(rf"`{command}` adds `(.*?)`", section, re.S).group(1))
        for command in ("info", "validate")
    }
    _, out, _ = dbops(capsys, "-e", "tenant-1,gone", "--json", "migrate", "--direct")
    document = json.loads(out)
    assert list(document) == ["environments", "failed", "exit_code", "seconds"]
    assert list(document["environments"][0]) == [*common, "applied", "run_id"]
    for command in ("info", "validate"):
        _, out, _ = dbops(capsys, "-e", "tenant-1,tenant-2", "--json", command)
        document = json.loads(out)
        assert list(document) == ["environments", "exit_code"]
        assert list(document["environments"][0]) == [*common, *added[command]], command
