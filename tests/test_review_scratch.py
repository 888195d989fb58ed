"""The scratch build's database: created per review, dropped after a build, a failure, SIGINT or SIGTERM; a killed
review's leftover dropped by the next review, and nobody else's; the Redshift path through the rig; the embedded one."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dbops.cli import main
from dbops.review import scratch
from tests.gitrepo import GitRepo
from tests.pg import PgServer
from tests.rig import RigDatabase

PORTABLE = "create table {0} (id int);\n"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GitRepo:
    repo = GitRepo(tmp_path / "repo")
    repo.commit("base", {"sql/V1__a.sql": PORTABLE.format("a"), "sql/V2__b.sql": PORTABLE.format("b")})
    monkeypatch.chdir(repo.path)
    monkeypatch.setenv("DBOPS_HOME", str(tmp_path / "home"))
    return repo


def databases(server: PgServer) -> set[str]:
    with server.admin() as conn:
        return {r[0] for r in conn.execute("select datname from pg_database where datname like 'dbops_review_%'")}


def create(server: PgServer, name: str) -> None:
    with server.admin() as conn:
        conn.execute(f'create database "{name}"')


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_only_the_leftovers_of_dead_reviews_are_dropped(pg_server: PgServer) -> None:
    now = datetime.now(UTC)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        names = {
            "old, another host": scratch.scratch_name(now - timedelta(hours=7), 4242, "0badcafe"),
            "recent, another host": scratch.scratch_name(now - timedelta(minutes=5), 4242, "0badcafe"),
            "this host, process gone": scratch.scratch_name(now - timedelta(minutes=5), dead_pid()),
            "this host, process running": scratch.scratch_name(now - timedelta(minutes=5), alive.pid),
            "not a scratch name": "dbops_review_by_hand",
        }
        for name in names.values():
            create(pg_server, name)
        logged: list[str] = []
        dropped = scratch.ScratchServer(pg_server.url(), "test").clean_leftovers(logged.append)
        assert sorted(dropped) == sorted([names["old, another host"], names["this host, process gone"]])
        left = databases(pg_server)
        assert {names["recent, another host"], names["this host, process running"], names["not a scratch name"]} <= left
        assert not set(dropped) & left
        assert any(names["this host, process gone"] in line for line in logged)
    finally:
        alive.kill()
        alive.wait()
        with pg_server.admin() as conn:
            for name in names.values():
                conn.execute(f'drop database if exists "{name}"')


def start_review(repo: GitRepo, server: PgServer, tmp_path: Path) -> subprocess.Popen:
    repo.write({"sql/V3__slow.sql": "select pg_sleep(60);\n"})
    env = {**os.environ, "DBOPS_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "dbops.cli", "review", "--json", "--scratch-url", server.url()],
                            cwd=repo.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_build(server: PgServer, process: subprocess.Popen, timeout: float = 60.0) -> str:
    """The scratch database of `process`, once a statement has run there for a second (the slow migration: the
    batch text pg_stat_activity shows is cut before it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        with server.admin() as conn:
            rows = conn.execute("select datname from pg_stat_activity where datname like %s and state = 'active' "
                                "and now() - query_start > interval '1 second'", [f"dbops_review_%_{process.pid}"]).fetchall()
        if rows:
            return rows[0][0]
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"the review's build did not start: {process.communicate()}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_build_drops_its_database(repo: GitRepo, pg_server: PgServer, tmp_path: Path, sig: signal.Signals) -> None:
    process = start_review(repo, pg_server, tmp_path)
    name = wait_for_build(pg_server, process)
    process.send_signal(sig)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert name not in databases(pg_server)


def test_a_killed_review_leaves_its_database_to_the_next_review(repo: GitRepo, pg_server: PgServer, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    process = start_review(repo, pg_server, tmp_path)
    name = wait_for_build(pg_server, process)
    process.kill()
    process.wait()
    assert name in databases(pg_server)
    repo.write({"sql/V3__slow.sql": None})
    assert main(["review", "--scratch-url", pg_server.url()]) == 0
    err = capsys.readouterr().err
    assert f"dropped the leftover scratch database {name}" in err
    assert name not in databases(pg_server)


def test_the_redshift_path_builds_on_the_target_cluster(repo: GitRepo, rs_db: RigDatabase, pg_server: PgServer,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["review", "--json", "--url", rs_db.url])
    document = json.loads(capsys.readouterr().out)
    assert code == 0, document["blocking"]
    built = document["scratch"]
    assert built["server"].startswith("the target's cluster redshift://")
    assert [m["script"] for m in built["migrations"]] == ["sql/V1__a.sql", "sql/V2__b.sql"]
    assert built["database"] not in databases(pg_server)
    assert [p["script"] for p in document["plan"]["scripts"]] == ["sql/V1__a.sql", "sql/V2__b.sql"]
    with pg_server.admin() as conn:  # the target itself was only read
        assert conn.execute("select count(*) from pg_database where datname = %s", [rs_db.name]).fetchone() == (1,)
    assert main(["--url", rs_db.url, "migrate", "--direct"]) == 0
    repo.write({"sql/V1__a.sql": "create table a (id bigint);\n"})
    capsys.readouterr()
    code = main(["review", "--json", "--url", rs_db.url, "--no-scratch"])
    document = json.loads(capsys.readouterr().out)
    assert code == 1 and [(f["kind"], f["files"]) for f in document["integrity"]] == [("edited", ["sql/V1__a.sql"])]


def test_through_the_data_api_the_build_runs_on_the_target_cluster(repo: GitRepo, da_db: RigDatabase, pg_server: PgServer,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["review", "--json", "--url", da_db.url])
    document = json.loads(capsys.readouterr().out)
    assert code == 0, document["blocking"]
    built = document["scratch"]
    assert built["server"].startswith("the target's cluster redshift-data://")
    assert [m["script"] for m in built["migrations"]] == ["sql/V1__a.sql", "sql/V2__b.sql"]
    assert built["database"].startswith("dbops_review_") and built["database"] not in databases(pg_server)
    repo.write({"sql/V3__broken.sql": "insert into no_such_table values (1);\n"})
    code = main(["review", "--json", "--url", da_db.url])
    document = json.loads(capsys.readouterr().out)
    assert code == 1 and "sql/V3__broken.sql" in document["scratch"]["failure"]
    assert document["scratch"]["database"] not in databases(pg_server)


def test_a_failing_build_on_the_redshift_path_drops_its_database(repo: GitRepo, rs_db: RigDatabase, pg_server: PgServer,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    repo.write({"sql/V3__broken.sql": "insert into no_such_table values (1);\n"})
    code = main(["review", "--json", "--url", rs_db.url])
    document = json.loads(capsys.readouterr().out)
    assert code == 1 and "sql/V3__broken.sql" in document["scratch"]["failure"]
    assert document["scratch"]["database"] not in databases(pg_server)


def test_without_a_target_the_build_runs_on_the_embedded_database(repo: GitRepo, dbops_home: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["review", "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0, document["blocking"]
    assert document["scratch"]["server"] == "embedded PostgreSQL"
    assert [m["script"] for m in document["scratch"]["migrations"]] == ["sql/V1__a.sql", "sql/V2__b.sql"]
    assert document["plan"]["against"] == "an empty database"
    import psycopg

    from dbops.targets.embedded import EmbeddedDatabase

    database = EmbeddedDatabase(dbops_home / "pgdata")
    with psycopg.connect(database.url(database.running_socket_dir(), "postgres")) as conn:
        names = [r[0] for r in conn.execute("select datname from pg_database where datname like 'dbops_review_%'")]
    assert names == []
